"""Value-based (stochastic) policies: they rank arms by a per-arm reward estimate.

All five return ``k`` distinct arms per round.
"""

import math

import numpy as np

from ._base import (
    BasePolicy,
    _boltzmann,
    _check_real,
    _empirical_means,
    _logits,
    _rank,
)

__all__ = ["EpsilonGreedy", "Softmax", "UCB1", "ThompsonSampling", "GaussianThompson"]


class _MeanPolicy(BasePolicy):
    """Shared bookkeeping of the policies built on the empirical mean reward.

    ``estimates_`` is the empirical mean ``sums_ / counts_``; an arm never
    pulled gets ``initial_value``.
    """

    def _check_params(self):
        _check_real(self.initial_value, "initial_value", 0.0, 1.0)

    def _means(self):
        return _empirical_means(self.counts_, self.sums_, self.initial_value)

    def _estimates(self):
        return self._means()


class EpsilonGreedy(_MeanPolicy):
    r"""Epsilon-greedy: exploit the best empirical means, explore at random.

    Each of the ``k`` slots of a round explores with probability ``epsilon``.
    The number of exploring slots is therefore ``m ~ Binomial(k, epsilon)``;
    the ``k - m`` exploiting slots take the ``k - m`` arms with the highest
    empirical mean

    .. math:: \hat\mu_i = \frac{S_i}{N_i} \quad
              (\text{initial\_value if } N_i = 0),

    where :math:`S_i` is the reward sum and :math:`N_i` the pull count, and the
    ``m`` exploring slots draw uniformly without replacement from the other
    arms, so the ``k`` arms are distinct. Ties between equal means are broken
    at random. For ``k = 1`` this is the classic rule: with probability
    ``epsilon`` a uniformly random arm, otherwise the greedy one.

    Parameters
    ----------
    epsilon : float, default=0.1
        Probability that a slot explores, in ``[0, 1]``.
    initial_value : float, default=0.5
        Mean reward assumed for an arm never pulled, in ``[0, 1]``. The
        default is the midpoint of the reward range: an uninformed guess that
        neither favours unexplored arms (as an optimistic ``1.0`` would) nor
        buries them (as ``0.0`` would).

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_ :
        See :class:`~skbandit.policies.BasePolicy`.
    estimates_ : ndarray of shape (n_arms_,)
        Empirical mean reward :math:`\hat\mu_i` of each arm.

    See Also
    --------
    Softmax : Explores in proportion to how good an arm looks.

    References
    ----------
    .. [1] R. S. Sutton and A. G. Barto, *Reinforcement Learning: An
       Introduction*, 2nd ed., MIT Press, 2018, section 2.2.

    Examples
    --------
    >>> from skbandit.policies import EpsilonGreedy
    >>> policy = EpsilonGreedy(epsilon=0.0).reset(n_arms=4, rng=0)
    >>> policy.update([0, 1, 2, 3], [0.9, 0.2, 0.6, 0.4])
    EpsilonGreedy(epsilon=0.0, initial_value=0.5)
    >>> policy.estimates_
    array([0.9, 0.2, 0.6, 0.4])
    >>> policy.select(2)
    array([0, 2])
    >>> policy.probabilities()
    array([1., 0., 0., 0.])
    """

    def __init__(self, epsilon=0.1, initial_value=0.5):
        self.epsilon = epsilon
        self.initial_value = initial_value

    def _check_params(self):
        _check_real(self.epsilon, "epsilon", 0.0, 1.0)
        super()._check_params()

    def _select(self, k):
        n_explore = self.rng_.binomial(k, self.epsilon)
        order = _rank(self._means(), self.rng_)
        greedy, others = order[: k - n_explore], order[k - n_explore :]
        explore = self.rng_.choice(others, size=n_explore, replace=False)
        return np.concatenate([greedy, explore])

    def probabilities(self):
        r"""Return the distribution of a single slot (the ``k = 1`` rule).

        .. math:: p_i = \frac{\epsilon}{K} +
                  (1 - \epsilon) \frac{[i \in B]}{|B|},

        where :math:`B` is the set of arms with the highest empirical mean
        (ties share the greedy mass) and :math:`K` the number of arms.

        Returns
        -------
        p : ndarray of shape (n_arms_,)
            Non-negative, sums to 1.
        """
        self._check_is_reset()
        means = self._means()
        best = (means == means.max()).astype(float)
        return (1 - self.epsilon) * best / best.sum() + self.epsilon / self.n_arms_


