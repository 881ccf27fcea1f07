"""Same ``random_state`` -> byte-identical predictions in separate processes.

A tiny script fits a classifier and a regressor and writes their
``predict_proba`` / ``predict`` with ``numpy.save``; two fresh interpreters
(with different hash seeds, global RNG states and torch thread counts, none
of which may matter) must write the same bytes, and so must this process.

Fits (and ``prune()``) own their random generators: in parallel threads they
equal sequential fits, and they leave the caller's global random state alone.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np
    import torch
    from sklearn.datasets import load_diabetes, load_iris

    from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor


    def predictions():
        X, y = load_iris(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        clf = BanditPrunedMLPClassifier(
            (16, 8), max_iter=8, fine_tune_epochs=2, budget=2, learning_rate_init=0.02,
            compensate="lstsq", random_state=0,
        ).fit(X, y)
        Xd, yd = load_diabetes(return_X_y=True)
        reg = BanditPrunedMLPRegressor(
            (12,), policy="thompson", max_iter=8, budget=2, random_state=0,
        ).fit(Xd[:150], yd[:150])
        return clf.predict_proba(X), reg.predict(Xd)


    if __name__ == "__main__":
        out, threads, noise = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        torch.set_num_threads(threads)
        # Global RNG states must not matter: the estimators seed their own.
        torch.manual_seed(noise)
        np.random.seed(noise)
        proba, pred = predictions()
        with open(out, "wb") as f:
            np.save(f, proba)
            np.save(f, pred)
    """
)


def _run(script, out, threads, noise, hash_seed):
    # The subprocesses import this checkout's skbandit (the script lives in
    # tmp_path), not whichever copy is installed.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, str(script), str(out), str(threads), str(noise)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out.read_bytes()


# Slow (two fresh interpreters that import torch and fit): the in-process
# refit and thread tests below keep determinism in the default run.
@pytest.mark.slow
def test_predictions_are_byte_identical_across_processes(tmp_path):
    script = tmp_path / "fit_predict.py"
    script.write_text(SCRIPT)
    first = _run(script, tmp_path / "a.npy", threads=1, noise=0, hash_seed=0)
    second = _run(script, tmp_path / "b.npy", threads=2, noise=123, hash_seed=4321)
    assert len(first) > 1000
    assert first == second

    # ... and equal to a fit in this (long-lived, test-suite) process.
    namespace = {"__name__": "fit_predict"}
    exec(compile(SCRIPT, str(script), "exec"), namespace)
    proba, pred = namespace["predictions"]()
    with open(tmp_path / "a.npy", "rb") as f:
        stored_proba, stored_pred = np.load(f), np.load(f)
    assert proba.tobytes() == stored_proba.tobytes()
    assert pred.tobytes() == stored_pred.tobytes()
    assert np.isfinite(proba).all() and np.isfinite(pred).all()


@pytest.mark.parametrize("random_state", [0, 1])
def test_refit_in_process_is_byte_identical(random_state):
    from sklearn.datasets import load_wine

    from skbandit import BanditPrunedMLPClassifier

    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    params = dict(
        hidden_layer_sizes=(10,),
        policy="exp3",
        max_iter=5,
        fine_tune_epochs=1,
        budget=2,
        random_state=random_state,
    )
    a = BanditPrunedMLPClassifier(**params).fit(X, y).predict_proba(X)
    b = BanditPrunedMLPClassifier(**params).fit(X, y).predict_proba(X)
    assert a.tobytes() == b.tobytes()


# -- fits in threads own their random generators --------------------------------


def _iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _diabetes():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return X[:200], y[:200]


def _classifier_fit(seed, **params):
    from skbandit import BanditPrunedMLPClassifier

    X, y = _iris()
    clf = BanditPrunedMLPClassifier(
        (16, 8),
        max_iter=15,
        batch_size=16,
        fine_tune_epochs=2,
        # A bandit, whose pulls draw random numbers (the estimators' default,
        # "obs", draws none in pruning).
        policy="ucb1",
        budget=2,
        n_rounds=2,
        random_state=seed,
        **params,
    )
    return clf.fit(X, y).predict_proba(X)


def _regressor_fit(seed, **params):
    from skbandit import BanditPrunedMLPRegressor

    X, y = _diabetes()
    reg = BanditPrunedMLPRegressor(
        (12,),
        max_iter=15,
        batch_size=16,
        early_stopping=True,
        fine_tune_epochs=2,
        policy="ucb1",
        budget=2,
        random_state=seed,
        **params,
    )
    return reg.fit(X, y).predict(X)


def _filled(build):
    """``build()``'s module with weights drawn from a generator of its own:
    built on the meta device, since initialising draws from the global one."""
    import torch

    with torch.device("meta"):
        module = build()
    module = module.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return module.eval()


