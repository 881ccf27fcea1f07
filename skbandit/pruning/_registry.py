"""From a ``policy`` argument to a scorer: one name space for every method."""

from ..policies import POLICIES, make_policy
from ._bandit import BanditScorer
from ._scorers import BASELINES

__all__ = ["METHODS", "make_scorer"]

#: Every method name ``policy`` accepts: the bandits, the baselines, "none".
METHODS = ("none", *POLICIES, *BASELINES)


def make_scorer(policy, **bandit_params):
    """A scorer for a policy name or object, a baseline name or a scorer.

    Returns ``None`` for ``"none"`` (no pruning).

    Examples
    --------
    >>> make_scorer("magnitude")
    <skbandit.pruning._scorers.MagnitudeScorer object at ...>
    >>> make_scorer("ucb1", budget=5).budget
    5
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
