"""Multiplicative-weight policies: Hedge (full information) and EXP3 (bandit).

Both keep exponential weights as log-weights proportional to a cumulative
reward, so no weight ever overflows however long the run.
"""

import numpy as np

from ._base import BasePolicy, _boltzmann, _check_real

__all__ = ["Hedge", "EXP3"]


class Hedge(BasePolicy):
    r"""Hedge: exponential weights with full information (Freund & Schapire).

    Every round the caller evaluates *every* arm (``full_information`` is
    True: :meth:`select` returns ``np.arange(n_arms_)`` whatever ``k``).
    With :math:`G_i` the cumulative reward of arm :math:`i` (``sums_``), the
    weights and distribution are

    .. math:: w_i = \exp(\eta\, G_i), \qquad p_i = \frac{w_i}{\sum_j w_j}.

    This is Freund & Schapire's :math:`w_i \leftarrow w_i \beta^{\ell_i}`
    with loss :math:`\ell_i = 1 - r_i` and :math:`\beta = e^{-\eta}`, since
    :math:`\beta^{1 - r_i} \propto e^{\eta r_i}` after normalisation. The
    weights are kept as log-weights :math:`\eta G_i` and normalised by
    subtracting their maximum, so they never overflow. :meth:`update` adds the
    rewards of the arms it is given; an arm left out of a round earns 0 that
    round.

    Parameters
    ----------
    learning_rate : float, default=0.5
        :math:`\eta > 0`. Larger values concentrate :math:`p` faster on the
        arms with the highest cumulative reward.

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_ :
        See :class:`~skbandit.policies.BasePolicy`; ``sums_`` is :math:`G`.
    estimates_ : ndarray of shape (n_arms_,)
        Average reward per round, :math:`G_i / \max(\text{n_rounds_}, 1)`
        (a prior of weight :math:`w` counts as :math:`w` rounds):
        the empirical mean when every arm is updated every round. It is
        increasing in :math:`G_i` like :math:`p_i`, so it ranks arms the same
        way, but unlike :math:`p` it does not underflow to ties once the
        weights concentrate, and it stays on the ``[0, 1]`` reward scale.

    See Also
    --------
    EXP3 : The bandit-feedback version, which sees only the pulled arms.

    References
    ----------
    .. [1] Y. Freund and R. E. Schapire, "A Decision-Theoretic Generalization
       of On-Line Learning and an Application to Boosting", Journal of
       Computer and System Sciences 55(1), 119-139, 1997.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.policies import Hedge
    >>> policy = Hedge(learning_rate=0.5).reset(n_arms=3, rng=0)
    >>> arms = policy.select(1)  # full information: every arm
    >>> arms
    array([0, 1, 2])
    >>> policy.update(arms, [1.0, 0.0, 0.5])
    Hedge(learning_rate=0.5)
    >>> np.round(policy.probabilities(), 4)  # ∝ exp(0.5 * [1, 0, 0.5])
    array([0.4192, 0.2543, 0.3265])
    >>> policy.estimates_
    array([1. , 0. , 0.5])
    """

    full_information = True

    def __init__(self, learning_rate=0.5):
        self.learning_rate = learning_rate

    def _check_params(self):
        _check_real(self.learning_rate, "learning_rate", 0.0, low_open=True)

    def _select(self, k):
        return np.arange(self.n_arms_)

    def probabilities(self):
        r"""Return the Hedge distribution :math:`p_i \propto \exp(\eta G_i)`.

        Returns
        -------
        p : ndarray of shape (n_arms_,)
            Non-negative, sums to 1.
        """
        self._check_is_reset()
        return _boltzmann(self.sums_, 1.0 / self.learning_rate)

    def _estimates(self):
        # A prior of weight w counts as w rounds (Hedge sees every arm each round).
        return self.sums_ / max(self.n_rounds_ + self.prior_weight_, 1)