def _pruned_with_dropout(seed):
    """``prune()`` of a dropout network, fine-tuned between its rounds."""
    import torch
    from torch import nn

    from skbandit.pruning import fine_tune, prune

    X = torch.randn(128, 6, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] + X[:, 1] > 0).long()
    net = _filled(
        lambda: nn.Sequential(
            nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2)
        )
    )

    def between_rounds(model):
        return fine_tune(model, X, y, epochs=3, batch_size=8, random_state=seed)

    pruned, _ = prune(
        net,
        X,
        y,
        policy="ucb1",
        n_rounds=2,
        budget=2,
        between_rounds=between_rounds,
        random_state=seed,
    )
    with torch.no_grad():
        return pruned(X).numpy()


THREADED_FITS = {
    "classifier": _classifier_fit,
    "regressor": _regressor_fit,
    "prune": _pruned_with_dropout,
}


@pytest.mark.parametrize("fit", THREADED_FITS.values(), ids=THREADED_FITS.keys())
def test_fits_in_threads_equal_sequential_fits(fit):
    from concurrent.futures import ThreadPoolExecutor

    sequential = [fit(seed) for seed in (1, 2)]
    with ThreadPoolExecutor(2) as pool:
        parallel = list(pool.map(fit, (1, 2)))
    for alone, together in zip(sequential, parallel):
        np.testing.assert_array_equal(together, alone)


def test_fits_in_threads_with_memory_equal_sequential_fits(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    sequential = [_classifier_fit(seed) for seed in (1, 2)]

    def cached(seed):
        return _classifier_fit(seed, memory=str(tmp_path))

    with ThreadPoolExecutor(2) as pool:
        parallel = list(pool.map(cached, (1, 2)))
    for alone, together in zip(sequential, parallel):
        np.testing.assert_array_equal(together, alone)


def _fine_tune_without_dropout(seed):
    import torch
    from torch import nn

    from skbandit.pruning import fine_tune

    net = _filled(lambda: nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2)))
    X = torch.linspace(-1, 1, 512).reshape(128, 4)
    fine_tune(net, X, (X[:, 0] > 0).long(), epochs=3, batch_size=4, random_state=seed)


def _prune_attention(seed):
    import torch
    from torch import nn

    from skbandit.pruning import prune

    net = _filled(
        lambda: nn.Sequential(
            nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
            nn.Flatten(),
            nn.Linear(40, 3),
        )
    )
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(32, 5, 8, generator=g), torch.randint(0, 3, (32,), generator=g)
    for _ in range(5):
        prune(net, X, y, policy="ucb1", budget=1, random_state=seed)


CALLER_ALONE = {
    "classifier": _classifier_fit,
    "regressor": _regressor_fit,
    "fine_tune": _fine_tune_without_dropout,
    "prune": _prune_attention,
}


@pytest.mark.parametrize("work", CALLER_ALONE.values(), ids=CALLER_ALONE.keys())
def test_work_in_another_thread_leaves_the_callers_random_state_alone(work):
    """While a fit runs in another thread, the caller's torch and numpy draws
    are those it would make without it, and its generator ends where they
    leave it."""
    import threading

    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    torch_draws, numpy_draws = [], []
    done = threading.Event()

    def run():
        try:
            work(3)
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    while not done.is_set() or not torch_draws:
        torch_draws.append(torch.rand(4))
        numpy_draws.append(np.random.random(4))
        done.wait(0.005)  # leave the other thread the interpreter
    thread.join()
    after = torch.get_rng_state(), np.random.get_state()

    torch.manual_seed(0)
    np.random.seed(0)
    for draw, numpy_draw in zip(torch_draws, numpy_draws):
        torch.testing.assert_close(draw, torch.rand(4), atol=0, rtol=0)
        np.testing.assert_array_equal(numpy_draw, np.random.random(4))
    assert torch.equal(after[0], torch.get_rng_state())
    np.testing.assert_array_equal(after[1][1], np.random.get_state()[1])
    assert after[1][2] == np.random.get_state()[2]


def test_only_models_that_may_draw_lock_the_global_generator():
    from torch import nn

    from skbandit._random import draws_from_global_rng
    from skbandit.pruning import SelfAttention

    class Custom(nn.Module):  # its forward could call F.dropout
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2)

    def plain(*layers):
        return nn.Sequential(nn.Linear(2, 2), nn.ReLU(), *layers)

    assert not draws_from_global_rng(plain(nn.LayerNorm(2), nn.Linear(2, 1)))
    assert not draws_from_global_rng(plain(SelfAttention(4, 2)))
    assert not draws_from_global_rng(plain(nn.MultiheadAttention(4, 2)))
    assert draws_from_global_rng(plain(nn.Dropout(0.1)))
    assert draws_from_global_rng(plain(nn.AlphaDropout(0.1)))
    assert draws_from_global_rng(plain(nn.MultiheadAttention(4, 2, dropout=0.1)))
    assert draws_from_global_rng(plain(nn.TransformerEncoderLayer(4, 2, 8)))
    assert draws_from_global_rng(plain(Custom()))
