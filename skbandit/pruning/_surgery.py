"""Removing units physically.

Removal slices the producers' rows and the consumers' input columns, so the
pruned network has smaller weight tensors (fewer parameters, faster inference),
not masks. Optional compensation puts back what the removed units contributed
to their consumer (see :func:`remove_units`).
"""

import copy

import numpy as np
import torch
from torch import nn

from .._options import COMPENSATIONS
from ._conv import is_plain_conv, unfold
from ._units import unit_view

__all__ = ["remove_units"]


def _slice_(module, dim, keep, expected=None):
    """Keep ``keep`` along ``dim`` of every per-unit parameter and buffer."""
    for name, tensor in list(module.named_parameters(recurse=False)) + list(
        module.named_buffers(recurse=False)
    ):
        if tensor.dim() > dim and tensor.dim() > 0:
            if expected is not None and tensor.shape[dim] != expected:
                raise ValueError(
                    f"{type(module).__name__}.{name} has {tensor.shape[dim]} "
                    f"entries along dimension {dim}; the unit group spans "
                    f"{expected}."
                )
            sliced = tensor.detach().index_select(dim, keep).clone()
            if isinstance(tensor, nn.Parameter):
                sliced = nn.Parameter(sliced, requires_grad=tensor.requires_grad)
            setattr(module, name, sliced)


def _shrink_producer(module, keep, expected=None):
    _slice_(module, 0, keep, expected)
    for attr in ("out_features", "out_channels", "num_features"):
        if hasattr(module, attr):
            setattr(module, attr, len(keep))


def _shrink_consumer(module, keep, expected=None):
    if expected is not None and module.weight.shape[1] != expected:
        raise ValueError(
            f"{type(module).__name__} reads {module.weight.shape[1]} input "
            f"features; the unit group spans {expected}."
        )
    weight = module.weight.detach().index_select(1, keep).clone()
    module.weight = nn.Parameter(weight, requires_grad=module.weight.requires_grad)
    for attr in ("in_features", "in_channels"):
        if hasattr(module, attr):
            setattr(module, attr, len(keep))


@torch.no_grad()
def _fold_mean(consumer, removed, means):
    """Add the removed units' mean contribution to the consumer's bias.

    Exact for a linear consumer when the removed units are constant; for a
    convolution it ignores zero padding at the borders.
    """
    if consumer.bias is None:
        consumer.bias = nn.Parameter(
            consumer.weight.new_zeros(consumer.weight.shape[0])
        )
    w = consumer.weight[:, removed]
    contribution = (w.flatten(2).sum(2) if w.dim() > 2 else w) @ means[removed]
    consumer.bias += contribution


@torch.no_grad()
def _refit_lstsq(consumer, inputs, targets, ridge):
    """Refit a linear or convolution consumer on its kept inputs.

    ``inputs`` is the consumer's input restricted to the kept units, as it
    reads it; ``targets`` its original output. A convolution is a linear map
    of its input's patches, so both reduce to ridge regression on rows of
    features (:func:`_ridge`): a ``Linear`` has one row per sample (and
    position), a convolution one per sample and output position, its patches
    unfolded with the layer's own padding, stride and dilation.
    """
    if isinstance(consumer, nn.Linear):
        features = inputs.reshape(-1, inputs.shape[-1])
        weight, bias = _ridge(features, targets.reshape(-1, targets.shape[-1]), ridge)
        new_weight = weight.T
    elif is_plain_conv(consumer):
        patches = unfold(inputs, consumer)  # (batch, in * k, positions)
        features = patches.transpose(1, 2).reshape(-1, patches.shape[1])
        outputs = targets.flatten(2).transpose(1, 2).reshape(-1, targets.shape[1])
        weight, bias = _ridge(features, outputs, ridge)
        new_weight = weight.T.reshape(consumer.weight.shape)
    else:
        raise ValueError(
            "compensate='lstsq' refits Linear and Conv1d/Conv2d consumers "
            "(ungrouped, zero or no padding); use 'mean' or 'none' for "
            f"{type(consumer).__name__}."
        )
    consumer.weight.copy_(new_weight.to(consumer.weight.dtype))
    if consumer.bias is None:
        consumer.bias = nn.Parameter(
            consumer.weight.new_zeros(consumer.weight.shape[0])
        )
    consumer.bias.copy_(bias.to(consumer.bias.dtype))


#: Rows (samples x positions) a least-squares refit uses at most; more are
#: subsampled with a fixed seed, which keeps the solve cheap on images.
_MAX_LSTSQ_ROWS = 50_000


