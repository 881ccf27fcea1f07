"""The benchmark runner and GridSearchCV on a Dask cluster (loopback only).

One ``LocalCluster`` (2 single-threaded worker processes on 127.0.0.1, no
dashboard) serves the module. A tiny grid must give exactly the scores of
the local joblib run, with the driver as the store's only writer, and a
``GridSearchCV`` of our estimator under ``joblib.parallel_config("dask")``
must give the same ``cv_results_`` as without Dask.
"""

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV

from skbandit import BanditPrunedMLPClassifier, cli
from skbandit.benchmarks import (
    ResultStore,
    SchedulerError,
    _execution,
    integrity_check,
    run_benchmark,
)

distributed = pytest.importorskip("dask.distributed")

# The grid comparisons (and a cluster of our own) take seconds each and run
# in the slow tier; the CLI's --scheduler test on the shared cluster and the
# unreachable-scheduler test keep Dask in the default run.
pytestmark = pytest.mark.dask

TINY_OURS = {"hidden_layer_sizes": (8,), "max_iter": 6, "learning_rate_init": 0.05}
GRID = dict(
    datasets=["iris", "wine"],
    methods=["sk_knn", "sk_linear", "ucb1@0.5", "magnitude@0.5"],
    ours_params={**TINY_OURS, "fine_tune_epochs": 1},
    n_folds=2,
    max_samples=40,
    progress=False,
)
N_CONFIGS = 2 * 4 * 2


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # the health/metrics HTTP server on a free port, not 8787
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:
        yield cluster


def _results(db):
    """``{key: (score, params_after, pruning summary)}`` of a store."""
    with ResultStore(db, create=False) as store:
        frame = store.results_frame("tabular")
    assert not frame.duplicated(["dataset", "method", "fold", "seed"]).any()
    return {
        (r.dataset, r.method, r.fold, r.seed): (
            r.score,
            r.params_after,
            {
                k: v
                for k, v in r.extra.get("pruning", {}).items()
                if not k.startswith("time")
            },
        )
        for r in frame.itertuples()
    }


@pytest.mark.slow
def test_grid_on_dask_equals_local_run(cluster, tmp_path):
    local = run_benchmark("tabular", db=tmp_path / "local.sqlite", **GRID)
    assert local.n_done == N_CONFIGS and not local.failures
    with distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            remote = run_benchmark(
                "tabular",
                db=tmp_path / "dask.sqlite",
                scheduler=cluster.scheduler_address,
                **GRID,
            )
    assert remote.n_done == N_CONFIGS and not remote.failures
    # The fits ran on the cluster's worker processes, not in this one.
    workers = {task["worker"] for task in stream.data}
    assert workers and workers <= set(cluster.scheduler_info["workers"])
    expected = _results(tmp_path / "local.sqlite")
    assert len(expected) == N_CONFIGS
    assert _results(tmp_path / "dask.sqlite") == expected  # exactly equal
    assert integrity_check(tmp_path / "dask.sqlite") == "ok"
    # Resuming on the cluster runs nothing.
    again = run_benchmark(
        "tabular",
        db=tmp_path / "dask.sqlite",
        scheduler=cluster.scheduler_address,
        **GRID,
    )
    assert (again.n_skipped, again.n_done) == (N_CONFIGS, 0)


@pytest.mark.slow
def test_grid_search_on_dask_equals_local(cluster):
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    search = GridSearchCV(
        BanditPrunedMLPClassifier(
            fine_tune_epochs=1, budget=2, random_state=0, **TINY_OURS
        ),
        {"policy": ["ucb1", "thompson", "magnitude"], "prune_ratio": [0.25, 0.5]},
        cv=3,
        n_jobs=2,
    )
    local = search.fit(X, y).cv_results_
    with distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            with joblib.parallel_config(backend="dask"):
                remote = GridSearchCV(**search.get_params(deep=False)).fit(X, y)
    assert stream.data  # it did run on the cluster
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local["mean_test_score"]
    )
    np.testing.assert_array_equal(
        remote.cv_results_["split0_test_score"], local["split0_test_score"]
    )
    assert remote.best_params_ == search.best_params_


def test_cli_scheduler_option(cluster, tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    argv = ["bench", "tabular", "--datasets", "iris", "--methods", "sk_knn"]
    argv += ["--folds", "2", "--max-samples", "40", "--no-progress"]
    argv += ["--db", str(db), "--out", str(tmp_path / "out")]
    status = cli.main([*argv, "--scheduler", cluster.scheduler_address])
    assert status == 0, capsys.readouterr().err
    with ResultStore(db, create=False) as store:
        assert len(store.completed_keys("tabular")) == 2


@pytest.mark.slow
def test_backend_dask_starts_its_own_local_cluster(tmp_path):
    grid = {**GRID, "datasets": ["iris"], "methods": ["sk_knn", "ucb1@0.5"]}
    local = run_benchmark("tabular", db=tmp_path / "a.sqlite", **grid)
    remote = run_benchmark(
        "tabular", db=tmp_path / "b.sqlite", backend="dask", n_jobs=2, **grid
    )
    assert local.n_done == remote.n_done == 4
    assert _results(tmp_path / "b.sqlite") == _results(tmp_path / "a.sqlite")


def test_unreachable_scheduler_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_execution, "DASK_CONNECT_TIMEOUT", 1)
    db = tmp_path / "r.sqlite"
    with pytest.raises(SchedulerError, match="cannot reach the Dask sched"):
        run_benchmark(
            "tabular",
            db=db,
            scheduler="tcp://127.0.0.1:9",  # discard port: nothing listens
            datasets=["iris"],
            methods=["sk_knn"],
        )
    assert not db.exists()
    status = cli.main(
        ["bench", "tabular", "--datasets", "iris", "--methods", "sk_knn"]
        + ["--db", str(db), "--scheduler", "tcp://127.0.0.1:9"]
    )
    err = capsys.readouterr().err
    assert status == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert "Traceback" not in err and not db.exists()
