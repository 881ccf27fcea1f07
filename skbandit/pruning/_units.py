"""Prunable units: which tensors a group of units lives in, and how to find them.

A *unit group* is a set of interchangeable units (the hidden neurons of one
layer, the output channels of one convolution, the heads of one attention
layer) together with every tensor slice that belongs to each unit: the rows of
the layers that **produce** it (and of a normalisation layer that rescales it)
and the input features of the layers that **consume** it. Masking, scoring and
physical removal all work on this one abstraction, so a new layer type only
needs a producer/consumer rule, not new pruning code.

Two integers describe how a unit is laid out, so that one abstraction covers
neurons, channels and heads alike:

* ``unit_width``: how many consecutive features of a consumer's input one unit
  spans (1 for a neuron or a channel read by a convolution; ``H * W`` for a
  channel read by a ``Linear`` after ``Flatten``; ``head_dim`` for an attention
  head read by the output projection).
* ``producer_width`` and ``producer_chunks``: how many consecutive rows (dim 0)
  of a producer one unit owns, and in how many equal blocks the producer's
  rows are split (3 for a fused q/k/v projection: head ``h`` owns rows
  ``h * hd:(h + 1) * hd`` of each of the three blocks).

:func:`find_unit_groups` discovers groups in every ``nn.Sequential`` of a
model (layer chains, conv -> flatten -> linear, transformer feed-forward
blocks) and asks modules that know their own units (a ``unit_groups(name)``
method, e.g. an attention block) for theirs; anything else is declared by
hand with :class:`UnitGroup`.
"""

import math
import warnings
from collections import Counter
from dataclasses import dataclass, replace

import torch
from torch import nn

from ._chain import flat_children
from ._group import BaseUnitGroup
from ._layers import layer_type
from ._pulls import batched_kind, sliced_arm_values
from ._surgery import remove_sliced

__all__ = [
    "UnitGroup",
    "check_unit_groups",
    "find_unit_groups",
    "count_parameters",
    "unit_view",
    "unit_weights",
]

#: Modules that act on every unit independently (elementwise or per-feature
#: affine in eval mode), so they may sit between a producer and its consumer.
_PASS_THROUGH = (
    nn.ReLU,
    nn.ReLU6,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
)
#: Modules that act on every channel of a convolution's output independently
#: (pooling over space): pass-through for channel units, not for neurons.
_CHANNELWISE = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool3d,
)


