"""The policy protocol shared by every bandit policy, and its small helpers.

This module is numpy only: policies know nothing about networks, torch or
pruning, so they can be reused (and tested) on any bandit problem.
"""

import inspect
import numbers
from abc import ABCMeta, abstractmethod

import numpy as np

__all__ = ["BasePolicy"]


class BasePolicy(metaclass=ABCMeta):
    """Base class and reference protocol for bandit policies.

    A policy decides which arms to pull from the rewards observed so far. In
    skbandit every candidate hidden neuron is an arm; pulling it masks the
    neuron, measures the loss change on a mini-batch and turns it into a
    *safe-removal reward* in ``[0, 1]`` (high = removing the neuron barely
    hurts). Pulls are evaluated in batches, so a policy chooses ``k`` arms per
    round. Once the budget is spent, the arms with the highest
    ``estimates_`` are removed.

    **Life cycle.** One run of a policy is::

        policy.reset(n_arms, rng)          # validate, allocate state
        for each round:
            arms = policy.select(k)        # which arms to evaluate
            rewards = evaluate(arms)       # one reward in [0, 1] per entry
            policy.update(arms, rewards)
        ranking = policy.estimates_        # highest = safest to remove

    **Hyper-parameters** are the arguments of ``__init__``, stored untouched
    under the same name (as in scikit-learn), so :meth:`get_params`,
    :meth:`set_params` and :func:`sklearn.base.clone` work. They are validated
    by :meth:`reset`, never by ``__init__``.

    **Fitted state** is allocated by :meth:`reset` and its attribute names end
    with an underscore. Calling :meth:`reset` again starts a fresh run.

    **What the caller knows.** :meth:`reset` optionally takes, keyword
    only, how many arms will be chosen in the end (``n_select``: the units
    to remove), the total number of pulls the caller will make
    (``budget``) and *prior* estimates: ``prior_means`` in ``[0, 1]``
    folded in as ``prior_weight`` pseudo-pulls per arm (added to
    ``counts_`` and ``sums_``, as if each arm had already returned its
    prior mean that many times), so a policy starts from what a closed form
    already knows. Regret-minimising policies ignore ``n_select`` and
    ``budget``; best-set identification policies
    (:mod:`skbandit.policies._best_set`) need them. Without these keywords
    every policy behaves exactly as before they existed.

    **Duck typing.** Code that drives a policy only relies on ``reset``,
    ``select``, ``update``, ``estimates_`` and, when present, the class
    attributes ``full_information``, ``allows_repeats``, ``takes_context``
    and ``best_set`` (all ``False`` when missing) and the optional method
    ``probabilities``. A user-written policy may implement exactly these
    instead of subclassing.

    **Subclassing.** A subclass lists its hyper-parameters explicitly in
    ``__init__`` (no ``*args``/``**kwargs``) and implements the hooks

    - ``_select(k)`` (required): the ``k`` arms to pull, ``k`` already checked;
    - ``_estimates()`` (required): the float vector stored as ``estimates_``;
    - ``_check_params()``: raise :class:`ValueError` for a bad hyper-parameter;
    - ``_init_state()``: allocate policy-specific state at reset;
    - ``_update(arms, rewards)``: policy-specific learning from checked
      feedback. It runs *before* the shared bookkeeping, so it may reject the
      feedback without leaving the policy half updated;
    - ``_check_context(n_select, budget)``: raise :class:`ValueError` when
      the policy needs what the caller did not say;
    - ``_fold_prior(weights, means)``: fold the prior into policy-specific
      state (the shared counts and sums already hold it);
    - ``_refresh()``: recompute derived state whenever the counts changed
      (after the prior is folded in and after every update).

    Attributes
    ----------
    full_information : bool
        Class attribute. When True, the caller evaluates every arm each round:
        :meth:`select` returns ``np.arange(n_arms_)`` whatever ``k`` is, and
        :meth:`update` normally receives all arms.
    allows_repeats : bool
        Class attribute. When True, :meth:`select` may return the same arm
        several times (draws with replacement) and ``k`` may exceed
        ``n_arms_``. Otherwise the ``k`` arms are distinct and
        ``k <= n_arms_``.
    takes_context : bool
        Class attribute, True for every subclass: :meth:`reset` accepts the
        keywords ``n_select``, ``budget``, ``prior_means`` and
        ``prior_weight``. A duck-typed policy without it is reset with
        ``n_arms`` and ``rng`` only.
    best_set : bool
        Class attribute. When True the policy identifies the best
        ``n_select`` arms (pure exploration): :meth:`reset` needs
        ``n_select``, :meth:`select` may return *fewer* than ``k`` arms (at
        least one: only the arms still worth pulling) and the attribute
        ``done_`` turns True once the set is identified, when the caller
        may stop pulling.
    n_arms_ : int
        Number of arms, set by :meth:`reset`.
    rng_ : numpy.random.Generator
        Random generator used for every random choice of the policy.
    counts_ : ndarray of shape (n_arms_,), dtype int
        Number of pulls of each arm (a repeated arm in one update counts once
        per occurrence), plus its prior pseudo-pulls.
    sums_ : ndarray of shape (n_arms_,), dtype float
        Sum of the rewards observed for each arm, plus its prior's
        ``prior_weight_ * prior_means_``.
    n_select_ : int or None
        How many arms will be chosen in the end, as given to :meth:`reset`.
    budget_ : int or None
        Total pulls the caller will make, as given to :meth:`reset`.
    prior_weight_ : int
        Pseudo-pulls of the prior per arm (0 without a prior).
    prior_means_ : ndarray of shape (n_arms_,) or None
        The prior means given to :meth:`reset`.
    n_rounds_ : int
        Number of completed rounds, i.e. calls to :meth:`update`.
    estimates_ : ndarray of shape (n_arms_,), dtype float
        The score arms are ranked by for removal; higher means safer to
        remove. Its meaning is policy specific and documented by each policy.

    See Also
    --------
    skbandit.policies.make_policy : Build a policy from a name or an instance.
    """

    full_information = False
    allows_repeats = False
    takes_context = True
    best_set = False

    # -- hyper-parameters (scikit-learn conventions) -------------------------

    @classmethod
    def _get_param_names(cls):
        """Names of the hyper-parameters: the arguments of ``__init__``."""
        if cls.__init__ is object.__init__:
            return []
        signature = inspect.signature(cls.__init__)
        names = []
        for parameter in list(signature.parameters.values())[1:]:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ must list its hyper-parameters "
                    f"explicitly; *args and **kwargs cannot be introspected."
                )
            names.append(parameter.name)
        return sorted(names)

    def get_params(self, deep=True):
        """Return the hyper-parameters given to ``__init__``.

        Parameters
        ----------
        deep : bool, default=True
            Accepted for scikit-learn compatibility. Policy hyper-parameters
            are scalars, so there is nothing nested to expand.

        Returns
        -------
        params : dict
            Hyper-parameter name -> value, exactly as stored.
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set hyper-parameters; they are validated by the next :meth:`reset`.

        Parameters
        ----------
        **params : dict
            Hyper-parameter name -> new value.

        Returns
        -------
        self : BasePolicy
            The policy itself.

        Raises
        ------
        ValueError
            If a name is not a hyper-parameter of this policy.
        """
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for {type(self).__name__}. "
                    f"Valid parameters are: {valid}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # -- the protocol ---------------------------------------------------------

    def reset(
        self,
        n_arms,
        rng=None,
        *,
        n_select=None,
        budget=None,
        prior_means=None,
        prior_weight=1,
    ):
        """Validate the hyper-parameters and start a fresh run on ``n_arms`` arms.

        Parameters
        ----------
        n_arms : int
            Number of arms, at least 1.
        rng : numpy.random.Generator, int or None, default=None
            Source of randomness, passed through :func:`numpy.random.default_rng`:
            a ``Generator`` is used as is (shared with the caller, not copied),
            an int seeds a new one, None draws fresh OS entropy.
        n_select : int or None, default=None
            How many arms will be chosen in the end (the units to remove), in
            ``[0, n_arms]``; None: unknown. Needed by best-set policies.
        budget : int or None, default=None
            Total pulls the caller will make from the first :meth:`select`
            on, at least 1; None: unknown. Needed by fixed-budget policies.
        prior_means : array-like of shape (n_arms,) or None, default=None
            Prior estimate of each arm's mean reward, in ``[0, 1]``.
        prior_weight : int, default=1
            Pseudo-pulls the prior counts for, per arm (an integer >= 0, as
            it is folded into the integer ``counts_``); ignored without
            ``prior_means``. A prior of weight ``w`` weighs as much as ``w``
            rewards actually observed.

        Returns
        -------
        self : BasePolicy
            The policy itself, ready for :meth:`select`.

        Raises
        ------
        ValueError
            If ``n_arms``, a keyword or a hyper-parameter is invalid; the
            message names it.

        Examples
        --------
        >>> from skbandit.policies import UCB1
        >>> policy = UCB1().reset(3, rng=0, prior_means=[0.9, 0.1, 0.5],
        ...                       prior_weight=2)
        >>> policy.counts_, policy.estimates_
        (array([2, 2, 2]), array([0.9, 0.1, 0.5]))
        """
        if not _is_integer(n_arms) or n_arms < 1:
            raise ValueError(f"n_arms must be an integer >= 1, got {n_arms!r}.")
        self._check_params()
        if n_select is not None and not (
            _is_integer(n_select) and 0 <= n_select <= n_arms
        ):
            raise ValueError(
                f"n_select must be None or an integer in [0, n_arms={n_arms}], "
                f"got {n_select!r}."
            )
        if budget is not None and not (_is_integer(budget) and budget >= 1):
            raise ValueError(f"budget must be None or an integer >= 1, got {budget!r}.")
        self._check_context(n_select, budget)
        prior_means, prior_weight = _check_prior(prior_means, prior_weight, n_arms)
        self.n_arms_ = int(n_arms)
        self.n_select_ = None if n_select is None else int(n_select)
        self.budget_ = None if budget is None else int(budget)
        self.prior_means_, self.prior_weight_ = prior_means, prior_weight
        self.rng_ = np.random.default_rng(rng)
        self.counts_ = np.zeros(self.n_arms_, dtype=np.int64)
        self.sums_ = np.zeros(self.n_arms_, dtype=float)
        self.n_rounds_ = 0
        self._init_state()
        if prior_weight:
            weights = np.full(self.n_arms_, prior_weight, dtype=np.int64)
            self.counts_ += weights
            self.sums_ += weights * prior_means
            self._fold_prior(weights, prior_means)
        self._refresh()
        self.estimates_ = self._estimates()
        return self

    def select(self, k):
        """Choose the arms to pull this round.

        Parameters
        ----------
        k : int
            Number of pulls wanted, at least 1. Policies without
            ``allows_repeats`` need ``k <= n_arms_``.

        Returns
        -------
        arms : ndarray of shape (k,), dtype int
            Arm indices in ``[0, n_arms_)``; distinct unless ``allows_repeats``.
            A ``full_information`` policy returns ``np.arange(n_arms_)``.

        Raises
        ------
        ValueError
            If ``k`` is not a valid number of pulls.
        RuntimeError
            If :meth:`reset` has not been called.
        """
        self._check_is_reset()
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}.")
        if not (self.allows_repeats or self.full_information) and k > self.n_arms_:
            raise ValueError(
                f"k={k} exceeds n_arms_={self.n_arms_}: {type(self).__name__} "
                f"selects distinct arms."
            )
        return np.asarray(self._select(int(k)), dtype=np.intp)

    def update(self, arms, rewards):
        """Learn from the rewards observed for the pulled arms.

        Parameters
        ----------
        arms : array-like of int, shape (m,)
            Pulled arms; an arm may appear several times (each is one pull).
        rewards : array-like of float, shape (m,)
            ``rewards[j]`` is the reward of pulling ``arms[j]``, finite and in
            ``[0, 1]``.

        Returns
        -------
        self : BasePolicy
            The policy itself.

        Raises
        ------
        ValueError
            If the arrays are not aligned, an arm is out of range or a reward
            is not finite or outside ``[0, 1]``.
        RuntimeError
            If :meth:`reset` has not been called.
        """
        return self._learn(arms, rewards, self._update)

    def warm_start(self, arms, rewards):
        """Fold in observations made before this run, as if pulled now.

        Iterative pruning re-creates the bandit over the surviving units and
        replays their earlier rewards, round by round, through this method.
        By default it is :meth:`update`; a policy whose update depends on how
        the arms were drawn (EXP3's importance weights) overrides
        ``_warm_start``.

        Parameters
        ----------
        arms, rewards : array-like
            As in :meth:`update`.

        Returns
        -------
        self : BasePolicy
        """
        return self._learn(arms, rewards, self._warm_start)

    def _learn(self, arms, rewards, hook):
        self._check_is_reset()
        arms, rewards = _check_feedback(arms, rewards, self.n_arms_)
        hook(arms, rewards)
        self.counts_ += np.bincount(arms, minlength=self.n_arms_)
        self.sums_ += np.bincount(arms, weights=rewards, minlength=self.n_arms_)
        self.n_rounds_ += 1
        self._refresh()
        self.estimates_ = self._estimates()
        return self

    # -- hooks for subclasses ---------------------------------------------------

    def _check_params(self):
        """Raise ValueError naming the first invalid hyper-parameter."""

    def _check_context(self, n_select, budget):
        """Raise ValueError if the policy needs a context it was not given."""

    def _init_state(self):
        """Allocate policy-specific state; shared state already exists."""

    def _fold_prior(self, weights, means):
        """Fold the prior into policy-specific state (counts and sums hold it)."""

    def _refresh(self):
        """Recompute derived state after the counts changed."""

    def _update(self, arms, rewards):
        """Learn from checked feedback, before the shared bookkeeping."""

    def _warm_start(self, arms, rewards):
        """Learn from replayed feedback; by default as from pulls."""
        self._update(arms, rewards)

    @abstractmethod
    def _select(self, k):
        """Return the ``k`` arms to pull; ``k`` is already checked."""

    @abstractmethod
    def _estimates(self):
        """Return the per-arm removal score stored as ``estimates_``."""

    def _check_is_reset(self):
        if not hasattr(self, "n_arms_"):
            raise RuntimeError(
                f"This {type(self).__name__} has no state yet: call "
                f"reset(n_arms, rng) before select, update or probabilities."
            )


