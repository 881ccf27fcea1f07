"""Layer types with weights: one registry entry per type (Torch-Pruning's idea).

Everything the pruning backend needs to know about a layer type lives in its
entry in :data:`LAYER_TYPES`: how many features it reads and writes and
along which dimension, how its rows (outputs) and input features are sliced
away, its multiply-accumulates, whether a least-squares refit can
reproduce it and how its input is unfolded into rows for one, and the
constructor arguments a saved network records. Discovery (``_units.py``,
``_discovery.py``), pulls (``_pulls.py``), removal (``_surgery.py``,
``_graph.py``, ``_compensation.py``), targets (``_targets.py``), memory
checks (``_resources.py``) and export (``skbandit/export.py``) read the
entries; none of them lists layer types of its own.

Two kinds of entry: a *weighted* layer reads its input features through a
weight matrix (``Linear``, convolutions: it can produce units and consume
them), a *norm* rescales each feature of its input (batch norms: it
follows a producer and loses the same rows). Supporting a new layer type is
one entry here (and a test); see ``docs/architecture.rst``.
"""

import math
from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConvType",
    "GroupNormType",
    "TransposedConvType",
    "TransposedLinearType",
    "LAYER_TYPES",
    "LayerType",
    "LinearType",
    "NAMED_LAYER_TYPES",
    "NormType",
    "layer_type",
    "slice_rows",
    "slice_inputs",
]


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


@dataclass(frozen=True)
class LayerType:
    """How one layer type holds units (the base of every registry entry).

    Parameters
    ----------
    cls : type
        The ``torch.nn.Module`` subclass (its subclasses share the entry).
    out_attr : str
        The constructor attribute that counts its outputs.
    in_attr : str or None
        The one that counts its inputs (None: a norm, as wide as its output).
    feature_dim : int
        Dimension of its input and output that indexes features (``-1`` for
        a ``Linear``, ``1`` for channels).
    weighted : bool
        Whether it reads its input through a weight matrix (it can produce
        and consume units) rather than rescaling each feature (a norm).
    export_args : tuple of str
        Constructor arguments a saved network records
        (:func:`skbandit.export.module_spec`).
    """

    cls: type
    out_attr: str
    in_attr: str
    feature_dim: int
    weighted: bool
    export_args: tuple

    #: Whether the layer reads a flat vector of features (its last
    #: dimension) rather than channel maps.
    flat = False

    def n_out(self, module):
        """Outputs (features or channels) of ``module``."""
        return getattr(module, self.out_attr)

    def n_in(self, module):
        """Inputs (features or channels) of ``module``."""
        return getattr(module, self.in_attr or self.out_attr)

    def slice_out(self, module, keep, expected=None):
        """Keep the outputs ``keep`` of ``module`` (rows of every tensor)."""
        _slice_(module, 0, keep, expected)
        setattr(module, self.out_attr, len(keep))

    def slice_in(self, module, keep, expected=None):
        """Keep the input features ``keep`` of ``module`` (weight columns)."""
        _check_inputs(module, expected)
        weight = module.weight.detach().index_select(1, keep).clone()
        module.weight = nn.Parameter(weight, requires_grad=module.weight.requires_grad)
        setattr(module, self.in_attr, len(keep))

    def matrix(self, module):
        """The weight with outputs along dimension 0 and inputs along 1: the
        layout mean folding reads and refits write (a view where the layer
        is refittable)."""
        return module.weight

    def set_matrix(self, module, weight):
        """Write ``weight``, laid out as :meth:`matrix`, into ``module``."""
        self.matrix(module).copy_(weight)

    def mean_gain(self, module):
        """Share of a constant input's contribution summed over the kernel
        that reaches an output position (1 but for transposed
        convolutions), for folding a mean into the bias."""
        return 1.0

    def positions(self, output):
        """Positions the layer was applied at to give ``output``."""
        return output.numel() // output.shape[self.feature_dim]

    def refittable(self, module):
        """Whether ``module`` is a linear map of rows of its input (see
        :meth:`rows`), so that least-squares compensation and the batched
        pulls of a consumer apply."""
        return False

    def rows(self, module, inputs):
        """``module``'s input as the rows of its linear map:
        ``(batch, features per row, positions)``."""
        raise ValueError(f"{type(module).__name__} is not a linear map of its input")


