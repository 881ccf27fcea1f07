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
from ._streaming import chunk_rows
from ._units import unit_view

__all__ = ["remove_units", "RIDGE"]

#: Ridge penalty of least-squares compensation, relative to the number of rows.
RIDGE = 1e-4


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
def _design(consumer, inputs, targets):
    """Rows of the consumer's regression: (features, outputs).

    ``inputs`` is the consumer's input restricted to the kept units, as it
    reads it; ``targets`` its original output. A convolution is a linear map
    of its input's patches, so both reduce to ridge regression on rows of
    features (:func:`_solve_ridge`): a ``Linear`` has one row per sample (and
    position), a convolution one per sample and output position, its patches
    unfolded with the layer's own padding, stride and dilation.
    """
    if isinstance(consumer, nn.Linear):
        features = inputs.reshape(-1, inputs.shape[-1])
        return features, targets.reshape(-1, targets.shape[-1])
    if is_plain_conv(consumer):
        patches = unfold(inputs, consumer)  # (batch, in * k, positions)
        features = patches.transpose(1, 2).reshape(-1, patches.shape[1])
        outputs = targets.flatten(2).transpose(1, 2).reshape(-1, targets.shape[1])
        return features, outputs
    raise ValueError(
        "compensate='lstsq' refits Linear and Conv1d/Conv2d consumers "
        "(ungrouped, zero or no padding); use 'mean' or 'none' for "
        f"{type(consumer).__name__}."
    )


def _refit_lstsq(consumer, inputs, targets, ridge):
    """Refit ``consumer`` on its kept ``inputs`` to reproduce ``targets``, in
    memory (the graph groups' removal; MLP and CNN groups stream, see
    :func:`_compensation_statistics`)."""
    features, outputs = _design(consumer, inputs, targets)
    gram, cross, rows = _normal_equations(features, outputs)
    _set_refit(consumer, *_solve_ridge(gram, cross, rows, ridge))


@torch.no_grad()
def _set_refit(consumer, weight, bias):
    """Write a refit's ``(p, outputs)`` weights and bias into ``consumer``."""
    consumer.weight.copy_(
        weight.T.reshape(consumer.weight.shape).to(consumer.weight.dtype)
    )
    if consumer.bias is None:
        consumer.bias = nn.Parameter(
            consumer.weight.new_zeros(consumer.weight.shape[0])
        )
    consumer.bias.copy_(bias.to(consumer.bias.dtype))


#: Rows (samples x positions) a least-squares refit uses at most; more are
#: subsampled with a fixed seed, which keeps the solve cheap on images.
_MAX_LSTSQ_ROWS = 50_000


def _normal_equations(H, Z):
    """``([H 1]^T [H 1], [H 1]^T Z, rows)`` in float64, at most
    :data:`_MAX_LSTSQ_ROWS` rows (a seeded subsample beyond)."""
    if H.shape[0] > _MAX_LSTSQ_ROWS:
        generator = torch.Generator(device=H.device).manual_seed(0)
        rows = torch.randperm(H.shape[0], generator=generator, device=H.device)
        H, Z = H[rows[:_MAX_LSTSQ_ROWS]], Z[rows[:_MAX_LSTSQ_ROWS]]
    H = H.double()
    A = torch.cat([H, H.new_ones(H.shape[0], 1)], dim=1)
    return A.T @ A, A.T @ Z.double(), H.shape[0]


def _solve_ridge(gram, cross, n, ridge):
    """``min ||[H 1] [W b]^T - Z||^2 + ridge * n * ||W||^2`` from its normal
    equations; the bias is not penalised. Returns ``W`` of shape
    ``(p, outputs)`` and ``b`` of shape ``(outputs,)``."""
    penalty = torch.full(
        (gram.shape[0],), ridge * n, dtype=gram.dtype, device=gram.device
    )
    penalty[-1] = 0.0
    gram = gram + torch.diag(penalty)
    solution, info = torch.linalg.solve_ex(gram, cross)
    if info.any() or not torch.isfinite(solution).all():
        # Numerically singular (e.g. a constant unit of large magnitude, whose
        # column is collinear with the bias): the least-norm solution.
        solution = torch.linalg.pinv(gram, hermitian=True) @ cross
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
def remove_units(model, groups, removals, compensate="none", X=None, ridge=RIDGE):
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
        # Read off the network before it changes: the consumers' inputs with
        # every unit, and what the original network outputs there.
        means, equations = _compensation_statistics(
            original, pruned, group, columns, X, compensate == "lstsq"
        )
    for name in group.producers:
        _shrink_producer(pruned.get_submodule(name), rows, group.n_rows)
    for name in group.consumers:
        consumer = pruned.get_submodule(name)
        if compensate == "mean":
            _fold_mean(consumer, removed_columns, means)
        _shrink_consumer(consumer, columns, group.n_features)
        if compensate == "lstsq":
            _set_refit(consumer, *_solve_ridge(*equations[name], ridge))


def _compensation_statistics(original, pruned, group, columns, X, refit):
    """What compensation needs from the data, in chunks of rows.

    Returns the mean of every unit (over samples, positions and its
    features: the value the pulls fill a masked unit with) and, when
    ``refit``, each consumer's least-squares normal equations on its kept
    inputs, ``{name: (gram, cross, rows)}``. Data that fits in one chunk is
    used whole (with the row cap of :func:`_normal_equations`); larger data
    streams, so memory depends on the chunk and the width, not on the number
    of rows, and the normal equations sum over every row.
    """
    first = group.consumers[0]
    step = _rows_per_chunk(pruned, original, group, X)
    total, count, equations = None, 0, {}
    for start in range(0, X.shape[0], step):
        xb = X[start : start + step]
        inputs = _consumer_inputs_raw(pruned, first, xb)
        view = unit_view(inputs, group)
        if step >= X.shape[0]:  # one chunk: the mean of the whole data
            means = group.feature_values(view.mean((0, 2)))
        else:
            sums = view.double().sum((0, 2))
            total = sums if total is None else total + sums
            count += view.shape[0] * view.shape[2]
        if not refit:
            continue
        targets = _consumer_outputs(original, group.consumers, xb)
        for name in group.consumers:
            kept = inputs.index_select(group.feature_dim, columns)
            features, outputs = _design(pruned.get_submodule(name), kept, targets[name])
            chunk = _normal_equations(features, outputs)
            equations[name] = (
                chunk
                if name not in equations
                else tuple(a + b for a, b in zip(equations[name], chunk))
            )
    if total is not None:
        means = group.feature_values((total / count).to(X.dtype))
    return means, equations


def _rows_per_chunk(pruned, original, group, X):
    """Rows whose consumer inputs and outputs fit one streaming chunk."""
    one = X[:1]
    inputs = _consumer_inputs_raw(pruned, group.consumers[0], one)
    outputs = _consumer_outputs(original, group.consumers, one)
    return chunk_rows(inputs.numel() + sum(t.numel() for t in outputs.values()))


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
