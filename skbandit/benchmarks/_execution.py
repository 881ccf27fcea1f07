"""Where benchmark configurations run, and what a run reports.

Shared by the tabular suites (:mod:`._tabular`) and the deep suite
(:mod:`.deep.suite`): the options they check alike, the run skeleton
(:func:`run_suite`: Dask or local joblib workers, the resumable store, the
driver as its one writer), a thread cap per fit, progress bars, and the
:class:`RunSummary` a run returns.
"""

import contextlib
import dataclasses
import functools
import importlib.metadata
import operator
import os
import platform
import sys
import warnings

from ._errors import BenchmarkInputError, MissingDependencyError
from ._store import ResultStore

__all__ = [
    "BACKENDS",
    "SEED_MAX",
    "RunSummary",
    "SchedulerError",
    "check_backend",
    "check_n_jobs",
    "check_run_options",
    "check_seeds",
    "dask_backend",
    "default_paths",
    "progress_bar",
    "run_pending",
    "run_suite",
    "thread_limit",
    "versions",
    "warning_lines",
]


#: Values of ``run_benchmark(backend=...)`` besides None (local joblib).
BACKENDS = ("dask",)


# Seconds to wait for a Dask scheduler given by address before giving up.
DASK_CONNECT_TIMEOUT = 30


#: Largest seed: scikit-learn's ``random_state`` seeds numpy's legacy
#: generator, which takes integers in [0, 2**32 - 1].
SEED_MAX = 2**32 - 1


def check_seeds(seeds):
    """The distinct seeds of a run, each an integer in [0, :data:`SEED_MAX`].

    Checked before any fit: a seed out of range failed in the folds' or the
    estimator's ``random_state`` only, once per configuration.

    Examples
    --------
    >>> check_seeds([0, 1, 0])
    [0, 1]
    >>> check_seeds([-1])
    Traceback (most recent call last):
    ...
    skbandit.benchmarks._errors.BenchmarkInputError: seeds must be integers in ...
    """
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise BenchmarkInputError("seeds must not be empty", parameter="seeds")
    for seed in seeds:
        try:
            valid = not isinstance(seed, bool) and 0 <= operator.index(seed) <= SEED_MAX
        except TypeError:
            valid = False
        if not valid:
            raise BenchmarkInputError(
                "seeds must be integers in [0, 2**32 - 1] (numpy's seed range), "
                f"got {seed!r}",
                parameter="seeds",
            )
    return [int(seed) for seed in seeds]


