"""A cache of trained networks that holds only tensors and plain data.

The estimators' ``memory=``, ``skbandit bench``'s cache folder and the deep
suite share it. A cache folder may be written by anyone who can write to the
disk, so nothing read from it is trusted:

* **No code runs on load.** An entry is one ``torch.save`` file of a flat
  dict of tensors, strings and numbers, read with
  ``torch.load(weights_only=True)``: torch's restricted unpickler refuses any
  class or callable, so a crafted pickle raises instead of executing. The
  network is rebuilt by the caller from the call's own arguments, and only its
  state dict comes from the file.
* **An entry answers one call.** The file name is the SHA-256 *key* of the
  call (the function's namespace, its arguments with arrays hashed by
  contents, and the versions of skbandit and torch), and the file stores its
  key again: an entry copied over another (another fold's network, which has
  seen this fold's test rows) is detected.
* **Damaged contents are detected.** The file stores a digest of its key and
  contents, checked after loading.

An entry that fails any check is discarded with a :class:`RuntimeWarning` and
recomputed, and the new entry replaces it. Entries are written to a temporary
file and renamed, so concurrent workers never read half a file.

:class:`ProcessCache` keeps the most recent entries of one process in memory
under the same keys (nothing is read from outside the process, so there is
nothing to check): the estimators use it so that a search over pruning
settings trains once per fold without a cache folder.
"""

import collections
import hashlib
import json
import os
import tempfile
import threading
import types
import warnings

import numpy as np
import scipy.sparse as sp

from ._version import __version__

__all__ = ["ProcessCache", "TensorCache", "content_digest"]

#: Bumped when the layout of an entry changes: older entries are then misses.
_FORMAT = 1


def _feed(hasher, obj):
    """Feed ``obj``'s type and contents to ``hasher``, recursively."""
    import torch

    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if sp.issparse(obj):
        obj = obj.tocsr()
        obj = (obj.shape, obj.data, obj.indices, obj.indptr)
    hasher.update(type(obj).__name__.encode())
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().contiguous().numpy()
    if isinstance(obj, np.ndarray):
        hasher.update(f"{obj.dtype}{obj.shape}".encode())
        hasher.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        for key in sorted(obj, key=repr):
            _feed(hasher, key)
            _feed(hasher, obj[key])
    elif isinstance(obj, (list, tuple)):
        hasher.update(str(len(obj)).encode())
        for value in obj:
            _feed(hasher, value)
    elif isinstance(obj, (type, types.FunctionType, types.MethodType)):
        # Classes and functions by name: their repr holds a memory address.
        hasher.update(f"{obj.__module__}.{obj.__qualname__}".encode())
    else:
        hasher.update(repr(obj).encode())


def content_digest(obj):
    """SHA-256 of the contents of ``obj`` (modules by their state dict).

    Parameters
    ----------
    obj : object
        Nested tuples, lists and dicts of torch modules, tensors, arrays,
        sparse matrices, classes, functions and plain values.

    Returns
    -------
    str
        Hex digest; equal contents give equal digests across processes.

    Examples
    --------
    >>> import torch
    >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> with torch.no_grad():
    ...     _ = b.weight.copy_(a.weight), b.bias.copy_(a.bias)
    >>> content_digest((a, [1.0])) == content_digest((b, [1.0]))
    True
    >>> content_digest((a, [1.0])) == content_digest((a, [2.0]))
    False
    """
    hasher = hashlib.sha256()
    _feed(hasher, obj)
    return hasher.hexdigest()


def _location(memory):
    """The folder of ``memory`` (a path or a ``joblib.Memory``), or None."""
    from joblib import Memory

    if isinstance(memory, Memory):
        return memory.location
    return None if memory is None else os.fspath(memory)