@dataclass(frozen=True)
class UnitGroup(BaseUnitGroup):
    """One layer's worth of prunable units, laid out by slice rules.

    The :class:`BaseUnitGroup` of ``nn.Sequential`` chains and declared
    groups: masks act on the consumers' inputs along ``feature_dim``, pulls
    are batched rank-1 updates where the consumer allows them
    (:func:`evaluate_arms`), removal slices the producers' rows and the
    consumers' input features (:func:`remove_units`).

    Parameters
    ----------
    name : str
        Name of the module whose outputs are the units (the producer).
    size : int
        Number of units.
    producers : tuple of str
        Module names whose dimension 0 of every parameter/buffer holds the
        units' slices (the producing layer and a following batch norm); see
        ``producer_width`` and ``producer_chunks`` for the layout.
    consumers : tuple of str
        Module names that read the units: the mask is applied to their input,
        and physical removal drops their input features (weight dimension 1).
    feature_dim : int, default=-1
        Dimension of the consumer's input that indexes the units (``-1`` for
        ``nn.Linear``, ``1`` for convolutions).
    unit_width : int, default=1
        Consecutive features of the consumer's input (along ``feature_dim``)
        that one unit spans: unit ``j`` is features
        ``j * unit_width:(j + 1) * unit_width``.
    producer_width : int, default=1
        Consecutive rows of each producer block that one unit owns.
    producer_chunks : int, default=1
        Number of equal blocks the producers' dimension 0 is split into; a
        unit owns its rows in every block (a fused q/k/v projection has 3).

    Examples
    --------
    The heads of an attention layer with a fused ``qkv`` projection
    (``3 * heads * head_dim`` rows) read by an output projection:

    >>> heads = UnitGroup("attn", 4, ("attn.qkv",), ("attn.out",),
    ...                   unit_width=8, producer_width=8, producer_chunks=3)
    >>> heads.producer_index([1]).tolist()[:3], len(heads.producer_index([1]))
    ([8, 9, 10], 24)
    >>> heads.consumer_index([0, 2]).tolist()[8:10]
    [16, 17]
    """

    name: str
    size: int
    producers: tuple
    consumers: tuple
    feature_dim: int = -1
    unit_width: int = 1
    producer_width: int = 1
    producer_chunks: int = 1

    def __post_init__(self):
        for field in ("size", "unit_width", "producer_width", "producer_chunks"):
            value = getattr(self, field)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(
                    f"UnitGroup {self.name!r}: {field} must be an int >= 1, "
                    f"got {value!r}."
                )

    @property
    def n_features(self):
        """Features of a consumer's input that the group spans."""
        return self.size * self.unit_width

    @property
    def n_rows(self):
        """Rows (dimension 0) of each producer that the group spans."""
        return self.size * self.producer_width * self.producer_chunks

    def producer_index(self, units):
        """Producer rows (dimension 0) of ``units``, in increasing order."""
        units = _as_index(units)
        block = self.size * self.producer_width
        rows = _expand(units, self.producer_width)
        offsets = torch.arange(self.producer_chunks, dtype=torch.long) * block
        return (offsets[:, None] + rows[None, :]).flatten()

    def consumer_index(self, units):
        """Consumer input features (along ``feature_dim``) of ``units``."""
        return _expand(_as_index(units), self.unit_width)

    def feature_values(self, values):
        """Per-unit ``values`` repeated over each unit's consumer features."""
        values = torch.as_tensor(values)
        if self.unit_width == 1:
            return values
        return values.repeat_interleave(self.unit_width)

    # -- the unit-group protocol ------------------------------------------

    def check(self, model):
        """Raise ``ValueError`` unless the group fits the layers it names
        (see :func:`check_unit_groups`)."""
        for name in self.producers:
            module = _named_module(model, self, name)
            tensors = (
                *module.named_parameters(recurse=False),
                *module.named_buffers(recurse=False),
            )
            for attr, tensor in tensors:
                if tensor.dim() > 0 and tensor.shape[0] != self.n_rows:
                    raise ValueError(
                        f"UnitGroup {self.name!r} has {self.size} units "
                        f"({self.n_rows} rows), but producer {name!r} has "
                        f"{tensor.shape[0]} rows in {attr}."
                    )
        for name in self.consumers:
            weight = getattr(_named_module(model, self, name), "weight", None)
            if torch.is_tensor(weight) and weight.dim() >= 2:
                if weight.shape[1] != self.n_features:
                    raise ValueError(
                        f"UnitGroup {self.name!r} spans {self.n_features} input "
                        f"features, but consumer {name!r} reads {weight.shape[1]}."
                    )

    def unit_view(self, x):
        """A consumer input ``x`` as ``(samples, units, everything else)``
        (see :func:`unit_view`)."""
        x = x.movedim(self.feature_dim, 1)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"group {self.name!r} spans {self.n_features} features of its "
                f"consumer's input, which has {x.shape[1]} along dimension "
                f"{self.feature_dim}."
            )
        x = x.unflatten(1, (self.size, self.unit_width))
        return x.flatten(2)

    def mask_hooks(self, model, keep, fill=None):
        """Pre-hooks replacing masked units at every consumer's input."""
        # One value per consumer feature: a unit spanning several
        # features (a flattened channel, an attention head) masks all.
        keep = self.feature_values(keep)
        fill = None if fill is None else self.feature_values(fill)
        return [
            model.get_submodule(name).register_forward_pre_hook(
                _mask_hook(keep, fill, self.feature_dim)
            )
            for name in self.consumers
        ]

    def evaluate_arms(self, model, arms, X, y, metric, fills=None, tr=None, refit=None):
        """Batched rank-1 pulls where the consumer allows, else the naive
        loop (see :func:`evaluate_arms`)."""
        return sliced_arm_values(model, self, arms, X, y, metric, fills, tr, refit)

    def company_batched(self, tr):
        """Whether company pulls run batched: a ``Linear`` consumer of a flat
        ``nn.Sequential`` traced as ``tr``."""
        return batched_kind(tr, self) == "linear"

    def remove(self, original, pruned, removed, compensate, X, ridge):
        """Slice the removed units out of ``pruned`` (see :func:`remove_units`)."""
        remove_sliced(self, original, pruned, removed, compensate, X, ridge)

    def qualified(self, prefix):
        """The group with its producers and consumers prefixed by ``prefix``."""
        return replace(
            self,
            producers=tuple(prefix + n for n in self.producers),
            consumers=tuple(prefix + n for n in self.consumers),
        )


