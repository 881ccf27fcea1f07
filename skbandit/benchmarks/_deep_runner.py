"""The deep suite: image, text and reasoning tasks, through the same store.

Each configuration is ``(task, method, 0, seed)``: a fixed seeded train/test
split per task (see :mod:`._deep`), the task's network trained once (cached)
and pruned by every method at the ratio in its name, then fine-tuned. Results
go to the same SQLite store, workers and statistics as
:func:`~skbandit.benchmarks.run_benchmark` (suite ``"deep"``).
"""

import contextlib
import fnmatch
import os
import traceback
import warnings

from ._methods import DEFAULT_RATIOS, _format_ratio
from ._runner import (
    RunSummary,
    _check_backend,
    _dask_backend,
    _run_pending,
    _thread_limit,
    _versions,
    default_paths,
)
from ._store import ResultStore

__all__ = [
    "QUICK_DEEP",
    "list_deep_methods",
    "resolve_deep_methods",
    "resolve_deep_tasks",
    "run_deep_benchmark",
]

#: --quick of the deep suite: five cheap tasks, the headline methods.
QUICK_DEEP = {
    "datasets": (
        "digits-cnn",
        "mnist1d-cnn",
        "rt-mlp",
        "parity-mlp",
        "modadd-transformer",
    ),
    "methods": (
        "none",
        "ucb1@*",
        "thompson@*",
        "magnitude@*",
        "activation@*",
        "random@*",
    ),
}


def list_deep_methods(ratios=DEFAULT_RATIOS):
    """``"none"`` and ``"<method>@<ratio>"`` for every deep method and ratio."""
    from ._deep import DEEP_METHODS

    return ["none"] + [
        f"{m}@{_format_ratio(r)}" for r in ratios for m in DEEP_METHODS if m != "none"
    ]


def resolve_deep_tasks(tasks=None, quick=False):
    """Validated deep task names (default: every installed one, or the quick set)."""
    from ._deep import get_deep_task, list_deep_tasks

    available = list_deep_tasks(available_only=True)
    if tasks is None:
        return (
            [t for t in QUICK_DEEP["datasets"] if t in available]
            if quick
            else available
        )
    names = list(dict.fromkeys(tasks))
    for name in names:
        spec = get_deep_task(name)  # ValueError for an unknown name
        if not spec.available:
            raise ImportError(
                f"deep task {name!r} needs the packages {list(spec.requires)}: "
                "pip install 'skbandit[deep]'"
            )
    return names


def resolve_deep_methods(methods=None, quick=False, ratios=DEFAULT_RATIOS):
    """Deep method names from exact names or globs (``"ucb1@*"``)."""
    if methods is None:
        methods = QUICK_DEEP["methods"] if quick else ("*",)
    known = list_deep_methods(ratios)
    chosen = []
    for pattern in methods:
        matches = [m for m in known if fnmatch.fnmatchcase(m, pattern)]
        if not matches and _explicit(pattern):
            matches = [pattern]  # "<method>@<ratio>" at a ratio not in ratios
        if not matches:
            raise ValueError(
                f"unknown deep method {pattern!r}; methods: {', '.join(known)}"
            )
        chosen += [m for m in matches if m not in chosen]
    return chosen


def _explicit(name):
    from ..pruning import COMPENSATIONS
    from ._deep import DEEP_METHODS

    method, _, ratio = name.partition("@")
    ratio, _, compensate = ratio.partition(":")
    if compensate and compensate not in COMPENSATIONS:
        return False
    try:
        ok = method in DEEP_METHODS and method != "none" and 0 <= float(ratio) < 1
    except ValueError:
        ok = False
    return ok


def _evaluate_deep(key, fit_threads, cache, options):
    """Run one deep configuration ``(task, method, 0, seed)`` in a worker."""
    task, method, _, seed = key
    try:
        # Import first: _thread_limit caps torch only once it is imported.
        from ._deep import run_deep_config

        with _thread_limit(fit_threads), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = run_deep_config(task, method, seed, cache=cache, **options)
    except Exception:
        return key, None, traceback.format_exc()
    values["extra"].update(versions=_versions(), fit_threads=fit_threads)
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    if messages:
        values["extra"]["warnings"] = [m[:300] for m in messages[:5]]
    return key, values, None


def run_deep_benchmark(
    tasks=None,
    methods=None,
    seeds=(0,),
    db=None,
    n_jobs=1,
    quick=False,
    progress=True,
    ratios=DEFAULT_RATIOS,
    budget=10,
    on_error="record",
    fit_threads=1,
    cache=None,
    backend=None,
    scheduler=None,
):
    """Run (or resume) the deep suite: task x method x seed, fixed splits.

    Stored under suite ``"deep"`` with ``fold = 0``, through the same store,
    workers and statistics as :func:`run_benchmark`. ``cache`` (a folder) lets
    every method of one task and seed prune the same trained network.
    """
    from joblib import delayed

    from ._deep import deep_protocol

    if on_error not in ("record", "raise"):
        raise ValueError(f"on_error must be 'record' or 'raise', got {on_error!r}")
    seeds = [int(s) for s in dict.fromkeys(seeds)]
    if not seeds:
        raise ValueError("seeds must not be empty")
    backend = _check_backend(backend, scheduler)
    tasks = resolve_deep_tasks(tasks, quick)
    methods = resolve_deep_methods(methods, quick, ratios)
    db = os.fspath(db) if db is not None else default_paths("deep", quick)[0]
    protocol = deep_protocol(budget=budget)
    protocol.pop("prune_ratio")  # in the method names
    options = {"budget": budget}
    with contextlib.ExitStack() as stack:
        if backend == "dask":
            n_workers = n_jobs if n_jobs and n_jobs > 0 else os.cpu_count()
            stack.enter_context(_dask_backend(scheduler, n_workers))
            n_jobs = -1
        store = stack.enter_context(ResultStore(db))
        store.check_protocol("deep", protocol)
        done = store.completed_keys("deep")
        # Task-major, methods innermost: a task's network is trained (and
        # cached) by its first configuration, then shared.
        grid = [(t, m, 0, s) for t in tasks for s in seeds for m in methods]
        todo = [key for key in grid if key not in done]
        jobs = (
            delayed(_evaluate_deep)(key, fit_threads, cache, options) for key in todo
        )
        failures = _run_pending(
            store, "deep", jobs, len(todo), n_jobs, progress, on_error
        )
    return RunSummary(
        suite="deep",
        db=db,
        n_configs=len(grid),
        n_skipped=len(grid) - len(todo),
        n_done=len(todo) - len(failures),
        failures=tuple(failures),
    )
