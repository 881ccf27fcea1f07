"""The pruning backend on CUDA: fast paths against the references there.

Skipped without a GPU (CI has none); run on a CUDA machine with
``pytest tests/test_gpu.py``. The chunking and the deterministic per-arm
sums that the GPU path uses are tested on the CPU as well.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from skbandit import BanditPrunedMLPClassifier
from skbandit.benchmarks._perf import cnn, mlp
from skbandit.benchmarks.deep import TransformerClassifier
from skbandit.pruning import (
    _pulls,
    consumer_refits,
    evaluate_arms,
    evaluate_arms_naive,
    evaluate_company,
    find_unit_groups,
    prune,
    resolve_loss,
    sample_metric,
    trace,
    unit_means,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

METRIC = sample_metric("loss", resolve_loss("cross_entropy"))


def _mlp(sizes, device):
    return mlp(sizes).to(device)


def _data(n, n_in, n_out, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, n_in, generator=g)
    y = torch.randint(0, n_out, (n,), generator=g)
    return X.to(device), y.to(device)


def test_chunk_bound_depends_on_the_device():
    assert _pulls._chunk_elements(torch.empty(1)) == _pulls._CHUNK_ELEMENTS
    meta = torch.empty(1, device="meta")
    assert _pulls._chunk_elements(meta) == _pulls._ACCELERATOR_CHUNK_ELEMENTS
    assert _pulls._ACCELERATOR_CHUNK_ELEMENTS > _pulls._CHUNK_ELEMENTS


@pytest.mark.parametrize("elements", [64 * 24, 1 << 27])
def test_chunk_bounds_change_the_chunks_not_the_values(elements, monkeypatch):
    """Many small chunks (the CPU's) or one holding every arm (a GPU's)."""
    net = _mlp([6, 40, 24, 3], "cpu")
    X, y = _data(64, 6, 3, "cpu")
    group = find_unit_groups(net)[0]
    chunks = []
    chunk_values = _pulls._chunk_values
    monkeypatch.setattr(_pulls, "_chunk_elements", lambda tensor: elements)
    monkeypatch.setattr(
        _pulls, "_chunk_values", lambda *a: chunks.append(1) or chunk_values(*a)
    )
    fast = evaluate_arms(net, group, range(40), X, y, METRIC)
    assert len(chunks) == (40 if elements < 1 << 20 else 1)
    torch.testing.assert_close(
        fast,
        evaluate_arms_naive(net, group, range(40), X, y, METRIC),
        atol=1e-5,
        rtol=0,
    )


def test_dense_arm_sums_equal_index_add():
    """The CUDA sums (dense, deterministic) against the CPU's ``index_add_``."""
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(5, 7, generator=g).relu()  # zeros: skipped pairs
    pairs = torch.nonzero(delta.reshape(-1)).squeeze(1)
    change = torch.randn(len(pairs), generator=g, dtype=torch.float64)
    by_index = torch.zeros(5, dtype=torch.float64).index_add_(0, pairs // 7, change)
    dense = _pulls._dense_arm_sums(change, pairs, delta.shape)
    torch.testing.assert_close(dense, by_index, atol=1e-12, rtol=0)


@cuda
@pytest.mark.parametrize("compensated", [False, True])
def test_cuda_batched_pulls_equal_naive(compensated):
    net = _mlp([20, 256, 128, 5], "cuda")
    X, y = _data(512, 20, 5, "cuda")
    groups = find_unit_groups(net)
    refits = consumer_refits(net, groups, X) if compensated else [None] * len(groups)
    fills = None if compensated else unit_means(net, groups, X)
    tr = trace(net, X)
    for i, group in enumerate(groups):
        arms = range(group.size)
        fill = None if fills is None else fills[i]
        fast = evaluate_arms(net, group, arms, X, y, METRIC, fill, tr, refits[i])
        naive = evaluate_arms_naive(net, group, arms, X, y, METRIC, fill, refits[i])
        assert fast.device.type == "cuda"
        torch.testing.assert_close(fast, naive, atol=1e-5, rtol=0)


@cuda
def test_cuda_conv_pulls_equal_naive(monkeypatch):
    # cuDNN may use TF32 for convolutions, which rounds to 1e-3
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    net = cnn(channels=8).to("cuda")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 1, 8, 8, generator=g).to("cuda")
    y = torch.randint(0, 10, (64,), generator=g).to("cuda")
    group = find_unit_groups(net, example_input=X[:1])[0]
    arms = range(group.size)
    torch.testing.assert_close(
        evaluate_arms(net, group, arms, X, y, METRIC),
        evaluate_arms_naive(net, group, arms, X, y, METRIC),
        atol=1e-5,
        rtol=0,
    )


