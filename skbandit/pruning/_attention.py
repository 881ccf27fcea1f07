"""Multi-head self-attention whose heads are a prunable unit group.

``nn.MultiheadAttention`` cannot be shrunk in place: its forward derives
``head_dim = embed_dim // num_heads`` from the query width and calls
``out_proj`` through ``F.linear`` rather than as a module, so neither fewer
heads nor a mask at the output projection's input is possible.
:class:`SelfAttention` keeps the heads in a fused ``qkv`` projection and an
``out`` projection, declares them as one :class:`UnitGroup`, and
:meth:`SelfAttention.from_multihead_attention` converts an existing layer
exactly.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ._units import UnitGroup

__all__ = ["SelfAttention", "MultiheadSelfAttention", "convert_multihead_attention"]


class SelfAttention(nn.Module):
    """Multi-head self-attention whose heads can be masked and removed.

    A fused ``qkv`` projection (``3 * num_heads * head_dim`` rows: all query
    heads, then all key heads, then all value heads) and an ``out``
    projection (``num_heads * head_dim`` inputs). Head ``h`` owns rows
    ``h * head_dim:(h + 1) * head_dim`` of each of the three blocks of
    ``qkv`` and the same columns of ``out``; removing it slices those, and
    ``num_heads`` follows from ``out``'s width.

    Parameters
    ----------
    embed_dim : int
    num_heads : int
    head_dim : int, optional
        Default ``embed_dim // num_heads``.
    bias : bool, default=True

    Examples
    --------
    >>> import torch
    >>> from skbandit.pruning import SelfAttention
    >>> attn = SelfAttention(16, 4)
    >>> attn(torch.randn(2, 5, 16)).shape
    torch.Size([2, 5, 16])
    >>> (group,) = attn.unit_groups("attn")
    >>> group.size, group.unit_width, group.producer_chunks
    (4, 4, 3)
    """

    def __init__(self, embed_dim, num_heads, head_dim=None, bias=True):
        super().__init__()
        self.head_dim = head_dim or embed_dim // num_heads
        self.qkv = nn.Linear(embed_dim, 3 * num_heads * self.head_dim, bias=bias)
        self.out = nn.Linear(num_heads * self.head_dim, embed_dim, bias=bias)

    @property
    def num_heads(self):
        return self.out.in_features // self.head_dim

    def forward(self, x, mask=None):
        """``x``: (batch, length, embed_dim); ``mask``: bool, True = attend."""
        n, t, _ = x.shape
        qkv = self.qkv(x).view(n, t, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, length, hd)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(attended.transpose(1, 2).reshape(n, t, -1))

    def unit_groups(self, name):
        """The heads, as one :class:`~skbandit.pruning.UnitGroup`."""
        prefix = f"{name}." if name else ""
        return [
            UnitGroup(
                name=f"{prefix}qkv",
                size=self.num_heads,
                producers=(f"{prefix}qkv",),
                consumers=(f"{prefix}out",),
                feature_dim=-1,
                unit_width=self.head_dim,
                producer_width=self.head_dim,
                producer_chunks=3,
            )
        ]

    @classmethod
    def from_multihead_attention(cls, mha):
        """The same attention as a batch-first ``nn.MultiheadAttention``.

        For self-attention (query = key = value) without masks, ``mha(x, x,
        x, need_weights=False)[0]`` equals ``block(x)``.
        """
        if not (mha.batch_first and mha._qkv_same_embed_dim):
            raise ValueError(
                "only batch_first MultiheadAttention with equal q/k/v widths "
                "converts to SelfAttention"
            )
        if mha.bias_k is not None or mha.add_zero_attn or mha.dropout:
            raise ValueError(
                "bias_k/bias_v, add_zero_attn and dropout are not supported"
            )
        block = _uninitialised(
            cls, mha, mha.embed_dim, mha.num_heads, bias=mha.in_proj_bias is not None
        )
        with torch.no_grad():
            block.qkv.weight.copy_(mha.in_proj_weight)
            block.out.weight.copy_(mha.out_proj.weight)
            if mha.in_proj_bias is not None:
                block.qkv.bias.copy_(mha.in_proj_bias)
                block.out.bias.copy_(mha.out_proj.bias)
        return block


class MultiheadSelfAttention(SelfAttention):
    """:class:`SelfAttention` called like ``nn.MultiheadAttention``.

    A drop-in replacement for a self-attention ``nn.MultiheadAttention``
    inside modules that call it with ``(query, key, value, ...)`` and read
    ``[0]`` of the result (``nn.TransformerEncoderLayer``), so that its heads
    can be pruned there; :func:`convert_multihead_attention` swaps it in.

    Parameters
    ----------
    embed_dim : int
    num_heads : int
    bias : bool, default=True
    batch_first : bool, default=False
        Inputs are ``(batch, length, embed_dim)`` if True, else
        ``(length, batch, embed_dim)``, as in ``nn.MultiheadAttention``.
    dropout : float, default=0.0
        Dropout on the attention weights, in training mode.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    >>> block = MultiheadSelfAttention.from_multihead_attention(mha).eval()
    >>> x = torch.randn(3, 5, 8)
    >>> torch.allclose(block(x, x, x)[0], mha(x, x, x)[0], atol=1e-6)
    True
    """

    #: Read by ``nn.TransformerEncoderLayer``'s fused fast path, which only
    #: handles ``nn.MultiheadAttention`` weights: False keeps it off.
    _qkv_same_embed_dim = False

    def __init__(self, embed_dim, num_heads, bias=True, batch_first=False, dropout=0.0):
        super().__init__(embed_dim, num_heads, bias=bias)
        self.batch_first = batch_first
        self.dropout = dropout

    @property
    def in_proj_bias(self):
        """The fused projection's bias (read by the layers that call it)."""
        return self.qkv.bias

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights=False,
        attn_mask=None,
        average_attn_weights=True,
        is_causal=False,
    ):
        """``(output, None)`` for self-attention (``query is key is value``).

        Masks follow ``nn.MultiheadAttention``: boolean ``True`` or ``-inf``
        excludes a position. Attention weights are not returned.
        """
        if not (query is key and key is value):
            raise ValueError("MultiheadSelfAttention computes self-attention only.")
        if need_weights:
            raise ValueError("MultiheadSelfAttention does not return weights.")
        x = query if self.batch_first else query.transpose(0, 1)
        n, t, _ = x.shape
        mask = _additive_mask(attn_mask, key_padding_mask, is_causal, x)
        qkv = self.qkv(x).view(n, t, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        dropout = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout
        )
        out = self.out(attended.transpose(1, 2).reshape(n, t, -1))
        return (out if self.batch_first else out.transpose(0, 1)), None

    @classmethod
    def from_multihead_attention(cls, mha):
        """The same attention as ``mha`` (self-attention, equal q/k/v widths,
        no ``bias_k``/``bias_v`` or ``add_zero_attn``)."""
        if not mha._qkv_same_embed_dim:
            raise ValueError("only MultiheadAttention with equal q/k/v widths converts")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("bias_k/bias_v and add_zero_attn are not supported")
        has_bias = mha.in_proj_bias is not None
        block = _uninitialised(
            cls,
            mha,
            mha.embed_dim,
            mha.num_heads,
            has_bias,
            mha.batch_first,
            mha.dropout,
        )
        with torch.no_grad():
            block.qkv.weight.copy_(mha.in_proj_weight)
            block.out.weight.copy_(mha.out_proj.weight)
            if has_bias:
                block.qkv.bias.copy_(mha.in_proj_bias)
                block.out.bias.copy_(mha.out_proj.bias)
        return block.train(mha.training)


