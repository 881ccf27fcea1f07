"""Adversarial inputs: every public entry point fed what a careless or hostile
user could feed it, each outcome classified against the correct behaviour.

Each case declares what the correct outcome is -- an error whose message
names the problem (a regex), a success whose result passes a check, or
either -- and is classified as exactly one of:

``clear``
    An error was expected and an exception of an accepted type
    (``ValueError``, ``TypeError``, ``MemoryError``, ... or exit status 2 for
    the CLI) was raised whose message matches the case's pattern.
``correct``
    Success was expected and the result passes the case's check (equals a
    clean run, predicts the right classes, no class dropped, ...).
``unclear``
    An error, but of the wrong type or with a message that does not name the
    problem (a CLI traceback, exit 1 for a usage error, exit 2 after a fit,
    an error where success was expected).
``silent``
    It returned without error, but the result is wrong or it should have
    raised.
``blowup``
    A case run in a child process hit its timeout or its memory limit
    (``resource.setrlimit(RLIMIT_AS)``) or died.
``exec``
    A marker file that only a crafted pickle's ``__reduce__`` writes
    appeared: something read from disk was unpickled.

What is covered: the estimators' ``fit``/``predict`` inputs and every
parameter, :func:`skbandit.pruning.prune`, the :mod:`skbandit.export`
loaders, the three caches (the estimators' ``memory=`` folder, ``skbandit
bench``'s ``<db>.cache`` and the deep suite's cache: poisoned with crafted
pickles, and one entry copied over another's), thread-parallel fits, the
``skbandit bench`` command line (run in a subprocess) and resource blowups
(run in a child process with a memory limit and a timeout).

Usage
-----
Run from the repository root::

    python benchmarks/adversarial.py             # every case (a few minutes)
    python benchmarks/adversarial.py --list      # case ids
    python benchmarks/adversarial.py --only 'cli|loader'   # regex on ids
    python benchmarks/adversarial.py --jobs 1    # one child process at a time

Child processes (the CLI runs and the cases that could blow up) run
``--jobs`` at a time (default 2) alongside the in-process cases; each has an
address-space limit of 3 GiB and a timeout, and is killed with its process
group when the timeout passes.

It prints one line per case (``case <id>: <class> <detail>``) and, last,
exactly::

    adversarial: tried=N clear=C correct=K unclear=U silent=S blowup=B exec=E

The exit status is 0 only when ``silent``, ``blowup`` and ``exec`` are all 0
(``unclear`` is reported but does not fail the run).
"""

import argparse
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import os
import pickle
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The checkout this script lives in, not whatever skbandit is installed.
sys.path.insert(0, REPO)

CLASSES = ("clear", "correct", "unclear", "silent", "blowup", "exec")
#: Exception types that count as a clear refusal of a bad input.
ERRORS = (ValueError, TypeError, MemoryError, OverflowError)
#: Child-process limits of the ``sub`` cases and of the CLI runs.
MEMORY_LIMIT = 3 * 2**30
SUB_TIMEOUT = 60
CLI_TIMEOUT = 60
RESULT_TAG = "ADVERSARIAL-RESULT "
#: What torch and numpy say when an allocation fails.
ALLOCATION = (
    r"can't allocate memory|out of memory|Unable to allocate|DefaultCPUAllocator"
)


# --------------------------------------------------------------------------
# Case machinery


@dataclasses.dataclass(frozen=True)
class Expect:
    """The correct outcome: an error matching ``error``, a success whose
    ``check(result)`` returns None (else what is wrong), or either."""

    error: str | None = None
    check: Callable | None = None
    types: tuple = ERRORS


@dataclasses.dataclass(frozen=True)
class Case:
    """``action(ctx)`` returns the result that ``expect`` judges.

    ``sub``: run in a child process with a memory limit and a timeout.
    ``pool``: the action waits on child processes (CLI runs): run it on the
    worker threads, alongside the in-process cases.
    """

    id: str
    action: Callable
    expect: Expect
    sub: bool = False
    pool: bool = False


@dataclasses.dataclass
class Ctx:
    """A case's private folder and the marker a crafted pickle would write."""

    tmp: str

    @property
    def marker(self):
        return os.path.join(self.tmp, "MARKER-pickle-executed")


@dataclasses.dataclass
class Result:
    id: str
    cls: str
    detail: str


class CliUsageError(Exception):
    """The CLI exited 2 with a one-line message (what a usage error should do)."""

    @property
    def summary(self):  # argparse prints its usage first: show the error line
        return str(self).strip().splitlines()[-1]


class CliFailure(Exception):
    """The CLI failed otherwise: a traceback, exit 1, or exit 2 after a fit."""


class Blowup(Exception):
    """An action's child process ran out of time or memory."""


def _short(text, n=110):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def classify(expect, exc=None, value=None):
    """``(class, detail)`` of a case that raised ``exc`` or returned ``value``."""
    if exc is not None:
        what = f"{type(exc).__name__}: {_short(getattr(exc, 'summary', exc))}"
        clear = isinstance(exc, expect.types) and expect.error is not None
        if clear and re.search(expect.error, str(exc), re.IGNORECASE | re.DOTALL):
            return "clear", what
        # An allocation that failed (under the child's memory limit) without
        # a message naming the problem is the memory blowup itself.
        if isinstance(exc, MemoryError) or re.search(ALLOCATION, str(exc)):
            return "blowup", "memory limit hit: " + what
        if expect.error is None:
            return "unclear", "expected success, got " + what
        if not isinstance(exc, expect.types):
            return "unclear", "wrong type " + what
        return "unclear", f"message does not match /{expect.error}/: " + what
    if expect.check is None:
        return "silent", f"no error (expected /{expect.error}/)"
    try:
        problem = expect.check(value)
    except Exception as err:  # the check itself failing means a broken result
        problem = f"check raised {type(err).__name__}: {_short(err)}"
    return ("correct", "ok") if problem is None else ("silent", problem)


def run_in_process(case, ctx):
    """Run ``case`` here; warnings are the estimators' business, not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = case.action(ctx)
        except Blowup as exc:
            return "blowup", str(exc)
        except Exception as exc:
            return classify(case.expect, exc=exc)
        return classify(case.expect, value=value)


def _limits(memory=MEMORY_LIMIT, extra_procs=None):
    """preexec_fn of a child: its own process group, an address-space cap and,
    optionally, a cap on processes so a worker explosion fails instead of
    exhausting the shared machine."""

    def apply():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if extra_procs is not None:
            limit = _user_processes() + extra_procs
            resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))

    return apply


def _user_processes():
    """Tasks (threads count for RLIMIT_NPROC) of this user right now."""
    uid, count = os.getuid(), 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{pid}/task"))
    return count


def run_child(argv, timeout, cwd=None, extra_procs=None):
    """``(returncode, stdout, stderr, seconds)``; None as returncode on timeout.

    The child gets its own process group, so a timeout kills it and whatever
    it spawned, and nothing else.
    """
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONWARNINGS="default")
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=cwd or REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limits(extra_procs=extra_procs),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    with contextlib.suppress(ProcessLookupError):  # stray grandchildren
        os.killpg(proc.pid, signal.SIGKILL)
    return code, out, err, time.perf_counter() - start


def run_sub(case, ctx):
    """Run ``case`` in a child process of this script, under the limits."""
    argv = [sys.executable, os.path.abspath(__file__), "--child", case.id]
    argv += ["--tmp", ctx.tmp]
    code, out, err, seconds = run_child(argv, SUB_TIMEOUT)
    if code is None:
        return "blowup", f"timeout after {SUB_TIMEOUT} s"
    for line in out.splitlines():
        if line.startswith(RESULT_TAG):
            cls, detail = json.loads(line[len(RESULT_TAG) :])
            return cls, f"{detail} ({seconds:.1f} s)"
    last = err.strip().splitlines()[-1] if err.strip() else f"exit {code}"
    return "blowup", f"child died (exit {code}, memory limit?): {_short(last)}"


def run_case(case, root):
    """The :class:`Result` of one case, run in its own folder under ``root``."""
    # A neutral folder name: messages quote paths, and a path holding the
    # case id would match the pattern the message must contain.
    ctx = Ctx(tempfile.mkdtemp(prefix="case-", dir=root))
    try:
        cls, detail = (run_sub if case.sub else run_in_process)(case, ctx)
    except Exception as exc:  # a bug of this script: still one line per case
        cls, detail = "unclear", f"harness error {type(exc).__name__}: {exc}"
    if os.path.exists(ctx.marker):
        cls, detail = "exec", "a crafted pickle ran (marker file written); " + detail
    shutil.rmtree(ctx.tmp, ignore_errors=True)
    return Result(case.id, cls, _short(detail, 160))


def summary_line(results):
    counts = {name: sum(r.cls == name for r in results) for name in CLASSES}
    return (
        "adversarial: tried={} clear={} correct={} unclear={} silent={} "
        "blowup={} exec={}".format(len(results), *(counts[name] for name in CLASSES))
    )


def run_cases(cases, root, jobs=1, emit=print):
    """Run ``cases`` (child-process ones ``jobs`` at a time, alongside the
    in-process ones), emit one line each in case order; the results."""
    results = []
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {
            c.id: pool.submit(run_case, c, root) for c in cases if c.sub or c.pool
        }
        for case in cases:
            future = futures.get(case.id)
            result = future.result() if future else run_case(case, root)
            emit(f"case {result.id}: {result.cls} {result.detail}")
            results.append(result)
    return results


# --------------------------------------------------------------------------
# Data and checks


class Exploit:
    """Unpickling it creates ``path``: proof that a file was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def crafted_pickle(ctx):
    return pickle.dumps(Exploit(ctx.marker))


