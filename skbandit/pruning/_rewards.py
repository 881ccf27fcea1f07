"""Losses, per-variant metrics and the safe-removal reward.

A pull measures a *metric* of the network with one unit masked and compares it
with the unmasked network on the same minibatch. The reward maps that change to
``[0, 1]``: high means "removing this unit barely hurts (or helps)". The
metric is the loss against the labels (``"loss"``), the accuracy
(``"accuracy"``), or how far the outputs move from the unpruned network's own
outputs (``"fidelity"``).

Causal language models (``loss="causal_lm"``) output ``(batch, seq, vocab)``
logits and are scored per token: position ``t`` predicts label ``t + 1``
(labels shifted the Hugging Face way, ``-100`` ignored), and a sample's loss
is the mean over its counted tokens.
"""

import numbers

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "IGNORE_INDEX",
    "LossReward",
    "AccuracyReward",
    "FidelityReward",
    "check_causal_lm",
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


#: Label of a token that no loss counts (Hugging Face's ``ignore_index``).
IGNORE_INDEX = -100


def _shifted(output, target):
    """``(logits, labels, counted)``: position ``t``'s logits against label
    ``t + 1``, the way Hugging Face's causal LM loss shifts them."""
    labels = target[:, 1:].long()
    return output[:, :-1], labels, labels != IGNORE_INDEX


def _causal_lm(output, target):
    """Next-token cross-entropy per sequence: ``output`` ``(batch, seq,
    vocab)`` logits, ``target`` ``(batch, seq)`` labels (the input ids; the
    shift happens here), mean over the tokens whose label is not
    ``IGNORE_INDEX`` (0 for a sequence with none)."""
    logits, labels, counted = _shifted(output, target)
    safe = labels.masked_fill(~counted, 0)
    tokens = torch.logsumexp(logits, -1) - logits.gather(-1, safe[..., None])[..., 0]
    tokens = tokens * counted
    return tokens.sum(1) / counted.sum(1).clamp(min=1).to(tokens.dtype)


_LOSSES = {"cross_entropy": _cross_entropy, "mse": _mse, "causal_lm": _causal_lm}


def check_causal_lm(output, target):
    """Raise ``ValueError`` unless ``output`` and ``target`` fit
    ``loss="causal_lm"``: ``(batch, seq, vocab)`` logits, ``(batch, seq)``
    integer labels in ``[0, vocab)`` or ``IGNORE_INDEX``."""
    if output.dim() != 3:
        raise ValueError(
            "loss='causal_lm' needs (batch, seq, vocab) logits; the model "
            f"outputs shape {tuple(output.shape)}."
        )
    if tuple(target.shape[1:]) != tuple(output.shape[1:2]):
        raise ValueError(
            f"loss='causal_lm' needs labels of shape (n_samples, {output.shape[1]}) "
            f"(the input ids, or y=None to use them), got {tuple(target.shape)}."
        )
    if target.is_floating_point() and not torch.equal(target, target.round()):
        raise ValueError("loss='causal_lm' needs integer token labels in y.")
    vocab, counted = output.shape[-1], target[target != IGNORE_INDEX]
    if counted.numel() and (counted.min() < 0 or counted.max() >= vocab):
        raise ValueError(
            f"y has token labels in [{int(counted.min())}, {int(counted.max())}], "
            f"outside [0, {vocab}) of the model's vocabulary (or {IGNORE_INDEX}: "
            "not counted)."
        )


