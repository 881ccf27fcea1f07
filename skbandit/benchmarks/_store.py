"""SQLite store of benchmark results: one row per completed configuration.

A configuration is the key ``(suite, dataset, method, fold, seed)``. Each
result is inserted in its own transaction by the driver process only (joblib
workers return their results to it), so killing a run at any moment leaves
every stored row complete and the file consistent; re-running skips the keys
already stored. The file uses SQLite's write-ahead log (WAL), so a report
can read it while a run is writing.

Besides ``results``, the file holds:

* ``protocols``: per suite, what makes results comparable (number of folds,
  row cap, the shared architecture of our networks). A run whose protocol
  differs from the stored one is refused rather than mixed in.
* ``failures``: configurations whose fit raised, with the traceback. They
  are not results: a re-run tries them again, and a success deletes them.
"""

import contextlib
import datetime
import json
import math
import os
import sqlite3

import numpy as np

__all__ = [
    "StoreError",
    "ProtocolMismatch",
    "ResultStore",
    "integrity_check",
    "KEY",
]

KEY = ("suite", "dataset", "method", "fold", "seed")

# Bumped when the schema changes incompatibly; a newer file is refused.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    suite TEXT NOT NULL,
    dataset TEXT NOT NULL,
    method TEXT NOT NULL,
    fold INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    metric TEXT NOT NULL,
    score REAL,
    fit_time REAL,
    predict_time REAL,
    params_before INTEGER,
    params_after INTEGER,
    n_train INTEGER,
    n_test INTEGER,
    extra TEXT,
    created TEXT NOT NULL,
    PRIMARY KEY (suite, dataset, method, fold, seed)
);
CREATE TABLE IF NOT EXISTS failures (
    suite TEXT NOT NULL,
    dataset TEXT NOT NULL,
    method TEXT NOT NULL,
    fold INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    error TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (suite, dataset, method, fold, seed)
);
CREATE TABLE IF NOT EXISTS protocols (
    suite TEXT PRIMARY KEY,
    protocol TEXT NOT NULL,
    created TEXT NOT NULL
);
"""

# Result columns besides the key, in insertion order.
VALUE_COLUMNS = (
    "metric",
    "score",
    "fit_time",
    "predict_time",
    "params_before",
    "params_after",
    "n_train",
    "n_test",
    "extra",
)


class StoreError(RuntimeError):
    """The results file cannot be used (not SQLite, corrupt, locked, missing)."""


class ProtocolMismatch(StoreError):
    """A run's protocol differs from the one its suite was started with."""


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _json_default(obj):
    # numpy scalars and arrays appear in pruning summaries; anything else
    # exotic is kept as its repr rather than failing a finished fit.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    return repr(obj)


def to_json(obj):
    """``json.dumps`` that accepts numpy values, tuples and unknown objects."""
    return json.dumps(obj, default=_json_default, sort_keys=True)


def _is_missing(value):
    """None, NaN or pandas' NA (a parameter count that a peer does not have)."""
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except TypeError:  # pandas.NA refuses float()
        return True


def _int_or_none(value):
    return None if _is_missing(value) else int(value)


def _float_or_none(value):
    return None if _is_missing(value) else float(value)