@dataclass(frozen=True)
class LinearType(LayerType):
    """``nn.Linear``: features along the last dimension."""

    flat = True

    def refittable(self, module):
        return True


@dataclass(frozen=True)
class ConvType(LayerType):
    """A convolution over ``spatial`` dimensions: channels along dimension 1.

    Parameters
    ----------
    spatial : int
        Spatial dimensions (1, 2 or 3).
    """

    spatial: int = 2

    def refittable(self, module):
        """A plain convolution: ungrouped, zero or no padding (a linear map
        of its zero-padded patches)."""
        return (
            type(module) is self.cls
            and module.groups == 1
            and module.padding_mode == "zeros"
            and isinstance(module.padding, tuple)
        )

    def rows(self, module, inputs):
        """im2col of ``inputs`` as ``module`` sees them: (batch, C * k, L)."""
        return unfold(inputs, module)


@dataclass(frozen=True)
class TransposedLinearType(LinearType):
    """A ``Linear`` that stores its weight as ``(inputs, outputs)``: GPT-2's
    ``transformers.pytorch_utils.Conv1D`` (``nf`` outputs, ``nx`` inputs),
    matched by name so that transformers is never imported here."""

    def slice_out(self, module, keep, expected=None):
        _slice_dim(module, "weight", 1, keep, expected)
        if getattr(module, "bias", None) is not None:
            _slice_dim(module, "bias", 0, keep, expected)
        setattr(module, self.out_attr, len(keep))

    def slice_in(self, module, keep, expected=None):
        _slice_dim(module, "weight", 0, keep, expected, what="input features")
        setattr(module, self.in_attr, len(keep))

    def matrix(self, module):
        return module.weight.T


@dataclass(frozen=True)
class TransposedConvType(ConvType):
    """A transposed convolution: its weight is ``(in, out / groups, *k)``,
    input-first. It is the convolution of its zero-inserted input with the
    flipped kernel, which is how least squares refits it (:meth:`rows`)."""

    def slice_out(self, module, keep, expected=None):
        if module.groups != 1:
            raise ValueError(f"a grouped {type(module).__name__} keeps its channels")
        _slice_dim(module, "weight", 1, keep, expected)
        if module.bias is not None:
            _slice_dim(module, "bias", 0, keep, expected)
        setattr(module, self.out_attr, len(keep))

    def slice_in(self, module, keep, expected=None):
        _slice_dim(module, "weight", 0, keep, expected, what="input channels")
        setattr(module, self.in_attr, len(keep))

    def matrix(self, module):
        """``(out, in, *k)``: the kernel of the equivalent convolution of
        its zero-inserted input (:meth:`rows`), flipped and transposed."""
        return module.weight.transpose(0, 1).flip(list(range(2, module.weight.dim())))

    def set_matrix(self, module, weight):
        flipped = weight.flip(list(range(2, weight.dim()))).transpose(0, 1)
        module.weight.copy_(flipped)

    def mean_gain(self, module):
        """With a kernel a multiple of the stride an output position receives
        ``1 / prod(stride)`` of the taps on average."""
        return 1.0 / math.prod(module.stride)

    def refittable(self, module):
        """Ungrouped, zero padding no wider than the dilated kernel."""
        return (
            type(module) is self.cls
            and module.groups == 1
            and module.padding_mode == "zeros"
            and isinstance(module.padding, tuple)
            and all(
                d * (k - 1) >= p
                for k, p, d in zip(module.kernel_size, module.padding, module.dilation)
            )
        )

    def rows(self, module, inputs):
        """The input as a convolution reads it: zeros inserted between
        positions (``stride - 1``), padded by ``dilation * (k - 1) - padding``
        (plus ``output_padding`` after), unfolded with stride 1."""
        strides = module.stride
        spatial = inputs.shape[2:]
        shape = (
            *inputs.shape[:2],
            *((n - 1) * s + 1 for n, s in zip(spatial, strides)),
        )
        z = inputs.new_zeros(shape)
        every = tuple(slice(None, None, s) for s in strides)
        z[(slice(None), slice(None), *every)] = inputs
        pad = []
        for k, p, d, extra in reversed(
            list(
                zip(
                    module.kernel_size,
                    module.padding,
                    module.dilation,
                    module.output_padding,
                )
            )
        ):
            pad += [d * (k - 1) - p, d * (k - 1) - p + extra]
        z = F.pad(z, pad)
        ones = (1,) * len(strides)
        plain = _Kernel(module.kernel_size, module.dilation, (0,) * len(strides), ones)
        return unfold(z, plain)