def check_n_jobs(n_jobs):
    """``n_jobs`` capped at the CPUs this process may use, with a warning.

    More worker processes than CPUs only compete for them, and each holds its
    own torch and data: ``n_jobs=100000`` kept starting workers until memory
    ran out. Negative values (-1: all CPUs) are joblib's own and kept.
    """
    import joblib

    cpus = joblib.cpu_count()
    if n_jobs is not None and n_jobs > cpus:
        warnings.warn(
            f"n_jobs={n_jobs} exceeds the {cpus} CPUs this process may use; "
            f"running {cpus} workers.",
            UserWarning,
            stacklevel=3,
        )
        return cpus
    return n_jobs


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What a call of :func:`run_benchmark` did.

    Attributes
    ----------
    suite : str
    db : str
        Path of the results store.
    n_configs : int
        Size of the requested grid.
    n_skipped : int
        Configurations already in the store (resumed over).
    n_done : int
        Configurations run and stored by this call.
    failures : tuple of (key, error)
        Configurations that raised in this call, ``key`` being
        ``(dataset, method, fold, seed)`` and ``error`` the traceback text.
        They are recorded in the store's ``failures`` table and retried by
        the next run.
    """

    suite: str
    db: str
    n_configs: int
    n_skipped: int
    n_done: int
    failures: tuple = ()

    @property
    def n_failed(self):
        return len(self.failures)

    def line(self):
        """One line for a terminal."""
        return (
            f"{self.suite}: {self.n_configs} configs, {self.n_skipped} already "
            f"stored, {self.n_done} run, {self.n_failed} failed -> {self.db}"
        )


def default_paths(suite, quick=False, root="bench_out"):
    """Default ``(db, out)`` of a suite: ``bench_out/<suite>.sqlite`` and folder.

    Quick runs use ``<suite>-quick`` so that their 3-fold results never mix
    with a full run's 5-fold ones.

    Parameters
    ----------
    suite : str
        Suite name, e.g. ``"tabular"``, ``"regression"`` or ``"deep"``.
    quick : bool, default=False
        The paths of a quick run.
    root : str, default="bench_out"
        Folder that holds every suite's results.

    Returns
    -------
    db : str
        Path of the SQLite results file.
    out : str
        Folder of the reports.

    Examples
    --------
    >>> default_paths("tabular")
    ('bench_out/tabular.sqlite', 'bench_out/tabular')
    >>> default_paths("regression", quick=True)
    ('bench_out/regression-quick.sqlite', 'bench_out/regression-quick')
    """
    stem = f"{suite}-quick" if quick else suite
    return f"{root}/{stem}.sqlite", f"{root}/{stem}"


@functools.lru_cache(maxsize=1)
def versions():
    """Versions of the packages that shape a result, as seen by this process."""
    found = {"python": platform.python_version()}
    for package in ("skbandit", "torch", "scikit-learn", "numpy", "skorch"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


@contextlib.contextmanager
def thread_limit(n_threads):
    """Cap BLAS, OpenMP and torch threads at ``n_threads`` (None: no cap).

    Why: on a few shared cores, OpenMP barriers of multi-threaded fits (e.g.
    HistGradientBoosting) can wait whole scheduler slices for a descheduled
    thread, turning a 0.05 s fit into minutes; joblib workers multiply the
    threads further. One thread per fit also makes the fit times of all
    methods comparable. torch's setting is process-wide, so it is restored.
    """
    if n_threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    # Only if the method imported torch already: a scikit-learn-only run
    # should not pay for importing it.
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n_threads):
        if torch is not None:
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)


class SchedulerError(ConnectionError):
    """The Dask scheduler of a run cannot be reached.

    Examples
    --------
    >>> issubclass(SchedulerError, ConnectionError)
    True
    """


def check_backend(backend, scheduler):
    """Validated ``backend`` (None or "dask"); a scheduler implies Dask.

    Raises before anything is created: ValueError for an unknown backend or
    a malformed scheduler address, ImportError when Dask is not installed.
    """
    if scheduler is not None:
        if backend not in (None, "dask"):
            raise BenchmarkInputError(
                f"a scheduler address needs backend='dask', got backend={backend!r}"
            )
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise BenchmarkInputError(
                "scheduler must be a Dask scheduler address such as "
                f"'tcp://host:8786', got {scheduler!r}"
            )
        backend = "dask"
    if backend is None:
        return None
    if backend not in BACKENDS:
        raise BenchmarkInputError(
            f"unknown backend {backend!r}; valid backends: None (local joblib), "
            f"{', '.join(map(repr, BACKENDS))}"
        )
    try:
        import dask.distributed  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "backend='dask' needs dask.distributed: pip install 'skbandit[dask]' "
            f"({exc})"
        ) from exc
    return backend


@contextlib.contextmanager
def dask_backend(scheduler, n_workers):
    """Client of ``scheduler`` (or of a new LocalCluster), as joblib's backend.

    Yields the ``distributed.Client``; inside the block every
    ``joblib.Parallel`` (the grid, and scikit-learn's own ``n_jobs``) runs on
    the cluster's workers. Closes what it created.
    """
    import joblib
    from dask.distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            # One single-threaded worker process per job, on the loopback
            # interface only, no dashboard: a private cluster for this run.
            # (The scheduler's health/metrics HTTP server still starts: on
            # a free loopback port, not on 8787, which may be taken.)
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = Client(scheduler, timeout=DASK_CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise SchedulerError(
                    f"cannot reach the Dask scheduler at {scheduler} within "
                    f"{DASK_CONNECT_TIMEOUT} s: {exc}"
                ) from exc
            stack.enter_context(client)
        client.run(_import_estimators)
        stack.enter_context(joblib.parallel_config(backend="dask", client=client))
        yield client


def _import_estimators():
    """Import torch and our estimators in a Dask worker, once, up front.

    skbandit imports torch lazily, and torch's import is not thread safe: a
    worker's task thread and its communication thread importing it at the
    same time can see a half-initialised module.
    """
    import skbandit.estimators  # noqa: F401


def progress_bar(total, suite, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc=suite, unit="fit", disable=not enabled)


def run_pending(store, suite, tasks, n_tasks, n_jobs, progress, on_error):
    """Run joblib ``tasks``; the driver stores each result as it arrives.

    Workers only compute; this process is the store's one writer (see
    :func:`run_benchmark`, Notes).
    """
    from joblib import Parallel

    if not n_tasks:
        return []
    failures = []
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    with progress_bar(n_tasks, suite, progress) as bar:
        for key, values, error in parallel(tasks):
            if error is None:
                store.add_result((suite, *key), values)
            else:
                store.add_failure((suite, *key), error)
                failures.append((key, error))
                if on_error == "raise":
                    raise RuntimeError(f"{suite} {key} failed:\n{error}")
            bar.update()
            bar.set_postfix_str(f"{key[0]} {key[1]}", refresh=False)
    return failures


def check_run_options(on_error, seeds, n_jobs, backend, scheduler):
    """The options every suite shares, checked: ``(seeds, n_jobs, backend)``.

    Raises :class:`BenchmarkInputError` for an ``on_error`` other than
    ``"record"`` or ``"raise"``, and as :func:`check_seeds`,
    :func:`check_n_jobs` and :func:`check_backend` do.
    """
    if on_error not in ("record", "raise"):
        raise BenchmarkInputError(
            f"on_error must be 'record' or 'raise', got {on_error!r}"
        )
    seeds = check_seeds(seeds)
    if scheduler is None:  # a scheduler's cluster has its own workers
        n_jobs = check_n_jobs(n_jobs)
    return seeds, n_jobs, check_backend(backend, scheduler)


def warning_lines(caught):
    """The distinct warnings a configuration raised, as its result stores them."""
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return [m[:300] for m in messages[:5]]


def evaluate_config(key, run, fit_threads):
    """Run one configuration in a worker: ``(key, values, None)``, or
    ``(key, None, traceback)`` if ``run()`` raised, so that one failing
    configuration neither kills the pool nor loses the others' results.

    ``run()`` returns the stored values; it runs on ``fit_threads`` threads
    with its warnings recorded into ``values["extra"]["warnings"]``, beside
    the versions and the thread count.
    """
    import traceback

    try:
        with thread_limit(fit_threads), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = run()
    except Exception:
        return key, None, traceback.format_exc()
    values["extra"].update(versions=versions(), fit_threads=fit_threads)
    messages = warning_lines(caught)
    if messages:
        values["extra"]["warnings"] = messages
    return key, values, None


def run_suite(
    suite,
    grid,
    make_jobs,
    *,
    db,
    quick,
    protocol,
    n_jobs,
    backend,
    scheduler,
    progress,
    on_error,
):
    """Run the configurations of ``grid`` that the store does not hold yet.

    The skeleton of every suite (``run_benchmark``, ``run_deep_benchmark``):
    connect to Dask (before the results file is created, so that an
    unreachable scheduler leaves nothing behind), open the store at ``db``
    (default :func:`default_paths` of ``suite``), refuse another
    ``protocol``, skip the stored keys and run the rest through
    :func:`run_pending`. ``make_jobs(todo)`` yields one joblib task per key
    of ``todo``, in order; its options are already checked
    (:func:`check_run_options`).

    Returns
    -------
    RunSummary
    """
    db = os.fspath(db) if db is not None else default_paths(suite, quick)[0]
    with contextlib.ExitStack() as stack:
        if backend == "dask":
            # Connect (or start the LocalCluster) before the results file is
            # created: an unreachable scheduler leaves nothing behind.
            n_workers = n_jobs if n_jobs and n_jobs > 0 else os.cpu_count()
            stack.enter_context(dask_backend(scheduler, n_workers))
            n_jobs = -1  # every worker thread of the cluster
        store = stack.enter_context(ResultStore(db))
        store.check_protocol(suite, protocol)
        done = store.completed_keys(suite)
        todo = [key for key in grid if key not in done]
        failures = run_pending(
            store, suite, make_jobs(todo), len(todo), n_jobs, progress, on_error
        )
    return RunSummary(
        suite=suite,
        db=db,
        n_configs=len(grid),
        n_skipped=len(grid) - len(todo),
        n_done=len(todo) - len(failures),
        failures=tuple(failures),
    )
