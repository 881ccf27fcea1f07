"""From a ``policy`` argument to a scorer: one name space for every method."""

from .._options import METHOD_NAMES as METHODS
from .._options import UNPRUNED
from ..policies import make_policy
from ._bandit import BanditScorer
from ._scorers import BASELINES

__all__ = ["METHODS", "make_scorer"]


def make_scorer(policy, **bandit_params):
    """A scorer for a policy name or object, a baseline name or a scorer.

    Parameters
    ----------
    policy : str, policy object or scorer
        A name of :data:`METHODS` (``"none"``, a baseline or a bandit
        policy), a policy object (see :func:`skbandit.policies.make_policy`),
        or any object with a ``score`` method, returned as is.
    **bandit_params
        Passed to :class:`BanditScorer` for a bandit policy.

    Returns
    -------
    scorer or None
        ``None`` for ``"none"`` (no pruning).

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
        if policy == UNPRUNED:
            return None
        if policy in BASELINES:
            return BASELINES[policy]()
    elif hasattr(policy, "score"):
        return policy
    return BanditScorer(make_policy(policy), **bandit_params)
