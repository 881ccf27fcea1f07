"""Cached trained networks that are verified before they are trusted.

joblib recomputes a cache entry that fails to unpickle, but an entry whose
bytes were damaged and still unpickle (a flipped bit in a weight array)
would be used silently and change every result built on it. The cached
function therefore returns its value together with a SHA-256 digest of the
value's contents, and :func:`verified_call` recomputes (and re-stores) any
entry whose contents no longer match its digest.
"""

import hashlib
import warnings

import numpy as np

__all__ = ["content_digest", "with_digest", "verified_call"]


def _feed(hasher, obj):
    """Feed ``obj``'s type and contents to ``hasher``, recursively."""
    import torch

    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    hasher.update(type(obj).__name__.encode())
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().contiguous().numpy()
    if isinstance(obj, np.ndarray):
        hasher.update(f"{obj.dtype}{obj.shape}".encode())
        hasher.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _feed(hasher, key)
            _feed(hasher, value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _feed(hasher, value)
    else:
        hasher.update(repr(obj).encode())


def content_digest(obj):
    """SHA-256 of the contents of ``obj`` (modules by their state dict).

    Parameters
    ----------
    obj : object
        Nested tuples, lists and dicts of torch modules, tensors, arrays and
        plain values.

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


def with_digest(func, *args, **kwargs):
    """``(func(*args, **kwargs), its content digest)``: what a cache stores."""
    value = func(*args, **kwargs)
    return value, content_digest(value)


def verified_call(cached, *args, **kwargs):
    """Call a cached ``(value, digest)`` function; recompute a damaged entry.

    Parameters
    ----------
    cached : joblib.memory.MemorizedFunc or NotMemorizedFunc
        ``memory.cache(f)`` of a function ``f`` returning ``(value,
        content_digest(value))``.
    *args, **kwargs
        Its arguments.

    Returns
    -------
    object
        ``value``, from the cache when its contents match the stored digest,
        else recomputed (with a warning) and stored again.
    """
    value, digest = cached(*args, **kwargs)
    if content_digest(value) == digest:
        return value
    warnings.warn(
        "a cached trained network failed its integrity check (the cache file "
        "was damaged); training it again",
        RuntimeWarning,
        stacklevel=2,
    )
    (value, _), _ = cached.call(*args, **kwargs)
    return value
