"""Tests of the torch pruning engine: units, pulls, rewards, scorers, surgery."""

import itertools
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skbandit.pruning import (
    PAPER_SETTINGS,
    AccuracyReward,
    BanditScorer,
    LossReward,
    UnitGroup,
    count_parameters,
    evaluate_arms,
    evaluate_arms_naive,
    find_unit_groups,
    make_reward,
    masked,
    prune,
    remove_units,
    resolve_loss,
    sample_metric,
    select_removals,
    trace,
    unit_means,
)

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}


def make_mlp(sizes, activation="relu", seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers).to(dtype).eval()


def make_data(n, n_in, task, n_out, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, n_in, generator=g)
    if task == "classification":
        return X, torch.randint(0, n_out, (n,), generator=g)
    y = torch.randn(n, n_out, generator=g)
    return X, y.squeeze(1) if n_out == 1 else y


# -- unit discovery ------------------------------------------------------------


def test_find_unit_groups_mlp():
    net = make_mlp([5, 7, 6, 3])
    groups = find_unit_groups(net)
    assert [(g.name, g.size, g.producers, g.consumers) for g in groups] == [
        ("0", 7, ("0",), ("2",)),
        ("2", 6, ("2",), ("4",)),
    ]


def test_find_unit_groups_batchnorm_dropout_and_conv():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(20, 8),
        nn.Dropout(0.1),
        nn.ReLU(),
        nn.Linear(8, 2),
    )
    groups = find_unit_groups(net)
    assert [(g.name, g.producers, g.consumers, g.feature_dim) for g in groups] == [
        ("0", ("0", "1"), ("3",), 1),
        ("6", ("6",), ("9",), -1),
    ]


def test_grouped_convolutions_do_not_produce_groups():
    # A grouped (or depthwise) convolution's output channels are tied to its
    # input groups: removing some of them leaves a conv whose channel count
    # does not divide into its groups (torch error), or silently reassigns
    # channels to the wrong input group. Only its consumer side is excluded
    # by the rules, so its outputs must not be a group either.
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, groups=8),  # depthwise
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, groups=2),
        nn.ReLU(),
        nn.Conv2d(16, 12, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(12, 3),
    ).eval()
    X = torch.randn(32, 3, 12, 12)
    y = torch.randint(0, 3, (32,))
    groups = find_unit_groups(net, example_input=X[:1])
    assert [(g.name, g.consumers) for g in groups] == [("6", ("10",))]
    small, report = prune(net, X, y, policy="magnitude", random_state=0)
    assert [(r.name, r.units_after) for r in report.layers] == [("6", 6)]
    assert small(X).shape == (32, 3)


def test_module_repeated_in_a_sequential_is_not_a_group():
    # The same Linear twice in a chain reads its own output: removing its
    # output units also removes inputs of its second call, and the input
    # units of its first call are the outputs of another layer. Removal
    # failed deep in torch ("mat1 and mat2 shapes cannot be multiplied"),
    # or with compensate="none" silently pruned the wrong inputs.
    torch.manual_seed(0)
    shared = nn.Linear(8, 8)
    net = nn.Sequential(
        nn.Linear(4, 8),
        nn.ReLU(),
        shared,
        nn.ReLU(),
        shared,
        nn.ReLU(),
        nn.Linear(8, 6),
        nn.ReLU(),
        nn.Linear(6, 2),
    ).eval()
    assert [(g.name, g.consumers) for g in find_unit_groups(net)] == [("6", ("8",))]
    X, y = make_data(40, 4, "classification", 2)
    for compensate in ("lstsq", "mean", "none"):
        small, report = prune(net, X, y, compensate=compensate, random_state=0)
        assert [(r.name, r.units_after) for r in report.layers] == [("6", 3)]
        assert small[2] is small[4] and small(X).shape == (40, 2)


def test_find_unit_groups_rejects_non_sequential():
    with pytest.raises(TypeError, match="nn.Sequential"):
        find_unit_groups(nn.Linear(3, 2))


def test_count_parameters_matches_arithmetic():
    net = make_mlp([784, 256, 256, 10])
    assert count_parameters(net) == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10


# -- masking and pulls -------------------------------------------------------


