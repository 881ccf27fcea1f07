"""How much to prune in each round: ratios, parameter counts and latency.

Iterative pruning reaches its target in ``n_rounds`` geometric steps: after
round ``r`` of ``R`` a layer keeps ``n * (k / n) ** (r / R)`` of its ``n``
units (``k`` the final size), or the network keeps
``P0 * (T / P0) ** (r / R)`` parameters. Removing the same fraction of what
is left in every round lets later rounds re-measure the units that matter.
"""

import time

import torch

from ._layers import layer_type
from ._selection import removal_counts

__all__ = [
    "param_cost",
    "mac_cost",
    "round_count",
    "round_param_target",
    "latency_ratio",
]


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
    producer_of, consumer_of = _owners(groups)
    terms = []  # (numel, group scaling dim 0 or None, group scaling dim 1 or None)
    for name, module in model.named_modules():
        for param in module.parameters(recurse=False):
            out_group = producer_of.get(name)
            in_group = consumer_of.get(name) if param.dim() >= 2 else None
            terms.append((param.numel(), out_group, in_group))
    return _scaled_cost(groups, terms)


def mac_cost(model, groups, example_input):
    """Multiply-accumulates of one sample as a function of the groups' sizes.

    The deterministic stand-in for inference latency that ``target_latency``
    is met with: a linear or convolution layer costs its weight's size times
    the positions it is applied at (1 for a ``Linear`` on a vector, the
    output's spatial size for a convolution), found with one forward pass of
    ``example_input``; its producer and consumer scaling follow
    :func:`param_cost`. Elementwise layers, normalisation and pooling are
    not counted: they are cheap next to the matrix products, and pruning
    shrinks them in the same proportion.

    Returns
    -------
    cost : callable
        ``cost(sizes) -> int`` for a list of sizes, one per group.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skbandit.pruning import find_unit_groups
    >>> net = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3))
    >>> cost = mac_cost(net, find_unit_groups(net), torch.zeros(1, 4))
    >>> cost([10]), cost([5])
    (70, 35)
    """
    producer_of, consumer_of = _owners(groups)
    positions = _positions(model, example_input[:1])
    terms = [
        (
            model.get_submodule(name).weight.numel() * count,
            producer_of.get(name),
            consumer_of.get(name),
        )
        for name, count in positions.items()
    ]
    return _scaled_cost(groups, terms)


@torch.no_grad()
def _positions(model, example_input):
    """Positions each linear or convolution layer is applied at, per sample."""
    positions, handles = {}, []
    for name, module in model.named_modules():
        entry = layer_type(module)
        if entry is not None and entry.weighted:

            def hook(module, args, output, name=name, entry=entry):
                positions[name] = positions.get(name, 0) + entry.positions(output)

            handles.append(module.register_forward_hook(hook))
    try:
        model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return positions


def _owners(groups):
    """Module name -> index of the group it produces, and of the one it reads."""
    producer_of = {n: i for i, g in enumerate(groups) for n in g.producers}
    consumer_of = {n: i for i, g in enumerate(groups) for n in g.consumers}
    return producer_of, consumer_of


def _scaled_cost(groups, terms):
    """``cost(sizes)``: the ``(numel, out group, in group)`` terms, each scaled
    by its groups' sizes relative to their full sizes."""
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


def round_count(sizes, prune_ratio, scope, n_rounds, r):
    """Units to remove in round ``r`` (0-based) of ``n_rounds``.

    Computed for one round at a time, so that a plan of many rounds costs no
    memory: per group (``scope="layer"``) a list, globally an int.

    Examples
    --------
    >>> [round_count([16], 0.75, "layer", 2, r) for r in range(2)]  # 16 -> 8 -> 4
    [[8], [4]]
    >>> round_count([8, 8], 0.5, "global", 1, 0)
    8
    """
    final = removal_counts(sizes, prune_ratio, scope)

    def removed_in_round(n, n_removed):
        end = n - n_removed
        return _removed_by(n, end, r + 1, n_rounds) - _removed_by(n, end, r, n_rounds)

    if scope == "layer":
        return [removed_in_round(n, f) for n, f in zip(sizes, final)]
    return removed_in_round(sum(sizes), final)


def _removed_by(start, end, r, n_rounds):
    """Units removed after ``r`` of ``n_rounds`` geometric steps ``start -> end``."""
    return start - _geometric(start, end, r / n_rounds)


def _geometric(start, end, fraction):
    """``start * (end / start) ** fraction``, exactly ``end`` at fraction 1."""
    if fraction >= 1:
        return end
    return int(round(start * (end / start) ** fraction))


def round_param_target(params_before, target_params, n_rounds, r):
    """Parameter count to reach after round ``r`` (0-based) of ``n_rounds``.

    Examples
    --------
    >>> [round_param_target(1000, 250, 2, r) for r in range(2)]
    [500, 250]
    """
    return _geometric(params_before, target_params, (r + 1) / n_rounds)


@torch.no_grad()
def latency_ratio(model, pruned, X, repeats=15):
    """Measured inference time of ``pruned`` over that of ``model`` on ``X``.

    The two networks run alternately on one torch thread, ``repeats`` times
    each after a warm-up, and each keeps its fastest time: interference from
    other processes only ever adds time, so the minimum is the most stable
    estimate, and on a busy machine a second thread's synchronisation can
    cost far more than the arithmetic. It is still a measurement, which is
    why ``target_latency`` is met with :func:`mac_cost` and this ratio is
    only reported.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = {}
        for net in (model, pruned):
            net(X)  # warm up
            best[net] = float("inf")
        for _ in range(repeats):
            for net in (model, pruned):
                start = time.perf_counter()
                net(X)
                best[net] = min(best[net], time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return best[pruned] / best[model]
