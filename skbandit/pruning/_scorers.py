"""Scorers: how safe each unit is to remove (higher score = remove first).

The bandit scorer learns the score from pulls; the baselines compute it from
the weights (``magnitude``), the activations (``activation``) or not at all
(``random``). All share one interface, so the removal step and the reports do
not care which produced the scores.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from ..policies import POLICIES, make_policy
from ._pulls import evaluate_arms, trace
from ._rewards import make_reward, sample_metric

__all__ = [
    "Scores",
    "BanditScorer",
    "MagnitudeScorer",
    "ActivationScorer",
    "RandomScorer",
    "BASELINES",
    "METHODS",
    "make_scorer",
    "unit_means",
]


@dataclass
class Scores:
    """Per-group removal scores and, for bandits, how often each unit was pulled."""

    scores: list
    pulls: list = None


class _Arena:
    """One bandit over the units of one or more groups (per-layer or global scope)."""

    def __init__(self, group_ids, groups, policy, rng, arms_per_round, budget):
        sizes = [groups[g].size for g in group_ids]
        self.group_ids = group_ids
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.policy = make_policy(policy).reset(int(self.offsets[-1]), rng)
        n_arms = self.policy.n_arms_
        self.k = min(n_arms, arms_per_round or max(1, math.ceil(n_arms / 8)))
        self.total = max(1, math.ceil(budget * n_arms))
        self.pulls = 0

    @property
    def done(self):
        return self.pulls >= self.total

    def select(self):
        k = min(self.k, self.total - self.pulls)
        arms = self.policy.select(k)
        self.pulls += len(arms)
        return arms

    def split(self, arms):
        """``(group_id, unit indices, positions in arms)`` per touched group."""
        which = np.searchsorted(self.offsets, arms, side="right") - 1
        for i in np.unique(which):
            positions = np.flatnonzero(which == i)
            yield self.group_ids[i], arms[positions] - self.offsets[i], positions

    def per_group(self, values):
        return [values[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]


class BanditScorer:
    """Score units by a multi-armed bandit over masked-unit pulls.

    Each round every bandit (one per layer, or one for the whole network)
    selects arms, a minibatch is sampled, the network is traced once, every
    selected unit is masked in turn (batched, see
    :func:`~skbandit.pruning.evaluate_arms`) and the metric change is turned
    into a reward in ``[0, 1]``. The score of a unit is the policy's
    ``estimates_``.

    Parameters
    ----------
    policy : str or policy object
        See :func:`skbandit.policies.make_policy`.
    budget : float, default=10
        Average pulls per arm: a bandit over ``n`` arms stops after
        ``ceil(budget * n)`` pulls.
    batch_size : int, default=256
        Minibatch size of a pull (capped at the number of samples).
    reward : {"loss", "accuracy"} or reward object, default="loss"
        See :class:`LossReward` and :class:`AccuracyReward`.
    scope : {"layer", "global"}, default="layer"
        One bandit per layer, or one over all units.
    arms_per_round : int, default=None
        Arms a bandit pulls per round (one minibatch); ``None`` means an
        eighth of its arms, rounded up.
    fill : {"zero", "mean"}, default="zero"
        What a pulled unit is replaced with: ``0`` (removal without
        compensation) or its mean activation (removal with ``compensate="mean"``).
    """

    def __init__(
        self,
        policy,
        budget=10,
        batch_size=256,
        reward="loss",
        scope="layer",
        arms_per_round=None,
        fill="zero",
    ):
        self.policy = policy
        self.budget = budget
        self.batch_size = batch_size
        self.reward = reward
        self.scope = scope
        self.arms_per_round = arms_per_round
        self.fill = fill

    def _check(self):
        if not (isinstance(self.budget, numbers.Real) and self.budget > 0):
            raise ValueError(f"budget must be a number > 0, got {self.budget!r}.")
        if self.scope not in ("layer", "global"):
            raise ValueError(f"scope must be 'layer' or 'global', got {self.scope!r}.")
        if self.fill not in ("zero", "mean"):
            raise ValueError(f"fill must be 'zero' or 'mean', got {self.fill!r}.")

    def score(self, model, groups, X, y, loss_fn, rng):
        """Run the bandits; return :class:`Scores` with pulls per unit."""
        self._check()
        reward = make_reward(self.reward)
        metric = sample_metric(reward.metric, loss_fn)
        fills = (
            unit_means(model, groups, X)
            if self.fill == "mean"
            else [None] * len(groups)
        )
        ids = (
            [list(range(len(groups)))]
            if self.scope == "global"
            else [[i] for i in range(len(groups))]
        )
        arenas = [
            _Arena(g, groups, self.policy, rng, self.arms_per_round, self.budget)
            for g in ids
        ]
        n_samples = X.shape[0]
        while not all(a.done for a in arenas):
            rows = torch.as_tensor(
                rng.choice(
                    n_samples, size=min(self.batch_size, n_samples), replace=False
                )
            )
            xb, yb = X[rows], y[rows]
            tr = trace(model, xb)
            base = metric(tr.output if tr else model(xb), yb).mean().item()
            for arena in arenas:
                if arena.done:
                    continue
                arms = arena.select()
                values = np.empty(len(arms))
                for g, units, positions in arena.split(arms):
                    values[positions] = (
                        evaluate_arms(
                            model, groups[g], units, xb, yb, metric, fills[g], tr
                        )
                        .cpu()
                        .numpy()
                    )
                arena.policy.update(arms, reward(base, values))
        return _collect(arenas, len(groups))


def _collect(arenas, n_groups):
    scores, pulls = [None] * n_groups, [None] * n_groups
    for arena in arenas:
        est = arena.per_group(np.asarray(arena.policy.estimates_, dtype=float))
        counts = arena.per_group(np.asarray(arena.policy.counts_))
        for g, s, c in zip(arena.group_ids, est, counts):
            scores[g], pulls[g] = s, c
    return Scores(scores, pulls)


@torch.no_grad()
def _consumer_inputs(model, groups, X):
    """Input of each group's (first) consumer on ``X``, units along dim 1."""
    captured = {}
    handles = []
    for i, group in enumerate(groups):
        module = model.get_submodule(group.consumers[0])

        def hook(module, args, i=i, dim=group.feature_dim):
            captured[i] = (
                args[0].movedim(dim, 1).flatten(2) if args[0].dim() > 2 else args[0]
            )

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
    """Mean activation of every unit on ``X``, as each consumer reads it."""
    return [
        _reduce_units(a, lambda t, d: t.mean(d))
        for a in _consumer_inputs(model, groups, X)
    ]


