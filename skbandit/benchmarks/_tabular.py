"""The cross-validated tabular suites: dataset x method x fold x seed, resumable.

Every configuration ``(dataset, method, fold, seed)`` fits one pipeline on
the training part of a cross-validation fold and scores it on the test part
(accuracy for classification, R² for regression). Folds come from
``StratifiedKFold`` (classification) or ``KFold`` (regression) with
``shuffle=True, random_state=seed``, so they are the same for every method
and every re-run; the estimator gets the same ``random_state=seed``.

Configurations run through joblib, locally (``n_jobs`` processes) or on a
Dask cluster (``backend="dask"``, ``scheduler="tcp://host:port"``; see
:func:`run_benchmark`); results stream back unordered and the driver writes
each one to the SQLite store (:mod:`._store`) as it arrives, in its own
transaction. Re-running the same call skips every stored configuration, so
an interrupted run resumes and loses only the fits in flight.
"""

import time
import traceback
import warnings

import numpy as np

from .._options import recorded_defaults
from ._datasets import get_spec, list_datasets, load_dataset
from ._errors import BenchmarkInputError, MissingDependencyError
from ._execution import (
    check_run_options,
    run_suite,
    thread_limit,
    versions,
    warning_lines,
)
from ._methods import DEFAULT_RATIOS, OURS_DEFAULTS, Method, select_methods

__all__ = [
    "SUITES",
    "METRICS",
    "QUICK",
    "run_benchmark",
    "resolve_datasets",
    "resolve_methods",
    "fold_indices",
]


# Benchmark suite -> learning task.
SUITES = {"tabular": "classification", "regression": "regression"}

# Task -> name of the score stored with every result (higher is better).
METRICS = {"classification": "accuracy", "regression": "r2"}

DEFAULT_N_FOLDS = 5

#: Recorded in every protocol: the training budget is the same for every
#: method, the unpruned network included (it trains its fine-tuning epochs
#: too), so that pruning is never credited with extra training.
FAIR_EPOCHS = "max_iter + fine_tune_epochs for every method"

# --quick: a few small datasets, 3 folds, the headline methods; a few minutes
# on 2 cores. Explicit arguments override each entry.
_QUICK_METHODS = (
    "none",
    "ucb1@*",
    "thompson@*",
    "obs@*",
    "magnitude@*",
    "random@*",
    "paper@*",
    "sk_linear",
    "sk_forest",
    "sk_mlp",
)
QUICK = {
    "tabular": {
        "datasets": ("iris", "wine", "breast_cancer", "digits", "Pima", "glass"),
        "methods": _QUICK_METHODS,
        "n_folds": 3,
    },
    "regression": {
        "datasets": ("diabetes", "Auto", "biomass", "concrete", "Carseats"),
        "methods": _QUICK_METHODS,
        "n_folds": 3,
    },
}


def _task_of(suite):
    try:
        return SUITES[suite]
    except KeyError:
        raise BenchmarkInputError(
            f"unknown suite {suite!r}; valid suites: {', '.join(SUITES)}"
        ) from None


def resolve_datasets(suite, datasets=None, quick=False):
    """Validated dataset names of a run.

    Parameters
    ----------
    suite : {"tabular", "regression"}
    datasets : sequence of str or None
        None: the quick set when ``quick``, else every dataset of the task;
        either way only those whose optional packages are installed.
    quick : bool, default=False

    Raises
    ------
    ValueError
        For an unknown name or a dataset of the other task.
    ImportError
        When a named dataset needs a package that is not installed.
    """
    task = _task_of(suite)
    if datasets is None:
        # Defaults leave out what is not installed; named datasets must exist.
        available = list_datasets(task, available_only=True)
        if not quick:
            return available
        return [name for name in QUICK[suite]["datasets"] if name in available]
    names = list(dict.fromkeys(datasets))
    for name in names:
        if name not in list_datasets():
            raise BenchmarkInputError(
                f"unknown dataset {name!r}; {suite} datasets: "
                f"{', '.join(list_datasets(task))}"
            )
        spec = get_spec(name)
        if spec.task != task:
            raise BenchmarkInputError(
                f"dataset {name!r} is a {spec.task} dataset; suite {suite!r} "
                f"runs {task} datasets: {', '.join(list_datasets(task))}"
            )
        if not spec.available:
            raise MissingDependencyError(
                f"dataset {name!r} needs the packages {list(spec.requires)}: "
                "pip install 'skbandit[bench]'"
            )
    return names


