"""Statistics over all of ``X`` stream in chunks: the same numbers, bounded memory.

Every check forces streaming by shrinking the chunk (``STREAM_ELEMENTS``) and
compares with the in-memory computation on the same data (float64).
"""

import numpy as np
import pytest
import torch
from torch import nn

from skbandit.pruning import (
    ActivationScorer,
    _streaming,
    find_unit_groups,
    remove_units,
    unit_means,
)

DTYPE = torch.float64


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)
    ).to(DTYPE)


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3),
    ).to(DTYPE)


def _case(kind):
    generator = torch.Generator().manual_seed(1)
    if kind == "mlp":
        net, X = _mlp(), torch.randn(300, 5, generator=generator, dtype=DTYPE)
        return net, X, find_unit_groups(net)
    net = _cnn()
    X = torch.randn(120, 1, 6, 6, generator=generator, dtype=DTYPE)
    return net, X, find_unit_groups(net, example_input=X[:1])


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of a few rows: every statistic below streams."""
    monkeypatch.setattr(_streaming, "STREAM_ELEMENTS", 200)


def _statistics(net, X, groups):
    means = unit_means(net, groups, X)
    spreads = ActivationScorer().score(net, groups, X, None, None, None).scores
    return means, spreads


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_streamed_unit_statistics_equal_in_memory(kind, monkeypatch):
    net, X, groups = _case(kind)
    means, spreads = _statistics(net, X, groups)
    monkeypatch.setattr(_streaming, "STREAM_ELEMENTS", 200)
    assert _streaming.chunk_rows(16) < X.shape[0]
    streamed_means, streamed_spreads = _statistics(net, X, groups)
    for a, b in zip(means, streamed_means):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    for a, b in zip(spreads, streamed_spreads):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("compensate", ["mean", "lstsq"])
def test_streamed_compensation_equals_in_memory(kind, compensate, monkeypatch):
    net, X, groups = _case(kind)
    removals = [np.arange(0, g.size, 2) for g in groups]
    whole = remove_units(net, groups, removals, compensate, X)
    monkeypatch.setattr(_streaming, "STREAM_ELEMENTS", 200)
    streamed = remove_units(net, groups, removals, compensate, X)
    with torch.no_grad():
        torch.testing.assert_close(streamed(X), whole(X), rtol=0, atol=1e-8)
