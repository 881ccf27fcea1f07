r"""Pure-exploration policies: identify the best ``n_select`` arms.

Pruning removes the ``n_select`` units with the highest safe-removal
reward. Which unit is *the* safest does not matter, only on which side of
the boundary between the ``n_select``-th and the next arm each unit lies: a
best-set (top-k) identification problem under a budget, not regret
minimisation. Regret-minimising policies (UCB1, Thompson) spend their extra
pulls on the safest arms, far from that boundary.

- :class:`Uniform`: round robin, the control every comparison needs;
- :class:`SuccessiveAcceptsRejects`: fixed budget (Bubeck, Wang &
  Viswanathan, 2013): phases that accept or reject the clearest arm and
  spend the rest on the undecided ones;
- :class:`LUCB`: fixed confidence (Kalyanakrishnan et al., 2012): pulls the
  two arms whose confidence intervals straddle the boundary most, and says
  ``done_`` once they no longer overlap.
"""

import math

import numpy as np

from ._base import BasePolicy, _check_real, _empirical_means, _round_robin

__all__ = ["Uniform", "SuccessiveAcceptsRejects", "LUCB", "sar_phase_lengths"]

#: Mean reward assumed for an arm never pulled (and without a prior): the
#: middle of the reward range.
_UNPULLED_MEAN = 0.5


class Uniform(BasePolicy):
    r"""Uniform allocation: every arm in turn, least-pulled first.

    Each round pulls the ``k`` arms with the fewest pulls, ties by lowest
    index, so after ``t`` pulls every arm has :math:`\lfloor t / K \rfloor`
    or :math:`\lceil t / K \rceil` pulls. It has no randomness and no
    hyper-parameter: it is the control an adaptive policy must beat with
    the same pulls.

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_ :
        See :class:`~skbandit.policies.BasePolicy`.
    estimates_ : ndarray of shape (n_arms_,)
        Empirical mean reward (prior pseudo-pulls included; 0.5 if never
        pulled).

    Examples
    --------
    >>> from skbandit.policies import Uniform
    >>> policy = Uniform().reset(n_arms=5, rng=0)
    >>> policy.select(3)
    array([0, 1, 2])
    >>> policy.update([0, 1, 2], [0.9, 0.1, 0.4])
    Uniform()
    >>> policy.select(3)
    array([3, 4, 0])
    """

    def _select(self, k):
        return _round_robin(self.counts_, k)

    def _estimates(self):
        return _empirical_means(self.counts_, self.sums_, _UNPULLED_MEAN)


class _BestSetPolicy(BasePolicy):
    """Shared protocol of the identification policies (``best_set``)."""

    best_set = True

    def _check_context(self, n_select, budget):
        if n_select is None:
            raise ValueError(
                f"{type(self).__name__} identifies the best n_select arms: "
                "call reset(n_arms, rng, n_select=...)."
            )

    def _init_state(self):
        self.done_ = False

    def _means(self):
        return _empirical_means(self.counts_, self.sums_, _UNPULLED_MEAN)

    def _forced(self):
        """Whether choosing ``n_select`` of the arms leaves no choice."""
        return self.n_select_ in (0, self.n_arms_)


def sar_phase_lengths(n_arms, budget):
    r"""Cumulative pulls per arm at the end of each phase of successive rejects.

    .. math::

        n_k = \left\lceil \frac{1}{\overline{\log}(K)}
              \frac{n - K}{K + 1 - k} \right\rceil, \qquad
        \overline{\log}(K) = \frac12 + \sum_{i=2}^{K} \frac1i,
        \qquad k = 1, \dots, K - 1,

    at least 1 (every arm is measured before it is decided). An arm still
    undecided in phase :math:`k` has :math:`n_k` pulls when it ends; the
    :math:`K - 1` phases spend at most :math:`n` pulls in all.

    Parameters
    ----------
    n_arms : int
        :math:`K`.
    budget : int
        :math:`n`, total pulls.

    Returns
    -------
    lengths : ndarray of shape (n_arms - 1,), dtype int

    Examples
    --------
    >>> sar_phase_lengths(4, 40)  # log-bar(4) = 19/12
    array([ 6,  8, 12])
    """
    log_bar = 0.5 + sum(1.0 / i for i in range(2, n_arms + 1))
    return np.array(
        [
            max(1, math.ceil((budget - n_arms) / (log_bar * (n_arms + 1 - k))))
            for k in range(1, n_arms)
        ],
        dtype=np.int64,
    )