def test_masked_zeroes_unit_and_restores():
    net = make_mlp([3, 4, 2])
    (group,) = find_unit_groups(net)
    X = torch.randn(5, 3)
    before = net(X)
    keep = torch.tensor([1.0, 0.0, 1.0, 1.0])
    with masked(net, {group: keep}):
        out = net(X)
    h = torch.relu(net[0](X)) * keep
    torch.testing.assert_close(out, net[2](h))
    torch.testing.assert_close(net(X), before)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize(
    "task,n_out,kind",
    [
        ("classification", 3, "loss"),
        ("classification", 4, "accuracy"),
        ("regression", 1, "loss"),
        ("regression", 2, "loss"),
    ],
)
def test_batched_pulls_equal_naive(depth, activation, task, n_out, kind):
    sizes = [6] + [9 - i for i in range(depth)] + [n_out]
    net = make_mlp(sizes, activation, seed=depth)
    X, y = make_data(40, 6, task, n_out, seed=depth)
    loss = "cross_entropy" if task == "classification" else "mse"
    metric = sample_metric(kind, resolve_loss(loss))
    tr = trace(net, X)
    for group in find_unit_groups(net):
        arms = list(range(group.size)) + [0, group.size - 1]  # repeats allowed
        fast = evaluate_arms(net, group, arms, X, y, metric, tr=tr)
        naive = evaluate_arms_naive(net, group, arms, X, y, metric)
        assert fast.shape == (len(arms),)
        torch.testing.assert_close(fast, naive, atol=1e-5, rtol=0)


def test_batched_pulls_with_fill_equal_naive():
    net = make_mlp([6, 8, 7, 3], "tanh")
    X, y = make_data(30, 6, "classification", 3)
    metric = sample_metric("loss", resolve_loss("cross_entropy"))
    groups = find_unit_groups(net)
    fills = unit_means(net, groups, X)
    for group, fill in zip(groups, fills):
        arms = range(group.size)
        fast = evaluate_arms(net, group, arms, X, y, metric, fill)
        naive = evaluate_arms_naive(net, group, arms, X, y, metric, fill)
        torch.testing.assert_close(fast, naive, atol=1e-5, rtol=0)


def test_batched_pulls_chunking(monkeypatch):
    """Many chunks give the same values as one."""
    from skbandit.pruning import _pulls

    net = make_mlp([6, 16, 12, 3])
    X, y = make_data(32, 6, "classification", 3)
    metric = sample_metric("loss", resolve_loss("cross_entropy"))
    group = find_unit_groups(net)[0]
    whole = evaluate_arms(net, group, range(16), X, y, metric)
    monkeypatch.setattr(_pulls, "_CHUNK_ELEMENTS", 32 * 12 * 3)
    chunked = evaluate_arms(net, group, range(16), X, y, metric)
    torch.testing.assert_close(whole, chunked, atol=1e-6, rtol=0)


def test_cross_entropy_matches_torch():
    out, target = torch.randn(50, 7), torch.randint(0, 7, (50,))
    torch.testing.assert_close(
        resolve_loss("cross_entropy")(out, target),
        nn.functional.cross_entropy(out, target, reduction="none"),
    )


# -- rewards -----------------------------------------------------------------


def test_loss_reward_hand_computed():
    reward = LossReward(temperature=0.1)
    # base 2.0: scale = 0.2; deltas 0, +0.2, -0.4 -> sigmoid(0), sigmoid(-1), sigmoid(2)
    r = reward(2.0, np.array([2.0, 2.2, 1.6]))
    expected = 1 / (1 + np.exp(-np.array([0.0, -1.0, 2.0])))
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    assert np.all((r >= 0) & (r <= 1))


def test_loss_reward_extreme_values_stay_in_unit_interval():
    r = LossReward(temperature=1e-6)(1.0, np.array([1e6, -1e6]))
    np.testing.assert_allclose(r, [0.0, 1.0])


def test_accuracy_reward_hand_computed():
    # max(0, dacc + 0.2), capped at 1: dacc = 0, -0.3, +0.05, +0.9
    r = AccuracyReward(offset=0.2)(0.5, np.array([0.5, 0.2, 0.55, 1.4]))
    np.testing.assert_allclose(r, [0.2, 0.0, 0.25, 1.0])


@pytest.mark.parametrize("bad", [0, -1.0])
def test_loss_reward_rejects_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        LossReward(temperature=bad)


