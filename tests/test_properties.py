"""Property-based tests (hypothesis) of policies, rewards, surgery and estimators.

Small ``max_examples`` and no deadline: the file runs in well under a
minute, and CI's slower machines never fail on timing.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor
from skbandit.policies import (
    EXP3,
    UCB1,
    EpsilonGreedy,
    Hedge,
    Softmax,
    ThompsonSampling,
)
from skbandit.pruning import (
    METHODS,
    AccuracyReward,
    LossReward,
    find_unit_groups,
    masked,
    remove_units,
    select_removals,
)

FAST = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run and in CI
)
SLOW = settings(FAST, max_examples=15)

# Policies with their hyper-parameters drawn from their valid ranges.
POLICY_STRATEGIES = {
    "epsilon_greedy": st.builds(
        EpsilonGreedy,
        epsilon=st.floats(0, 1),
        initial_value=st.floats(0, 1),
    ),
    "softmax": st.builds(
        Softmax,
        temperature=st.floats(1e-4, 1e3),
        initial_value=st.floats(0, 1),
    ),
    "ucb1": st.builds(UCB1, c=st.floats(0, 10), initial_value=st.floats(0, 1)),
    "thompson": st.builds(
        ThompsonSampling,
        prior_alpha=st.floats(1e-3, 1e3),
        prior_beta=st.floats(1e-3, 1e3),
    ),
    "hedge": st.builds(Hedge, learning_rate=st.floats(1e-3, 1e3)),
    "exp3": st.builds(EXP3, gamma=st.floats(1e-3, 1, exclude_min=False)),
}
WITH_PROBABILITIES = ("epsilon_greedy", "softmax", "hedge", "exp3")
VALUE_POLICIES = ("epsilon_greedy", "softmax", "ucb1", "thompson", "hedge")

rewards_lists = st.lists(st.floats(0, 1), min_size=1, max_size=64)


@st.composite
def bandit_runs(draw, names=tuple(POLICY_STRATEGIES)):
    """A policy, its problem size and a stream of rewards in [0, 1]."""
    name = draw(st.sampled_from(names))
    policy = draw(POLICY_STRATEGIES[name])
    n_arms = draw(st.integers(1, 12))
    k = draw(st.integers(1, n_arms if not policy.allows_repeats else 2 * n_arms))
    n_rounds = draw(st.integers(1, 8))
    rewards = draw(rewards_lists)
    seed = draw(st.integers(0, 2**32 - 1))
    return name, policy, n_arms, k, n_rounds, rewards, seed


def _play(policy, n_arms, k, n_rounds, rewards, seed, check=None):
    """Run a policy on a reward stream; return every round's selection."""
    policy.reset(n_arms, seed)
    stream = iter(np.resize(np.asarray(rewards, dtype=float), 10_000))
    selections = []
    for _ in range(n_rounds):
        arms = policy.select(k)
        selections.append(arms.tolist())
        if check is not None:
            check(policy, arms)
        policy.update(arms, [next(stream) for _ in arms])
        if check is not None:
            check(policy, None)
    return selections


# -- policies ------------------------------------------------------------------


