"""One deep configuration: train (or load), prune, fine-tune and measure.

:func:`run_task` prunes a task's trained network with one method and
measures test accuracy, parameter counts and inference latency before and
after; :func:`run_deep_config` turns that into the values the results store
keeps.
"""

import time

import numpy as np
import torch
from torch import nn

from ..._options import DEFAULTS, PAPER_SETTINGS
from ...pruning import METHODS, count_parameters, find_unit_groups, fine_tune, prune
from .._names import EXTERNAL, PAPER, parse_method_name
from .._torch_pruning import EXTERNAL_SCORERS
from .tasks import get_deep_task, load_deep_data, recipe, train_deep_model

__all__ = ["DEEP_METHODS", "measure_latency", "run_task", "run_deep_config"]

#: Methods of the deep benchmark: no pruning, the bandit policies, the
#: baselines (``obs`` among them: every group of the 14 tasks is read by a
#: layer it refits, a convolution's channels and attention heads by the
#: block cost), Torch-Pruning's criteria and the paper's configuration.
DEEP_METHODS = (*METHODS, *EXTERNAL, PAPER)


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
    if method in EXTERNAL:
        return EXTERNAL_SCORERS[method]()
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
    prune_ratio=DEFAULTS.prune_ratio,
    budget=DEFAULTS.budget,
    compensate=DEFAULTS.compensate,
    pull=DEFAULTS.pull,
    reward=DEFAULTS.reward,
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
    compensate : {"none", "mean", "lstsq"}, default="lstsq"
        See :func:`skbandit.pruning.remove_units`.
    pull : {"company", "single", "set"}, default="company"
        Pull scheme of the bandit policies (see :func:`~skbandit.pruning.prune`).
    reward : {"fidelity", "loss", "accuracy"}, default="fidelity"
        What a pull measures (see :func:`~skbandit.pruning.prune`).
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
        pull=pull,
        reward=reward,
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


def _method_options(method):
    """``(policy, run_task options)`` of a benchmark method name."""
    name = parse_method_name(method)
    if name is None and "@" not in method:
        return method, {}
    if name is None or name.policy not in DEEP_METHODS:
        raise ValueError(
            f"unknown deep method {method!r}; methods: {', '.join(DEEP_METHODS)} "
            "as '<method>@<ratio>[:<compensate>][/ft<epochs>][+<pull>]'"
        )
    if name.policy == PAPER:
        # run_task prunes in one round; the rest of the paper's settings
        # are its keyword arguments.
        paper = {k: v for k, v in PAPER_SETTINGS.items() if k not in _ONE_ROUND}
        return PAPER_SETTINGS["policy"], {**name.settings(), **paper}
    return name.policy, name.settings()


#: PAPER_SETTINGS entries run_task does not take (policy is its method).
_ONE_ROUND = ("policy", "n_rounds")


def run_deep_config(task, method, seed=0, cache=None, **kwargs):
    """One deep configuration as the values the benchmark store keeps.

    Parameters
    ----------
    task : str
    method : str
        A :data:`DEEP_METHODS` name, or a benchmark method name
        ``"<method>@<prune_ratio>[:<compensate>][/ft<epochs>][+<pull>]"`` (e.g.
        ``"ucb1@0.5"``, ``"ucb1@0.5:lstsq"``; ``"none"``).
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
    method, options = _method_options(method)
    kwargs.update(options)
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
        "prune_ratio": kwargs.get("prune_ratio", DEFAULTS.prune_ratio),
        "budget": kwargs.get("budget", DEFAULTS.budget),
        "recipe": recipe(spec),
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