class Softmax(_MeanPolicy):
    r"""Softmax (Boltzmann) exploration over empirical means.

    Arms are drawn from

    .. math:: p_i = \frac{\exp(\hat\mu_i / \tau)}
                        {\sum_j \exp(\hat\mu_j / \tau)},

    computed stably as :math:`\exp((\hat\mu_i - \max_j \hat\mu_j) / \tau)`
    normalised, where :math:`\hat\mu_i` is the empirical mean reward
    (``initial_value`` if never pulled) and :math:`\tau` the temperature.
    The ``k`` distinct arms of a round are drawn *successively without
    replacement* from :math:`p` (each draw renormalised over the arms not yet
    taken, like ``rng.choice(K, k, replace=False, p=p)``), implemented with
    the Gumbel-top-k trick: the ``k`` largest values of
    :math:`(\hat\mu_i - \max_j \hat\mu_j) / \tau + G_i`, :math:`G_i` i.i.d.
    standard Gumbel [2]_. It samples the same distribution but works on the
    logits, so it stays valid when a tiny temperature underflows some
    :math:`p_i` to 0, where ``rng.choice`` would refuse to draw.

    Parameters
    ----------
    temperature : float, default=0.1
        :math:`\tau > 0`. Small values exploit (greedy as
        :math:`\tau \to 0`), large values explore (uniform as
        :math:`\tau \to \infty`). Rewards live in ``[0, 1]``, so with the
        default the best arm is at most :math:`e^{10}` times likelier than
        the worst.
    initial_value : float, default=0.5
        Mean reward assumed for an arm never pulled, in ``[0, 1]``. The
        default is the midpoint of the reward range: an uninformed guess that
        neither favours unexplored arms (as an optimistic ``1.0`` would) nor
        buries them (as ``0.0`` would).

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_ :
        See :class:`~skbandit.policies.BasePolicy`.
    estimates_ : ndarray of shape (n_arms_,)
        Empirical mean reward :math:`\hat\mu_i` of each arm.

    References
    ----------
    .. [1] R. S. Sutton and A. G. Barto, *Reinforcement Learning: An
       Introduction*, 2nd ed., MIT Press, 2018, section 2.8.
    .. [2] W. Kool, H. van Hoof and M. Welling, "Stochastic Beams and Where to
       Find Them: The Gumbel-Top-k Trick for Sampling Sequences Without
       Replacement", ICML 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.policies import Softmax
    >>> policy = Softmax(temperature=0.5).reset(n_arms=3, rng=0)
    >>> policy.update([0, 1], [1.0, 0.0])
    Softmax(initial_value=0.5, temperature=0.5)
    >>> np.round(policy.probabilities(), 4)  # ∝ exp([2, 0, 1])
    array([0.6652, 0.09  , 0.2447])
    >>> arms = policy.select(2)
    >>> len(set(arms.tolist()))
    2
    """

    def __init__(self, temperature=0.1, initial_value=0.5):
        self.temperature = temperature
        self.initial_value = initial_value

    def _check_params(self):
        _check_real(self.temperature, "temperature", 0.0, low_open=True)
        super()._check_params()

    def _select(self, k):
        logits = _logits(self._means(), self.temperature)
        return _rank(logits + self.rng_.gumbel(size=self.n_arms_), self.rng_)[:k]

    def probabilities(self):
        r"""Return the Boltzmann distribution :math:`p` over the arms.

        Returns
        -------
        p : ndarray of shape (n_arms_,)
            Non-negative, sums to 1.
        """
        self._check_is_reset()
        return _boltzmann(self._means(), self.temperature)


