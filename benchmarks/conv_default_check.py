"""Which method should ``prune()`` default to on convolutional networks?

A tuning split for that choice, on data the deep suite does not use:
Fashion-MNIST (Debian's ``dataset-fashion-mnist`` package, read from
``/usr/share/datasets/fashion-mnist``; the first 5,000 training and 1,000
test images, / 255). Two tasks with the deep suite's CNN
(``skbandit.benchmarks.deep.models.cnn2d``) and ``mnist-cnn``'s recipe (6
epochs of AdamW at lr 2e-3, batch 64, gradients clipped at 1):
``fashion-28`` on the 28x28 images (two convolutions with BatchNorm and
pooling) and ``fashion-14`` on 14x14 averages (the 8x8-digits branch: no
norm after the second convolution). Seeds 0, 1, 2 seed the initialisation,
the training order, the 1,024 training rows pruning sees (as ``run_task``
draws them) and the pruning.

Methods, all with the least-squares refit (``compensate="lstsq"``, the
default), at 50, 75 and 90 % of every layer's channels: greedy OBS
(``"obs"``), the bandit default (``"ucb1"``, 10 pulls per unit), its
round-robin control with the same pulls (``"uniform"``) and weight
magnitude (``"magnitude"``). Measured: test accuracy right after removal
(no fine-tuning) and the prune time, one thread.

The rule, fixed before the run (issue 25's, as for the estimators'
default): among the methods whose median prune time is at most twice OBS's,
the lowest mean accuracy drop over 75 % and 90 % (mean over tasks and
seeds) is the default. It prints one line per task, seed, method and ratio,
then::

    conv_default: chosen=M within_time=A,B,... obs_drop=... ucb1_drop=...
        uniform_drop=... magnitude_drop=... ucb1_time_ratio=...

(one line; drops in accuracy points, averaged over 75 and 90 %; the time
ratio is the median prune time over OBS's). Results go to ``--out``
(``results.csv``, ``summary.md``).

Usage::

    python benchmarks/conv_default_check.py [--seeds 0,1,2] [--out DIR]
"""

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from skbandit._random import seeded_global_rng
from skbandit.benchmarks import wilcoxon_holm
from skbandit.benchmarks._execution import thread_limit
from skbandit.benchmarks._names import display_name
from skbandit.benchmarks.deep.configuration import _accuracy
from skbandit.benchmarks.deep.models import cnn2d
from skbandit.pruning import find_unit_groups, fine_tune, prune

FASHION = Path("/usr/share/datasets/fashion-mnist")
OUT = Path(__file__).parent / "results" / "conv-default"
METHODS = ("obs", "ucb1", "uniform", "magnitude")
RATIOS = (0.5, 0.75, 0.9)
N_TRAIN, N_TEST, PRUNE_ROWS = 5000, 1000, 1024
RECIPE = dict(epochs=6, lr=2e-3, batch_size=64, max_grad_norm=1.0)


def _idx(name):
    with gzip.open(FASHION / name) as f:
        data = f.read()
    if name.endswith("images-idx3-ubyte.gz"):
        return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


def fashion(side):
    """``(X_train, y_train, X_test, y_test)`` at ``side`` x ``side`` (28 or 14)."""
    if not FASHION.is_dir():
        raise SystemExit(f"{FASHION} is missing: apt-get install dataset-fashion-mnist")
    X_train = _idx("train-images-idx3-ubyte.gz")[:N_TRAIN] / 255.0
    X_test = _idx("t10k-images-idx3-ubyte.gz")[:N_TEST] / 255.0
    y_train = _idx("train-labels-idx1-ubyte.gz")[:N_TRAIN]
    y_test = _idx("t10k-labels-idx1-ubyte.gz")[:N_TEST]
    if side == 14:
        X_train, X_test = (
            X.reshape(-1, 1, 14, 2, 14, 2).mean((3, 5)) for X in (X_train, X_test)
        )
    return (
        _tensor(X_train),
        torch.as_tensor(y_train),
        _tensor(X_test),
        y_test,  # numpy: the deep suite's accuracy compares to it
    )


def _tensor(X):
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))