class SuccessiveAcceptsRejects(_BestSetPolicy):
    r"""Successive Accepts and Rejects (SAR) for the best ``n_select`` arms.

    The fixed-budget algorithm of Bubeck, Wang & Viswanathan (2013) for the
    :math:`m`-best arms among :math:`K` with :math:`n` pulls. Phase
    :math:`k = 1, \dots, K - 1` pulls every undecided arm up to
    :math:`n_k` pulls (:func:`sar_phase_lengths`). Then, with :math:`m'`
    arms still to accept and the undecided arms' means sorted
    :math:`\hat\mu_{(1)} \ge \dots \ge \hat\mu_{(K + 1 - k)}`, the
    empirical gaps are

    .. math::

        \hat\Delta_{(r)} = \begin{cases}
            \hat\mu_{(r)} - \hat\mu_{(m' + 1)} & r \le m', \\
            \hat\mu_{(m')} - \hat\mu_{(r)} & r > m',
        \end{cases}

    and the arm with the largest gap (the clearest, ties by rank) is
    *accepted* if its rank is at most :math:`m'`, *rejected* otherwise, and
    never pulled again. Once :math:`m'` is 0 or equals the number of
    undecided arms the rest is forced, the set is identified and ``done_``
    turns True. Pulls thus go to the arms near the boundary, the clear ones
    are decided early.

    **Batches.** The schedule is counted per arm, so rounds may have any
    size: :meth:`select` returns up to ``k`` undecided arms below the
    current phase's target, least-pulled first (ties by index), and fewer
    when fewer are short, so that no pull of the budget goes to a decided
    arm. Once ``done_``, :meth:`select` falls back to round robin.

    **Budget, prior, warm start.** ``reset`` needs ``n_select`` and
    ``budget``, the pulls the caller will make from the first
    :meth:`select` on. The schedule is fixed by that first :meth:`select`
    with :math:`n` = ``budget`` plus the pulls already counted (prior
    pseudo-pulls, warm-started rewards), which are part of every arm's
    :math:`n_k`: an informed start leaves more of the budget to the later,
    closer phases.

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_, n_select_, budget_ :
        See :class:`~skbandit.policies.BasePolicy`.
    status_ : ndarray of shape (n_arms_,), dtype int
        1 accepted (in the best set), 0 undecided, -1 rejected.
    phase_targets_ : ndarray of shape (n_arms_ - 1,) or None
        :math:`n_k` of the schedule, None until the first :meth:`select`.
    phase_ : int
        Phases completed (decisions made by the schedule).
    done_ : bool
        Whether every arm is decided.
    estimates_ : ndarray of shape (n_arms_,)
        :math:`\hat\mu_i + 1 + \text{status}_i`: accepted arms in
        ``[2, 3]``, undecided in ``[1, 2]``, rejected in ``[0, 1]``, each
        band ordered by the empirical mean, so the highest ``n_select``
        estimates are the identified set.

    References
    ----------
    .. [1] S. Bubeck, T. Wang and N. Viswanathan, "Multiple Identifications
       in Multi-Armed Bandits", ICML 2013 (algorithm SAR).
    .. [2] J.-Y. Audibert, S. Bubeck and R. Munos, "Best Arm Identification
       in Multi-Armed Bandits", COLT 2010 (successive rejects).

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.policies import SuccessiveAcceptsRejects
    >>> means = np.array([0.9, 0.8, 0.3, 0.2])
    >>> policy = SuccessiveAcceptsRejects().reset(4, rng=0, n_select=2, budget=40)
    >>> while not policy.done_:
    ...     arms = policy.select(4)
    ...     _ = policy.update(arms, means[arms])
    >>> policy.status_, int(policy.counts_.sum())
    (array([ 1,  1, -1, -1]), 38)
    """

    def _check_context(self, n_select, budget):
        super()._check_context(n_select, budget)
        if budget is None:
            raise ValueError(
                "SuccessiveAcceptsRejects spends a fixed budget: call "
                "reset(n_arms, rng, n_select=..., budget=total_pulls)."
            )

    def _init_state(self):
        super()._init_state()
        self.status_ = np.zeros(self.n_arms_, dtype=np.int64)
        self.phase_targets_ = None
        self.phase_ = 0

    def _refresh(self):
        while not self.done_:
            active = np.flatnonzero(self.status_ == 0)
            to_accept = self.n_select_ - np.count_nonzero(self.status_ == 1)
            if to_accept in (0, active.size):
                self.status_[active] = 1 if to_accept else -1
                self.done_ = True
            elif self.phase_targets_ is None or (
                self.counts_[active].min() < self.phase_targets_[self.phase_]
            ):
                return
            else:
                self._decide(active, to_accept)

    def _decide(self, active, to_accept):
        """Accept or reject the undecided arm with the largest empirical gap."""
        order = np.argsort(-self._means()[active], kind="stable")
        ranked = self._means()[active[order]]
        above = np.arange(active.size) < to_accept
        gaps = np.where(
            above, ranked - ranked[to_accept], ranked[to_accept - 1] - ranked
        )
        rank = int(np.argmax(gaps))
        self.status_[active[order[rank]]] = 1 if above[rank] else -1
        self.phase_ += 1

    def _select(self, k):
        if self.phase_targets_ is None:
            total = self.budget_ + int(self.counts_.sum())
            self.phase_targets_ = sar_phase_lengths(self.n_arms_, total)
            self._refresh()
            self.estimates_ = self._estimates()
        if self.done_:
            return _round_robin(self.counts_, k)
        active = np.flatnonzero(self.status_ == 0)
        short = active[self.counts_[active] < self.phase_targets_[self.phase_]]
        return short[_round_robin(self.counts_[short], k)]

    def _estimates(self):
        return self._means() + 1.0 + self.status_