def resolve_methods(
    suite, methods=None, quick=False, ratios=DEFAULT_RATIOS, ours_params=None
):
    """Validated methods of a run, by name.

    Parameters
    ----------
    suite : {"tabular", "regression"}
    methods : sequence of (str or Method) or None
        Names or globs (see :func:`~._methods.select_methods`) and/or
        :class:`~._methods.Method` objects. None: the quick set when
        ``quick``, else every method.
    quick : bool, default=False
    ratios : sequence of float, default=(0.5,)
    ours_params : dict, optional
        Overrides of ``OURS_DEFAULTS``.

    Returns
    -------
    dict of str to Method
    """
    task = _task_of(suite)
    if methods is None and quick:
        methods = QUICK[suite]["methods"]
    if methods is None:
        return select_methods(task, None, ratios, ours_params)
    objects = {m.name: m for m in methods if isinstance(m, Method)}
    names = [m for m in methods if not isinstance(m, Method)]
    chosen = select_methods(task, names, ratios, ours_params) if names else {}
    return {**chosen, **objects}


def _check_buildable(methods, task):
    """Build every pipeline once, so a missing estimator fails before the run.

    Constructing our estimators also checks that they accept every parameter
    of ``OURS_DEFAULTS``.
    """
    for method in methods.values():
        try:
            method.make(task, random_state=0)
        except Exception as exc:
            raise BenchmarkInputError(
                f"method {method.name!r} cannot be built: {exc}"
            ) from exc


def _check_folds(datasets, task, n_folds, max_samples):
    """Every dataset splits into ``n_folds`` folds, checked before any fit.

    Stratified folds need a class with a row for each fold (scikit-learn's
    rule; smaller classes only miss some folds), plain folds a row for each.
    """
    for name in datasets:
        _, y = load_dataset(name, max_samples=max_samples)
        if task == "classification":
            limit = int(np.unique(y, return_counts=True)[1].max())
            what = "rows in its largest class, and stratified folds need one each"
        else:
            limit, what = len(y), "rows, and each fold needs one"
        if n_folds > limit:
            raise BenchmarkInputError(
                f"n_folds={n_folds} is more than dataset {name!r} allows: it has "
                f"{limit} {what}",
                parameter="n_folds",
            )