@dataclass(frozen=True)
class _Kernel:
    """What :func:`unfold` reads of a convolution."""

    kernel_size: tuple
    dilation: tuple
    padding: tuple
    stride: tuple


@dataclass(frozen=True)
class NormType(LayerType):
    """A per-feature normalisation (batch norm): it rescales units, so it
    follows a producer and loses the same rows."""


@dataclass(frozen=True)
class GroupNormType(NormType):
    """``nn.GroupNorm``: channels are normalised in ``num_groups`` groups of
    consecutive channels, so units are removed in whole norm groups
    (``channels_per_unit``) and ``num_groups`` follows."""

    def slice_out(self, module, keep, expected=None):
        per_group = module.num_channels // module.num_groups
        if len(keep) % per_group:
            raise ValueError(
                f"GroupNorm keeps whole groups of {per_group} channels; "
                f"{len(keep)} channels do not make whole groups."
            )
        _slice_(module, 0, keep, expected)
        module.num_channels = len(keep)
        module.num_groups = len(keep) // per_group

    def channels_per_unit(self, module):
        """Consecutive channels one norm group spans."""
        return module.num_channels // module.num_groups


def _slice_dim(module, name, dim, keep, expected=None, what="outputs"):
    """Keep ``keep`` along ``dim`` of one parameter of ``module``."""
    tensor = getattr(module, name)
    if expected is not None and tensor.shape[dim] != expected:
        raise ValueError(
            f"{type(module).__name__}.{name} has {tensor.shape[dim]} {what} "
            f"along dimension {dim}; the unit group spans {expected}."
        )
    sliced = tensor.detach().index_select(dim, keep).clone()
    setattr(module, name, nn.Parameter(sliced, requires_grad=tensor.requires_grad))


def unfold(h, conv):
    """im2col of a 1d, 2d or 3d input as ``conv`` sees it: (batch, C * k, L).

    Columns are channel-major then kernel positions, as ``conv.weight``
    flattened from dimension 1; positions are row-major.
    """
    if h.dim() == 3:  # Conv1d: treat as a 2d image of height 1
        return F.unfold(
            h.unsqueeze(2),
            (1, *conv.kernel_size),
            dilation=(1, *conv.dilation),
            padding=(0, *conv.padding),
            stride=(1, *conv.stride),
        )
    if h.dim() == 4:
        return F.unfold(h, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    return _unfold_nd(h, conv)


def _unfold_nd(h, conv):
    """im2col over any number of spatial dimensions (``F.unfold`` reads 2)."""
    n = h.dim() - 2
    pad = []
    for p in reversed(conv.padding):
        pad += [p, p]
    x = F.pad(h, pad)
    for d, (k, s, dil) in enumerate(zip(conv.kernel_size, conv.stride, conv.dilation)):
        x = x.unfold(2 + d, dil * (k - 1) + 1, s)  # window appended last
        if dil > 1:
            x = x[..., ::dil]
    # (batch, C, *positions, *kernel) -> (batch, C, *kernel, *positions)
    x = x.permute(0, 1, *range(2 + n, 2 + 2 * n), *range(2, 2 + n))
    return x.reshape(h.shape[0], h.shape[1] * math.prod(conv.kernel_size), -1)


def _check_inputs(module, expected):
    if expected is not None and module.weight.shape[1] != expected:
        raise ValueError(
            f"{type(module).__name__} reads {module.weight.shape[1]} input "
            f"features; the unit group spans {expected}."
        )


_CONV_ARGS = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "padding_mode",
)
_NORM_ARGS = ("num_features", "eps", "momentum", "affine", "track_running_stats")
_TRANSPOSED_ARGS = (*_CONV_ARGS, "output_padding")