# -- helpers shared by the policy modules --------------------------------------


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_prior(prior_means, prior_weight, n_arms):
    """Return ``(means, weight)`` checked; ``(None, 0)`` without a prior."""
    if not _is_integer(prior_weight) or prior_weight < 0:
        raise ValueError(
            f"prior_weight must be an integer >= 0 (pseudo-pulls per arm), got "
            f"{prior_weight!r}."
        )
    if prior_means is None:
        return None, 0
    means = np.asarray(prior_means, dtype=float)
    if means.shape != (n_arms,) or not np.all((means >= 0) & (means <= 1)):
        raise ValueError(
            f"prior_means must be {n_arms} values in [0, 1] (one per arm), got "
            f"{prior_means!r}."
        )
    return means, int(prior_weight)


def _empirical_means(counts, sums, default):
    """``sums / counts``, and ``default`` where an arm has no pull yet."""
    pulled = counts > 0
    means = np.full(counts.shape[0], float(default))
    means[pulled] = sums[pulled] / counts[pulled]
    return means


def _round_robin(counts, k):
    """The ``k`` arms with the fewest pulls, ties by lowest index."""
    return np.argsort(counts, kind="stable")[:k]


def _check_real(
    value, name, low=-np.inf, high=np.inf, *, low_open=False, high_open=False
):
    """Return ``value`` as a float after checking it lies in the interval.

    The interval is ``[low, high]`` with ends made open by ``low_open`` /
    ``high_open``; infinite ends are always open, so NaN and infinities are
    rejected. The error names the hyper-parameter so users know what to fix.
    """
    left = "(" if low_open or np.isinf(low) else "["
    right = ")" if high_open or np.isinf(high) else "]"
    interval = f"{left}{low}, {high}{right}"
    message = f"{name} must be a real number in {interval}, got {value!r}."
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(message)
    value = float(value)
    below = value <= low if left == "(" else value < low
    above = value >= high if right == ")" else value > high
    if np.isnan(value) or below or above:
        raise ValueError(message)
    return value


