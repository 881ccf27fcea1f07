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

from ._graph import graph_of
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


def _n_inputs(module):
    return module.in_features if isinstance(module, nn.Linear) else module.in_channels


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
    """
    removed = torch.as_tensor(removed, dtype=torch.long).flatten()
    consumers = [m for m in group.members if m.consumes]
    if compensate == "mean":
        inputs = _consumer_inputs_raw(pruned, consumers[0].name, X)
        means = group.unit_view(inputs).mean((0, 2))
        every_unit = torch.arange(group.size)
        for member in consumers:
            module = pruned.get_submodule(member.name)
            full = means.new_zeros(_n_inputs(module))
            full[member.features(every_unit)] = means.repeat_interleave(member.width)
            _fold_mean(module, member.features(removed), full)
    if compensate == "lstsq":
        targets = _consumer_outputs(pruned, [m.name for m in consumers], X)
    dg = graph_of(pruned, group.example_input)
    root = pruned.get_submodule(group.members[0].name)
    pruner = dg.get_pruner_of_module(root)
    dg.get_pruning_group(root, pruner.prune_out_channels, removed.tolist()).prune()
    if compensate == "lstsq":
        order = {name: i for i, (name, _) in enumerate(pruned.named_modules())}
        for member in sorted(consumers, key=lambda m: order[m.name]):
            inputs = _consumer_inputs_raw(pruned, member.name, X)
            module = pruned.get_submodule(member.name)
            _refit_lstsq(module, inputs, targets[member.name], ridge)
