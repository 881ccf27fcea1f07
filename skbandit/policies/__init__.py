"""Bandit policies: which arms (candidate neurons) to pull next.

Small numpy-only classes sharing one protocol (see :class:`BasePolicy`):
``reset(n_arms, rng)``, ``select(k)``, ``update(arms, rewards)`` and the
removal ranking ``estimates_``. They know nothing of torch and can be used on
any bandit problem with rewards in ``[0, 1]``.

- Value-based: :class:`EpsilonGreedy`, :class:`Softmax`, :class:`UCB1`,
  :class:`ThompsonSampling` (Beta-Bernoulli), :class:`GaussianThompson`
  (Normal posterior on continuous rewards).
- Multiplicative weights: :class:`Hedge` (full information), :class:`EXP3`.
"""

from ._base import BasePolicy
from ._registry import POLICIES, make_policy
from ._value import UCB1, EpsilonGreedy, GaussianThompson, Softmax, ThompsonSampling
from ._weights import EXP3, Hedge

__all__ = [
    "BasePolicy",
    "EpsilonGreedy",
    "Softmax",
    "UCB1",
    "ThompsonSampling",
    "GaussianThompson",
    "Hedge",
    "EXP3",
    "POLICIES",
    "make_policy",
]