class TensorCache:
    """Entries of tensors and JSON metadata under ``<folder>/skbandit-cache``.

    Parameters
    ----------
    memory : str, path-like, joblib.Memory or None
        The cache folder (created when first written), or a ``joblib.Memory``
        whose ``location`` is used. ``None`` (or a ``Memory`` without a
        location) caches nothing.
    namespace : str
        What the entries hold (e.g. ``"mlp-training"``): part of every key,
        and the subfolder of the entries.

    Examples
    --------
    >>> import tempfile, torch
    >>> cache = TensorCache(tempfile.mkdtemp(), "doc")
    >>> key = cache.key(x=np.arange(3), seed=0)
    >>> cache.load(key) is None
    True
    >>> cache.store(key, {"w": torch.ones(2)}, {"epochs": 3})
    >>> tensors, meta = cache.load(key)
    >>> tensors["w"].tolist(), meta
    ([1.0, 1.0], {'epochs': 3})
    """

    def __init__(self, memory, namespace):
        location = _location(memory)
        self.folder = (
            None
            if location is None
            else os.path.join(location, "skbandit-cache", namespace)
        )
        self.namespace = namespace

    @property
    def enabled(self):
        """Whether entries are stored at all."""
        return self.folder is not None

    def key(self, **call):
        """SHA-256 key of a call: its arguments, namespace and the versions.

        Arrays (and tensors, sparse matrices) count by contents, classes and
        functions by name, everything else by ``repr``.
        """
        import torch

        versions = {"skbandit": __version__, "torch": torch.__version__}
        return content_digest((_FORMAT, self.namespace, versions, call))

    def _path(self, key):
        return os.path.join(self.folder, f"{key}.pt")

    def load(self, key):
        """``(tensors, meta)`` of the entry of ``key``, or None on a miss.

        An entry that cannot be read safely, answers another call or fails
        its digest is a miss, with a :class:`RuntimeWarning`; the next
        :meth:`store` replaces it.
        """
        if not self.enabled or not os.path.exists(self._path(key)):
            return None
        try:
            tensors, meta = self._read(key)
        except Exception as exc:  # any unreadable entry is recomputed
            warnings.warn(
                f"discarding the cache entry {self._path(key)!r}: {exc}; "
                "computing it again",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        return tensors, meta

    def _read(self, key):
        import torch

        with warnings.catch_warnings():
            # torch's note on a foreign pickle protocol: the entry is refused
            # anyway, with a warning of ours that says why.
            warnings.simplefilter("ignore", UserWarning)
            entry = torch.load(self._path(key), map_location="cpu", weights_only=True)
        if not isinstance(entry, dict) or entry.get("format") != _FORMAT:
            raise ValueError("it is not an entry of this cache's format")
        if entry.get("key") != key:
            raise ValueError("it answers another call (an entry copied over this one)")
        tensors, meta = entry.get("tensors"), entry.get("meta")
        if not isinstance(tensors, dict) or not all(
            isinstance(name, str) and isinstance(value, torch.Tensor)
            for name, value in tensors.items()
        ):
            raise ValueError("its tensors are not a dict of named tensors")
        if not isinstance(meta, str):
            raise ValueError("its metadata is not JSON text")
        if entry.get("digest") != content_digest((key, tensors, meta)):
            raise ValueError("its contents fail their digest (damaged)")
        return tensors, json.loads(meta)

    def get_or_compute(self, key, compute, encode, decode):
        """``(value, hit)``: the cached value of ``key``, or ``compute()``'s.

        Parameters
        ----------
        key : str
            From :meth:`key`.
        compute : callable
            ``compute() -> value`` on a miss.
        encode : callable
            ``encode(value) -> (tensors, meta)``: what is stored.
        decode : callable
            ``decode(tensors, meta) -> value``; an entry it cannot decode (a
            state dict of other shapes, say) is recomputed with a warning.
        """
        entry = self.load(key)
        if entry is not None:
            try:
                return decode(*entry), True
            except Exception as exc:  # a well-formed entry of the wrong shape
                warnings.warn(
                    f"discarding the cache entry {self._path(key)!r}: it does "
                    f"not decode ({exc}); computing it again",
                    RuntimeWarning,
                    stacklevel=2,
                )
        value = compute()
        self.store(key, *encode(value))
        return value, False

    def store(self, key, tensors, meta):
        """Write the entry of ``key``: named tensors and JSON-able ``meta``."""
        import torch

        if not self.enabled:
            return
        tensors = {name: value.detach().cpu() for name, value in tensors.items()}
        # default=float: numpy scalars in training histories are plain numbers
        meta = json.dumps(meta, sort_keys=True, default=float)
        entry = {
            "format": _FORMAT,
            "key": key,
            "tensors": tensors,
            "meta": meta,
            "digest": content_digest((key, tensors, meta)),
        }
        os.makedirs(self.folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(entry, file)
            os.replace(temporary, self._path(key))
        except BaseException:
            os.unlink(temporary)
            raise


class ProcessCache:
    """The most recently used entries of this process, in memory.

    Entries are ``(tensors, meta)`` under a :meth:`TensorCache.key`, as a
    :class:`TensorCache` holds them: ``meta`` is kept as JSON and every
    :meth:`get` decodes a fresh copy; the tensors are copied in and handed
    out as the stored copies, so callers must not modify them (load them
    into a module instead). The least
    recently used entries are dropped once the tensors exceed ``max_bytes``;
    an entry larger than that is not kept. Safe to share between threads.

    Parameters
    ----------
    max_bytes : int
        Bytes of tensors kept; 0 keeps nothing.

    Examples
    --------
    >>> import torch
    >>> cache = ProcessCache(max_bytes=64)
    >>> cache.put("a", {"w": torch.zeros(4)}, {"epochs": 3})
    >>> cache.get("a")[1], cache.get("b")
    ({'epochs': 3}, None)
    >>> cache.put("b", {"w": torch.zeros(16)}, {})  # 64 bytes: "a" goes
    >>> cache.get("a"), len(cache)
    (None, 1)
    """

    def __init__(self, max_bytes):
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()
        self.max_bytes = max_bytes

    @property
    def max_bytes(self):
        """Bytes of tensors kept; setting it drops entries beyond it now."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value):
        with self._lock:
            self._max_bytes = value
            self._trim()

    def _trim(self):
        while sum(_nbytes(t) for t, _ in self._entries.values()) > self._max_bytes:
            self._entries.popitem(last=False)

    def __len__(self):
        return len(self._entries)

    @property
    def nbytes(self):
        """Bytes of the tensors held."""
        with self._lock:
            return sum(_nbytes(tensors) for tensors, _ in self._entries.values())

    def get(self, key):
        """``(tensors, meta)`` of ``key``, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        tensors, meta = entry
        return tensors, json.loads(meta)

    def put(self, key, tensors, meta):
        """Keep a copy of ``tensors`` (on the CPU) and ``meta`` under ``key``."""
        tensors = {
            name: value.detach().cpu().clone() for name, value in tensors.items()
        }
        if _nbytes(tensors) > self.max_bytes:
            return
        meta = json.dumps(meta, sort_keys=True, default=float)
        with self._lock:
            self._entries[key] = (tensors, meta)
            self._entries.move_to_end(key)
            self._trim()

    def clear(self):
        """Drop every entry."""
        with self._lock:
            self._entries.clear()


def _nbytes(tensors):
    return sum(value.numel() * value.element_size() for value in tensors.values())
