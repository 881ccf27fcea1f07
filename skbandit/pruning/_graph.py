"""Coupled units found by Torch-Pruning's dependency graph: :class:`GraphGroup`.

The channels of every layer that writes into one residual sum, the channels
a depthwise convolution carries through, a channel and the ``H * W``
features a ``Linear`` reads it as after ``flatten``: each coupled set is one
:class:`GraphGroup` (found by :func:`~skbandit.pruning.find_graph_groups`),
whose units are removed from every member together. This module is how such
a group implements the unit-group protocol (:class:`BaseUnitGroup`):

* **masking** acts on the consumers' inputs, not the producers' outputs: a
  batch norm or a bias after a zeroed producer would make the channel
  non-zero again, whereas a consumer that reads zeros computes exactly what
  it computes without those input columns (forward pre-hooks, see
  :meth:`GraphGroup.mask_hooks`);
* **pulls** replicate the minibatch once per arm, each replica carrying its
  own mask: a model in eval mode treats samples independently, so replica
  ``i`` computes exactly the naive pull of arm ``i``;
* **removal** is Torch-Pruning's (it knows how every coupled layer
  shrinks); the compensation around it is skbandit's
  (:func:`~skbandit.pruning.remove_units`).
"""

import weakref
from dataclasses import dataclass, field, replace

import torch

from ._compensation import (
    COMPENSATION,
    consumer_inputs,
    consumer_outputs,
    fold_mean,
    refit_lstsq,
)
from ._group import BaseUnitGroup
from ._layers import layer_type

__all__ = [
    "GraphGroup",
    "GraphMember",
    "MAX_ROWS",
    "dependency_graph",
    "graph_of",
    "torch_pruning",
]

#: Replicated samples per forward pass of the pulls (bounds peak memory).
MAX_ROWS = 4096


@dataclass(frozen=True)
class GraphMember:
    """One layer of a :class:`GraphGroup`.

    Parameters
    ----------
    name : str
        Qualified module name.
    consumes : bool
        True when the layer reads the units (its input features are
        removed), False when it produces or rescales them (its outputs are).
    dim : int
        Dimension of a consumer's input that indexes its features (``-1``
        for ``Linear``, ``1`` for a convolution).
    offset : int
        First feature of the group in the layer's features.
    width : int
        Consecutive features per unit: unit ``j`` is features
        ``offset + j * width:offset + (j + 1) * width``.
    tail : int, default=0
        Features of a consumer after the group's (other units concatenated
        with these): with ``offset`` it tells when another group's removal
        has moved this one.
    refittable : bool, default=True
        Whether a least-squares refit applies to the layer (a consumer).
    kind : str, default=""
        The layer's type name, for the error that says why it is not
        refittable.

    Examples
    --------
    The units of a group concatenated after 4 other features, 2 each:

    >>> GraphMember("fc", True, -1, offset=4, width=2).features([0, 2]).tolist()
    [4, 5, 8, 9]
    """

    name: str
    consumes: bool
    dim: int
    offset: int
    width: int
    tail: int = 0
    refittable: bool = True
    kind: str = ""

    def features(self, units):
        """Feature indices of ``units`` (unit-major)."""
        units = torch.as_tensor(units, dtype=torch.long).flatten()
        return (
            self.offset + units[:, None] * self.width + torch.arange(self.width)
        ).flatten()