class ResultStore:
    """Results of benchmark runs in one SQLite file.

    Parameters
    ----------
    path : str or path-like
        The SQLite file.
    create : bool, default=True
        Create the file (and its folder) when missing. With False a missing
        file is a :class:`StoreError`, so that reading a mistyped path does not
        leave an empty database behind.
    timeout : float, default=30.0
        Seconds to wait for a lock held by another process.

    Raises
    ------
    StoreError
        When the file is missing (``create=False``), is not an SQLite file,
        is corrupt, is locked, or was written by a newer schema; the message
        names the path.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "r.sqlite")
    >>> with ResultStore(path) as store:
    ...     store.add_result(("tabular", "iris", "sk_knn", 0, 0),
    ...                      {"metric": "accuracy", "score": 0.9})
    ...     sorted(store.completed_keys("tabular"))
    True
    [('iris', 'sk_knn', 0, 0)]
    """

    def __init__(self, path, create=True, timeout=30.0):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            if not create:
                raise StoreError(f"no results store at {self.path}")
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
        elif os.path.isdir(self.path):
            raise StoreError(f"{self.path} is a directory, not a results file")
        with self._errors("open"):
            # isolation_level=None: no implicit transactions; every write
            # below opens and commits its own.
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None
            )
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    # -- plumbing -------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action):
        """Turn sqlite3 errors into a StoreError that names the file."""
        try:
            yield
        except sqlite3.Error as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                why = "is locked by another process (try again when it ends)"
            elif "not a database" in text or "malformed" in text:
                why = "is not a valid SQLite results store (corrupt or another format)"
            else:
                why = "cannot be used"
            raise StoreError(
                f"results store {self.path} {why}: {action}: {text}"
            ) from exc

    @contextlib.contextmanager
    def _transaction(self, action):
        with self._errors(action):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _setup(self):
        with self._errors("read schema"):
            # The first read is what detects a non-SQLite or corrupt file.
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"results store {self.path} has schema version {version}; this "
                f"skbandit reads version {SCHEMA_VERSION} (upgrade skbandit)"
            )
        with self._errors("enable WAL"):
            self._conn.execute("PRAGMA journal_mode=WAL")
            tables = {
                r[0]
                for r in self._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
        if {"results", "failures", "protocols"} <= tables:
            # Nothing to create: a reader takes no write lock.
            return
        with self._transaction("create tables") as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self):
        """Close the connection (idempotent)."""
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- writing --------------------------------------------------------------

    def add_result(self, key, values):
        """Insert one completed configuration, atomically.

        Parameters
        ----------
        key : tuple
            ``(suite, dataset, method, fold, seed)``.
        values : dict
            ``metric`` (required), ``score``, ``fit_time``, ``predict_time``,
            ``params_before``, ``params_after``, ``n_train``, ``n_test`` and
            ``extra`` (any JSON-able dict). Missing values are NULL.

        Returns
        -------
        bool
            False when the key was already stored (the stored row is kept:
            a configuration is recorded exactly once).
        """
        key = _check_key(key)
        if "metric" not in values:
            raise ValueError("a result needs its metric name")
        unknown = set(values) - set(VALUE_COLUMNS)
        if unknown:
            raise ValueError(f"unknown result fields {sorted(unknown)}")
        row = (
            *key,
            str(values["metric"]),
            _float_or_none(values.get("score")),
            _float_or_none(values.get("fit_time")),
            _float_or_none(values.get("predict_time")),
            _int_or_none(values.get("params_before")),
            _int_or_none(values.get("params_after")),
            _int_or_none(values.get("n_train")),
            _int_or_none(values.get("n_test")),
            to_json(values.get("extra") or {}),
            _now(),
        )
        columns = KEY + VALUE_COLUMNS + ("created",)
        placeholders = ", ".join("?" * len(columns))
        with self._transaction("write a result") as conn:
            cursor = conn.execute(
                f"INSERT OR IGNORE INTO results ({', '.join(columns)}) "
                f"VALUES ({placeholders})",
                row,
            )
            # A success supersedes an earlier failure of the same config.
            conn.execute(f"DELETE FROM failures WHERE {_KEY_WHERE}", key)
        return cursor.rowcount == 1

    def add_failure(self, key, error):
        """Record (or overwrite) the error of a configuration that raised."""
        key = _check_key(key)
        with self._transaction("write a failure") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO failures "
                f"({', '.join(KEY)}, error, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, str(error), _now()),
            )

    def check_protocol(self, suite, protocol):
        """Record ``protocol`` for ``suite``, or check it equals the stored one.

        Parameters
        ----------
        suite : str
        protocol : dict
            JSON-able description of what makes results comparable.

        Raises
        ------
        ProtocolMismatch
            When the suite was started with a different protocol; the message
            lists the differing entries and names the file.
        """
        wanted = json.loads(to_json(protocol))
        with self._transaction("check the protocol") as conn:
            row = conn.execute(
                "SELECT protocol FROM protocols WHERE suite = ?", (suite,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO protocols (suite, protocol, created) VALUES (?, ?, ?)",
                    (suite, to_json(wanted), _now()),
                )
                return
        stored = json.loads(row[0])
        if stored != wanted:
            diff = ", ".join(
                f"{k}: stored {stored.get(k)!r} != requested {wanted.get(k)!r}"
                for k in sorted(set(stored) | set(wanted))
                if stored.get(k) != wanted.get(k)
            )
            raise ProtocolMismatch(
                f"results store {self.path} holds suite {suite!r} run with another "
                f"protocol ({diff}); use another --db or the stored settings"
            )

    # -- reading --------------------------------------------------------------

    def protocol(self, suite):
        """The stored protocol of ``suite`` as a dict, or None."""
        with self._errors("read the protocol"):
            row = self._conn.execute(
                "SELECT protocol FROM protocols WHERE suite = ?", (suite,)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def suites(self):
        """Names of the suites with at least one result."""
        with self._errors("list suites"):
            rows = self._conn.execute(
                "SELECT DISTINCT suite FROM results ORDER BY suite"
            ).fetchall()
        return [r[0] for r in rows]

    def completed_keys(self, suite):
        """Set of ``(dataset, method, fold, seed)`` stored for ``suite``."""
        with self._errors("read completed keys"):
            rows = self._conn.execute(
                "SELECT dataset, method, fold, seed FROM results WHERE suite = ?",
                (suite,),
            ).fetchall()
        return {tuple(r) for r in rows}

    def failures(self, suite):
        """Failed configurations of ``suite``: list of (key, error) pairs."""
        with self._errors("read failures"):
            rows = self._conn.execute(
                f"SELECT {', '.join(KEY[1:])}, error FROM failures WHERE suite = ? "
                "ORDER BY dataset, method, seed, fold",
                (suite,),
            ).fetchall()
        return [(tuple(r[:4]), r[4]) for r in rows]

    def results_frame(self, suite):
        """Results of ``suite`` as a DataFrame, one row per configuration.

        Returns
        -------
        pandas.DataFrame
            The key columns, the value columns (``extra`` parsed into a dict)
            and ``created``, in insertion order.
        """
        import pandas as pd

        columns = KEY + VALUE_COLUMNS + ("created",)
        with self._errors("read results"):
            rows = self._conn.execute(
                f"SELECT {', '.join(columns)} FROM results WHERE suite = ? "
                "ORDER BY rowid",
                (suite,),
            ).fetchall()
        frame = pd.DataFrame(rows, columns=list(columns))
        frame["extra"] = [json.loads(e) if e else {} for e in frame["extra"]]
        for column in ("params_before", "params_after", "n_train", "n_test"):
            frame[column] = frame[column].astype("Int64")
        return frame

    def integrity_check(self):
        """``PRAGMA integrity_check`` as one string: ``"ok"`` when sound."""
        with self._errors("integrity check"):
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)


_KEY_WHERE = " AND ".join(f"{k} = ?" for k in KEY)


def _check_key(key):
    if len(key) != len(KEY):
        raise ValueError(f"a key is {KEY}, got {key!r}")
    suite, dataset, method, fold, seed = key
    return (str(suite), str(dataset), str(method), int(fold), int(seed))


def integrity_check(path):
    """``PRAGMA integrity_check`` of the store at ``path`` (``"ok"`` if sound).

    Parameters
    ----------
    path : str or path-like
        An existing results file (it is not created).

    Raises
    ------
    StoreError
        When the file is missing or not an SQLite file.
    """
    with ResultStore(path, create=False) as store:
        return store.integrity_check()