def _ridge(H, Z, ridge):
    """``min ||[H 1] [W b]^T - Z||^2 + ridge * n * ||W||^2`` in float64.

    The bias is not penalised. Returns ``W`` of shape ``(p, outputs)`` and
    ``b`` of shape ``(outputs,)``.
    """
    if H.shape[0] > _MAX_LSTSQ_ROWS:
        generator = torch.Generator(device=H.device).manual_seed(0)
        rows = torch.randperm(H.shape[0], generator=generator, device=H.device)
        H, Z = H[rows[:_MAX_LSTSQ_ROWS]], Z[rows[:_MAX_LSTSQ_ROWS]]
    H = H.double()
    n, p = H.shape
    A = torch.cat([H, H.new_ones(n, 1)], dim=1)
    penalty = torch.full((p + 1,), ridge * n, dtype=H.dtype, device=H.device)
    penalty[-1] = 0.0
    gram = A.T @ A + torch.diag(penalty)
    rhs = A.T @ Z.double()
    solution, info = torch.linalg.solve_ex(gram, rhs)
    if info.any() or not torch.isfinite(solution).all():
        # Numerically singular (e.g. a constant unit of large magnitude, whose
        # column is collinear with the bias): the least-norm solution.
        solution = torch.linalg.pinv(gram, hermitian=True) @ rhs
    return solution[:-1], solution[-1]


@torch.no_grad()
def _consumer_outputs(model, names, X):
    """Output of each named module on ``X``."""
    captured, handles = {}, []
    for name in names:

        def hook(module, args, output, name=name):
            # A copy: a later in-place module (ReLU(inplace=True)) would
            # overwrite the output itself.
            captured[name] = output.clone()

        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        model(X)
    finally:
        for handle in handles:
            handle.remove()
    return captured


@torch.no_grad()
def remove_units(model, groups, removals, compensate="none", X=None, ridge=1e-4):
    """Return a physically smaller copy of ``model`` without the removed units.

    Groups are processed in forward order, each seeing the network with the
    earlier groups already removed.

    Parameters
    ----------
    model : torch.nn.Module
        Left untouched.
    groups : list of UnitGroup
    removals : list of array-like of int
        Units to remove, per group (see :func:`select_removals`).
    compensate : {"none", "mean", "lstsq"}, default="none"
        ``"none"`` drops the units (the same as zeroing them). ``"mean"`` adds
        each removed unit's mean activation on ``X`` times its outgoing
        weights to the consumer's bias (exact for a unit that is constant on
        ``X``). ``"lstsq"`` refits the consumer's weights and bias on the kept
        units by ridge regression on ``X`` so that it reproduces the original
        network's pre-activations (exact when a removed unit is a linear
        combination of kept ones).
    X : torch.Tensor, default=None
        Data for the compensation (required unless ``compensate="none"``).
    ridge : float, default=1e-4
        Ridge penalty of ``"lstsq"``, relative to the number of samples.

    Returns
    -------
    pruned : torch.nn.Module
    """
    if compensate not in COMPENSATIONS:
        raise ValueError(
            f"compensate must be one of {COMPENSATIONS}, got {compensate!r}."
        )
    if compensate != "none" and X is None:
        raise ValueError(f"compensate={compensate!r} needs data X.")
    original, pruned = model, copy.deepcopy(model)
    for group, removed in zip(groups, removals):
        removed = torch.as_tensor(np.asarray(removed, dtype=np.int64))
        if removed.numel() == 0:
            continue
        keep_mask = torch.ones(group.size, dtype=torch.bool)
        keep_mask[removed] = False
        if keep_mask.sum() == 0:
            raise ValueError(f"Cannot remove every unit of group {group.name!r}.")
        _remove_group(original, pruned, group, removed, keep_mask, compensate, X, ridge)
    return pruned


def _remove_group(original, pruned, group, removed, keep_mask, compensate, X, ridge):
    if hasattr(group, "remove"):  # e.g. a GraphGroup: removed by its graph
        return group.remove(original, pruned, removed, compensate, X, ridge)
    device = next(pruned.parameters()).device
    keep = torch.nonzero(keep_mask).flatten()
    rows = group.producer_index(keep).to(device)
    # A unit spanning several consumer features (unit_width) drops them all.
    columns = group.consumer_index(keep).to(device)
    removed_columns = group.consumer_index(removed).to(device)
    if compensate != "none":
        inputs = _consumer_inputs_raw(pruned, group.consumers[0], X)
        # One mean per unit (over samples, positions and its features), the
        # value the pulls fill a masked unit with.
        means = group.feature_values(unit_view(inputs, group).mean((0, 2)))
    for name in group.producers:
        _shrink_producer(pruned.get_submodule(name), rows, group.n_rows)
    for name in group.consumers:
        consumer = pruned.get_submodule(name)
        if compensate == "mean":
            _fold_mean(consumer, removed_columns, means)
        _shrink_consumer(consumer, columns, group.n_features)
        if compensate == "lstsq":
            targets = _consumer_outputs(original, [name], X)[name]
            kept = inputs.index_select(group.feature_dim, columns)
            _refit_lstsq(consumer, kept, targets, ridge)


@torch.no_grad()
def _consumer_inputs_raw(model, name, X):
    """Input of the module ``name`` on ``X``, as it reads it."""
    captured = {}

    def hook(module, args):
        captured["x"] = args[0]

    handle = model.get_submodule(name).register_forward_pre_hook(hook)
    try:
        model(X)
    finally:
        handle.remove()
    return captured["x"]