@FAST
@given(bandit_runs(WITH_PROBABILITIES))
def test_probabilities_are_a_distribution(run):
    name, policy, n_arms, k, n_rounds, rewards, seed = run

    def check(policy, arms):
        p = policy.probabilities()
        assert p.shape == (n_arms,)
        assert np.all(np.isfinite(p)) and np.all(p >= 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        if name == "exp3":
            assert np.all(p >= policy.gamma / n_arms - 1e-12)

    _play(policy, n_arms, k, n_rounds, rewards, seed, check)


@FAST
@given(bandit_runs())
def test_selection_in_range_and_distinct_where_promised(run):
    name, policy, n_arms, k, n_rounds, rewards, seed = run

    def check(policy, arms):
        if arms is None:
            return
        assert arms.dtype.kind == "i"
        assert np.all((arms >= 0) & (arms < n_arms))
        if policy.full_information:
            np.testing.assert_array_equal(arms, np.arange(n_arms))
        else:
            assert len(arms) == k
        if not policy.allows_repeats:
            assert len(set(arms.tolist())) == len(arms)

    _play(policy, n_arms, k, n_rounds, rewards, seed, check)


@FAST
@given(bandit_runs(VALUE_POLICIES + ("exp3",)))
def test_estimates_are_bounded(run):
    name, policy, n_arms, k, n_rounds, rewards, seed = run

    def check(policy, arms):
        est = np.asarray(policy.estimates_)
        assert est.shape == (n_arms,) and np.all(np.isfinite(est))
        if name == "exp3":
            # Importance-weighted: unbiased, may exceed 1, never negative.
            assert np.all(est >= 0)
        else:
            # Means of rewards in [0, 1] (Thompson: a posterior mean).
            assert np.all((est >= 0) & (est <= 1 + 1e-12))
        assert np.all(policy.counts_ >= 0)
        assert policy.counts_.sum() == policy.n_rounds_ * (
            n_arms if policy.full_information else k
        )

    _play(policy, n_arms, k, n_rounds, rewards, seed, check)


@FAST
@given(bandit_runs())
def test_same_seed_same_selections(run):
    name, policy, n_arms, k, n_rounds, rewards, seed = run
    first = _play(policy, n_arms, k, n_rounds, rewards, seed)
    estimates = np.array(policy.estimates_, copy=True)
    # A fresh instance and a reset of the used one replay the same run.
    twin = type(policy)(**policy.get_params())
    assert _play(twin, n_arms, k, n_rounds, rewards, seed) == first
    assert _play(policy, n_arms, k, n_rounds, rewards, seed) == first
    np.testing.assert_array_equal(policy.estimates_, estimates)


# -- rewards -------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
finite_arrays = arrays(np.float64, st.integers(0, 16), elements=finite)


@FAST
@given(
    base=finite,
    masked=finite_arrays,
    temperature=st.floats(1e-6, 1e6),
)
def test_loss_reward_in_unit_interval(base, masked, temperature):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow to +-inf is fine
        reward = LossReward(temperature=temperature)(base, masked)
    assert reward.shape == masked.shape
    assert np.all((reward >= 0) & (reward <= 1))
    # Monotone: a larger masked loss is never safer to remove.
    order = np.argsort(masked, kind="stable")
    assert np.all(np.diff(reward[order]) <= 1e-12)


@FAST
@given(base=finite, masked=finite_arrays, offset=st.floats(0, 1))
def test_accuracy_reward_in_unit_interval(base, masked, offset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reward = AccuracyReward(offset=offset)(base, masked)
    assert reward.shape == masked.shape
    assert np.all((reward >= 0) & (reward <= 1))


# -- physical removal equals masking --------------------------------------------

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


@st.composite
def architectures(draw):
    n_in = draw(st.integers(1, 6))
    widths = draw(st.lists(st.integers(2, 12), min_size=1, max_size=4))
    n_out = draw(st.integers(1, 4))
    activations = [draw(st.sampled_from(sorted(ACTIVATIONS))) for _ in widths]
    seed = draw(st.integers(0, 2**31 - 1))
    return n_in, widths, n_out, activations, seed


def _mlp(n_in, widths, n_out, activations, seed):
    torch.manual_seed(seed)
    layers, width = [], n_in
    for w, act in zip(widths, activations):
        layers += [nn.Linear(width, w), ACTIVATIONS[act]()]
        width = w
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers).double().eval()


@FAST
@given(
    arch=architectures(),
    how=st.sampled_from(["ratio-layer", "ratio-global", "sets"]),
    ratio=st.floats(0, 0.99),
    data=st.data(),
)
def test_physical_removal_equals_masking(arch, how, ratio, data):
    model = _mlp(*arch)
    groups = find_unit_groups(model)
    assert [g.size for g in groups] == arch[1]
    if how == "sets":
        # Any subset that keeps at least one unit per layer.
        removals = [
            np.array(
                sorted(
                    data.draw(st.sets(st.integers(0, g.size - 1), max_size=g.size - 1))
                ),
                dtype=int,
            )
            for g in groups
        ]
    else:
        scores = [
            data.draw(arrays(np.float64, g.size, elements=finite)) for g in groups
        ]
        removals = select_removals(scores, ratio, how.split("-")[1])
    X = torch.as_tensor(
        data.draw(arrays(np.float64, (7, arch[0]), elements=st.floats(-10, 10)))
    )
    masks = {}
    for g, r in zip(groups, removals):
        keep = torch.ones(g.size, dtype=torch.float64)
        keep[torch.as_tensor(r, dtype=torch.long)] = 0
        assert keep.sum() >= 1
        masks[g] = keep
    with torch.no_grad():
        with masked(model, masks):
            expected = model(X)
        pruned = remove_units(model, groups, removals)
        got = pruned(X)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    kept = [m.out_features for m in pruned if isinstance(m, nn.Linear)][:-1]
    assert kept == [g.size - len(r) for g, r in zip(groups, removals)]
    # The model itself is untouched.
    assert [g.size for g in find_unit_groups(model)] == arch[1]


# -- estimators never return NaN on finite input -------------------------------


@st.composite
def small_problems(draw, task):
    n = draw(st.integers(4, 24))
    p = draw(st.integers(1, 4))
    X = draw(
        arrays(np.float64, (n, p), elements=st.floats(-1e3, 1e3, allow_subnormal=False))
    )
    if task == "classification":
        y = np.arange(n) % draw(st.integers(2, 3))  # every class present
        y = draw(st.permutations(y.tolist()))
    else:
        y = draw(arrays(np.float64, n, elements=st.floats(-1e6, 1e6)))
    params = dict(
        hidden_layer_sizes=tuple(
            draw(st.lists(st.integers(2, 6), min_size=1, max_size=2))
        ),
        activation=draw(st.sampled_from(["relu", "tanh", "logistic", "identity"])),
        policy=draw(st.sampled_from(METHODS)),
        prune_ratio=draw(st.floats(0, 0.9)),
        scope=draw(st.sampled_from(["layer", "global"])),
        compensate=draw(st.sampled_from(["none", "mean", "lstsq"])),
        budget=draw(st.floats(1, 2)),
        max_iter=2,
        fine_tune_epochs=1,
        batch_size=8,
        random_state=draw(st.integers(0, 1000)),
    )
    return X, np.asarray(y), params


@SLOW
@given(problem=small_problems("classification"))
def test_classifier_outputs_are_finite(problem):
    X, y, params = problem
    clf = BanditPrunedMLPClassifier(**params).fit(X, y)
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert set(clf.predict(X)) <= set(y)


@SLOW
@given(problem=small_problems("regression"))
def test_regressor_outputs_are_finite(problem):
    X, y, params = problem
    reg = BanditPrunedMLPRegressor(**params).fit(X, y)
    assert np.all(np.isfinite(reg.predict(X)))


def test_regressor_huge_but_finite_targets_give_finite_predictions():
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = X[:, 0] * 1e200
    reg = BanditPrunedMLPRegressor(
        (4,), max_iter=2, fine_tune_epochs=1, random_state=0
    ).fit(X, y)
    assert np.all(np.isfinite(reg.predict(X)))
