"""Finding the unit groups of any torch model: :func:`discover_groups`.

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

* its members are convolutions, ``Linear`` and batch-norm layers of a type
  with an entry in the layer registry (``_layers.py``; a LayerNorm, an
  embedding, ``nn.MultiheadAttention``, a transposed convolution or a free
  parameter rescales, mixes or lays out the units otherwise, so a group
  through one is left alone);
* every member holds every unit, ``width`` consecutive features each;
* at least one member reads the units (a *consumer*: its input features are
  removed), so a mask has somewhere to act;
* removing units physically gives the same output as masking them at the
  consumers. This is checked once, on the example input: a group whose
  removal breaks the model's reshapes (the query/key dimensions of an
  attention layer, the output layer) fails the check and is dropped.

How a found group is masked, pulled and removed is :mod:`._graph`'s.
"""

import contextlib
import copy
import signal
import threading
import warnings
from dataclasses import replace

import torch
from torch import nn

from ._blocks import find_block_groups
from ._graph import (
    GraphGroup,
    GraphMember,
    dependency_graph,
    torch_pruning,
)
from ._inputs import PREFIX, InputAdapter, unwrap
from ._layers import layer_type
from ._masking import masked
from ._units import find_unit_groups

__all__ = ["EXAMPLE_ROWS", "TRACE_TIMEOUT", "discover_groups", "find_graph_groups"]

#: Samples of the data the groups are traced and checked on.
EXAMPLE_ROWS = 4


def _member_kinds():
    OP = torch_pruning().ops.OPTYPE
    real = {OP.CONV, OP.DEPTHWISE_CONV, OP.LINEAR, OP.BN, OP.GN}
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
    per_unit = _channels_per_unit(dg, tp_group, members, size)
    if per_unit is None:
        return None
    if per_unit > 1:  # units are whole norm groups
        members = [replace(m, width=m.width * per_unit) for m in members]
        size //= per_unit
    return GraphGroup(members[0].name, size, tuple(members), example_input, per_unit)


def _channels_per_unit(dg, tp_group, members, size):
    """Channels per unit: those of a norm group where the units pass through
    an ``nn.GroupNorm`` (all alike, aligned), else 1; None if they do not
    make whole norm groups."""
    per = set()
    for item in tp_group:
        module = item.dep.target.module
        if isinstance(module, nn.GroupNorm):
            if min(item.idxs) % (module.num_channels // module.num_groups):
                return None
            per.add(module.num_channels // module.num_groups)
    if not per:
        return 1
    if len(per) > 1 or size % next(iter(per)) or size // next(iter(per)) < 2:
        return None
    return per.pop()


def _affine_member(name, consumes, module, idxs, root_idxs, size):
    """The member if unit ``j`` owns features ``offset + j * width + i``."""
    if len(idxs) % size or sorted(set(root_idxs)) != list(range(size)):
        return None
    width = len(idxs) // size
    pairs = sorted(zip(root_idxs, idxs))
    offset = min(idxs)
    if [i for _, i in pairs] != list(range(offset, offset + size * width)):
        return None
    entry = layer_type(module)
    if entry is None:  # a layer type without a registry entry
        return None
    tail = entry.n_in(module) - offset - size * width if consumes else 0
    return GraphMember(
        name,
        consumes,
        entry.feature_dim,
        offset,
        width,
        tail,
        entry.refittable(module),
        type(module).__name__,
    )


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
            tp_group.prune(group.channels(_odd_units(group)))
            group.fix_norms(copied)
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
        root,
        dg.get_pruner_of_module(root).prune_out_channels,
        group.channels(range(group.size)),
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


#: Seconds tracing a model's dependency graph may take before discovery
#: gives up with an error (Torch-Pruning's graph can grow without bound).
TRACE_TIMEOUT = 120.0

#: What tracing an arbitrary forward raises when it cannot follow it (an
#: interruption, running out of memory or the time limit still propagate).
_TRACE_ERRORS = (
    RuntimeError,
    TypeError,
    ValueError,
    AttributeError,
    IndexError,
    KeyError,
    NotImplementedError,
    AssertionError,
)


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds, what):
    """Raise ``TimeoutError`` (naming ``what``) when the block runs past
    ``seconds``; no limit off the main thread or without ``SIGALRM``."""
    usable = (
        seconds is not None
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def alarm(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Timeout:
        raise TimeoutError(
            f"Discovering the prunable units of {what} took more than "
            f"{seconds:g} s: Torch-Pruning's dependency graph of it does not "
            "finish. Declare its groups (UnitGroup, passed as "
            "prune(..., groups=[...])); transformer blocks with recognised "
            "attention layers are discovered without the graph."
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _declaring(model):
    return [
        name
        for name, module in model.named_modules()
        if callable(getattr(module, "unit_groups", None))
    ]


def discover_groups(model, X):
    """The prunable units of ``model``: sequential and declared, then those
    of its transformer blocks or of its dependency graph.

    An ``nn.Sequential`` keeps the rules of :func:`find_unit_groups` (and
    their fast pulls). Any other model gets the groups its modules declare
    (e.g. :class:`SelfAttention` heads) and, for the layers those do not
    cover, the attention heads and feed-forward channels of its transformer
    blocks (:func:`find_block_groups`, when it has an attention layer it
    recognises) or else :func:`find_graph_groups` (at most
    :data:`TRACE_TIMEOUT` seconds); without either it falls back to
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
    groups : list of UnitGroup, BlockGroup or GraphGroup

    Raises
    ------
    TypeError
        If no way finds a group: no declared units, no ``nn.Sequential``
        chain and nothing from the dependency graph.
    TimeoutError
        If tracing the dependency graph takes longer than
        :data:`TRACE_TIMEOUT` seconds.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> [type(g).__name__ for g in discover_groups(net, torch.randn(5, 4))]
    ['UnitGroup']
    """
    if isinstance(model, nn.Sequential):
        return find_unit_groups(model, example_input=X[:1])
    user = type(unwrap(model)).__name__  # not the input adapter's
    declared = find_unit_groups(model, X[:1]) if _declares_units(model) else []
    covered = {n for g in declared for n in (*g.producers, *g.consumers)}
    example = X[:EXAMPLE_ROWS]
    found = find_block_groups(model, example, _declaring(model), _probe)
    if not found:
        try:
            with _time_limit(TRACE_TIMEOUT, user):
                found = find_graph_groups(model, example)
        except _TRACE_ERRORS as error:  # tracing a forward it cannot follow
            warnings.warn(
                f"Torch-Pruning could not trace {user} ({error!r}); "
                "only its nn.Sequential and declared units are pruned.",
                UserWarning,
                stacklevel=3,
            )
            found = []
    found = [g for g in found if covered.isdisjoint((*g.producers, *g.consumers))]
    if not declared and not found:
        if not _declares_units(model) and not _holds_sequential(model):
            raise TypeError(
                f"No prunable units found in {user}: no group "
                "of its dependency graph could be removed as masked, it "
                "holds no nn.Sequential chain and no module declares "
                "unit_groups(name). Declare the groups with UnitGroup and "
                "pass them as prune(..., groups=[...])."
            )
        return find_unit_groups(model, example_input=X[:1])
    if isinstance(model, InputAdapter):  # report the user's layer names
        found = [replace(g, name=g.name.removeprefix(PREFIX)) for g in found]
    return declared + found
