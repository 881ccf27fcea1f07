"""Deep benchmark tasks: loaders on small slices, model factories, one tiny run.

Nothing here trains to convergence: the run_task smoke tests train one epoch
on a few hundred rows.
"""

import numpy as np
import pytest
import torch

from skbandit.benchmarks._store import VALUE_COLUMNS
from skbandit.benchmarks.deep import (
    DEEP_METHODS,
    DEEP_TASKS,
    data,
    get_deep_task,
    list_deep_tasks,
    load_deep_data,
    make_deep_model,
    run_deep_config,
    run_task,
    train_deep_model,
)
from skbandit.pruning import find_unit_groups

#: (train rows, test rows, classes, input shape) of every task's full split.
EXPECTED = {
    "digits": (1437, 360, 10, (1, 8, 8)),
    "mnist": (4000, 1000, 10, (1, 28, 28)),
    "mnist1d": (4000, 1000, 10, (1, 40)),
    "imdb-tfidf": (3200, 800, 2, (5000,)),
    "imdb-tokens": (3200, 800, 2, (128,)),
    "rt-tfidf": (3200, 800, 2, (5000,)),
    "rt-tokens": (3200, 800, 2, (48,)),
    "bbc-tfidf": (1780, 445, 5, (5000,)),
    "bbc-tokens": (1780, 445, 5, (256,)),
    "parity": (4000, 1000, 2, (20,)),
    "modadd": (4704, 4705, 97, (2,)),
}

