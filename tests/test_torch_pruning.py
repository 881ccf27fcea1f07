"""Torch-Pruning's Taylor criterion as a scorer: the units its own pruner removes."""

import copy

import pytest
import torch
import torch.nn.functional as F

from skbandit.benchmarks._perf import mlp
from skbandit.benchmarks._torch_pruning import TorchPruningTaylor
from skbandit.pruning import prune


def test_taylor_scorer_matches_torch_pruning_taylor_pruner():
    tp = pytest.importorskip("torch_pruning")
    net = mlp((6, 12, 10, 3), seed=1)
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(40, 6, generator=generator)
    y = torch.randint(0, 3, (40,), generator=generator)
    # Torch-Pruning's pruner drops the units without compensation.
    ours, _ = prune(net, X, y, TorchPruningTaylor(), 0.5, compensate="none")
    theirs = copy.deepcopy(net)
    F.cross_entropy(theirs(X), y).backward()
    tp.pruner.MagnitudePruner(
        theirs,
        X[:2],
        importance=tp.importance.GroupTaylorImportance(),
        pruning_ratio=0.5,
        ignored_layers=[theirs[4]],
    ).step()
    assert [m.weight.shape for m in ours if hasattr(m, "weight")] == [
        m.weight.shape for m in theirs if hasattr(m, "weight")
    ]
    torch.testing.assert_close(ours(X), theirs(X))
    # The scorer leaves no gradients behind on the model it scored.
    assert all(p.grad is None for p in net.parameters())


def test_taylor_scorer_with_least_squares_compensation():
    pytest.importorskip("torch_pruning")
    net = mlp((6, 12, 10, 3), seed=1)
    X, y = torch.randn(60, 6), torch.randint(0, 3, (60,))
    plain, _ = prune(net, X, y, TorchPruningTaylor(), 0.5, compensate="none")
    refit, report = prune(net, X, y, TorchPruningTaylor(), 0.5, compensate="lstsq")
    assert [l.units_after for l in report.layers] == [6, 5]
    # Same units, different consumers: the refit changed the next layers.
    assert plain[0].weight.shape == refit[0].weight.shape
    assert not torch.allclose(plain[2].weight, refit[2].weight)
