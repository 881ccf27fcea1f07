"""The deep suite's model zoo: a transformer classifier, CNN and MLP factories.

The transformer is a pre-norm encoder block: :class:`skbandit.pruning.SelfAttention`
(fused q/k/v projection, output projection; its heads are a unit group) and a
feed-forward ``nn.Sequential`` (its hidden units are a unit group), then
masked mean pooling and a linear classifier. Each factory takes the task's
data facts ``meta`` (input ``shape``, ``n_classes``, ``vocab_size``) and
returns an ``nn.Module``.
"""

import math

import torch
from torch import nn

from ...pruning import SelfAttention

__all__ = [
    "TransformerBlock",
    "TokenEmbedding",
    "TransformerClassifier",
    "cnn2d",
    "cnn1d",
    "mlp_model",
    "transformer_model",
    "modadd_mlp",
]


class TransformerBlock(nn.Module):
    """Pre-norm encoder block: ``x + attn(norm(x))``, ``x + ffn(norm(x))``.

    Parameters
    ----------
    dim : int
        Width of the token representations (input and output).
    num_heads : int
        Heads of the :class:`~skbandit.pruning.SelfAttention` layer.
    ffn_dim : int
        Hidden units of the feed-forward sub-layer.
    dropout : float, default=0.1
        Dropout rate after the feed-forward activation.
    """

    def __init__(self, dim, num_heads, ffn_dim, dropout=0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, dim),
        )

    def forward(self, x, mask=None):
        x = x + self.attn(self.norm1(x), mask)
        return x + self.ffn(self.norm2(x))


class TokenEmbedding(nn.Module):
    """Token plus learned position embeddings of token ids.

    The ids may come as a floating tensor (exact up to 2**24): pruning and
    fine-tuning cast inputs to the model's dtype.

    Parameters
    ----------
    vocab_size : int
        Number of distinct token ids (ids are in ``[0, vocab_size)``).
    dim : int
        Width of the embeddings.
    max_len : int
        Longest sequence: the number of learned position embeddings.
    """

    def __init__(self, vocab_size, dim, max_len):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Parameter(torch.randn(max_len, dim) * 0.02)

    def forward(self, ids):
        ids = ids.long()
        return self.tokens(ids) + self.positions[: ids.shape[1]]


class TransformerClassifier(nn.Module):
    """Embedding, transformer blocks, masked mean pooling, linear classifier.

    Parameters
    ----------
    vocab_size, n_classes, max_len : int
    dim : int, default=32
    num_heads : int, default=4
    ffn_dim : int, default=64
    n_layers : int, default=1
    dropout : float, default=0.1
    pad_id : int or None, default=0
        Token id of padding (ignored by attention and pooling); None: no
        padding.

    Examples
    --------
    >>> import torch
    >>> from skbandit.pruning import find_unit_groups
    >>> net = TransformerClassifier(50, 3, max_len=6)
    >>> net(torch.randint(1, 50, (2, 6))).shape
    torch.Size([2, 3])
    >>> [(g.name, g.size) for g in find_unit_groups(net)]
    [('blocks.0.attn.qkv', 4), ('blocks.0.ffn.0', 64)]
    """

    def __init__(
        self,
        vocab_size,
        n_classes,
        max_len,
        dim=32,
        num_heads=4,
        ffn_dim=64,
        n_layers=1,
        dropout=0.1,
        pad_id=0,
    ):
        super().__init__()
        self.pad_id = pad_id
        self.embed = TokenEmbedding(vocab_size, dim, max_len)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, ffn_dim, dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, ids):
        ids = ids.long()
        # Positions that take part; the first always does, so that an empty
        # document still attends somewhere. (No in-place writes: the graph
        # is traced for batched pulls.)
        first = torch.arange(ids.shape[1], device=ids.device) == 0
        keep = first | (ids != self.pad_id) if self.pad_id is not None else ids >= 0
        x = self.embed(ids)
        mask = keep[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x)
        weights = keep.unsqueeze(-1).to(x.dtype)
        return self.head((x * weights).sum(1) / weights.sum(1))


class _Tokens(nn.Module):
    """Embedding of token ids (given as floats or ints), flattened."""

    def __init__(self, vocab_size, dim):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)

    def forward(self, ids):
        return self.tokens(ids.long()).flatten(1)


def _mlp(n_in, hidden, n_out, dropout=0.0):
    layers, width = [], n_in
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_out))
    return layers


def cnn2d(meta):
    side = meta["shape"][-1]
    c1, c2 = (16, 32)
    if side >= 16:  # 28x28: pool twice
        features = [
            nn.Conv2d(1, c1, 3, padding=1),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        side = side // 4
    else:  # 8x8 digits
        features = [
            nn.Conv2d(1, c1, 3, padding=1),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        side = side // 2
    return nn.Sequential(
        *features,
        nn.Flatten(),
        nn.Linear(c2 * side * side, 64),
        nn.ReLU(),
        nn.Linear(64, meta["n_classes"]),
    )


def cnn1d(meta):
    length = meta["shape"][-1]
    return nn.Sequential(
        nn.Conv1d(1, 32, 5, padding=2),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Conv1d(32, 32, 5, padding=2),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Flatten(),
        nn.Linear(32 * (length // 2), 64),
        nn.ReLU(),
        nn.Linear(64, meta["n_classes"]),
    )


def mlp_model(hidden, dropout=0.0):
    def make(meta):
        return nn.Sequential(
            nn.Flatten(),
            *_mlp(math.prod(meta["shape"]), hidden, meta["n_classes"], dropout),
        )

    return make


def transformer_model(dim=32, num_heads=4, ffn_dim=64, pad_id=0):
    def make(meta):
        return TransformerClassifier(
            meta["vocab_size"],
            meta["n_classes"],
            max_len=meta["shape"][-1],
            dim=dim,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            pad_id=pad_id,
        )

    return make


def modadd_mlp(meta):
    return nn.Sequential(
        _Tokens(meta["vocab_size"], 32),
        *_mlp(2 * 32, (256, 128), meta["n_classes"]),
    )