class UCB1(_MeanPolicy):
    r"""UCB1: optimism in the face of uncertainty (Auer et al., 2002).

    Each arm gets the index

    .. math:: U_i = \hat\mu_i + c \sqrt{\frac{\ln t}{N_i}},

    where :math:`\hat\mu_i` is the empirical mean reward, :math:`N_i` the
    pulls of arm :math:`i` and :math:`t = \sum_j N_j` the total number of
    pulls so far. With the default :math:`c = \sqrt 2` this is exactly UCB1,
    :math:`\hat\mu_i + \sqrt{2 \ln t / N_i}`. An arm never pulled has
    :math:`U_i = +\infty`, so every arm is pulled once before any arm is
    pulled twice; unpulled arms are taken in a random (seeded) order rather
    than by lowest index, so the first rounds are not biased towards the
    first neurons of a layer. Each round pulls the ``k`` distinct arms with the
    highest index (ties broken at random).

    Parameters
    ----------
    c : float, default=sqrt(2)
        Exploration coefficient, :math:`c \ge 0`; 0 is purely greedy.
    initial_value : float, default=0.5
        Mean reward assumed for an arm never pulled, in ``[0, 1]``. The
        default is the midpoint of the reward range: an uninformed guess that
        neither favours unexplored arms (as an optimistic ``1.0`` would) nor
        buries them (as ``0.0`` would). UCB1 never *selects* by it (an
        unpulled arm's index is infinite); it only fills ``estimates_``.

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_ :
        See :class:`~skbandit.policies.BasePolicy`.
    estimates_ : ndarray of shape (n_arms_,)
        Empirical mean reward :math:`\hat\mu_i` of each arm (not the index:
        removal should rank by what was measured, not by optimism).

    References
    ----------
    .. [1] P. Auer, N. Cesa-Bianchi and P. Fischer, "Finite-time Analysis of
       the Multiarmed Bandit Problem", Machine Learning 47, 235-256, 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.policies import UCB1
    >>> policy = UCB1().reset(n_arms=3, rng=0)
    >>> sorted(policy.select(3).tolist())  # every arm first
    [0, 1, 2]
    >>> policy.update([0, 1, 2], [1.0, 0.0, 0.5])
    UCB1(c=1.4142135623730951, initial_value=0.5)
    >>> np.round(policy.upper_confidence_bounds(), 4)  # mean + sqrt(2 ln 3)
    array([2.4823, 1.4823, 1.9823])
    >>> policy.select(1)
    array([0])
    """

    def __init__(self, c=math.sqrt(2), initial_value=0.5):
        self.c = c
        self.initial_value = initial_value

    def _check_params(self):
        _check_real(self.c, "c", 0.0)
        super()._check_params()

    def upper_confidence_bounds(self):
        r"""Return the UCB1 index :math:`U_i` of every arm.

        Returns
        -------
        index : ndarray of shape (n_arms_,)
            ``+inf`` for arms never pulled.
        """
        self._check_is_reset()
        pulled = self.counts_ > 0
        index = np.full(self.n_arms_, np.inf)
        # max(., 1): before any pull no arm needs a bonus, and log(0) would warn.
        total_pulls = max(self.counts_.sum(), 1)
        bonus = np.sqrt(np.log(total_pulls) / self.counts_[pulled])
        index[pulled] = self._means()[pulled] + self.c * bonus
        return index

    def _select(self, k):
        return _rank(self.upper_confidence_bounds(), self.rng_)[:k]


