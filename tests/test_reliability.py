"""Reliability: no silently wrong results, bounded settings, reproducible
latency targets, clear errors for what the engine cannot handle (issue 17)."""

import tracemalloc

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from torch import nn

from skbandit import BanditPrunedMLPClassifier
from skbandit.pruning import (
    MAX_BUDGET,
    BanditScorer,
    evaluate_arms,
    evaluate_arms_naive,
    find_unit_groups,
    prune,
    resolve_loss,
    sample_metric,
    trace,
)
from skbandit.pruning._prune import _Plan

METRIC = sample_metric("loss", resolve_loss("cross_entropy"))


def _mlp(inplace):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 32),
        nn.ReLU(inplace=inplace),
        nn.Linear(32, 32),
        nn.ReLU(inplace=inplace),
        nn.Linear(32, 3),
    ).eval()


def _cnn(inplace):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(6, 5, 3),
        nn.ReLU(inplace=inplace),
        nn.Flatten(),
        nn.Linear(5 * 6 * 6, 4),
    ).eval()


def _data(model):
    g = torch.Generator().manual_seed(1)
    if isinstance(model[0], nn.Conv2d):
        X, n_classes = torch.randn(24, 1, 8, 8, generator=g), 4
    else:
        X, n_classes = torch.randn(64, 4, generator=g), 3
    return X, torch.randint(0, n_classes, (X.shape[0],), generator=g)


# -- 1. in-place activations ------------------------------------------------------


@pytest.mark.parametrize("make", [_mlp, _cnn], ids=["mlp", "cnn"])
@pytest.mark.parametrize("inference_mode", [False, True])
def test_batched_pulls_equal_naive_with_in_place_activations(make, inference_mode):
    net = make(inplace=True)
    X, y = _data(net)
    groups = find_unit_groups(net, example_input=X[:1])
    assert len(groups) == 2
    mode = torch.inference_mode if inference_mode else torch.no_grad
    with mode():
        tr = trace(net, X)
        for group in groups:
            arms = range(group.size)
            fast = evaluate_arms(net, group, arms, X, y, METRIC, tr=tr)
            naive = evaluate_arms_naive(net, group, arms, X, y, METRIC)
            # The naive loop of the same weights without in-place activations
            # is the ground truth: it cannot be fooled by aliasing.
            plain = evaluate_arms_naive(make(inplace=False), group, arms, X, y, METRIC)
            torch.testing.assert_close(fast, naive, atol=1e-5, rtol=0)
            torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize("make", [_mlp, _cnn], ids=["mlp", "cnn"])
@pytest.mark.parametrize("compensate", ["none", "lstsq"])
def test_prune_with_in_place_activations_matches_out_of_place(make, compensate):
    X, y = _data(make(inplace=False))
    results = []
    for inplace in (False, True):
        small, report = prune(
            make(inplace=inplace),
            X,
            y,
            "ucb1",
            0.5,
            budget=4,
            compensate=compensate,
            random_state=0,
        )
        results.append((small, report))
    (plain, plain_report), (inplace, inplace_report) = results
    for a, b in zip(plain_report.layers, inplace_report.layers):
        np.testing.assert_array_equal(a.removed, b.removed)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    torch.testing.assert_close(inplace(X), plain(X), atol=1e-5, rtol=1e-5)


# -- 3. bounded settings -------------------------------------------------------------


def test_round_plan_is_lazy():
    """A plan of a billion rounds allocates nothing per round."""
    net = _mlp(inplace=False)
    groups = find_unit_groups(net)
    tracemalloc.start()
    try:
        plan = _Plan(net, groups, 0.5, "layer", 10**9, None)
        last = plan.counts(10**9 - 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert len(last) == 2
    targets = _Plan(net, groups, 0.5, "global", 10**9, 0.5)
    assert targets.counts(0) is None


def test_one_round_per_unit_is_allowed():
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    X, y = torch.randn(32, 4), torch.arange(32) % 3
    small, report = prune(net, X, y, "ucb1", 0.5, n_rounds=4, random_state=0)
    assert report.n_rounds == 4 and small[0].out_features == 2


def test_budget_bounds_are_inclusive():
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    X, y = torch.randn(32, 4), torch.arange(32) % 3
    _, report = prune(net, X, y, "ucb1", 0.5, budget=1, random_state=0)
    assert report.total_pulls == 4 and (report.layers[0].pulls == 1).all()
    assert MAX_BUDGET == 1000
    BanditScorer("ucb1", budget=MAX_BUDGET, max_budget=MAX_BUDGET)._check()


# -- 4. reproducible latency targets --------------------------------------------------


def test_target_latency_fits_are_reproducible():
    X, y = load_iris(return_X_y=True)
    removed = []
    for _ in range(3):
        clf = BanditPrunedMLPClassifier(
            (32, 32),
            target_latency=0.4,
            max_iter=5,
            fine_tune_epochs=0,
            budget=2,
            random_state=0,
        ).fit(X, y)
        removed.append([l.removed.tolist() for l in clf.pruning_.layers])
        assert clf.pruning_.latency_ratio > 0
    assert removed[0] == removed[1] == removed[2]
    assert sum(map(len, removed[0])) > 0


def test_latency_ratio_measures_on_one_thread_and_restores_threads():
    from skbandit.pruning._targets import latency_ratio

    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(torch.get_num_threads())
            return x

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert latency_ratio(Probe(), Probe(), torch.zeros(1), repeats=2) > 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert set(seen) == {1}


# -- 7. clear errors ------------------------------------------------------------------


def test_memory_pointing_at_a_file_is_a_clear_error(tmp_path):
    path = tmp_path / "cache"
    path.write_text("not a directory")
    X, y = load_iris(return_X_y=True)
    clf = BanditPrunedMLPClassifier((4,), max_iter=1, memory=str(path))
    with pytest.raises(ValueError, match="memory=.*cache' is a file"):
        clf.fit(X, y)
    assert not hasattr(clf, "module_")
    assert path.read_text() == "not a directory"


def test_memory_directory_is_created_when_missing(tmp_path):
    X, y = load_iris(return_X_y=True)
    path = tmp_path / "new" / "cache"
    params = dict(max_iter=1, fine_tune_epochs=0, random_state=0)
    BanditPrunedMLPClassifier((4,), memory=str(path), **params).fit(X, y)
    assert path.is_dir()
