"""The memory a fit needs, checked against the machine's before training.

Hidden layers wide enough to train can still be far too wide to prune: with
``compensate="lstsq"`` a hidden layer of ``10**6`` units asks for 24 TB of
Gram matrices, after the whole training. :func:`fit_memory` estimates what a
fit holds at least; :func:`check_fit_memory` refuses a fit that cannot get it,
before any work, naming ``hidden_layer_sizes`` and the size.
"""

from ..pruning._resources import available_memory, format_gb, refit_bytes

__all__ = ["check_estimator_memory", "check_fit_memory", "fit_memory"]

#: float32 copies of every parameter while training: the weights, their
#: gradients and Adam's two moments (pruning's copies are no more).
_NETWORK_COPIES = 4

#: float32 values per unit and row of a batch: the activation and its
#: gradient (training), or the masked variants of a pull.
_ACTIVATION_COPIES = 2


def fit_memory(n_features, hidden_layer_sizes, n_outputs, batch_size, refit):
    """Bytes a fit holds at least, by what holds them.

    Parameters
    ----------
    n_features : int
    hidden_layer_sizes : sequence of int
    n_outputs : int
    batch_size : int
        Rows of the largest batch through the network: a training minibatch
        or a batch of pulls.
    refit : bool
        Whether pruning refits the consumer of every hidden layer by least
        squares (``compensate="lstsq"``, ``policy="obs"``).

    Returns
    -------
    dict
        ``"network"`` (parameters and optimizer state), ``"activations"`` (of
        a batch) and ``"refits"`` (Gram matrices, their inverses and the
        copy being inverted, see ``skbandit.pruning._resources``), in bytes.

    Examples
    --------
    >>> fit_memory(4, [10], 3, 200, refit=True)
    {'network': 1328, 'activations': 20800, 'refits': 2904}
    """
    widths = [n_features, *hidden_layer_sizes, n_outputs]
    # Python ints: the counts of an absurd request overflow int64.
    n_params = sum((int(a) + 1) * int(b) for a, b in zip(widths[:-1], widths[1:]))
    n_units = sum(int(w) for w in widths[1:])
    return {
        "network": 4 * _NETWORK_COPIES * n_params,
        "activations": 4 * _ACTIVATION_COPIES * int(batch_size) * n_units,
        "refits": refit_bytes(hidden_layer_sizes) if refit else 0,
    }


_WHAT = {
    "network": "the network and its optimizer state",
    "activations": "the activations of a batch",
    "refits": "the least-squares Gram matrices of {reason}",
}


def check_fit_memory(parameter, needs, reason, available):
    """Refuse a fit whose memory ``needs`` exceed ``available`` bytes.

    Parameters
    ----------
    parameter : str
        The setting to change, e.g. ``"hidden_layer_sizes=(1000000,)"``.
    needs : dict
        Bytes by what holds them, as :func:`fit_memory` returns.
    reason : str or None
        The setting that asks for the refits (``"compensate='lstsq'"``);
        None without refits.
    available : int or None
        Bytes free (:func:`available_memory`); None skips the check.

    Raises
    ------
    MemoryError
        Naming ``parameter``, the total in GB and each part.

    Examples
    --------
    >>> check_fit_memory("hidden_layer_sizes=(8,)", {"network": 10}, None, 10**9)
    >>> check_fit_memory("hidden_layer_sizes=(8,)", {"network": 2e9}, None, 10**9)
    Traceback (most recent call last):
    ...
    MemoryError: hidden_layer_sizes=(8,) needs about 2 GB of memory to fit (2 GB ...
    """
    total = sum(needs.values())
    if available is None or total <= available:
        return
    parts = ", ".join(
        f"{format_gb(size)} for {_WHAT[name].format(reason=reason)}"
        for name, size in sorted(needs.items(), key=lambda item: -item[1])
        if size
    )
    advice = "Use smaller hidden layers"
    if needs.get("refits"):
        advice += ", or compensate='mean' or 'none' (and a policy other than 'obs')"
    raise MemoryError(
        f"{parameter} needs about {format_gb(total)} of memory to fit ({parts}), "
        f"but {format_gb(available)} is available. {advice}."
    )


def check_estimator_memory(estimator, n_samples, n_features, sizes, n_outputs):
    """:func:`check_fit_memory` of ``estimator`` on data of this shape."""
    refit = estimator.policy != "none" and (
        estimator.compensate == "lstsq" or estimator.policy == "obs"
    )
    reason = "policy='obs'" if estimator.compensate != "lstsq" else "compensate='lstsq'"
    # Training sees minibatches, pruning batches of pulls: the larger counts.
    batch = max(
        estimator._batch_size(n_samples), min(estimator.pull_batch_size, n_samples)
    )
    check_fit_memory(
        f"hidden_layer_sizes={estimator.hidden_layer_sizes!r}",
        fit_memory(n_features, sizes, n_outputs, batch, refit),
        reason if refit else None,
        available_memory(estimator.device),
    )
