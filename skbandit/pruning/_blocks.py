"""Transformer blocks found by their structure: :class:`BlockGroup`.

Torch-Pruning's dependency graph does not see attention heads (a head is
``head_dim`` rows of the query, key and value projections read back as
``head_dim`` inputs of the output projection, through reshapes it cannot
follow), does not know GPT-2's ``Conv1D`` and, on a Llama, never returns.
A transformer's prunable units are few and named alike across libraries, so
:func:`find_block_groups` reads them off the module names instead:

* **attention heads**: separate ``q/k/v`` projections and an output
  projection (Hugging Face BERT, DistilBERT, Llama, Mistral, OPT, ...) or a
  fused ``qkv`` projection (GPT-2's ``c_attn``, timm's ViT ``qkv``). With
  grouped-query attention a unit is a key/value head *and* the query heads
  that read it, removed together.
* **feed-forward channels**: ``fc1 -> fc2``, ``c_fc -> c_proj``,
  ``intermediate.dense -> output.dense``, gated ``gate_proj, up_proj ->
  down_proj``, ...

A candidate is kept only if physically removing units gives the same output
as masking them (checked once on a copy with random weights, as the graph's
groups are), so a name that matches by accident is dropped. Removal slices
the rows of the producers and the inputs of the output projection and
updates the attention module's head-count attributes (``num_heads``,
``split_size``, ...) where its forward reads them; rotary embeddings,
norms and the residual stream are untouched. Masking and pulls are those of
a :class:`GraphGroup` (replicated batches, masks at the consumer's input).
"""

import contextlib
import copy
import functools
from dataclasses import dataclass, replace

import torch

from ._compensation import (
    consumer_inputs,
    consumer_outputs,
    fold_mean,
    refit_lstsq,
)
from ._graph import GraphGroup, GraphMember
from ._layers import layer_type
from ._masking import masked

__all__ = ["BlockGroup", "find_block_groups", "kv_cache_off", "with_kv_cache_off"]


@dataclass(frozen=True, eq=False)
class BlockGroup(GraphGroup):
    """Attention heads or feed-forward channels of one transformer block.

    A :class:`GraphGroup` (masks at the consumer's input, replicated pulls)
    whose removal slices by its layout instead of tracing a graph.

    Parameters
    ----------
    name, size, members, example_input, channels_per_unit :
        As :class:`GraphGroup`; ``members`` lists the producers
        (``consumes=False``) then the consumer; ``channels_per_unit`` is 1.
    layout : tuple of (str, int, int)
        Per producer: its name, the consecutive rows one unit owns in each
        block and the number of blocks (3 for a fused ``qkv``).
    attention : str or None
        The attention module whose head counts follow removal (None for
        feed-forward channels).
    heads_per_unit : int, default=1
        Query heads per unit (grouped-query attention: per key/value head).
    head_dim : int, default=1
        Features per head.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> class Mlp(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 4)
    ...     def forward(self, x):
    ...         return self.fc2(torch.relu(self.fc1(x)))
    >>> heads_free = find_block_groups(Mlp().eval(), torch.randn(4, 4))
    >>> heads_free  # no attention: left to the dependency graph
    []
    """

    layout: tuple = ()
    attention: str = None
    heads_per_unit: int = 1
    head_dim: int = 1

    @property
    def unit_width(self):
        """Consecutive input features of the (one) consumer a unit spans:
        ``head_dim`` times ``heads_per_unit`` for heads, 1 for channels."""
        (consumer,) = self._consumer_members()
        return consumer.width

    @property
    def producer_width(self):
        """Rows of the first producer one unit owns per block."""
        return self.layout[0][1]

    @property
    def producer_chunks(self):
        """Blocks of the first producer's rows."""
        return self.layout[0][2]

    def rows(self, name, units):
        """Rows of producer ``name`` that ``units`` own, in increasing order."""
        ((width, chunks),) = [(w, c) for n, w, c in self.layout if n == name]
        units = torch.as_tensor(units, dtype=torch.long).flatten()
        rows = (units[:, None] * width + torch.arange(width)).flatten()
        offsets = torch.arange(chunks) * self.size * width
        return (offsets[:, None] + rows[None, :]).flatten()

    def check(self, model):
        """``ValueError`` unless every producer and consumer has the widths
        the group was found with."""
        for name, width, chunks in self.layout:
            module = model.get_submodule(name)
            rows = layer_type(module).n_out(module)
            if rows != self.size * width * chunks:
                raise ValueError(
                    f"{name!r} has {rows} outputs; group {self.name!r} spans "
                    f"{self.size * width * chunks}: find the groups again."
                )

    def remove(self, original, pruned, removed, compensate, X, ridge):
        """Slice the removed units out of ``pruned`` in place, with
        ``compensate`` (``"mean"``: the units' means folded into the
        consumer's bias; ``"lstsq"``: the consumer refit on its kept inputs
        to reproduce ``original``'s output)."""
        self.check_compensation(compensate)
        removed = torch.as_tensor(removed, dtype=torch.long).flatten()
        keep_mask = torch.ones(self.size, dtype=torch.bool)
        keep_mask[removed] = False
        keep = torch.nonzero(keep_mask).flatten()
        consumers = self._consumer_members()
        if compensate == "lstsq":
            targets = consumer_outputs(original, [m.name for m in consumers], X)
        if compensate == "mean":
            first = consumers[0]
            view = self.unit_view(consumer_inputs(pruned, first.name, X))
            means = view.mean((0, 2)).repeat_interleave(first.width)
        device = next(pruned.parameters()).device
        for name, _, _ in self.layout:
            module = pruned.get_submodule(name)
            layer_type(module).slice_out(module, self.rows(name, keep).to(device))
        for member in consumers:
            module = pruned.get_submodule(member.name)
            if compensate == "mean":
                fold_mean(module, member.features(removed).to(device), means)
            layer_type(module).slice_in(module, member.features(keep).to(device))
        if self.attention is not None:
            _update_head_counts(
                pruned.get_submodule(self.attention), self, len(keep), len(removed)
            )
        if compensate == "lstsq":
            for member in consumers:
                module = pruned.get_submodule(member.name)
                inputs = consumer_inputs(pruned, member.name, X)
                refit_lstsq(module, inputs, targets[member.name], ridge)

    def qualified(self, prefix):
        """The group with every module name prefixed by ``prefix``."""
        group = super().qualified(prefix)
        layout = tuple((prefix + n, w, c) for n, w, c in self.layout)
        attention = None if self.attention is None else prefix + self.attention
        return replace(group, layout=layout, attention=attention)