def test_make_reward():
    assert isinstance(make_reward("loss"), LossReward)
    assert isinstance(make_reward("accuracy"), AccuracyReward)
    with pytest.raises(ValueError, match="Unknown reward"):
        make_reward("entropy")
    with pytest.raises(TypeError, match="reward must be"):
        make_reward(3)


# -- removal rule ----------------------------------------------------------------


def test_select_removals_per_layer():
    scores = [np.array([0.1, 0.9, 0.5, 0.7]), np.array([0.3, 0.2, 0.8])]
    removed = select_removals(scores, 0.5)
    # floor(0.5 * 4) = 2 -> units 1, 3; floor(0.5 * 3) = 1 -> unit 2
    assert [r.tolist() for r in removed] == [[1, 3], [2]]


def test_select_removals_global_keeps_one_unit_per_layer():
    scores = [np.array([0.9, 0.95]), np.array([0.1, 0.2, 0.3, 0.4])]
    # floor(0.5 * 6) = 3: best three are 0.95, 0.9 (layer 0) and 0.4, but layer
    # 0 must keep a unit, so 0.9 is skipped for 0.3.
    removed = select_removals(scores, 0.5, scope="global")
    assert [r.tolist() for r in removed] == [[1], [2, 3]]


def test_select_removals_never_empties_a_layer():
    removed = select_removals([np.ones(3)], 0.99)
    assert len(removed[0]) == 2


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "half"])
def test_select_removals_rejects_bad_ratio(bad):
    with pytest.raises(ValueError, match="prune_ratio"):
        select_removals([np.ones(3)], bad)


# -- physical removal ----------------------------------------------------------


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("sizes", [[5, 8, 3], [5, 8, 7, 6, 2]])
def test_removal_equals_masking(activation, sizes):
    net = make_mlp(sizes, activation, dtype=torch.float64)
    X = torch.randn(20, sizes[0], dtype=torch.float64)
    groups = find_unit_groups(net)
    rng = np.random.default_rng(0)
    removals = [np.sort(rng.choice(g.size, g.size // 2, replace=False)) for g in groups]
    keeps = {}
    for g, r in zip(groups, removals):
        keep = torch.ones(g.size, dtype=torch.float64)
        keep[r] = 0
        keeps[g] = keep
    with masked(net, keeps):
        expected = net(X)
    small = remove_units(net, groups, removals)
    torch.testing.assert_close(small(X), expected, atol=1e-6, rtol=0)
    # Arithmetic: each hidden layer loses its rows (weights + bias) and the
    # next layer's columns.
    kept = [s - len(r) for s, r in zip(sizes[1:-1], removals)]
    new_sizes = [sizes[0], *kept, sizes[-1]]
    expected_params = sum(a * b + b for a, b in itertools.pairwise(new_sizes))
    assert count_parameters(small) == expected_params
    assert count_parameters(net) == sum(a * b + b for a, b in itertools.pairwise(sizes))


def test_removal_with_batchnorm_equals_masking():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)
    ).eval()
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2)
    (group,) = find_unit_groups(net)
    X = torch.randn(10, 4)
    keep = torch.tensor([1.0, 0, 1, 1, 0, 1])
    with masked(net, {group: keep}):
        expected = net(X)
    small = remove_units(net, [group], [[1, 4]])
    assert small[1].num_features == 4 and small[1].running_mean.shape == (4,)
    torch.testing.assert_close(small(X), expected, atol=1e-6, rtol=0)


def test_removal_leaves_original_untouched():
    net = make_mlp([5, 8, 3])
    before = [p.clone() for p in net.parameters()]
    remove_units(net, find_unit_groups(net), [[0, 1]])
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_mean_compensation_exact_for_constant_unit():
    net = make_mlp([4, 6, 3], dtype=torch.float64)
    with torch.no_grad():
        net[0].weight[2] = 0.0
        net[0].bias[2] = 0.7  # unit 2 outputs relu(0.7) = 0.7 on every input
    X = torch.randn(30, 4, dtype=torch.float64)
    group = find_unit_groups(net)
    small = remove_units(net, group, [[2]], compensate="mean", X=X)
    torch.testing.assert_close(small(X), net(X), atol=1e-6, rtol=0)
    dropped = remove_units(net, group, [[2]])
    assert (dropped(X) - net(X)).abs().max() > 1e-3  # zeroing loses it


