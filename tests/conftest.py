"""Fixtures shared by several test modules."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """One torch thread: the networks are tiny, and on a busy machine OpenMP
    barriers of a second thread can cost seconds per call (im2col)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