@functools.cache
def iris():
    """30 iris rows, 10 per class (float64, int labels)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    rows = np.r_[0:10, 50:60, 100:110]
    return X[rows], y[rows]


@functools.cache
def regression():
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=30, n_features=4, noise=1.0, random_state=0)
    return X, y


BASE = {"hidden_layer_sizes": (6,), "max_iter": 5, "random_state": 0}


def make(kind, **params):
    from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor

    cls = BanditPrunedMLPClassifier if kind == "clf" else BanditPrunedMLPRegressor
    return cls(**{**BASE, **params})


@functools.cache
def fitted(kind):
    """One fitted estimator per kind, shared by the predict-time cases."""
    X, y = iris() if kind == "clf" else regression()
    return make(kind).fit(X, y)


def has_classes(expected):
    """Check: ``classes_`` are ``expected`` (none dropped) and predictions
    are among them with finite probabilities."""

    def check(est):
        X = est._adv_X
        X = X if hasattr(X, "shape") else np.asarray(X)
        if list(est.classes_) != list(expected):
            return f"classes_ {list(est.classes_)} != {list(expected)}"
        if not set(est.predict(X)) <= set(expected):
            return "predicts a class outside classes_"
        proba = est.predict_proba(X)
        if proba.shape != (X.shape[0], len(expected)) or not np.isfinite(proba).all():
            return f"predict_proba shape {proba.shape} or non-finite"
        return None

    return check


def predicts_finite(n_outputs=None):
    def check(est):
        pred = np.asarray(est.predict(est._adv_X))
        if not np.isfinite(pred).all():
            return "non-finite predictions"
        if n_outputs is not None and (pred.ndim != 2 or pred.shape[1] != n_outputs):
            return f"predictions of shape {pred.shape}, expected {n_outputs} outputs"
        return None

    return check


def equals_clean(kind, X, y, **params):
    """Check: predictions equal a clean fit's with the same settings."""

    def check(est):
        clean = make(kind, **params).fit(X, y)
        method = "predict_proba" if kind == "clf" else "predict"
        a, b = getattr(est, method)(X), getattr(clean, method)(X)
        return None if np.array_equal(a, b) else "differs from a clean fit"

    return check


def returns(check_value):
    """Check of a value (not an estimator) by a predicate."""

    def check(value):
        return None if check_value(value) else f"wrong result {_short(value, 60)}"

    return check


# --------------------------------------------------------------------------
# Estimator cases: fit inputs


def fit_action(kind, data, params=None, fit=None):
    """Action: fit ``make(kind, **params)`` on ``data()`` = (X, y[, fit kwargs])."""

    def action(ctx):
        X, y, *rest = data()
        kwargs = dict(rest[0]) if rest else {}
        kwargs.update(fit or {})
        est = make(kind, **(params or {})).fit(X, y, **kwargs)
        est._adv_X = X  # what the checks predict on
        return est

    return action


def _with(data, fx=None, fy=None, fw=None):
    """``data`` with X, y or the sample weights transformed."""

    def build():
        X, y = data()
        X, y = np.array(X, copy=True), np.array(y, copy=True)
        out = (fx(X) if fx else X, fy(y) if fy else y)
        return out + (({"sample_weight": fw(len(out[1]))},) if fw else ())

    return build


def _set(where, value):
    def f(a):
        a = a.astype(object) if isinstance(value, str) or value is None else a
        a = a.astype(float) if isinstance(value, float) and a.dtype.kind in "iu" else a
        a[where] = value
        return a

    return f


def _str_labels(y):
    return np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]


def _none_label(y):
    y = _str_labels(y)
    y[3] = None
    return y


def _nan_label(y):
    y = _str_labels(y)
    y[3] = float("nan")
    return y


def _multilabel_with_2(y):
    Y = np.eye(3, dtype=int)[y]
    Y[0, 0] = 2
    return Y


def _pandas(columns, dtype=None, fill=None):
    def f(X):
        import pandas as pd

        frame = pd.DataFrame(X, columns=columns)
        if dtype is not None:
            frame = frame.astype(dtype)
        if fill is not None:
            frame.iloc[0, 0] = pd.NA if fill == "<NA>" else fill
        return frame

    return f


def _sparse(X):
    import scipy.sparse

    return scipy.sparse.csr_matrix(X)


IRIS_CLASSES = [0, 1, 2]
OK3 = Expect(check=has_classes(IRIS_CLASSES))

