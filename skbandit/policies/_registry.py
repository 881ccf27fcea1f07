"""Policy names and :func:`make_policy`, which turns a user's spec into a policy."""

import copy

from ._base import BasePolicy
from ._best_set import LUCB, SuccessiveAcceptsRejects, Uniform
from ._value import UCB1, EpsilonGreedy, GaussianThompson, Softmax, ThompsonSampling
from ._weights import EXP3, Hedge

__all__ = ["POLICIES", "BEST_SET_POLICIES", "make_policy"]

#: Name -> regret-minimising policy class (``reset(n_arms, rng)`` suffices).
POLICIES = {
    "epsilon_greedy": EpsilonGreedy,
    "softmax": Softmax,
    "ucb1": UCB1,
    "thompson": ThompsonSampling,
    "gaussian_thompson": GaussianThompson,
    "hedge": Hedge,
    "exp3": EXP3,
}

#: Name -> pure-exploration policy class: ``uniform`` (the control) and the
#: best-set identification policies, which need ``reset(..., n_select=)``
#: (and SAR a ``budget``). ``policy=`` accepts these names too.
BEST_SET_POLICIES = {
    "uniform": Uniform,
    "sar": SuccessiveAcceptsRejects,
    "lucb": LUCB,
}

_ALL_POLICIES = {**POLICIES, **BEST_SET_POLICIES}

_PROTOCOL = ("reset", "select", "update")


def make_policy(spec):
    """Return a fresh, not yet reset policy built from ``spec``.

    Parameters
    ----------
    spec : str or policy
        A name from :data:`POLICIES` or :data:`BEST_SET_POLICIES` (the
        policy with default hyper-parameters), or a policy object: a
        :class:`BasePolicy` or any object with ``reset``, ``select`` and
        ``update`` methods. An object is never used or mutated: the result is
        a new instance built from its ``get_params(deep=False)`` (like
        :func:`sklearn.base.clone`), or a deep copy if it has no
        ``get_params``.

    Returns
    -------
    policy : BasePolicy or duck-typed policy
        Call ``policy.reset(n_arms, rng)`` before using it.

    Raises
    ------
    ValueError
        If ``spec`` is a string that is not a policy name; the message lists
        the valid names.
    TypeError
        If ``spec`` is neither a string nor a policy object.

    Examples
    --------
    >>> from skbandit.policies import EXP3, make_policy
    >>> make_policy("ucb1")
    UCB1(c=1.4142135623730951, initial_value=0.5)
    >>> mine = EXP3(gamma=0.2)
    >>> fresh = make_policy(mine)
    >>> fresh, fresh is mine
    (EXP3(gamma=0.2), False)
    """
    if isinstance(spec, str):
        if spec not in _ALL_POLICIES:
            raise ValueError(
                f"Unknown policy {spec!r}. Valid names are: {sorted(_ALL_POLICIES)}."
            )
        return _ALL_POLICIES[spec]()
    if isinstance(spec, type) or not _is_policy(spec):
        raise TypeError(
            f"policy must be one of the names {sorted(_ALL_POLICIES)} or a policy "
            f"object with methods {', '.join(_PROTOCOL)}; got {spec!r}."
        )
    if hasattr(spec, "get_params"):
        return type(spec)(**spec.get_params(deep=False))
    return copy.deepcopy(spec)


def _is_policy(obj):
    """Whether ``obj`` implements the policy protocol (by subclass or duck typing)."""
    return isinstance(obj, BasePolicy) or all(
        callable(getattr(obj, name, None)) for name in _PROTOCOL
    )