@dataclass(frozen=True, eq=False)
class GraphGroup(BaseUnitGroup):
    """Coupled units found by the dependency graph (see the module docstring).

    A :class:`BaseUnitGroup`: the scorers read ``name``, ``size``,
    ``producers`` and ``consumers``; masking, pulls and removal go through
    the group's own methods (see the module docstring).

    Parameters
    ----------
    name : str
        The root layer (whose output channels are the units), as the user's
        model names it.
    size : int
        Number of units.
    members : tuple of GraphMember
        Every layer the units live in, the root first, named as in the
        model that is pruned.
    example_input : torch.Tensor
        An input batch, to trace the (pruned) model again for removal.
    channels_per_unit : int, default=1
        Consecutive channels of the root one unit spans: a whole norm group
        when the channels pass through an ``nn.GroupNorm``.

    Examples
    --------
    A convolution's channels, rescaled by a batch norm and read by a
    ``Linear`` as 36 flattened features each:

    >>> import torch
    >>> from torch import nn
    >>> from skbandit.pruning import find_graph_groups
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
    ...         self.fc = nn.Linear(4 * 6 * 6, 2)
    ...     def forward(self, x):
    ...         return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))
    >>> (group,) = find_graph_groups(Net().eval(), torch.randn(4, 1, 8, 8))
    >>> group.producers, group.consumers, [m.width for m in group.members]
    (('conv', 'bn'), ('fc',), [1, 1, 36])
    """

    name: str
    size: int
    members: tuple
    example_input: torch.Tensor = field(repr=False)
    channels_per_unit: int = 1
    #: A unit owns one row of the root layer (``unit_weights`` reads it).
    producer_width = 1
    producer_chunks = 1
    #: Consumers may read a unit as different numbers of features; the
    #: scorers view activations through :meth:`unit_view` instead.
    unit_width = None

    @property
    def producers(self):
        """Layers whose outputs hold the units (the root first)."""
        return tuple(m.name for m in self.members if not m.consumes)

    @property
    def consumers(self):
        """Layers that read the units."""
        return tuple(m.name for m in self.members if m.consumes)

    @property
    def feature_dim(self):
        """Unit dimension of the first consumer's input."""
        return self._consumer_members()[0].dim

    def _consumer_members(self):
        return [m for m in self.members if m.consumes]

    def _check_layout(self, member, n_features):
        if n_features != member.offset + self.size * member.width + member.tail:
            raise ValueError(
                f"{member.name!r} reads {n_features} features, not the "
                f"layout group {self.name!r} was found with: units "
                "concatenated with another group's have moved since (e.g. "
                "n_rounds > 1 on concatenated channels); find the groups "
                "again on the current model."
            )

    def unit_view(self, x):
        """The first consumer's input ``x`` as ``(samples, units, rest)``."""
        first = self._consumer_members()[0]
        self._check_layout(first, x.shape[first.dim])
        x = x.movedim(first.dim, 1)
        x = x.narrow(1, first.offset, self.size * first.width)
        return x.unflatten(1, (self.size, first.width)).flatten(2)

    def mask_hooks(self, model, keep, fill=None):
        """Hooks replacing masked units at every consumer's input.

        ``keep`` is ``(size,)`` (one variant) or ``(variants, size)``: then
        the batch is ``variants`` copies of the data, one mask each.
        ``fill`` (``(size,)``, default 0) is what a masked unit reads as.
        """
        hooks = []
        for member in self._consumer_members():
            module = model.get_submodule(member.name)
            self._check_layout(member, n_inputs(module))
            hooks.append(
                (module, _replica_mask_hook(member, keep, fill, n_inputs(module)))
            )
        handles = [_FastPathOff()]
        for module, hook in hooks:
            handles.append(module.register_forward_pre_hook(hook))
        return handles

    def check(self, model):
        """Nothing to check up front: the layout is checked where the group
        masks (a consumer reading another number of features raises)."""

    def check_compensation(self, compensate):
        """``ValueError`` when ``compensate="lstsq"`` and a consumer also
        produces the units (a layer applied to its own output, e.g. with tied
        weights): the refit of its kept inputs cannot reproduce the outputs
        it loses."""
        if not COMPENSATION[compensate].refits:
            return
        for member in self._consumer_members():
            if not member.refittable:
                raise ValueError(
                    "compensate='lstsq' refits Linear and plain convolution "
                    f"consumers; {member.name!r} ({member.kind}) in group "
                    f"{self.name!r} is not one: use compensate='mean' or 'none' "
                    f"for {member.kind}."
                )
        producers = {m.name for m in self.members if not m.consumes}
        for member in self.members:
            if member.consumes and member.name in producers:
                raise ValueError(
                    f"compensate='lstsq' cannot refit {member.name!r}: "
                    f"{member.name!r} reads the units it produces (a layer "
                    f"applied to its own output) in group {self.name!r}; use "
                    "compensate='mean' or 'none'."
                )

    def evaluate_arms(self, model, arms, X, y, metric, fills=None, tr=None, refit=None):
        """Mean metric with each arm masked alone, many arms per forward pass.

        The batch is replicated once per arm and each replica masks its own
        unit, so one forward pass evaluates a chunk of arms (``tr`` and
        ``refit`` are not used: a coupled group's consumers are not refit
        per pull).
        """
        return _replicated_arm_values(self, model, arms, X, y, metric, fills)

    def remove(self, original, pruned, removed, compensate, X, ridge):
        """Remove ``removed`` units from ``pruned`` in place (with
        compensation, see :func:`remove_units`).

        ``original`` is part of the removal protocol; a coupled group refits
        its consumers on the model as it was just before this removal.
        """
        _remove_graph_units(self, pruned, removed, compensate, X, ridge)

    def qualified(self, prefix):
        """The group with its members' names prefixed by ``prefix``."""
        members = tuple(replace(m, name=prefix + m.name) for m in self.members)
        return replace(self, members=members)

    def channels(self, units):
        """The root's channels of ``units`` (a unit spans
        ``channels_per_unit`` consecutive ones)."""
        units = torch.as_tensor(units, dtype=torch.long).flatten()
        per = self.channels_per_unit
        return (units[:, None] * per + torch.arange(per)).flatten().tolist()

    def fix_norms(self, model):
        """After the graph removed channels: each ``nn.GroupNorm`` member
        keeps ``channels_per_unit`` channels per norm group."""
        if self.channels_per_unit == 1:
            return
        for member in self.members:
            module = model.get_submodule(member.name)
            if isinstance(module, torch.nn.GroupNorm):
                module.num_groups = module.num_channels // self.channels_per_unit


