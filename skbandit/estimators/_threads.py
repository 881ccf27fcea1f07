"""How many torch threads a fit uses: one for small networks.

torch's intra-op threads pay off on large matrices only. On the small
networks most tabular data sets get, every extra thread adds synchronisation
to each of thousands of tiny operations, and on a loaded machine a thread
waiting for a descheduled sibling can stretch a 0.1 s fit to seconds.
"""

import contextlib
import math

import torch

__all__ = ["SMALL_BATCH_WORK", "batch_work", "threads_for"]

#: Multiply-adds of one forward minibatch below which a fit runs on one
#: thread (about a 256-row batch through 64-64 hidden units on 50 features
#: is 2 ** 21; wine through 32-32 units in batches of 64 is 2 ** 17).
SMALL_BATCH_WORK = 1 << 20


def batch_work(n_features, hidden_layer_sizes, n_outputs, batch_size):
    """Multiply-adds of one forward pass of a minibatch through the MLP.

    Examples
    --------
    >>> batch_work(13, (32, 32), 3, 64)
    98304
    """
    sizes = [n_features, *hidden_layer_sizes, n_outputs]
    return batch_size * sum(a * b for a, b in zip(sizes, sizes[1:]))


@contextlib.contextmanager
def threads_for(work):
    """Run the block on one torch thread if ``work`` is small; restore after.

    Never raises the thread count: a caller's own ``torch.set_num_threads``
    (or a joblib worker's one-thread limit) is kept for large problems.
    """
    previous = torch.get_num_threads()
    small = math.isfinite(work) and work < SMALL_BATCH_WORK
    if small and previous > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
