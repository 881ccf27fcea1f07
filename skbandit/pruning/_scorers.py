"""Scorers: how safe each unit is to remove (higher score = remove first).

A scorer is any object with ``score(model, groups, X, y, loss_fn, rng,
**context) -> Scores``. The bandit scorer (:mod:`._bandit`) learns the scores
from pulls; the baselines here compute them from the weights
(``magnitude``), the activations (``activation``), the least-squares
refit of the next layer (``obs``) or not at all (``random``). The removal
step and the reports do not care which produced the scores.
"""

import copy
from dataclasses import dataclass

import numpy as np
import torch

from .._options import BASELINE_NAMES
from ._obs import Refit, consumer_gram, greedy_obs_order, refit_width, refittable
from ._streaming import chunk_rows
from ._surgery import RIDGE, remove_in_place
from ._units import unit_view, unit_weights

__all__ = [
    "Scores",
    "Removal",
    "MagnitudeScorer",
    "ActivationScorer",
    "RandomScorer",
    "OBSScorer",
    "BASELINES",
    "unit_means",
]


@dataclass
class Scores:
    """What a scorer returns, per group.

    Attributes
    ----------
    scores : list of ndarray
        Removal score of each unit (higher = remove first).
    pulls : list of ndarray or None
        Bandit pulls per unit (``None`` for baselines).
    history : list of list of (ndarray, ndarray) or None
        Bandit observations, per group and round: ``(units, rewards)``.
    removed : Removal or None
        The network with the removals these scores lead to, when the scorer
        had to build it anyway (``None`` for most scorers).
    """

    scores: list
    pulls: list = None
    history: list = None
    removed: "Removal" = None


@dataclass(frozen=True)
class Removal:
    """A pruned network a scorer built on its way, and how it was built.

    ``network`` is :func:`~skbandit.pruning.remove_units` of the scored
    model with ``removals``, ``compensate`` and ``ridge``; the removal step
    takes it instead of removing again when it would remove the same units
    the same way.

    Parameters
    ----------
    removals : list of ndarray of int
        Removed units, per group.
    compensate : {"none", "mean", "lstsq"}
    ridge : float
    network : torch.nn.Module
        The pruned network.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> removal = Removal([np.array([0, 2])], "lstsq", 1e-4, nn.Identity())
    >>> removal.matches([np.array([2, 0])], "lstsq")
    True
    >>> removal.matches([np.array([2, 0])], "mean")
    False
    """

    removals: list
    compensate: str
    ridge: float
    network: torch.nn.Module

    def matches(self, removals, compensate, ridge=RIDGE):
        """Whether removing ``removals`` with ``compensate`` and ``ridge``
        gives :attr:`network`."""
        return (
            compensate == self.compensate
            and ridge == self.ridge
            and len(removals) == len(self.removals)
            and all(
                np.array_equal(np.sort(a), np.sort(b))
                for a, b in zip(removals, self.removals)
            )
        )


@torch.no_grad()
def _consumer_inputs(model, groups, X):
    """Input of each group's (first) consumer on ``X``, units along dim 1."""
    captured = {}
    handles = []
    for i, group in enumerate(groups):
        module = model.get_submodule(group.consumers[0])

        def hook(module, args, i=i, group=group):
            x = args[0]
            # (samples, units) as read, or (samples, units, positions x width)
            plain = x.dim() == 2 and group.unit_width == 1
            captured[i] = x if plain else unit_view(x, group)

        handles.append(module.register_forward_pre_hook(hook))
    try:
        model(X)
    finally:
        for handle in handles:
            handle.remove()
    return [captured[i] for i in range(len(groups))]


def _reduce_units(acts, fn):
    """``fn`` over every axis but the unit axis (dim 1)."""
    if acts.dim() == 2:
        return fn(acts, 0)
    return fn(acts.transpose(0, 1).reshape(acts.shape[1], -1), 1)


def stream_rows(model, groups, X):
    """Rows of ``X`` per chunk so that every group's consumer input of a chunk
    fits in ``STREAM_ELEMENTS`` elements together (at least one row)."""
    return chunk_rows(sum(a.numel() for a in _consumer_inputs(model, groups, X[:1])))


def _moments(model, groups, X):
    """Per group and unit: (count, mean, sum of squared deviations), float64,
    merged over row chunks (Chan et al.'s parallel update)."""
    rows = stream_rows(model, groups, X)
    totals = None
    for start in range(0, X.shape[0], rows):
        acts = _consumer_inputs(model, groups, X[start : start + rows])
        chunk = [_chunk_moments(a) for a in acts]
        totals = chunk if totals is None else list(map(_merge, totals, chunk))
    return totals


def _chunk_moments(acts):
    # (units, values): every axis but the unit axis flattened.
    flat = _reduce_units(acts.double(), lambda t, d: t.movedim(d, -1))
    mean = flat.mean(-1)
    return flat.shape[-1], mean, ((flat - mean[:, None]) ** 2).sum(-1)


def _merge(left, right):
    (n_a, mean_a, m2_a), (n_b, mean_b, m2_b) = left, right
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * n_b / n, m2_a + m2_b + delta**2 * n_a * n_b / n


def _unit_statistic(model, groups, X, in_memory, from_moments):
    """A per-unit statistic: computed on all of ``X`` at once when it fits in
    one chunk, else merged from streamed moments (memory independent of
    the number of rows)."""
    if X.shape[0] <= stream_rows(model, groups, X):
        return [_reduce_units(a, in_memory) for a in _consumer_inputs(model, groups, X)]
    return [from_moments(*m).to(X.dtype) for m in _moments(model, groups, X)]