def _mask_hook(keep, fill, feature_dim):
    def hook(module, args):
        x = args[0]
        shape = [1] * x.dim()
        shape[feature_dim] = -1
        k = keep.to(device=x.device, dtype=x.dtype).view(shape)
        if fill is None:
            out = x * k
        else:
            out = x * k + (1 - k) * fill.to(device=x.device, dtype=x.dtype).view(shape)
        return (out, *args[1:])

    return hook


def _as_index(units):
    return torch.as_tensor(units, dtype=torch.long).flatten().cpu()


def _expand(units, width):
    """Indices ``u * width + i`` for ``i < width``, unit-major."""
    if width == 1:
        return units
    return (units[:, None] * width + torch.arange(width)).flatten()


def unit_view(x, group):
    """A consumer input ``x`` as ``(samples, units, everything else)``.

    The unit axis is ``group.feature_dim``; each unit's ``unit_width``
    features and every other axis (positions, sequence) go to the last axis,
    so per-unit statistics are reductions over dimensions 0 and 2.

    Parameters
    ----------
    x : torch.Tensor
        Input of one of the group's consumers, samples along dimension 0.
    group : UnitGroup or GraphGroup
        The group whose units ``x`` holds (along ``group.feature_dim`` for a
        :class:`UnitGroup`).

    Examples
    --------
    >>> import torch
    >>> group = UnitGroup("c", 2, ("c",), ("fc",), unit_width=3)
    >>> unit_view(torch.arange(12.0).view(2, 6), group)[1]
    tensor([[ 6.,  7.,  8.],
            [ 9., 10., 11.]])
    """
    return group.unit_view(x)


def unit_weights(model, group):
    """The first producer's weight rows of each unit: ``(size, -1)``.

    A unit's rows in every block (``producer_chunks``) and of its width
    (``producer_width``) are concatenated; for a neuron this is the row of
    incoming weights, for a channel its kernels.

    Parameters
    ----------
    model : torch.nn.Module
    group : UnitGroup
        A unit group of ``model`` (see :func:`find_unit_groups`).

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> unit_weights(net, find_unit_groups(net)[0]).shape
    torch.Size([4, 3])
    """
    producer = model.get_submodule(group.producers[0])
    entry = layer_type(producer)  # GPT-2's Conv1D stores its weight transposed
    weight = (producer.weight if entry is None else entry.matrix(producer)).detach()
    blocks = weight.reshape(group.producer_chunks, group.size, group.producer_width, -1)
    return blocks.transpose(0, 1).reshape(group.size, -1)


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _roots(model):
    """``(name, module)`` of every outermost ``nn.Sequential`` and every module
    that declares its own units, in registration order.

    A module with a ``unit_groups`` method owns its whole subtree; a
    ``Sequential`` inside another ``Sequential`` is scanned as part of it.
    """
    owned = []  # prefixes of modules that declared their own units
    kinds = {}
    for name, module in model.named_modules():
        if any(name == p or name.startswith(p + ".") for p in owned):
            continue
        parent = name.rpartition(".")[0] if name else None
        declares = callable(getattr(module, "unit_groups", None))
        if declares:
            owned.append(name)
            kinds[name] = "declared"
            yield name, module, "declared"
        elif isinstance(module, nn.Sequential):
            inside = parent is not None and kinds.get(parent) in ("seq", "inner")
            kinds[name] = "inner" if inside else "seq"
            if not inside:
                yield name, module, "seq"


