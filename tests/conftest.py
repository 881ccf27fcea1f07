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


@pytest.fixture(autouse=True)
def no_training_cache(request):
    """Fits train unless a test asks for the in-process training cache
    (``@pytest.mark.training_cache``): tests of reproducibility must compare
    two trainings, not a training and its cached copy."""
    from skbandit.estimators import training_cache

    previous = training_cache.max_bytes
    training_cache.clear()
    if request.node.get_closest_marker("training_cache") is None:
        training_cache.max_bytes = 0
    yield
    training_cache.max_bytes = previous
    training_cache.clear()