def _check_feedback(arms, rewards, n_arms):
    """Return ``arms`` (int) and ``rewards`` (float) as aligned 1-d arrays."""
    arms = np.atleast_1d(np.asarray(arms))
    rewards = np.atleast_1d(np.asarray(rewards, dtype=float))
    if arms.ndim != 1 or rewards.shape != arms.shape:
        raise ValueError(
            f"arms and rewards must be 1-d arrays of the same length, got "
            f"shapes {arms.shape} and {rewards.shape}."
        )
    # An empty list has a float dtype but is a valid (empty) set of arms.
    if arms.size and arms.dtype.kind not in "iu":
        raise ValueError(f"arms must be integers, got dtype {arms.dtype}.")
    arms = arms.astype(np.intp)
    if arms.size and (arms.min() < 0 or arms.max() >= n_arms):
        raise ValueError(f"arms must lie in [0, {n_arms}), got {arms}.")
    if not np.all(np.isfinite(rewards)):
        raise ValueError(f"rewards must be finite, got {rewards}.")
    if rewards.size and (rewards.min() < 0 or rewards.max() > 1):
        raise ValueError(f"rewards must lie in [0, 1], got {rewards}.")
    return arms, rewards


def _logits(values, temperature):
    """Return ``(values - max(values)) / temperature``, the log-weights of
    ``exp(values / temperature)`` up to a constant.

    The maximum is subtracted *before* dividing, so the logits are <= 0 and
    their exponentials never overflow, even for a temperature tiny enough that
    ``values / temperature`` alone would.
    """
    return (values - values.max()) / temperature


def _boltzmann(values, temperature):
    """Return the distribution ``p_i ∝ exp(values_i / temperature)``."""
    weights = np.exp(_logits(values, temperature))
    return weights / weights.sum()


def _rank(scores, rng):
    """Return arm indices by decreasing score, ties in random order.

    Random tie-breaking matters: at the start every arm has the same score,
    and always preferring the lowest index would bias which neurons get
    explored first.
    """
    return np.lexsort((rng.random(scores.shape[0]), -scores))