class ThompsonSampling(BasePolicy):
    r"""Thompson sampling with a Beta-Bernoulli model and the Bernoulli trick.

    Each arm has a Beta posterior :math:`\mathrm{Beta}(\alpha_i, \beta_i)`
    over its mean reward, starting at the prior
    :math:`(\alpha_0, \beta_0)`. Rewards are in ``[0, 1]``, not binary, so
    each observed reward :math:`r` goes through the *Bernoulli trick* of
    Agrawal & Goyal (2012): draw :math:`b \sim \mathrm{Bernoulli}(r)` and
    update

    .. math:: \alpha_i \leftarrow \alpha_i + b, \qquad
              \beta_i \leftarrow \beta_i + 1 - b.

    This is *not* a Gaussian posterior over the raw rewards: the posterior is
    exact for the binarised rewards, whose mean equals the mean reward, so
    rewards of exactly 0 or 1 update deterministically and fractional rewards
    add a coin flip. A round draws :math:`\theta_i \sim
    \mathrm{Beta}(\alpha_i, \beta_i)` independently per arm and pulls the
    ``k`` distinct arms with the largest :math:`\theta_i`.

    Parameters
    ----------
    prior_alpha : float, default=1
        :math:`\alpha_0 > 0`, prior pseudo-count of successes.
    prior_beta : float, default=1
        :math:`\beta_0 > 0`, prior pseudo-count of failures. The default
        ``Beta(1, 1)`` is uniform on ``[0, 1]``; its mean, 0.5, is the
        estimate of an arm never pulled.

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_ :
        See :class:`~skbandit.policies.BasePolicy`.
    alpha_ : ndarray of shape (n_arms_,)
        Posterior :math:`\alpha_i`.
    beta_ : ndarray of shape (n_arms_,)
        Posterior :math:`\beta_i`.
    estimates_ : ndarray of shape (n_arms_,)
        Posterior mean :math:`\alpha_i / (\alpha_i + \beta_i)`.

    References
    ----------
    .. [1] S. Agrawal and N. Goyal, "Analysis of Thompson Sampling for the
       Multi-armed Bandit Problem", COLT 2012.
    .. [2] W. R. Thompson, "On the Likelihood that One Unknown Probability
       Exceeds Another in View of the Evidence of Two Samples", Biometrika
       25, 285-294, 1933.

    Examples
    --------
    >>> from skbandit.policies import ThompsonSampling
    >>> policy = ThompsonSampling().reset(n_arms=3, rng=0)
    >>> policy.update([0, 1], [1.0, 0.0])  # binary rewards: no coin flip
    ThompsonSampling(prior_alpha=1, prior_beta=1)
    >>> policy.alpha_, policy.beta_
    (array([2., 1., 1.]), array([1., 2., 1.]))
    >>> policy.estimates_.round(4)
    array([0.6667, 0.3333, 0.5   ])
    """

    def __init__(self, prior_alpha=1, prior_beta=1):
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta

    def _check_params(self):
        _check_real(self.prior_alpha, "prior_alpha", 0.0, low_open=True)
        _check_real(self.prior_beta, "prior_beta", 0.0, low_open=True)

    def _init_state(self):
        self.alpha_ = np.full(self.n_arms_, float(self.prior_alpha))
        self.beta_ = np.full(self.n_arms_, float(self.prior_beta))

    def _fold_prior(self, weights, means):
        # w pseudo-pulls of mean m: their expected successes, without coins.
        self.alpha_ += weights * means
        self.beta_ += weights * (1 - means)

    def _update(self, arms, rewards):
        # u < r with u ~ U[0, 1) is Bernoulli(r), exact at r = 0 and r = 1.
        successes = (self.rng_.random(rewards.shape[0]) < rewards).astype(float)
        self.alpha_ += np.bincount(arms, weights=successes, minlength=self.n_arms_)
        self.beta_ += np.bincount(arms, weights=1 - successes, minlength=self.n_arms_)

    def _select(self, k):
        return _rank(self.rng_.beta(self.alpha_, self.beta_), self.rng_)[:k]

    def _estimates(self):
        return self.alpha_ / (self.alpha_ + self.beta_)