FIT_CASES = [
    # id, kind, data transform (fx, fy, fw), params, expect
    ("X-nan", "clf", dict(fx=_set((0, 0), np.nan)), {}, Expect(r"NaN")),
    ("X-inf", "clf", dict(fx=_set((0, 0), np.inf)), {}, Expect(r"inf")),
    ("X-neg-inf", "reg", dict(fx=_set((1, 2), -np.inf)), {}, Expect(r"inf")),
    ("X-1d", "clf", dict(fx=lambda X: X[:, 0]), {}, Expect(r"2D|dimension|reshape")),
    ("X-3d", "clf", dict(fx=lambda X: X[:, :, None]), {}, Expect(r"dim|2D|3")),
    (
        "X-empty-rows",
        "clf",
        dict(fx=lambda X: X[:0], fy=lambda y: y[:0]),
        {},
        Expect(r"0 sample|empty"),
    ),
    (
        "X-no-features",
        "clf",
        dict(fx=lambda X: X[:, :0]),
        {},
        Expect(r"0 feature|feature"),
    ),
    (
        "X-strings",
        "clf",
        dict(fx=_set((0, 0), "abc")),
        {},
        Expect(r"string|float|convert"),
    ),
    ("X-complex", "clf", dict(fx=lambda X: X + 1j), {}, Expect(r"complex")),
    ("X-bool", "clf", dict(fx=lambda X: X > 3), {}, OK3),
    ("X-int", "clf", dict(fx=lambda X: (X * 10).astype(np.int64)), {}, OK3),
    ("X-float16", "clf", dict(fx=lambda X: X.astype(np.float16)), {}, OK3),
    ("X-float32", "clf", dict(fx=lambda X: X.astype(np.float32)), {}, OK3),
    ("X-list", "clf", dict(fx=lambda X: X.tolist()), {}, OK3),
    (
        "X-huge-1e300",
        "clf",
        dict(fx=lambda X: X * 1e300),
        {},
        Expect(
            r"too large|float32|overflow|inf|scale", check=has_classes(IRIS_CLASSES)
        ),
    ),
    (
        "X-huge-1e38",
        "reg",
        dict(fx=lambda X: X * 1e38),
        {},
        Expect(
            r"too large|float32|overflow|inf|scale|diverge", check=predicts_finite()
        ),
    ),
    ("X-constant", "clf", dict(fx=lambda X: X * 0 + 1), {}, OK3),
    (
        "X-sparse",
        "clf",
        dict(fx=_sparse),
        {},
        Expect(r"sparse", check=has_classes(IRIS_CLASSES)),
    ),
    (
        "X-pandas-dup-cols",
        "clf",
        dict(fx=_pandas(["a", "a", "b", "c"])),
        {},
        Expect(r"duplicate|unique|feature names", check=has_classes(IRIS_CLASSES)),
    ),
    (
        "X-pandas-mixed-col-types",
        "clf",
        dict(fx=_pandas(["a", 1, "b", 2])),
        {},
        Expect(r"feature names|string", check=has_classes(IRIS_CLASSES)),
    ),
    ("X-pandas-int-cols", "clf", dict(fx=_pandas([0, 1, 2, 3])), {}, OK3),
    (
        "X-pandas-object-col",
        "clf",
        dict(fx=_pandas(list("abcd"), dtype=object, fill="x")),
        {},
        Expect(r"string|float|convert"),
    ),
    (
        "X-pandas-nullable-NA",
        "clf",
        dict(fx=_pandas(list("abcd"), dtype="Float64", fill="<NA>")),
        {},
        Expect(r"NaN|NA|missing"),
    ),
    (
        "X-pandas-category",
        "clf",
        dict(fx=_pandas(list("abcd"), dtype="category")),
        {},
        Expect(r"categor|string|float|convert", check=has_classes(IRIS_CLASSES)),
    ),
    (
        "y-length-mismatch",
        "clf",
        dict(fy=lambda y: y[:-1]),
        {},
        Expect(r"inconsistent|samples|length"),
    ),
    ("y-2d-column", "clf", dict(fy=lambda y: y[:, None]), {}, OK3),
    ("y-float-nan", "clf", dict(fy=_set(3, np.nan)), {}, Expect(r"NaN")),
    ("y-str-none", "clf", dict(fy=_none_label), {}, Expect(r"NaN|missing|\bNone\b")),
    ("y-str-nan", "clf", dict(fy=_nan_label), {}, Expect(r"NaN|missing")),
    (
        "y-str-labels",
        "clf",
        dict(fy=_str_labels),
        {},
        Expect(check=has_classes(["setosa", "versicolor", "virginica"])),
    ),
    (
        "y-mixed-str-int",
        "clf",
        dict(fy=lambda y: _set(0, 5)(_str_labels(y))),
        {},
        Expect(r"mix|type|str|int|label"),
    ),
    (
        "y-continuous",
        "clf",
        dict(fy=lambda y: y + 0.5),
        {},
        Expect(r"continuous|label type|Unknown label"),
    ),
    (
        "y-one-class",
        "clf",
        dict(fy=lambda y: y * 0),
        {},
        Expect(r"class", check=has_classes([0])),
    ),
    (
        "y-multilabel-with-2",
        "clf",
        dict(fy=_multilabel_with_2),
        {},
        Expect(r"multilabel|multioutput|multiclass-multioutput|label|indicator"),
    ),
    (
        "y-multilabel-ok",
        "clf",
        dict(fy=lambda y: np.eye(3, dtype=int)[y]),
        {},
        Expect(
            r"multilabel|multi-label|indicator",
            check=lambda est: (
                None
                if np.asarray(est.predict(est._adv_X)).shape == (30, 3)
                else "wrong shape"
            ),
        ),
    ),
    (
        "y-huge-labels",
        "clf",
        dict(fy=lambda y: y * 10**18),
        {},
        Expect(check=has_classes([0, 10**18, 2 * 10**18])),
    ),
    ("reg-y-nan", "reg", dict(fy=_set(2, np.nan)), {}, Expect(r"NaN")),
    ("reg-y-inf", "reg", dict(fy=_set(2, np.inf)), {}, Expect(r"inf")),
    (
        "reg-y-strings",
        "reg",
        dict(fy=lambda y: np.char.add("y=", y.astype(str))),
        {},
        Expect(r"string|float|convert|numeric"),
    ),
    (
        "reg-y-2d-multioutput",
        "reg",
        dict(fy=lambda y: np.c_[y, -y]),
        {},
        Expect(check=predicts_finite(2)),
    ),
    (
        "reg-y-3d",
        "reg",
        dict(fy=lambda y: y[:, None, None]),
        {},
        Expect(r"dim|shape|2D|1D"),
    ),
    (
        "reg-y-constant",
        "reg",
        dict(fy=lambda y: y * 0 + 7),
        {},
        # Five epochs fit no target exactly: centred on 7 and finite is right
        # (a zero target scale must not blow the predictions up).
        Expect(
            check=lambda est: (
                None if abs(np.mean(est.predict(est._adv_X)) - 7) < 1 else "not ~7"
            )
        ),
    ),
    (
        "reg-y-huge-1e300",
        "reg",
        dict(fy=lambda y: y * 1e300),
        {},
        Expect(r"too large|overflow|inf|scale|y", check=predicts_finite()),
    ),
    (
        "reg-one-sample",
        "reg",
        dict(fx=lambda X: X[:1], fy=lambda y: y[:1]),
        {},
        Expect(r"sample", check=predicts_finite()),
    ),
    (
        "clf-one-sample",
        "clf",
        dict(fx=lambda X: X[:1], fy=lambda y: y[:1]),
        {},
        Expect(r"sample|class", check=has_classes([0])),
    ),
    (
        "clf-two-samples-early-stopping",
        "clf",
        dict(fx=lambda X: X[[0, 10]], fy=lambda y: y[[0, 10]]),
        {"early_stopping": True},
        Expect(r"validation|early_stopping|sample", check=has_classes([0, 1])),
    ),
    (
        "sw-wrong-length",
        "clf",
        dict(fw=lambda n: np.ones(n - 1)),
        {},
        Expect(r"sample_weight|shape|length"),
    ),
    (
        "sw-2d",
        "clf",
        dict(fw=lambda n: np.ones((n, 2))),
        {},
        Expect(r"sample_weight|1D|shape"),
    ),
    (
        "sw-negative",
        "clf",
        dict(fw=lambda n: -np.ones(n)),
        {},
        Expect(r"sample_weight|negative"),
    ),
    (
        "sw-nan",
        "clf",
        dict(fw=lambda n: _set(0, np.nan)(np.ones(n))),
        {},
        Expect(r"sample_weight|NaN"),
    ),
    (
        "sw-inf",
        "clf",
        dict(fw=lambda n: _set(0, np.inf)(np.ones(n))),
        {},
        Expect(r"sample_weight|inf"),
    ),
    (
        "sw-all-zero",
        "clf",
        dict(fw=np.zeros),
        {},
        Expect(r"sample_weight|zero|positive"),
    ),
    (
        "sw-overflow-float32",
        "clf",
        dict(fw=lambda n: np.full(n, 1e39)),
        {},
        Expect(r"sample_weight"),
    ),
    (
        "sw-strings",
        "clf",
        dict(fw=lambda n: np.array(["a"] * n)),
        {},
        Expect(r"sample_weight|float|convert|string"),
    ),
    ("sw-scalar", "clf", dict(fw=lambda n: 2.0), {}, OK3),
    (
        "sw-zero-one-class",
        "clf",
        dict(fw=lambda n: np.r_[np.zeros(10), np.ones(n - 10)]),
        {},
        Expect(r"sample_weight|class", check=has_classes(IRIS_CLASSES)),
    ),
    (
        "reg-sw-negative",
        "reg",
        dict(fw=lambda n: -np.ones(n)),
        {},
        Expect(r"sample_weight|negative"),
    ),
    (
        "cw-negative",
        "clf",
        {},
        {"class_weight": {0: -1.0, 1: 1.0, 2: 1.0}},
        Expect(r"class_weight"),
    ),
    (
        "cw-nan",
        "clf",
        {},
        {"class_weight": {0: np.nan, 1: 1.0, 2: 1.0}},
        Expect(r"class_weight"),
    ),
    (
        "cw-inf",
        "clf",
        {},
        {"class_weight": {0: np.inf, 1: 1.0, 2: 1.0}},
        Expect(r"class_weight"),
    ),
    ("cw-unknown-class", "clf", {}, {"class_weight": {7: 2.0}}, Expect(r"class")),
    (
        "cw-string-value",
        "clf",
        {},
        {"class_weight": {0: "x"}},
        Expect(r"class_weight|float|convert"),
    ),
    (
        "cw-bad-string",
        "clf",
        {},
        {"class_weight": "unbalanced"},
        Expect(r"class_weight"),
    ),
    ("cw-list", "clf", {}, {"class_weight": [1.0, 2.0, 3.0]}, Expect(r"class_weight")),
    ("cw-balanced", "clf", {}, {"class_weight": "balanced"}, OK3),
    (
        "cw-zero-one-class",
        "clf",
        {},
        {"class_weight": {0: 0.0, 1: 1.0, 2: 1.0}},
        Expect(r"class_weight", check=has_classes(IRIS_CLASSES)),
    ),
]