def test_lstsq_compensation_exact_for_linear_combination():
    # identity activation: unit 3 = 2 * unit 0 - unit 1 exactly
    net = make_mlp([5, 4, 2], "identity", dtype=torch.float64)
    with torch.no_grad():
        net[0].weight[3] = 2 * net[0].weight[0] - net[0].weight[1]
        net[0].bias[3] = 2 * net[0].bias[0] - net[0].bias[1]
    X = torch.randn(50, 5, dtype=torch.float64)
    groups = find_unit_groups(net)
    small = remove_units(net, groups, [[3]], compensate="lstsq", X=X, ridge=0.0)
    torch.testing.assert_close(small(X), net(X), atol=1e-5, rtol=0)


def test_lstsq_uses_already_pruned_earlier_layers():
    net = make_mlp([5, 10, 10, 3], "tanh", dtype=torch.float64)
    X = torch.randn(200, 5, dtype=torch.float64)
    groups = find_unit_groups(net)
    removals = [[0, 1, 2], [4, 5]]
    errors = {
        c: (remove_units(net, groups, removals, c, X)(X) - net(X)).pow(2).mean()
        for c in ("none", "mean", "lstsq")
    }
    assert errors["lstsq"] < errors["mean"] < errors["none"]


def test_remove_units_rejects_bad_compensation():
    net = make_mlp([4, 6, 3])
    groups = find_unit_groups(net)
    with pytest.raises(ValueError, match="compensate"):
        remove_units(net, groups, [[0]], compensate="median")
    with pytest.raises(ValueError, match="needs data"):
        remove_units(net, groups, [[0]], compensate="mean")


# -- scorers and the prune function ----------------------------------------------


@pytest.mark.parametrize("policy", ["ucb1", "gaussian_thompson"])
@pytest.mark.parametrize("pull", ["company", "single"])
def test_default_bandit_finds_useless_units_with_least_squares(policy, pull):
    net, X, y = planted_network()
    small, report = prune(
        net, X, y, policy, prune_ratio=8 / 12, pull=pull, random_state=0
    )
    assert report.layers[0].removed.tolist() == list(range(4, 12))
    # The refit reproduces the outputs up to its ridge penalty.
    torch.testing.assert_close(small(X), net(X), atol=2e-3, rtol=0)


