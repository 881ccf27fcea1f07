"""Tests of the benchmark harness: methods, results store, runner, reports.

Only scikit-learn models and tiny slices run here (2 folds, a few dozen rows),
so the whole file takes seconds. The resume tests interrupt a run for real:
in-process with KeyboardInterrupt, and by SIGKILL of a child process.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_classifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skbandit._options import BASELINE_NAMES as BASELINES
from skbandit._options import POLICY_NAMES as POLICIES
from skbandit.benchmarks import (
    OURS_DEFAULTS,
    Method,
    MethodName,
    list_methods,
    ours_method,
    parse_method_name,
    select_methods,
)
from skbandit.benchmarks._names import EXTERNAL
from skbandit.benchmarks._reports import build_report, pruning_curve, write_report
from skbandit.benchmarks._store import (
    ProtocolMismatch,
    ResultStore,
    StoreError,
    integrity_check,
)
from skbandit.benchmarks._tabular import (
    QUICK,
    fold_indices,
    resolve_datasets,
    run_benchmark,
)

C, R = "classification", "regression"
SMALL = {"n_folds": 2, "max_samples": 40, "progress": False}


# ----------------------------------------------------------------------------
# methods


def test_registry_has_every_policy_and_baseline_once_per_ratio():
    methods = list_methods(C, ratios=(0.3, 0.5))
    ours = [m for m in methods.values() if m.family == "ours"]
    assert [m.name for m in ours].count("none") == 1
    for ratio in ("0.3", "0.5"):
        for policy in (*POLICIES, *BASELINES, *EXTERNAL, "scratch", "paper"):
            assert f"{policy}@{ratio}" in methods
    assert len(ours) == 1 + 2 * (len(POLICIES + BASELINES + EXTERNAL) + 2)
    peers = [m.name for m in methods.values() if m.family == "peer"]
    assert peers == [
        "sk_linear",
        "sk_knn",
        "sk_tree",
        "sk_forest",
        "sk_hgb",
        "sk_svm",
        "sk_mlp",
    ]


def test_ours_share_one_architecture():
    for method in list_methods(R).values():
        if method.family == "ours":
            for key, value in OURS_DEFAULTS.items():
                assert method.params[key] == value
    m = ours_method("thompson", 0.25)
    assert (m.name, m.policy, m.prune_ratio) == ("thompson@0.25", "thompson", 0.25)
    assert m.params["prune_ratio"] == 0.25
    assert "prune_ratio" not in ours_method("none", 0.5).params


@pytest.mark.parametrize(
    "names, expected",
    [
        (["ucb1@*"], ["ucb1@0.3", "ucb1@0.5"]),
        (["sk_k*", "none"], ["none", "sk_knn"]),
        (
            ["*@0.3"],
            [
                f"{p}@0.3"
                for p in (*POLICIES, *BASELINES, *EXTERNAL, "scratch", "paper")
            ],
        ),
        (["hedge@0.8"], ["hedge@0.8"]),  # an explicit ratio outside `ratios`
        (["sk_knn", "sk_k*"], ["sk_knn"]),
    ],
)
def test_select_methods_by_name_and_glob(names, expected):
    assert list(select_methods(C, names, ratios=(0.3, 0.5))) == expected


@pytest.mark.parametrize("name", ["bogus", "ucb1@1.5", "sk_*x"])
def test_select_methods_rejects_unknown(name):
    with pytest.raises(ValueError, match="method"):
        select_methods(C, [name])


def test_parse_method_name():
    assert parse_method_name("exp3@0.7") == MethodName("exp3", 0.7)
    assert parse_method_name("none") == MethodName("none")
    assert parse_method_name("sk_mlp") is None
    assert parse_method_name("bogus@0.5") is None
    full = parse_method_name("thompson@0.25:lstsq/ft0+set")
    assert full == MethodName("thompson", 0.25, "lstsq", 0, "set")
    assert str(full) == "thompson@0.25:lstsq/ft0+set"


@pytest.mark.parametrize("pull", ["company", "single", "set"])
def test_method_name_carries_every_pull_scheme(pull):
    name = parse_method_name(f"ucb1@0.75/ft0+{pull}")
    assert name == MethodName("ucb1", 0.75, None, 0, pull)
    assert name.settings()["pull"] == pull
    assert str(name) == f"ucb1@0.75/ft0+{pull}"


def test_unpruned_method_takes_fine_tuning_epochs_only():
    assert parse_method_name("none/ft0") == MethodName("none", fine_tune_epochs=0)
    assert str(MethodName("none", fine_tune_epochs=3)) == "none/ft3"
    for name in ("none@0.5", "none:lstsq", "none/ft0+set"):
        assert parse_method_name(name) is None
    chosen = select_methods(C, ["none", "none/ft0"])
    assert (
        chosen["none"].params["fine_tune_epochs"] == OURS_DEFAULTS["fine_tune_epochs"]
    )
    assert chosen["none/ft0"].params["fine_tune_epochs"] == 0


@pytest.mark.parametrize(
    "name",
    [
        "ucb1@0",
        "ucb1@1",
        "ucb1@-0.5",
        "ucb1@0.5:median",
        "ucb1@0.5/ftx",
        "ucb1@0.5+pairs",
    ],
)
def test_parse_method_name_rejects_out_of_grammar(name):
    assert parse_method_name(name) is None


@pytest.mark.parametrize("task", [C, R])
def test_peers_are_scaled_pipelines(task):
    methods = list_methods(task)
    for name in ("sk_linear", "sk_knn", "sk_forest", "sk_hgb", "sk_svm", "sk_mlp"):
        pipe = methods[name].make(task, random_state=3)
        assert isinstance(pipe, Pipeline)
        assert isinstance(pipe[0], StandardScaler)
        assert is_classifier(pipe) == (task == C)
        if "random_state" in pipe[-1].get_params():
            assert pipe[-1].random_state == 3
    mlp = methods["sk_mlp"].make(task, 0)[-1]
    assert mlp.hidden_layer_sizes == tuple(OURS_DEFAULTS["hidden_layer_sizes"])
    assert mlp.max_iter == OURS_DEFAULTS["max_iter"]
    assert mlp.batch_size == OURS_DEFAULTS["batch_size"]
    assert mlp.solver == "adam"
    assert methods["sk_forest"].make(task, 0)[-1].n_estimators == 100


def test_ours_builds_our_estimator_lazily():
    skbandit = pytest.importorskip("skbandit")
    if not hasattr(skbandit, "BanditPrunedMLPClassifier"):
        pytest.skip("estimators not available")
    estimator = ours_method("ucb1", 0.5).make(C, random_state=7)[-1]
    assert type(estimator).__name__ == "BanditPrunedMLPClassifier"
    params = estimator.get_params()
    assert params["policy"] == "ucb1" and params["prune_ratio"] == 0.5
    assert params["random_state"] == 7
    assert params["max_iter"] == OURS_DEFAULTS["max_iter"]


def test_methods_pickle():
    import pickle

    for method in list_methods(C).values():
        clone = pickle.loads(pickle.dumps(method))
        assert clone.name == method.name


# ----------------------------------------------------------------------------
# folds and datasets


def test_fold_indices_are_deterministic_and_partition_the_rows():
    y = np.array([0] * 12 + [1] * 8)
    first = fold_indices(C, y, 4, seed=1)
    again = fold_indices(C, y, 4, seed=1)
    other = fold_indices(C, y, 4, seed=2)
    tests = np.concatenate([test for _, test in first])
    assert sorted(tests.tolist()) == list(range(20))
    for (tr, te), (tr2, te2) in zip(first, again):
        assert np.array_equal(tr, tr2) and np.array_equal(te, te2)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    # stratified: every test fold holds 3 of class 0 and 2 of class 1
    assert all(np.bincount(y[test]).tolist() == [3, 2] for _, test in first)
    assert len(fold_indices(R, np.arange(10.0), 5, seed=0)) == 5


def test_resolve_datasets():
    assert resolve_datasets("tabular", None, quick=True) == list(
        QUICK["tabular"]["datasets"]
    )
    assert resolve_datasets("regression", ["diabetes", "diabetes"]) == ["diabetes"]
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        resolve_datasets("tabular", ["nope"])
    with pytest.raises(ValueError, match="regression dataset"):
        resolve_datasets("tabular", ["diabetes"])
    with pytest.raises(ValueError, match="unknown suite"):
        resolve_datasets("images", ["iris"])


# ----------------------------------------------------------------------------
# the store


def test_store_round_trip(tmp_path):
    path = tmp_path / "sub" / "r.sqlite"
    key = ("tabular", "iris", "sk_knn", 1, 0)
    extra = {"pruning": {"n": np.int64(3), "w": np.array([0.5])}, "t": (1, 2)}
    with ResultStore(path) as store:
        assert store.add_result(
            key,
            {
                "metric": "accuracy",
                "score": 0.9,
                "fit_time": 0.1,
                "params_before": 100,
                "params_after": 50,
                "extra": extra,
            },
        )
        assert not store.add_result(key, {"metric": "accuracy", "score": 0.1})
        assert store.completed_keys("tabular") == {("iris", "sk_knn", 1, 0)}
        assert store.completed_keys("regression") == set()
        frame = store.results_frame("tabular")
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.dataset, row.method, row.fold, row.seed) == ("iris", "sk_knn", 1, 0)
    assert row.score == 0.9 and row.params_after == 50
    assert pd.isna(row.predict_time)
    assert row.extra == {"pruning": {"n": 3, "w": [0.5]}, "t": [1, 2]}
    assert integrity_check(path) == "ok"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_failures_are_retried_and_cleared(tmp_path):
    key = ("tabular", "iris", "m", 0, 0)
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.add_failure(key, "Traceback ...\nValueError: boom")
        assert store.failures("tabular") == [
            (("iris", "m", 0, 0), "Traceback ...\nValueError: boom")
        ]
        assert store.completed_keys("tabular") == set()
        store.add_result(key, {"metric": "accuracy", "score": 1.0})
        assert store.failures("tabular") == []


def test_store_protocol_mismatch(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.check_protocol("tabular", {"n_folds": 5, "ours": {"h": (64, 64)}})
        store.check_protocol("tabular", {"n_folds": 5, "ours": {"h": [64, 64]}})
        store.check_protocol("regression", {"n_folds": 3})
        with pytest.raises(ProtocolMismatch, match="n_folds: stored 5"):
            store.check_protocol("tabular", {"n_folds": 3, "ours": {"h": (64, 64)}})
        assert store.protocol("tabular")["n_folds"] == 5


def test_stores_with_the_old_parameter_names_refuse_to_resume(tmp_path):
    """Stores written before issue 15 recorded max_epochs / lr: resuming one
    with today's names is a ProtocolMismatch, not a silent mix."""
    old = {k: v for k, v in OURS_DEFAULTS.items() if k not in ("max_iter",)}
    old = {**old, "max_epochs": 60, "lr": old.pop("learning_rate_init")}
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.check_protocol("tabular", {"n_folds": 5, "ours": old})
        with pytest.raises(ProtocolMismatch, match="ours: stored .*max_epochs"):
            store.check_protocol("tabular", {"n_folds": 5, "ours": OURS_DEFAULTS})


