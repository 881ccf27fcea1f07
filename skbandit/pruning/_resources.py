"""Memory that least-squares refits need, checked before any work.

A refit of a consumer reading ``p`` inputs (``compensate="lstsq"``, and the
``"obs"`` baseline) holds a ``(p + 1) x (p + 1)`` float64 Gram matrix and its
inverse, and inverts a copy: 24 GB at ``p = 30 000``, 24 TB at
``p = 10**6``. Such widths can
train, so without a check the request fails only once scoring starts (after
the training, in an estimator) and with an allocator's message that names
neither the parameter nor the size. These helpers estimate that memory and
compare it with what the machine has free.
"""

import os

import torch

from ._layers import layer_type

__all__ = [
    "GB",
    "REFIT_HELD",
    "CGROUP_ROOT",
    "available_memory",
    "cgroup_headroom",
    "check_refit_memory",
    "format_gb",
    "refit_bytes",
    "refit_widths",
]

#: Bytes per gigabyte in the messages (decimal, as ``free -g`` and vendors).
GB = 1e9

#: Float64 ``(p + 1) x (p + 1)`` matrices each refit consumer holds: the Gram
#: matrix and its inverse (the bandits keep both, for every consumer, while
#: they pull). Inverting takes one more, of the widest consumer. Measured peaks
#: were 3.1 to 3.5 such matrices above a fit without refits (one layer of 1500
#: to 8000 units): the estimate is a lower bound, a request above it cannot fit.
REFIT_HELD = 2


def format_gb(n_bytes):
    """``n_bytes`` in GB, for a message.

    Examples
    --------
    >>> format_gb(16_000_064_000_016), format_gb(6.4e9), format_gb(128_000_000)
    ('16,000 GB', '6.4 GB', '0.128 GB')
    """
    size = n_bytes / GB
    return f"{size:,.0f} GB" if size >= 1000 else f"{size:.3g} GB"


def refit_bytes(widths):
    """Bytes of the least-squares refits of consumers of ``widths`` inputs.

    ``REFIT_HELD`` float64 matrices of ``(p + 1) ** 2`` per consumer, and the
    working copy that inverting the widest one takes.

    Parameters
    ----------
    widths : iterable of int
        Inputs of each refit consumer (a hidden layer's units, for an MLP).

    Returns
    -------
    int

    Examples
    --------
    >>> refit_bytes([10])  # 3 matrices of 11 x 11 float64
    2904
    >>> refit_bytes([10, 5]) == 8 * (2 * 11**2 + 2 * 6**2 + 11**2)
    True
    >>> format_gb(refit_bytes([10**6]))
    '24,000 GB'
    """
    squares = [(int(p) + 1) ** 2 for p in widths]
    return 8 * (REFIT_HELD * sum(squares) + max(squares, default=0))


def refit_widths(model, groups):
    """Inputs of each consumer a least-squares refit regresses, by name.

    A ``Linear`` consumer regresses on its input features, a convolution on
    its input patches (channels times kernel positions); other consumers are
    not refit.

    Parameters
    ----------
    model : torch.nn.Module
    groups : list of UnitGroup or GraphGroup

    Returns
    -------
    dict of str to int
    """
    widths = {}
    for group in groups:
        for name in group.consumers:
            consumer = model.get_submodule(name)
            entry = layer_type(consumer)
            if entry is not None and entry.weighted:
                widths[name] = consumer.weight[0].numel()
    return widths


#: Where the memory controller of this process's cgroup is read (the
#: namespace's root, as containers mount it): v2's ``memory.max``, or v1's
#: ``memory/memory.limit_in_bytes``.
CGROUP_ROOT = "/sys/fs/cgroup"

#: A v1 "no limit" is the largest page-aligned 64-bit value; anything this
#: large is no limit.
_NO_CGROUP_LIMIT = 2**62


def _read_int(path):
    with open(path) as f:
        text = f.read().strip()
    return None if text == "max" else int(text)


def _inactive_file(path, key):
    """Reclaimable page cache counted in a cgroup's usage (``memory.stat``)."""
    with open(path) as f:
        for line in f:
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def cgroup_headroom(root=CGROUP_ROOT):
    """Bytes this process's cgroup may still allocate, or None (no limit, or
    no cgroup memory controller readable at ``root``).

    The limit less the usage, the usage without its inactive page cache
    (which the kernel reclaims before it kills), as ``docker stats`` counts.
    Containers cap memory this way while ``/proc/meminfo`` shows the host's.
    """
    layouts = (
        ("memory.max", "memory.current", "memory.stat", "inactive_file"),
        (
            "memory/memory.limit_in_bytes",
            "memory/memory.usage_in_bytes",
            "memory/memory.stat",
            "total_inactive_file",
        ),
    )
    for limit_file, usage_file, stat_file, cache_key in layouts:
        try:
            limit = _read_int(os.path.join(root, limit_file))
        except (OSError, ValueError):
            continue
        if limit is None or limit >= _NO_CGROUP_LIMIT:
            return None
        try:
            usage = _read_int(os.path.join(root, usage_file))
            cache = _inactive_file(os.path.join(root, stat_file), cache_key)
        except (OSError, ValueError):
            return None
        return max(limit - max(usage - cache, 0), 0)
    return None


def _host_available():
    """The host's ``MemAvailable`` (``/proc/meminfo``, which counts
    reclaimable caches), else its free pages (``os.sysconf``), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows, macOS
        return None


def available_memory(device="cpu"):
    """Bytes that can be allocated now on ``device``, or None where unknown.

    On the CPU the smaller of the host's available memory (``MemAvailable``
    of ``/proc/meminfo``, else its free pages) and the headroom of this
    process's cgroup (:func:`cgroup_headroom`: a container's limit); a CUDA
    device's free memory. None on other systems and devices: no check is
    made there.

    Examples
    --------
    >>> available = available_memory()
    >>> available is None or available > 0
    True
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    known = [b for b in (_host_available(), cgroup_headroom()) if b is not None]
    return min(known) if known else None


def check_refit_memory(model, groups, reason, device):
    """Refuse refits whose Gram matrices exceed the memory ``device`` has free.

    Parameters
    ----------
    model : torch.nn.Module
    groups : list of UnitGroup or GraphGroup
        The groups whose consumers are refit.
    reason : str
        The setting that asks for the refits, e.g. ``"compensate='lstsq'"``.
    device : torch.device or str

    Raises
    ------
    MemoryError
        Naming ``reason``, the size in GB and the widest consumer.
    """
    widths = refit_widths(model, groups)
    needed = refit_bytes(widths.values())
    available = available_memory(device)
    if not widths or available is None or needed <= available:
        return
    widest = max(widths, key=widths.get)
    raise MemoryError(
        f"{reason} needs about {format_gb(needed)} for the least-squares Gram "
        f"matrices of the layers it refits ({widest!r} reads {widths[widest]} "
        f"inputs: {format_gb(refit_bytes([widths[widest]]))}), but "
        f"{format_gb(available)} of memory is available on {device}. Use "
        "compensate='mean' or 'none' (and a policy other than 'obs'), or "
        "prune narrower layers."
    )