# Every parameter with values outside its domain: the error must name it.
BAD_PARAMS = [
    ("hidden_layer_sizes", (0,)),
    ("hidden_layer_sizes", (-3,)),
    ("hidden_layer_sizes", ()),
    ("hidden_layer_sizes", "abc"),
    ("hidden_layer_sizes", (2.5,)),
    ("hidden_layer_sizes", None),
    ("hidden_layer_sizes", (np.nan,)),
    ("activation", "foo"),
    ("solver", "foo"),
    ("alpha", -1.0),
    ("alpha", np.nan),
    ("alpha", np.inf),
    ("batch_size", 0),
    ("batch_size", "big"),
    ("batch_size", 2.5),
    ("learning_rate", "foo"),
    ("learning_rate_init", 0.0),
    ("learning_rate_init", -1.0),
    ("learning_rate_init", np.nan),
    ("learning_rate_init", np.inf),
    ("power_t", -1.0),
    ("max_iter", 0),
    ("max_iter", 2.5),
    ("max_iter", "10"),
    ("shuffle", "yes"),
    ("tol", -1.0),
    ("tol", np.nan),
    ("momentum", 1.5),
    ("momentum", -0.1),
    ("nesterovs_momentum", "no"),
    ("early_stopping", "x"),
    ("validation_fraction", 0.0),
    ("validation_fraction", 1.0),
    ("validation_fraction", np.nan),
    ("beta_1", 1.0),
    ("beta_2", -0.1),
    ("epsilon", 0.0),
    ("n_iter_no_change", 0),
    ("max_fun", 0),
    ("warm_start", "x"),
    ("policy", "foo"),
    ("policy", 123),
    ("policy", object()),
    ("prune_ratio", -0.1),
    ("prune_ratio", 1.0),
    ("prune_ratio", 1.5),
    ("prune_ratio", np.nan),
    ("prune_ratio", "half"),
    ("budget", 0),
    ("budget", -1),
    ("budget", np.nan),
    ("budget", np.inf),
    ("budget", "lots"),
    ("max_budget", 0),
    ("pull", "foo"),
    ("n_rounds", 0),
    ("n_rounds", 1.5),
    ("target_params", 0),
    ("target_params", -5),
    ("target_latency", 1.5),
    ("target_latency", 0.0),
    ("reward", "foo"),
    ("scope", "foo"),
    ("compensate", "foo"),
    ("pull_batch_size", 0),
    ("arms_per_round", 0),
    ("fine_tune_epochs", -1),
    ("memory", 123),
    ("device", "foo"),
    ("device", "cuda:99"),
    ("random_state", "seed"),
    ("random_state", -1),
    ("verbose", "loud"),
]
#: A few on the regressor too (it shares the validation, but not the code path).
BAD_REG_PARAMS = [
    ("hidden_layer_sizes", (0,)),
    ("prune_ratio", 1.5),
    ("policy", "foo"),
    ("alpha", -1.0),
]


def _param_pattern(name, value):
    # The message must name the parameter; a device error may name the device.
    return name + (r"|cuda|device" if name == "device" else "")


def memory_is_file(ctx):
    path = os.path.join(ctx.tmp, "a-file")
    open(path, "w").close()
    return fit_action("clf", iris, {"memory": path})(ctx)


# --------------------------------------------------------------------------
# Estimator cases: predict, warm_start, reproducibility


def predict_action(kind, method, fx):
    def action(ctx):
        X = (iris() if kind == "clf" else regression())[0]
        return getattr(fitted(kind), method)(fx(np.array(X, copy=True)))

    return action


def predict_unfitted(ctx):
    return make("clf").predict(iris()[0])


def predict_reordered_pandas(ctx):
    import pandas as pd

    X, y = iris()
    est = make("clf").fit(pd.DataFrame(X, columns=list("abcd")), y)
    return est.predict(pd.DataFrame(X, columns=list("dcba")))


PREDICT_CASES = [
    (
        "predict-wrong-n-features",
        "clf",
        "predict",
        lambda X: X[:, :3],
        Expect(r"feature"),
    ),
    (
        "predict-proba-wrong-n-features",
        "clf",
        "predict_proba",
        lambda X: np.c_[X, X],
        Expect(r"feature"),
    ),
    (
        "reg-predict-wrong-n-features",
        "reg",
        "predict",
        lambda X: X[:, :2],
        Expect(r"feature"),
    ),
    ("predict-nan", "clf", "predict", _set((0, 1), np.nan), Expect(r"NaN")),
    ("predict-inf", "reg", "predict", _set((0, 1), np.inf), Expect(r"inf")),
    ("predict-1d", "clf", "predict", lambda X: X[0], Expect(r"2D|reshape|dimension")),
    (
        "predict-empty",
        "clf",
        "predict",
        lambda X: X[:0],
        Expect(r"0 sample|empty", check=lambda p: None if len(p) == 0 else "rows"),
    ),
    (
        "predict-strings",
        "clf",
        "predict",
        _set((0, 0), "x"),
        Expect(r"string|float|convert"),
    ),
    (
        "predict-sparse",
        "clf",
        "predict",
        _sparse,
        Expect(r"sparse", check=lambda p: None if set(p) <= {0, 1, 2} else "classes"),
    ),
]


def warm_start_action(first, second, data2=None):
    """Fit with ``first`` params, then warm-start with ``second`` on data2."""

    def action(ctx):
        X, y = iris()
        est = make("clf", warm_start=True, **first).fit(X, y)
        est.set_params(**second)
        X2, y2 = data2() if data2 else (X, y)
        est.fit(X2, y2)
        est._adv_X = X2
        return est

    return action


def _hidden_width(est):
    import torch

    linear = [m for m in est.module_.modules() if isinstance(m, torch.nn.Linear)]
    return linear[0].out_features


def _activation(est):
    return {type(m).__name__ for m in est.module_.modules()}


