"""Same ``random_state`` -> byte-identical predictions in separate processes.

A tiny script fits a classifier and a regressor and writes their
``predict_proba`` / ``predict`` with ``numpy.save``; two fresh interpreters
(with different hash seeds, global RNG states and torch thread counts, none
of which may matter) must write the same bytes, and so must this process.
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
