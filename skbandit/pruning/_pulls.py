"""Pulling arms: the metric of the network with one unit masked, many at a time.

Masking unit ``j`` of a group changes its consumer's pre-activation by a rank-1
term, ``z' = z - (h_j - f_j) w_j^T`` (``h_j`` the unit's activations over the
batch, ``w_j`` the consumer's input column, ``f_j`` the fill value). So the
layers up to the consumer are computed once, and only the layers after it run
per arm, stacked along a leading "variant" dimension. For the last hidden
layer the consumer is the output layer and every arm costs one rank-1 update
(closed form). :func:`evaluate_arms_naive`, one masked forward pass per arm, is
the reference that the fast path is tested against.

*Compensated* pulls remove the unit with the least-squares refit of a
``Linear`` consumer (see :mod:`._obs`): still a rank-1 change of the
refit pre-activation, ``z' = A beta - u_j beta_j^T``, so they take the same
batched path with ``u_j`` in place of ``h_j - f_j`` and the refit's
coefficients in place of the consumer's weights. On a traced model the
consumer's refit output, ``z - u_j beta_j^T`` per arm, is stacked and only the
operations after the consumer run on it (:meth:`GraphTrace.run_after`).

A model that is not an ``nn.Sequential`` (a transformer, a user's module) is
traced with ``torch.fx`` instead (:class:`GraphTrace`): one forward pass
records every intermediate value, and each chunk of arms re-runs only the
operations downstream of the consumer, on the stacked masked inputs, with
``torch.func.vmap`` over the variants (upstream values are shared, not
repeated). Models that ``torch.fx`` cannot trace, or that modify tensors in
place, use naive pulls.
"""

import contextlib
import contextvars
import warnings

import numpy as np
import torch
import torch.fx
from torch import nn

from ._layers import layer_type
from ._masking import masked, refitted
from ._trace import GraphTrace, Trace, trace

__all__ = [
    "batched_kind",
    "counting_fallbacks",
    "evaluate_arms",
    "evaluate_arms_naive",
    "evaluate_company",
    "company_batched",
    "sliced_arm_values",
]

#: Elements of the largest stacked tensor per chunk on the CPU: a chunk's
#: buffers stay within the caches, which measured faster than larger chunks.
_CHUNK_ELEMENTS = 1 << 21

#: The same bound on an accelerator (512 MiB of float32 per buffer): each
#: chunk costs kernel launches and one host sync (``nonzero``), so a GPU
#: needs chunks of many arms to be busy; 2 ** 21-element chunks held one arm
#: of a 1024-unit layer at batch 2048 and ran barely faster than the naive
#: loop.
_ACCELERATOR_CHUNK_ELEMENTS = 1 << 27

#: On CUDA a stacked tensor also takes at most this share of the card's
#: memory: a chunk holds a few such tensors at once, and cards have less.
#: The card's total, not its free memory: free memory changes from call to
#: call, and chunk sizes that followed it would make the sums (and so the
#: bandit) differ between runs; torch also caches the total, while asking
#: for free memory is a driver call on every round's pulls.
_MEMORY_SHARE = 32