WARM_CASES = [
    (
        "warm-start-changed-hidden-layer-sizes",
        {"prune_ratio": 0.0},
        {"hidden_layer_sizes": (12,)},
        None,
        Expect(
            r"hidden_layer_sizes|warm_start",
            check=lambda e: (
                None
                if _hidden_width(e) == 12
                else f"kept the old width {_hidden_width(e)}"
            ),
        ),
    ),
    (
        "warm-start-changed-activation",
        {},
        {"activation": "tanh"},
        None,
        Expect(
            r"activation|warm_start",
            check=lambda e: (
                None if "Tanh" in _activation(e) else "kept the old activation"
            ),
        ),
    ),
    (
        "warm-start-new-classes",
        {},
        {},
        lambda: (iris()[0], iris()[1] + 3),
        Expect(r"classes|warm_start"),
    ),
    (
        "warm-start-subset-classes",
        {},
        {},
        lambda: (iris()[0][:20], iris()[1][:20]),
        Expect(r"classes|warm_start"),
    ),
    (
        "warm-start-more-features",
        {},
        {},
        lambda: (np.c_[iris()[0], iris()[0]], iris()[1]),
        Expect(r"feature|warm_start"),
    ),
    ("warm-start-same", {}, {}, None, OK3),
]


def thread_parallel_fits(ctx):
    """Two fits in threads must equal the same two fits run one after another."""
    X, y = iris()

    def proba(seed):
        return make("clf", random_state=seed).fit(X, y).predict_proba(X)

    sequential = [proba(1), proba(2)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(proba, (1, 2)))
    return sequential, threaded


def same_seed_twice(ctx):
    X, y = iris()
    return [make("clf", random_state=3).fit(X, y).predict_proba(X) for _ in range(2)]


def _all_equal(pair):
    a, b = pair
    return None if all(np.array_equal(u, v) for u, v in zip(a, b)) else "not bit-equal"


# --------------------------------------------------------------------------
# prune() cases


@functools.cache
def torch_data():
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)


def small_net(dtype="float32"):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )
    return net.to(getattr(torch, dtype))


def prune_action(model=small_net, fx=None, fy=None, **kwargs):
    def action(ctx):
        from skbandit.pruning import prune

        X, y = torch_data()
        X, y = X.clone(), y.clone()
        kwargs.setdefault("budget", 2)
        kwargs.setdefault("random_state", 0)
        pruned, _ = prune(model(), fx(X) if fx else X, fy(y) if fy else y, **kwargs)
        return pruned

    return action


def _runs_on(dtype):
    """Check: the pruned network still maps the data to 3 finite logits."""

    def check(net):
        import torch

        out = net(torch_data()[0].to(getattr(torch, dtype)))
        return (
            None if out.shape == (32, 3) and torch.isfinite(out).all() else "bad output"
        )

    return check


def _tset(where, value):
    def f(t):
        t = (
            t.double()
            if t.dtype.is_floating_point is False and isinstance(value, float)
            else t
        )
        t[where] = value
        return t

    return f


def _linear_only():
    import torch

    return torch.nn.Linear(4, 3)


def _dropout_net():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.Dropout(0.5),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 3),
    ).train()


_F32 = "float32"
PRUNE_CASES = [
    ("prune-ratio-negative", {"prune_ratio": -0.1}, Expect(r"prune_ratio")),
    ("prune-ratio-1", {"prune_ratio": 1.0}, Expect(r"prune_ratio")),
    ("prune-ratio-1.5", {"prune_ratio": 1.5}, Expect(r"prune_ratio")),
    ("prune-ratio-nan", {"prune_ratio": float("nan")}, Expect(r"prune_ratio")),
    ("prune-ratio-string", {"prune_ratio": "half"}, Expect(r"prune_ratio")),
    ("prune-ratio-none", {"prune_ratio": None}, Expect(r"prune_ratio")),
    ("prune-policy-unknown", {"policy": "foo"}, Expect(r"policy|foo")),
    ("prune-policy-int", {"policy": 123}, Expect(r"policy")),
    ("prune-policy-object", {"policy": object()}, Expect(r"policy")),
    ("prune-budget-negative", {"budget": -1}, Expect(r"budget")),
    ("prune-budget-nan", {"budget": float("nan")}, Expect(r"budget")),
    ("prune-budget-inf", {"budget": float("inf")}, Expect(r"budget")),
    ("prune-budget-string", {"budget": "x"}, Expect(r"budget")),
    ("prune-loss-unknown", {"loss": "foo"}, Expect(r"loss")),
    ("prune-batch-size-0", {"batch_size": 0}, Expect(r"batch_size")),
    ("prune-reward-unknown", {"reward": "foo"}, Expect(r"reward")),
    ("prune-scope-unknown", {"scope": "foo"}, Expect(r"scope")),
    ("prune-pull-unknown", {"pull": "foo"}, Expect(r"pull")),
    ("prune-compensate-unknown", {"compensate": "foo"}, Expect(r"compensate")),
    ("prune-n-rounds-0", {"n_rounds": 0}, Expect(r"n_rounds")),
    ("prune-arms-per-round-0", {"arms_per_round": 0}, Expect(r"arms_per_round")),
    ("prune-max-budget-negative", {"max_budget": -1}, Expect(r"max_budget")),
    ("prune-target-params-negative", {"target_params": -1}, Expect(r"target_params")),
    ("prune-target-latency-2", {"target_latency": 2.0}, Expect(r"target_latency")),
    ("prune-random-state-string", {"random_state": "x"}, Expect(r"random_state")),
    ("prune-groups-string", {"groups": "x"}, Expect(r"groups")),
    ("prune-X-nan", {"fx": _tset((0, 0), float("nan"))}, Expect(r"NaN|finite")),
    ("prune-X-inf", {"fx": _tset((0, 0), float("inf"))}, Expect(r"inf|finite")),
    (
        "prune-X-wrong-width",
        {"fx": lambda X: X[:, :3]},
        Expect(r"shape|feature|size|mat"),
    ),
    (
        "prune-X-empty",
        {"fx": lambda X: X[:0], "fy": lambda y: y[:0]},
        Expect(r"empty|sample|0"),
    ),
    ("prune-X-1d", {"fx": lambda X: X[0]}, Expect(r"shape|dim|size|mat")),
    (
        "prune-y-length-mismatch",
        {"fy": lambda y: y[:-1]},
        Expect(r"sample|length|size|rows|batch"),
    ),
    ("prune-y-out-of-range", {"fy": _tset(0, 5)}, Expect(r"class|label|target|range")),
    ("prune-y-negative", {"fy": _tset(0, -2)}, Expect(r"class|label|target|range")),
    (
        "prune-y-nan",
        {"fy": lambda y: _tset(0, float("nan"))(y.double())},
        Expect(r"NaN|finite|target|dtype|float"),
    ),
    (
        "prune-X-numpy",
        {"fx": lambda X: X.numpy()},
        Expect(r"tensor|numpy", check=_runs_on(_F32)),
    ),
    (
        "prune-X-float64-model-float32",
        {"fx": lambda X: X.double()},
        Expect(r"dtype|Double|float", check=_runs_on(_F32)),
    ),
    (
        "prune-X-int",
        {"fx": lambda X: (X * 10).long()},
        Expect(r"dtype|Long|float|integer", check=_runs_on(_F32)),
    ),
    (
        "prune-model-float64-X-float32",
        {"model": functools.partial(small_net, "float64")},
        Expect(r"dtype|Double|float", check=_runs_on("float64")),
    ),
    (
        "prune-model-no-units",
        {"model": _linear_only},
        Expect(r"unit|prunable", check=lambda m: None),
    ),
    (
        "prune-model-empty-sequential",
        {"model": lambda: __import__("torch").nn.Sequential()},
        Expect(r"unit|prunable|empty|nothing to prune"),
    ),
    ("prune-model-not-a-module", {"model": lambda: "model"}, Expect(r"Module|model")),
    (
        "prune-model-train-mode-dropout",
        {"model": _dropout_net},
        Expect(check=_runs_on(_F32)),
    ),
    ("prune-ok", {}, Expect(check=_runs_on(_F32))),
]


# --------------------------------------------------------------------------
# Loader cases (skbandit.export)


@functools.cache
def checkpoint():
    """A good save_module checkpoint of a fitted classifier, as a dict."""
    import torch

    from skbandit.export import save_module

    path = os.path.join(tempfile.mkdtemp(), "good.pt")
    save_module(fitted("clf"), path)
    data = torch.load(path, weights_only=True)
    os.unlink(path)
    return data


