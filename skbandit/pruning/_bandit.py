"""The bandit scorer: learn how safe each unit is to remove from masked pulls.

Each round every bandit (one per layer, or one for the whole network)
selects arms, a minibatch is sampled and the network traced once. A *single*
pull removes one unit (batched, see :func:`~skbandit.pruning.evaluate_arms`);
a *company* pull removes one unit on top of the rest of the bandit's current
removal plan (:func:`~skbandit.pruning.evaluate_company`), its marginal cost
in the company it will be removed with; a *set* pull removes all selected
units together, the combinatorial feedback of removing them at once. A unit
is removed as removal will do it: zeroed, mean-filled, or with the
least-squares refit of its consumer. The metric change becomes a reward in
``[0, 1]``, the policy learns from it, and a unit's score is the policy's
``estimates_``.

The budget is either fixed (``budget`` pulls per arm on average) or
``"auto"``: a bandit stops as soon as the units it would remove and the ones
it would keep are separated by confidence bounds (LUCB-style), or at
``max_budget`` pulls per arm. A policy that takes the context
(``takes_context``) is told how many units its bandit removes
(``n_select``), the pulls it will make (``budget``) and, with ``prior``,
prior means from a closed-form score; a best-set policy (``best_set``)
stops its bandit early once it says ``done_``.
"""

import math
import warnings
from numbers import Real
from statistics import NormalDist

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from .._options import DEFAULTS, MAX_BUDGET, PAPER_SETTINGS
from .._validation import BANDIT_POLICY, Names, check_options, option_constraints
from ..policies import make_policy
from ._compensation import COMPENSATION
from ._masking import masked, refitted
from ._obs import consumer_refits
from ._pulls import company_batched, evaluate_arms, evaluate_company, trace
from ._rewards import make_reward, sample_metric
from ._scorers import BASELINES, Scores, unit_means
from ._selection import removals_by_count

#: The deprecated ``fill`` names of the scorer's ``compensate`` values.
_FILLS = {"zero": "none", "mean": "mean", "lstsq": "lstsq"}

__all__ = ["BanditScorer", "MAX_BUDGET"]