def find_unit_groups(model, example_input=None):
    """Discover the prunable unit groups of a network.

    Two rules, one abstraction:

    * In every ``nn.Sequential`` of the model (the model itself, or one inside
      any submodule, e.g. a transformer block's feed-forward part), a
      ``Linear`` / ``Conv`` layer (not a grouped or depthwise one) followed,
      possibly through activations, dropout, batch normalisation and (for
      channels) pooling, by another
      layer that reads all of its outputs is a group. A convolution read by a
      ``Linear`` after ``nn.Flatten`` is a group of channels, each spanning
      ``H * W`` features of the ``Linear`` input (``unit_width``); it is
      found only with ``example_input``, which gives the spatial size. The
      last layer of a ``Sequential`` is never a group.
    * A module with a ``unit_groups(name)`` method (e.g.
      :class:`~skbandit.pruning.SelfAttention`, whose heads are units)
      returns its own groups,
      ``name`` being its qualified name in ``model``; its submodules are not
      scanned.

    Parameters
    ----------
    model : torch.nn.Module
        The network. Units the rules do not find are declared explicitly by
        building :class:`UnitGroup` objects.
    example_input : torch.Tensor, optional
        One input batch (a single sample is enough). Run through the model
        once to find the spatial size of channels read through ``Flatten``;
        without it such channels are not a group (with a warning).

    Returns
    -------
    groups : list of UnitGroup
        In registration (usually forward) order.

    Raises
    ------
    TypeError
        When the model has neither an ``nn.Sequential`` nor a module that
        declares its units.

    Warns
    -----
    UserWarning
        When a convolution feeds a ``Linear`` through ``Flatten`` and
        ``example_input`` is missing: those channels are then left out (the
        behaviour of earlier versions), and the warning says what to pass.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> [(g.name, g.size, g.consumers) for g in find_unit_groups(net)]
    [('0', 8, ('2',))]
    >>> import torch
    >>> cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
    ...                     nn.Linear(4 * 6 * 6, 2))
    >>> [(g.name, g.size, g.unit_width)
    ...  for g in find_unit_groups(cnn, example_input=torch.zeros(1, 1, 8, 8))]
    [('0', 4, 36)]
    """
    roots = list(_roots(model))
    if not roots:
        raise TypeError(
            "find_unit_groups discovers units in nn.Sequential chains and in "
            "modules with a unit_groups(name) method; "
            f"{type(model).__name__} has neither. Declare the groups explicitly "
            "with UnitGroup."
        )
    shapes = _input_shapes(model, example_input) if example_input is not None else None
    groups = []
    for name, module, kind in roots:
        if kind == "declared":
            groups.extend(module.unit_groups(name))
        else:
            groups.extend(_sequential_groups(module, name, shapes))
    return groups


@torch.no_grad()
def _input_shapes(model, example_input):
    """Input shape of every ``nn.Flatten`` of ``model`` on ``example_input``."""
    shapes, handles = {}, []
    for name, module in model.named_modules():
        if isinstance(module, nn.Flatten):

            def hook(module, args, name=name):
                shapes[name] = tuple(args[0].shape)

            handles.append(module.register_forward_pre_hook(hook))
    was_training = model.training
    try:
        model.eval()
        model(example_input)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return shapes


