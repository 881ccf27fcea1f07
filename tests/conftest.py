"""Fixtures shared by several test modules, and the order tests run in.

Two tiers (``setup.cfg`` adds ``-m "not slow"`` to every run):

- ``python -m pytest -x -q`` -- the default tier, a few minutes on 2 cores;
- ``python -m pytest -x -q -m slow`` -- the slow tier (CI runs both);
  ``-m ""`` runs everything.

Files run in the order of :data:`ORDER`: the cheap, central ones first
(policies, estimators, scikit-learn's checks), then pruning, other
architectures, the benchmark harness and the docs, so a first run shows
progress at once. Files not listed run last, in name order.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

#: Test files, cheapest and most central first (see the module docstring).
ORDER = (
    # policies and the estimators: what a user meets first
    "test_policies.py",
    "test_best_set.py",
    "test_estimators.py",
    "test_sklearn_checks.py",
    "test_mlp_dropin.py",
    "test_bad_inputs.py",
    "test_determinism.py",
    "test_size.py",
    "test_streaming.py",
    "test_reliability.py",
    "test_properties.py",
    # the pruning engine on MLPs
    "test_pruning.py",
    "test_pruning_targets.py",
    "test_obs.py",
    "test_best_set_pruning.py",
    "test_export.py",
    "test_architecture.py",
    "test_conv3d.py",
    # other architectures (CNNs, transformers, ResNet/ViT, Torch-Pruning, GPU)
    "test_deep_units.py",
    "test_any_model.py",
    "test_torch_pruning.py",
    "test_causal_lm.py",
    "test_gpu.py",
    # the benchmark harness and its scripts, the command line, Dask
    "test_benchmark_datasets.py",
    "test_benchmark_stats.py",
    "test_benchmark_runner.py",
    "test_reports.py",
    "test_lm_bench.py",
    "test_bandit_check.py",
    "test_adversarial_script.py",
    "test_sklearn_mlp_suite.py",
    "test_security.py",
    "test_deep_tasks.py",
    "test_cli.py",
    "test_dask.py",
    # documentation: doctests, gallery scripts, API pages
    "test_docs.py",
)


def pytest_collection_modifyitems(config, items):
    """Run the files in :data:`ORDER`; within a file, in the written order."""
    rank = {name: i for i, name in enumerate(ORDER)}
    items.sort(key=lambda item: rank.get(item.path.name, len(ORDER)))


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
