"""Tests of skbandit.policies: the protocol, hand-computed updates, behaviour."""

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.base import clone

import skbandit.policies
from skbandit.policies import (
    EXP3,
    POLICIES,
    UCB1,
    BasePolicy,
    EpsilonGreedy,
    GaussianThompson,
    Hedge,
    Softmax,
    ThompsonSampling,
    make_policy,
)

ALL_CLASSES = list(POLICIES.values())
WITH_PROBABILITIES = [EpsilonGreedy, Softmax, Hedge, EXP3]
# Non-default hyper-parameters, to check they survive clone/make_policy.
CUSTOM_PARAMS = {
    EpsilonGreedy: {"epsilon": 0.3, "initial_value": 0.2},
    Softmax: {"temperature": 0.7, "initial_value": 0.9},
    UCB1: {"c": 1.0, "initial_value": 0.1},
    ThompsonSampling: {"prior_alpha": 2.0, "prior_beta": 3.0},
    GaussianThompson: {
        "prior_mean": 0.4,
        "prior_std": 0.2,
        "noise_std": 0.1,
        "min_noise_std": 0.01,
    },
    Hedge: {"learning_rate": 2.0},
    EXP3: {"gamma": 0.4},
}
ids = [cls.__name__ for cls in ALL_CLASSES]


def play(policy, n_rounds, k, seed, means):
    """Run ``policy`` on a Bernoulli bandit; return the arms selected per round."""
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(n_rounds):
        arms = policy.select(k)
        rewards = (rng.random(arms.shape[0]) < means[arms]).astype(float)
        policy.update(arms, rewards)
        history.append(arms)
    return history


# -- layering -------------------------------------------------------------------


