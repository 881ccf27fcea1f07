"""Bandit policies: which arms (candidate neurons) to pull next.

Small numpy-only classes sharing one protocol (see :class:`BasePolicy`):
``reset(n_arms, rng)``, ``select(k)``, ``update(arms, rewards)`` and the
removal ranking ``estimates_``. They know nothing of torch and can be used on
any bandit problem with rewards in ``[0, 1]``.

- Value-based: :class:`EpsilonGreedy`, :class:`Softmax`, :class:`UCB1`,
  :class:`ThompsonSampling` (Beta-Bernoulli), :class:`GaussianThompson`
  (Normal posterior on continuous rewards).
- Multiplicative weights: :class:`Hedge` (full information), :class:`EXP3`.
- Pure exploration (which ``n_select`` arms are best, under a budget):
  :class:`Uniform` (round robin, the control), :class:`SuccessiveAcceptsRejects`
  (fixed budget) and :class:`LUCB` (fixed confidence, stops when ``done_``).
"""

from ._base import BasePolicy
from ._best_set import LUCB, SuccessiveAcceptsRejects, Uniform, sar_phase_lengths
from ._registry import BEST_SET_POLICIES, POLICIES, make_policy
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
    "Uniform",
    "SuccessiveAcceptsRejects",
    "LUCB",
    "sar_phase_lengths",
    "POLICIES",
    "BEST_SET_POLICIES",
    "make_policy",
]
