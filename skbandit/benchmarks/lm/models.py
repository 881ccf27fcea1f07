"""Small decoder language models, Llama-style and GPT-2-style, hand-written.

One class, :class:`DecoderLM`, in two styles:

- ``"llama"``: RMSNorm, rotary position embeddings, SwiGLU MLP
  (``gate``, ``up`` -> ``down``), no biases;
- ``"gpt2"``: LayerNorm, learned position embeddings, GELU MLP
  (``fc`` -> ``proj``) with biases.

Each MLP declares its hidden channels and each attention its heads as a
:class:`~skbandit.pruning.UnitGroup` (``unit_groups(name)``), so
:func:`~skbandit.pruning.prune` finds them without a dependency graph, and
every forward pass reads the current widths from the weights: a pruned model
runs as it is (the attention reads its number of heads from its
projections).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LM_STYLES", "DecoderLM", "MLP", "head_groups", "lm_groups", "mlp_groups"]

#: The two architectures of the benchmark.
LM_STYLES = ("llama", "gpt2")


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Llama's), with a learned scale."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _rotate(x, cos, sin):
    """Rotary embedding of ``x`` ``(batch, heads, seq, head_dim)``."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Attention(nn.Module):
    """Causal multi-head self-attention with separate q/k/v/o projections.

    Its heads are one :class:`~skbandit.pruning.UnitGroup`
    (:meth:`unit_groups`): head ``h`` owns rows ``h * head_dim:(h + 1) *
    head_dim`` of ``q``, ``k`` and ``v`` and the same input columns of
    ``o``.
    """

    def __init__(self, d_model, n_heads, bias, rotary, max_len):
        super().__init__()
        self.head_dim = d_model // n_heads
        self.q = nn.Linear(d_model, d_model, bias=bias)
        self.k = nn.Linear(d_model, d_model, bias=bias)
        self.v = nn.Linear(d_model, d_model, bias=bias)
        self.o = nn.Linear(d_model, d_model, bias=bias)
        self.rotary = rotary
        if rotary:
            inv = 1.0 / 10000 ** (torch.arange(0, self.head_dim, 2) / self.head_dim)
            angles = torch.outer(torch.arange(max_len).float(), inv)
            angles = torch.cat((angles, angles), dim=-1)
            self.register_buffer("cos", angles.cos(), persistent=False)
            self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x):
        batch, seq, _ = x.shape
        q, k, v = (
            proj(x).view(batch, seq, -1, self.head_dim).transpose(1, 2)
            for proj in (self.q, self.k, self.v)
        )
        if self.rotary:
            cos, sin = self.cos[:seq].to(x.dtype), self.sin[:seq].to(x.dtype)
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        causal = torch.ones(seq, seq, dtype=torch.bool, device=x.device).triu(1)
        attn = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, seq, -1)
        return self.o(out)

    @property
    def n_heads(self):
        """Heads now."""
        return self.q.out_features // self.head_dim

    def unit_groups(self, name):
        """The heads, as one :class:`~skbandit.pruning.UnitGroup`."""
        from ...pruning import UnitGroup

        prefix = f"{name}." if name else ""
        return [
            UnitGroup(
                name=f"{prefix}q",
                size=self.n_heads,
                producers=tuple(prefix + p for p in ("q", "k", "v")),
                consumers=(f"{prefix}o",),
                unit_width=self.head_dim,
                producer_width=self.head_dim,
            )
        ]