class EXP3(BasePolicy):
    r"""EXP3: exponential weights for exploration and exploitation (Auer et al.).

    With :math:`K` arms, exploration rate :math:`\gamma` and weights
    :math:`w_i`, a round draws ``k`` arms **i.i.d. with replacement**
    (``allows_repeats`` is True) from

    .. math:: p_i = (1 - \gamma) \frac{w_i}{\sum_j w_j} + \frac{\gamma}{K}.

    Drawing with replacement keeps the importance weighting exact: if
    :math:`c_i` of the ``k`` draws hit arm :math:`i` and they return rewards
    summing to :math:`R_i`, the estimate

    .. math:: \hat x_i = \frac{R_i}{k\, p_i}

    is unbiased, :math:`E[\hat x_i] = \mu_i`, because
    :math:`E[c_i] = k p_i`. The weights then follow

    .. math:: w_i \leftarrow w_i \exp(\gamma \hat x_i / K),

    kept as log-weights :math:`(\gamma / K) \hat G_i` with
    :math:`\hat G_i = \sum_t \hat x_{i,t}` the estimated cumulative gain, so
    they never overflow. For ``k = 1`` this is exactly Auer et al.'s EXP3.

    :meth:`update` must follow the :meth:`select` whose draw it reports, with
    the same arms (in any order): the importance weights need the
    :math:`p` used for that draw.

    Parameters
    ----------
    gamma : float, default=0.1
        Exploration rate :math:`\gamma \in (0, 1]`: the share of uniform
        exploration, which also bounds :math:`p_i \ge \gamma / K` and hence
        the importance weights. ``gamma=1`` samples uniformly.

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_ :
        See :class:`~skbandit.policies.BasePolicy`.
    estimated_gains_ : ndarray of shape (n_arms_,)
        :math:`\hat G_i`, the importance-weighted cumulative reward estimate.
    estimates_ : ndarray of shape (n_arms_,)
        :math:`\hat G_i / \max(\text{n_rounds_}, 1)` (a prior of weight
        :math:`w` adds :math:`w` times its mean to :math:`\hat G_i` and
        :math:`w` rounds), an unbiased estimate
        of each arm's mean reward (it may exceed 1: importance weights are
        large for rarely drawn arms). It is increasing in :math:`\hat G_i`,
        so it ranks arms like :math:`p`, without :math:`p`'s ties once the
        weights concentrate.

    See Also
    --------
    Hedge : The full-information version.

    References
    ----------
    .. [1] P. Auer, N. Cesa-Bianchi, Y. Freund and R. E. Schapire, "The
       Nonstochastic Multiarmed Bandit Problem", SIAM Journal on Computing
       32(1), 48-77, 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.policies import EXP3
    >>> policy = EXP3(gamma=0.3).reset(n_arms=3, rng=0)
    >>> policy.probabilities()  # equal weights: uniform
    array([0.33333333, 0.33333333, 0.33333333])
    >>> arms = policy.select(4)  # with replacement: k may exceed n_arms
    >>> rewards = np.array([1.0, 0.0, 0.5])[arms]
    >>> _ = policy.update(arms, rewards)
    >>> expected = np.bincount(arms, rewards, minlength=3) / (4 / 3)
    >>> np.allclose(policy.estimated_gains_, expected)
    True
    """

    allows_repeats = True

    def __init__(self, gamma=0.1):
        self.gamma = gamma

    def _check_params(self):
        _check_real(self.gamma, "gamma", 0.0, 1.0, low_open=True)

    def _init_state(self):
        self.estimated_gains_ = np.zeros(self.n_arms_)
        # (sorted arms, p) of the last select, consumed by the next update.
        self._pending_draw = None

    def probabilities(self):
        r"""Return the EXP3 distribution :math:`p` of the next draw.

        Returns
        -------
        p : ndarray of shape (n_arms_,)
            Sums to 1, each entry at least :math:`\gamma / K`.
        """
        self._check_is_reset()
        n_arms = self.n_arms_
        weights = _boltzmann(self.estimated_gains_, n_arms / self.gamma)
        return (1 - self.gamma) * weights + self.gamma / n_arms

    def _select(self, k):
        p = self.probabilities()
        arms = self.rng_.choice(self.n_arms_, size=k, replace=True, p=p)
        self._pending_draw = (np.sort(arms), p)
        return arms

    def _update(self, arms, rewards):
        if self._pending_draw is None:
            raise RuntimeError(
                "EXP3.update needs the probabilities of the draw it reports: "
                "call select(k) before each update."
            )
        drawn, p = self._pending_draw
        if not np.array_equal(np.sort(arms), drawn):
            raise ValueError(
                f"EXP3.update must receive exactly the arms of the last "
                f"select (in any order) for its importance weights to be "
                f"unbiased; selected {drawn}, got {np.sort(arms)}."
            )
        reward_sums = np.bincount(arms, weights=rewards, minlength=self.n_arms_)
        self.estimated_gains_ += reward_sums / (drawn.shape[0] * p)
        self._pending_draw = None

    def _warm_start(self, arms, rewards):
        # Replayed rewards were observed, not drawn from p: they enter the
        # gain estimates as they are, without importance weights.
        self.estimated_gains_ += np.bincount(
            arms, weights=rewards, minlength=self.n_arms_
        )

    def _fold_prior(self, weights, means):
        # Like warm-started rewards: observed, not drawn, so no importance weight.
        self.estimated_gains_ += weights * means

    def _estimates(self):
        return self.estimated_gains_ / max(self.n_rounds_ + self.prior_weight_, 1)