def _write_checkpoint(ctx, edit, name="model.pt"):
    import copy

    import torch

    data = copy.deepcopy(checkpoint())
    edit(data)
    path = os.path.join(ctx.tmp, name)
    torch.save(data, path)
    return path


def load_edited(edit, loader="load_checkpoint"):
    def action(ctx):
        from skbandit import export

        return getattr(export, loader)(_write_checkpoint(ctx, edit))

    return action


def load_bytes(make_bytes):
    """Action: load a file whose bytes ``make_bytes(ctx)`` writes."""

    def action(ctx):
        from skbandit.export import load_checkpoint

        data = make_bytes(ctx)  # before opening: it may write a file itself
        path = os.path.join(ctx.tmp, "model.pt")
        with open(path, "wb") as fh:
            fh.write(data)
        return load_checkpoint(path)

    return action


def _good_bytes(ctx):
    with open(_write_checkpoint(ctx, lambda d: None, "good.pt"), "rb") as fh:
        return fh.read()


def _torch_save_exploit(ctx):
    import io

    import torch

    buffer = io.BytesIO()
    data = dict(checkpoint())
    data["meta"] = {"x": Exploit(ctx.marker)}
    torch.save(data, buffer)
    return buffer.getvalue()


def _zip_traversal(ctx):
    """A checkpoint zip with extra members named to escape any extraction folder."""
    import io

    good = _good_bytes(ctx)
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buffer, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("../../" + os.path.basename(ctx.marker), b"x")
        dst.writestr(os.path.abspath(ctx.marker), b"x")
    return buffer.getvalue()


def _layer(data, index):
    return data["spec"]["layers"][index]


def _state_key(data, suffix="weight"):
    return next(k for k in data["state_dict"] if k.endswith(suffix))


def _set_weight(value):
    def edit(d):
        d["state_dict"][_state_key(d)].view(-1)[0] = value

    return edit


def _set_meta(key, value):
    def edit(d):
        d["meta"][key] = value

    return edit


def _set_spec(key, value):
    def edit(d):
        d["spec"][key] = value

    return edit


def _set_layer(index, **fields):
    def edit(d):
        _layer(d, index).update(fields)

    return edit


def _rename_layer(index, name):
    """Rename a layer in the spec and its weights alike: only the name is bad."""

    def edit(d):
        old = _layer(d, index)["name"]
        _layer(d, index)["name"] = name
        state = d["state_dict"]
        for key in [k for k in state if k.startswith(old + ".")]:
            state[name + key[len(old) :]] = state.pop(key)

    return edit


def _pop_key(key):
    return lambda d: d.pop(key)


def _nest(depth):
    def edit(d):
        layers = d["spec"]["layers"]
        for i in range(depth):
            layers = [{"name": f"n{i}", "type": "Sequential", "layers": layers}]
        d["spec"]["layers"] = layers

    return edit


def _huge_layer(d):
    _layer(d, 0).update(in_features=10**9, out_features=10**9)


def _loaded_ok(result):
    import torch

    module = result["module"]
    out = module(torch.zeros(2, 4))
    return None if torch.isfinite(out).all() else "non-finite output"