def _chunk_elements(tensor):
    """The bound, in elements, of a stacked tensor of chunks of arms computed
    on ``tensor``'s device."""
    if tensor.device.type == "cpu":
        return _CHUNK_ELEMENTS
    bound = _ACCELERATOR_CHUNK_ELEMENTS
    if tensor.device.type == "cuda":
        total = torch.cuda.get_device_properties(tensor.device).total_memory
        bound = min(bound, total // (_MEMORY_SHARE * tensor.element_size()))
    return max(1, bound)


def _graph_consumer(tr, group):
    """The consumer's graph node if the graph path applies, else None."""
    if len(group.consumers) != 1:
        return None
    node = tr.calls.get(group.consumers[0])
    if node is None or not node.args or not isinstance(node.args[0], torch.fx.Node):
        return None
    h = tr.values[node.args[0]]
    if not torch.is_tensor(h) or h.dim() == 0:
        return None
    return node if h.shape[group.feature_dim] == group.n_features else None


def _graph_chunk(tr, node, stacked):
    """Variants per ``vmap`` call downstream of ``node``, ``stacked`` being
    one variant's input to what follows.

    On the CPU the largest of it and the downstream values stays within
    4 x :data:`_CHUNK_ELEMENTS` (cache-sized chunks). On an accelerator,
    where chunks are large, every downstream value of a chunk is alive at
    once until the metric, so their sum stays within :func:`_chunk_elements`.
    """
    sizes = [
        v.numel() for v in map(tr.values.get, tr.downstream(node)) if torch.is_tensor(v)
    ]
    if stacked.device.type == "cpu":
        largest = max(sizes, default=1)
        return max(1, 4 * _CHUNK_ELEMENTS // max(largest, stacked.numel()))
    return max(1, _chunk_elements(stacked) // (sum(sizes) + stacked.numel()))


def _vmap_metric(run, stacked, y, metric):
    """Mean metric of each variant of ``stacked`` through ``run``.

    Each variant is one slice of a ``vmap``: it sees the whole minibatch as
    the real forward pass does, so the result is exact for any model.
    """
    with warnings.catch_warnings():
        # Operations without a batching rule (e.g. CPU flash attention)
        # run once per variant: slower, still exact, still no prefix.
        warnings.filterwarnings("ignore", message="There is a performance drop")
        out = torch.func.vmap(run)(stacked)
    n = stacked.shape[0]
    out = out.reshape(-1, *out.shape[2:])
    targets = y.expand(n, *y.shape).reshape(-1, *y.shape[1:])
    return metric(out, targets).view(n, -1).mean(dim=1)


def _graph_values(tr, node, group, arms, fills, y, metric):
    """Mean metric per arm: the downstream graph on stacked masked inputs."""
    h = tr.values[node.args[0]]
    dim = group.feature_dim % h.dim()
    chunk = _graph_chunk(tr, node, h)
    shape = [1] * (h.dim() + 1)
    shape[dim + 1] = -1
    fill = None
    if fills is not None:
        fill = group.feature_values(fills).to(h.device, h.dtype).view(shape[1:])
    values = []
    for i in range(0, len(arms), chunk):
        part = arms[i : i + chunk]
        keep = torch.ones(len(part), group.size, dtype=h.dtype, device=h.device)
        keep[torch.arange(len(part), device=h.device), part] = 0
        keep = keep.repeat_interleave(group.unit_width, dim=1)
        keep = keep.view(len(part), *shape[1:])
        stacked = h.unsqueeze(0) * keep
        if fill is not None:
            stacked = stacked + (1 - keep) * fill
        values.append(_vmap_metric(lambda v: tr.run_from(node, v), stacked, y, metric))
    return torch.cat(values)


def _graph_refit_values(tr, node, z, weight, arms, delta, y, metric):
    """Mean metric per arm when the consumer call ``node`` returns
    ``z - delta[i] * weight[:, arms[i]]`` (``z`` its output flattened to
    rows x outputs): the batched compensated pulls of a traced model."""
    shape = tr.values[node].shape
    chunk = _graph_chunk(tr, node, z)
    values = []
    for i in range(0, len(arms), chunk):
        part = arms[i : i + chunk]
        stacked = z - delta[i : i + chunk, :, None] * weight[:, part].T[:, None, :]
        stacked = stacked.view(len(part), *shape)
        values.append(_vmap_metric(lambda v: tr.run_after(node, v), stacked, y, metric))
    return torch.cat(values)


def _graph_refit_consumer(tr, group, refit):
    """The consumer's graph node if compensated pulls of ``group`` can run
    batched on the traced graph (a ``Linear`` consumer reading one feature
    per unit along its last dimension), else None."""
    if refit is None or not isinstance(tr, GraphTrace) or group.unit_width != 1:
        return None
    node = _graph_consumer(tr, group)
    if node is None:
        return None
    h = tr.values[node.args[0]]
    if group.feature_dim % h.dim() != h.dim() - 1:
        return None
    consumer = tr.model.get_submodule(node.target)
    return node if isinstance(consumer, nn.Linear) else None


def _flat_input(tr, node):
    """The consumer's input as rows x features."""
    h = tr.values[node.args[0]]
    return h.reshape(-1, h.shape[-1])


def batched_kind(tr, group):
    """``"linear"``, ``"block"``, ``"conv"`` or ``None`` (naive pulls).

    ``"block"``: a ``Linear`` consumer of units that span several features
    each (``unit_width > 1``, e.g. channels read through ``Flatten``).
    """
    if not isinstance(tr, Trace) or len(group.consumers) != 1:
        return None
    if group.consumers[0] not in tr.names:
        return None
    pos = tr.position(group.consumers[0])
    consumer, h = tr.modules[pos], tr.inputs[pos]
    entry = layer_type(consumer)
    if entry is None or not entry.refittable(consumer):
        return None
    if group.unit_width != 1:
        reads = entry.flat and h.dim() == 2
        return "block" if reads and h.shape[1] == group.n_features else None
    if entry.flat:
        return "linear" if h.dim() == 2 else None
    return "conv"


@torch.no_grad()
def evaluate_arms(model, group, arms, X, y, metric, fills=None, tr=None, refit=None):
    """Metric of the network with each arm of ``group`` masked alone.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode.
    group : UnitGroup or GraphGroup
        The group picks how its arms are evaluated
        (:meth:`BaseUnitGroup.evaluate_arms`): a :class:`UnitGroup` by the
        batched rank-1 updates of this module where its consumer allows,
        a :class:`GraphGroup` on replicated batches.
    arms : sequence of int
        Unit indices within ``group`` (repeats allowed).
    X, y : torch.Tensor
        The minibatch.
    metric : callable
        Per-sample metric ``metric(outputs, y) -> (n_samples,)`` (see
        :func:`sample_metric`); an arm's value is its mean over the batch.
    fills : torch.Tensor of shape (group.size,), default=None
        What a masked unit is replaced with (default 0).
    tr : Trace or GraphTrace, default=None
        A trace of ``model`` on ``X`` (see :func:`trace`) to reuse across
        groups.
    refit : Refit, default=None
        The least-squares refit of the group's ``Linear`` consumer (see
        :func:`~skbandit.pruning.consumer_refits`): each arm is then removed
        with compensation, as ``remove_units(..., compensate="lstsq")``
        would, and ``fills`` is ignored.

    Returns
    -------
    values : torch.Tensor of shape (len(arms),)
    """
    return group.evaluate_arms(model, arms, X, y, metric, fills, tr, refit)


def sliced_arm_values(
    model, group, arms, X, y, metric, fills=None, tr=None, refit=None
):
    """:func:`evaluate_arms` of a :class:`UnitGroup`: batched where its
    consumer allows (rank-1 updates of a ``Linear``, im2col of a plain
    convolution, ``torch.fx`` + ``vmap`` on a traced graph), else the
    naive loop."""
    tr = tr if tr is not None else trace(model, X)
    node = _graph_refit_consumer(tr, group, refit)
    if node is not None:
        arms = torch.as_tensor(arms, dtype=torch.long, device=X.device)
        if len(arms) == 0:
            return tr.output.new_empty(0)
        z, weight, delta = _refit_rank1(_flat_input(tr, node), refit, arms)
        try:
            return _graph_refit_values(tr, node, z, weight, arms, delta, y, metric)
        except torch.cuda.OutOfMemoryError:
            _warn_out_of_memory(group)
        except (RuntimeError, NotImplementedError) as error:
            # an operation vmap cannot batch: the naive loop is exact
            _warn_fallback("compensated graph pulls (_graph_refit_values)", error)
    if refit is not None and batched_kind(tr, group) != "linear":
        return evaluate_arms_naive(model, group, arms, X, y, metric, refit=refit)
    if isinstance(tr, GraphTrace):
        node = _graph_consumer(tr, group)
        if node is not None:
            arms = torch.as_tensor(arms, dtype=torch.long, device=X.device)
            if len(arms) == 0:
                return tr.output.new_empty(0)
            try:
                return _graph_values(tr, node, group, arms, fills, y, metric)
            except torch.cuda.OutOfMemoryError:
                _warn_out_of_memory(group)
            except (RuntimeError, NotImplementedError) as error:
                # an operation vmap cannot batch: the naive loop is exact
                _warn_fallback("graph pulls (_graph_values)", error)
        return evaluate_arms_naive(model, group, arms, X, y, metric, fills)
    kind = batched_kind(tr, group)
    if kind is None:
        return evaluate_arms_naive(model, group, arms, X, y, metric, fills)
    pos = tr.position(group.consumers[0])
    consumer, suffix, h = tr.modules[pos], tr.modules[pos + 1 :], tr.inputs[pos]
    z = tr.inputs[pos + 1] if pos + 1 < len(tr.modules) else tr.output
    arms = torch.as_tensor(arms, dtype=torch.long, device=h.device)
    if len(arms) == 0:
        return h.new_empty(0)
    if kind == "conv":
        return _conv_values(h, z, consumer, arms, fills, suffix, y, metric)
    if kind == "block":
        return _block_values(
            h, z, consumer, arms, fills, group.unit_width, suffix, y, metric
        )
    if refit is not None:
        z, weight, delta, base = _refit_terms(h, refit, arms, suffix, y, metric)
    else:
        weight, delta, base = consumer.weight, h[:, arms].T, metric(tr.output, y)
        if fills is not None:
            delta = delta - fills[arms][:, None]
    return _linear_values(z, weight, arms, delta, suffix, y, metric, base)


#: Fast paths that failed and fell back to the naive loop in this process
#: (each warns once).
_FELL_BACK = set()

#: The fallback counter of the :func:`counting_fallbacks` block running in
#: this thread or task (None outside one).
_FALLBACKS = contextvars.ContextVar("fast_path_fallbacks", default=None)


@contextlib.contextmanager
def counting_fallbacks():
    """Count the pulls that fall back from a fast path to the naive loop
    inside the block (a failed batched path, or one out of GPU memory).

    Yields a one-element list whose value is the count so far; ``prune()``
    reports it as ``PruningReport.fast_path_fallbacks``. Each fallback is
    counted, while its warning is shown once per process.

    Examples
    --------
    >>> with counting_fallbacks() as fallbacks:
    ...     pass
    >>> fallbacks
    [0]
    """
    counter = [0]
    token = _FALLBACKS.set(counter)
    try:
        yield counter
    finally:
        _FALLBACKS.reset(token)


def _count_fallback():
    counter = _FALLBACKS.get()
    if counter is not None:
        counter[0] += 1


def _warn_fallback(path, error):
    """Say once per process that the fast path ``path`` failed and the
    pulls run the naive loop: same values, but a broken fast path must not
    show only as slowness (and every fallback counts in the report)."""
    _count_fallback()
    if path in _FELL_BACK:
        return
    _FELL_BACK.add(path)
    warnings.warn(
        f"The batched {path} failed ({type(error).__name__}: {error}); the "
        "pulls run one forward pass per arm instead (same values, slower). "
        "Shown once per process.",
        RuntimeWarning,
        stacklevel=6,  # as _warn_out_of_memory: evaluate_arms' caller
    )


def _warn_out_of_memory(group):
    # The naive loop needs one forward pass of memory, so it still runs.
    _count_fallback()
    warnings.warn(
        f"Out of GPU memory for the batched pulls of {group.name!r}: they run "
        "one forward pass per arm instead (slower, same values). A smaller "
        "pull minibatch (prune's batch_size, the estimators' "
        "pull_batch_size) keeps them batched.",
        UserWarning,
        # evaluate_arms' caller, past UnitGroup.evaluate_arms, evaluate_arms
        # and torch.no_grad's wrapper
        stacklevel=6,
    )


def _linear_values(z, weight, arms, delta, suffix, y, metric, base):
    """Mean metric per arm of ``z - delta[i] * weight[:, arms[i]]`` through
    ``suffix``, in chunks of arms (``base``: the metric per sample of ``z``)."""
    width = max(z.shape[1], _widest(suffix, z.shape[1]))
    chunk = max(1, min(len(arms), _chunk_elements(z) // (z.shape[0] * width)))
    # Buffers reused by every chunk: fresh multi-MB tensors per chunk cost
    # more in page faults than the arithmetic they hold.
    buffers = (
        z.new_empty(chunk * z.shape[0], z.shape[1]),
        z.new_empty(chunk * z.shape[0], z.shape[1]),
    )
    values = [
        _chunk_values(
            z,
            weight,
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


@torch.no_grad()
def evaluate_company(
    model, group, arms, plan, X, y, metric, fills=None, tr=None, refit=None
):
    r"""Metric before and after removing each arm *in the company of* ``plan``.

    Arm ``j`` is evaluated against its context :math:`C_j = S \setminus
    \{j\}`, :math:`S` the units the bandit currently plans to remove: before
    = the network with :math:`C_j` removed, after = with :math:`C_j \cup
    \{j\}` removed (masked with ``fills``, or with the least-squares refit
    when ``refit`` is given). Both differ from the network with :math:`S`
    removed by one rank-1 change of the consumer's pre-activation (removing
    ``j`` on top of ``S``, or restoring it, see
    :meth:`~skbandit.pruning.Refit.company_terms`), so a ``Linear`` consumer
    of an ``nn.Sequential`` evaluates all arms batched; other models loop.

    Parameters
    ----------
    model, group, arms, X, y, metric, fills, tr, refit
        As for :func:`evaluate_arms`.
    plan : array-like of int
        Units of ``group`` in the planned removal set :math:`S`.

    Returns
    -------
    before, after : torch.Tensor of shape (len(arms),)

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skbandit.pruning import find_unit_groups, resolve_loss, sample_metric
    >>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> X, y = torch.randn(16, 2), torch.randint(0, 2, (16,))
    >>> (group,) = find_unit_groups(net)
    >>> metric = sample_metric("loss", resolve_loss("cross_entropy"))
    >>> before, after = evaluate_company(net, group, [0, 3], [3], X, y, metric)
    >>> # unit 0 on top of the plan {3}; unit 3 against the empty rest of it
    >>> bool(before[0] == after[1])  # both: the network without unit 3
    True
    """
    plan = np.unique(np.asarray(plan, dtype=np.int64))
    tr = tr if tr is not None else trace(model, X)
    if not group.company_batched(tr):
        return _company_naive(model, group, arms, plan, X, y, metric, fills, refit)
    pos = tr.position(group.consumers[0])
    consumer, suffix, h = tr.modules[pos], tr.modules[pos + 1 :], tr.inputs[pos]
    arms = torch.as_tensor(np.asarray(arms, dtype=np.int64), device=h.device)
    in_plan = torch.as_tensor(np.isin(arms.cpu().numpy(), plan), device=h.device)
    if refit is not None:
        z, weight, delta = _company_refit_terms(h, refit, arms, plan)
    else:
        shifted = h if fills is None else h - fills
        columns = consumer.weight[:, plan]
        z = tr.inputs[pos + 1] if pos + 1 < len(tr.modules) else tr.output
        z = z - shifted[:, plan] @ columns.T
        # Removing j on top of S subtracts its term; restoring it adds it.
        sign = 1.0 - 2.0 * in_plan.to(h.dtype)
        weight, delta = consumer.weight, shifted[:, arms].T * sign[:, None]
    out = z.clone()
    for module in suffix:
        out = _apply(module, out)
    base = metric(out, y)
    values = _linear_values(z, weight, arms, delta, suffix, y, metric, base)
    level = base.mean().expand(len(arms))
    return torch.where(in_plan, values, level), torch.where(in_plan, level, values)


def company_batched(tr, group):
    """Whether :func:`evaluate_company` evaluates ``group``'s arms batched
    (a ``Linear`` consumer of a flat ``nn.Sequential``) on trace ``tr``
    (:meth:`BaseUnitGroup.company_batched`)."""
    return group.company_batched(tr)


def _company_refit_terms(h, refit, arms, plan):
    """The refit terms of :func:`evaluate_company` in ``h``'s dtype."""
    z, rows, delta = refit.company_terms(h, arms, plan)
    return z.to(h.dtype), rows.T.to(h.dtype), delta.to(h.dtype)


def _company_naive(model, group, arms, plan, X, y, metric, fills, refit):
    """Reference for :func:`evaluate_company`: two forward passes per arm."""

    def value(removed):
        if refit is not None:
            context = refitted(model, {group: refit}, {group: removed})
        else:
            keep = torch.ones(group.size, dtype=X.dtype, device=X.device)
            keep[torch.as_tensor(removed, dtype=torch.long)] = 0
            context = masked(
                model, {group: keep}, None if fills is None else {group: fills}
            )
        with context:
            return metric(model(X), y).mean()

    before, after = [], []
    for arm in np.asarray(arms, dtype=np.int64):
        context = [int(u) for u in plan if u != arm]
        before.append(value(context))
        after.append(value(context + [int(arm)]))
    if not before:
        return X.new_empty(0), X.new_empty(0)
    return torch.stack(before), torch.stack(after)


def _refit_rank1(h, refit, arms):
    """Refit pre-activation ``A beta``, the refit's weights ``beta[:-1]^T``
    and ``u_j`` per arm (arms x rows), in ``h``'s dtype: removing arm ``j``
    turns the consumer's output into ``z - u_j beta_j^T``."""
    z = refit.pre_activation(h).to(h.dtype)
    weight = refit.coef[:-1].T.to(h.dtype)
    delta = refit.direction(h, arms).T.to(h.dtype)
    return z, weight, delta


def _refit_terms(h, refit, arms, suffix, y, metric):
    """The rank-1 terms of compensated pulls on the consumer input ``h``.

    Returns the refit pre-activation ``A beta`` (all units kept), the
    refit's weights ``beta[:-1]^T`` (shaped like the consumer's weight),
    ``u_j`` per arm (arms x rows) and the metric of the refit network.
    """
    z, weight, delta = _refit_rank1(h, refit, arms)
    out = z.clone()
    for module in suffix:
        out = _apply(module, out)
    return z, weight, delta, metric(out, y)


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
    matrix = layer_type(consumer).matrix(consumer)
    # (batch, channels, k, L): every channel's patches, unfolded once.
    patches = layer_type(consumer).rows(consumer, h).view(batch, h.shape[1], ksize, -1)
    fill_patches = None if fills is None else _fill_patches(h, fills, consumer, ksize)
    chunk = max(1, _chunk_elements(z) // (batch * z[0].numel()))
    values = []
    for i in range(0, len(arms), chunk):
        part = arms[i : i + chunk]
        x = patches[:, part].transpose(0, 1)  # (arms, batch, k, L)
        if fill_patches is not None:
            x = x - fill_patches[part].unsqueeze(1)
        # (arms, C_out, k), by the registry's (out, in, *k) layout
        kernels = matrix[:, part].flatten(2).transpose(0, 1)
        out = torch.matmul(kernels.unsqueeze(1), x)  # (arms, batch, C_out, L)
        out = torch.sub(z.flatten(2), out, out=out)
        out = out.view(len(part) * batch, *out_shape)
        for module in suffix:
            out = _apply(module, out)
        targets = y.expand(len(part), *y.shape).reshape(-1, *y.shape[1:])
        values.append(metric(out, targets).view(len(part), batch).mean(dim=1))
    return torch.cat(values)


def _block_values(h, z, consumer, arms, fills, width, suffix, y, metric):
    """Mean metric per masked unit of ``width`` features of a Linear consumer.

    Masking unit ``j`` changes the consumer's output by a rank-``width``
    term, ``z' = z - (H_j - f_j) W_j^T`` with ``H_j`` the unit's ``width``
    input features and ``W_j`` their weight columns: one small batched matrix
    product per chunk of arms, then the layers after the consumer.
    """
    batch = h.shape[0]
    units = h.reshape(batch, -1, width)  # (batch, units, width)
    weights = consumer.weight.reshape(consumer.weight.shape[0], -1, width)
    chunk = max(1, _chunk_elements(z) // (batch * _widest(suffix, z.shape[1])))
    values = []
    for i in range(0, len(arms), chunk):
        part = arms[i : i + chunk]
        delta = units[:, part].transpose(0, 1)  # (arms, batch, width)
        if fills is not None:
            delta = delta - fills[part].view(-1, 1, 1)
        # (arms, batch, width) @ (arms, width, out) -> (arms, batch, out)
        out = torch.matmul(delta, weights[:, part].permute(1, 2, 0))
        out = out.neg_().add_(z).view(len(part) * batch, -1)
        for module in suffix:
            out = _apply(module, out)
        targets = y.expand(len(part), *y.shape).reshape(-1, *y.shape[1:])
        values.append(metric(out, targets).view(len(part), batch).mean(dim=1))
    return torch.cat(values)


def _fill_patches(h, fills, conv, ksize):
    """Patches of constant maps at the fill values (zero in the padding)."""
    constant = fills.view(1, -1, *([1] * (h.dim() - 2))).expand(1, *h.shape[1:])
    patches = layer_type(conv).rows(conv, constant.contiguous())
    return patches.view(h.shape[1], ksize, -1)


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
    flat = delta.reshape(-1)
    pairs = torch.nonzero(flat).squeeze(1)
    arm_pos, rows = pairs // delta.shape[1], pairs % delta.shape[1]
    n_pairs = pairs.numel()
    out = torch.index_select(z, 0, rows, out=buffers[0][:n_pairs])
    columns = torch.index_select(weight.T[arms], 0, arm_pos, out=buffers[1][:n_pairs])
    # Every pair's pre-activation after the rank-1 change z - delta * w.
    out.addcmul_(flat[pairs].unsqueeze(1), columns, value=-1)
    for module in suffix:
        out = _apply(module, out)
    # Accumulate in float64: the per-arm sums subtract nearly equal totals.
    change = (metric(out, y[rows]) - base[rows]).double()
    sums = _arm_totals(base.double().sum(), change, arm_pos, pairs, delta.shape)
    return (sums / z.shape[0]).to(z.dtype)


def _arm_totals(total, change, arm_pos, pairs, shape):
    """``total`` plus the summed ``change`` of each arm's pairs.

    ``index_add_`` adds in order on the CPU but atomically, in no fixed
    order, on CUDA; there the pairs are scattered into the dense
    ``shape = (arms, samples)`` grid (each once) and summed by rows, so
    that the same inputs give the same sums.
    """
    if change.device.type == "cpu":
        return total.expand(shape[0]).clone().index_add_(0, arm_pos, change)
    return total + _dense_arm_sums(change, pairs, shape)


def _dense_arm_sums(change, pairs, shape):
    dense = change.new_zeros(shape[0] * shape[1])
    dense[pairs] = change
    return dense.view(shape).sum(dim=1)


@torch.no_grad()
def evaluate_arms_naive(model, group, arms, X, y, metric, fills=None, refit=None):
    """Reference implementation: one masked (or refitted) forward pass per arm.

    Same parameters and result as :func:`evaluate_arms` (without ``tr``).

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
        Per-sample metric ``metric(outputs, y) -> (n_samples,)``; an arm's
        value is its mean over the batch.
    fills : torch.Tensor of shape (group.size,), default=None
        What a masked unit is replaced with (default 0).
    refit : Refit, default=None
        Remove each arm with the consumer's least-squares refit on the other
        units (see :func:`evaluate_arms`) instead of masking it.

    Returns
    -------
    values : torch.Tensor of shape (len(arms),)
    """
    values = []
    fill = None if fills is None else {group: fills}
    for arm in arms:
        if refit is not None:
            context = refitted(model, {group: refit}, {group: [int(arm)]})
        else:
            keep = torch.ones(group.size, dtype=X.dtype, device=X.device)
            keep[int(arm)] = 0
            context = masked(model, {group: keep}, fill)
        with context:
            values.append(metric(model(X), y).mean())
    return torch.stack(values) if values else X.new_empty(0)