def resolve_loss(loss):
    """Turn a loss name or callable into ``f(output, target) -> per-sample loss``.

    Parameters
    ----------
    loss : {"cross_entropy", "mse", "causal_lm"} or callable
        ``"causal_lm"``: next-token cross-entropy of ``(batch, seq, vocab)``
        logits against ``(batch, seq)`` labels shifted by one position (the
        Hugging Face convention: pass the input ids as labels; ``-100``
        marks a token no loss counts), averaged over each sequence's counted
        tokens. A callable takes the model output and the target of a batch
        and returns unreduced losses whose first dimension is the sample.

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens
    >>> resolve_loss("causal_lm")(logits, torch.tensor([[1, 2, -100]]))
    tensor([1.3863])
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
    r"""Per-sample metric of model outputs.

    Parameters
    ----------
    kind : {"loss", "accuracy", "fidelity"}
    loss_fn : callable
        Per-sample loss (see :func:`resolve_loss`), used when ``kind="loss"``;
        for ``"fidelity"`` it says whether the outputs are logits (the
        cross-entropy) or values (any other loss).

    Returns
    -------
    metric : callable
        ``metric(outputs, target)`` returns one value per sample (losses
        averaged over any extra output dimensions, or 0/1 correctness). For
        ``"fidelity"`` the target is the unpruned network's output and the
        value is the divergence from it: :math:`\mathrm{KL}(\mathrm{softmax}
        (t) \,\|\, \mathrm{softmax}(o))` for logits, the mean squared
        difference otherwise (0 for the unpruned network). With
        ``loss="causal_lm"`` the logits are ``(batch, seq, vocab)``: the
        accuracy is next-token accuracy over the counted tokens, the
        fidelity the KL over the vocabulary averaged over positions.
    """

    def loss_metric(outputs, target):
        losses = loss_fn(outputs, target)
        return losses.flatten(1).mean(dim=1) if losses.dim() > 1 else losses

    def accuracy_metric(outputs, target):
        if loss_fn is _causal_lm:  # next-token accuracy over counted tokens
            logits, labels, counted = _shifted(outputs, target)
            right = ((logits.argmax(dim=-1) == labels) & counted).sum(1)
            return right.to(outputs.dtype) / counted.sum(1).clamp(min=1)
        return (outputs.argmax(dim=-1) == target).to(outputs.dtype)

    def fidelity_metric(outputs, target):
        if loss_fn is _causal_lm:  # KL over the vocabulary at every position
            log_p = torch.log_softmax(target, -1)
            kl = (log_p.exp() * (log_p - torch.log_softmax(outputs, -1))).sum(-1)
            return kl.mean(dim=1)
        if loss_fn is _cross_entropy:
            log_p = torch.log_softmax(target, 1)
            kl = (log_p.exp() * (log_p - torch.log_softmax(outputs, 1))).sum(1)
            return kl.flatten(1).mean(dim=1) if kl.dim() > 1 else kl
        return (outputs - target).pow(2).flatten(1).mean(dim=1)

    metrics = {
        "loss": loss_metric,
        "accuracy": accuracy_metric,
        "fidelity": fidelity_metric,
    }
    if kind not in metrics:
        raise ValueError(
            f"Unknown metric kind {kind!r}; use 'loss', 'accuracy' or 'fidelity'."
        )
    return metrics[kind]


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


class FidelityReward:
    r"""Reward for keeping the unpruned network's outputs (a distillation view).

    .. math::

        r = \sigma\!\left(-\frac{D_{\text{after}} - D_{\text{before}}}
                               {\tau \cdot (D_{\text{before}} + D_0)}\right),

    where :math:`D` is the mean over the minibatch of the divergence of the
    network's outputs from the unpruned network's on the same rows (the
    ``"fidelity"`` metric of :func:`sample_metric`: KL divergence of the
    predicted class distributions, in nats, or the mean squared output
    difference), before and after the pull's removal. For single pulls
    :math:`D_{\text{before}} = 0` and the scale is :math:`\tau D_0`; for
    pulls in company (``pull="company"``) the change is relative to how far
    the rest of the plan already moved the outputs, so the reward does not
    saturate when most units are planned away. A unit whose removal changes
    nothing gets 0.5, as with :class:`LossReward`. Unlike the loss against
    the labels, this stays informative on data the network fits almost
    perfectly (its training set), where removing a unit barely moves a
    near-zero loss but does move the function the network computes.

    Parameters
    ----------
    temperature : float, default=0.5
        :math:`\tau`: relative divergence change that moves the reward by one
        logit.
    floor : float, default=0.01
        :math:`D_0` (nats, or squared output units).

    Examples
    --------
    >>> import numpy as np
    >>> reward = FidelityReward(temperature=1.0, floor=0.1)
    >>> base, masked = np.array([0.0, 0.0, 0.9]), np.array([0.0, 0.1, 1.9])
    >>> reward(base, masked).round(4)
    array([0.5   , 0.2689, 0.2689])
    """

    metric = "fidelity"

    def __init__(self, temperature=0.5, floor=0.01):
        for name, value in (("temperature", temperature), ("floor", floor)):
            if not (isinstance(value, numbers.Real) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}.")
        self.temperature = temperature
        self.floor = floor

    def __call__(self, base, masked):
        base = np.asarray(base, dtype=float)
        change = np.asarray(masked, dtype=float) - base
        scale = self.temperature * (np.maximum(base, 0.0) + self.floor)
        return 0.5 * (1.0 + np.tanh(-change / scale / 2.0))

    def __repr__(self):
        return f"FidelityReward(temperature={self.temperature}, floor={self.floor})"


_REWARDS = {"loss": LossReward, "accuracy": AccuracyReward, "fidelity": FidelityReward}


def make_reward(spec):
    """Build a reward from a name (``"loss"``, ``"accuracy"``, ``"fidelity"``)
    or return an object.

    Parameters
    ----------
    spec : {"fidelity", "loss", "accuracy"} or reward object
        A name builds :class:`FidelityReward`, :class:`LossReward` or
        :class:`AccuracyReward` with their defaults. Any object with a
        ``metric`` attribute (``"loss"``, ``"accuracy"`` or ``"fidelity"``)
        and a ``__call__(base, masked) -> rewards in [0, 1]`` is returned as
        is.
    """
    if isinstance(spec, str):
        if spec not in _REWARDS:
            raise ValueError(
                f"Unknown reward {spec!r}; use one of {sorted(_REWARDS)} or a "
                "reward object."
            )
        return _REWARDS[spec]()
    if callable(spec) and getattr(spec, "metric", None) in _REWARDS:
        return spec
    raise TypeError(
        "reward must be 'loss', 'accuracy', 'fidelity' or an object with a `metric` "
        f"attribute and __call__(base, masked); got {spec!r}."
    )
