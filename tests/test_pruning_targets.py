"""Iterative rounds, parameter/latency targets, automatic budget and set pulls."""

import numpy as np
import pytest
import torch
from torch import nn

from skbandit.pruning import (
    count_parameters,
    find_unit_groups,
    prune,
    removals_by_count,
)
from skbandit.pruning._targets import mac_cost, param_cost, round_count

from .test_pruning import make_data, make_mlp, planted_network


def round_counts(sizes, prune_ratio, scope, n_rounds):
    return [
        round_count(sizes, prune_ratio, scope, n_rounds, r) for r in range(n_rounds)
    ]


def test_round_counts_reach_the_single_round_target():
    # 64 units, ratio 0.75 -> 16 kept; 3 geometric rounds: 64 -> 40 -> 25 -> 16
    assert round_counts([64], 0.75, "layer", 3) == [[24], [15], [9]]
    assert sum(round_counts([10, 30], 0.5, "global", 4)) == 20


def test_param_cost_matches_surgery():
    net = make_mlp([6, 10, 8, 3])
    groups = find_unit_groups(net)
    cost = param_cost(net, groups)
    assert cost([10, 8]) == count_parameters(net)
    small, _ = prune(net, *make_data(50, 6, "classification", 3), "random", 0.5)
    assert cost([5, 4]) == count_parameters(small)


@pytest.mark.parametrize("policy", ["ucb1", "exp3", "thompson", "magnitude"])
def test_rounds_reach_the_same_sizes(policy):
    net = make_mlp([6, 16, 12, 3])
    X, y = make_data(120, 6, "classification", 3)
    one, _ = prune(net, X, y, policy, 0.75, random_state=0)
    three, report = prune(net, X, y, policy, 0.75, n_rounds=3, random_state=0)
    assert [m.weight.shape for m in three if isinstance(m, nn.Linear)] == [
        m.weight.shape for m in one if isinstance(m, nn.Linear)
    ]
    assert report.n_rounds == 3
    assert [l.units_after for l in report.layers] == [4, 3]
    assert all(len(l.removed) == l.units_before - l.units_after for l in report.layers)
    if policy != "magnitude":
        # pulls accumulate over rounds: more than one round's budget
        assert report.total_pulls > 10 * (16 + 12)


def test_rounds_call_between_rounds_and_keep_finding_useless_units():
    net, X, y = planted_network()
    calls = []

    def between(model):
        calls.append(model[0].out_features)
        return model

    _, report = prune(
        net, X, y, "ucb1", 8 / 12, n_rounds=2, between_rounds=between, random_state=0
    )
    assert calls == [round(12 * (4 / 12) ** 0.5)]
    assert report.layers[0].removed.tolist() == list(range(4, 12))


@pytest.mark.parametrize("target", [900, 0.3])
def test_target_params_is_met(target):
    net = make_mlp([10, 32, 32, 4])
    X, y = make_data(100, 10, "classification", 4)
    before = count_parameters(net)
    goal = target if target >= 1 else round(target * before)
    small, report = prune(net, X, y, "ucb1", target_params=target, random_state=0)
    assert report.params_after == count_parameters(small) <= goal
    # the rule stops at the first removal that meets the target
    assert report.params_after > goal - (32 + 32 + 4 + 1 + 10)


def test_target_params_with_rounds_and_unreachable_target():
    net = make_mlp([10, 32, 32, 4])
    X, y = make_data(100, 10, "classification", 4)
    _, report = prune(
        net, X, y, "thompson", target_params=0.4, n_rounds=2, random_state=0
    )
    assert report.params_after <= round(0.4 * count_parameters(net))
    with pytest.raises(ValueError, match="unreachable"):
        prune(net, X, y, "magnitude", target_params=20)


def test_target_latency_removes_fewest_units_by_multiply_accumulates():
    net = make_mlp([10, 32, 32, 4])
    X, y = make_data(100, 10, "classification", 4)
    groups = find_unit_groups(net)
    small, report = prune(net, X, y, "ucb1", target_latency=0.5, random_state=0)
    cost = mac_cost(net, groups, X[:1])
    kept = [l.units_after for l in report.layers]
    assert cost(kept) <= 0.5 * cost([32, 32])
    assert cost(kept) == mac_cost(small, find_unit_groups(small), X[:1])(kept)
    assert report.latency_ratio > 0  # measured, for information
    # one unit fewer would miss the target
    removed = sum(len(l.removed) for l in report.layers)
    scores = [l.scores for l in report.layers]
    fewer = removals_by_count(scores, removed - 1)
    assert cost([32 - len(r) for r in fewer]) > 0.5 * cost([32, 32])
    with pytest.raises(ValueError, match="target_latency=0.01 is unreachable"):
        prune(net, X, y, "magnitude", target_latency=0.01)


def test_mac_cost_counts_convolution_positions():
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3),
        nn.Flatten(),
        nn.Linear(96, 2),
    )
    example = torch.zeros(1, 1, 8, 8)
    groups = find_unit_groups(cnn, example_input=example)
    cost = mac_cost(cnn, groups, example)
    # 36 positions x 4 x 9, 16 positions x 6 x 4 x 9, then 96 x 2
    assert cost([4, 6]) == 36 * 4 * 9 + 16 * 6 * 4 * 9 + 96 * 2
    assert cost([2, 3]) == 36 * 2 * 9 + 16 * 3 * 2 * 9 + 48 * 2