def test_store_rejects_non_sqlite_and_missing_files(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all, " * 100)
    with pytest.raises(StoreError, match="junk.sqlite.*not a valid SQLite"):
        ResultStore(junk)
    with pytest.raises(StoreError, match="no results store at .*missing.sqlite"):
        ResultStore(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    with pytest.raises(StoreError, match="directory"):
        ResultStore(tmp_path)


def test_store_reports_a_lock(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with ResultStore(path, timeout=0.05) as store:
            with pytest.raises(StoreError, match="r.sqlite is locked"):
                store.add_result(("s", "d", "m", 0, 0), {"metric": "accuracy"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# ----------------------------------------------------------------------------
# the runner


def _count_rows(path):
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT dataset, method, fold, seed, COUNT(*) FROM results "
            "GROUP BY dataset, method, fold, seed"
        ).fetchall()


def test_run_stores_the_grid_and_resumes(tmp_path):
    db = tmp_path / "r.sqlite"
    kwargs = dict(datasets=["iris", "wine"], methods=["sk_knn", "sk_tree"], db=db)
    first = run_benchmark("tabular", seeds=(0, 1), **kwargs, **SMALL)
    assert (first.n_configs, first.n_skipped, first.n_done) == (16, 0, 16)
    again = run_benchmark("tabular", seeds=(0, 1), **kwargs, **SMALL)
    assert (again.n_skipped, again.n_done) == (16, 0)
    frame = ResultStore(db, create=False).results_frame("tabular")
    assert len(frame) == 16
    assert set(frame["metric"]) == {"accuracy"}
    assert frame["score"].between(0, 1).all()
    assert (frame["n_train"] + frame["n_test"] == 40).all()
    assert (frame["fit_time"] > 0).all() and (frame["predict_time"] > 0).all()
    versions = frame["extra"].iloc[0]["versions"]
    assert {"python", "numpy", "scikit-learn", "torch", "skbandit"} <= set(versions)
    # same folds for every method: equal test sizes per (dataset, fold, seed)
    sizes = frame.groupby(["dataset", "fold", "seed"])["n_test"].nunique()
    assert (sizes == 1).all()


def test_run_regression_uses_r2(tmp_path):
    summary = run_benchmark(
        "regression",
        datasets=["diabetes"],
        methods=["sk_linear", "sk_mlp"],
        db=tmp_path / "r.sqlite",
        **SMALL,
    )
    assert summary.n_done == 4
    frame = ResultStore(tmp_path / "r.sqlite").results_frame("regression")
    assert set(frame["metric"]) == {"r2"}
    mlp = frame[frame["method"] == "sk_mlp"]
    assert (mlp["params_before"] == mlp["params_after"]).all()
    assert (mlp["params_before"] > 0).all()


def test_run_refuses_another_protocol(tmp_path):
    kwargs = dict(datasets=["iris"], methods=["sk_knn"], db=tmp_path / "r.sqlite")
    run_benchmark("tabular", **kwargs, **SMALL)
    with pytest.raises(ProtocolMismatch, match="n_folds"):
        run_benchmark("tabular", n_folds=3, max_samples=40, progress=False, **kwargs)


class _Interrupting(KNeighborsClassifier):
    """k-NN whose fit raises ``error`` once ``fits_left`` fits have run."""

    fits_left = None
    error = KeyboardInterrupt

    def fit(self, X, y):
        if _Interrupting.fits_left is not None:
            if _Interrupting.fits_left == 0:
                raise _Interrupting.error("stop here")
            _Interrupting.fits_left -= 1
        return super().fit(X, y)


def _build_interrupting(task, random_state):
    return _Interrupting()


def _assert_complete(db, n_expected):
    rows = _count_rows(db)
    assert len(rows) == n_expected
    assert all(count == 1 for *_, count in rows)
    assert integrity_check(db) == "ok"


def test_resume_after_keyboard_interrupt(tmp_path, monkeypatch):
    db = tmp_path / "r.sqlite"
    methods = [Method("sk_knn", "peer", _build_interrupting), "sk_tree"]
    kwargs = dict(datasets=["iris", "wine"], methods=methods, db=db, **SMALL)
    monkeypatch.setattr(_Interrupting, "fits_left", 3)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark("tabular", **kwargs)
    stored = len(_count_rows(db))
    assert 3 <= stored < 8  # the sk_knn fits before the stop, some sk_tree fits
    monkeypatch.setattr(_Interrupting, "fits_left", None)
    summary = run_benchmark("tabular", **kwargs)
    assert (summary.n_skipped, summary.n_done) == (stored, 8 - stored)
    _assert_complete(db, 8)


_KILLED_CHILD = """
import os, signal, sys
from sklearn.tree import DecisionTreeClassifier
from skbandit.benchmarks import Method, run_benchmark

FITS = [0]

class Killing(DecisionTreeClassifier):
    def fit(self, X, y):
        FITS[0] += 1
        if FITS[0] == 4:  # the whole process dies, as with `kill -9`
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y)

def build(task, random_state):
    return Killing(random_state=random_state)

run_benchmark(
    "tabular", datasets=["iris", "wine"],
    methods=["sk_knn", Method("sk_tree", "peer", build)],
    db=sys.argv[1], n_folds=2, max_samples=40, progress=False,
)
raise SystemExit("not killed")
"""


def test_resume_after_sigkill(tmp_path):
    db = tmp_path / "r.sqlite"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_KILLED_CHILD))
    # The child imports this checkout's skbandit (the script lives in
    # tmp_path), not whichever copy is installed.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    child = subprocess.run(
        [sys.executable, str(script), str(db)],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    stored = len(_count_rows(db))
    assert 0 < stored < 8
    assert integrity_check(db) == "ok"
    summary = run_benchmark(
        "tabular",
        datasets=["iris", "wine"],
        methods=["sk_knn", "sk_tree"],
        db=db,
        **SMALL,
    )
    assert (summary.n_skipped, summary.n_done) == (stored, 8 - stored)
    _assert_complete(db, 8)


def test_failures_are_recorded_then_retried(tmp_path, monkeypatch):
    db = tmp_path / "r.sqlite"
    methods = [Method("sk_knn", "peer", _build_interrupting)]
    kwargs = dict(datasets=["iris"], methods=methods, db=db, **SMALL)
    monkeypatch.setattr(_Interrupting, "error", ValueError)
    monkeypatch.setattr(_Interrupting, "fits_left", 1)
    summary = run_benchmark("tabular", **kwargs)
    assert summary.n_done == 1 and summary.n_failed == 1
    ((key, error),) = summary.failures
    assert "ValueError: stop here" in error
    with ResultStore(db) as store:
        assert [k for k, _ in store.failures("tabular")] == [key]
    monkeypatch.setattr(_Interrupting, "fits_left", 0)
    with pytest.raises(RuntimeError, match="stop here"):
        run_benchmark("tabular", on_error="raise", **kwargs)
    monkeypatch.setattr(_Interrupting, "fits_left", None)
    summary = run_benchmark("tabular", **kwargs)
    assert (summary.n_done, summary.n_failed) == (1, 0)
    with ResultStore(db) as store:
        assert store.failures("tabular") == []


def test_run_in_parallel_workers(tmp_path):
    db = tmp_path / "r.sqlite"
    summary = run_benchmark(
        "tabular",
        datasets=["iris"],
        methods=["sk_knn", "sk_linear"],
        db=db,
        n_jobs=2,
        **SMALL,
    )
    assert summary.n_done == 4
    _assert_complete(db, 4)


def test_run_rejects_bad_arguments(tmp_path):
    db = tmp_path / "r.sqlite"
    with pytest.raises(ValueError, match="unknown method"):
        run_benchmark("tabular", datasets=["iris"], methods=["nope"], db=db)
    with pytest.raises(ValueError, match="n_folds"):
        run_benchmark(
            "tabular", datasets=["iris"], methods=["sk_knn"], n_folds=1, db=db
        )
    with pytest.raises(ValueError, match="unknown suite"):
        run_benchmark("deep", db=db)
    assert not db.exists()  # nothing is created before the input is valid


# ----------------------------------------------------------------------------
# reports


def _synthetic_frame(ratios=(0.3, 0.6), datasets=("a", "b", "c", "d")):
    """Long results: 'ucb1' prunes best, the unpruned net next, the tree last."""
    rng = np.random.default_rng(0)
    methods = {"none": 0.80, "sk_tree": 0.70, "sk_knn": 0.78}
    for i, ratio in enumerate(ratios):
        methods[f"ucb1@{ratio:g}"] = 0.85 - 0.02 * i
        methods[f"thompson@{ratio:g}"] = 0.79 - 0.02 * i
        methods[f"random@{ratio:g}"] = 0.74 - 0.05 * i
    rows = []
    for d, dataset in enumerate(datasets):
        for method, base in methods.items():
            ours = parse_method_name(method) is not None
            for fold in range(2):
                rows.append(
                    {
                        "suite": "tabular",
                        "dataset": dataset,
                        "method": method,
                        "fold": fold,
                        "seed": 0,
                        "metric": "accuracy",
                        "score": base - 0.01 * d + rng.normal(0, 0.003),
                        "fit_time": 0.1,
                        "predict_time": 0.01,
                        "params_before": 100 if ours else None,
                        "params_after": (
                            100 * (1 - (parse_method_name(method).prune_ratio or 0))
                            if ours
                            else None
                        ),
                        "extra": {},
                    }
                )
    return pd.DataFrame(rows)


def _store_frame(path, frame):
    with ResultStore(path) as store:
        for row in frame.to_dict("records"):
            key = tuple(
                row.pop(k) for k in ("suite", "dataset", "method", "fold", "seed")
            )
            store.add_result(key, row)


def test_cost_table_separates_phases_and_marks_cache_hits():
    from skbandit.benchmarks._reports import cost_table

    extra = [
        {
            "fit_times": {"train": 4.0, "prune": 1.0, "fine_tune": 0.5},
            "train_cache_hit": False,
        },
        {
            "fit_times": {"train": 0.0, "prune": 1.0, "fine_tune": 0.5},
            "train_cache_hit": True,
        },
        None,
    ]
    frame = pd.DataFrame(
        {
            "method": ["ucb1@0.5", "ucb1@0.5", "sk_knn"],
            "fit_time": [5.5, 1.5, 0.1],
            "predict_time": [0.1, 0.1, 0.1],
            "params_before": [100, 100, None],
            "params_after": [50, 50, None],
            "extra": extra,
        }
    )
    costs = cost_table(frame)
    assert costs.loc["ucb1@0.5", "train_s"] == 2.0
    assert costs.loc["ucb1@0.5", "prune_s"] == 1.0
    assert costs.loc["ucb1@0.5", "fine_tune_s"] == 0.5
    assert costs.loc["ucb1@0.5", "cache_hits"] == 0.5
    assert np.isnan(costs.loc["sk_knn", "train_s"])


def test_report_files_and_content(tmp_path):
    db, out = tmp_path / "r.sqlite", tmp_path / "report"
    _store_frame(db, _synthetic_frame())
    report = write_report(db, "tabular", out, command="skbandit bench tabular")
    names = sorted(os.path.basename(f) for f in report.files)
    assert names == [
        "cd_all.png",
        "cd_pruning.png",
        "pruning_curve.png",
        "report.md",
        "results.csv",
    ]
    for name in names:
        assert (out / name).stat().st_size > 0
    text = (out / "report.md").read_text()
    assert "Regenerate: `skbandit bench tabular`" in text
    assert "## (a) All methods" in text and "## (b) Pruning methods only" in text
    assert "Friedman chi2" in text and "Nemenyi p-values" in text
    assert "![CD diagram, all methods](cd_all.png)" in text
    assert (
        "- **UCB1, 30 % removed**: mean rank 1.00, position 1 of 9 among all methods"
        in text
    )
    # (b) leaves the peers out
    assert list(report.summary_ours.ranks.index)[0] == "ucb1@0.3"
    assert "sk_tree" not in report.summary_ours.ranks
    assert report.costs.loc["ucb1@0.6", "params_ratio"] == pytest.approx(0.4)
    assert report.costs.loc["none", "params_ratio"] == pytest.approx(1.0)
    assert "Friedman (all methods): chi2 =" in report.terminal
    assert "Friedman (pruning methods): chi2 =" in report.terminal
    assert "| a |" in report.terminal


def test_pruning_curve_averages_over_datasets():
    curve = pruning_curve(
        _synthetic_frame().groupby(["dataset", "method"])["score"].mean().unstack()
    )
    assert list(curve.columns) == [0.0, 0.3, 0.6]
    assert sorted(curve.index) == ["random", "thompson", "ucb1"]
    assert curve.loc["ucb1", 0.3] > curve.loc["ucb1", 0.6]
    assert (curve[0.0] == curve.loc["ucb1", 0.0]).all()  # the unpruned net
    single = _synthetic_frame(ratios=(0.5,))
    assert (
        pruning_curve(single.groupby(["dataset", "method"])["score"].mean().unstack())
        is None
    )


def test_pruning_curve_one_row_per_setting_from_its_own_control():
    scores = pd.DataFrame(
        {
            "none": [0.9, 0.8],
            "none/ft0": [0.8, 0.7],
            "ucb1@0.5:lstsq/ft0": [0.8, 0.6],
            "ucb1@0.9:lstsq/ft0": [0.6, 0.4],
            "ucb1@0.5:none/ft0": [0.5, 0.3],
            "ucb1@0.9:none/ft0": [0.3, 0.1],
        }
    )
    curve = pruning_curve(scores)
    assert list(curve.index) == ["ucb1:lstsq/ft0", "ucb1:none/ft0"]
    assert curve.loc["ucb1:none/ft0"].round(2).tolist() == [0.75, 0.4, 0.2]
    assert curve.loc["ucb1:lstsq/ft0", 0.0] == pytest.approx(0.75)  # none/ft0


def test_report_without_tests_or_ours(tmp_path):
    frame = _synthetic_frame(datasets=("a",))
    frame = frame[frame["method"].isin(["sk_knn", "sk_tree"])]
    report = build_report(frame, "tabular")
    assert report.summary_ours is None and report.curve is None
    assert "not computed" in report.terminal
    with pytest.raises(ValueError, match="no results"):
        build_report(frame.iloc[:0], "tabular")


def test_report_of_an_empty_suite(tmp_path):
    db = tmp_path / "r.sqlite"
    ResultStore(db).close()
    with pytest.raises(ValueError, match="no results for suite 'tabular'"):
        write_report(db, "tabular", tmp_path / "out")


def test_explicit_method_grammar_with_compensation_and_fine_tuning():
    from skbandit.benchmarks._methods import select_methods

    names = [
        "ucb1@0.5:lstsq/ft0",
        "tp_magnitude@0.25",
        "random@0.5/ft3",
        "exp3@0.5+set",
    ]
    chosen = select_methods("classification", names)
    assert list(chosen) == names
    assert chosen["exp3@0.5+set"].params["pull"] == "set"
    assert chosen["ucb1@0.5:lstsq/ft0"].params["compensate"] == "lstsq"
    assert chosen["ucb1@0.5:lstsq/ft0"].params["fine_tune_epochs"] == 0
    assert chosen["random@0.5/ft3"].params["fine_tune_epochs"] == 3
    with pytest.raises(ValueError, match="unknown method"):
        select_methods("classification", ["ucb1@0.5:median"])


def test_torch_pruning_scorer_matches_torch_pruning_magnitude_pruner():
    tp = pytest.importorskip("torch_pruning")
    import copy

    import torch

    from skbandit.benchmarks._perf import mlp
    from skbandit.benchmarks._torch_pruning import TorchPruningMagnitude
    from skbandit.pruning import prune

    net = mlp((6, 12, 10, 3), seed=1)
    X, y = torch.randn(40, 6), torch.randint(0, 3, (40,))
    # Torch-Pruning's pruner drops the units without compensation.
    ours, _ = prune(net, X, y, TorchPruningMagnitude(), 0.5, compensate="none")
    theirs = copy.deepcopy(net)
    tp.pruner.MagnitudePruner(
        theirs,
        X[:2],
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=[theirs[4]],
    ).step()
    assert [m.weight.shape for m in ours if hasattr(m, "weight")] == [
        m.weight.shape for m in theirs if hasattr(m, "weight")
    ]
    torch.testing.assert_close(ours(X), theirs(X))


def test_control_comparisons_pair_methods_with_controls_of_their_setting():
    from skbandit.benchmarks._reports import control_comparisons

    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.9, size=6)
    scores = pd.DataFrame(
        {
            "none": base,
            "random@0.5:lstsq/ft0": base - 0.02,
            "ucb1@0.5:lstsq/ft0": base - 0.01,
            "random@0.5:none/ft0": base - 0.20,
            "ucb1@0.5:none/ft0": base - 0.25,
            "sk_knn": base - 0.05,
        },
        index=[f"d{i}" for i in range(6)],
    )
    table = control_comparisons(scores)
    assert sorted(table.index) == ["ucb1@0.5:lstsq/ft0", "ucb1@0.5:none/ft0"]
    # Against random of the same compensation, never across settings.
    assert table.loc["ucb1@0.5:lstsq/ft0", "diff vs random"] == pytest.approx(0.01)
    assert table.loc["ucb1@0.5:none/ft0", "diff vs random"] == pytest.approx(-0.05)
    assert table.loc["ucb1@0.5:none/ft0", "diff vs none"] == pytest.approx(-0.25)
    # Six consistent wins: the smallest two-sided exact p, 2 / 2**6.
    assert table.loc["ucb1@0.5:lstsq/ft0", "p_holm vs random"] == pytest.approx(
        2 / 2**6
    )


def test_control_comparisons_take_the_unpruned_net_trained_as_long():
    from skbandit.benchmarks._reports import control_comparisons

    base = np.linspace(0.6, 0.9, 6)
    scores = pd.DataFrame(
        {
            "none": base + 0.03,
            "none/ft0": base,
            "ucb1@0.5:lstsq/ft0": base - 0.01,
            "ucb1@0.5:lstsq": base + 0.01,
        },
        index=[f"d{i}" for i in range(6)],
    )
    table = control_comparisons(scores)
    # Without fine-tuning against "none/ft0", with it against "none".
    assert table.loc["ucb1@0.5:lstsq/ft0", "diff vs none"] == pytest.approx(-0.01)
    assert table.loc["ucb1@0.5:lstsq", "diff vs none"] == pytest.approx(-0.02)


def test_control_comparisons_against_scratch_at_the_same_ratio_and_epochs():
    from skbandit.benchmarks._reports import control_comparisons

    base = np.linspace(0.6, 0.9, 6)
    scores = pd.DataFrame(
        {
            "none": base,
            "scratch@0.75": base - 0.02,
            "ucb1@0.75": base - 0.01,
            "ucb1@0.75:lstsq": base - 0.005,
            "ucb1@0.75/ft0": base - 0.05,
            "ucb1@0.5": base,
        },
        index=[f"d{i}" for i in range(6)],
    )
    table = control_comparisons(scores)
    assert table.loc["ucb1@0.75", "diff vs scratch"] == pytest.approx(0.01)
    assert table.loc["ucb1@0.75:lstsq", "diff vs scratch"] == pytest.approx(0.015)
    # No scratch network at 50 %, nor one without fine-tuning.
    assert np.isnan(table.loc["ucb1@0.5", "diff vs scratch"])
    assert np.isnan(table.loc["ucb1@0.75/ft0", "diff vs scratch"])


def test_scratch_is_the_unpruned_recipe_at_the_pruned_size():
    from skbandit.pruning import removal_counts

    method = select_methods(C, ["scratch@0.75"])["scratch@0.75"]
    estimator = method.make(C, random_state=0)[-1]
    sizes = OURS_DEFAULTS["hidden_layer_sizes"]
    kept = [n - r for n, r in zip(sizes, removal_counts(list(sizes), 0.75))]
    assert estimator.hidden_layer_sizes == tuple(kept)
    assert estimator.policy == "none"
    assert estimator.fine_tune_epochs == OURS_DEFAULTS["fine_tune_epochs"]
    with pytest.raises(ValueError, match="unknown method"):
        select_methods(C, ["scratch@0.75:lstsq"])


def test_paper_is_the_papers_configuration_at_a_ratio():
    from skbandit._options import PAPER_SETTINGS

    method = select_methods(C, ["paper@0.75/ft0"])["paper@0.75/ft0"]
    estimator = method.make(C, random_state=0)[-1]
    for key, value in PAPER_SETTINGS.items():
        assert getattr(estimator, key) == value
    assert (estimator.prune_ratio, estimator.fine_tune_epochs) == (0.75, 0)
    with pytest.raises(ValueError, match="unknown method"):
        select_methods(C, ["paper@0.5:lstsq"])


def test_auto_method_finds_its_size_in_a_run(tmp_path):
    name = parse_method_name("magnitude@auto")
    assert (name.prune_ratio, str(name)) == ("auto", "magnitude@auto")
    assert name.settings()["prune_ratio"] == "auto"
    method = select_methods(C, ["magnitude@auto"])["magnitude@auto"]
    assert method.build(C, random_state=0).prune_ratio == "auto"
    summary = run_benchmark(
        "tabular",
        datasets=["iris"],
        methods=["none", "magnitude@0.5", "magnitude@auto"],
        db=tmp_path / "a.sqlite",
        ours_params={"max_iter": 5},
        # Enough training rows for a validation split with every class.
        **{**SMALL, "max_samples": 100},
    )
    assert summary.n_done == 6 and summary.n_failed == 0
    frame = ResultStore(tmp_path / "a.sqlite").results_frame("tabular")
    auto = frame[frame["method"] == "magnitude@auto"]
    # The size it found is stored like any pruned size.
    assert (auto["params_after"] <= auto["params_before"]).all()
    report = build_report(frame, "tabular").markdown
    assert "### Size found on validation rows (prune_ratio='auto')" in report
    assert "### 50 % of the hidden units removed" in report


@pytest.mark.parametrize("name", ["scratch@auto", "tp_magnitude@auto", "paper@auto"])
def test_auto_takes_a_policy_or_a_baseline(name):
    with pytest.raises(ValueError, match="no size search"):
        MethodName(*name.split("@"))
    assert parse_method_name(name) is None


def test_deep_suite_refuses_auto():
    from skbandit.benchmarks import BenchmarkInputError
    from skbandit.benchmarks.deep.suite import resolve_deep_methods

    with pytest.raises(BenchmarkInputError, match="fixed ratios"):
        resolve_deep_methods(["ucb1@auto"])
