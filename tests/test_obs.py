"""Least-squares refits: compensated pulls, the OBS downdate and the obs baseline."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from skbandit.pruning import (
    BanditScorer,
    FidelityReward,
    LossReward,
    OBSScorer,
    Refit,
    _obs,
    consumer_refits,
    evaluate_arms,
    evaluate_arms_naive,
    evaluate_company,
    find_unit_groups,
    greedy_obs_order,
    masked,
    prune,
    refitted,
    remove_units,
    resolve_loss,
    sample_metric,
    unit_means,
)
from skbandit.pruning._obs import consumer_gram

METRIC = sample_metric("loss", resolve_loss("cross_entropy"))


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 10), nn.Tanh(), nn.Linear(10, 3)
    ).eval()


def _data(n=300, seed=1):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=generator)
    return X, torch.randint(0, 3, (n,), generator=generator)


def _removal_loss(net, groups, g, units, X, xb, yb):
    """The naive compensated removal: a refit copy, then a forward pass."""
    removals = [[] for _ in groups]
    removals[g] = units
    small = remove_units(net, groups, removals, "lstsq", X)
    return METRIC(small(xb), yb).mean()


@pytest.mark.parametrize("g", [0, 1])
def test_compensated_pulls_equal_naive_compensated_removal(g):
    net, (X, y) = _net(), _data()
    groups = find_unit_groups(net)
    refit = consumer_refits(net, groups, X)[g]
    xb, yb = X[:64], y[:64]
    arms = np.array([0, 3, 3, 7, groups[g].size - 1])  # repeats allowed
    fast = evaluate_arms(net, groups[g], arms, xb, yb, METRIC, refit=refit)
    naive = evaluate_arms_naive(net, groups[g], arms, xb, yb, METRIC, refit=refit)
    removal = torch.stack([_removal_loss(net, groups, g, [j], X, xb, yb) for j in arms])
    torch.testing.assert_close(fast, removal, atol=1e-5, rtol=0)
    torch.testing.assert_close(naive, removal, atol=1e-5, rtol=0)


def test_refitted_set_equals_compensated_removal_of_the_set():
    net, (X, y) = _net(), _data()
    groups = find_unit_groups(net)
    refits = consumer_refits(net, groups, X)
    units = [1, 4, 5, 9]
    with refitted(net, {groups[1]: refits[1]}, {groups[1]: units}):
        value = METRIC(net(X), y).mean()
    expected = _removal_loss(net, groups, 1, units, X, X, y)
    torch.testing.assert_close(value, expected, atol=1e-5, rtol=0)


def test_removal_costs_hand_computed_orthogonal_inputs():
    # Zero-mean orthogonal columns: G = diag(4, 4, 4), so beta is read off
    # Z = 2 h1 + 0.5 h2 + 3 and dRSS_j = beta_j^2 * ||h_j||^2 = 16 and 1.
    H = torch.tensor([[1.0, 1], [1, -1], [-1, 1], [-1, -1]], dtype=torch.float64)
    Z = (2 * H[:, :1] + 0.5 * H[:, 1:] + 3).double()
    A = torch.cat([H, torch.ones(4, 1, dtype=torch.float64)], 1)
    refit = Refit.from_gram(A.T @ A, A.T @ Z)
    torch.testing.assert_close(
        refit.coef.flatten(), torch.tensor([2, 0.5, 3.0]).double()
    )
    torch.testing.assert_close(
        refit.removal_costs(), torch.tensor([16.0, 1.0]).double()
    )
    order, costs = greedy_obs_order(refit)
    np.testing.assert_array_equal(order, [1])
    np.testing.assert_allclose(costs, [1.0])


def _rss(H, Z, columns):
    A = torch.cat([H[:, columns], torch.ones(H.shape[0], 1, dtype=H.dtype)], 1)
    solution = torch.linalg.lstsq(A, Z).solution
    return float((A @ solution - Z).square().sum())


def test_greedy_obs_equals_brute_force_refits():
    generator = torch.Generator().manual_seed(0)
    H = torch.randn(40, 6, generator=generator, dtype=torch.float64)
    H[:, 5] = H[:, 0] - 0.5 * H[:, 2] + 0.05 * H[:, 5]  # nearly collinear
    Z = H @ torch.randn(6, 3, generator=generator, dtype=torch.float64)
    Z += 0.3 * torch.randn(40, 3, generator=generator, dtype=torch.float64)
    A = torch.cat([H, torch.ones(40, 1, dtype=torch.float64)], 1)
    order, costs = greedy_obs_order(Refit.from_gram(A.T @ A, A.T @ Z))
    alive, rss = list(range(6)), _rss(H, Z, list(range(6)))
    for j, cost in zip(order, costs):
        trials = {c: _rss(H, Z, [i for i in alive if i != c]) for c in alive}
        best = min(trials, key=trials.get)
        assert j == best
        assert cost == pytest.approx(trials[best] - rss, rel=1e-8, abs=1e-9)
        alive.remove(j)
        rss = trials[best]


def test_removal_cost_with_ridge_is_the_penalised_objective_increase():
    generator = torch.Generator().manual_seed(1)
    H = torch.randn(25, 4, generator=generator, dtype=torch.float64)
    Z = torch.randn(25, 2, generator=generator, dtype=torch.float64)
    A = torch.cat([H, torch.ones(25, 1, dtype=torch.float64)], 1)
    penalty = torch.diag(torch.tensor([2.0, 2.0, 2.0, 2.0, 0.0], dtype=torch.float64))

    def objective(columns):
        a = A[:, columns + [4]]
        p = penalty[columns + [4]][:, columns + [4]]
        beta = torch.linalg.solve(a.T @ a + p, a.T @ Z)
        return float((a @ beta - Z).square().sum() + (beta * (p @ beta)).sum())

    refit = Refit.from_gram(A.T @ A + penalty, A.T @ Z)
    full = objective([0, 1, 2, 3])
    for j, cost in enumerate(refit.removal_costs().tolist()):
        rest = [i for i in range(4) if i != j]
        assert cost == pytest.approx(objective(rest) - full, rel=1e-9)


def test_consumer_gram_is_the_same_in_row_chunks(monkeypatch):
    # float64: a float32 forward pass depends on the batch at 1e-7.
    net, (X, _) = _net().double(), _data(n=50)
    X = X.double()
    whole = consumer_gram(net, "2", X)
    monkeypatch.setattr(_obs, "_CHUNK_ROWS", 7)
    chunked = consumer_gram(net, "2", X)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-10)


def test_refit_of_sequence_inputs_equals_compensated_removal():
    # A Linear consumer reading (samples, positions, features): the ridge
    # penalty counts rows (samples x positions), as the removal's refit does.
    net, (X, _) = _net().double(), _data(n=40)
    X = X.double().view(8, 5, 5)
    groups = find_unit_groups(net)
    refit = consumer_refits(net, groups, X)[0]
    small = remove_units(net, groups, [[2, 7], []], "lstsq", X)
    coef = refit.without([2, 7]).coef
    kept = [j for j in range(12) if j not in (2, 7)]
    torch.testing.assert_close(coef[kept].T, small[2].weight, rtol=0, atol=1e-10)
    torch.testing.assert_close(coef[-1], small[2].bias, rtol=0, atol=1e-10)


def test_obs_scorer_is_greedy_layer_by_layer():
    net, (X, y) = _net(), _data()
    groups = find_unit_groups(net)
    result = OBSScorer().score(
        net, groups, X, y, None, np.random.default_rng(0), n_remove=[6, 5]
    )
    first, _ = greedy_obs_order(Refit.from_gram(*consumer_gram(net, "2", X)))
    np.testing.assert_array_equal(np.argsort(-result.scores[0])[:11], first)
    # The second layer is scored with the first one's 6 units already gone,
    # refit to the unpruned network's outputs.
    removals = [first[:6], []]
    partial = remove_units(net, groups, removals, "lstsq", X)
    second, _ = greedy_obs_order(
        Refit.from_gram(*consumer_gram(partial, "4", X, target_model=net))
    )
    np.testing.assert_array_equal(np.argsort(-result.scores[1])[:9], second)


def test_obs_scorer_network_is_the_removal_of_its_units_on_three_layers():
    # Every layer after the first is scored on the network with the earlier
    # layers' units removed and refit to the unpruned network's outputs, as
    # remove_units removes them; the network it builds is the pruned one.
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 9),
        nn.ReLU(),
        nn.Linear(9, 8),
        nn.ReLU(),
        nn.Linear(8, 7),
        nn.Tanh(),
        nn.Linear(7, 3),
    ).eval()
    (X, y), groups = _data(), find_unit_groups(net)
    result = OBSScorer().score(
        net, groups, X, y, None, np.random.default_rng(0), n_remove=[4, 4, 3]
    )
    removals = [
        np.argsort(-s, kind="stable")[:n] for s, n in zip(result.scores, [4, 4, 3])
    ]
    assert result.removed.matches(removals, "lstsq")
    assert not result.removed.matches(removals, "mean")
    partial = remove_units(net, groups, [removals[0], removals[1], []], "lstsq", X)
    third, _ = greedy_obs_order(
        Refit.from_gram(*consumer_gram(partial, "6", X, target_model=net))
    )
    np.testing.assert_array_equal(np.argsort(-result.scores[2])[:6], third)
    expected = remove_units(net, groups, removals, "lstsq", X)
    small, _ = prune(net, X, y, policy="obs", prune_ratio=0.5, compensate="lstsq")
    for a, b, c in zip(
        result.removed.network.parameters(), expected.parameters(), small.parameters()
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(c, b, rtol=0, atol=0)


def test_prune_obs_removes_the_greedy_units_and_is_deterministic():
    net, (X, y) = _net(), _data()
    small, report = prune(net, X, y, policy="obs", prune_ratio=0.5, compensate="lstsq")
    again, _ = prune(net, X, y, policy="obs", prune_ratio=0.5, compensate="lstsq")
    assert [l.units_after for l in report.layers] == [6, 5]
    for a, b in zip(small.parameters(), again.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert report.total_pulls == 0


def test_obs_scores_channels_read_by_a_convolution_by_their_kernel_taps():
    # A channel read by a k-tap convolution owns k columns of the consumer's
    # regression on unfolded patches: its block cost is the increase of the
    # refit's residual when those columns go, refit on the rest.
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv1d(1, 5, 3), nn.ReLU(), nn.Conv1d(5, 2, 3, padding=1)
    ).eval()
    X = torch.randn(40, 1, 12, dtype=torch.float64)
    net = net.double()
    (group,) = find_unit_groups(net, example_input=X[:1])
    assert _obs.refittable(net, group) and _obs.refit_width(net, group) == 3
    gram, cross = consumer_gram(net, "2", X, ridge=0.0)
    refit = Refit.from_gram(gram, cross, width=3)
    patches = nn.functional.unfold(
        torch.relu(net[0](X)).unsqueeze(-1), (3, 1), padding=(1, 0)
    )  # (samples, 5 channels x 3 taps, positions)
    A = patches.transpose(1, 2).reshape(-1, 15)
    A = torch.cat([A, A.new_ones(len(A), 1)], 1)
    Z = net(X).transpose(1, 2).reshape(-1, 2)
    rss = ((A @ torch.linalg.lstsq(A, Z).solution - Z) ** 2).sum()
    for unit in range(5):
        keep = [c for c in range(16) if c // 3 != unit]
        sub = A[:, keep]
        removed = ((sub @ torch.linalg.lstsq(sub, Z).solution - Z) ** 2).sum()
        torch.testing.assert_close(refit.removal_costs()[unit], removed - rss)
    small, report = prune(
        net, X, net(X).detach(), policy="obs", compensate="lstsq", loss="mse"
    )
    assert report.method == "obs" and small[0].out_channels == 3
    # Not the default there: the bandit has not been measured against it.
    _, default = prune(net, X, net(X).detach(), loss="mse", budget=1)
    assert default.method == "ucb1"


def test_obs_rejects_units_read_by_a_reflect_padded_convolution():
    # Reflected padding repeats input values: no linear regression on the
    # layer's patches reproduces it after removal.
    net = nn.Sequential(
        nn.Conv1d(1, 4, 3),
        nn.ReLU(),
        nn.Conv1d(4, 2, 3, padding=1, padding_mode="reflect"),
    )
    X = torch.randn(8, 1, 10)
    with pytest.raises(ValueError, match="least squares refits"):
        prune(net, X, torch.randn(8, 2, 8), policy="obs", loss="mse")


def test_prune_default_is_obs_per_layer_and_the_bandit_otherwise():
    net, (X, y) = _net(), _data()

    def method(**options):
        return prune(net, X, y, random_state=0, **options)[1].method

    assert method() == "obs"
    # OBS's scores are positions in each layer's order: a global count or a
    # target needs comparable scores, and bandit options ask for the bandit.
    assert method(scope="global") == "ucb1"
    assert method(target_params=0.5) == "ucb1"
    assert method(budget=3) == "ucb1" and method(prior="obs") == "ucb1"
    assert method(compensate="mean") == "ucb1"


def test_prune_obs_takes_the_network_the_scorer_built(monkeypatch):
    from skbandit.pruning import _prune

    net, (X, y) = _net(), _data()
    expected, _ = prune(net, X, y, policy="obs")

    def no_second_removal(*args, **kwargs):
        raise AssertionError("removed again")

    monkeypatch.setattr(_prune, "remove_units", no_second_removal)
    small, _ = prune(net, X, y, policy="obs")
    for a, b in zip(small.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_compensated_bandit_rewards_are_the_compensated_loss_changes():
    net, (X, y) = _net(), _data(n=64)
    groups = find_unit_groups(net)
    # One round over every arm of both layers, on the whole data set.
    scorer = BanditScorer(
        "ucb1", budget=1, batch_size=64, compensate="lstsq", arms_per_round=12
    )
    result = scorer.score(
        net, groups, X, y, resolve_loss("cross_entropy"), np.random.default_rng(0)
    )
    base = METRIC(net(X), y).mean().item()
    for g, group in enumerate(groups):
        units, rewards = result.history[g][0]
        expected = [
            LossReward()(base, _removal_loss(net, groups, g, [j], X, X, y).item())
            for j in units
        ]
        np.testing.assert_allclose(rewards, expected, atol=1e-4)
        assert sorted(units) == list(range(group.size))


def test_set_pulls_refit_compensated_groups():
    net, (X, y) = _net(), _data(n=64)
    small, report = prune(
        net,
        X,
        y,
        policy="ucb1",
        pull="set",
        compensate="lstsq",
        budget=2,
        random_state=0,
    )
    assert report.total_pulls > 0
    assert [l.units_after for l in report.layers] == [6, 5]


@pytest.mark.parametrize("units", list(itertools.combinations(range(4), 2))[:3])
def test_block_downdate_equals_sequential_downdates(units):
    generator = torch.Generator().manual_seed(2)
    H = torch.randn(30, 4, generator=generator, dtype=torch.float64)
    Z = torch.randn(30, 2, generator=generator, dtype=torch.float64)
    A = torch.cat([H, torch.ones(30, 1, dtype=torch.float64)], 1)
    refit = Refit.from_gram(A.T @ A, A.T @ Z)
    kept = [i for i in range(4) if i not in units] + [4]
    direct = torch.linalg.lstsq(A[:, kept], Z).solution
    torch.testing.assert_close(refit.without(list(units)).coef[kept], direct)


def test_company_terms_equal_the_refits_without_each_context():
    net, (X, _) = _net(), _data()
    groups = find_unit_groups(net)
    (refit, _) = consumer_refits(net, groups, X)
    plan, arms = [2, 3, 8], [0, 2, 3, 5, 8, 11]
    H = torch.relu(net[0](X)).detach()
    z, rows, delta = refit.company_terms(H, arms, plan)
    torch.testing.assert_close(z, refit.without(plan).pre_activation(H))
    for i, j in enumerate(arms):
        # removed on top of the plan, or restored from it
        context = [u for u in plan if u != j] + ([] if j in plan else [j])
        expected = refit.without(context).pre_activation(H)
        torch.testing.assert_close(z - torch.outer(delta[i], rows[j]), expected)


def test_company_terms_of_a_cached_plan_equal_a_fresh_refit_exactly():
    net, (X, _) = _net(), _data()
    groups = find_unit_groups(net)
    (refit, _) = consumer_refits(net, groups, X)
    H = torch.relu(net[0](X)).detach()
    arms = [0, 2, 3, 5, 8, 11]
    # The plan changes and comes back: the terms kept for it must not drift.
    for plan in ([2, 3, 8], [2, 3, 8], [1, 3], [2, 3, 8]):
        fresh = Refit.from_gram(refit.gram, refit.cross)
        for ours, expected in zip(
            refit.company_terms(H, arms, plan), fresh.company_terms(H, arms, plan)
        ):
            assert torch.equal(ours, expected)


@pytest.mark.parametrize("fill", ["zero", "mean", "lstsq"])
@pytest.mark.parametrize("g", [0, 1])
def test_company_pulls_equal_naive_removal_with_the_plan(fill, g):
    net, (X, y) = _net(), _data()
    groups = find_unit_groups(net)
    refit = consumer_refits(net, groups, X)[g] if fill == "lstsq" else None
    fills = unit_means(net, groups, X)[g] if fill == "mean" else None
    plan, arms = [1, 4, 5], np.array([0, 1, 4, 4, 7, 9])
    xb, yb = X[:64], y[:64]
    before, after = evaluate_company(
        net, groups[g], arms, plan, xb, yb, METRIC, fills, refit=refit
    )

    def removed(units):
        if fill == "lstsq":
            return _removal_loss(net, groups, g, units, X, xb, yb)
        keep = torch.ones(groups[g].size)
        keep[units] = 0
        with masked(
            net, {groups[g]: keep}, None if fills is None else {groups[g]: fills}
        ):
            return METRIC(net(xb), yb).mean()

    for j, b, a in zip(arms, before, after):
        context = [u for u in plan if u != j]
        torch.testing.assert_close(b, removed(context), atol=1e-5, rtol=0)
        torch.testing.assert_close(a, removed(context + [int(j)]), atol=1e-5, rtol=0)


def test_company_bandit_conditions_on_its_plan():
    net, (X, y) = _net(), _data(n=64)
    groups = find_unit_groups(net)
    scorer = BanditScorer(
        "ucb1",
        budget=3,
        batch_size=64,
        compensate="lstsq",
        pull="company",
        arms_per_round=12,
    )
    rng = np.random.default_rng(0)
    result = scorer.score(net, groups, X, y, resolve_loss("cross_entropy"), rng)
    assert all(p.sum() == 3 * g.size for p, g in zip(result.pulls, groups))
    # The first round has no plan yet: single compensated pulls.
    base = METRIC(net(X), y).mean().item()
    units, rewards = result.history[0][0]
    expected = [
        LossReward()(base, _removal_loss(net, groups, 0, [j], X, X, y).item())
        for j in units
    ]
    np.testing.assert_allclose(rewards, expected, atol=1e-4)


def test_fidelity_metric_and_reward_hand_computed():
    metric = sample_metric("fidelity", resolve_loss("cross_entropy"))
    target = torch.tensor([[float(np.log(3.0)), 0.0]])  # p = (0.75, 0.25)
    kl = metric(torch.zeros(1, 2), target)  # q = (0.5, 0.5)
    expected = 0.75 * np.log(1.5) + 0.25 * np.log(0.5)
    torch.testing.assert_close(kl, torch.tensor([expected], dtype=torch.float32))
    assert metric(target, target).item() == 0.0
    squared = sample_metric("fidelity", resolve_loss("mse"))
    assert squared(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]])).item() == 5.0
    # Relative to the divergence already there: 0.1 on top of 0.9 (+ floor 0.1)
    # is a relative change of 0.1, one logit at temperature 0.1.
    reward = FidelityReward(temperature=0.1, floor=0.1)
    np.testing.assert_allclose(
        reward(np.array([0.0, 0.9]), np.array([0.01, 1.0])), 1 / (1 + np.e), rtol=1e-12
    )


@pytest.mark.parametrize("fill, compensate", [("zero", "none"), ("lstsq", "lstsq")])
def test_the_scorer_s_deprecated_fill_is_its_compensate(fill, compensate):
    net, (X, y) = _net(), _data(n=64)
    groups = find_unit_groups(net)
    settings = dict(budget=2, batch_size=32, arms_per_round=4)

    def scores(scorer):
        rng = np.random.default_rng(0)
        result = scorer.score(net, groups, X, y, resolve_loss("cross_entropy"), rng)
        return result.scores

    with pytest.warns(FutureWarning, match="fill=.*deprecated.*compensate="):
        old = BanditScorer("ucb1", fill=fill, **settings)
    new = BanditScorer("ucb1", compensate=compensate, **settings)
    for a, b in zip(scores(old), scores(new)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(
        ValueError, match="'compensate' parameter of BanditScorer must be one of"
    ):
        scores(BanditScorer("ucb1", compensate="zero"))
    with (
        pytest.warns(FutureWarning),
        pytest.raises(ValueError, match="'fill' parameter of BanditScorer must be"),
    ):
        scores(BanditScorer("ucb1", fill="none"))