def _conv(cls, spatial):
    return ConvType(cls, "out_channels", "in_channels", 1, True, _CONV_ARGS, spatial)


def _norm(cls):
    return NormType(cls, "num_features", None, 1, False, _NORM_ARGS)


#: One entry per supported layer type, by class.
LAYER_TYPES = {
    nn.Linear: LinearType(
        nn.Linear,
        "out_features",
        "in_features",
        -1,
        True,
        ("in_features", "out_features"),
    ),
    nn.Conv1d: _conv(nn.Conv1d, 1),
    nn.Conv2d: _conv(nn.Conv2d, 2),
    nn.BatchNorm1d: _norm(nn.BatchNorm1d),
    nn.BatchNorm2d: _norm(nn.BatchNorm2d),
    nn.Conv3d: _conv(nn.Conv3d, 3),
    nn.BatchNorm3d: _norm(nn.BatchNorm3d),
    **{
        cls: TransposedConvType(
            cls, "out_channels", "in_channels", 1, True, _TRANSPOSED_ARGS, spatial
        )
        for cls, spatial in (
            (nn.ConvTranspose1d, 1),
            (nn.ConvTranspose2d, 2),
            (nn.ConvTranspose3d, 3),
        )
    },
    nn.GroupNorm: GroupNormType(
        nn.GroupNorm,
        "num_channels",
        None,
        1,
        False,
        ("num_groups", "num_channels", "eps", "affine"),
    ),
}

#: Entries matched by the class's qualified name, for classes of optional
#: packages that are not imported to build the registry.
NAMED_LAYER_TYPES = {
    "transformers.pytorch_utils.Conv1D": TransposedLinearType(
        None, "nf", "nx", -1, True, ("nf", "nx")
    ),
}


def layer_type(module):
    """The registry entry of ``module``'s type (or of its nearest registered
    base class), or None.

    Examples
    --------
    >>> from torch import nn
    >>> layer_type(nn.Linear(3, 2)).n_in(nn.Linear(3, 2))
    3
    >>> layer_type(nn.ReLU()) is None
    True
    """
    for cls in type(module).__mro__:
        entry = LAYER_TYPES.get(cls)
        if entry is None:
            entry = NAMED_LAYER_TYPES.get(f"{cls.__module__}.{cls.__qualname__}")
        if entry is not None:
            return entry
    return None


def slice_rows(module, keep, expected=None):
    """Keep the rows ``keep`` (dimension 0 of every parameter and buffer) of
    a producer: by its registry entry, or for any other module (a declared
    group's) by the generic rule, every size attribute updated."""
    entry = layer_type(module)
    if entry is not None:
        return entry.slice_out(module, keep, expected)
    _slice_(module, 0, keep, expected)
    for attr in ("out_features", "out_channels", "num_features"):
        if hasattr(module, attr):
            setattr(module, attr, len(keep))


def slice_inputs(module, keep, expected=None):
    """Keep the input features ``keep`` of a consumer: by its registry entry,
    or for any other module by slicing dimension 1 of its weight."""
    entry = layer_type(module)
    if entry is not None and entry.weighted:
        return entry.slice_in(module, keep, expected)
    _check_inputs(module, expected)
    weight = module.weight.detach().index_select(1, keep).clone()
    module.weight = nn.Parameter(weight, requires_grad=module.weight.requires_grad)
    for attr in ("in_features", "in_channels"):
        if hasattr(module, attr):
            setattr(module, attr, len(keep))
