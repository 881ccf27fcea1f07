"""Fixtures shared by several test modules."""

import importlib.util
from pathlib import Path

import pytest
import torch

#: The benchmark scripts (a folder of scripts, not a package).
BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def benchmark_script():
    """``load(name)``: the module of ``benchmarks/<name>.py``, imported once."""
    loaded = {}

    def load(name):
        if name not in loaded:
            path = BENCHMARKS / f"{name}.py"
            spec = importlib.util.spec_from_file_location(f"{name}_script", path)
            loaded[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded[name])
        return loaded[name]

    return load


@pytest.fixture
def one_torch_thread():
    """One torch thread: the networks are tiny, and on a busy machine OpenMP
    barriers of a second thread can cost seconds per call (im2col)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