class LUCB(_BestSetPolicy):
    r"""LUCB1 for the best ``n_select`` arms at confidence ``1 - delta``.

    The fixed-confidence algorithm of Kalyanakrishnan, Tewari, Auer & Stone
    (2012). Each arm has the interval :math:`\hat\mu_i \pm \beta_i` with

    .. math::

        \beta_i = \sigma \sqrt{\frac{2}{N_i}
                  \ln\frac{5 K t^4}{4 \delta}},

    :math:`N_i` its pulls, :math:`t` the rounds so far (at least 1) and
    :math:`\sigma = 1/2` (Hoeffding's constant for rewards in ``[0, 1]``:
    then this is LUCB1's :math:`\sqrt{\ln(5Kt^4/4\delta) / 2N_i}`). With
    :math:`J` the ``n_select`` arms of highest mean, the two critical arms
    are :math:`h = \arg\min_{j \in J} (\hat\mu_j - \beta_j)` and
    :math:`l = \arg\max_{j \notin J} (\hat\mu_j + \beta_j)`; the set is
    identified (``done_``) when

    .. math:: (\hat\mu_l + \beta_l) - (\hat\mu_h - \beta_h) < \epsilon,

    and then, with probability at least :math:`1 - \delta`, every arm of
    :math:`J` is within :math:`\epsilon` of the true best set.

    **Batches.** LUCB1 first pulls every arm once, then :math:`h` and
    :math:`l` each round. A round of ``k`` pulls takes :math:`h` and
    :math:`l` (the less pulled first, so ``k = 1`` pulls the less known of
    the two), then the other *undecided* arms: those of :math:`J` whose
    lower bound is below :math:`l`'s upper bound and the others whose upper
    bound is above :math:`h`'s lower bound, ordered by how far their
    interval reaches past the midpoint
    :math:`c = ((\hat\mu_h - \beta_h) + (\hat\mu_l + \beta_l)) / 2`
    (:math:`c - \text{lower}` in :math:`J`, :math:`\text{upper} - c`
    outside; ties: fewer pulls, then lower index): arms near the boundary
    and little known first. It returns fewer than ``k`` arms when fewer
    are undecided.

    Parameters
    ----------
    delta : float, default=0.05
        Error probability :math:`\delta \in (0, 1)`.
    epsilon : float, default=0.0
        Tolerance :math:`\epsilon \ge 0` of the stopping rule.
    sigma : float, default=0.5
        :math:`\sigma > 0`, the sub-Gaussian scale of the rewards. ``0.5``
        holds for any reward in ``[0, 1]``; a smaller value assumes less
        noise (tighter intervals, earlier stops) and keeps the guarantee
        only if the rewards are that concentrated.

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_, n_select_ :
        See :class:`~skbandit.policies.BasePolicy`.
    done_ : bool
        Whether the stopping rule holds now.
    estimates_ : ndarray of shape (n_arms_,)
        Empirical mean reward (prior pseudo-pulls included; 0.5 if never
        pulled): its top ``n_select`` is :math:`J`, the set LUCB outputs.

    Notes
    -----
    A prior folded in at :meth:`reset` counts as pulls in :math:`N_i`: the
    ``delta`` guarantee then holds only if the prior is right.

    References
    ----------
    .. [1] S. Kalyanakrishnan, A. Tewari, P. Auer and P. Stone, "PAC Subset
       Selection in Stochastic Multi-armed Bandits", ICML 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.policies import LUCB
    >>> means = np.array([1.0, 1.0, 0.0, 0.0])
    >>> policy = LUCB(delta=0.1).reset(4, rng=0, n_select=2)
    >>> while not policy.done_:
    ...     arms = policy.select(2)
    ...     _ = policy.update(arms, means[arms])
    >>> np.flatnonzero(policy.estimates_ > 0.5), policy.counts_
    (array([0, 1]), array([44, 44, 44, 44]))
    """

    def __init__(self, delta=0.05, epsilon=0.0, sigma=0.5):
        self.delta = delta
        self.epsilon = epsilon
        self.sigma = sigma

    def _check_params(self):
        _check_real(self.delta, "delta", 0.0, 1.0, low_open=True, high_open=True)
        _check_real(self.epsilon, "epsilon", 0.0)
        _check_real(self.sigma, "sigma", 0.0, low_open=True)

    def confidence_bounds(self):
        r"""Return the lower and upper bounds :math:`\hat\mu_i \mp \beta_i`.

        Returns
        -------
        lower, upper : ndarray of shape (n_arms_,)
            Infinite for arms never pulled.
        """
        self._check_is_reset()
        log_term = math.log(5 * self.n_arms_ / (4 * self.delta))
        log_term += 4 * math.log(max(self.n_rounds_, 1))
        with np.errstate(divide="ignore"):
            radius = self.sigma * np.sqrt(2 * log_term / self.counts_)
        means = self._means()
        return means - radius, means + radius

    def _critical(self):
        """Arms of :math:`J` by increasing lower bound and the others by
        decreasing upper bound (ties: fewer pulls, then lower index)."""
        lower, upper = self.confidence_bounds()
        order = np.argsort(-self._means(), kind="stable")
        top, rest = order[: self.n_select_], order[self.n_select_ :]
        top = top[np.lexsort((top, self.counts_[top], lower[top]))]
        rest = rest[np.lexsort((rest, self.counts_[rest], -upper[rest]))]
        return top, rest, lower, upper

    def _refresh(self):
        if self._forced():
            self.done_ = True
            return
        top, rest, lower, upper = self._critical()
        self.done_ = bool(upper[rest[0]] - lower[top[0]] < self.epsilon)

    def _select(self, k):
        if self._forced():
            return _round_robin(self.counts_, k)
        unpulled = np.flatnonzero(self.counts_ == 0)
        if unpulled.size:  # LUCB1 starts by pulling every arm once
            return unpulled[:k]
        top, rest, lower, upper = self._critical()
        h, l = top[0], rest[0]
        pair = [h, l] if self.counts_[h] <= self.counts_[l] else [l, h]
        if self.done_:  # asked anyway: the pair LUCB1 would pull
            return np.array(pair[:k])
        # The other undecided arms (interval past the other side's critical
        # bound), those reaching furthest past the midpoint of the two
        # critical bounds first: near the boundary and least known.
        middle = (lower[h] + upper[l]) / 2
        top, rest = (
            top[1:][lower[top[1:]] <= upper[l]],
            rest[1:][upper[rest[1:]] >= lower[h]],
        )
        others = np.concatenate([top, rest])
        reach = np.concatenate([middle - lower[top], upper[rest] - middle])
        others = others[np.lexsort((others, self.counts_[others], -reach))]
        return np.concatenate([pair, others])[:k]

    def _estimates(self):
        return self._means()
