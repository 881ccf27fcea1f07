"""Unit groups of any torch model, from Torch-Pruning's dependency graph.

:func:`find_unit_groups` reads ``nn.Sequential`` chains and declared groups;
a ResNet, a MobileNet, a ViT or a Hugging Face model has neither. Here
Torch-Pruning's :class:`~torch_pruning.DependencyGraph` traces the model once
and says which output channels are **coupled**: the channels of every layer
that writes into one residual sum, the channels a depthwise convolution
carries through, a channel and the ``H * W`` features a ``Linear`` reads it as
after ``flatten``. Each coupled set is one :class:`GraphGroup`: its units are
removed from every member together.

A group is kept only where masking equals removal, which is what the bandit's
pulls need:

* its members are convolutions, ``Linear`` and batch-norm layers (a
  LayerNorm, an embedding, ``nn.MultiheadAttention`` or a free parameter
  rescales or mixes the units, so a group through one is left alone);
* every member holds every unit, ``width`` consecutive features each;
* at least one member reads the units (a *consumer*: its input features are
  removed), so a mask has somewhere to act;
* removing units physically gives the same output as masking them at the
  consumers. This is checked once, on the example input: a group whose
  removal breaks the model's reshapes (the query/key dimensions of an
  attention layer, the output layer) fails the check and is dropped.

Masking acts on the consumers' inputs, not the producers' outputs: a batch
norm or a bias after a zeroed producer would make the channel non-zero
again, whereas a consumer that reads zeros computes exactly what it computes
without those input columns.
"""

import copy
import warnings
import weakref
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from ._masking import masked

__all__ = ["GraphGroup", "GraphMember", "find_graph_groups", "discover_groups"]

#: Samples of the data the groups are traced and checked on.
EXAMPLE_ROWS = 4


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

    def features(self, units):
        """Feature indices of ``units`` (unit-major)."""
        units = torch.as_tensor(units, dtype=torch.long).flatten()
        return (
            self.offset + units[:, None] * self.width + torch.arange(self.width)
        ).flatten()


@dataclass(frozen=True, eq=False)
class GraphGroup:
    """Coupled units found by the dependency graph (see the module docstring).

    The interface of :class:`UnitGroup` that the scorers use (``name``,
    ``size``, ``producers``, ``consumers``), plus how to mask, view and
    remove the units; ``prune`` calls these instead of the slice rules of a
    declared group.

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

    Examples
    --------
    A convolution's channels, rescaled by a batch norm and read by a
    ``Linear`` as 36 flattened features each:

    >>> import torch
    >>> from torch import nn
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
            self._check_layout(member, _n_inputs(module))
            hooks.append(
                (module, _replica_mask_hook(member, keep, fill, _n_inputs(module)))
            )
        handles = [_FastPathOff()]
        for module, hook in hooks:
            handles.append(module.register_forward_pre_hook(hook))
        return handles

    def evaluate_arms(self, model, arms, X, y, metric, fills=None):
        """Mean metric with each arm masked alone, many arms per forward pass.

        The batch is replicated once per arm and each replica masks its own
        unit, so one forward pass evaluates a chunk of arms.
        """
        from ._hooks import replicated_arm_values

        return replicated_arm_values(self, model, arms, X, y, metric, fills)

    def remove(self, original, pruned, removed, compensate, X, ridge):
        """Remove ``removed`` units from ``pruned`` in place (with
        compensation, see :func:`remove_units`)."""
        from ._hooks import remove_graph_units

        # original is part of the removal protocol; a coupled group refits
        # its consumers on the model as it was just before this removal.
        remove_graph_units(self, pruned, removed, compensate, X, ridge)


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


def _n_inputs(module):
    return module.in_features if isinstance(module, nn.Linear) else module.in_channels


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


# -- discovery ----------------------------------------------------------------


def _torch_pruning():
    # Imported on first use: Sequential models and declared groups never
    # trace a graph, and importing skbandit.pruning stays light.
    import torch_pruning

    return torch_pruning


def dependency_graph(model, example_input):
    """Torch-Pruning's dependency graph of ``model`` traced on ``example_input``."""
    tp = _torch_pruning()
    # The graph is traced through autograd, which prune()'s no_grad disables.
    with torch.enable_grad():
        return tp.DependencyGraph().build_dependency(
            model, example_inputs=example_input, verbose=False
        )


