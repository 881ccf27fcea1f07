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

import torch
import torch.nn.functional as F
from torch import nn

from ._units import UnitGroup

__all__ = ["SelfAttention"]


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
        block = cls(mha.embed_dim, mha.num_heads, bias=mha.in_proj_bias is not None)
        block = block.to(mha.in_proj_weight.dtype)
        with torch.no_grad():
            block.qkv.weight.copy_(mha.in_proj_weight)
            block.out.weight.copy_(mha.out_proj.weight)
            if mha.in_proj_bias is not None:
                block.qkv.bias.copy_(mha.in_proj_bias)
                block.out.bias.copy_(mha.out_proj.bias)
        return block