def fold_indices(task, y, n_folds, seed):
    """Deterministic ``[(train, test), ...]`` index pairs of one seed.

    Stratified for classification, plain for regression, shuffled with
    ``random_state=seed``.

    Examples
    --------
    >>> import numpy as np
    >>> folds = fold_indices("classification", np.array([0, 1] * 5), 2, seed=0)
    >>> [len(test) for _, test in folds]
    [5, 5]
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = StratifiedKFold if task == "classification" else KFold
    cv = splitter(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros((len(y), 1)), y))


# ----------------------------------------------------------------------------
# one configuration (runs in a joblib worker)


def _parameter_counts(estimator):
    """``(params_before, params_after, pruning summary)`` of a fitted estimator.

    Our estimators report them in ``pruning_``; scikit-learn's MLP counts its
    weights and biases (nothing removed); other peers have no such count.
    """
    pruning = getattr(estimator, "pruning_", None)
    if pruning is not None:
        summary = (
            pruning.summary() if callable(getattr(pruning, "summary", None)) else None
        )
        return pruning.params_before, pruning.params_after, summary
    coefs = getattr(estimator, "coefs_", None)
    if coefs is not None:
        n = sum(w.size for w in coefs) + sum(b.size for b in estimator.intercepts_)
        return n, n, None
    return None, None, None


def _score(task, y_true, y_pred):
    from sklearn.metrics import accuracy_score, r2_score

    scorer = accuracy_score if task == "classification" else r2_score
    return float(scorer(y_true, y_pred))


def _fit_and_score(method, task, X, y, train, test, seed, fit_threads, cache):
    """Fit ``method`` on ``train``, score on ``test``; the stored values."""
    pipeline = method.make(task, random_state=seed)
    if cache is not None and "memory" in pipeline[-1].get_params(deep=False):
        # Methods that differ only in pruning share one trained network per
        # fold and seed (the fairest comparison, and most of the run time).
        pipeline[-1].set_params(memory=cache)
    with thread_limit(fit_threads), warnings.catch_warnings(record=True) as caught:
        # Convergence and similar warnings go into the result, not the
        # terminal, where hundreds of them would bury the progress bar.
        warnings.simplefilter("always")
        start = time.perf_counter()
        pipeline.fit(X[train], y[train])
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        y_pred = pipeline.predict(X[test])
        predict_time = time.perf_counter() - start
    before, after, pruning = _parameter_counts(pipeline[-1])
    extra = {
        # Every parameter, defaults included: a later change of a default
        # stays visible in the stored results.
        "params": pipeline[-1].get_params(deep=False),
        "versions": versions(),
        "fit_threads": fit_threads,
    }
    if pruning is not None:
        extra["pruning"] = pruning
    fit_times = getattr(pipeline[-1], "fit_times_", None)
    if fit_times is not None:
        # Training, pruning and fine-tuning seconds apart: with a shared
        # cache, ``fit_time`` of a cache hit holds no training.
        extra["fit_times"] = dict(fit_times)
        extra["train_cache_hit"] = bool(pipeline[-1].train_cache_hit_)
    messages = warning_lines(caught)
    if messages:
        extra["warnings"] = messages
    return {
        "metric": METRICS[task],
        "score": _score(task, y[test], y_pred),
        "fit_time": fit_time,
        "predict_time": predict_time,
        "params_before": before,
        "params_after": after,
        "n_train": len(train),
        "n_test": len(test),
        "extra": extra,
    }


def _evaluate(key, method, task, X, y, train, test, fit_threads, cache):
    """Run one configuration; ``(key, values, None)`` or ``(key, None, error)``.

    Exceptions become a returned traceback so that one failing fit neither
    kills the pool nor loses the results of the others.
    """
    seed = key[3]
    try:
        values = _fit_and_score(
            method, task, X, y, train, test, seed, fit_threads, cache
        )
    except Exception:
        return key, None, traceback.format_exc()
    return key, values, None


# ----------------------------------------------------------------------------
# the grid


def _grid(datasets, methods, n_folds, seeds):
    """All keys, dataset-major, so that each dataset is loaded once."""
    return [
        (dataset, method, fold, seed)
        for dataset in datasets
        for seed in seeds
        for fold in range(n_folds)
        for method in methods
    ]


def _tasks(todo, methods, task, n_folds, max_samples, fit_threads, cache):
    """Lazily yield one joblib task per pending key, loading data on demand."""
    from joblib import delayed

    current, X, y, folds = None, None, None, {}
    for key in todo:
        dataset, method, fold, seed = key
        if dataset != current:
            frame, y = load_dataset(dataset, max_samples=max_samples)
            X = frame.to_numpy(dtype=np.float64)
            current, folds = dataset, {}
        if seed not in folds:
            folds[seed] = fold_indices(task, y, n_folds, seed)
        train, test = folds[seed][fold]
        yield delayed(_evaluate)(
            key, methods[method], task, X, y, train, test, fit_threads, cache
        )


def run_benchmark(
    suite,
    datasets=None,
    methods=None,
    n_folds=None,
    seeds=(0,),
    db=None,
    n_jobs=1,
    quick=False,
    progress=True,
    max_samples=None,
    ratios=DEFAULT_RATIOS,
    ours_params=None,
    on_error="record",
    fit_threads=1,
    cache=None,
    backend=None,
    scheduler=None,
):
    """Run (or resume) a benchmark grid and store every result.

    Parameters
    ----------
    suite : {"tabular", "regression"}
        Classification (accuracy) or regression (R²) datasets.
    datasets : sequence of str, optional
        Dataset names; default every installed dataset of the suite's task
        (the quick set with ``quick``).
    methods : sequence of (str or Method), optional
        Method names or globs (``"ucb1@*"``, ``"sk_*"``) or Method objects;
        default every method (the quick set with ``quick``).
    n_folds : int, optional
        Cross-validation folds; default 5 (3 with ``quick``). At most what
        every dataset allows (checked before any fit): the rows of its
        largest class (classification) or its rows (regression).
    seeds : sequence of int, default=(0,)
        Each seed shuffles the folds and seeds the estimators; integers in
        [0, 2**32 - 1].
    db : str or path-like, optional
        SQLite results file; default :func:`default_paths`.
    n_jobs : int, default=1
        joblib workers (-1: all cores), each running whole configurations;
        more than the CPUs this process may use are capped, with a warning.
        With ``backend="dask"`` and no ``scheduler``: the worker processes
        of the private ``LocalCluster`` (-1: one per core; with 1, joblib
        runs the configurations in this process). With a ``scheduler``:
        ignored, every worker thread of the cluster is used.
    quick : bool, default=False
        Defaults of :data:`QUICK` for anything not given.
    progress : bool, default=True
        Show a tqdm progress bar (on stderr).
    max_samples : int, optional
        Cap every dataset at this many rows (seeded, stratified subsample).
    ratios : sequence of float, default=(0.5,)
        Prune ratios of our methods.
    ours_params : dict, optional
        Overrides of ``OURS_DEFAULTS`` (recorded in the store's protocol).
    on_error : {"record", "raise"}, default="record"
        "record": a configuration that raises is stored in the ``failures``
        table and the run goes on; "raise": stop with a RuntimeError.
    fit_threads : int or None, default=1
        Threads of BLAS, OpenMP and torch inside each fit (restored after).
        One thread per fit keeps fit times comparable across methods and
        leaves the parallelism to ``n_jobs``; None leaves the libraries'
        defaults.
    cache : str or None, default=None
        Cache folder of our estimators' trained networks (their ``memory``
        parameter; tensors only, never unpickled): methods that differ only in
        pruning settings train once per fold and seed. It changes no result,
        so it is not part of the protocol; the stored ``fit_time`` of a
        cache hit is the pruning and fine-tuning time only.
    backend : {None, "dask"}, default=None
        None runs the configurations with joblib's local process pool
        (``n_jobs``). ``"dask"`` runs them on a Dask cluster through
        ``joblib.parallel_config(backend="dask")``: the cluster at
        ``scheduler``, or a private ``LocalCluster`` on the loopback
        interface (``n_jobs`` single-threaded worker processes). Needs
        ``pip install 'skbandit[dask]'``. The results are the same as a local
        run's: a configuration's folds and seeds do not depend on where it
        runs.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``;
        implies ``backend="dask"``. Its workers need skbandit installed, and
        ``cache`` (if given) must be a folder that every worker can write.

    Notes
    -----
    **One writer.** Workers never touch the results file: each configuration
    returns its values (or its traceback) to the driver, which writes them
    in one short transaction per result. A single writer means no SQLite
    lock contention or corruption from many processes on many machines (or
    on a network file system, where SQLite's locking is unreliable), no
    shared file system needed between driver and workers, and the same
    code path for local and Dask runs, so the kill-and-resume guarantee
    (every finished configuration stored exactly once, the file never
    corrupt) holds on a cluster too. The cost is one round trip per result,
    negligible next to a fit.

    Returns
    -------
    RunSummary

    Raises
    ------
    ValueError
        For an unknown suite, dataset or method, a method that cannot be
        built (e.g. our estimators not installed), a seed outside
        [0, 2**32 - 1] or more folds than a dataset allows.
    StoreError
        When ``db`` is unusable, or was started with another protocol
        (``ProtocolMismatch``).
    ImportError
        For ``backend="dask"`` without ``dask.distributed`` installed.
    SchedulerError
        When the Dask ``scheduler`` cannot be reached (before the results
        file is created).
    """
    task = _task_of(suite)
    seeds, n_jobs, backend = check_run_options(
        on_error, seeds, n_jobs, backend, scheduler
    )
    quick_defaults = QUICK[suite] if quick else {}
    n_folds = n_folds or quick_defaults.get("n_folds", DEFAULT_N_FOLDS)
    if int(n_folds) != n_folds or n_folds < 2:
        raise BenchmarkInputError(
            f"n_folds must be an int >= 2, got {n_folds!r}", parameter="n_folds"
        )
    if max_samples is not None and max_samples < 2 * n_folds:
        raise BenchmarkInputError(
            f"max_samples must be at least 2 * n_folds, got {max_samples!r}",
            parameter="max_samples",
        )
    datasets = resolve_datasets(suite, datasets, quick)
    methods = resolve_methods(suite, methods, quick, ratios, ours_params)
    _check_buildable(methods, task)
    _check_folds(datasets, task, n_folds, max_samples)  # loads them: last

    protocol = {
        "task": task,
        "metric": METRICS[task],
        "n_folds": int(n_folds),
        "cv": "StratifiedKFold" if task == "classification" else "KFold",
        "max_samples": max_samples,
        "ours": {**OURS_DEFAULTS, **(ours_params or {})},
        # What a method name without options means (``"ucb1@0.5"``): a
        # store made under other defaults is refused rather than mixed.
        "pruning_defaults": recorded_defaults(),
        "epochs_rule": FAIR_EPOCHS,
    }
    return run_suite(
        suite,
        _grid(datasets, methods, n_folds, seeds),
        lambda todo: _tasks(
            todo, methods, task, n_folds, max_samples, fit_threads, cache
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
