"""The ``skbandit`` command line: ``skbandit bench tabular|regression|deep|lm|perf``.

Argument parsing only: the work is done by :mod:`skbandit.benchmarks`,
through its public names. User errors (unknown dataset or method, seeds out
of range, more folds than a dataset allows, unusable results file or output
folder) print one line on stderr and exit with status 2, like argparse's own
usage errors; they are found before the first fit. Any other exception is a
bug and keeps its traceback. SIGTERM and Ctrl-C stop the worker processes too,
and exit with 128 + the signal's number (143, 130).
"""

import argparse
import contextlib
import os
import shlex
import signal
import sys
import tempfile
import threading

__all__ = ["main", "build_parser"]

SUITES = ("tabular", "regression", "deep", "lm", "perf")

# Exit status of a user error (argparse uses 2 for usage errors too) and of a
# run in which some configurations failed.
EXIT_USAGE = 2
EXIT_FAILED_CONFIGS = 1

#: The option of each run argument that a benchmark's input error can name.
_OPTIONS = {"n_folds": "--folds", "seeds": "--seeds", "max_samples": "--max-samples"}


def _names(text):
    """Comma-separated names; empty items dropped."""
    names = [item.strip() for item in text.split(",") if item.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return names


def _numbers(kind):
    def parse(text):
        try:
            return [kind(item) for item in _names(text)]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__}s, got {text!r}"
            ) from None

    parse.__name__ = f"{kind.__name__} list"
    return parse


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _n_jobs(text):
    """joblib's ``n_jobs``: a nonzero integer (-1 = all cores)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"expected a nonzero integer (-1 = all cores), got {text!r}"
        )
    return value


#: What each suite runs: a short help and a description.
_SUITE_HELP = {
    "tabular": "classification accuracy on the offline tabular datasets",
    "regression": "regression R^2 on the offline regression datasets",
    "deep": "image, text and reasoning tasks on fixed train/test splits",
    "lm": "decoder language models: heads and MLP channels pruned, validation "
    "perplexity",
    "perf": "speed ratios of the pruning backend",
}

_SUITE_DESCRIPTIONS = {
    "tabular": """\
Classification accuracy on the offline tabular datasets: dataset x method x
fold x seed (stratified cross-validation), every result stored in an SQLite
file, then report.md and figures.""",
    "regression": """\
Regression R^2 on the offline regression datasets: dataset x method x fold x
seed (cross-validation), every result stored in an SQLite file, then
report.md and figures.""",
    "deep": """\
The image, text and reasoning tasks on fixed train/test splits: task x
method x seed, every result stored in an SQLite file, then report.md and
figures.""",
    "lm": """\
Small decoder language models (Llama-style and GPT-2-style, 3 layers) trained
on BBC News characters (offline): their attention heads and MLP channels
pruned at 20/35/50 % by our default (obs + lstsq refit), UCB1, FLAP-style
fluctuation with bias compensation, magnitude, random, Torch-Pruning's
criteria and OWL layer allocation; validation perplexity right after
pruning and after a short fine-tune, and seconds. model x method x seed,
stored in an SQLite file, then report.md and the summary line at 35 %.""",
    "perf": """\
Speed ratios of the pruning backend, one line each: batched vs naive pulls,
pruned vs unpruned latency, our fit vs scikit-learn's.""",
}

_SUITE_EPILOGS = {
    "tabular": """\
examples:
  skbandit bench tabular --quick
  skbandit bench tabular --datasets iris,wine --methods 'ucb1@*,none,sk_*'
  skbandit bench tabular --ratios 0.3,0.5,0.7 --folds 5 --seeds 0,1
  skbandit bench tabular --backend dask --n-jobs 4
  skbandit bench tabular --scheduler tcp://10.0.0.5:8786
  skbandit bench tabular --list
""",
    "regression": """\
examples:
  skbandit bench regression --quick
  skbandit bench regression --n-jobs 2 --seeds 0,1,2
  skbandit bench regression --list
""",
    "deep": """\
examples:
  skbandit bench deep --quick
  skbandit bench deep --datasets <task>,<task> --methods 'ucb1@*,none'
  skbandit bench deep --list
""",
    "lm": """\
examples:
  skbandit bench lm --quick
  skbandit bench lm --datasets bbc-llama --methods 'obs@*,fluct@*,none'
  skbandit bench lm --ratios 0.35 --seeds 0,1
  skbandit bench lm --list
""",
    "perf": """\
examples:
  skbandit bench perf
  skbandit bench perf --n-jobs 4
""",
}

_RESUME = """
Re-running the same command resumes: configurations already in --db are
skipped, and the report is rewritten from everything stored.
"""


