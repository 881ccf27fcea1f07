"""The deep suite: image, text and reasoning tasks, through the same store.

Each configuration is ``(task, method, 0, seed)``: a fixed seeded train/test
split per task (see :mod:`.tasks`), the task's network trained once (cached)
and pruned by every method at the ratio in its name, then fine-tuned. Results
go to the same SQLite store, workers and statistics as
:func:`~skbandit.benchmarks.run_benchmark` (suite ``"deep"``).
"""

import fnmatch
import functools

from ..._options import DEFAULTS
from .._errors import BenchmarkInputError, MissingDependencyError
from .._execution import check_run_options, evaluate_config, run_suite
from .._methods import DEFAULT_RATIOS
from .._names import AUTO, format_ratio, parse_method_name
from .configuration import DEEP_METHODS, run_deep_config
from .tasks import deep_protocol, get_deep_task, list_deep_tasks

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
    """``"none"`` and ``"<method>@<ratio>"`` for every deep method and ratio.

    Parameters
    ----------
    ratios : sequence of float, default=(0.5,)
        Prune ratios of the pruning methods.

    Examples
    --------
    >>> list_deep_methods(ratios=(0.25, 0.5))[:3]
    ['none', 'epsilon_greedy@0.25', 'softmax@0.25']
    """
    return ["none"] + [
        f"{m}@{format_ratio(r)}" for r in ratios for m in DEEP_METHODS if m != "none"
    ]


def resolve_deep_tasks(tasks=None, quick=False):
    """Validated deep task names (default: every installed one, or the quick set).

    Parameters
    ----------
    tasks : sequence of str, default=None
        Task names (duplicates dropped); None: every installed task, or the
        installed ones of :data:`QUICK_DEEP` with ``quick``.
    quick : bool, default=False
        Default to the quick tasks when ``tasks`` is None.

    Raises
    ------
    BenchmarkInputError
        For an unknown task name.
    MissingDependencyError
        For a task whose packages are not installed.
    """
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
            raise MissingDependencyError(
                f"deep task {name!r} needs the packages {list(spec.requires)}: "
                "pip install 'skbandit[deep]'"
            )
    return names


def resolve_deep_methods(methods=None, quick=False, ratios=DEFAULT_RATIOS):
    """Deep method names from exact names or globs (``"ucb1@*"``).

    Parameters
    ----------
    methods : sequence of str, default=None
        Names or globs matched against :func:`list_deep_methods` of
        ``ratios``; an explicit ``"<method>@<ratio>"`` at another ratio is
        accepted too. None: every method, or those of :data:`QUICK_DEEP` with
        ``quick``.
    quick : bool, default=False
        Default to the quick methods when ``methods`` is None.
    ratios : sequence of float, default=(0.5,)
        Prune ratios that the globs expand to.
    """
    if methods is None:
        methods = QUICK_DEEP["methods"] if quick else ("*",)
    known = list_deep_methods(ratios)
    chosen = []
    for pattern in methods:
        matches = [m for m in known if fnmatch.fnmatchcase(m, pattern)]
        explicit = parse_method_name(pattern)
        if explicit is not None and explicit.prune_ratio == AUTO:
            raise BenchmarkInputError(
                f"{pattern!r}: the deep suite prunes at fixed ratios; "
                f"'@{AUTO}' (the estimators' prune_ratio='auto') is for the "
                "tabular and regression suites"
            )
        if not matches and explicit is not None and explicit.policy in DEEP_METHODS:
            matches = [pattern]  # "<method>@<ratio>..." at a ratio not in ratios
        if not matches:
            raise BenchmarkInputError(
                f"unknown deep method {pattern!r}; methods: {', '.join(known)}"
            )
        chosen += [m for m in matches if m not in chosen]
    return chosen


def _evaluate_deep(key, fit_threads, cache, options):
    """Run one deep configuration ``(task, method, 0, seed)`` in a worker."""
    task, method, _, seed = key
    run = functools.partial(run_deep_config, task, method, seed, cache=cache, **options)
    return evaluate_config(key, run, fit_threads)