def test_auto_budget_uses_fewer_pulls_and_picks_the_same_units():
    net, X, y = planted_network()
    _, fixed = prune(net, X, y, "ucb1", 8 / 12, budget=20, random_state=0)
    _, auto = prune(
        net, X, y, "ucb1", 8 / 12, budget="auto", max_budget=20, random_state=0
    )
    assert auto.total_pulls < fixed.total_pulls
    assert auto.layers[0].removed.tolist() == fixed.layers[0].removed.tolist()
    assert auto.layers[0].removed.tolist() == list(range(4, 12))


@pytest.mark.parametrize("policy", ["ucb1", "thompson", "exp3"])
def test_set_pulls_mask_whole_sets_with_one_shared_reward(policy):
    from skbandit.pruning import BanditScorer, resolve_loss

    net, X, y = planted_network()
    groups = find_unit_groups(net)
    scorer = BanditScorer(policy, budget=6, pull="set")
    result = scorer.score(
        net,
        groups,
        X,
        y,
        resolve_loss("cross_entropy"),
        np.random.default_rng(0),
        n_remove=[8],
    )
    rounds = result.history[0]
    assert all(len(units) == 8 for units, _ in rounds[:-1])  # the last may be cut
    assert all(np.unique(rewards).size == 1 for _, rewards in rounds)
    assert result.pulls[0].sum() == 6 * 12 == sum(len(u) for u, _ in rounds)


def test_set_reward_is_the_share_of_earlier_sets_beaten():
    from skbandit.pruning._bandit import BanditScorer, _Arena

    arena = _Arena([0], [4], "ucb1", 0, BanditScorer("ucb1", pull="set"), 2)
    # first set: nothing to compare with; then 0.3 beats {0.5}; 0.5 ties one
    # of {0.5, 0.3} and beats none; 0.1 beats all three
    assert [arena.set_reward(c) for c in (0.5, 0.3, 0.5, 0.1)] == [0.5, 1.0, 0.25, 1.0]


def test_set_pulls_reject_full_information_policy():
    net, X, y = planted_network()
    with pytest.raises(ValueError, match="full-information"):
        prune(net, X, y, "hedge", 0.5, pull="set")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_rounds": 0}, "n_rounds"),
        ({"target_params": -5}, "target_params"),
        ({"target_latency": 1.5}, "target_latency"),
        ({"target_latency": 0.5, "target_params": 100}, "not both"),
        ({"target_latency": 0.5, "n_rounds": 2}, "n_rounds=1"),
        ({"budget": "lots"}, "budget"),
        ({"pull": "pair"}, "pull"),
    ],
)
def test_target_and_round_errors(kwargs, match):
    net = make_mlp([4, 8, 2])
    X, y = make_data(20, 4, "classification", 2)
    with pytest.raises(ValueError, match=match):
        prune(net, X, y, "ucb1", **kwargs)


def test_rounds_with_compensation_are_finite():
    net = make_mlp([6, 16, 16, 2], "tanh")
    X, y = make_data(100, 6, "regression", 2)
    small, report = prune(
        net,
        X,
        y,
        "ucb1",
        0.5,
        loss="mse",
        compensate="lstsq",
        n_rounds=2,
        random_state=0,
    )
    assert np.isfinite(report.loss_after) and small[0].out_features == 8
    assert torch.isfinite(small(X)).all()


def test_set_pulls_are_always_whole_sets():
    # 15 arms, 7 removed, budget 10: 150 pulls are 21 sets of 7 and a rest of
    # 3, which must not be pulled as a small (flattering) set.
    from skbandit.pruning import BanditScorer, resolve_loss

    net = make_mlp([4, 15, 3])
    X, y = make_data(64, 4, "classification", 3)
    result = BanditScorer("thompson", pull="set").score(
        net,
        find_unit_groups(net),
        X,
        y,
        resolve_loss("cross_entropy"),
        np.random.default_rng(0),
        n_remove=[7],
    )
    assert {len(units) for units, _ in result.history[0]} == {7}


def test_target_latency_sizes_the_bandit_split_without_prune_ratio():
    net = make_mlp([10, 32, 4])
    X, y = make_data(100, 10, "classification", 4)
    _, report = prune(
        net, X, y, "ucb1", 0.0, target_latency=0.5, budget="auto", random_state=0
    )
    # with prune_ratio=0 the split would be empty and the bandit stop at once
    assert report.total_pulls > 32


def test_duck_typed_policy_with_set_pulls_and_bad_max_budget():
    from skbandit.policies import UCB1

    class Plain:  # reset/select/update/estimates_ only
        def __init__(self):
            self.inner = UCB1()

        def reset(self, n_arms, rng=None):
            self.inner.reset(n_arms, rng)
            return self

        def select(self, k):
            return self.inner.select(k)

        def update(self, arms, rewards):
            self.inner.update(arms, rewards)
            return self

        @property
        def estimates_(self):
            return self.inner.estimates_

    net, X, y = planted_network()
    small, _ = prune(net, X, y, Plain(), 0.5, pull="set", budget=3, random_state=0)
    assert small[0].out_features == 6
    with pytest.raises(ValueError, match="max_budget"):
        prune(net, X, y, "ucb1", 0.5, budget="auto", max_budget=float("inf"))