def build_parser():
    """The argparse parser of the ``skbandit`` command."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="skbandit",
        description="Bandit neuron pruning for scikit-learn: benchmarks.",
    )
    parser.add_argument(
        "--version", action="version", version=f"skbandit {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    bench = commands.add_parser(
        "bench",
        help="run a benchmark suite and report it",
        description="Run a benchmark suite and report it; "
        "'skbandit bench SUITE --help' describes one suite.",
    )
    suites = bench.add_subparsers(dest="suite", metavar="SUITE")
    suites.required = True
    for suite in SUITES:
        sub = suites.add_parser(
            suite,
            help=_SUITE_HELP[suite],
            description=_SUITE_DESCRIPTIONS[suite],
            epilog=_SUITE_EPILOGS[suite] + ("" if suite == "perf" else _RESUME),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if suite == "perf":
            sub.add_argument(
                "--n-jobs", type=int, default=1, help="torch threads (default: 1)"
            )
        else:
            _add_run_arguments(sub, deep=suite in ("deep", "lm"))
    return parser


def _add_run_arguments(parser, deep):
    """Options of a suite that runs configurations into a results store."""
    what = "task" if deep else "dataset"
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a few small {what}s, the headline methods (minutes); stored "
        "apart from full runs (bench_out/<suite>-quick*)",
    )
    parser.add_argument(
        "--datasets", type=_names, help=f"comma-separated {what} names (default: all)"
    )
    parser.add_argument(
        "--methods",
        type=_names,
        help="comma-separated method names or globs, e.g. 'ucb1@*,none,sk_*' "
        "(default: all; see --list)",
    )
    parser.add_argument(
        "--ratios",
        type=_numbers(float),
        default=None,
        help="comma-separated prune ratios of our methods (default: 0.5)",
    )
    # The deep suite's splits are fixed: it accepts --folds and --max-samples
    # only to say so (see _run_deep), and does not list them.
    parser.add_argument(
        "--folds",
        type=_positive_int,
        help=argparse.SUPPRESS if deep else "CV folds (default: 5; 3 with --quick)",
    )
    parser.add_argument(
        "--seeds",
        type=_numbers(int),
        default=None,
        help="comma-separated seeds (default: 0)",
    )
    parser.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=1,
        help="parallel joblib workers, -1 = all cores (--backend dask without "
        "--scheduler: local Dask worker processes)",
    )
    parser.add_argument(
        "--db", help="SQLite results file (default: bench_out/<suite>.sqlite)"
    )
    parser.add_argument("--out", help="report folder (default: bench_out/<suite>/)")
    parser.add_argument(
        "--max-samples",
        type=_positive_int,
        help=argparse.SUPPRESS if deep else "cap every dataset at this many rows",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar on stderr"
    )
    parser.add_argument(
        "--cache",
        help="folder caching trained networks shared by methods that differ "
        "only in pruning (default: <db>.cache; 'none' disables it)",
    )
    parser.add_argument(
        "--backend",
        choices=("dask",),
        help="run the configurations on a Dask cluster: the one at --scheduler, "
        "or a local one with --n-jobs worker processes; the results file is "
        "written by this process only (pip install 'skbandit[dask]')",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler, e.g. tcp://host:8786 "
        "(implies --backend dask; workers need skbandit installed)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help=f"list the {what}s and methods, then exit",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rewrite report.md, figures and results.csv in --out "
        "from what --db holds (the report quotes the command without this flag)",
    )


class UserError(Exception):
    """A problem with the command's input, reported without a traceback."""


def _writable_folder(path, what):
    """Check that folder ``path`` exists or can be created, and is writable.

    By trying: create the missing folders and a file in ``path`` (permission
    bits do not tell, e.g. for root in /proc or on a read-only mount). All
    of that is removed again: a run that stops at a later input error leaves
    no trace.
    """
    missing, existing = [], os.path.abspath(path)
    while not os.path.exists(existing):
        missing.append(existing)
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"{what} {path!r} cannot be created: {existing!r} is a file")
    created = []
    try:
        for folder in reversed(missing):
            os.mkdir(folder)
            created.append(folder)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        verb = "created" if len(created) < len(missing) else "written"
        reason = exc.strerror or exc
        raise UserError(f"{what} {path!r} cannot be {verb}: {reason}") from None
    finally:
        for folder in reversed(created):
            # Something else may have written there meanwhile: then it stays.
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def _check_paths(db, out, cache):
    """Fail before the first fit when results, report or cache cannot be written."""
    if os.path.isdir(db):
        raise UserError(f"--db {db!r} is a directory, not a results file")
    _writable_folder(os.path.dirname(os.path.abspath(db)), "the folder of --db")
    if os.path.exists(db) and not os.access(db, os.R_OK | os.W_OK):
        raise UserError(f"--db {db!r} cannot be read and written")
    if os.path.isfile(out):
        raise UserError(f"--out {out!r} is a file, not a folder")
    _writable_folder(out, "--out")
    if cache is not None:
        _writable_folder(cache, "--cache")


