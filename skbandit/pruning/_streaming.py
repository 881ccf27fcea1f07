"""Statistics over all of ``X`` in bounded memory.

Unit means, activation spreads and least-squares compensation read every
row of the pruning data; they stream it in chunks whose activations hold at
most :data:`STREAM_ELEMENTS` elements, so that their memory depends on the
chunk and the width, not on the number of rows.
"""

__all__ = ["STREAM_ELEMENTS", "chunk_rows"]

#: Activation elements held at once when a statistic streams over rows
#: (64 MB of float32).
STREAM_ELEMENTS = 1 << 24


def chunk_rows(per_row):
    """Rows per chunk when one row holds ``per_row`` activation elements.

    Examples
    --------
    >>> chunk_rows(256) == STREAM_ELEMENTS // 256
    True
    >>> chunk_rows(10**9)
    1
    """
    return max(1, STREAM_ELEMENTS // max(1, per_row))