def _member_kinds():
    OP = _torch_pruning().ops.OPTYPE
    real = {OP.CONV, OP.DEPTHWISE_CONV, OP.LINEAR, OP.BN}
    # Operations without parameters that carry channels through unchanged.
    virtual = {OP.ELEMENTWISE, OP.RESHAPE, OP.CONCAT, OP.SPLIT, OP.SLICE}
    return real, virtual


def _graph_group(dg, tp_group, example_input):
    """A :class:`GraphGroup` of one Torch-Pruning group, or None if masking
    it at its consumers cannot equal removing it."""
    real, virtual = _member_kinds()
    size = len(tp_group[0].idxs)
    if size < 2:
        return None  # a group of one unit can never lose a unit
    members = []
    for item in tp_group:
        node = item.dep.target
        if node.type in virtual:
            continue
        if node.type not in real:
            return None
        handler = item.dep.handler
        # A batch norm prunes inputs and outputs with one function: it
        # rescales the units, it does not consume them.
        consumes = dg.is_in_channel_pruning_fn(
            handler
        ) and not dg.is_out_channel_pruning_fn(handler)
        member = _affine_member(
            dg._module2name[node.module],
            consumes,
            node.module,
            item.idxs,
            item.root_idxs,
            size,
        )
        if member is None:
            return None
        members.append(member)
    if not any(m.consumes for m in members):
        return None
    return GraphGroup(members[0].name, size, tuple(members), example_input)


def _affine_member(name, consumes, module, idxs, root_idxs, size):
    """The member if unit ``j`` owns features ``offset + j * width + i``."""
    if len(idxs) % size or sorted(set(root_idxs)) != list(range(size)):
        return None
    width = len(idxs) // size
    pairs = sorted(zip(root_idxs, idxs))
    offset = min(idxs)
    if [i for _, i in pairs] != list(range(offset, offset + size * width)):
        return None
    dim = -1 if isinstance(module, nn.Linear) else 1
    tail = _n_inputs(module) - offset - size * width if consumes else 0
    return GraphMember(name, consumes, dim, offset, width, tail)


def find_graph_groups(model, example_input):
    """Coupled unit groups of any model, from its dependency graph.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode. Left unchanged.
    example_input : torch.Tensor
        A few input samples: the model is traced on them, and removal is
        checked against masking on them.

    Returns
    -------
    groups : list of GraphGroup
        In the graph's order; groups whose removal does not equal their mask
        are left out (see the module docstring).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> class Residual(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 4)
    ...         self.head = nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return self.head(x + self.b(torch.relu(self.a(x))))
    >>> groups = find_graph_groups(Residual().eval(), torch.randn(4, 4))
    >>> [(g.name, g.size, g.consumers) for g in groups]
    [('a', 8, ('b',))]
    """
    probe = _probe(model)
    copied = copy.deepcopy(probe)
    dg = dependency_graph(copied, example_input)
    candidates = []
    for tp_group in dg.get_all_groups():
        group = _graph_group(dg, tp_group, example_input)
        if group is not None:
            candidates.append((group, tp_group))
    if not candidates:
        return []
    groups = [g for g, _ in candidates]
    if _removal_matches_mask(probe, copied, candidates, example_input):
        return groups
    # Some group breaks the model when removed: check each on its own.
    return [g for g in groups if _removal_matches_mask_alone(probe, g, example_input)]


@torch.no_grad()
def _probe(model):
    """A copy of ``model`` with random weights of unit gain.

    The check of removal against masking is about the graph, not the
    weights, and trained or freshly initialised weights can hide a broken
    group: with BERT's initial weights (std 0.02) attention is uniform, so
    removing query/key dimensions changes nothing measurable.
    """
    probe = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    for param in probe.parameters():
        fan_in = param[0].numel() if param.dim() >= 2 else 4
        noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
        param.copy_(noise.to(param.device) / fan_in**0.5)
    return probe


def _odd_units(group):
    return list(range(1, group.size, 2))