def unit_means(model, groups, X):
    """Mean activation of every unit on ``X``, as each consumer reads it.

    Parameters
    ----------
    model : torch.nn.Module
    groups : list of UnitGroup
        Unit groups of ``model`` (see :func:`find_unit_groups`).
    X : torch.Tensor
        The input samples.

    Returns
    -------
    means : list of torch.Tensor
        One tensor of shape ``(group.size,)`` per group.
    """
    return _unit_statistic(
        model, groups, X, lambda t, d: t.mean(d), lambda n, mean, m2: mean
    )


class MagnitudeScorer:
    """Baseline: remove units whose incoming weights have the smallest L2 norm."""

    def score(self, model, groups, X, y, loss_fn, rng, **context):
        return Scores(
            [-unit_weights(model, g).norm(dim=1).cpu().double().numpy() for g in groups]
        )


class ActivationScorer:
    """Baseline: remove units whose activations vary least on the data (std)."""

    def score(self, model, groups, X, y, loss_fn, rng, **context):
        stds = _unit_statistic(
            model,
            groups,
            X,
            lambda t, d: t.std(d),
            lambda n, mean, m2: (m2 / max(n - 1, 1)).sqrt(),
        )
        return Scores([-std.cpu().double().numpy() for std in stds])


class RandomScorer:
    """Baseline: remove units chosen uniformly at random."""

    def score(self, model, groups, X, y, loss_fn, rng, **context):
        return Scores([rng.random(group.size) for group in groups])


class OBSScorer:
    r"""Baseline: greedy structured optimal brain surgeon with least-squares refit.

    Layer by layer (forward order), the consumer's pre-activation is
    regressed on ``[H, 1]`` (ridge Gram matrix accumulated over row chunks of
    the pruning data), and units are removed one at a time, each the one
    whose removal least increases the refit's residual,
    :math:`\Delta\text{RSS}_j = \lVert\beta_j\rVert^2 / [G^{-1}]_{jj}`,
    downdating :math:`G^{-1}` and :math:`\beta` after each removal (see
    :func:`~skbandit.pruning.greedy_obs_order`). A unit's score is
    ``1 - position / size`` in that order, so every removal rule takes the
    greedy's first units (with ``scope="global"``, about the same fraction
    of every layer). When the counts per layer are known, the next layer is
    scored on the network with this layer's units already removed with
    ``compensate="lstsq"``, refit to the unpruned network's outputs, which
    is what :func:`~skbandit.pruning.remove_units` then does: use it with
    ``compensate="lstsq"`` (the scorer then hands the network it built to
    the removal step, which does not remove the units again).

    Units that span several input columns of the consumer's regression
    (attention heads: ``head_dim`` columns of the output projection, or the
    query heads of one key/value head under grouped-query attention; a
    channel read by a convolution: its kernel taps, the regression's rows
    being the unfolded patches) are removed whole, by the block form of the
    same cost and downdate.

    Deterministic: no pulls, no randomness. Needs every group to be read by
    one consumer that least squares refits (``nn.Linear``, GPT-2's
    ``Conv1D``, an ungrouped convolution with zero or no padding) and that
    reads only the group's units: hidden neurons of an MLP, feed-forward
    channels, attention heads, the channels of a plain CNN.

    Parameters
    ----------
    ridge : float, default=1e-4
        Ridge penalty of the refit, times the number of rows (the one of
        ``compensate="lstsq"``).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skbandit.pruning import prune
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> small, report = prune(net, X, y, policy="obs", compensate="lstsq")
    >>> small[0].out_features, report.total_pulls
    (4, 0)
    """

    def __init__(self, ridge=RIDGE):
        self.ridge = ridge

    def score(self, model, groups, X, y, loss_fn, rng, n_remove=None, **context):
        # Per-layer counts (scope="layer") let each layer be scored after the
        # previous ones are removed; a global count or a parameter target
        # does not say how many units each layer loses.
        per_layer = isinstance(n_remove, (list, tuple))
        working = copy.deepcopy(model) if per_layer else model
        scores, removals = [], []
        for g, group in enumerate(groups):
            if not refittable(model, group):
                raise ValueError(
                    "policy='obs' needs groups read by one consumer that "
                    "least squares refits (nn.Linear, GPT-2's Conv1D, an "
                    "ungrouped convolution) and that reads only their units, "
                    f"the same number of features each; {group.name!r} is not."
                )
            gram, cross = consumer_gram(
                working, group.consumers[0], X, target_model=model, ridge=self.ridge
            )
            refit = Refit.from_gram(gram, cross, refit_width(model, group))
            order, _ = greedy_obs_order(refit)
            scores.append(_order_scores(order, group.size))
            if per_layer:
                removals.append(np.sort(order[: n_remove[g]]))
                remove_in_place(
                    model, working, [group], removals[-1:], "lstsq", X, self.ridge
                )
        if not per_layer:
            return Scores(scores)
        return Scores(scores, removed=Removal(removals, "lstsq", self.ridge, working))


def _order_scores(order, size):
    """``1 - position / size`` along a removal order; the unit never removed
    (the last one left) gets the lowest score."""
    scores = np.zeros(size)
    scores[order] = 1.0 - np.arange(len(order)) / size
    return scores


BASELINES = dict(
    zip(
        BASELINE_NAMES,
        (MagnitudeScorer, ActivationScorer, RandomScorer, OBSScorer),
        strict=True,
    )
)