class MLP(nn.Module):
    """The feed-forward block: SwiGLU (``"llama"``) or GELU (``"gpt2"``).

    Its hidden channels are one :class:`~skbandit.pruning.UnitGroup`
    (:meth:`unit_groups`): the rows of ``gate`` and ``up`` (or of ``fc``)
    and the input columns of ``down`` (or ``proj``).
    """

    def __init__(self, d_model, d_ff, style):
        super().__init__()
        self.style = style
        if style == "llama":
            self.gate = nn.Linear(d_model, d_ff, bias=False)
            self.up = nn.Linear(d_model, d_ff, bias=False)
            self.down = nn.Linear(d_ff, d_model, bias=False)
        else:
            self.fc = nn.Linear(d_model, d_ff)
            self.proj = nn.Linear(d_ff, d_model)

    def forward(self, x):
        if self.style == "llama":
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.proj(F.gelu(self.fc(x)))

    @property
    def width(self):
        """Hidden channels now."""
        return (self.up if self.style == "llama" else self.fc).out_features

    def unit_groups(self, name):
        """The hidden channels, as one :class:`~skbandit.pruning.UnitGroup`."""
        from ...pruning import UnitGroup

        prefix = f"{name}." if name else ""
        if self.style == "llama":
            producers, consumer = ("up", "gate"), "down"
        else:
            producers, consumer = ("fc",), "proj"
        return [
            UnitGroup(
                name=f"{prefix}{producers[0]}",
                size=self.width,
                producers=tuple(prefix + p for p in producers),
                consumers=(prefix + consumer,),
            )
        ]


class Block(nn.Module):
    """Pre-norm transformer block: attention and MLP, each residual."""

    def __init__(self, d_model, n_heads, d_ff, style, max_len):
        super().__init__()
        llama = style == "llama"
        norm = RMSNorm if llama else nn.LayerNorm
        self.norm1, self.norm2 = norm(d_model), norm(d_model)
        self.attn = Attention(d_model, n_heads, not llama, llama, max_len)
        self.mlp = MLP(d_model, d_ff, style)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DecoderLM(nn.Module):
    """A causal decoder LM: token ids ``(batch, seq)`` -> logits
    ``(batch, seq, vocab)``.

    Parameters
    ----------
    vocab_size : int
    d_model, n_layers, n_heads, d_ff : int
        Width, depth, heads per layer, MLP hidden channels.
    max_len : int
        Longest sequence (position embeddings, rotary tables).
    style : {"llama", "gpt2"}

    Examples
    --------
    >>> import torch
    >>> from skbandit.pruning import find_unit_groups
    >>> lm = DecoderLM(20, d_model=16, n_layers=2, n_heads=2, d_ff=32,
    ...                max_len=8, style="llama")
    >>> lm(torch.zeros(3, 8, dtype=torch.long)).shape
    torch.Size([3, 8, 20])
    >>> [(g.name, g.size) for g in mlp_groups(lm)]
    [('blocks.0.mlp.up', 32), ('blocks.1.mlp.up', 32)]
    >>> [(g.name, g.size, g.unit_width) for g in head_groups(lm)]
    [('blocks.0.attn.q', 2, 8), ('blocks.1.attn.q', 2, 8)]
    """

    def __init__(self, vocab_size, d_model, n_layers, n_heads, d_ff, max_len, style):
        super().__init__()
        if style not in LM_STYLES:
            raise ValueError(f"style must be one of {LM_STYLES}, got {style!r}.")
        self.style = style
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model) if style == "gpt2" else None
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, style, max_len) for _ in range(n_layers)
        )
        self.norm = RMSNorm(d_model) if style == "llama" else nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, ids):
        x = self.embed(ids)
        if self.pos is not None:
            x = x + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def _declared(model, kind):
    return [
        group
        for name, module in model.named_modules()
        if isinstance(module, kind)
        for group in module.unit_groups(name)
    ]


def mlp_groups(model):
    """The MLP channel groups of a :class:`DecoderLM`, first layer first."""
    return _declared(model, MLP)


def head_groups(model):
    """The attention head groups of a :class:`DecoderLM`, first layer first."""
    return _declared(model, Attention)


def lm_groups(model):
    """Every group of a :class:`DecoderLM` in forward order: each block's
    heads, then its MLP channels."""
    return _declared(model, (Attention, MLP))