def planted_network():
    """Units 0-3 of layer 1 carry the signal; units 4-11 have no outgoing weight."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 2)).eval()
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.zero_()
        net[0].weight[:4] = torch.eye(4) * 3
        net[0].weight[4:] = torch.randn(8, 4) * 5  # large but useless
        net[2].weight.zero_()
        net[2].weight[0, :2] = 2.0
        net[2].weight[1, 2:4] = 2.0
    X = torch.randn(400, 4)
    y = (X[:, 2:4].clamp(min=0).sum(1) > X[:, :2].clamp(min=0).sum(1)).long()
    return net, X, y


@pytest.mark.parametrize(
    "policy", ["epsilon_greedy", "softmax", "ucb1", "thompson", "hedge", "exp3"]
)
def test_bandit_finds_useless_units(policy):
    net, X, y = planted_network()
    # The paper's pulls and zeroing: units without outgoing weight then leave
    # the function exact.
    settings = {**PAPER_SETTINGS, "policy": policy, "budget": 20}
    small, report = prune(net, X, y, prune_ratio=8 / 12, random_state=0, **settings)
    assert report.layers[0].removed.tolist() == list(range(4, 12))
    assert report.total_pulls >= 20 * 12
    assert report.layers[0].pulls.sum() == report.total_pulls
    torch.testing.assert_close(small(X), net(X))


def test_magnitude_baseline_is_fooled_by_useless_large_units():
    net, X, y = planted_network()
    _, report = prune(net, X, y, policy="magnitude", prune_ratio=8 / 12)
    assert set(report.layers[0].removed) != set(range(4, 12))
    assert report.layers[0].pulls is None


def test_activation_baseline_removes_constant_units():
    net = make_mlp([4, 6, 3])
    with torch.no_grad():
        net[0].weight[[1, 4]] = 0.0
    X, y = make_data(100, 4, "classification", 3)
    _, report = prune(net, X, y, policy="activation", prune_ratio=2 / 6)
    assert report.layers[0].removed.tolist() == [1, 4]


def test_integer_X_of_a_linear_first_layer_is_read_as_floats():
    net = make_mlp([4, 8, 3])
    X, y = make_data(60, 4, "classification", 3)
    X_int = (X * 10).round()
    as_float = prune(net, X_int, y, "magnitude", 0.5, random_state=0)[1]
    as_int = prune(net, X_int.long(), y, "magnitude", 0.5, random_state=0)[1]
    assert as_int.loss_after == as_float.loss_after


def test_prune_is_deterministic_under_seed():
    net = make_mlp([6, 16, 16, 3])
    X, y = make_data(100, 6, "classification", 3)
    runs = [prune(net, X, y, "thompson", 0.5, random_state=7) for _ in range(2)]
    for a, b in zip(runs[0][1].layers, runs[1][1].layers):
        np.testing.assert_array_equal(a.removed, b.removed)
        np.testing.assert_array_equal(a.scores, b.scores)
    different = prune(net, X, y, "thompson", 0.5, random_state=8)[1]
    assert any(
        not np.array_equal(a.scores, b.scores)
        for a, b in zip(runs[0][1].layers, different.layers)
    )


def test_prune_report_and_global_scope():
    net = make_mlp([6, 16, 8, 3])
    X, y = make_data(100, 6, "classification", 3)
    small, report = prune(net, X, y, "ucb1", 0.5, scope="global", random_state=0)
    assert sum(l.units_before - l.units_after for l in report.layers) == 12
    assert all(l.units_after >= 1 for l in report.layers)
    assert report.params_after == count_parameters(small) < report.params_before
    summary = report.summary()
    assert summary["units_before"] == [16, 8]
    assert summary["total_pulls"] == report.total_pulls > 0


def test_prune_none_keeps_model():
    net = make_mlp([6, 16, 3])
    X, y = make_data(50, 6, "classification", 3)
    small, report = prune(net, X, y, "none", 0.5)
    assert report.params_after == report.params_before
    torch.testing.assert_close(small(X), net(X))


def test_prune_regression_with_mse_and_compensation():
    net = make_mlp([6, 16, 16, 2], "tanh")
    X, y = make_data(100, 6, "regression", 2)
    for compensate in ("none", "mean", "lstsq"):
        small, report = prune(
            net, X, y, "ucb1", 0.5, loss="mse", compensate=compensate, random_state=0
        )
        assert small[0].out_features == 8 and np.isfinite(report.loss_after)


def test_prune_errors():
    X, y = make_data(20, 4, "classification", 2)
    with pytest.raises(ValueError, match="no prunable units"):
        prune(nn.Sequential(nn.Linear(4, 2)), X, y)
    net = make_mlp([4, 6, 2])
    with pytest.raises(ValueError, match="'policy' parameter of prune must be one of"):
        prune(net, X, y, policy="greedy")
    with pytest.raises(ValueError, match="budget"):
        prune(net, X, y, policy="ucb1", budget=0)
    with pytest.raises(ValueError, match="prune_ratio"):
        prune(net, X, y, policy="magnitude", prune_ratio=1.0)


@pytest.mark.parametrize("policy", ["ucb1", "magnitude", "activation"])
@pytest.mark.parametrize("pull", ["company", "single"])
def test_prune_bfloat16_model(policy, pull):
    # numpy has no bfloat16: scores and pull values must leave torch as
    # float64, not fail with "Got unsupported ScalarType BFloat16".
    net = make_mlp([4, 8, 6, 2], dtype=torch.bfloat16)
    X, y = make_data(64, 4, "classification", 2)
    small, report = prune(net, X, y, policy=policy, pull=pull, random_state=0)
    assert [r.units_after for r in report.layers] == [4, 3]
    assert small(X.bfloat16()).dtype == torch.bfloat16


def test_explicit_groups_for_non_sequential_model_use_naive_pulls():
    class TwoBranch(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(4, 6)
            self.out = nn.Linear(6, 2)

        def forward(self, x):
            return self.out(torch.relu(self.hidden(x)))

    torch.manual_seed(0)
    net = TwoBranch().eval()
    group = UnitGroup("hidden", 6, ("hidden",), ("out",))
    X, y = make_data(40, 4, "classification", 2)
    small, report = prune(
        net, X, y, "ucb1", 0.5, groups=[group], compensate="none", random_state=0
    )
    assert small.hidden.out_features == 3 and small.out.in_features == 3
    keep = torch.ones(6)
    keep[report.layers[0].removed] = 0
    with masked(net, {group: keep}):
        torch.testing.assert_close(small(X), net(X))


def test_bandit_scorer_rejects_bad_scope():
    net = make_mlp([4, 6, 2])
    X, y = make_data(20, 4, "classification", 2)
    scorer = BanditScorer("ucb1", scope="everywhere")
    with pytest.raises(ValueError, match="scope"):
        scorer.score(net, find_unit_groups(net), X, y, resolve_loss("mse"), None)


# -- convolution channels ------------------------------------------------------


def small_cnn(padding, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=padding),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 5, 3, stride=2, padding=padding),
        nn.Tanh(),
        nn.Flatten(),
        nn.LazyLinear(4),
    )
    net(torch.randn(2, 1, 8, 8))  # materialise the lazy layer
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    return net.eval()


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("use_fill", [False, True])
def test_batched_conv_pulls_equal_naive(padding, use_fill):
    net = small_cnn(padding)
    X, y = torch.randn(24, 1, 8, 8), torch.randint(0, 4, (24,))
    (group,) = find_unit_groups(net)
    assert group.feature_dim == 1 and group.producers == ("0", "1")
    fill = unit_means(net, [group], X)[0] if use_fill else None
    metric = sample_metric("loss", resolve_loss("cross_entropy"))
    arms = [*range(group.size), 3]
    fast = evaluate_arms(net, group, arms, X, y, metric, fill)
    naive = evaluate_arms_naive(net, group, arms, X, y, metric, fill)
    torch.testing.assert_close(fast, naive, atol=1e-5, rtol=0)


def test_conv_removal_equals_masking_and_counts_parameters():
    net = small_cnn(padding=1)
    X = torch.randn(10, 1, 8, 8)
    (group,) = find_unit_groups(net)
    keep = torch.ones(6)
    keep[[0, 4]] = 0
    with masked(net, {group: keep}):
        expected = net(X)
    small = remove_units(net, [group], [[0, 4]])
    torch.testing.assert_close(small(X), expected, atol=1e-5, rtol=0)
    # conv1 loses 2 filters (9 weights + bias each), BN 2 x (weight, bias),
    # conv2 loses 2 input slices of 5 x 3 x 3.
    assert count_parameters(net) - count_parameters(small) == 2 * 10 + 2 * 2 + 2 * 45


@pytest.mark.parametrize("padding", [0, 1])
def test_lstsq_compensation_exact_for_conv_linear_combination(padding):
    # identity activation: channel 3 = 2 * channel 0 - channel 1 exactly, so the
    # consumer convolution can be refit on the kept channels without loss
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=padding),
        nn.Identity(),
        nn.Conv2d(4, 3, 3, padding=padding),
        nn.Flatten(),
    ).double()
    with torch.no_grad():
        net[0].weight[3] = 2 * net[0].weight[0] - net[0].weight[1]
        net[0].bias[3] = 2 * net[0].bias[0] - net[0].bias[1]
    X = torch.randn(40, 2, 7, 7, dtype=torch.float64)
    groups = find_unit_groups(net)
    small = remove_units(net, groups, [[3]], compensate="lstsq", X=X, ridge=0.0)
    assert small[2].in_channels == 3
    torch.testing.assert_close(small(X), net(X), atol=1e-5, rtol=0)
    dropped = remove_units(net, groups, [[3]])
    assert (dropped(X) - net(X)).abs().max() > 1e-2


def test_a_ratio_that_removes_nothing_warns():
    net = make_mlp([6, 8, 8, 3])
    X, y = make_data(40, 6, "classification", 3)
    with pytest.warns(
        UserWarning, match=r"prune_ratio=0.1 removes no unit.*\[8, 8\]"
    ) as record:
        small, report = prune(net, X, y, prune_ratio=0.1, budget=1, random_state=0)
    assert record[0].filename == __file__  # points at the caller
    assert report.params_after == report.params_before
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zero on purpose, or one unit: silent
        prune(net, X, y, prune_ratio=0.0, budget=1, random_state=0)
        prune(net, X, y, prune_ratio=0.13, budget=1, random_state=0)
        prune(net, X, y, prune_ratio=0.1, scope="global", budget=1, random_state=0)