def test_policies_import_only_numpy_and_the_standard_library():
    allowed = {"abc", "copy", "inspect", "math", "numbers", "numpy"}
    package = Path(skbandit.policies.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1:  # within skbandit.policies
                    continue
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_public_names_are_exported():
    for name in skbandit.policies.__all__:
        assert hasattr(skbandit.policies, name)
    assert set(POLICIES) == {
        "epsilon_greedy",
        "softmax",
        "ucb1",
        "thompson",
        "gaussian_thompson",
        "hedge",
        "exp3",
    }


# -- protocol -------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
def test_reset_allocates_fresh_state(cls):
    policy = cls()
    assert policy.reset(5, rng=0) is policy
    assert policy.n_arms_ == 5 and policy.n_rounds_ == 0
    assert policy.counts_.dtype.kind == "i"
    np.testing.assert_array_equal(policy.counts_, 0)
    np.testing.assert_array_equal(policy.sums_, 0.0)
    assert policy.estimates_.shape == (5,) and policy.estimates_.dtype == float
    # A second reset forgets the first run.
    play(policy, 2, 1, seed=0, means=np.full(5, 0.5))
    policy.reset(3, rng=1)
    assert policy.n_rounds_ == 0 and policy.counts_.sum() == 0
    assert policy.estimates_.shape == (3,)


@pytest.mark.parametrize("rng", [None, 7, np.random.default_rng(7)])
def test_reset_accepts_generator_seed_or_none(rng):
    policy = UCB1().reset(4, rng=rng)
    assert isinstance(policy.rng_, np.random.Generator)
    if isinstance(rng, np.random.Generator):
        assert policy.rng_ is rng  # shared with the caller, not copied


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
@pytest.mark.parametrize("k", [1, 3, 7])
def test_select_returns_valid_arms(cls, k):
    policy = cls().reset(7, rng=0)
    for arms in play(policy, 5, k, seed=1, means=np.linspace(0, 1, 7)):
        assert arms.dtype.kind == "i"
        assert np.all((arms >= 0) & (arms < 7))
        if cls.full_information:
            np.testing.assert_array_equal(arms, np.arange(7))
        else:
            assert arms.shape == (k,)
        if not cls.allows_repeats:
            assert len(set(arms.tolist())) == arms.shape[0]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
@pytest.mark.parametrize("k", [0, -1, 2.5, True, "2"])
def test_select_rejects_invalid_k(cls, k):
    policy = cls().reset(4, rng=0)
    with pytest.raises(ValueError, match="k must be"):
        policy.select(k)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
def test_k_above_n_arms_only_where_allowed(cls):
    policy = cls().reset(4, rng=0)
    if cls.allows_repeats or cls.full_information:
        assert policy.select(9).shape == ((4,) if cls.full_information else (9,))
    else:
        with pytest.raises(ValueError, match="k=5 exceeds n_arms_=4"):
            policy.select(5)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
def test_methods_need_reset(cls):
    policy = cls()
    with pytest.raises(RuntimeError, match="reset"):
        policy.select(1)
    with pytest.raises(RuntimeError, match="reset"):
        policy.update([0], [0.5])
    if hasattr(policy, "probabilities"):
        with pytest.raises(RuntimeError, match="reset"):
            policy.probabilities()


@pytest.mark.parametrize("cls", WITH_PROBABILITIES, ids=lambda c: c.__name__)
def test_probabilities_are_a_distribution(cls):
    policy = cls().reset(6, rng=0)
    for _ in range(4):
        p = policy.probabilities()
        assert p.shape == (6,) and np.all(p >= 0)
        assert p.sum() == pytest.approx(1.0)
        play(policy, 1, 2, seed=policy.n_rounds_, means=np.linspace(0, 1, 6))


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
def test_same_seed_gives_same_run(cls):
    means = np.linspace(0.1, 0.9, 6)
    first = play(cls().reset(6, rng=3), 8, 2, seed=0, means=means)
    second = play(cls().reset(6, rng=3), 8, 2, seed=0, means=means)
    np.testing.assert_array_equal(first, second)
    if not cls.full_information:
        other = play(cls().reset(6, rng=4), 8, 2, seed=0, means=means)
        assert not np.array_equal(first, other)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
@pytest.mark.parametrize(
    "arms, rewards, name",
    [
        ([0, 1], [0.5, np.nan], "rewards"),
        ([0, 1], [0.5, np.inf], "rewards"),
        ([0, 1], [0.5, -0.1], "rewards"),
        ([0, 1], [0.5, 1.1], "rewards"),
        ([0, 4], [0.5, 0.5], "arms"),
        ([0, -1], [0.5, 0.5], "arms"),
        ([0.0, 1.5], [0.5, 0.5], "arms"),
        ([0, 1], [0.5], "same length"),
        ([[0, 1]], [[0.5, 0.5]], "1-d"),
    ],
)
def test_update_rejects_bad_feedback_and_keeps_state(cls, arms, rewards, name):
    policy = cls().reset(4, rng=0)
    policy.select(2)  # EXP3 needs a pending draw
    before = policy.estimates_.copy()
    with pytest.raises(ValueError, match=name):
        policy.update(arms, rewards)
    assert policy.n_rounds_ == 0 and policy.counts_.sum() == 0
    np.testing.assert_array_equal(policy.estimates_, before)


def test_repeated_arms_in_one_update_each_count_as_a_pull():
    policy = EpsilonGreedy().reset(3, rng=0)
    policy.update([1, 1, 2], [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(policy.counts_, [0, 2, 1])
    np.testing.assert_allclose(policy.sums_, [0.0, 1.0, 0.5])
    np.testing.assert_allclose(policy.estimates_, [0.5, 0.5, 0.5])
    assert policy.n_rounds_ == 1


@pytest.mark.parametrize(
    "cls, params, name",
    [
        (EpsilonGreedy, {"epsilon": -0.1}, "epsilon"),
        (EpsilonGreedy, {"epsilon": 1.5}, "epsilon"),
        (EpsilonGreedy, {"epsilon": np.nan}, "epsilon"),
        (EpsilonGreedy, {"epsilon": "0.1"}, "epsilon"),
        (EpsilonGreedy, {"initial_value": 2.0}, "initial_value"),
        (Softmax, {"temperature": 0.0}, "temperature"),
        (Softmax, {"temperature": -1.0}, "temperature"),
        (Softmax, {"temperature": np.inf}, "temperature"),
        (Softmax, {"initial_value": -0.5}, "initial_value"),
        (UCB1, {"c": -1.0}, "c"),
        (UCB1, {"initial_value": None}, "initial_value"),
        (ThompsonSampling, {"prior_alpha": 0.0}, "prior_alpha"),
        (ThompsonSampling, {"prior_beta": -1.0}, "prior_beta"),
        (Hedge, {"learning_rate": 0.0}, "learning_rate"),
        (Hedge, {"learning_rate": np.inf}, "learning_rate"),
        (EXP3, {"gamma": 0.0}, "gamma"),
        (EXP3, {"gamma": 1.5}, "gamma"),
        (EXP3, {"gamma": True}, "gamma"),
    ],
)
def test_bad_hyperparameters_raise_at_reset_naming_them(cls, params, name):
    policy = cls(**params)  # __init__ stores, never validates
    with pytest.raises(ValueError, match=f"^{name} must be"):
        policy.reset(3, rng=0)


@pytest.mark.parametrize(
    "policy",
    [
        EpsilonGreedy(epsilon=0.0),
        EpsilonGreedy(epsilon=1.0, initial_value=1.0),
        Softmax(temperature=1e-12),
        UCB1(c=0.0),
        ThompsonSampling(prior_alpha=0.5, prior_beta=0.5),
        EXP3(gamma=1.0),
    ],
    ids=repr,
)
def test_boundary_hyperparameters_are_valid(policy):
    play(policy.reset(3, rng=0), 3, 2, seed=0, means=np.array([0.2, 0.5, 0.8]))


@pytest.mark.parametrize("n_arms", [0, -2, 2.5, True, None])
def test_bad_n_arms(n_arms):
    with pytest.raises(ValueError, match="n_arms"):
        UCB1().reset(n_arms)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
def test_params_clone_and_repr(cls):
    policy = cls(**CUSTOM_PARAMS[cls]).reset(4, rng=0)
    assert policy.get_params(deep=False) == CUSTOM_PARAMS[cls]
    copy = clone(policy)
    assert type(copy) is cls and copy is not policy
    assert copy.get_params() == policy.get_params()
    assert not hasattr(copy, "n_arms_")  # a clone carries no fitted state
    assert copy.set_params(**cls().get_params()) is copy
    assert copy.get_params() == cls().get_params()
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        copy.set_params(nope=1)
    text = repr(policy)
    assert text.startswith(cls.__name__ + "(")
    assert all(f"{k}={v!r}" in text for k, v in CUSTOM_PARAMS[cls].items())


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
def test_pickle_keeps_state_and_random_stream(cls):
    policy = cls().reset(5, rng=0)
    play(policy, 3, 2, seed=0, means=np.linspace(0, 1, 5))
    restored = pickle.loads(pickle.dumps(policy))
    np.testing.assert_array_equal(restored.estimates_, policy.estimates_)
    np.testing.assert_array_equal(restored.select(2), policy.select(2))


# -- hand-computed updates ------------------------------------------------------


def test_gaussian_thompson_known_noise_hand_computed():
    policy = GaussianThompson(prior_mean=0.5, prior_std=0.5, noise_std=0.1)
    policy.reset(3, rng=0).update([0, 0, 1], [0.6, 0.8, 0.3])
    # precision: 1/0.25 + N/0.01 -> arm 0: 4 + 200 = 204; arm 1: 104; arm 2: 4.
    # mean: (0.5 * 4 + S / 0.01) / precision -> arm 0: (2 + 140) / 204,
    # arm 1: (2 + 30) / 104, arm 2 (never pulled): the prior, 0.5.
    np.testing.assert_allclose(policy.posterior_mean_, [142 / 204, 32 / 104, 0.5])
    np.testing.assert_allclose(
        policy.posterior_std_, [204**-0.5, 104**-0.5, 0.5], rtol=1e-12
    )
    np.testing.assert_array_equal(policy.estimates_, policy.posterior_mean_)


def test_gaussian_thompson_estimates_the_noise_from_within_arm_spread():
    policy = GaussianThompson(prior_mean=0.5, prior_std=1.0).reset(3, rng=0)
    policy.update([0], [0.7])
    # No arm pulled twice yet: sigma is the prior std.
    assert policy.noise_std_ == 1.0
    policy.update([0, 1, 1], [0.5, 0.2, 0.4])
    # Within-arm squares: arm 0 (0.7, 0.5): 0.02; arm 1 (0.2, 0.4): 0.02.
    # Degrees of freedom: 4 pulls - 2 pulled arms = 2 -> sigma^2 = 0.02.
    assert policy.noise_std_ == pytest.approx(0.02**0.5)
    precision = 1.0 + 2 / 0.02  # both pulled arms: 101
    np.testing.assert_allclose(
        policy.posterior_mean_,
        [(0.5 + 1.2 / 0.02) / precision, (0.5 + 0.6 / 0.02) / precision, 0.5],
    )
    # Rewards that agree exactly: the floor keeps the posterior finite.
    floored = GaussianThompson(min_noise_std=0.05).reset(1, rng=0)
    floored.update([0, 0], [0.3, 0.3])
    assert floored.noise_std_ == 0.05


def test_gaussian_thompson_samples_the_posterior():
    policy = GaussianThompson(prior_std=1.0, noise_std=0.1).reset(2, rng=0)
    policy.update([0, 1], [0.55, 0.45])
    # theta_0 - theta_1 ~ N(m_0 - m_1, s_0^2 + s_1^2): P(arm 0 first) = Phi(.).
    from scipy.stats import norm

    gap = policy.posterior_mean_[0] - policy.posterior_mean_[1]
    expected = norm.cdf(gap / np.hypot(*policy.posterior_std_))
    first = np.mean([policy.select(1)[0] == 0 for _ in range(4000)])
    # Binomial standard error <= 0.008; 0.04 is 5 of them.
    assert abs(first - expected) < 0.04


def test_epsilon_greedy_hand_computed():
    policy = EpsilonGreedy(epsilon=0.0).reset(3, rng=0)
    policy.update([0, 1, 0], [1.0, 0.2, 0.5])
    # arm 0: (1 + 0.5) / 2 = 0.75; arm 1: 0.2; arm 2 never pulled: 0.5.
    np.testing.assert_allclose(policy.estimates_, [0.75, 0.2, 0.5])
    # Greedy slots take the best means in order: 0.75 (arm 0), 0.5 (arm 2).
    np.testing.assert_array_equal(policy.select(2), [0, 2])
    # One slot with epsilon=0.3 and K=3: 0.3/3 = 0.1 each, + 0.7 for arm 0.
    policy.set_params(epsilon=0.3)
    np.testing.assert_allclose(policy.probabilities(), [0.8, 0.1, 0.1])


def test_epsilon_greedy_ties_share_the_greedy_mass():
    policy = EpsilonGreedy(epsilon=0.2).reset(4, rng=0)
    policy.update([0, 1, 2], [0.9, 0.9, 0.1])
    # Arms 0 and 1 tie: 0.8 / 2 + 0.2 / 4 = 0.45 each, 0.05 for the others.
    np.testing.assert_allclose(policy.probabilities(), [0.45, 0.45, 0.05, 0.05])


def test_epsilon_greedy_single_slot_frequencies_match_probabilities():
    policy = EpsilonGreedy(epsilon=0.4).reset(4, rng=0)
    policy.update([0, 1, 2, 3], [0.2, 0.9, 0.4, 0.1])
    picks = np.array([policy.select(1)[0] for _ in range(4000)])
    frequencies = np.bincount(picks, minlength=4) / picks.size
    # Binomial standard error <= sqrt(0.25 / 4000) = 0.008; 0.04 is 5 of them.
    np.testing.assert_allclose(frequencies, policy.probabilities(), atol=0.04)


def test_epsilon_one_explores_every_slot_uniformly():
    policy = EpsilonGreedy(epsilon=1.0).reset(4, rng=0)
    policy.update([0, 1, 2, 3], [1.0, 0.0, 0.0, 0.0])
    picks = np.concatenate([policy.select(2) for _ in range(2000)])
    # Two distinct uniform arms out of 4: each is included with prob. 1/2.
    np.testing.assert_allclose(np.bincount(picks) / 2000, 0.5, atol=0.06)


def test_softmax_hand_computed():
    policy = Softmax(temperature=0.5).reset(3, rng=0)
    policy.update([0, 1, 0], [1.0, 0.2, 0.5])
    # Means [0.75, 0.2, 0.5 (initial)] / 0.5 = [1.5, 0.4, 1.0];
    # exp: 4.481689, 1.491825, 2.718282; sum 8.691796.
    np.testing.assert_allclose(
        policy.probabilities(), [0.515623, 0.171636, 0.312741], atol=1e-6
    )
    picks = np.array([policy.select(1)[0] for _ in range(4000)])
    # The first draw follows p (standard error <= 0.008; 0.04 is 5 of them).
    np.testing.assert_allclose(
        np.bincount(picks, minlength=3) / picks.size,
        policy.probabilities(),
        atol=0.04,
    )


def test_softmax_draws_without_replacement_like_sequential_sampling():
    policy = Softmax(temperature=0.5).reset(3, rng=0)
    policy.update([0, 1, 0], [1.0, 0.2, 0.5])
    p = policy.probabilities()
    # P(arm i among 2 of 3) = 1 - P(i is the one left) and P(i left) is
    # sum over first draws j != i of p_j * p_l / (1 - p_j), l the third arm.
    left = [
        sum(p[j] * p[3 - i - j] / (1 - p[j]) for j in range(3) if j != i)
        for i in range(3)
    ]
    picks = np.concatenate([policy.select(2) for _ in range(4000)])
    np.testing.assert_allclose(np.bincount(picks) / 4000, 1 - np.array(left), atol=0.04)


def test_softmax_tiny_temperature_is_greedy_and_stable():
    policy = Softmax(temperature=1e-300).reset(4, rng=0)
    policy.update([0, 1, 2, 3], [0.3, 0.9, 0.6, 0.1])
    np.testing.assert_array_equal(policy.probabilities(), [0, 1, 0, 0])
    np.testing.assert_array_equal(policy.select(3), [1, 2, 0])


def test_ucb1_hand_computed():
    policy = UCB1().reset(3, rng=0)
    policy.update([0, 1, 2, 0], [1.0, 0.0, 0.5, 0.0])
    # counts [2, 1, 1], means [0.5, 0, 0.5], t = 4, ln 4 = 1.386294:
    # arm 0: 0.5 + sqrt(2 * 1.386294 / 2) = 1.677410
    # arm 1: 0.0 + sqrt(2 * 1.386294 / 1) = 1.665109
    # arm 2: 0.5 + 1.665109               = 2.165109
    np.testing.assert_allclose(
        policy.upper_confidence_bounds(), [1.677410, 1.665109, 2.165109], atol=1e-6
    )
    np.testing.assert_array_equal(policy.select(2), [2, 0])
    np.testing.assert_allclose(policy.estimates_, [0.5, 0.0, 0.5])


def test_ucb1_unpulled_arms_have_infinite_index():
    policy = UCB1(initial_value=0.3).reset(3, rng=0)
    policy.update([1], [1.0])
    # t = 1, ln 1 = 0: the pulled arm's index is its mean.
    np.testing.assert_array_equal(
        policy.upper_confidence_bounds(), [np.inf, 1.0, np.inf]
    )
    np.testing.assert_allclose(policy.estimates_, [0.3, 1.0, 0.3])


@pytest.mark.parametrize("k", [1, 3, 4])
def test_ucb1_pulls_every_arm_before_any_twice(k):
    policy = UCB1().reset(10, rng=0)
    means = np.linspace(0.1, 0.9, 10)
    rng = np.random.default_rng(0)
    for _ in range(12):
        unpulled = set(np.flatnonzero(policy.counts_ == 0).tolist())
        arms = set(policy.select(k).tolist())
        if not arms <= unpulled:  # exploiting: no unpulled arm may be left out
            assert unpulled <= arms
        arms = np.array(sorted(arms))
        policy.update(arms, (rng.random(arms.size) < means[arms]).astype(float))
    assert policy.counts_.min() >= 1


def test_ucb1_first_pulls_are_in_seeded_random_order():
    orders = {tuple(UCB1().reset(8, rng=seed).select(8)) for seed in range(5)}
    assert len(orders) > 1  # not always lowest index first


def test_thompson_hand_computed():
    policy = ThompsonSampling(prior_alpha=1, prior_beta=2).reset(3, rng=0)
    # Rewards exactly 1 and 0 need no coin flip: a success for arm 0 (twice),
    # a failure for arm 1.
    policy.update([0, 1, 0], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(policy.alpha_, [3, 1, 1])
    np.testing.assert_array_equal(policy.beta_, [2, 3, 2])
    # Posterior means 3/5, 1/4 and the prior mean 1/3.
    np.testing.assert_allclose(policy.estimates_, [0.6, 0.25, 1 / 3])


def test_thompson_bernoulli_trick_on_fractional_rewards():
    policy = ThompsonSampling().reset(1, rng=0)
    policy.update(np.zeros(2000, dtype=int), np.full(2000, 0.3))
    # Every reward adds exactly one pseudo-count, a success with prob. 0.3.
    assert policy.alpha_[0] + policy.beta_[0] == 2 + 2000
    # Standard error sqrt(0.21 / 2000) = 0.010; 0.05 is 5 of them.
    assert (policy.alpha_[0] - 1) / 2000 == pytest.approx(0.3, abs=0.05)


def test_hedge_hand_computed():
    policy = Hedge(learning_rate=0.5).reset(3, rng=0)
    np.testing.assert_allclose(policy.probabilities(), 1 / 3)
    policy.update([0, 1, 2], [1.0, 0.0, 0.5])
    # w = exp(0.5 * [1, 0, 0.5]) = [1.648721, 1, 1.284025]; sum 3.932746.
    np.testing.assert_allclose(
        policy.probabilities(), [0.419229, 0.254275, 0.326496], atol=1e-6
    )
    np.testing.assert_allclose(policy.estimates_, [1.0, 0.0, 0.5])
    policy.update([0, 1, 2], [0.0, 1.0, 0.5])
    # G = [1, 1, 1]: uniform again; average reward per round [0.5, 0.5, 0.5].
    np.testing.assert_allclose(policy.probabilities(), 1 / 3)
    np.testing.assert_allclose(policy.estimates_, 0.5)
    # An arm left out of a round earns nothing: G = [2, 1, 1] after round 3.
    policy.update([0], [1.0])
    np.testing.assert_allclose(policy.estimates_, [2 / 3, 1 / 3, 1 / 3])


def test_hedge_huge_learning_rate_stays_finite():
    policy = Hedge(learning_rate=1e300).reset(3, rng=0)
    policy.update([0, 1, 2], [0.2, 0.7, 0.4])
    np.testing.assert_array_equal(policy.probabilities(), [0, 1, 0])


def test_exp3_hand_computed():
    policy = EXP3(gamma=0.3).reset(3, rng=5)
    reward_of = np.array([1.0, 0.0, 0.5])
    # Round 1, p = [1/3, 1/3, 1/3]. Seed 5 draws arm 2 twice (with
    # replacement): xhat_2 = (0.5 + 0.5) / (k p_2) = 1 / (2/3) = 1.5.
    arms = policy.select(2)
    np.testing.assert_array_equal(arms, [2, 2], err_msg="seed 5's draw changed")
    policy.update(arms, reward_of[arms])
    np.testing.assert_allclose(policy.estimated_gains_, [0.0, 0.0, 1.5])
    # log w = (gamma / K) G = [0, 0, 0.15]; exp(0.15) = 1.161834, sum 3.161834;
    # p = 0.7 * [0.316272, 0.316272, 0.367455] + 0.1.
    p = [0.321390, 0.321390, 0.357219]
    np.testing.assert_allclose(policy.probabilities(), p, atol=1e-6)
    # Round 2 draws arms 1 and 0 from that p:
    # xhat_0 = 1 / (2 * 0.321390) = 1.555740, xhat_1 = 0 / (...) = 0.
    arms = policy.select(2)
    np.testing.assert_array_equal(arms, [1, 0], err_msg="seed 5's draw changed")
    policy.update(arms, reward_of[arms])
    np.testing.assert_allclose(policy.estimated_gains_, [1.555740, 0.0, 1.5], atol=1e-5)
    # estimates_ = G / n_rounds.
    np.testing.assert_allclose(policy.estimates_, [0.777870, 0.0, 0.75], atol=1e-5)


def test_exp3_update_must_report_the_last_draw():
    policy = EXP3().reset(4, rng=0)
    with pytest.raises(RuntimeError, match="call select"):
        policy.update([0], [0.5])
    arms = policy.select(3)
    other = (arms + 1) % 4
    with pytest.raises(ValueError, match="exactly the arms of the last select"):
        policy.update(other, np.full(3, 0.5))
    with pytest.raises(ValueError, match="exactly the arms of the last select"):
        policy.update(arms[:2], np.full(2, 0.5))
    assert policy.n_rounds_ == 0 and policy.estimated_gains_.sum() == 0
    policy.update(arms[::-1], np.full(3, 0.5))  # any order is fine
    with pytest.raises(RuntimeError, match="call select"):
        policy.update(arms, np.full(3, 0.5))  # the draw was consumed


def test_exp3_importance_weighted_estimates_are_unbiased():
    # Deterministic rewards, so estimated_gains_ / n_rounds_ is the running
    # mean of xhat_t = r * c_t / (k p_t). Each term has conditional mean r
    # (E[c_t] = k p_t), so the mean converges to r even though p moves.
    # Its variance per round is at most r_i^2 / (k p_i) <= 0.81 / (2 * 0.1)
    # (p_i >= gamma / K = 0.1), so over 20 x 1000 rounds the standard error is
    # at most sqrt(4.05 / 20000) = 0.014: a tolerance of 0.07 is 5 of them.
    reward = np.array([0.9, 0.5, 0.2, 0.0, 0.7])
    estimates = []
    for seed in range(20):
        policy = EXP3(gamma=0.5).reset(5, rng=seed)
        for _ in range(1000):
            arms = policy.select(2)
            policy.update(arms, reward[arms])
        estimates.append(policy.estimates_)
    np.testing.assert_allclose(np.mean(estimates, axis=0), reward, atol=0.07)


# -- behaviour on a synthetic bandit ---------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=ids)
def test_identifies_the_best_arm_better_than_chance(cls):
    # 10 Bernoulli arms, means 0.1 ... 0.9, 400 pulls in rounds of 5 (Hedge:
    # rounds of all 10). Random ranking finds the best arm with prob. 1/10;
    # 14 successes out of 50 already give p < 1e-3, and every policy reaches
    # at least 29 with these seeds.
    means = np.linspace(0.1, 0.9, 10)
    successes = 0
    for seed in range(50):
        policy = cls().reset(10, rng=seed)
        n_rounds = 400 // (10 if cls.full_information else 5)
        play(policy, n_rounds, 5, seed=1000 + seed, means=means)
        successes += int(np.argmax(policy.estimates_) == 9)
    assert binomtest(successes, 50, 0.1, alternative="greater").pvalue < 1e-3


# -- numerical robustness ----------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(1e-300, 1e300),
    rewards=st.lists(st.floats(0, 1), min_size=4, max_size=4),
    cls=st.sampled_from([Softmax, Hedge]),
)
def test_boltzmann_distributions_never_overflow(scale, rewards, cls):
    param = {Softmax: "temperature", Hedge: "learning_rate"}[cls]
    policy = cls(**{param: scale}).reset(4, rng=0)
    policy.update([0, 1, 2, 3], rewards)
    p = policy.probabilities()
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0)
    assert np.all(np.isin(policy.select(2), np.arange(4)))


@settings(max_examples=30, deadline=None)
@given(
    gamma=st.floats(1e-12, 1.0),
    rewards=st.lists(st.floats(0, 1), min_size=8, max_size=8),
)
def test_exp3_probabilities_keep_the_exploration_floor(gamma, rewards):
    policy = EXP3(gamma=gamma).reset(3, rng=0)
    for reward in rewards:
        arms = policy.select(2)
        policy.update(arms, np.full(2, reward))
    p = policy.probabilities()
    assert p.sum() == pytest.approx(1.0)
    assert np.all(p >= gamma / 3 * (1 - 1e-9))


# -- registry -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_make_policy_from_a_name(name):
    policy = make_policy(name)
    assert type(policy) is POLICIES[name]
    assert policy.get_params() == POLICIES[name]().get_params()


def test_make_policy_copies_an_instance_without_touching_it():
    mine = UCB1(c=0.5).reset(4, rng=0)
    mine.update([0, 1], [1.0, 0.0])
    policy = make_policy(mine)
    assert type(policy) is UCB1 and policy is not mine
    assert policy.get_params() == {"c": 0.5, "initial_value": 0.5}
    assert not hasattr(policy, "n_arms_")
    np.testing.assert_array_equal(mine.counts_, [1, 1, 0, 0])


def test_make_policy_accepts_a_duck_typed_policy():
    class RoundRobin:
        def reset(self, n_arms, rng=None):
            self.n_arms_, self.next_ = n_arms, 0
            self.estimates_ = np.zeros(n_arms)
            return self

        def select(self, k):
            arms = (self.next_ + np.arange(k)) % self.n_arms_
            self.next_ += k
            return arms

        def update(self, arms, rewards):
            self.estimates_[arms] = rewards
            return self

    mine = RoundRobin().reset(3)
    policy = make_policy(mine)
    assert isinstance(policy, RoundRobin) and policy is not mine
    np.testing.assert_array_equal(policy.reset(3).select(2), [0, 1])
    assert not isinstance(policy, BasePolicy)


def test_make_policy_rejects_unknown_names_and_other_objects():
    with pytest.raises(ValueError, match="Unknown policy 'ucb'.*'epsilon_greedy'"):
        make_policy("ucb")
    for spec in [None, 3, UCB1, object()]:
        with pytest.raises(TypeError, match="policy must be"):
            make_policy(spec)