def run_seed(task, data, seed):
    """Rows of one task and seed: every method at every ratio."""
    X_train, y_train, X_test, y_test = data
    with seeded_global_rng(seed):
        model = cnn2d({"shape": tuple(X_train.shape[1:]), "n_classes": 10}).float()
    fine_tune(model, X_train, y_train, random_state=seed, **RECIPE)
    model.eval()
    unpruned = _accuracy(model, X_test, y_test)
    rows = np.sort(
        np.random.default_rng([seed, 1]).choice(len(X_train), PRUNE_ROWS, replace=False)
    )
    X_prune, y_prune = X_train[rows], y_train[rows]
    groups = find_unit_groups(model, example_input=X_prune[:1])
    results = []
    for method in METHODS:
        for ratio in RATIOS:
            start = time.perf_counter()
            pruned, _ = prune(
                model, X_prune, y_prune, policy=method, prune_ratio=ratio,
                groups=groups, random_state=seed,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            accuracy = _accuracy(pruned, X_test, y_test)
            results.append(
                dict(task=task, seed=seed, method=method, ratio=ratio,
                     accuracy=accuracy, unpruned=unpruned,
                     drop=100 * (unpruned - accuracy), prune_s=seconds)
            )  # fmt: skip
            print(
                f"{task} seed {seed} {method}@{ratio}: accuracy {accuracy:.4f} "
                f"(unpruned {unpruned:.4f}), {seconds:.2f} s",
                flush=True,
            )
    return results


def choose(frame):
    """The rule: ``(chosen, within_time, drops, time_ratios)``."""
    times = frame.groupby("method")["prune_s"].median()
    ratios = times / times["obs"]
    within = [m for m in METHODS if ratios[m] <= 2.0]
    high = frame[frame["ratio"] >= 0.75]
    drops = high.groupby("method")["drop"].mean()
    chosen = min(within, key=lambda m: drops[m])
    return chosen, within, drops, ratios


def paired(frame, reference="ucb1"):
    """Each method against ``reference`` over the (task, seed, ratio) pairs
    at 75 and 90 %: Wilcoxon signed-rank tests, Holm-corrected over the
    methods (:func:`skbandit.benchmarks.wilcoxon_holm` on the drops, lower
    is better)."""
    high = frame[frame["ratio"] >= 0.75]
    drops = high.pivot_table(
        index=["task", "seed", "ratio"], columns="method", values="drop"
    )
    table = wilcoxon_holm(drops, reference, higher_is_better=False)
    table.index = pd.Index(
        [
            f"{display_name(m, ratio=False)} - {display_name(reference, ratio=False)}"
            for m in table.index
        ],
        name="method",
    )
    columns = ["mean_diff", "wins", "ties", "losses", "p", "p_holm"]
    return table[columns].round(3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite summary.md from --out's results.csv, running nothing",
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.report_only:
        frame = pd.read_csv(args.out / "results.csv")
    else:
        rows = []
        with thread_limit(1):
            for task, side in (("fashion-28", 28), ("fashion-14", 14)):
                data = fashion(side)
                for seed in seeds:
                    rows += run_seed(task, data, seed)
        frame = pd.DataFrame(rows)
    chosen, within, drops, ratios = choose(frame)
    line = (
        f"conv_default: chosen={chosen} within_time={','.join(within)} "
        + " ".join(f"{m}_drop={drops[m]:.2f}" for m in METHODS)
        + f" ucb1_time_ratio={ratios['ucb1']:.1f}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    table = (
        frame.groupby(["method", "ratio"])
        .agg(drop=("drop", "mean"), prune_s=("prune_s", "median"))
        .unstack("ratio")
        .round(3)
    )
    table.columns = [f"{k} @ {r:.0%}" for k, r in table.columns]
    table.index = pd.Index(
        [display_name(m, ratio=False) for m in table.index], name="method"
    )
    (args.out / "summary.md").write_text(
        "# Tuning split for prune()'s default on convolutional networks\n\n"
        f"Regenerate: `python benchmarks/conv_default_check.py --seeds {args.seeds}`"
        " (see its docstring for the data, the models and the rule). Mean "
        "test-accuracy drop right after removal (points, over 2 tasks x "
        f"{len(seeds)} seeds) and median prune seconds (one thread):\n\n"
        f"{table.to_markdown()}\n\n"
        "Median prune time over greedy OBS's: "
        + ", ".join(f"{display_name(m, ratio=False)} {ratios[m]:.1f}x" for m in METHODS)
        + f". Unpruned test accuracy: {frame['unpruned'].mean():.4f} "
        "on average.\n\n"
        "Paired against UCB1 over the 12 (task, seed, ratio) pairs at 75 and "
        "90 % (mean_diff = UCB1's drop minus the method's: positive, the "
        "method lost less; wins = pairs where the method "
        "lost less; Wilcoxon, Holm over the three methods):\n\n"
        f"{paired(frame).to_markdown()}\n\n"
        f"`{line}`\n"
    )
    print(line)


if __name__ == "__main__":
    main()
