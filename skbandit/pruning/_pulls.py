"""Pulling arms: the metric of the network with one unit masked, many at a time.

Masking unit ``j`` of a group changes its consumer's pre-activation by a rank-1
term, ``z' = z - (h_j - f_j) w_j^T`` (``h_j`` the unit's activations over the
batch, ``w_j`` the consumer's input column, ``f_j`` the fill value). So the
layers up to the consumer are computed once, and only the layers after it run
per arm, stacked along a leading "variant" dimension. For the last hidden
layer the consumer is the output layer and every arm costs one rank-1 update
(closed form). :func:`evaluate_arms_naive`, one masked forward pass per arm, is
the reference that the fast path is tested against.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._masking import masked
from ._units import _flat_children

__all__ = ["Trace", "trace", "evaluate_arms", "evaluate_arms_naive"]

#: Elements of the largest stacked tensor per chunk (bounds peak memory).
_CHUNK_ELEMENTS = 1 << 21


class Trace:
    """Inputs of every module of a flat sequential forward pass, and its output.

    Parameters
    ----------
    model : torch.nn.Sequential
    X : torch.Tensor
    """

    def __init__(self, model, X):
        self.names, self.modules = zip(*_flat_children(model))
        self.inputs = []
        h = X
        for module in self.modules:
            self.inputs.append(h)
            h = module(h)
        self.output = h

    def position(self, name):
        return self.names.index(name)


def trace(model, X):
    """Run ``model`` on ``X`` once and keep every intermediate input.

    Returns ``None`` when ``model`` is not an ``nn.Sequential`` (the batched
    path then falls back to naive pulls).
    """
    return Trace(model, X) if isinstance(model, nn.Sequential) else None


_CONV = (nn.Conv1d, nn.Conv2d)


def _batched_kind(tr, group):
    """``"linear"``, ``"conv"`` or ``None`` (no batched path: naive pulls)."""
    if tr is None or len(group.consumers) != 1:
        return None
    pos = tr.position(group.consumers[0])
    consumer, h = tr.modules[pos], tr.inputs[pos]
    if isinstance(consumer, nn.Linear) and h.dim() == 2:
        return "linear"
    plain_conv = (
        type(consumer) in _CONV
        and consumer.groups == 1
        and consumer.padding_mode == "zeros"
        and isinstance(consumer.padding, tuple)
    )
    return "conv" if plain_conv else None


@torch.no_grad()
def evaluate_arms(model, group, arms, X, y, metric, fills=None, tr=None):
    """Metric of the network with each arm of ``group`` masked alone.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode.
    group : UnitGroup
    arms : sequence of int
        Unit indices within ``group`` (repeats allowed).
    X, y : torch.Tensor
        The minibatch.
    metric : callable
        Per-sample metric ``metric(outputs, y) -> (n_samples,)`` (see
        :func:`sample_metric`); an arm's value is its mean over the batch.
    fills : torch.Tensor of shape (group.size,), default=None
        What a masked unit is replaced with (default 0).
    tr : Trace, default=None
        A trace of ``model`` on ``X`` to reuse across groups.

    Returns
    -------
    values : torch.Tensor of shape (len(arms),)
    """
    tr = tr if tr is not None else trace(model, X)
    kind = _batched_kind(tr, group)
    if kind is None:
        return evaluate_arms_naive(model, group, arms, X, y, metric, fills)
    pos = tr.position(group.consumers[0])
    consumer, suffix, h = tr.modules[pos], tr.modules[pos + 1 :], tr.inputs[pos]
    z = tr.inputs[pos + 1] if pos + 1 < len(tr.modules) else tr.output
    arms = torch.as_tensor(arms, dtype=torch.long, device=h.device)
    if len(arms) == 0:
        return h.new_empty(0)
    base = metric(tr.output, y)
    if kind == "conv":
        return _conv_values(h, z, consumer, arms, fills, suffix, y, metric)
    delta = h[:, arms].T
    if fills is not None:
        delta = delta - fills[arms][:, None]
    width = max(z.shape[1], _widest(suffix, z.shape[1]))
    chunk = max(1, min(len(arms), _CHUNK_ELEMENTS // (h.shape[0] * width)))
    # Buffers reused by every chunk: fresh multi-MB tensors per chunk cost
    # more in page faults than the arithmetic they hold.
    buffers = (
        z.new_empty(chunk * z.shape[0], z.shape[1]),
        z.new_empty(chunk * z.shape[0], z.shape[1]),
    )
    values = [
        _chunk_values(
            z,
            consumer.weight,
            arms[i : i + chunk],
            delta[i : i + chunk],
            suffix,
            y,
            metric,
            base,
            buffers,
        )
        for i in range(0, len(arms), chunk)
    ]
    return torch.cat(values)


def _conv_values(h, z, consumer, arms, fills, suffix, y, metric):
    """Mean metric per masked input channel of a convolution consumer.

    A channel's contribution to the consumer's output is a convolution of that
    channel alone with its slice of the kernel: one small matrix product with
    the channel's unfolded patches (``im2col``) per arm, ``C_out x k`` times
    ``k x L``. Each arm's output is ``z`` minus its contribution; zero padding
    makes this exact.
    """
    batch, out_shape = h.shape[0], z.shape[1:]
    ksize = int(np.prod(consumer.kernel_size))
    # (batch, channels, k, L): every channel's patches, unfolded once.
    patches = _unfold(h, consumer).view(batch, h.shape[1], ksize, -1)
    fill_patches = None if fills is None else _fill_patches(h, fills, consumer, ksize)
    chunk = max(1, _CHUNK_ELEMENTS // (batch * z[0].numel()))
    values = []
    for i in range(0, len(arms), chunk):
        part = arms[i : i + chunk]
        x = patches[:, part].transpose(0, 1)  # (arms, batch, k, L)
        if fill_patches is not None:
            x = x - fill_patches[part].unsqueeze(1)
        kernels = (
            consumer.weight[:, part].flatten(2).transpose(0, 1)
        )  # (arms, C_out, k)
        out = torch.matmul(kernels.unsqueeze(1), x)  # (arms, batch, C_out, L)
        out = torch.sub(z.flatten(2), out, out=out)
        out = out.view(len(part) * batch, *out_shape)
        for module in suffix:
            out = _apply(module, out)
        targets = y.expand(len(part), *y.shape).reshape(-1, *y.shape[1:])
        values.append(metric(out, targets).view(len(part), batch).mean(dim=1))
    return torch.cat(values)


def _unfold(h, conv):
    """im2col of a 1d or 2d input as ``conv`` sees it: (batch, C * k, L)."""
    if h.dim() == 3:  # Conv1d: treat as a 2d image of height 1
        return F.unfold(
            h.unsqueeze(2),
            (1, *conv.kernel_size),
            dilation=(1, *conv.dilation),
            padding=(0, *conv.padding),
            stride=(1, *conv.stride),
        )
    return F.unfold(h, conv.kernel_size, conv.dilation, conv.padding, conv.stride)


def _fill_patches(h, fills, conv, ksize):
    """Patches of constant maps at the fill values (zero in the padding)."""
    constant = fills.view(1, -1, *([1] * (h.dim() - 2))).expand(1, *h.shape[1:])
    return _unfold(constant.contiguous(), conv).view(h.shape[1], ksize, -1)


def _widest(modules, width):
    for module in modules:
        if isinstance(module, nn.Linear):
            width = max(width, module.out_features)
    return width


#: Activations applied in place on the stacked variants (they own the buffer).
_IN_PLACE = {
    nn.ReLU: torch.relu_,
    nn.Tanh: torch.tanh_,
    nn.Sigmoid: torch.sigmoid_,
    nn.Identity: lambda x: x,
}


def _apply(module, x):
    in_place = _IN_PLACE.get(type(module))
    return in_place(x) if in_place is not None else module(x)


def _chunk_values(z, weight, arms, delta, suffix, y, metric, base, buffers):
    """Mean metric per arm, computing only the (arm, sample) pairs that change.

    A sample where the unit is already at its fill value (``delta == 0``, e.g.
    a ReLU unit that is off) gives the unmasked network's output, so it
    contributes ``base`` without being computed: with ReLU this skips about
    half of the work.
    """
    arm_pos, rows = torch.nonzero(delta, as_tuple=True)
    n_pairs = arm_pos.numel()
    out = torch.index_select(z, 0, rows, out=buffers[0][:n_pairs])
    columns = torch.index_select(weight.T[arms], 0, arm_pos, out=buffers[1][:n_pairs])
    # Every pair's pre-activation after the rank-1 change z - delta * w.
    out.addcmul_(delta[arm_pos, rows].unsqueeze(1), columns, value=-1)
    for module in suffix:
        out = _apply(module, out)
    # Accumulate in float64: the per-arm sums subtract nearly equal totals.
    change = (metric(out, y[rows]) - base[rows]).double()
    sums = base.double().sum().expand(len(arms)).clone().index_add_(0, arm_pos, change)
    return (sums / z.shape[0]).to(z.dtype)


@torch.no_grad()
def evaluate_arms_naive(model, group, arms, X, y, metric, fills=None):
    """Reference implementation: one masked forward pass per arm."""
    values = []
    fill = None if fills is None else {group: fills}
    for arm in arms:
        keep = torch.ones(group.size, dtype=X.dtype, device=X.device)
        keep[int(arm)] = 0
        with masked(model, {group: keep}, fill):
            values.append(metric(model(X), y).mean())
    return torch.stack(values) if values else X.new_empty(0)