AVAILABLE = list_deep_tasks(available_only=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def needs(task):
    spec = get_deep_task(task)
    return pytest.mark.skipif(
        not spec.available, reason=f"needs {', '.join(spec.requires)}"
    )


def test_registry():
    assert len(DEEP_TASKS) == 14
    assert {t.domain for t in DEEP_TASKS.values()} == {"image", "text", "reasoning"}
    assert set(EXPECTED) == {t.dataset for t in DEEP_TASKS.values()}
    assert DEEP_METHODS[-3:] == ("tp_magnitude", "tp_taylor", "paper")
    assert "none" in DEEP_METHODS and "obs" in DEEP_METHODS
    assert len(DEEP_METHODS) == 18  # uniform, sar, lucb among them
    with pytest.raises(ValueError, match="unknown deep task"):
        get_deep_task("cifar")


@pytest.mark.parametrize(
    "task",
    [next(t for t in DEEP_TASKS.values() if t.dataset == d).name for d in EXPECTED],
)
def test_loader_split(task):
    spec = get_deep_task(task)
    if not spec.available:
        pytest.skip(f"needs {spec.requires}")
    n_train, n_test, n_classes, shape = EXPECTED[spec.dataset]
    full = load_deep_data(task)
    assert (full.n_train, full.n_test) == (n_train, n_test)
    assert full.meta["n_classes"] == n_classes and full.meta["shape"] == shape
    small = load_deep_data(task, max_train=40, max_test=20)
    assert small.X_train.shape == (40, *shape) and small.X_test.shape == (20, *shape)
    assert small.X_train.dtype == np.float32 and small.y_train.dtype == np.int64
    assert set(np.unique(full.y_train)) == set(range(n_classes))
    assert np.isfinite(small.X_train).all()
    # the split is fixed: the cached copy equals a fresh one
    data.load_split.cache_clear()
    again = load_deep_data(task, max_train=40, max_test=20)
    np.testing.assert_array_equal(again.X_train, small.X_train)
    np.testing.assert_array_equal(again.y_test, small.y_test)


@needs("mnist1d-mlp")
def test_mnist1d_restores_global_random_state():
    data.load_split.cache_clear()
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    load_deep_data("mnist1d-mlp", max_train=5)
    assert np.random.random() == expected


def test_generated_tasks_are_what_they_say():
    parity = load_deep_data("parity-mlp")
    secret = parity.meta["secret"]
    bits = (parity.X_train > 0).astype(int)
    np.testing.assert_array_equal(parity.y_train, bits[:, secret].sum(1) % 2)
    assert len(secret) == 3
    modadd = load_deep_data("modadd-mlp")
    X = modadd.X_test.astype(int)
    np.testing.assert_array_equal(modadd.y_test, (X[:, 0] + X[:, 1]) % 97)
    pairs = {
        tuple(r) for r in np.concatenate([modadd.X_train, modadd.X_test]).astype(int)
    }
    assert len(pairs) == 97 * 97  # every pair once, train and test disjoint


@pytest.mark.parametrize("task", AVAILABLE)
def test_models_run_and_have_units(task):
    data = load_deep_data(task, max_train=3, max_test=1)
    model = make_deep_model(task, data.meta, seed=0).eval()
    X = torch.as_tensor(data.X_train)
    assert model(X).shape == (3, data.meta["n_classes"])
    groups = find_unit_groups(model, example_input=X[:1])
    assert len(groups) >= 2
    kinds = {(g.unit_width > 1, g.producer_chunks > 1) for g in groups}
    if task.endswith("-transformer"):
        assert (True, True) in kinds  # attention heads
    if task.endswith("-cnn"):
        assert (True, False) in kinds  # channels read through Flatten


def test_train_cache(tmp_path):
    first, spent = train_deep_model("parity-mlp", 0, tmp_path, epochs=1, max_train=64)
    again, cached = train_deep_model("parity-mlp", 0, tmp_path, epochs=1, max_train=64)
    assert spent > 0 and cached == 0.0
    for p, q in zip(first.parameters(), again.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0)


SMOKE = {
    "epochs": 1,
    "max_train": 160,
    "max_test": 60,
    "budget": 1,
    "fine_tune_epochs": 1,
    "latency_repeats": 2,
}


@needs("digits-cnn")
def test_run_task_smoke_cnn(tmp_path):
    result = run_task("digits-cnn", "ucb1", seed=0, memory=tmp_path, **SMOKE)
    assert result["params_after"] < result["params_before"]
    assert result["units_after"] == [u // 2 for u in result["units_before"]]
    for key in ("accuracy", "accuracy_pruned", "accuracy_unpruned"):
        assert 0.0 <= result[key] <= 1.0
    assert result["latency_before"] > 0 and result["latency_after"] > 0
    assert result["total_pulls"] > 0 and result["n_test"] == 60
    unpruned = run_task("digits-cnn", "none", seed=0, memory=tmp_path, **SMOKE)
    assert unpruned["params_after"] == unpruned["params_before"]
    assert unpruned["accuracy_unpruned"] == result["accuracy_unpruned"]


def test_run_task_smoke_transformer_and_store_values():
    values = run_deep_config("modadd-transformer", "thompson", seed=1, **SMOKE)
    assert values["metric"] == "accuracy" and 0.0 <= values["score"] <= 1.0
    assert values["params_after"] < values["params_before"]
    assert values["extra"]["units_after"] == [2, 64]
    assert set(values) == set(VALUE_COLUMNS)  # exactly what the store keeps


def test_run_task_smoke_torch_pruning():
    pytest.importorskip("torch_pruning")
    result = run_task("parity-mlp", "tp_magnitude", **SMOKE)
    assert result["units_after"] == [64, 64]


def test_run_deep_config_paper_runs_the_papers_settings():
    values = run_deep_config("parity-mlp", "paper@0.5", **SMOKE)
    settings = values["extra"]["settings"]
    assert (settings["pull"], settings["reward"], settings["compensate"]) == (
        "single",
        "loss",
        "none",
    )
    assert values["extra"]["units_after"] == [64, 64]


def test_run_deep_config_unpruned_without_fine_tuning_is_the_trained_net():
    values = run_deep_config("parity-mlp", "none/ft0", **SMOKE)
    assert values["extra"]["settings"]["fine_tune_epochs"] == 0
    assert values["score"] == values["extra"]["accuracy_pruned"]


def test_run_task_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown deep method"):
        run_task("parity-mlp", "no_such_method", **SMOKE)