class _Arena:
    """One bandit over the units of one or more groups, and its bookkeeping."""

    def __init__(self, group_ids, sizes, policy, rng, scorer, n_remove, prior=None):
        self.group_ids = group_ids
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        n_arms = int(self.offsets[-1])
        self.k = min(n_arms, scorer.arms_per_round or max(1, math.ceil(n_arms / 8)))
        per_arm = scorer.max_budget if scorer.budget == "auto" else scorer.budget
        self.total = math.ceil(per_arm * n_arms)
        self.policy = make_policy(policy)
        if getattr(self.policy, "takes_context", False):
            self.policy.reset(
                n_arms,
                rng,
                # Unknown counts (a parameter target): half, as set pulls do.
                n_select=n_remove if n_remove is not None else n_arms // 2,
                budget=self.total,
                prior_means=prior,
                prior_weight=scorer.prior_weight,
            )
        elif prior is not None:
            raise ValueError(
                f"prior={scorer.prior!r} needs a policy whose reset takes prior "
                f"means (takes_context = True); {type(self.policy).__name__} "
                "does not."
            )
        else:
            self.policy.reset(n_arms, rng)
        self.best_set = getattr(self.policy, "best_set", False)
        self.auto = scorer.budget == "auto"
        self.confidence = scorer.confidence
        self.n_remove = n_remove
        self.set_size = max(1, n_remove if n_remove else n_arms // 2)
        self.counts = np.zeros(n_arms, dtype=np.int64)
        self.sums = np.zeros(n_arms)
        self.squares = np.zeros(n_arms)
        self.history = []
        self.set_changes = []
        self.settled = False

    @property
    def pulls(self):
        return int(self.counts.sum())

    @property
    def done(self):
        identified = self.best_set and self.policy.done_
        return self.settled or identified or self.pulls >= self.total

    def select(self, pull):
        if pull == "set":
            # Always a whole set: a smaller last set would change the loss
            # less and look better than every earlier one.
            k = self.set_size
        else:
            k = max(1, min(self.k, self.total - self.pulls))
        return _checked_arms(self.policy, self.policy.select(k), self.counts.size)

    def set_reward(self, change):
        """Reward of a set pull: the share of earlier sets it beat.

        Removing many units at once changes the loss so much that any fixed
        mapping to ``[0, 1]`` saturates and every set looks equally bad; the
        rank of this set's loss change among the arena's earlier ones (0.5
        for the first, ties counting half) keeps the sets comparable.
        """
        past = np.asarray(self.set_changes)
        self.set_changes.append(change)
        if past.size == 0:
            return 0.5
        return float(np.mean(past > change) + 0.5 * np.mean(past == change))

    def learn(self, arms, rewards, replay=False):
        if replay:
            getattr(self.policy, "warm_start", self.policy.update)(arms, rewards)
            return
        self.policy.update(arms, rewards)
        self.history.append((arms, rewards))
        np.add.at(self.counts, arms, 1)
        np.add.at(self.sums, arms, rewards)
        np.add.at(self.squares, arms, np.square(rewards))
        if self.auto:
            self.settled = _separated(
                self.counts, self.sums, self.squares, self.n_remove, self.confidence
            )

    def plan(self):
        """Units the bandit would remove now, per group of the arena (empty
        until every arm has been pulled once)."""
        if not self.n_remove or self.counts.min() == 0:
            return [np.array([], dtype=int) for _ in self.group_ids]
        estimates = np.asarray(self.policy.estimates_, dtype=float)
        return removals_by_count(self.per_group(estimates), int(self.n_remove))

    def split(self, arms):
        """``(group_id, unit indices, positions in arms)`` per touched group."""
        which = np.searchsorted(self.offsets, arms, side="right") - 1
        for i in np.unique(which):
            positions = np.flatnonzero(which == i)
            yield self.group_ids[i], arms[positions] - self.offsets[i], positions

    def per_group(self, values):
        return [values[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]


def _checked_arms(policy, arms, n_arms):
    """The arms a policy selected, checked: a user's policy may return
    anything, and an arm that is not a unit index must not reach the pulls."""
    arms = np.asarray(arms)
    valid = arms.ndim == 1 and arms.size > 0 and arms.dtype.kind in "iu"
    if not valid or arms.min() < 0 or arms.max() >= n_arms:
        raise ValueError(
            f"policy {type(policy).__name__}.select returned {arms!r}; it must "
            f"return a non-empty 1-d array of integer arms in [0, {n_arms})."
        )
    return arms


#: Smallest reward standard deviation a confidence bound assumes: a unit
#: whose few rewards happen to agree is not yet known exactly.
_MIN_STD = 0.02
#: Pulls an arm needs before its confidence bound counts.
_MIN_PULLS = 3


def _separated(counts, sums, squares, n_remove, confidence):
    r"""Whether the top ``n_remove`` arms are settled (LUCB-style stopping).

    Each arm's mean reward gets the bound :math:`\hat\mu_i \pm z\,
    \max(s_i, s_{\min}) / \sqrt{n_i}` with the Bonferroni-corrected normal
    quantile :math:`z = \Phi^{-1}(1 - \delta / (2n))`. The split is settled
    when the lowest lower bound among the arms that would be removed exceeds
    the highest upper bound among the others.
    """
    n = counts.size
    if not n_remove or n_remove >= n:
        return True
    if counts.min() < _MIN_PULLS:
        return False
    means = sums / counts
    std = np.sqrt(np.maximum(squares / counts - means**2, 0.0))
    z = NormalDist().inv_cdf(1 - confidence / (2 * n))
    radius = z * np.maximum(std, _MIN_STD) / np.sqrt(counts)
    order = np.argsort(-means, kind="stable")
    top, rest = order[:n_remove], order[n_remove:]
    return (means[top] - radius[top]).min() > (means[rest] + radius[rest]).max()


#: What :class:`BanditScorer` accepts: the shared option constraints, under
#: its names, and its own ``confidence`` and deprecated ``fill``.
_CONSTRAINTS = option_constraints(
    "budget",
    "pull_batch_size",
    "reward",
    "scope",
    "arms_per_round",
    "compensate",
    "pull",
    "max_budget",
    "prior",
    "prior_weight",
    renamed={"pull_batch_size": "batch_size"},
    policy=BANDIT_POLICY,
    confidence=[Interval(Real, 0, 1, closed="neither")],
    fill=[Names(set(_FILLS)), None],
)


class BanditScorer:
    """Score units by a multi-armed bandit over masked-unit pulls.

    Parameters
    ----------
    policy : str or policy object
        See :func:`skbandit.policies.make_policy`.
    budget : float in [1, MAX_BUDGET] or "auto", default=10
        Average pulls per arm (a bandit over ``n`` arms stops after
        ``ceil(budget * n)`` pulls), or ``"auto"``: stop when the removal
        split is settled (the LUCB-style rule of the module docstring) or
        after ``max_budget``. At least one pull per arm (fewer would leave
        arms unmeasured), at most :data:`MAX_BUDGET` (1000).
    batch_size : int, default=256
        Minibatch size of a pull (capped at the number of samples).
    reward : {"loss", "accuracy", "fidelity"} or reward object, default="loss"
        See :class:`LossReward`, :class:`AccuracyReward` and
        :class:`FidelityReward`.
    scope : {"layer", "global"}, default="layer"
        One bandit per layer, or one over all units.
    arms_per_round : int, default=None
        Arms a bandit pulls per round (one minibatch) in single pulls; ``None``
        means an eighth of its arms, rounded up.
    compensate : {"none", "mean", "lstsq"}, default="none"
        How a pulled unit is removed, as removal with the same
        ``compensate`` will remove it: replaced by ``0`` (``"none"``), by
        its mean activation (``"mean"``), or with the least-squares refit of
        its consumer (``"lstsq"``; the OBS downdate of
        :mod:`skbandit.pruning._obs`, batched as a rank-1 change). A group
        whose consumer is not a ``Linear`` layer reading one feature per
        unit (a convolution, channels through ``Flatten``) falls back to the
        mean fill under ``"lstsq"``.
    pull : {"single", "set", "company"}, default="single"
        ``"single"``: each pull masks one unit and its reward comes from
        ``reward``. ``"company"``: each pull removes one unit in the company
        of the units the bandit currently plans to remove (the top
        ``n_remove`` of its estimates, once every unit was pulled): its
        reward compares the network without the rest of that plan with and
        without the unit (see :func:`~skbandit.pruning.evaluate_company`), so
        a unit that is only harmless because a planned unit compensates for
        it stops looking safe. Batched for ``Linear`` consumers of an
        ``nn.Sequential``; other groups (convolutions, traced graphs) get
        single pulls. ``"set"``: each round masks the selected set of units
        together (as many as will be removed), and every unit of the set
        receives the set's reward: the fraction of the bandit's earlier sets
        whose removal changed the metric more (see ``_Arena.set_reward``).
    max_budget : float in [1, MAX_BUDGET], default=50
        Cap of pulls per arm when ``budget="auto"``.
    confidence : float in (0, 1), default=0.05
        Error probability ``delta`` of the automatic stopping rule.
    prior : {"obs", "magnitude"} or None, default=None
        Start every bandit from prior means computed in closed form: the
        greedy OBS order (:class:`~skbandit.pruning.OBSScorer`) or the
        weight magnitudes (:class:`~skbandit.pruning.MagnitudeScorer`),
        min-max scaled to ``[0, 1]`` over the bandit's units (1 = safest to
        remove), folded in as ``prior_weight`` pseudo-pulls per unit. The
        scale is the score's, not the reward's: the prior orders the units,
        its weight says how much that order counts against the pulls.
    prior_weight : int, default=2
        Pseudo-pulls of the prior per unit (an integer >= 0).
    fill : {"zero", "mean", "lstsq"}, default=None
        Deprecated name of ``compensate`` (``"zero"`` is
        ``compensate="none"``); given, it overrides ``compensate`` with a
        ``FutureWarning``.

    Notes
    -----
    Left at its defaults this is the plain scorer of the paper (single
    zero-fill pulls, loss reward); :func:`~skbandit.pruning.prune` and the
    estimators build it with the library's defaults instead (company pulls,
    fidelity reward, least-squares fill).
    """

    #: The constraints :meth:`score` checks (shared with prune() and the
    #: estimators, see :mod:`skbandit._validation`).
    _parameter_constraints = _CONSTRAINTS

    def __init__(
        self,
        policy,
        budget=DEFAULTS.budget,
        batch_size=DEFAULTS.pull_batch_size,
        reward=PAPER_SETTINGS["reward"],
        scope=DEFAULTS.scope,
        arms_per_round=DEFAULTS.arms_per_round,
        compensate=PAPER_SETTINGS["compensate"],
        pull=PAPER_SETTINGS["pull"],
        max_budget=DEFAULTS.max_budget,
        confidence=0.05,
        prior=DEFAULTS.prior,
        prior_weight=DEFAULTS.prior_weight,
        fill=None,
    ):
        self.policy = policy
        self.budget = budget
        self.batch_size = batch_size
        self.reward = reward
        self.scope = scope
        self.arms_per_round = arms_per_round
        self.compensate = compensate
        self.pull = pull
        self.max_budget = max_budget
        self.confidence = confidence
        self.prior = prior
        self.prior_weight = prior_weight
        self.fill = fill
        if fill is not None:
            warnings.warn(
                "BanditScorer(fill=...) is deprecated and will be removed: use "
                "compensate=, the name prune() and the estimators use "
                "(fill='zero' is compensate='none').",
                FutureWarning,
                stacklevel=2,
            )

    def _check(self):
        """Every setting, by the constraints :func:`prune` and the estimators
        share (:mod:`skbandit._validation`)."""
        check_options(self._parameter_constraints, vars(self), type(self).__name__)

    def _compensation(self):
        """``compensate``, or what the deprecated ``fill`` names."""
        return self.compensate if self.fill is None else _FILLS[self.fill]

    def score(self, model, groups, X, y, loss_fn, rng, n_remove=None, warm_start=None):
        """Run the bandits.

        Parameters
        ----------
        model, groups, X, y, loss_fn, rng
            As for every scorer.
        n_remove : list of int or int, default=None
            Units that will be removed, per group (``scope="layer"``) or in
            total (``"global"``): the split the automatic budget settles and
            the size of a set pull. ``None``: half of the units.
        warm_start : list of list of (ndarray, ndarray), default=None
            Per group, earlier rounds' ``(units, rewards)`` (unit indices in
            the current groups), replayed before pulling.

        Returns
        -------
        Scores
            With ``pulls`` per unit and ``history`` (per group, this run's
            rounds as ``(units, rewards)``).
        """
        self._check()
        reward = make_reward(self.reward)
        metric = sample_metric(reward.metric, loss_fn)
        # A pull removes a unit as removal with this compensation will.
        compensation = COMPENSATION[self._compensation()]
        fills = unit_means(model, groups, X) if compensation.fills else None
        refits = (
            consumer_refits(model, groups, X)
            if compensation.refits
            else [None] * len(groups)
        )
        priors = None
        if self.prior is not None:
            prior_scorer = BASELINES[self.prior]()
            priors = prior_scorer.score(
                model, groups, X, y, loss_fn, rng, n_remove=n_remove
            ).scores
        arenas = self._arenas(groups, rng, n_remove, priors)
        if warm_start is not None:
            _replay(arenas, warm_start)
        n_samples = X.shape[0]
        while not all(a.done for a in arenas):
            rows = rng.choice(
                n_samples, size=min(self.batch_size, n_samples), replace=False
            )
            rows = torch.as_tensor(rows, device=X.device)
            xb = X[rows]
            tr = trace(model, xb)
            output = tr.output if tr is not None else model(xb)
            # Fidelity compares with the unpruned network's own outputs.
            yb = output if reward.metric == "fidelity" else y[rows]
            # Company pulls measure before and after each removal themselves;
            # only single and set pulls compare with the unpruned network.
            if self.pull != "company":
                base = metric(output, yb).mean().item()
            for arena in arenas:
                if arena.done:
                    continue
                arms = arena.select(self.pull)
                if self.pull == "set":
                    value = _set_value(
                        model, groups, arena, arms, xb, yb, metric, fills, refits
                    )
                    rewards = np.full(len(arms), arena.set_reward(value - base))
                elif self.pull == "company":
                    before, after = _company_values(
                        model, groups, arena, arms, xb, yb, metric, fills, refits, tr
                    )
                    rewards = reward(before, after)
                else:
                    values = _single_values(
                        model, groups, arena, arms, xb, yb, metric, fills, refits, tr
                    )
                    rewards = reward(base, values)
                arena.learn(arms, rewards)
        return _collect(arenas, len(groups))

    def _arenas(self, groups, rng, n_remove, priors=None):
        sizes = [g.size for g in groups]
        if self.scope == "global":
            total = n_remove if n_remove is not None else sum(sizes) // 2
            spans = [(list(range(len(groups))), total)]
        else:
            counts = n_remove if n_remove is not None else [s // 2 for s in sizes]
            spans = [([g], counts[g]) for g in range(len(groups))]
        arenas = [
            _Arena(
                ids,
                [sizes[g] for g in ids],
                self.policy,
                rng,
                self,
                count,
                None if priors is None else _prior_means([priors[g] for g in ids]),
            )
            for ids, count in spans
        ]
        full_information = (
            getattr(a.policy, "full_information", False) for a in arenas
        )
        if self.pull == "set" and any(full_information):
            raise ValueError(
                "pull='set' needs a policy that selects a subset of the units; "
                "a full-information policy (Hedge) selects them all."
            )
        if self.pull == "set" and any(a.best_set for a in arenas):
            raise ValueError(
                "pull='set' needs whole sets each round; a best-set policy "
                "(sar, lucb) pulls only its undecided units."
            )
        return arenas


def _prior_means(scores):
    """A bandit's prior means: its units' closed-form scores (higher = safer
    to remove), min-max scaled to [0, 1]; 0.5 for all if they are equal."""
    scores = np.concatenate([np.asarray(s, dtype=float) for s in scores])
    span = scores.max() - scores.min()
    if not span > 0:
        return np.full(scores.size, 0.5)
    return (scores - scores.min()) / span


def _single_values(model, groups, arena, arms, xb, yb, metric, fills, refits, tr):
    values = np.empty(len(arms))
    for g, units, positions in arena.split(arms):
        fill = None if fills is None else fills[g]
        values[positions] = (
            evaluate_arms(
                model, groups[g], units, xb, yb, metric, fill, tr, refit=refits[g]
            )
            .cpu()
            .double()
            .numpy()
        )
    return values


def _company_values(model, groups, arena, arms, xb, yb, metric, fills, refits, tr):
    """Metric before and after each arm's removal in the company of the
    arena's current plan (see :func:`evaluate_company`)."""
    before, after = np.empty(len(arms)), np.empty(len(arms))
    plans = arena.plan()
    for g, units, positions in arena.split(arms):
        fill = None if fills is None else fills[g]
        plan = plans[arena.group_ids.index(g)]
        if company_batched(tr, groups[g]):
            b, a = evaluate_company(
                model, groups[g], units, plan, xb, yb, metric, fill, tr, refit=refits[g]
            )
        else:
            # Convolutions and traced graphs have no batched company path;
            # a naive loop would cost two forward passes per pull.
            a = evaluate_arms(
                model, groups[g], units, xb, yb, metric, fill, tr, refit=refits[g]
            )
            b = metric(tr.output if tr is not None else model(xb), yb).mean()
            b = b.expand(len(units))
        # float64 on the way out: numpy has no bfloat16.
        before[positions] = b.cpu().double().numpy()
        after[positions] = a.cpu().double().numpy()
    return before, after


def _set_value(model, groups, arena, arms, xb, yb, metric, fills, refits):
    """Metric with the set removed at once: refit consumers where there is a
    refit (each computed on the unpruned network), masks elsewhere."""
    masks, fill_values, removed, group_refits = {}, {}, {}, {}
    for g, units, _ in arena.split(np.unique(arms)):
        group = groups[g]
        if refits[g] is not None:
            removed[group], group_refits[group] = units, refits[g]
            continue
        keep = torch.ones(group.size, dtype=xb.dtype, device=xb.device)
        keep[torch.as_tensor(units, device=xb.device)] = 0
        masks[group] = keep
        if fills is not None:
            fill_values[group] = fills[g]
    with (
        masked(model, masks, fill_values or None),
        refitted(model, group_refits, removed),
    ):
        return metric(model(xb), yb).mean().item()


def _replay(arenas, warm_start):
    """Feed earlier rounds (per group) into each arena, round by round."""
    for arena in arenas:
        rounds = max((len(warm_start[g]) for g in arena.group_ids), default=0)
        for r in range(rounds):
            arms, rewards = [], []
            for i, g in enumerate(arena.group_ids):
                if r < len(warm_start[g]):
                    units, values = warm_start[g][r]
                    arms.append(np.asarray(units, dtype=int) + arena.offsets[i])
                    rewards.append(np.asarray(values, dtype=float))
            if arms and sum(a.size for a in arms):
                arena.learn(np.concatenate(arms), np.concatenate(rewards), replay=True)


def _collect(arenas, n_groups):
    scores, pulls = [None] * n_groups, [None] * n_groups
    history = [[] for _ in range(n_groups)]
    for arena in arenas:
        estimates = arena.per_group(np.asarray(arena.policy.estimates_, dtype=float))
        counts = arena.per_group(arena.counts)
        for g, s, c in zip(arena.group_ids, estimates, counts):
            scores[g], pulls[g] = s, c
        for arms, rewards in arena.history:
            pieces = {g: (u, rewards[p]) for g, u, p in arena.split(arms)}
            # One entry per round for every group, so rounds stay aligned.
            empty = (np.array([], dtype=int), np.array([]))
            for g in arena.group_ids:
                history[g].append(pieces.get(g, empty))
    return Scores(scores, pulls, history)