def _removal_matches_mask(model, copied, candidates, X):
    """Whether removing the odd units of every candidate from ``copied`` (on
    its own dependency graph) gives ``model``'s output with them masked."""
    masks = {}
    try:
        for group, tp_group in candidates:
            tp_group.prune(_odd_units(group))
            keep = torch.ones(group.size)
            keep[_odd_units(group)] = 0
            masks[group] = keep
        with torch.no_grad():
            removed = copied(X)
            with masked(model, masks):
                expected = model(X)
    except (RuntimeError, ValueError, IndexError):  # a reshape that no longer fits
        return False
    return _close(removed, expected)


def _removal_matches_mask_alone(model, group, X):
    copied = copy.deepcopy(model)
    dg = dependency_graph(copied, X)
    root = copied.get_submodule(group.members[0].name)
    tp_group = dg.get_pruning_group(
        root, dg.get_pruner_of_module(root).prune_out_channels, list(range(group.size))
    )
    return _removal_matches_mask(model, copied, [(group, tp_group)], X)


def _close(a, b):
    if not (torch.is_tensor(a) and torch.is_tensor(b)) or a.shape != b.shape:
        return False
    scale = b.abs().max().clamp_min(1e-12)
    return bool(((a - b).abs().max() / scale) < 1e-4)


def _declares_units(model):
    return any(callable(getattr(m, "unit_groups", None)) for m in model.modules())


def _holds_sequential(model):
    return any(isinstance(m, nn.Sequential) for m in model.modules())


def discover_groups(model, X):
    """The prunable units of ``model``: sequential and declared, then from
    the dependency graph.

    An ``nn.Sequential`` keeps the rules of :func:`find_unit_groups` (and
    their fast pulls). Any other model gets the groups its modules declare
    (e.g. :class:`SelfAttention` heads) and, for the layers those do not
    cover, :func:`find_graph_groups`; without either it falls back to
    :func:`find_unit_groups` on the ``nn.Sequential`` chains inside the
    model.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode.
    X : torch.Tensor
        Input samples; the first few are used.

    Returns
    -------
    groups : list of UnitGroup or GraphGroup

    Raises
    ------
    TypeError
        If no way finds a group: no declared units, no ``nn.Sequential``
        chain and nothing from the dependency graph.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> [type(g).__name__ for g in discover_groups(net, torch.randn(5, 4))]
    ['UnitGroup']
    """
    from ._inputs import PREFIX, InputAdapter
    from ._units import find_unit_groups

    if isinstance(model, nn.Sequential):
        return find_unit_groups(model, example_input=X[:1])
    declared = find_unit_groups(model, X[:1]) if _declares_units(model) else []
    covered = {n for g in declared for n in (*g.producers, *g.consumers)}
    try:
        found = find_graph_groups(model, X[:EXAMPLE_ROWS])
    except Exception as error:  # tracing an arbitrary forward can fail anywhere
        warnings.warn(
            f"Torch-Pruning could not trace {type(model).__name__} ({error!r}); "
            "only its nn.Sequential and declared units are pruned.",
            UserWarning,
            stacklevel=3,
        )
        found = []
    found = [g for g in found if covered.isdisjoint((*g.producers, *g.consumers))]
    if not declared and not found:
        if not _declares_units(model) and not _holds_sequential(model):
            raise TypeError(
                f"No prunable units found in {type(model).__name__}: no group "
                "of its dependency graph could be removed as masked, it "
                "holds no nn.Sequential chain and no module declares "
                "unit_groups(name). Declare the groups with UnitGroup and "
                "pass them as prune(..., groups=[...])."
            )
        return find_unit_groups(model, example_input=X[:1])
    if isinstance(model, InputAdapter):  # report the user's layer names
        found = [replace(g, name=g.name.removeprefix(PREFIX)) for g in found]
    return declared + found


#: Dependency graphs of pruned copies, so that removing several groups from
#: one copy traces it once (Torch-Pruning keeps a graph valid across prunes).
_GRAPHS = weakref.WeakKeyDictionary()


def graph_of(model, example_input):
    """The (cached) dependency graph of ``model``."""
    dg = _GRAPHS.get(model)
    if dg is None:
        dg = _GRAPHS[model] = dependency_graph(model, example_input)
    return dg