def run_deep_benchmark(
    tasks=None,
    methods=None,
    seeds=(0,),
    db=None,
    n_jobs=1,
    quick=False,
    progress=True,
    ratios=DEFAULT_RATIOS,
    budget=DEFAULTS.budget,
    on_error="record",
    fit_threads=1,
    cache=None,
    backend=None,
    scheduler=None,
):
    """Run (or resume) the deep suite: task x method x seed, fixed splits.

    Stored under suite ``"deep"`` with ``fold = 0``, through the same store,
    workers and statistics as :func:`run_benchmark`.

    Parameters
    ----------
    tasks : sequence of str, default=None
        Task names; default every installed task (the quick set with
        ``quick``), see :func:`resolve_deep_tasks`.
    methods : sequence of str, default=None
        Method names or globs (``"ucb1@*"``); default every method (the quick
        set with ``quick``), see :func:`resolve_deep_methods`.
    seeds : sequence of int, default=(0,)
        Each seed seeds the training, pruning and fine-tuning (the split is
        fixed); integers in [0, 2**32 - 1].
    db : str or path-like, default=None
        SQLite results file; default :func:`default_paths` of ``"deep"``.
    n_jobs : int, default=1
        joblib workers (-1: all cores), each running whole configurations,
        at most the CPUs this process may use; with ``backend="dask"``, as in
        :func:`run_benchmark`.
    quick : bool, default=False
        Defaults of :data:`QUICK_DEEP` for ``tasks`` and ``methods``.
    progress : bool, default=True
        Show a tqdm progress bar (on stderr).
    ratios : sequence of float, default=(0.5,)
        Prune ratios that method globs expand to.
    budget : float, default=10
        Average bandit pulls per unit (recorded in the store's protocol).
    on_error : {"record", "raise"}, default="record"
        "record": a configuration that raises is stored in the ``failures``
        table and the run goes on; "raise": stop with a RuntimeError.
    fit_threads : int or None, default=1
        Threads of BLAS, OpenMP and torch inside each configuration (restored
        after); None leaves the libraries' defaults.
    cache : str or None, default=None
        Cache folder of trained networks (tensors only, never unpickled):
        every method of one task and seed prunes the same trained network
        (training time 0 on a cache hit).
    backend : {None, "dask"}, default=None
        None: joblib's local process pool; ``"dask"``: a Dask cluster, as in
        :func:`run_benchmark`.
    scheduler : str, default=None
        Address of a running Dask scheduler; implies ``backend="dask"``.

    Returns
    -------
    RunSummary

    Examples
    --------
    Two quick tasks, the magnitude baseline and UCB1, one seed (trains the
    networks: minutes on a CPU):

    >>> summary = run_deep_benchmark(  # doctest: +SKIP
    ...     tasks=["parity-mlp", "digits-cnn"],
    ...     methods=["none", "magnitude@0.5", "ucb1@0.5"],
    ...     db="bench_out/deep-demo.sqlite",
    ...     cache="bench_out/cache",
    ... )
    >>> print(summary.line())  # doctest: +SKIP
    """
    from joblib import delayed

    seeds, n_jobs, backend = check_run_options(
        on_error, seeds, n_jobs, backend, scheduler
    )
    tasks = resolve_deep_tasks(tasks, quick)
    methods = resolve_deep_methods(methods, quick, ratios)
    protocol = deep_protocol(budget=budget)
    protocol.pop("prune_ratio")  # in the method names
    options = {"budget": budget}
    # Task-major, methods innermost: a task's network is trained (and
    # cached) by its first configuration, then shared.
    grid = [(t, m, 0, s) for t in tasks for s in seeds for m in methods]
    return run_suite(
        "deep",
        grid,
        lambda todo: (
            delayed(_evaluate_deep)(key, fit_threads, cache, options) for key in todo
        ),
        db=db,
        quick=quick,
        protocol=protocol,
        n_jobs=n_jobs,
        backend=backend,
        scheduler=scheduler,
        progress=progress,
        on_error=on_error,
    )
