"""The removal rule: which units go, given their scores and a target.

Three ways to say how much to prune, one ordering (highest score first):
a ratio per layer, a ratio over the whole network (``scope="global"``), or a
parameter count (units of all layers in one order until the network is small
enough). Every rule keeps at least one unit per layer, since an empty layer
would cut the network in two.
"""

import math
import numbers

import numpy as np

from .._options import check_prune_ratio

__all__ = [
    "select_removals",
    "removal_counts",
    "removals_by_count",
    "removals_for_params",
]


def _floor(x):
    # The epsilon keeps 0.3 * 10 at 3 despite floating point.
    return int(math.floor(x + 1e-9))


def removal_counts(sizes, prune_ratio, scope="layer"):
    """How many units ``prune_ratio`` removes: per group, or in total.

    Parameters
    ----------
    sizes : sequence of int
        Units of each group.
    prune_ratio : float in [0, 1)
    scope : {"layer", "global"}, default="layer"
        A count per group, or one count over all groups (either way at least
        one unit of each group is kept).

    Examples
    --------
    >>> removal_counts([4, 3], 0.5)
    [2, 1]
    >>> removal_counts([4, 3], 0.5, scope="global")
    3
    """
    check_prune_ratio(prune_ratio)
    if scope == "layer":
        return [min(_floor(prune_ratio * n), n - 1) for n in sizes]
    if scope == "global":
        return min(_floor(prune_ratio * sum(sizes)), sum(sizes) - len(sizes))
    raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}.")


def select_removals(scores, prune_ratio, scope="layer"):
    """Indices of the units to remove, per group.

    Per layer, the ``floor(prune_ratio * size)`` units with the highest scores
    are removed. Globally, the ``floor(prune_ratio * total)`` highest scores
    over all groups are removed. Either way at least one unit of each group
    is kept. Ties are broken by unit index (stable sort), so the rule is
    deterministic.

    Parameters
    ----------
    scores : list of ndarray
        One array per group, higher = safer to remove.
    prune_ratio : float in [0, 1)
    scope : {"layer", "global"}

    Returns
    -------
    removals : list of ndarray of int
        Sorted indices per group.

    Examples
    --------
    >>> import numpy as np
    >>> select_removals([np.array([0.1, 0.9, 0.5, 0.7])], 0.5)
    [array([1, 3])]
    """
    scores = [np.asarray(s, dtype=float) for s in scores]
    counts = removal_counts([s.size for s in scores], prune_ratio, scope)
    return removals_by_count(scores, counts)


def removals_by_count(scores, counts):
    """Remove ``counts[g]`` top units per group, or ``counts`` top units overall.

    Parameters
    ----------
    scores : list of ndarray
        One array per group, higher = safer to remove.
    counts : list of int or int
        Units to remove per group, or in total over all groups (at least one
        unit kept per group), as :func:`removal_counts` returns.

    Returns
    -------
    removals : list of ndarray of int
        Sorted indices per group.
    """
    scores = [np.asarray(s, dtype=float) for s in scores]
    if isinstance(counts, numbers.Integral):
        total = sum(s.size for s in scores)
        return _global_removals(scores, lambda sizes: total - sum(sizes) < counts)
    return [np.sort(np.argsort(-s, kind="stable")[:n]) for s, n in zip(scores, counts)]


def removals_for_params(scores, groups_cost, target):
    """Remove top units overall until the parameter count reaches ``target``.

    Parameters
    ----------
    scores : list of ndarray
    groups_cost : callable
        ``groups_cost(sizes) -> int``: parameters of the network with each
        group at the given size.
    target : int
        Parameter count to reach (at most).

    Returns
    -------
    removals : list of ndarray of int

    Raises
    ------
    ValueError
        When the target cannot be met with one unit left per group.
    """
    scores = [np.asarray(s, dtype=float) for s in scores]
    removals = _global_removals(scores, lambda sizes: groups_cost(sizes) > target)
    sizes = [s.size - len(r) for s, r in zip(scores, removals)]
    if groups_cost(sizes) > target:
        raise ValueError(
            f"target_params={target} is unreachable: with one unit left per "
            f"layer the network still has {groups_cost(sizes)} parameters."
        )
    return removals


def _global_removals(scores, want_more):
    """Walk all units by decreasing score; remove while ``want_more(sizes)``.

    A unit is skipped when it is the last of its group.
    """
    owner = np.concatenate([np.full(s.size, g) for g, s in enumerate(scores)])
    unit = np.concatenate([np.arange(s.size) for s in scores])
    order = np.argsort(-np.concatenate(scores), kind="stable")
    sizes = [s.size for s in scores]
    chosen = [[] for _ in scores]
    for i in order:
        g = owner[i]
        if not want_more(sizes):
            break
        if sizes[g] > 1:
            chosen[g].append(unit[i])
            sizes[g] -= 1
    return [np.sort(np.asarray(c, dtype=int)) for c in chosen]
