"""The one registry of pruning option names and defaults.

Every place that accepts a pruning option — the estimators'
``_parameter_constraints``, :func:`skbandit.pruning.prune`, the bandit scorer,
the benchmark method names and the command line — reads its valid values and
its default from here, so that they cannot drift apart (the constraints
built from these names, and their one check, are in
:mod:`skbandit._validation`). The module imports
neither torch nor scikit-learn (only the numpy-only policies), so listing
names stays cheap.
"""

import dataclasses
import numbers

from .policies import BEST_SET_POLICIES, POLICIES

__all__ = [
    "UNPRUNED",
    "POLICY_NAMES",
    "BASELINE_NAMES",
    "METHOD_NAMES",
    "COMPENSATIONS",
    "PULLS",
    "REWARDS",
    "SCOPES",
    "PRIORS",
    "MAX_BUDGET",
    "PruningDefaults",
    "DEFAULTS",
    "ESTIMATOR_POLICY",
    "recorded_defaults",
    "PAPER_SETTINGS",
    "check_prune_ratio",
]

#: ``policy="none"``: train, do not prune.
UNPRUNED = "none"
#: Bandit policies, by the name ``policy=`` accepts: regret-minimising ones,
#: then the uniform control and the best-set identification ones.
POLICY_NAMES = (*POLICIES, *BEST_SET_POLICIES)
#: Deterministic (or random) scorers that rank units without a bandit.
BASELINE_NAMES = ("magnitude", "activation", "random", "obs")
#: Every name ``policy=`` accepts.
METHOD_NAMES = (UNPRUNED, *POLICY_NAMES, *BASELINE_NAMES)
#: What replaces a removed unit's contribution in its consumer.
COMPENSATIONS = ("none", "mean", "lstsq")
#: One unit on top of the current removal plan, one unit alone, or a whole
#: removal-sized set.
PULLS = ("company", "single", "set")
#: What a pull measures.
REWARDS = ("fidelity", "loss", "accuracy")
#: Where ``prune_ratio`` applies: each layer, or all units together.
SCOPES = ("layer", "global")
#: Closed-form scores ``prior=`` may start the bandits from (or None).
PRIORS = ("obs", "magnitude")

#: Most pulls per unit ``budget`` and ``max_budget`` may ask for. A unit's
#: estimate is a mean of its rewards, whose noise shrinks as one over the
#: square root of its pulls: at 1000 pulls it is about 3% of a single
#: pull's, and more only multiplies the run time (``budget=1e7`` would run
#: for days), which is far more likely a typo than an intent.
MAX_BUDGET = 1000


@dataclasses.dataclass(frozen=True)
class PruningDefaults:
    """Default pruning settings shared by the estimators and ``prune()``.

    The estimators name the pull batch ``pull_batch_size`` (``batch_size``
    is their training batch); :func:`~skbandit.pruning.prune` calls it
    ``batch_size``.
    """

    policy: str = "ucb1"
    prune_ratio: float = 0.5
    budget: float = 10
    max_budget: float = 50
    pull: str = "company"
    n_rounds: int = 1
    target_params: float = None
    target_latency: float = None
    reward: str = "fidelity"
    scope: str = "layer"
    compensate: str = "lstsq"
    pull_batch_size: int = 256
    arms_per_round: int = None
    prior: str = None
    prior_weight: int = 2
    fine_tune_epochs: int = 5


#: The defaults every signature reads (``budget=DEFAULTS.budget``).
DEFAULTS = PruningDefaults()


def recorded_defaults():
    """The pruning defaults a results store records in its protocol.

    Every field of :data:`DEFAULTS`, except ``prior`` and ``prior_weight``
    while ``prior`` is None: then they change no result, and leaving them
    out keeps the stores written before priors existed resumable.

    Examples
    --------
    >>> "prior_weight" in recorded_defaults()
    False
    """
    recorded = dataclasses.asdict(DEFAULTS)
    if recorded["prior"] is None:
        del recorded["prior"], recorded["prior_weight"]
    return recorded


#: The estimators' default ``policy``: greedy OBS with the least-squares
#: refit. ``benchmarks/bandit_check.py`` chose it on its tuning split by a
#: rule fixed before the run (the lowest mean drop at 75 % and 90 % among
#: the configurations whose median prune time is at most twice OBS's): no
#: bandit configuration was within that time (UCB1 at 10 pulls per unit took
#: 13x OBS's). ``prune()`` uses it too where every group's consumer is
#: refittable and ``DEFAULTS.policy``, a bandit, elsewhere (its
#: ``policy=None``, see :func:`skbandit.pruning.default_policy`).
ESTIMATOR_POLICY = "obs"

#: The configuration of Ameen & Vadera: UCB1 over single-unit pulls that zero
#: the unit, rewarded by the loss change, no compensation, one round. Pass it
#: as ``prune(model, X, y, **PAPER_SETTINGS)`` or
#: ``BanditPrunedMLPClassifier(**PAPER_SETTINGS)``; benchmarks name it
#: ``"paper@<ratio>"``.
PAPER_SETTINGS = {
    "policy": "ucb1",
    "reward": "loss",
    "pull": "single",
    "compensate": "none",
    "n_rounds": 1,
    "budget": 10,
}


def check_prune_ratio(ratio, name="prune_ratio"):
    """``ratio`` as a float in [0, 1), or a ValueError naming ``name``.

    Examples
    --------
    >>> check_prune_ratio(0.25)
    0.25
    >>> check_prune_ratio(1.0)
    Traceback (most recent call last):
    ...
    ValueError: prune_ratio must be in [0, 1), got 1.0.
    """
    if not (isinstance(ratio, numbers.Real) and 0 <= ratio < 1):
        raise ValueError(f"{name} must be in [0, 1), got {ratio!r}.")
    return float(ratio)