class MagnitudeScorer:
    """Baseline: remove units whose incoming weights have the smallest L2 norm."""

    def score(self, model, groups, X, y, loss_fn, rng):
        scores = []
        for group in groups:
            weight = model.get_submodule(group.producers[0]).weight
            scores.append(-weight.detach().flatten(1).norm(dim=1).cpu().numpy())
        return Scores(scores)


class ActivationScorer:
    """Baseline: remove units whose activations vary least on the data (std)."""

    def score(self, model, groups, X, y, loss_fn, rng):
        acts = _consumer_inputs(model, groups, X)
        return Scores(
            [-_reduce_units(a, lambda t, d: t.std(d)).cpu().numpy() for a in acts]
        )


class RandomScorer:
    """Baseline: remove units chosen uniformly at random."""

    def score(self, model, groups, X, y, loss_fn, rng):
        return Scores([rng.random(group.size) for group in groups])


BASELINES = {
    "magnitude": MagnitudeScorer,
    "activation": ActivationScorer,
    "random": RandomScorer,
}


#: Every method name ``policy`` accepts: the bandits, the baselines, "none".
METHODS = ("none", *POLICIES, *BASELINES)


def make_scorer(policy, **bandit_params):
    """A scorer for a policy name or object, a baseline name or a scorer.

    Returns ``None`` for ``"none"`` (no pruning).
    """
    if isinstance(policy, str):
        if policy not in METHODS:
            raise ValueError(f"Unknown policy {policy!r}; use one of {list(METHODS)}.")
        if policy == "none":
            return None
        if policy in BASELINES:
            return BASELINES[policy]()
    elif hasattr(policy, "score"):
        return policy
    return BanditScorer(make_policy(policy), **bandit_params)