LOADER_CASES = [
    # id, action, expect
    (
        "load-crafted-pickle",
        load_bytes(crafted_pickle),
        Expect(r"checkpoint|readable|pickle"),
    ),
    (
        "load-torch-save-with-object",
        load_bytes(_torch_save_exploit),
        Expect(r"checkpoint|readable|pickle|weights"),
    ),
    (
        "load-truncated",
        load_bytes(lambda ctx: _good_bytes(ctx)[:200]),
        Expect(r"checkpoint|readable"),
    ),
    (
        "load-truncated-half",
        load_bytes(lambda ctx: _good_bytes(ctx)[: len(_good_bytes(ctx)) // 2]),
        Expect(r"checkpoint|readable"),
    ),
    (
        "load-empty-file",
        load_bytes(lambda ctx: b""),
        Expect(r"checkpoint|readable|empty"),
    ),
    (
        "load-text-file",
        load_bytes(lambda ctx: b"import os\n"),
        Expect(r"checkpoint|readable"),
    ),
    (
        "load-zip-path-traversal",
        load_bytes(_zip_traversal),
        Expect(r"checkpoint|readable|member|path", check=_loaded_ok),
    ),
    ("load-nan-weights", load_edited(_set_weight(float("nan"))), Expect(r"NaN|finite")),
    ("load-inf-weights", load_edited(_set_weight(float("inf"))), Expect(r"inf|finite")),
    (
        "load-meta-classes-wrong-length",
        load_edited(_set_meta("classes", [0, 1])),
        Expect(r"classes"),
    ),
    (
        "load-meta-classes-duplicates",
        load_edited(_set_meta("classes", [0, 0, 1])),
        Expect(r"classes"),
    ),
    (
        "load-meta-classes-not-list",
        load_edited(_set_meta("classes", 3)),
        Expect(r"classes"),
    ),
    (
        "load-meta-n-features-wrong",
        load_edited(_set_meta("n_features_in", 7)),
        Expect(r"n_features|feature"),
    ),
    (
        "load-meta-y-mean-nan",
        load_edited(_set_meta("y_mean", [float("nan")])),
        Expect(r"y_mean|NaN|finite"),
    ),
    ("load-meta-not-dict", load_edited(lambda d: d.update(meta=[1])), Expect(r"meta")),
    (
        "load-version-newer",
        load_edited(lambda d: d.update(version=99)),
        Expect(r"version"),
    ),
    (
        "load-version-string",
        load_edited(lambda d: d.update(version="1")),
        Expect(r"version"),
    ),
    (
        "load-wrong-format",
        load_edited(lambda d: d.update(format="other")),
        Expect(r"checkpoint"),
    ),
    ("load-no-spec", load_edited(_pop_key("spec")), Expect(r"spec")),
    ("load-no-state-dict", load_edited(_pop_key("state_dict")), Expect(r"state_dict")),
    ("load-spec-dtype", load_edited(_set_spec("dtype", "float128")), Expect(r"dtype")),
    (
        "load-spec-layer-traversal-name",
        load_edited(_rename_layer(0, "../../etc/passwd")),
        Expect(r"name"),
    ),
    (
        "load-spec-layer-slash-name",
        load_edited(_rename_layer(0, "a/b")),
        Expect(r"name", check=_loaded_ok),
    ),
    (
        "load-spec-unknown-layer",
        load_edited(_set_layer(1, type="os.system")),
        Expect(r"layer type|unknown"),
    ),
    (
        "load-spec-layer-unknown-arg",
        load_edited(_set_layer(0, device="cuda")),
        Expect(r"argument|unknown"),
    ),
    ("load-spec-deep-nesting", load_edited(_nest(200)), Expect(r"deep|nest")),
    (
        "load-spec-huge-layer",
        load_edited(_huge_layer),
        Expect(r"fit the spec|weights|shape"),
    ),
    (
        "load-spec-negative-size",
        load_edited(_set_layer(0, out_features=-5)),
        Expect(r"layer|built|size|negative"),
    ),
    (
        "load-state-wrong-dtype",
        load_edited(
            lambda d: d["state_dict"].update(
                {_state_key(d): d["state_dict"][_state_key(d)].double()}
            )
        ),
        Expect(r"dtype|float|fit the spec"),
    ),
    (
        "load-state-wrong-shape",
        load_edited(
            lambda d: d["state_dict"].update(
                {_state_key(d): d["state_dict"][_state_key(d)][:1]}
            )
        ),
        Expect(r"shape|fit the spec"),
    ),
    (
        "load-state-extra-key",
        load_edited(
            lambda d: d["state_dict"].update(evil=d["state_dict"][_state_key(d)])
        ),
        Expect(r"unexpected|fit the spec"),
    ),
    (
        "load-state-non-tensor",
        load_edited(lambda d: d["state_dict"].update({_state_key(d): [1.0]})),
        Expect(r"tensor"),
    ),
    (
        "load-missing-file",
        lambda ctx: __import__("skbandit.export").export.load_checkpoint(
            os.path.join(ctx.tmp, "nope.pt")
        ),
        Expect(r"No such file|nope", types=(FileNotFoundError, ValueError)),
    ),
    (
        "load-directory",
        lambda ctx: __import__("skbandit.export").export.load_checkpoint(ctx.tmp),
        Expect(r"directory|checkpoint|readable", types=(IsADirectoryError, ValueError)),
    ),
    ("load-good", load_edited(lambda d: None), Expect(check=_loaded_ok)),
]


# --------------------------------------------------------------------------
# Cache cases


def _cache_files(folder):
    return sorted(
        os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
    )


def _entries(folder):
    """Files holding one cached result each, in creation order: joblib's
    ``output.pkl`` or skbandit's ``<key>.pt``."""
    found = [p for p in _cache_files(folder) if p.endswith(("output.pkl", ".pt"))]
    return sorted(found, key=os.path.getmtime)


def poison(folder, ctx, every_file=True):
    """Overwrite cache files with a crafted pickle and drop a crafted
    output.pkl in every subfolder (``every_file=False``: output.pkl only,
    leaving joblib's function-code and metadata files intact)."""
    payload = crafted_pickle(ctx)
    targets = set(_cache_files(folder) if every_file else [])
    targets.update(os.path.join(root, "output.pkl") for root, _, _ in os.walk(folder))
    for path in targets:
        with open(path, "wb") as fh:
            fh.write(payload)


def swap_entries(source, target):
    """Copy one cached result over another's (e.g. another fold's network)."""
    shutil.copyfile(source, target)


def estimator_fits(cache):
    """Two folds' fits with ``memory=cache``; their predict_proba."""
    X, y = iris()
    folds = [np.arange(0, 30, 2), np.arange(1, 30, 2)]
    return [make("clf", memory=cache).fit(X[f], y[f]).predict_proba(X) for f in folds]


def deep_runs(cache):
    from skbandit.benchmarks.deep import run_task

    keys = (
        "accuracy",
        "accuracy_pruned",
        "accuracy_unpruned",
        "params_after",
        "units_after",
    )
    out = []
    for seed in (0, 1):
        result = run_task(
            "parity-mlp",
            "magnitude",
            seed,
            memory=cache,
            epochs=1,
            max_train=256,
            max_test=128,
            fine_tune_epochs=0,
            latency_repeats=1,
            prune_samples=64,
        )
        out.append({k: result[k] for k in keys})
    return out


def bench_runs(cache, ctx, tag):
    """``skbandit bench tabular`` in a subprocess on 2 folds; the stored rows."""
    db = os.path.join(ctx.tmp, f"{tag}.sqlite")
    code, _, err, _ = run_child(
        _cli_argv(ctx, "--methods", "ucb1@0.5", "--db", db, "--cache", cache),
        CLI_TIMEOUT,
    )
    if code != 0:
        raise RuntimeError(f"bench run exited {code}: {_short(err[-300:])}")
    with contextlib.closing(sqlite3.connect(db)) as con:
        rows = con.execute(
            "SELECT fold, seed, score, params_after, extra FROM results "
            "ORDER BY fold, seed"
        ).fetchall()
    # Scores of 20 test rows can tie between networks; the losses cannot.
    pruning = [json.loads(row[-1]).get("pruning", {}) for row in rows]
    return [
        row[:-1] + (p.get("loss_before"), p.get("loss_after_fine_tune"))
        for row, p in zip(rows, pruning)
    ]


def cache_attack(runner, attack):
    """Action: a first run fills the cache, ``attack`` tampers with it, a
    second run reads it; returns (clean results, results after the attack)."""

    def action(ctx):
        cache = os.path.join(ctx.tmp, "cache")
        run = (
            functools.partial(runner, ctx=ctx)
            if runner is bench_runs
            else (lambda c, tag: runner(c))
        )
        clean = run(cache, tag="clean")
        attack(cache, ctx)
        again = run(cache, tag="again")
        return clean, again

    return action


def _swap_first_over_second(cache, ctx):
    first, second = _entries(cache)[:2]
    swap_entries(first, second)


ATTACKS = {
    "poison-all-files": lambda cache, ctx: poison(cache, ctx, every_file=True),
    "poison-outputs": lambda cache, ctx: poison(cache, ctx, every_file=False),
    "swap-entries": _swap_first_over_second,
}
RUNNERS = {
    "estimator-memory": estimator_fits,
    "bench-cache": bench_runs,
    "deep-cache": deep_runs,
}


def _equal(a, b):
    """Exact equality of nested lists, tuples, dicts and arrays."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(u, v) for u, v in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _same_as_clean(pair):
    clean, again = pair
    return None if _equal(clean, again) else "result differs from a clean run"


# --------------------------------------------------------------------------
# CLI cases


def _cli_argv(ctx, *extra, suite="tabular"):
    base = [sys.executable, "-m", "skbandit", "bench", suite, "--no-progress"]
    defaults = {
        "--datasets": "iris" if suite != "deep" else "parity-mlp",
        "--methods": "none",
        "--db": os.path.join(ctx.tmp, "r.sqlite"),
        "--out": os.path.join(ctx.tmp, "out"),
    }
    if suite != "deep":
        defaults.update({"--folds": "2", "--max-samples": "40"})
    given = {a.split("=")[0] for a in extra if a.startswith("--")}
    for option, value in defaults.items():
        if option not in given:
            base += [option, value]
    return base + list(extra)


def _fitted_anything(ctx):
    """Did the run fit or store anything (output.pkl or a stored result)?"""
    if any(p.endswith("output.pkl") for p in _cache_files(ctx.tmp)):
        return True
    for db in (p for p in _cache_files(ctx.tmp) if p.endswith(".sqlite")):
        with (
            contextlib.suppress(sqlite3.Error),
            contextlib.closing(sqlite3.connect(db)) as con,
        ):
            if con.execute("SELECT COUNT(*) FROM results").fetchone()[0]:
                return True
    return False


def cli_action(*extra, suite="tabular", extra_procs=None, timeout=CLI_TIMEOUT):
    """Action: the CLI with ``extra`` options; exit 2 with a one-line message
    and nothing fitted becomes CliUsageError, any other failure CliFailure."""

    def action(ctx):
        argv = _cli_argv(ctx, *extra, suite=suite)
        code, out, err, seconds = run_child(argv, timeout, extra_procs=extra_procs)
        if code is None:
            raise Blowup(f"CLI still running after {timeout} s")
        if code < 0:
            raise Blowup(f"CLI killed by signal {-code} (memory limit?)")
        last = err.strip().splitlines()[-1] if err.strip() else ""
        if code == 2 and "Traceback" not in err:
            if _fitted_anything(ctx):
                raise CliFailure(f"exit 2 after a fit: {last}")
            raise CliUsageError(err.strip())
        if code != 0:
            kind = "traceback" if "Traceback" in err else f"exit {code}"
            raise CliFailure(f"{kind}: {last}")
        return {"stdout": out, "stderr": err, "seconds": seconds}

    return action


def _usage(pattern):
    return Expect(pattern, types=(CliUsageError,))


def _warned(pattern):
    def check(result):
        ok = re.search(pattern, result["stderr"], re.IGNORECASE)
        return None if ok else f"no warning matching /{pattern}/"

    return check


CLI_CASES = [
    ("cli-seeds-negative", ("--seeds", "-1"), {}, _usage(r"--seeds|seed")),
    ("cli-seeds-2**40", ("--seeds", "1099511627776"), {}, _usage(r"--seeds|seed")),
    ("cli-seeds-not-int", ("--seeds", "abc"), {}, _usage(r"--seeds")),
    ("cli-seeds-empty", ("--seeds", ","), {}, _usage(r"--seeds")),
    ("cli-folds-1000", ("--folds", "1000"), {}, _usage(r"--folds|folds")),
    ("cli-folds-0", ("--folds", "0"), {}, _usage(r"--folds")),
    ("cli-folds-1", ("--folds", "1"), {}, _usage(r"--folds|folds")),
    ("cli-max-samples-0", ("--max-samples", "0"), {}, _usage(r"--max-samples")),
    (
        "cli-max-samples-1",
        ("--max-samples", "1"),
        {},
        _usage(r"--max-samples|max_samples|folds|samples"),
    ),
    ("cli-out-proc", ("--out", "/proc/x"), {}, _usage(r"--out")),
    ("cli-db-proc", ("--db", "/proc/x.sqlite"), {}, _usage(r"--db")),
    ("cli-cache-proc", ("--cache", "/proc/x"), {}, _usage(r"--cache")),
    ("cli-n-jobs-0", ("--n-jobs", "0"), {}, _usage(r"--n-jobs")),
    ("cli-n-jobs-text", ("--n-jobs", "many"), {}, _usage(r"--n-jobs")),
    (
        "cli-n-jobs-100000",
        ("--n-jobs", "100000"),
        {"extra_procs": 300, "timeout": 40},
        Expect(check=_warned(r"n.jobs|worker|cap")),
    ),
    (
        "cli-dataset-unknown",
        ("--datasets", "nosuchset"),
        {},
        _usage(r"nosuchset|dataset"),
    ),
    (
        "cli-method-unknown",
        ("--methods", "nosuchmethod"),
        {},
        _usage(r"nosuchmethod|method"),
    ),
    ("cli-method-glob-empty", ("--methods", "zzz*"), {}, _usage(r"zzz|method")),
    ("cli-ratios-1.5", ("--ratios", "1.5"), {}, _usage(r"--ratios|ratio")),
    ("cli-ratios-negative", ("--ratios", "-0.5"), {}, _usage(r"--ratios|ratio")),
    ("cli-ratios-nan", ("--ratios", "nan"), {}, _usage(r"--ratios|ratio")),
    ("cli-ratios-text", ("--ratios", "half"), {}, _usage(r"--ratios")),
    ("cli-backend-unknown", ("--backend", "spark"), {}, _usage(r"--backend")),
    ("cli-unknown-option", ("--frobnicate",), {}, _usage(r"frobnicate|unrecognized")),
    (
        "cli-regression-classification-dataset",
        ("--datasets", "iris"),
        {"suite": "regression"},
        _usage(r"iris|dataset"),
    ),
    ("cli-deep-folds", ("--folds", "3"), {"suite": "deep"}, _usage(r"--folds")),
    (
        "cli-deep-task-unknown",
        ("--datasets", "nosuchtask"),
        {"suite": "deep"},
        _usage(r"nosuchtask|task"),
    ),
    (
        "cli-deep-seeds-negative",
        ("--seeds", "-3"),
        {"suite": "deep"},
        _usage(r"--seeds|seed"),
    ),
]


# --------------------------------------------------------------------------
# Resource blowups (child process: memory limit and timeout)


def sub_fit(kind, **params):
    return fit_action(kind, iris if kind == "clf" else regression, params)


def _sub_prune_budget(ctx):
    return prune_action(budget=1e12)(ctx)


def _sub_load_huge(ctx):
    return load_edited(_huge_layer, loader="load_module")(ctx)


BLOWUP_CASES = [
    (
        "blowup-hidden-1e6",
        sub_fit("clf", hidden_layer_sizes=(10**6,)),
        Expect(r"hidden_layer_sizes"),
    ),
    (
        "blowup-reg-hidden-1e6",
        sub_fit("reg", hidden_layer_sizes=(10**6,)),
        Expect(r"hidden_layer_sizes"),
    ),
    (
        "blowup-hidden-1e5x1e5",
        sub_fit("clf", hidden_layer_sizes=(10**5, 10**5)),
        Expect(r"hidden_layer_sizes"),
    ),
    (
        "blowup-hidden-1e9",
        sub_fit("clf", hidden_layer_sizes=(10**9,)),
        Expect(r"hidden_layer_sizes"),
    ),
    ("blowup-batch-size-1e9", sub_fit("clf", batch_size=10**9), OK3),
    ("blowup-pull-batch-size-1e9", sub_fit("clf", pull_batch_size=10**9), OK3),
    ("blowup-arms-per-round-1e9", sub_fit("clf", arms_per_round=10**9), OK3),
    (
        "blowup-n-rounds-1e6",
        sub_fit("clf", n_rounds=10**6),
        Expect(r"n_rounds", check=has_classes(IRIS_CLASSES)),
    ),
    ("blowup-prune-budget-1e12", _sub_prune_budget, Expect(r"budget")),
    ("blowup-load-huge-layer", _sub_load_huge, Expect(r"fit the spec|weights")),
]


# --------------------------------------------------------------------------
# The table


def build_cases():
    cases = []
    for case_id, kind, transform, params, expect in FIT_CASES:
        data = _with(iris if kind == "clf" else regression, **transform)
        cases.append(Case("fit-" + case_id, fit_action(kind, data, params), expect))
    for kind, table in (("clf", BAD_PARAMS), ("reg", BAD_REG_PARAMS)):
        for name, value in table:
            data = iris if kind == "clf" else regression
            shown = "<object>" if type(value) is object else repr(value)
            label = f"param-{kind}-{name}={shown}"
            cases.append(
                Case(
                    label,
                    fit_action(kind, data, {name: value}),
                    Expect(_param_pattern(name, value)),
                )
            )
    cases.append(Case("param-clf-memory=<a file>", memory_is_file, Expect(r"memory")))
    for case_id, kind, method, fx, expect in PREDICT_CASES:
        cases.append(Case(case_id, predict_action(kind, method, fx), expect))
    cases.append(Case("predict-unfitted", predict_unfitted, Expect(r"not fitted|fit")))
    cases.append(
        Case(
            "predict-pandas-reordered-columns",
            predict_reordered_pandas,
            Expect(r"feature names"),
        )
    )
    for case_id, first, second, data2, expect in WARM_CASES:
        cases.append(Case(case_id, warm_start_action(first, second, data2), expect))
    cases.append(
        Case(
            "threads-2-fits-vs-sequential",
            thread_parallel_fits,
            Expect(check=_all_equal),
        )
    )
    cases.append(
        Case(
            "same-seed-twice",
            same_seed_twice,
            Expect(check=lambda p: _all_equal(([p[0]], [p[1]]))),
        )
    )
    for case_id, spec, expect in PRUNE_CASES:
        cases.append(Case(case_id, prune_action(**spec), expect))
    for case_id, action, expect in LOADER_CASES:
        cases.append(Case(case_id, action, expect))
    for runner_name, runner in RUNNERS.items():
        for attack_name, attack in ATTACKS.items():
            cases.append(
                Case(
                    f"cache-{runner_name}-{attack_name}",
                    cache_attack(runner, attack),
                    Expect(check=_same_as_clean),
                )
            )
    for case_id, extra, options, expect in CLI_CASES:
        cases.append(Case(case_id, cli_action(*extra, **options), expect, pool=True))
    for case_id, action, expect in BLOWUP_CASES:
        cases.append(Case(case_id, action, expect, sub=True))
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the cases whose id matches this regex")
    parser.add_argument(
        "--list", action="store_true", help="print the case ids and exit"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="child processes (CLI runs, guarded cases) at a time (default 2)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    # Two cores shared with others: one torch thread per process.
    torch.set_num_threads(1)
    cases = build_cases()
    if args.child:
        case = next(c for c in cases if c.id == args.child)
        print(RESULT_TAG + json.dumps(run_in_process(case, Ctx(args.tmp))), flush=True)
        return 0
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.id)]
    if args.list:
        print("\n".join(c.id for c in cases))
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skb-adv-") as root:
        results = run_cases(
            cases, root, jobs=args.jobs, emit=lambda s: print(s, flush=True)
        )
    print(f"({time.perf_counter() - start:.0f} s)")
    print(summary_line(results))
    bad = sum(r.cls in ("silent", "blowup", "exec") for r in results)
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
