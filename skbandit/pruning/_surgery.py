"""Removing units physically.

Removal slices the producers' rows and the consumers' input columns, so the
pruned network has smaller weight tensors (fewer parameters, faster inference),
not masks. Optional compensation puts back what the removed units contributed
to their consumer (see :func:`remove_units`). :func:`remove_units` asks each
group to remove its units (:meth:`BaseUnitGroup.remove`); a
:class:`UnitGroup` does it with :func:`remove_sliced`, by its slice rules.
"""

import copy

import numpy as np
import torch

from .._validation import option_constraints, validated
from ._compensation import (
    COMPENSATION,
    RIDGE,
    consumer_inputs,
    consumer_outputs,
    design,
    fold_mean,
    normal_equations,
    set_refit,
    solve_ridge,
)
from ._layers import slice_inputs, slice_rows
from ._streaming import chunk_rows

__all__ = ["remove_units", "remove_in_place", "remove_sliced", "RIDGE"]


@validated(option_constraints("compensate"))
@torch.no_grad()
def remove_units(model, groups, removals, compensate="none", X=None, ridge=RIDGE):
    """Return a physically smaller copy of ``model`` without the removed units.

    Groups are processed in forward order, each seeing the network with the
    earlier groups already removed.

    Parameters
    ----------
    model : torch.nn.Module
        Left untouched.
    groups : list of UnitGroup or GraphGroup
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
    if COMPENSATION[compensate].needs_data and X is None:
        raise ValueError(f"compensate={compensate!r} needs data X.")
    pruned = copy.deepcopy(model)
    remove_in_place(model, pruned, groups, removals, compensate, X, ridge)
    return pruned


def remove_in_place(original, pruned, groups, removals, compensate, X, ridge=RIDGE):
    """:func:`remove_units` on ``pruned``, a copy of ``original`` (in which
    groups before these may already be removed), in place.

    Compensation reproduces ``original``'s consumer outputs, so removing
    the groups one call at a time gives the same network as one call with
    all of them (a scorer that scores each group on the network with the
    earlier ones removed builds the pruned network this way).
    """
    for group, removed in zip(groups, removals):
        removed = torch.as_tensor(np.asarray(removed, dtype=np.int64))
        if removed.numel() == 0:
            continue
        keep_mask = torch.ones(group.size, dtype=torch.bool)
        keep_mask[removed] = False
        if keep_mask.sum() == 0:
            raise ValueError(f"Cannot remove every unit of group {group.name!r}.")
        group.remove(original, pruned, removed, compensate, X, ridge)


def remove_sliced(group, original, pruned, removed, compensate, X, ridge):
    """Remove units ``removed`` of the :class:`UnitGroup` ``group`` from
    ``pruned`` in place: its producers' rows and its consumers' input
    features, by the group's slice rules (``original``: the model before
    :func:`remove_units`, whose consumer outputs the refit reproduces)."""
    device = next(pruned.parameters()).device
    keep_mask = torch.ones(group.size, dtype=torch.bool)
    keep_mask[removed] = False
    keep = torch.nonzero(keep_mask).flatten()
    rows = group.producer_index(keep).to(device)
    # A unit spanning several consumer features (unit_width) drops them all.
    columns = group.consumer_index(keep).to(device)
    removed_columns = group.consumer_index(removed).to(device)
    compensation = COMPENSATION[compensate]
    if compensation.measures_means:
        # Read off the network before it changes: the consumers' inputs with
        # every unit, and what the original network outputs there.
        means, equations = _compensation_statistics(
            original, pruned, group, columns, X, compensation.refits
        )
    for name in group.producers:
        slice_rows(pruned.get_submodule(name), rows, group.n_rows)
    for name in group.consumers:
        consumer = pruned.get_submodule(name)
        if compensation.folds:
            fold_mean(consumer, removed_columns, means)
        slice_inputs(consumer, columns, group.n_features)
        if compensation.refits:
            set_refit(consumer, *solve_ridge(*equations[name], ridge))


def _compensation_statistics(original, pruned, group, columns, X, refit):
    """What compensation needs from the data, in chunks of rows.

    Returns the mean of every unit (over samples, positions and its
    features: the value the pulls fill a masked unit with) and, when
    ``refit``, each consumer's least-squares normal equations on its kept
    inputs, ``{name: (gram, cross, rows)}``. Data that fits in one chunk is
    used whole (with the row cap of :func:`normal_equations`); larger data
    streams, so memory depends on the chunk and the width, not on the number
    of rows, and the normal equations sum over every row.
    """
    first = group.consumers[0]
    step = _rows_per_chunk(pruned, original, group, X)
    total, count, equations = None, 0, {}
    for start in range(0, X.shape[0], step):
        xb = X[start : start + step]
        inputs = consumer_inputs(pruned, first, xb)
        view = group.unit_view(inputs)
        if step >= X.shape[0]:  # one chunk: the mean of the whole data
            means = group.feature_values(view.mean((0, 2)))
        else:
            sums = view.double().sum((0, 2))
            total = sums if total is None else total + sums
            count += view.shape[0] * view.shape[2]
        if not refit:
            continue
        targets = consumer_outputs(original, group.consumers, xb)
        for name in group.consumers:
            kept = inputs.index_select(group.feature_dim, columns)
            features, outputs = design(pruned.get_submodule(name), kept, targets[name])
            chunk = normal_equations(features, outputs)
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
    inputs = consumer_inputs(pruned, group.consumers[0], one)
    outputs = consumer_outputs(original, group.consumers, one)
    return chunk_rows(inputs.numel() + sum(t.numel() for t in outputs.values()))