def _sequential_groups(seq, prefix, shapes):
    """Groups of the flattened chain of ``seq`` (names prefixed)."""
    groups, open_group = [], None
    chain = list(flat_children(seq, remove_duplicate=False))
    # A layer listed twice reads its own output: its units are not separable.
    counts = Counter(id(m) for _, m in chain)
    repeated = {key for key, count in counts.items() if count > 1}
    for local, module in chain:
        name = _join(prefix, local)
        entry = layer_type(module)
        layer = entry is not None or isinstance(module, nn.LayerNorm)
        if id(module) in repeated and layer:
            open_group = None
            continue
        if entry is not None and entry.weighted:
            if open_group is not None and _reads_all(module, entry, open_group):
                groups.append(
                    UnitGroup(
                        name=open_group["producers"][0],
                        size=open_group["size"],
                        producers=tuple(open_group["producers"]),
                        consumers=(name,),
                        feature_dim=entry.feature_dim,
                        unit_width=open_group["width"],
                    )
                )
            if getattr(module, "groups", 1) != 1:
                # A grouped (depthwise) convolution's output channels belong
                # to its input groups: removing some breaks that layout.
                open_group = None
                continue
            open_group = {
                "producers": [name],
                "size": entry.n_out(module),
                "conv": not entry.flat,
                "width": 1,
                "flat": False,
            }
        elif open_group is None:
            continue
        elif layer:  # a norm
            if isinstance(module, nn.LayerNorm) or open_group["flat"]:
                # LayerNorm mixes all units of a sample: removing one changes
                # the others, so the layer before it is not prunable.
                open_group = None
            else:
                open_group["producers"].append(name)
        elif isinstance(module, _PASS_THROUGH):
            continue
        elif isinstance(module, _CHANNELWISE) and open_group["conv"]:
            if open_group["flat"]:
                open_group = None
        elif isinstance(module, nn.Flatten) and open_group["conv"]:
            open_group = _flattened(open_group, name, module, shapes)
        else:
            open_group = None
    return groups


def _flattened(open_group, name, module, shapes):
    """The open channel group after ``Flatten``: channels of ``H*W`` features."""
    if open_group["flat"] or module.start_dim != 1 or module.end_dim != -1:
        return None
    if shapes is None:
        warnings.warn(
            f"The channels of {open_group['producers'][0]!r} are read through "
            f"Flatten ({name!r}) and are not a unit group: pass example_input "
            "(e.g. one training sample with its batch dimension) to "
            "find_unit_groups so that their spatial size is known.",
            UserWarning,
            stacklevel=4,
        )
        return None
    shape = shapes.get(name)
    if shape is None or len(shape) < 3 or shape[1] != open_group["size"]:
        return None
    return {**open_group, "width": math.prod(shape[2:]), "flat": True}


def _reads_all(consumer, entry, group):
    """Whether ``consumer`` (of registry entry ``entry``) reads every unit of
    the open group, one-to-one."""
    if group["conv"] and not group["flat"]:
        family = not entry.flat  # channel maps feed a convolution
    else:
        family = entry.flat  # neurons or flattened channels feed a Linear
    grouped = getattr(consumer, "groups", 1) != 1
    size = group["size"] * group["width"]
    return family and not grouped and entry.n_in(consumer) == size


def check_unit_groups(model, groups):
    """Raise ``ValueError`` unless every group fits the layers it names.

    Every producer must exist and hold ``group.n_rows`` rows in dimension 0
    of each of its parameters and buffers, and every consumer must exist
    and read ``group.n_features`` input features (dimension 1 of its
    weight): a declared group of the wrong size would otherwise index past
    the layers' ends in the middle of the pulls. Each group checks itself
    (:meth:`BaseUnitGroup.check`; a :class:`GraphGroup` checks its layout
    where it masks).

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> check_unit_groups(net, [UnitGroup("0", 5, ("0",), ("2",))])
    Traceback (most recent call last):
    ...
    ValueError: UnitGroup '0' has 5 units (5 rows), but producer '0' has 4 ...
    """
    for group in groups:
        if not isinstance(group, BaseUnitGroup):
            raise TypeError(
                f"groups must be UnitGroup objects, got {type(group).__name__}."
            )
        group.check(model)


def _named_module(model, group, name):
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise ValueError(
            f"UnitGroup {group.name!r} names module {name!r}, which the model "
            "does not have."
        ) from None


def count_parameters(model):
    """Number of parameters of ``model`` (trainable or not).

    Parameters
    ----------
    model : torch.nn.Module

    Examples
    --------
    >>> from torch import nn
    >>> count_parameters(nn.Linear(4, 3))
    15
    """
    return sum(p.numel() for p in model.parameters())