class _FastPathOff:
    """Turns off ``nn.TransformerEncoderLayer``'s fused fast path until
    removed: that kernel reads the weights directly and skips module hooks,
    so masks would silently not apply."""

    # Counted, so that nested or interleaved hooks restore the user's setting
    # only when the last one is removed.
    _active = 0
    _saved = True

    def __init__(self):
        if _FastPathOff._active == 0:
            _FastPathOff._saved = torch.backends.mha.get_fastpath_enabled()
            torch.backends.mha.set_fastpath_enabled(False)
        _FastPathOff._active += 1

    def remove(self):
        _FastPathOff._active -= 1
        if _FastPathOff._active == 0:
            torch.backends.mha.set_fastpath_enabled(_FastPathOff._saved)


def n_inputs(module):
    """Input features (``Linear``) or channels (convolution) of a member."""
    return layer_type(module).n_in(module)


def _replica_mask_hook(member, keep, fill, n_features):
    """Pre-hook masking the group's features of ``member``'s input, per
    replica of the batch when ``keep`` has one row per replica."""
    keep = keep.view(-1, keep.shape[-1])
    index = member.features(torch.arange(keep.shape[1]))
    full_keep = keep.new_ones(keep.shape[0], n_features)
    full_keep[:, index] = keep.repeat_interleave(member.width, dim=1)
    full_fill = None
    if fill is not None:
        full_fill = fill.new_zeros(n_features)
        full_fill[index] = fill.repeat_interleave(member.width)

    def hook(module, args):
        x = args[0]
        variants = full_keep.shape[0]
        dim = member.dim % x.dim()
        shape = [1] * (x.dim() + 1)
        shape[0], shape[dim + 1] = variants, -1
        k = full_keep.to(device=x.device, dtype=x.dtype).view(shape)
        stacked = x.view(variants, -1, *x.shape[1:])
        out = stacked * k
        if full_fill is not None:
            f = full_fill.to(device=x.device, dtype=x.dtype).view(shape[1:])
            out = out + (1 - k) * f
        return (out.view(x.shape), *args[1:])

    return hook


# -- Torch-Pruning's graph ------------------------------------------------------


def torch_pruning():
    """The ``torch_pruning`` module, imported on first use: Sequential models
    and declared groups never trace a graph, and importing
    ``skbandit.pruning`` stays light."""
    import torch_pruning

    return torch_pruning


def dependency_graph(model, example_input):
    """Torch-Pruning's dependency graph of ``model`` traced on ``example_input``."""
    tp = torch_pruning()
    # The graph is traced through autograd, which prune()'s no_grad disables.
    with torch.enable_grad():
        return tp.DependencyGraph().build_dependency(
            model, example_inputs=example_input, verbose=False
        )


#: Dependency graphs of pruned copies, so that removing several groups from
#: one copy traces it once (Torch-Pruning keeps a graph valid across prunes).
_GRAPHS = weakref.WeakKeyDictionary()


def graph_of(model, example_input):
    """The (cached) dependency graph of ``model``."""
    dg = _GRAPHS.get(model)
    if dg is None:
        dg = _GRAPHS[model] = dependency_graph(model, example_input)
    return dg


# -- pulls and removal ---------------------------------------------------------


@torch.no_grad()
def _replicated_arm_values(group, model, arms, X, y, metric, fills=None):
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
def _remove_graph_units(group, pruned, removed, compensate, X, ridge):
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
    removed = group.channels(removed)
    consumers = [m.name for m in group.members if m.consumes]
    group.check_compensation(compensate)
    dg = graph_of(pruned, group.example_input)
    root = pruned.get_submodule(group.members[0].name)
    prune_out = dg.get_pruner_of_module(root).prune_out_channels
    doomed = dg.get_pruning_group(root, prune_out, removed)
    compensation = COMPENSATION[compensate]
    if compensation.folds:
        channels = group.channels(range(group.size))
        every = dg.get_pruning_group(root, prune_out, channels)
        means = _unit_means(pruned, dg, every, consumers[0], X, len(channels))
        for name, item in _consumer_items(dg, doomed, consumers):
            module = pruned.get_submodule(name)
            full = means.new_zeros(n_inputs(module))
            full[item.idxs] = means[item.root_idxs]
            fold_mean(module, torch.as_tensor(item.idxs), full)
    if compensation.refits:
        targets = consumer_outputs(pruned, consumers, X)
    doomed.prune()
    group.fix_norms(pruned)
    if compensation.refits:
        order = {name: i for i, (name, _) in enumerate(pruned.named_modules())}
        for name in sorted(consumers, key=order.__getitem__):
            inputs = consumer_inputs(pruned, name, X)
            refit_lstsq(pruned.get_submodule(name), inputs, targets[name], ridge)


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
    x = consumer_inputs(model, consumer, X)
    dim = layer_type(model.get_submodule(consumer)).feature_dim
    columns = x.movedim(dim, 1)[:, item.idxs].transpose(0, 1).flatten(1).mean(1)
    units = torch.as_tensor(item.root_idxs, device=columns.device)
    total = columns.new_zeros(size).index_add_(0, units, columns)
    return total / torch.bincount(units, minlength=size).to(columns.dtype)