class GaussianThompson(BasePolicy):
    r"""Thompson sampling with a Normal posterior on each arm's mean reward.

    Continuous rewards are used as they are (no Bernoulli coin, whose noise
    swamps the small reward differences between units after a few pulls).
    Each arm's mean :math:`\mu_i` has the prior
    :math:`\mathcal N(\mu_0, s_0^2)`, rewards are modelled as
    :math:`r \sim \mathcal N(\mu_i, \sigma^2)`, and the conjugate posterior
    after :math:`N_i` pulls with reward sum :math:`S_i` is
    :math:`\mathcal N(m_i, 1 / \lambda_i)` with

    .. math::

        \lambda_i = \frac{1}{s_0^2} + \frac{N_i}{\sigma^2}, \qquad
        m_i = \frac{1}{\lambda_i}
              \left(\frac{\mu_0}{s_0^2} + \frac{S_i}{\sigma^2}\right).

    The noise :math:`\sigma` is ``noise_std``, or by default the pooled
    within-arm standard deviation of the rewards seen so far,

    .. math::

        \hat\sigma^2 = \frac{\sum_i \left(Q_i - S_i^2 / N_i\right)}
                              {\sum_i N_i - |\{i : N_i > 0\}|}

    (:math:`Q_i` the sum of squared rewards, the sums over pulled arms),
    at least ``min_noise_std``, and :math:`s_0` while no arm has two pulls:
    reward scales differ between networks and rewards, and the posterior
    must shrink at the rate the rewards actually vary. A round draws
    :math:`\theta_i \sim \mathcal N(m_i, 1/\lambda_i)` per arm and pulls the
    ``k`` distinct arms with the largest :math:`\theta_i`.

    Parameters
    ----------
    prior_mean : float, default=0.5
        :math:`\mu_0`, in ``[0, 1]`` (the reward of a unit whose removal
        changes nothing).
    prior_std : float, default=0.5
        :math:`s_0 > 0`.
    noise_std : float or None, default=None
        :math:`\sigma > 0`; None estimates it as above.
    min_noise_std : float, default=1e-3
        Floor of the estimated :math:`\sigma` (rewards that happen to agree
        are not known exactly).

    Attributes
    ----------
    n_arms_, rng_, counts_, sums_, n_rounds_ :
        See :class:`~skbandit.policies.BasePolicy`.
    squares_ : ndarray of shape (n_arms_,)
        Sum of squared rewards :math:`Q_i` of each arm.
    noise_std_ : float
        The :math:`\sigma` of the current posterior.
    posterior_mean_ : ndarray of shape (n_arms_,)
        :math:`m_i`.
    posterior_std_ : ndarray of shape (n_arms_,)
        :math:`1 / \sqrt{\lambda_i}`.
    estimates_ : ndarray of shape (n_arms_,)
        The posterior mean :math:`m_i`.

    References
    ----------
    .. [1] S. Agrawal and N. Goyal, "Further Optimal Regret Bounds for
       Thompson Sampling", AISTATS 2013 (Gaussian priors).

    Examples
    --------
    >>> from skbandit.policies import GaussianThompson
    >>> policy = GaussianThompson(prior_std=1.0, noise_std=1.0).reset(2, rng=0)
    >>> policy.update([0, 0], [1.0, 0.0])
    GaussianThompson(min_noise_std=0.001, noise_std=1.0, prior_mean=0.5, prior_std=1.0)
    >>> policy.posterior_mean_, policy.posterior_std_.round(4)
    (array([0.5, 0.5]), array([0.5774, 1.    ]))
    """

    def __init__(
        self, prior_mean=0.5, prior_std=0.5, noise_std=None, min_noise_std=1e-3
    ):
        self.prior_mean = prior_mean
        self.prior_std = prior_std
        self.noise_std = noise_std
        self.min_noise_std = min_noise_std

    def _check_params(self):
        _check_real(self.prior_mean, "prior_mean", 0.0, 1.0)
        _check_real(self.prior_std, "prior_std", 0.0, low_open=True)
        if self.noise_std is not None:
            _check_real(self.noise_std, "noise_std", 0.0, low_open=True)
        _check_real(self.min_noise_std, "min_noise_std", 0.0, low_open=True)

    def _init_state(self):
        self.squares_ = np.zeros(self.n_arms_)

    def _update(self, arms, rewards):
        self.squares_ += np.bincount(
            arms, weights=np.square(rewards), minlength=self.n_arms_
        )

    def _noise_std(self):
        if self.noise_std is not None:
            return float(self.noise_std)
        counts, sums = self.counts_, self.sums_
        if self.prior_weight_:
            # The noise is the spread of observed rewards only: pseudo-pulls,
            # all equal to the prior mean, would shrink it to nothing.
            counts = counts - self.prior_weight_
            sums = sums - self.prior_weight_ * self.prior_means_
        pulled = counts > 0
        dof = counts.sum() - pulled.sum()
        if dof < 1:
            return float(self.prior_std)
        within = self.squares_[pulled] - sums[pulled] ** 2 / counts[pulled]
        return max(math.sqrt(max(within.sum(), 0.0) / dof), self.min_noise_std)

    def _estimates(self):
        # The posterior is refreshed whenever the bookkeeping changes.
        self.noise_std_ = self._noise_std()
        prior_precision = 1.0 / self.prior_std**2
        precision = prior_precision + self.counts_ / self.noise_std_**2
        self.posterior_mean_ = (
            self.prior_mean * prior_precision + self.sums_ / self.noise_std_**2
        ) / precision
        self.posterior_std_ = 1.0 / np.sqrt(precision)
        return self.posterior_mean_

    def _select(self, k):
        draws = self.rng_.normal(self.posterior_mean_, self.posterior_std_)
        return _rank(draws, self.rng_)[:k]
