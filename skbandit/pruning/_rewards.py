"""Losses, per-variant metrics and the safe-removal reward.

A pull measures a *metric* of the network with one unit masked and compares it
with the unmasked network on the same minibatch. The reward maps that change to
``[0, 1]``: high means "removing this unit barely hurts (or helps)".
"""

import numbers

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "LossReward",
    "AccuracyReward",
    "make_reward",
    "resolve_loss",
    "sample_metric",
]


def _mse(output, target):
    return (output - target.reshape(output.shape)).pow(2)


def _cross_entropy(output, target):
    target = target.long()
    if output.dim() == 2:
        # Same value as F.cross_entropy, several times faster for the narrow
        # (many rows, few classes) outputs that stacked pulls produce.
        return torch.logsumexp(output, 1) - output.gather(1, target[:, None]).squeeze(1)
    return F.cross_entropy(output, target, reduction="none")


_LOSSES = {"cross_entropy": _cross_entropy, "mse": _mse}


def resolve_loss(loss):
    """Turn a loss name or callable into ``f(output, target) -> per-sample loss``.

    Parameters
    ----------
    loss : {"cross_entropy", "mse"} or callable
        A callable takes the model output and the target of a batch and
        returns unreduced losses whose first dimension is the sample.
    """
    if callable(loss):
        return loss
    if loss in _LOSSES:
        return _LOSSES[loss]
    raise ValueError(
        f"Unknown loss {loss!r}; use one of {sorted(_LOSSES)} or a callable "
        "returning per-sample losses."
    )


def sample_metric(kind, loss_fn):
    """Per-sample metric of model outputs.

    Parameters
    ----------
    kind : {"loss", "accuracy"}
    loss_fn : callable
        Per-sample loss (see :func:`resolve_loss`), used when ``kind="loss"``.

    Returns
    -------
    metric : callable
        ``metric(outputs, target)`` returns one value per sample (losses
        averaged over any extra output dimensions, or 0/1 correctness).
    """

    def loss_metric(outputs, target):
        losses = loss_fn(outputs, target)
        return losses.flatten(1).mean(dim=1) if losses.dim() > 1 else losses

    def accuracy_metric(outputs, target):
        return (outputs.argmax(dim=-1) == target).to(outputs.dtype)

    if kind == "loss":
        return loss_metric
    if kind == "accuracy":
        return accuracy_metric
    raise ValueError(f"Unknown metric kind {kind!r}; use 'loss' or 'accuracy'.")


class LossReward:
    r"""Loss-based safe-removal reward (the default).

    .. math::

        r = \sigma\!\left(-\frac{L_{\text{masked}} - L_{\text{base}}}
                               {\tau \cdot \max(L_{\text{base}}, \epsilon)}\right),
        \qquad \sigma(x) = \frac{1}{1 + e^{-x}}

    where both losses are measured on the same minibatch. A unit whose removal
    leaves the loss unchanged gets ``0.5``; one whose removal lowers the loss
    gets more; a relative loss increase of ``tau`` gets
    :math:`\sigma(-1) \approx 0.27`. Dividing by the base loss makes the reward
    scale-free, so one ``temperature`` suits every dataset and loss.

    Parameters
    ----------
    temperature : float, default=0.05
        Relative loss change that moves the reward by one logit.
    eps : float, default=1e-8
        Floor of the base loss (a network with zero loss would divide by 0).

    Examples
    --------
    >>> import numpy as np
    >>> reward = LossReward(temperature=0.1)
    >>> reward(base=1.0, masked=np.array([1.0, 1.1, 0.9])).round(4)
    array([0.5   , 0.2689, 0.7311])
    """

    metric = "loss"

    def __init__(self, temperature=0.05, eps=1e-8):
        if not (isinstance(temperature, numbers.Real) and temperature > 0):
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        self.temperature = temperature
        self.eps = eps

    def __call__(self, base, masked):
        base = np.asarray(base, dtype=float)
        delta = np.asarray(masked, dtype=float) - base
        scale = self.temperature * np.maximum(base, self.eps)
        # 0.5 * (1 + tanh(x / 2)) is the logistic function without overflow.
        return 0.5 * (1.0 + np.tanh(-delta / scale / 2.0))

    def __repr__(self):
        return f"LossReward(temperature={self.temperature})"


class AccuracyReward:
    r"""Accuracy-based reward of the authors' earlier code.

    .. math::

        r = \operatorname{clip}(\text{acc}_{\text{masked}} - \text{acc}_{\text{base}}
            + \text{offset},\ 0,\ 1)

    With the default ``offset=0.2`` a unit whose removal costs 20 accuracy
    points or more gets reward 0. Classification only.

    Parameters
    ----------
    offset : float, default=0.2

    Examples
    --------
    >>> import numpy as np
    >>> AccuracyReward()(base=0.9, masked=np.array([0.9, 0.6, 1.0]))
    array([0.2, 0. , 0.3])
    """

    metric = "accuracy"

    def __init__(self, offset=0.2):
        if not (isinstance(offset, numbers.Real) and 0 <= offset <= 1):
            raise ValueError(f"offset must be in [0, 1], got {offset!r}.")
        self.offset = offset

    def __call__(self, base, masked):
        delta = np.asarray(masked, dtype=float) - np.asarray(base, dtype=float)
        return np.clip(delta + self.offset, 0.0, 1.0)

    def __repr__(self):
        return f"AccuracyReward(offset={self.offset})"


_REWARDS = {"loss": LossReward, "accuracy": AccuracyReward}


def make_reward(spec):
    """Build a reward from a name (``"loss"``, ``"accuracy"``) or return an object.

    Parameters
    ----------
    spec : {"loss", "accuracy"} or reward object
        A name builds :class:`LossReward` or :class:`AccuracyReward` with
        their defaults. Any object with a ``metric`` attribute (``"loss"`` or
        ``"accuracy"``) and a ``__call__(base, masked) -> rewards in [0, 1]``
        is returned as is.
    """
    if isinstance(spec, str):
        if spec not in _REWARDS:
            raise ValueError(
                f"Unknown reward {spec!r}; use one of {sorted(_REWARDS)} or a "
                "reward object."
            )
        return _REWARDS[spec]()
    if callable(spec) and getattr(spec, "metric", None) in ("loss", "accuracy"):
        return spec
    raise TypeError(
        "reward must be 'loss', 'accuracy' or an object with a `metric` "
        f"attribute and __call__(base, masked); got {spec!r}."
    )