#: Attributes that count query heads, key/value heads and query features.
_HEAD_ATTRS = ("num_heads", "n_heads", "num_attention_heads", "n_head")
_KV_ATTRS = ("num_key_value_heads", "num_kv_heads", "n_kv_heads")
_WIDTH_ATTRS = ("all_head_size", "split_size", "inner_dim")


def _update_head_counts(module, group, kept, removed):
    """Shrink the head-count attributes an attention forward may read."""
    before = kept + removed
    heads = group.heads_per_unit
    rules = [(_HEAD_ATTRS, before * heads, kept * heads)]
    if heads > 1:
        rules.append((_KV_ATTRS, before, kept))
    width = group.head_dim * heads
    rules.append((_WIDTH_ATTRS, before * width, kept * width))
    for names, old, new in rules:
        for attr in names:
            value = getattr(module, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and value == old:
                setattr(module, attr, new)


# -- discovery -----------------------------------------------------------------

#: Separate projections: (attention module, query, key, value, output),
#: relative to the module that holds them all.
_SEPARATE = (
    ("", "q_proj", "k_proj", "v_proj", "o_proj"),
    ("", "q_proj", "k_proj", "v_proj", "out_proj"),
    ("", "q_lin", "k_lin", "v_lin", "out_lin"),
    ("self", "self.query", "self.key", "self.value", "output.dense"),
    ("", "wq", "wk", "wv", "wo"),
    ("", "to_q", "to_k", "to_v", "to_out.0"),
)
#: Fused projections (all query heads, then all keys, then all values).
_FUSED = (("qkv", "proj"), ("c_attn", "c_proj"), ("qkv_proj", "o_proj"))
#: Feed-forward blocks: (producers, consumer), gated ones first.
_FFN = (
    (("gate_proj", "up_proj"), "down_proj"),
    (("w1", "w3"), "w2"),
    (("c_fc",), "c_proj"),
    (("fc1",), "fc2"),
    (("lin1",), "lin2"),
    (("intermediate.dense",), "output.dense"),
    (("up_proj",), "down_proj"),
    (("dense_h_to_4h",), "dense_4h_to_h"),
    (("fc_in",), "fc_out"),
    (("wi",), "wo"),
)
_HEAD_DIM_ATTRS = ("head_dim", "attention_head_size", "head_size", "d_head")


def _child(module, path):
    try:
        child = module.get_submodule(path)
    except AttributeError:
        return None
    entry = layer_type(child)
    return child if entry is not None and entry.weighted and entry.flat else None


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _int_attr(module, names):
    for attr in names:
        value = getattr(module, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _n_out(module):
    return layer_type(module).n_out(module)


def _n_in(module):
    return layer_type(module).n_in(module)


def _head_dim(attention, width):
    head_dim = _int_attr(attention, _HEAD_DIM_ATTRS)
    if head_dim is None:
        heads = _int_attr(attention, _HEAD_ATTRS)
        head_dim = width // heads if heads and width % heads == 0 else None
    return head_dim


def _group(name, size, layout, consumer, unit_width, example, **kwargs):
    if size < 2:
        return None
    members = tuple(GraphMember(n, False, -1, 0, w) for n, w, _ in layout) + (
        GraphMember(consumer, True, -1, 0, unit_width),
    )
    return BlockGroup(name, size, members, example, layout=layout, **kwargs)


def _separate_heads(prefix, module, example):
    for attn_path, q, k, v, o in _SEPARATE:
        layers = [_child(module, p) for p in (q, k, v, o)]
        if any(layer is None for layer in layers):
            continue
        q_layer, k_layer, v_layer, o_layer = layers
        attention = module.get_submodule(attn_path) if attn_path else module
        head_dim = _head_dim(attention, _n_out(q_layer))
        if not head_dim or _n_out(q_layer) % head_dim or _n_out(k_layer) % head_dim:
            continue
        heads, kv = _n_out(q_layer) // head_dim, _n_out(k_layer) // head_dim
        if _n_out(v_layer) != _n_out(k_layer) or heads % kv:
            continue
        if _n_in(o_layer) != _n_out(q_layer):
            continue
        per_unit = heads // kv
        layout = (
            (_join(prefix, q), per_unit * head_dim, 1),
            (_join(prefix, k), head_dim, 1),
            (_join(prefix, v), head_dim, 1),
        )
        return _group(
            _join(prefix, q),
            kv,
            layout,
            _join(prefix, o),
            per_unit * head_dim,
            example,
            attention=_join(prefix, attn_path),
            heads_per_unit=per_unit,
            head_dim=head_dim,
        )
    return None


def _fused_heads(prefix, module, example):
    for qkv, out in _FUSED:
        qkv_layer, out_layer = _child(module, qkv), _child(module, out)
        if qkv_layer is None or out_layer is None:
            continue
        width = _n_in(out_layer)
        if _n_out(qkv_layer) != 3 * width:
            continue
        head_dim = _head_dim(module, width)
        if not head_dim or width % head_dim:
            continue
        return _group(
            _join(prefix, qkv),
            width // head_dim,
            ((_join(prefix, qkv), head_dim, 3),),
            _join(prefix, out),
            head_dim,
            example,
            attention=prefix,
            head_dim=head_dim,
        )
    return None


def _feed_forward(prefix, module, example, used):
    for producers, consumer in _FFN:
        layers = [_child(module, p) for p in (*producers, consumer)]
        if any(layer is None for layer in layers):
            continue
        names = [_join(prefix, p) for p in (*producers, consumer)]
        if used.intersection(names):
            continue
        size = _n_out(layers[0])
        if any(_n_out(p) != size for p in layers[:-1]) or _n_in(layers[-1]) != size:
            continue
        layout = tuple((n, 1, 1) for n in names[:-1])
        group = _group(names[0], size, layout, names[-1], 1, example)
        if group is not None:
            return group
    return None


def _candidates(model, example, exclude):
    heads, ffn, used = [], [], set()
    modules = [
        (name, module)
        for name, module in model.named_modules()
        if not any(name == p or name.startswith(p + ".") for p in exclude)
    ]
    for name, module in modules:
        group = _separate_heads(name, module, example) or _fused_heads(
            name, module, example
        )
        if group is not None and used.isdisjoint(m.name for m in group.members):
            heads.append(group)
            used.update(m.name for m in group.members)
    if not heads:
        return []
    for name, module in modules:
        group = _feed_forward(name, module, example, used)
        if group is not None:
            ffn.append(group)
            used.update(m.name for m in group.members)
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted(heads + ffn, key=lambda g: order[g.name])


def find_block_groups(model, example_input, exclude=(), probe=None):
    """Attention heads and feed-forward channels of a transformer's blocks.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode. Left unchanged.
    example_input : torch.Tensor
        A few input samples: removal is checked against masking on them.
    exclude : sequence of str, default=()
        Module names whose subtrees are left out (modules that declare their
        own units).
    probe : callable, default=None
        ``probe(model)``: the copy of ``model`` removal is checked on (the
        discovery's copy with random weights of unit gain; a plain copy if
        None).

    Returns
    -------
    groups : list of BlockGroup
        In module order; empty when no attention layer is recognised (the
        model is then left to the dependency graph).

    Examples
    --------
    A timm-style attention with a fused ``qkv`` projection, 2 heads of 4:

    >>> import torch
    >>> import torch.nn.functional as F
    >>> from torch import nn
    >>> class Attention(nn.Module):
    ...     def __init__(self, dim=8, num_heads=2):
    ...         super().__init__()
    ...         self.num_heads, self.head_dim = num_heads, dim // num_heads
    ...         self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
    ...     def forward(self, x):
    ...         n, t, _ = x.shape
    ...         qkv = self.qkv(x).reshape(n, t, 3, self.num_heads, self.head_dim)
    ...         q, k, v = qkv.permute(2, 0, 3, 1, 4)
    ...         out = F.scaled_dot_product_attention(q, k, v)
    ...         return self.proj(out.transpose(1, 2).reshape(n, t, -1))
    >>> (heads,) = find_block_groups(Attention().eval(), torch.randn(4, 5, 8))
    >>> heads.name, heads.size, heads.consumers, heads.layout
    ('qkv', 2, ('proj',), (('qkv', 4, 3),))
    """
    candidates = _candidates(model, example_input, exclude)
    if not candidates:
        return []
    probe = (probe or copy.deepcopy)(model)
    if _matches(probe, candidates, example_input):
        return candidates
    return [g for g in candidates if _matches(probe, [g], example_input)]


def _odd_units(group):
    return list(range(1, group.size, 2))


@torch.no_grad()
def _matches(model, groups, X):
    """Whether removing every group's odd units gives ``model``'s output with
    them masked (to 1e-4 relative)."""
    masks = {}
    copied = copy.deepcopy(model)
    try:
        for group in groups:
            group.remove(model, copied, _odd_units(group), "none", None, 0.0)
            keep = torch.ones(group.size)
            keep[_odd_units(group)] = 0
            masks[group] = keep
        removed = copied(X)
        with masked(model, masks):
            expected = model(X)
    except (RuntimeError, ValueError, IndexError):  # a reshape that no longer fits
        return False
    if not (torch.is_tensor(removed) and torch.is_tensor(expected)):
        return False
    if removed.shape != expected.shape:
        return False
    scale = expected.abs().max().clamp_min(1e-12)
    return bool(((removed - expected).abs().max() / scale) < 1e-4)


@contextlib.contextmanager
def kv_cache_off(model):
    """Turn a decoder's key/value cache off while pruning.

    Inside the block every submodule's ``config.use_cache`` (Hugging Face)
    is False, so that each forward pass (the pulls run thousands) neither
    builds nor returns a cache. Yields ``restore(pruned)``, which sets the
    caller's setting back on a pruned copy (by module name); ``model``'s own
    is set back on exit.
    """
    names = [
        name
        for name, module in model.named_modules()
        if getattr(getattr(module, "config", None), "use_cache", False) is True
    ]
    configs = {id(c): c for c in (model.get_submodule(n).config for n in names)}
    for config in configs.values():
        config.use_cache = False

    def restore(pruned):
        for name in names:
            pruned.get_submodule(name).config.use_cache = True
        return pruned

    try:
        yield restore
    finally:
        for config in configs.values():
            config.use_cache = True


def with_kv_cache_off(prune):
    """``prune(model, ...) -> (pruned, report)`` run inside
    :func:`kv_cache_off` of ``model``, the caller's setting restored on the
    pruned copy."""

    @functools.wraps(prune)
    def wrapper(*args, **kwargs):
        model = args[0] if args else kwargs.get("model")
        if not isinstance(model, torch.nn.Module):
            return prune(*args, **kwargs)  # prune says what is wrong
        with kv_cache_off(model) as restore:
            pruned, report = prune(*args, **kwargs)
        return restore(pruned), report

    return wrapper