def _uninitialised(cls, mha, *args, **kwargs):
    """``cls(*args, **kwargs)`` with empty weights of ``mha``'s dtype and
    device, to be overwritten: initialising them would draw from torch's
    global generator (and shift the caller's stream)."""
    with torch.device("meta"):
        block = cls(*args, **kwargs)
    weight = mha.in_proj_weight
    return block.to_empty(device=weight.device).to(weight.dtype)


def _additive_mask(attn_mask, key_padding_mask, is_causal, x):
    """``nn.MultiheadAttention``'s masks as one float mask (``-inf`` =
    excluded) broadcastable to ``(batch, heads, length, length)``, or None."""
    n, t = x.shape[:2]
    if attn_mask is None and is_causal:
        attn_mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
    mask = None
    # (length, length), (batch * heads, length, length) or (batch, length).
    for part, shape in ((attn_mask, (-1, t, t)), (key_padding_mask, (n, 1, 1, t))):
        if part is None:
            continue
        if part.dtype == torch.bool:
            part = torch.zeros(part.shape, dtype=x.dtype, device=x.device).masked_fill(
                part, float("-inf")
            )
        part = part.to(x.dtype)
        part = part.reshape(n, -1, t, t) if part.dim() == 3 else part.reshape(shape)
        mask = part if mask is None else mask + part
    return mask


def convert_multihead_attention(model):
    """``model`` with every convertible ``nn.MultiheadAttention`` replaced by
    an equal :class:`MultiheadSelfAttention` (a copy; ``model`` itself if
    there is none), so that attention heads are unit groups.

    Parameters
    ----------
    model : torch.nn.Module

    Examples
    --------
    >>> from torch import nn
    >>> layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    >>> type(convert_multihead_attention(layer).self_attn).__name__
    'MultiheadSelfAttention'
    """
    names = [
        name
        for name, module in model.named_modules()
        if name
        and type(module) is nn.MultiheadAttention
        and module._qkv_same_embed_dim
        and module.bias_k is None
        and not module.add_zero_attn
    ]
    if not names:
        return model
    model = copy.deepcopy(model)
    for name in names:
        parent, _, attr = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        mha = getattr(owner, attr)
        setattr(owner, attr, MultiheadSelfAttention.from_multihead_attention(mha))
    return model
