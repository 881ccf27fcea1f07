"""Tests of the pure-exploration policies (uniform, SAR, LUCB) and of what
every policy may now be told at reset: n_select, budget and a prior."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from skbandit._options import POLICY_NAMES
from skbandit.policies import (
    BEST_SET_POLICIES,
    LUCB,
    POLICIES,
    UCB1,
    EpsilonGreedy,
    GaussianThompson,
    SuccessiveAcceptsRejects,
    ThompsonSampling,
    Uniform,
    make_policy,
    sar_phase_lengths,
)

BEST_SET = [SuccessiveAcceptsRejects, LUCB]
# A clear boundary: 3 arms to find, two of them far above the rest, the
# third just above the fourth, and eight far below.
CLEAR = np.array([0.8, 0.8, 0.55, 0.45] + [0.2] * 8)
N_SELECT = 3


def identify(policy, means, n_select, budget, seed, k=4, sd=0.2, **reset):
    """Run ``policy`` on clipped Gaussian arms until the budget is spent or it
    is done; return (whether its top ``n_select`` is wrong, pulls spent)."""
    rng = np.random.default_rng(seed)
    policy.reset(means.size, rng=seed, n_select=n_select, budget=budget, **reset)
    pulls = 0
    while pulls < budget and not getattr(policy, "done_", False):
        arms = policy.select(min(k, budget - pulls))
        rewards = np.clip(means[arms] + sd * rng.standard_normal(arms.size), 0, 1)
        policy.update(arms, rewards)
        pulls += arms.size
    chosen = np.argsort(-policy.estimates_, kind="stable")[:n_select]
    best = np.argsort(-means, kind="stable")[:n_select]
    return set(chosen.tolist()) != set(best.tolist()), pulls


def error_rate(cls, budget, n_runs=200, **kwargs):
    return np.mean(
        [
            identify(cls(), CLEAR, N_SELECT, budget, s, **kwargs)[0]
            for s in range(n_runs)
        ]
    )


# -- names -----------------------------------------------------------------------


def test_names_are_registered_and_accepted_by_policy_options():
    assert BEST_SET_POLICIES == {
        "uniform": Uniform,
        "sar": SuccessiveAcceptsRejects,
        "lucb": LUCB,
    }
    assert not set(BEST_SET_POLICIES) & set(POLICIES)
    for name, cls in BEST_SET_POLICIES.items():
        assert type(make_policy(name)) is cls
        assert name in POLICY_NAMES


@pytest.mark.parametrize("cls", [Uniform, *BEST_SET])
def test_get_params_clone_and_pickle(cls):
    params = {"delta": 0.1, "epsilon": 0.01, "sigma": 0.2} if cls is LUCB else {}
    policy = cls(**params)
    assert policy.get_params() == params
    assert clone(policy).get_params() == params
    assert make_policy(policy).get_params() == params
    policy.reset(6, rng=0, n_select=2, budget=30)
    policy.update(policy.select(3), [0.5] * len(policy.select(3)))
    again = pickle.loads(pickle.dumps(policy))
    np.testing.assert_array_equal(again.estimates_, policy.estimates_)


# -- uniform ----------------------------------------------------------------------


def test_uniform_is_round_robin_by_index():
    policy = Uniform().reset(5, rng=0)
    seen = []
    for _ in range(4):
        arms = policy.select(3)
        seen.append(arms.tolist())
        policy.update(arms, np.zeros(3))
    assert seen == [[0, 1, 2], [3, 4, 0], [1, 2, 3], [4, 0, 1]]
    assert policy.counts_.max() - policy.counts_.min() <= 1


# -- successive accepts and rejects -----------------------------------------------


def test_sar_phase_lengths_follow_the_paper():
    # log-bar(4) = 1/2 + 1/2 + 1/3 + 1/4 = 19/12; n_k = ceil(36 / (19/12 (5-k)))
    np.testing.assert_array_equal(sar_phase_lengths(4, 40), [6, 8, 12])
    # log-bar(5) = 107/60: 95 * 60 / 107 / (6 - k) = 10.65, 13.32, 17.76, 26.64
    np.testing.assert_array_equal(sar_phase_lengths(5, 100), [11, 14, 18, 27])
    # Every arm is measured before it is decided, however small the budget.
    np.testing.assert_array_equal(sar_phase_lengths(3, 3), [1, 1])
    # The phases never spend more than the budget.
    for n_arms, budget in [(4, 40), (7, 70), (12, 120), (64, 640)]:
        n = sar_phase_lengths(n_arms, budget)
        assert n.sum() + n[-1] <= budget


def test_sar_accepts_and_rejects_as_computed_by_hand():
    # Rewards equal the means. Phase 1 (6 pulls each): ranked means
    # 0.9, 0.55, 0.5, 0.1 with 2 to accept; gaps 0.4, 0.05, 0.05, 0.45, so
    # arm 3 is rejected. Phase 2 (8 pulls): gaps 0.4, 0.05, 0.05 among
    # arms 0, 1, 2: arm 0 accepted. Phase 3 (12 pulls): one to accept among
    # arms 1 and 2, gaps 0.05 and 0.05, the tie goes to the better rank:
    # arm 1 accepted, arm 2 rejected as forced.
    means = np.array([0.9, 0.55, 0.5, 0.1])
    policy = SuccessiveAcceptsRejects().reset(4, rng=0, n_select=2, budget=40)
    decisions = []
    while not policy.done_:
        arms = policy.select(4)
        before = policy.status_.copy()
        policy.update(arms, means[arms])
        for arm in np.flatnonzero(policy.status_ != before):
            decisions.append((int(arm), int(policy.status_[arm]), policy.phase_))
    np.testing.assert_array_equal(policy.phase_targets_, [6, 8, 12])
    assert decisions == [(3, -1, 1), (0, 1, 2), (1, 1, 3), (2, -1, 3)]
    np.testing.assert_array_equal(policy.counts_, [8, 12, 12, 6])
    # Accepted, then undecided, then rejected: the top 2 are the accepted.
    np.testing.assert_allclose(policy.estimates_, [2.9, 2.55, 0.5, 0.1])


def test_sar_rounds_pull_only_undecided_arms_short_of_the_phase():
    means = np.array([0.9, 0.55, 0.5, 0.1])
    policy = SuccessiveAcceptsRejects().reset(4, rng=0, n_select=2, budget=40)
    for _ in range(6):  # phase 1, one pull of each arm per round
        arms = policy.select(4)
        np.testing.assert_array_equal(arms, [0, 1, 2, 3])
        policy.update(arms, means[arms])
    np.testing.assert_array_equal(policy.select(4), [0, 1, 2])  # arm 3 rejected
    for _ in range(2):  # arms 0 and 1 reach phase 2's 8 pulls
        policy.update([0, 1], means[[0, 1]])
    np.testing.assert_array_equal(policy.select(4), [2])  # fewer than k
    # Once done, a caller that keeps asking gets round robin.
    done = SuccessiveAcceptsRejects().reset(3, rng=0, n_select=3, budget=9)
    assert done.done_
    np.testing.assert_array_equal(done.select(2), [0, 1])


# -- LUCB --------------------------------------------------------------------------


def test_lucb_bounds_are_lucb1s():
    policy = LUCB(delta=0.1).reset(4, rng=0, n_select=2)
    policy.update([0, 1, 2, 3], [1.0, 0.5, 0.5, 0.0])
    lower, upper = policy.confidence_bounds()
    radius = np.sqrt(np.log(5 * 4 * 1**4 / (4 * 0.1)) / 2)
    np.testing.assert_allclose(upper - policy.estimates_, radius)
    np.testing.assert_allclose(policy.estimates_ - lower, radius)


def test_lucb_stops_when_the_set_is_identified():
    means = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    policy = LUCB(sigma=0.1).reset(5, rng=0, n_select=2)
    np.testing.assert_array_equal(policy.select(3), [0, 1, 2])  # each arm once
    rounds = 0
    while not policy.done_:
        arms = policy.select(2)
        policy.update(arms, means[arms])
        rounds += 1
    lower, upper = policy.confidence_bounds()
    assert lower[[0, 1]].min() > upper[[2, 3, 4]].max()
    assert 3 <= rounds < 20
    np.testing.assert_array_equal(np.argsort(-policy.estimates_)[:2], [0, 1])
    # Asked anyway, it returns the critical pair, not the whole batch.
    assert len(policy.select(4)) == 2
    # Nothing to choose: identified before any pull.
    assert LUCB().reset(4, rng=0, n_select=0).done_
    assert LUCB().reset(4, rng=0, n_select=4).done_


# -- batches and identification --------------------------------------------------


@pytest.mark.parametrize("cls", BEST_SET)
@pytest.mark.parametrize("k", [1, 3, 12])
def test_rounds_return_distinct_valid_arms(cls, k):
    policy = cls().reset(CLEAR.size, rng=0, n_select=N_SELECT, budget=200)
    rng = np.random.default_rng(0)
    for _ in range(40):
        arms = policy.select(k)
        assert arms.dtype.kind == "i" and 1 <= arms.size <= k
        assert len(set(arms.tolist())) == arms.size
        assert arms.min() >= 0 and arms.max() < CLEAR.size
        policy.update(arms, (rng.random(arms.size) < CLEAR[arms]).astype(float))


@pytest.mark.parametrize("cls", [Uniform, *BEST_SET])
def test_identification_error_falls_with_the_budget(cls):
    # Errors over the same 200 seeds: about 0.25 at 3 pulls per arm; 0.055
    # (uniform), 0 (SAR) and 0.03 (LUCB) at 20.
    small, large = error_rate(cls, 36), error_rate(cls, 240)
    assert small >= 0.2 and large <= small / 4


@pytest.mark.parametrize("cls", BEST_SET)
def test_best_set_policies_beat_uniform_at_equal_budget(cls):
    # Errors over the same 200 seeds: uniform 0.13, SAR 0.04, LUCB 0.085.
    assert error_rate(cls, 120) <= error_rate(Uniform, 120) - 0.04


@pytest.mark.parametrize("cls", BEST_SET)
def test_pulls_concentrate_near_the_boundary(cls):
    counts = []
    for seed in range(50):
        policy = cls()
        identify(policy, CLEAR, N_SELECT, 120, seed)
        counts.append(policy.counts_)
    counts = np.mean(counts, axis=0)
    # Arms 2 and 3 straddle the boundary; 4 to 11 are far below it.
    assert counts[[2, 3]].mean() > 1.5 * counts[4:].mean()
    assert counts[[2, 3]].mean() > counts[[0, 1]].mean()


def test_best_set_policies_need_what_they_identify():
    with pytest.raises(ValueError, match="n_select"):
        LUCB().reset(4, rng=0)
    with pytest.raises(ValueError, match="n_select"):
        SuccessiveAcceptsRejects().reset(4, rng=0, budget=10)
    with pytest.raises(ValueError, match="budget"):
        SuccessiveAcceptsRejects().reset(4, rng=0, n_select=2)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"delta": 0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"delta": float("nan")}, "delta"),
        ({"epsilon": -0.1}, "epsilon"),
        ({"sigma": 0}, "sigma"),
        ({"sigma": "0.5"}, "sigma"),
    ],
)
def test_lucb_rejects_bad_hyper_parameters_at_reset(params, match):
    policy = LUCB(**params)  # stored untouched
    assert policy.get_params()[match] is params[match]
    with pytest.raises(ValueError, match=f"^{match} must be"):
        policy.reset(4, rng=0, n_select=2)


@pytest.mark.parametrize(
    "context, match",
    [
        ({"n_select": 5}, "n_select"),
        ({"n_select": -1}, "n_select"),
        ({"n_select": 1.5}, "n_select"),
        ({"budget": 0}, "budget"),
        ({"budget": 2.5}, "budget"),
        ({"prior_means": [0.5, 0.5]}, "prior_means"),
        ({"prior_means": [0.5, 0.5, 0.5, 1.5]}, "prior_means"),
        ({"prior_means": [0.5] * 4, "prior_weight": -1}, "prior_weight"),
        ({"prior_means": [0.5] * 4, "prior_weight": 1.5}, "prior_weight"),
    ],
)
def test_reset_rejects_a_bad_context(context, match):
    with pytest.raises(ValueError, match=f"^{match} must be"):
        UCB1().reset(4, rng=0, **context)


# -- context and priors on every policy ------------------------------------------


@pytest.mark.parametrize("cls", list(POLICIES.values()), ids=list(POLICIES))
def test_context_without_prior_changes_nothing(cls):
    means = np.linspace(0.1, 0.9, 6)
    runs = []
    for context in ({}, {"n_select": 2, "budget": 60}):
        policy = cls().reset(6, rng=3, **context)
        rng = np.random.default_rng(0)
        arms_seen = []
        for _ in range(8):
            arms = policy.select(2)
            arms_seen.append(arms)
            policy.update(arms, (rng.random(arms.size) < means[arms]).astype(float))
        runs.append((np.concatenate(arms_seen), policy.estimates_.copy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


PRIOR = np.array([0.9, 0.1, 0.6, 0.3])


@pytest.mark.parametrize(
    "cls", [*POLICIES.values(), Uniform, *BEST_SET], ids=lambda c: c.__name__
)
def test_a_prior_is_folded_in_as_pseudo_pulls(cls):
    policy = cls().reset(
        4, rng=0, n_select=2, budget=40, prior_means=PRIOR, prior_weight=3
    )
    np.testing.assert_array_equal(policy.counts_, 3)
    np.testing.assert_allclose(policy.sums_, 3 * PRIOR)
    assert policy.prior_weight_ == 3 and policy.n_rounds_ == 0
    # Every policy starts ranking the arms as the prior does.
    ranking = np.argsort(-np.asarray(policy.estimates_), kind="stable")
    np.testing.assert_array_equal(ranking, [0, 2, 3, 1])
    # Weight 0 is no prior at all.
    plain = cls().reset(
        4, rng=0, n_select=2, budget=40, prior_means=PRIOR, prior_weight=0
    )
    np.testing.assert_array_equal(plain.counts_, 0)


def test_prior_estimates_on_the_reward_scale():
    for cls in (EpsilonGreedy, UCB1, ThompsonSampling, GaussianThompson, Uniform, LUCB):
        policy = cls().reset(4, rng=0, n_select=2, prior_means=PRIOR, prior_weight=50)
        np.testing.assert_allclose(policy.estimates_, PRIOR, atol=0.02)
    thompson = ThompsonSampling().reset(4, rng=0, prior_means=PRIOR, prior_weight=2)
    np.testing.assert_allclose(thompson.alpha_, 1 + 2 * PRIOR)
    np.testing.assert_allclose(thompson.beta_, 1 + 2 * (1 - PRIOR))
    # The noise of Gaussian Thompson is the observed rewards' spread only.
    gaussian = GaussianThompson().reset(4, rng=0, prior_means=PRIOR, prior_weight=5)
    assert gaussian.noise_std_ == 0.5  # no two observed pulls: prior_std
    gaussian.update([0, 0, 1, 1], [0.2, 0.4, 0.6, 0.8])
    np.testing.assert_allclose(gaussian.noise_std_, np.sqrt(0.04 / 2))


def test_a_correct_strong_prior_saves_pulls():
    # A wider boundary than CLEAR's, so that LUCB stops within the budget.
    wide = np.array([0.9, 0.9, 0.7, 0.3, 0.1, 0.1, 0.1, 0.1])

    def pulls(**prior):
        runs = [
            identify(LUCB(sigma=0.25), wide, N_SELECT, 3000, s, **prior)
            for s in range(20)
        ]
        assert not any(wrong for wrong, _ in runs)
        return np.mean([spent for _, spent in runs])

    # About 200 pulls instead of 290.
    assert pulls(prior_means=wide, prior_weight=10) < 0.8 * pulls()
    # SAR, at equal budget, errs less with the right prior.
    informed = np.mean(
        [
            identify(
                SuccessiveAcceptsRejects(),
                CLEAR,
                N_SELECT,
                36,
                s,
                prior_means=CLEAR,
                prior_weight=3,
            )[0]
            for s in range(200)
        ]
    )
    assert informed < error_rate(SuccessiveAcceptsRejects, 36) - 0.1
