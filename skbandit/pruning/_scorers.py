"""Scorers: how safe each unit is to remove (higher score = remove first).

A scorer is any object with ``score(model, groups, X, y, loss_fn, rng,
**context) -> Scores``. The bandit scorer (:mod:`._bandit`) learns the scores
from pulls; the baselines here compute them from the weights
(``magnitude``), the activations (``activation``) or not at all
(``random``). The removal step and the reports do not care which produced
the scores.
"""

from dataclasses import dataclass

import torch

from .._options import BASELINE_NAMES
from ._units import unit_view, unit_weights

__all__ = [
    "Scores",
    "MagnitudeScorer",
    "ActivationScorer",
    "RandomScorer",
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
    """

    scores: list
    pulls: list = None
    history: list = None


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
    return [
        _reduce_units(a, lambda t, d: t.mean(d))
        for a in _consumer_inputs(model, groups, X)
    ]


class MagnitudeScorer:
    """Baseline: remove units whose incoming weights have the smallest L2 norm."""

    def score(self, model, groups, X, y, loss_fn, rng, **context):
        return Scores(
            [-unit_weights(model, g).norm(dim=1).cpu().numpy() for g in groups]
        )


class ActivationScorer:
    """Baseline: remove units whose activations vary least on the data (std)."""

    def score(self, model, groups, X, y, loss_fn, rng, **context):
        acts = _consumer_inputs(model, groups, X)
        return Scores(
            [-_reduce_units(a, lambda t, d: t.std(d)).cpu().numpy() for a in acts]
        )


class RandomScorer:
    """Baseline: remove units chosen uniformly at random."""

    def score(self, model, groups, X, y, loss_fn, rng, **context):
        return Scores([rng.random(group.size) for group in groups])


BASELINES = dict(
    zip(BASELINE_NAMES, (MagnitudeScorer, ActivationScorer, RandomScorer), strict=True)
)
