"""How much to prune in each round: ratios, parameter counts and latency.

Iterative pruning reaches its target in ``n_rounds`` geometric steps: after
round ``r`` of ``R`` a layer keeps ``n * (k / n) ** (r / R)`` of its ``n``
units (``k`` the final size), or the network keeps
``P0 * (T / P0) ** (r / R)`` parameters. Removing the same fraction of what
is left in every round lets later rounds re-measure the units that matter.
"""

import time

import numpy as np
import torch

from ._selection import removal_counts

__all__ = ["param_cost", "round_counts", "round_param_targets", "latency_ratio"]


def param_cost(model, groups):
    """Parameter count of ``model`` as a function of the groups' sizes.

    Every parameter of a producer scales with its group's size (dimension 0)
    and a consumer's weight with the size of the group it reads (dimension
    1), which is exact for linear, convolution and batch-norm layers.

    Returns
    -------
    cost : callable
        ``cost(sizes) -> int`` for a list of sizes, one per group.

    Examples
    --------
    >>> from torch import nn
    >>> from skbandit.pruning import find_unit_groups
    >>> net = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3))
    >>> cost = param_cost(net, find_unit_groups(net))
    >>> cost([10]), cost([5])
    (83, 43)
    """
    producer_of = {n: i for i, g in enumerate(groups) for n in g.producers}
    consumer_of = {n: i for i, g in enumerate(groups) for n in g.consumers}
    terms = []  # (numel, group scaling dim 0 or None, group scaling dim 1 or None)
    for name, module in model.named_modules():
        for param in module.parameters(recurse=False):
            out_group = producer_of.get(name)
            in_group = consumer_of.get(name) if param.dim() >= 2 else None
            terms.append((param.numel(), out_group, in_group))
    full = [g.size for g in groups]

    def cost(sizes):
        total = 0.0
        for numel, out_group, in_group in terms:
            scale = 1.0
            if out_group is not None:
                scale *= sizes[out_group] / full[out_group]
            if in_group is not None:
                scale *= sizes[in_group] / full[in_group]
            total += numel * scale
        return int(round(total))

    return cost


def round_counts(sizes, prune_ratio, scope, n_rounds):
    """Units to remove in each round (per group, or a total per round).

    Examples
    --------
    >>> round_counts([16], 0.75, "layer", 2)  # 16 -> 8 -> 4
    [[8], [4]]
    >>> round_counts([8, 8], 0.5, "global", 1)
    [8]
    """
    final = removal_counts(sizes, prune_ratio, scope)
    plan, done = [], None
    for r in range(1, n_rounds + 1):
        fraction = r / n_rounds
        if scope == "layer":
            kept = [_geometric(n, n - f, fraction) for n, f in zip(sizes, final)]
            removed = [n - k for n, k in zip(sizes, kept)]
            previous = done or [0] * len(sizes)
            plan.append([a - b for a, b in zip(removed, previous)])
        else:
            total = sum(sizes)
            removed = total - _geometric(total, total - final, fraction)
            plan.append(removed - (done or 0))
        done = removed
    return plan


def _geometric(start, end, fraction):
    """``start * (end / start) ** fraction``, exactly ``end`` at fraction 1."""
    if fraction >= 1:
        return end
    return int(round(start * (end / start) ** fraction))


def round_param_targets(params_before, target_params, n_rounds):
    """Parameter count to reach after each round (geometric, exact at the end).

    Examples
    --------
    >>> round_param_targets(1000, 250, 2)
    [500, 250]
    """
    return [
        _geometric(params_before, target_params, r / n_rounds)
        for r in range(1, n_rounds + 1)
    ]


@torch.no_grad()
def latency_ratio(model, pruned, X, repeats=15):
    """Median inference time of ``pruned`` over that of ``model`` on ``X``."""

    def median(net):
        net(X)  # warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            net(X)
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    return median(pruned) / median(model)
