"""Files from disk are data, never code: caches and loaders under attack.

Every cache of trained networks (the estimators' ``memory=``, ``skbandit
bench``'s cache folder, the deep suite's cache) and every ``skbandit.export``
loader is fed crafted pickles whose unpickling would create a marker folder:
the marker must never appear, and a cache must recompute (and replace) the
entry, giving the result of a clean run. An entry copied over another's (the
network of another fold) must be detected too.
"""

import io
import os
import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

from skbandit import BanditPrunedMLPClassifier
from skbandit._cache import TensorCache
from skbandit.export import load_checkpoint, load_module, save_module

FAST = dict(hidden_layer_sizes=(16,), max_iter=5, budget=2, fine_tune_epochs=1)


class _Payload:
    """Unpickling it runs ``os.mkdir(marker)``: a stand-in for any code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _crafted_files(marker):
    """Crafted contents: a bare pickle, and a torch zip holding the payload."""
    buffer = io.BytesIO()
    torch.save({"format": 1, "key": "x", "tensors": _Payload(marker)}, buffer)
    return {"pickle": pickle.dumps(_Payload(marker)), "torch": buffer.getvalue()}


def _poison(folder, contents):
    """Overwrite every file under ``folder``; add an ``output.pkl`` per folder."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert files, "nothing was cached"
    for path in files:
        path.write_bytes(contents)
    for sub in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        (sub / "output.pkl").write_bytes(contents)
    return files


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_estimator_memory_never_runs_a_crafted_entry(iris, tmp_path, kind):
    X, y = iris
    cache, marker = tmp_path / "cache", tmp_path / "marker"
    params = dict(random_state=0, memory=str(cache), **FAST)
    clean = BanditPrunedMLPClassifier(**FAST, random_state=0).fit(X, y)
    BanditPrunedMLPClassifier(**params).fit(X, y)
    _poison(cache, _crafted_files(marker)[kind])
    with pytest.warns(RuntimeWarning, match="discarding the cache entry"):
        again = BanditPrunedMLPClassifier(**params).fit(X, y)
    assert not marker.exists()
    assert not again.train_cache_hit_
    np.testing.assert_array_equal(again.predict_proba(X), clean.predict_proba(X))
    # Recomputed and replaced: the next fit is a silent hit.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        hit = BanditPrunedMLPClassifier(**params).fit(X, y)
    assert hit.train_cache_hit_ and not marker.exists()
    np.testing.assert_array_equal(hit.predict_proba(X), clean.predict_proba(X))


def test_estimator_memory_detects_an_entry_swapped_from_another_fold(iris, tmp_path):
    X, y = iris
    folds = [np.arange(len(y)) % 2 == i for i in (0, 1)]
    params = dict(random_state=0, memory=str(tmp_path), **FAST)
    for rows in folds:
        BanditPrunedMLPClassifier(**params).fit(X[rows], y[rows])
    first, second = sorted(tmp_path.rglob("*.pt"), key=os.path.getmtime)
    shutil.copyfile(second, first)  # fold 1's network under fold 0's key
    X0, y0 = X[folds[0]], y[folds[0]]
    clean = BanditPrunedMLPClassifier(**FAST, random_state=0).fit(X0, y0)
    with pytest.warns(RuntimeWarning, match="answers another call"):
        again = BanditPrunedMLPClassifier(**params).fit(X0, y0)
    assert not again.train_cache_hit_
    np.testing.assert_array_equal(again.predict_proba(X), clean.predict_proba(X))


def test_a_joblib_memory_is_used_by_its_location(iris, tmp_path):
    from joblib import Memory

    X, y = iris
    params = dict(random_state=0, memory=Memory(tmp_path, verbose=0), **FAST)
    BanditPrunedMLPClassifier(**params).fit(X, y)
    assert BanditPrunedMLPClassifier(**params).fit(X, y).train_cache_hit_
    assert list(tmp_path.rglob("*.pkl")) == []  # nothing joblib-pickled


def test_bench_cache_never_runs_a_crafted_entry(tmp_path):
    from skbandit.benchmarks import ResultStore, run_benchmark

    cache, marker = tmp_path / "cache", tmp_path / "marker"
    run = dict(
        datasets=["iris"],
        methods=["ucb1@0.5"],
        n_folds=2,
        max_samples=40,
        progress=False,
        cache=str(cache),
    )
    run_benchmark("tabular", db=tmp_path / "clean.sqlite", **run)
    entries = list(_poison(cache, _crafted_files(marker)["pickle"]))
    # The fits may run in worker processes, whose warnings do not reach here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run_benchmark("tabular", db=tmp_path / "again.sqlite", **run)
    assert not marker.exists()
    for entry in entries:  # recomputed and replaced
        assert torch.load(entry, weights_only=True)["key"] == entry.stem
    scores = [
        ResultStore(tmp_path / name).results_frame("tabular")["score"].tolist()
        for name in ("clean.sqlite", "again.sqlite")
    ]
    assert scores[0] == scores[1]


def test_deep_cache_never_runs_a_crafted_entry(tmp_path):
    from skbandit.benchmarks.deep.tasks import train_deep_model

    cache, marker = tmp_path / "cache", tmp_path / "marker"
    smoke = dict(epochs=1, max_train=64)
    clean, _ = train_deep_model("parity-mlp", seed=0, **smoke)
    train_deep_model("parity-mlp", seed=0, memory=cache, **smoke)
    _poison(cache, _crafted_files(marker)["torch"])
    with pytest.warns(RuntimeWarning, match="discarding the cache entry"):
        again, seconds = train_deep_model("parity-mlp", seed=0, memory=cache, **smoke)
    assert not marker.exists() and seconds > 0
    for a, b in zip(clean.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    hit, seconds = train_deep_model("parity-mlp", seed=0, memory=cache, **smoke)
    assert seconds == 0.0 and not marker.exists()


@pytest.mark.parametrize("loader", [load_checkpoint, load_module])
@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_export_loaders_never_run_a_crafted_file(iris, tmp_path, loader, kind):
    marker, path = tmp_path / "marker", tmp_path / "model.pt"
    X, y = iris
    save_module(BanditPrunedMLPClassifier(**FAST, random_state=0).fit(X, y), path)
    path.write_bytes(_crafted_files(marker)[kind])
    with pytest.raises(ValueError, match="not a readable module checkpoint"):
        loader(path)
    assert not marker.exists()


def test_cache_keys_bind_entries_to_their_call():
    cache = TensorCache("unused", "test")
    X = np.zeros((3, 2))
    base = cache.key(X=X, seed=0, criterion=torch.nn.MSELoss)
    assert base == TensorCache("elsewhere", "test").key(
        X=X.copy(), seed=0, criterion=torch.nn.MSELoss
    )
    other = X.copy()
    other[0, 0] = 1e-9
    for changed in [
        dict(X=other, seed=0, criterion=torch.nn.MSELoss),
        dict(X=X, seed=1, criterion=torch.nn.MSELoss),
        dict(X=X, seed=0, criterion=torch.nn.L1Loss),
        dict(X=X.astype(np.float32), seed=0, criterion=torch.nn.MSELoss),
    ]:
        assert cache.key(**changed) != base
    assert TensorCache("unused", "other").key(X=X, seed=0) != cache.key(X=X, seed=0)