def _cache(args, db):
    return None if args.cache == "none" else (args.cache or f"{db}.cache")


def _paths(args, suite):
    """``(db, out)``: the options, or the suite's default paths."""
    from .benchmarks import default_paths

    db_default, out_default = default_paths(suite, args.quick)
    return args.db or db_default, args.out or out_default


def _checked_paths(args, suite):
    """:func:`_paths`, checked writable before the first fit."""
    db, out = _paths(args, suite)
    _check_paths(db, out, _cache(args, db))
    return db, out


def _print_list(args):
    from .benchmarks import (
        DEFAULT_RATIOS,
        SUITES,
        get_spec,
        list_datasets,
        list_methods,
    )

    task = SUITES[args.suite]
    print(f"datasets ({task}):")
    for name in list_datasets(task):
        spec = get_spec(name)
        note = "" if spec.available else "  [needs: " + ", ".join(spec.requires) + "]"
        print(f"  {name}{note}")
    print("methods:")
    for name in list_methods(task, args.ratios or DEFAULT_RATIOS):
        print(f"  {name}")


def _run_suite(args, argv):
    from .benchmarks import DEFAULT_RATIOS, run_benchmark

    db, out = _checked_paths(args, args.suite)
    summary = run_benchmark(
        args.suite,
        datasets=args.datasets,
        methods=args.methods,
        n_folds=args.folds,
        seeds=args.seeds or (0,),
        db=db,
        n_jobs=args.n_jobs,
        quick=args.quick,
        progress=not args.no_progress,
        max_samples=args.max_samples,
        ratios=args.ratios or DEFAULT_RATIOS,
        cache=_cache(args, db),
        backend=args.backend,
        scheduler=args.scheduler,
    )
    return _finish(summary, db, out, args, argv)


def _finish(summary, db, out, args, argv):
    """Report failures, write the report, print the summary; the exit status."""
    from .benchmarks import write_report

    print(summary.line(), file=sys.stderr)
    for key, error in summary.failures[:5]:
        last = error.strip().splitlines()[-1] if error.strip() else "?"
        print(f"failed: {key}: {last}", file=sys.stderr)
    if summary.n_failed > 5:
        print(
            f"... and {summary.n_failed - 5} more (table 'failures' in {db})",
            file=sys.stderr,
        )
    command = "skbandit " + " ".join(shlex.quote(a) for a in argv)
    report = write_report(db, args.suite, out, command=command)
    print(report.terminal)
    print(f"\nreport: {out}/report.md", file=sys.stderr)
    return EXIT_FAILED_CONFIGS if summary.n_failed else 0


def _run_deep(args, argv):
    from .benchmarks import DEFAULT_RATIOS, run_deep_benchmark

    if args.folds is not None or args.max_samples is not None:
        raise UserError(
            "the deep suite uses fixed train/test splits: --folds and "
            "--max-samples do not apply"
        )
    db, out = _checked_paths(args, "deep")
    summary = run_deep_benchmark(
        tasks=args.datasets,
        methods=args.methods,
        seeds=args.seeds or (0,),
        db=db,
        n_jobs=args.n_jobs,
        quick=args.quick,
        progress=not args.no_progress,
        ratios=args.ratios or DEFAULT_RATIOS,
        cache=_cache(args, db),
        backend=args.backend,
        scheduler=args.scheduler,
    )
    return _finish(summary, db, out, args, argv)


def _print_deep_list(args):
    from .benchmarks import DEEP_TASKS, DEFAULT_RATIOS, list_deep_methods

    print("tasks:")
    for name, spec in DEEP_TASKS.items():
        note = "" if spec.available else "  [needs: " + ", ".join(spec.requires) + "]"
        print(f"  {name} ({spec.domain}){note}")
    print("methods:")
    for name in list_deep_methods(args.ratios or DEFAULT_RATIOS):
        print(f"  {name}")


def _run_lm(args, argv):
    from .benchmarks import lm_summary, run_lm_benchmark, write_lm_report

    if args.folds is not None or args.max_samples is not None:
        raise UserError(
            "the lm suite uses a fixed train/validation split: --folds and "
            "--max-samples do not apply"
        )
    if args.backend is not None or args.scheduler is not None:
        raise UserError("the lm suite runs locally: --backend/--scheduler do not apply")
    db, out = _checked_paths(args, "lm")
    summary = run_lm_benchmark(
        datasets=args.datasets,
        methods=args.methods,
        seeds=args.seeds or (0,),
        db=db,
        n_jobs=args.n_jobs,
        quick=args.quick,
        progress=not args.no_progress,
        ratios=args.ratios,
        cache=_cache(args, db),
    )
    print(summary.line(), file=sys.stderr)
    for key, error in summary.failures[:5]:
        last = error.strip().splitlines()[-1] if error.strip() else "?"
        print(f"failed: {key}: {last}", file=sys.stderr)
    command = "skbandit " + " ".join(shlex.quote(a) for a in argv)
    write_lm_report(db, out, command=command)
    for line in lm_summary(db):
        print(line)
    print(f"\nreport: {out}/report.md", file=sys.stderr)
    return EXIT_FAILED_CONFIGS if summary.n_failed else 0