@cuda
@pytest.mark.parametrize("compensated", [False, True])
def test_cuda_traced_transformer_pulls_equal_naive(compensated):
    """The torch.fx graph path (vmap over the stacked variants) on CUDA."""
    torch.manual_seed(0)
    net = TransformerClassifier(30, 3, 7, dim=16, num_heads=4, ffn_dim=12)
    net = net.eval().to("cuda")
    g = torch.Generator().manual_seed(0)
    X = torch.randint(1, 30, (32, 7), generator=g).to("cuda")
    y = torch.randint(0, 3, (32,), generator=g).to("cuda")
    groups = find_unit_groups(net)
    refits = consumer_refits(net, groups, X) if compensated else [None] * len(groups)
    tr = trace(net, X)
    for group, refit in zip(groups, refits):
        if compensated and refit is None:
            continue
        arms = [0, group.size - 1, 1, 0]
        torch.testing.assert_close(
            evaluate_arms(net, group, arms, X, y, METRIC, tr=tr, refit=refit),
            evaluate_arms_naive(net, group, arms, X, y, METRIC, refit=refit),
            atol=1e-4,
            rtol=0,
        )


@cuda
def test_cuda_pulls_are_deterministic():
    net = _mlp([20, 256, 128, 5], "cuda")
    X, y = _data(512, 20, 5, "cuda")
    group = find_unit_groups(net)[0]
    first = evaluate_arms(net, group, range(group.size), X, y, METRIC)
    for _ in range(3):
        again = evaluate_arms(net, group, range(group.size), X, y, METRIC)
        assert torch.equal(again, first)


@cuda
def test_cuda_company_pulls_equal_naive():
    net = _mlp([20, 64, 32, 5], "cuda")
    X, y = _data(256, 20, 5, "cuda")
    group = find_unit_groups(net)[0]
    (refit,) = consumer_refits(net, [group], X)
    plan, arms = [1, 5, 9, 30], list(range(0, 64, 3))
    fast = evaluate_company(net, group, arms, plan, X, y, METRIC, refit=refit)
    naive = _pulls._company_naive(net, group, arms, plan, X, y, METRIC, None, refit)
    for a, b in zip(fast, naive):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@cuda
def test_cuda_prune_keeps_the_model_on_the_gpu():
    net = _mlp([20, 64, 32, 5], "cuda")
    X, y = _data(256, 20, 5, "cuda")
    pruned, report = prune(net, X, y, prune_ratio=0.5, random_state=0)
    assert {p.device.type for p in pruned.parameters()} == {"cuda"}
    assert [g.size for g in find_unit_groups(pruned)] == [32, 16]
    assert np.isfinite(report.loss_after)


@cuda
def test_cuda_estimator_fits_and_predicts():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    params = dict(max_iter=200, device="cuda", random_state=0)
    est = BanditPrunedMLPClassifier((16,), **params)
    proba = est.fit(X, y).predict_proba(X)
    again = BanditPrunedMLPClassifier((16,), **params)
    assert proba.shape == (200, 2)
    # 0.975 on the CPU: the two devices differ in the last bits only
    assert est.score(X, y) > 0.9
    np.testing.assert_allclose(again.fit(X, y).predict_proba(X), proba, atol=1e-5)


@cuda
def test_cuda_fit_pickles_and_loads_without_cuda(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    est = BanditPrunedMLPClassifier((16,), max_iter=50, device="cuda")
    est.fit(X, y)
    path = tmp_path / "fit.pkl"
    path.write_bytes(pickle.dumps(est))
    assert next(est.module_.parameters()).device.type == "cuda"  # not moved
    again = pickle.loads(path.read_bytes())
    assert next(again.module_.parameters()).device.type == "cuda"
    np.testing.assert_allclose(again.predict_proba(X), est.predict_proba(X))
    # where CUDA is missing: a warning, and CPU predictions
    np.save(tmp_path / "X.npy", X)
    code = (
        "import pickle, sys, warnings, numpy as np\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    est = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "assert any('on the CPU' in str(x.message) for x in w)\n"
        "np.save(sys.argv[3], est.predict_proba(np.load(sys.argv[2])))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = tmp_path / "proba.npy"
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "X.npy"), str(out)],
        check=True,
        env=env,
    )
    np.testing.assert_allclose(np.load(out), est.predict_proba(X), atol=1e-6)
