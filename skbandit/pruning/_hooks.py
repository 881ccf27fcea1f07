"""Pulls and removal for dependency-graph groups (:class:`GraphGroup`).

A pull on any graph masks the group's units where every consumer reads them
(forward pre-hooks, see :meth:`GraphGroup.mask_hooks`). To evaluate many arms
in one forward pass, the minibatch is replicated once per arm and each
replica carries its own mask: a model in eval mode treats samples
independently, so replica ``i`` computes exactly the naive pull of arm ``i``.
Removal is Torch-Pruning's (it knows how every coupled layer shrinks); the
compensation around it is skbandit's (:func:`remove_units`).
"""

import torch
from torch import nn

from ._graph import _n_inputs, graph_of
from ._surgery import _consumer_inputs_raw, _consumer_outputs, _fold_mean, _refit_lstsq

__all__ = ["replicated_arm_values", "remove_graph_units"]

#: Replicated samples per forward pass (bounds peak memory).
MAX_ROWS = 4096


@torch.no_grad()
def replicated_arm_values(group, model, arms, X, y, metric, fills=None):
    """Mean metric of ``model`` with each arm of ``group`` masked alone.

    Parameters
    ----------
    group : GraphGroup
    model : torch.nn.Module
        In eval mode.
    arms : sequence of int
        Unit indices (repeats allowed).
    X, y : torch.Tensor
        The minibatch.
    metric : callable
        Per-sample metric ``metric(outputs, y) -> (n_samples,)``.
    fills : torch.Tensor of shape (group.size,), default=None
        What a masked unit reads as (default 0).

    Returns
    -------
    values : torch.Tensor of shape (len(arms),)
    """
    arms = torch.as_tensor(arms, dtype=torch.long).flatten()
    n = X.shape[0]
    chunk = max(1, MAX_ROWS // n)
    values = []
    for i in range(0, len(arms), chunk):
        part = arms[i : i + chunk]
        keep = torch.ones(len(part), group.size, dtype=torch.float64)
        keep[torch.arange(len(part)), part] = 0
        handles = group.mask_hooks(model, keep, fills)
        try:
            out = model(X.repeat(len(part), *[1] * (X.dim() - 1)))
        finally:
            for handle in handles:
                handle.remove()
        targets = y.repeat(len(part), *[1] * (y.dim() - 1))
        values.append(metric(out, targets).view(len(part), n).mean(dim=1))
    if not values:
        return next(model.parameters()).new_empty(0)
    return torch.cat(values)


@torch.no_grad()
def remove_graph_units(group, pruned, removed, compensate, X, ridge):
    """Remove ``removed`` units of ``group`` from ``pruned``, in place.

    ``"mean"`` folds each removed unit's mean (as the first consumer reads
    it, the value the pulls fill it with) times its weights into every
    consumer's bias; ``"lstsq"`` refits every consumer, in forward order, on
    its kept inputs to reproduce its output before the removal (not the
    unpruned network's: in a coupled graph a consumer may already have lost
    output channels to a group removed earlier). A consumer that is not a
    ``Linear`` or plain convolution cannot be refitted: ``ValueError``.

    Column indices come from the dependency graph of ``pruned`` as it is
    now, not from ``group.members``: removing another group concatenated
    with this one has moved them.
    """
    removed = torch.as_tensor(removed, dtype=torch.long).flatten().tolist()
    consumers = [m.name for m in group.members if m.consumes]
    if compensate == "lstsq":
        check_refittable(group)
    dg = graph_of(pruned, group.example_input)
    root = pruned.get_submodule(group.members[0].name)
    prune_out = dg.get_pruner_of_module(root).prune_out_channels
    doomed = dg.get_pruning_group(root, prune_out, removed)
    if compensate == "mean":
        every = dg.get_pruning_group(root, prune_out, list(range(group.size)))
        means = _unit_means(pruned, dg, every, consumers[0], X, group.size)
        for name, item in _consumer_items(dg, doomed, consumers):
            module = pruned.get_submodule(name)
            full = means.new_zeros(_n_inputs(module))
            full[item.idxs] = means[item.root_idxs]
            _fold_mean(module, torch.as_tensor(item.idxs), full)
    if compensate == "lstsq":
        targets = _consumer_outputs(pruned, consumers, X)
    doomed.prune()
    if compensate == "lstsq":
        order = {name: i for i, (name, _) in enumerate(pruned.named_modules())}
        for name in sorted(consumers, key=order.__getitem__):
            inputs = _consumer_inputs_raw(pruned, name, X)
            _refit_lstsq(pruned.get_submodule(name), inputs, targets[name], ridge)


def check_refittable(group):
    """``ValueError`` when a consumer of ``group`` also produces its units (a
    layer applied to its own output, e.g. with tied weights): the refit of
    its kept inputs cannot reproduce the outputs it loses."""
    producers = {m.name for m in group.members if not m.consumes}
    for member in group.members:
        if member.consumes and member.name in producers:
            raise ValueError(
                f"compensate='lstsq' cannot refit {member.name!r}: "
                f"{member.name!r} reads the units it produces (a layer applied "
                f"to its own output) in group {group.name!r}; use "
                "compensate='mean' or 'none'."
            )


def _consumer_items(dg, tp_group, names):
    """``(name, item)`` of the group's items that remove consumer inputs."""
    for item in tp_group:
        name = dg._module2name.get(item.dep.target.module)
        handler = item.dep.handler
        reads = dg.is_in_channel_pruning_fn(handler)
        if name in names and reads and not dg.is_out_channel_pruning_fn(handler):
            yield name, item


def _unit_means(model, dg, every, consumer, X, size):
    """Mean of each unit over samples, positions and its features, as
    ``consumer`` reads it (the pulls' fill values)."""
    ((_, item),) = [p for p in _consumer_items(dg, every, [consumer])]
    x = _consumer_inputs_raw(model, consumer, X)
    dim = -1 if isinstance(model.get_submodule(consumer), nn.Linear) else 1
    columns = x.movedim(dim, 1)[:, item.idxs].transpose(0, 1).flatten(1).mean(1)
    units = torch.as_tensor(item.root_idxs, device=columns.device)
    total = columns.new_zeros(size).index_add_(0, units, columns)
    return total / torch.bincount(units, minlength=size).to(columns.dtype)