def _print_lm_list(args):
    from .benchmarks import LM_SETTINGS, QUICK_LM, list_lm_methods

    settings = QUICK_LM["settings"] if args.quick else LM_SETTINGS
    print("models:")
    for name, setting in settings.items():
        print(
            f"  {name} ({setting.style}, {setting.n_layers} layers, d_model "
            f"{setting.d_model}, {setting.n_heads} heads, {setting.d_ff} MLP "
            "channels)"
        )
    print("methods:")
    ratios = args.ratios or (QUICK_LM["ratios"] if args.quick else None)
    for name in list_lm_methods(*([ratios] if ratios else [])):
        print(f"  {name}")


def _run_perf(args):
    import torch

    from .benchmarks import MEASUREMENTS

    threads = max(1, args.n_jobs)
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} thread(s)")
    measurements = []
    for measure in MEASUREMENTS:
        measurement = measure()
        measurements.append(measurement)
        print(measurement.line(), flush=True)
    met = sum(m.ok for m in measurements if m.target is not None)
    targets = sum(m.target is not None for m in measurements)
    print(f"perf: {met}/{targets} targets met")
    return 0


def _dispatch(args, argv):
    if args.suite == "perf":
        return _run_perf(args)
    if args.list:
        lists = {"deep": _print_deep_list, "lm": _print_lm_list}
        lists.get(args.suite, _print_list)(args)
        return 0
    if args.report_only:
        return _report_only(args, argv)
    if args.suite == "deep":
        return _run_deep(args, argv)
    if args.suite == "lm":
        return _run_lm(args, argv)
    return _run_suite(args, argv)


def _report_only(args, argv):
    """Rewrite the report of a stored run, running nothing."""
    from .benchmarks import write_report

    db, out = _paths(args, args.suite)
    if not os.path.isfile(db):
        raise UserError(f"--report-only: no results file {db!r}")
    _check_paths(db, out, None)
    run = [a for a in argv if a != "--report-only"]
    command = "skbandit " + " ".join(shlex.quote(a) for a in run)
    if args.suite == "lm":  # its own report: perplexities, not ranks
        from .benchmarks import lm_summary, write_lm_report

        write_lm_report(db, out, command=command)
        for line in lm_summary(db):
            print(line)
    else:
        print(write_report(db, args.suite, out, command=command).terminal)
    print(f"\nreport: {out}/report.md", file=sys.stderr)
    return 0


def _user_errors():
    """Exception types that mean a wrong input rather than a bug."""
    from .benchmarks import (
        BenchmarkInputError,
        MissingDependencyError,
        SchedulerError,
        StoreError,
    )

    return (
        UserError,
        BenchmarkInputError,
        MissingDependencyError,
        StoreError,
        SchedulerError,
    )


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs on the way out.

    A BaseException, like KeyboardInterrupt: no ``except Exception`` (a fit
    recorded as failed) may swallow it.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise _Terminated(signum)


@contextlib.contextmanager
def _sigterm_raises():
    """Turn SIGTERM into :class:`_Terminated` in the block (main thread only:
    elsewhere Python cannot set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_workers():
    """Kill the joblib (loky) worker processes of this process, if any.

    Left alone, they finish the fits they hold and notice the parent's
    death only then: minutes of CPU after the command was stopped.
    """
    reusable = sys.modules.get("joblib.externals.loky.reusable_executor")
    # The executor itself, not get_reusable_executor(): that would start one
    # (and its resource tracker) where none runs.
    executor = getattr(reusable, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


def main(argv=None):
    """Entry point of the ``skbandit`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 1 when some configurations failed (they
        are listed and will be retried by the next run), 2 for a user error,
        128 + the signal's number when stopped by SIGTERM (143) or Ctrl-C
        (130), after stopping the worker processes.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        with _sigterm_raises():
            return _dispatch(args, argv)
    except _user_errors() as exc:
        option = _OPTIONS.get(getattr(exc, "parameter", None))
        where = f"argument {option}: " if option else ""
        print(f"skbandit: error: {where}{exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, _Terminated) as exc:
        _stop_workers()
        signum = getattr(exc, "signum", signal.SIGINT)
        what = "interrupted" if signum == signal.SIGINT else "terminated"
        print(f"skbandit: {what}; re-run the same command to resume", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
