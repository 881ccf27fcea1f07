"""Issue 27's timing check: ``prune()``'s default on the deep suite's transformers.

For ``rt-transformer`` and ``modadd-transformer`` (trained by the deep
suite's recipe, seed 0, cached in ``--cache``), on 1024 training rows, at
``prune_ratio=0.5``, one thread, medians of ``--repeats`` runs timed back to
back in one process: ``prune()`` with its defaults (``policy=None``: greedy
OBS where every group's consumer is refittable, see
:func:`skbandit.pruning.default_policy`), UCB1 with the same settings (the
default before), and weight magnitude with the same least-squares refit (the
reference). It prints one line per task and method (time, ratio to
magnitude, test accuracy right after pruning) and, per task::

    transformer_prune_time: task=T default=<policy that ran>
        ratio=<default / magnitude> ucb1_ratio=<ucb1 / magnitude> target=10 ok|MISS

(one line).
Usage::

    python benchmarks/transformer_prune_time.py [--repeats 5] [--cache DIR]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from skbandit.benchmarks._execution import thread_limit
from skbandit.benchmarks.deep.configuration import _accuracy
from skbandit.benchmarks.deep.tasks import load_deep_data, train_deep_model
from skbandit.pruning import find_unit_groups, prune

TASKS = ("rt-transformer", "modadd-transformer")
METHODS = {
    "default": {},
    "ucb1": {"policy": "ucb1"},
    "magnitude": {"policy": "magnitude", "compensate": "lstsq"},
}
TARGET = 10


def measure(task, repeats, cache):
    model, _ = train_deep_model(task, 0, cache)
    data = load_deep_data(task)
    rng = np.random.default_rng([0, 1])
    n_rows = min(1024, data.n_train)
    rows = np.sort(rng.choice(data.n_train, size=n_rows, replace=False))
    X, y = torch.as_tensor(data.X_train[rows]), torch.as_tensor(data.y_train[rows])
    groups = find_unit_groups(model, example_input=X[:1])
    times = {name: [] for name in METHODS}
    ran, accuracy = {}, {}
    for repeat in range(repeats):
        for name, options in METHODS.items():
            start = time.perf_counter()
            pruned, report = prune(
                model, X, y, prune_ratio=0.5, groups=groups, random_state=0, **options
            )
            times[name].append(time.perf_counter() - start)
            if repeat == 0:
                ran[name] = report.method
                accuracy[name] = _accuracy(pruned, data.X_test, data.y_test)
    seconds = {name: statistics.median(t) for name, t in times.items()}
    for name in METHODS:
        print(
            f"  {task} {name} ({ran[name]}): {seconds[name]:.3f} s, "
            f"{seconds[name] / seconds['magnitude']:.1f}x magnitude, "
            f"accuracy right after {accuracy[name]:.4f}",
            flush=True,
        )
    ratio = seconds["default"] / seconds["magnitude"]
    return (
        f"transformer_prune_time: task={task} default={ran['default']} "
        f"ratio={ratio:.2f} ucb1_ratio={seconds['ucb1'] / seconds['magnitude']:.2f} "
        f"target={TARGET} {'ok' if ratio <= TARGET else 'MISS'}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "skbandit-deep-models",
        help="where the trained models are cached",
    )
    args = parser.parse_args(argv)
    lines = [measure(task, args.repeats, args.cache) for task in TASKS]
    print("\n".join(lines))


if __name__ == "__main__":
    with thread_limit(1):
        main()
