"""OBS against the bandit on the deep tasks, over seeds.

Reads a deep results store written by::

    skbandit bench deep --datasets <tasks> \\
        --methods 'none,obs@*,ucb1@*,uniform@*,tp_magnitude@*' \\
        --ratios 0.5,0.75,0.9 --seeds 0,1,2 --n-jobs 2 \\
        --db benchmarks/results/deep-seeds.sqlite --out benchmarks/results/deep-seeds

and prints, right after removal and after the task's fine-tuning, greedy
OBS against UCB1, the uniform control and Torch-Pruning's magnitude (all with
the least-squares refit) per prune ratio: mean test accuracy over tasks (each
task averaged over its seeds), the tasks where OBS is ahead / behind with a
Wilcoxon signed-rank test over tasks Holm-adjusted over the ratios, and the
(task, seed) pairs where OBS is ahead / behind. Then one line per
comparison::

    deep_seeds: stage=<after_removal|after_finetune> other=<method> ratio=<r>
        obs=<acc> other_acc=<acc> tasks_ahead=<k>/<n> holm_p=<p>

(one line each) and the median prune seconds per method.

Usage: ``python benchmarks/deep_seeds_summary.py [db]``.
"""

import json
import sys

from scipy.stats import wilcoxon

from skbandit.benchmarks import ResultStore
from skbandit.benchmarks._names import display_name
from skbandit.benchmarks._stats import holm_adjust

RATIOS = ("0.5", "0.75", "0.9")
OTHERS = ("ucb1", "uniform", "tp_magnitude")
STAGES = {"after_removal": "accuracy_pruned", "after_finetune": "score"}


def load(db):
    with ResultStore(db, create=False) as store:
        frame = store.results_frame("deep")
    extra = frame["extra"].map(lambda e: e if isinstance(e, dict) else json.loads(e))
    frame["accuracy_pruned"] = extra.map(lambda e: e.get("accuracy_pruned"))
    frame["prune_time"] = extra.map(lambda e: e.get("prune_time"))
    return frame


def compare(frame, column, other):
    """Per ratio: (ratio, obs mean, other mean, tasks ahead, behind, pairs
    ahead, behind, pairs, Holm p)."""
    rows, pvalues = [], []
    for ratio in RATIOS:
        ours, theirs = f"obs@{ratio}", f"{other}@{ratio}"
        pairs = frame[frame["method"].isin([ours, theirs])].pivot_table(
            index=["dataset", "seed"], columns="method", values=column
        )
        tasks = pairs.groupby(level=0).mean()
        diff = tasks[ours] - tasks[theirs]
        pair_diff = pairs[ours] - pairs[theirs]
        decided = (diff != 0).any()
        pvalues.append(wilcoxon(diff, zero_method="zsplit").pvalue if decided else 1.0)
        rows.append(
            (
                ratio,
                100 * tasks[ours].mean(),
                100 * tasks[theirs].mean(),
                int((diff > 0).sum()),
                int((diff < 0).sum()),
                int((pair_diff > 0).sum()),
                int((pair_diff < 0).sum()),
                len(pair_diff),
            )
        )
    return [(*row, p) for row, p in zip(rows, holm_adjust(pvalues), strict=True)]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    frame = load(argv[0] if argv else "benchmarks/results/deep-seeds.sqlite")
    n_tasks = frame["dataset"].nunique()
    seeds = sorted(int(s) for s in frame["seed"].unique())
    print(f"{n_tasks} tasks, seeds {seeds}, {len(frame)} results\n")
    lines = []
    for stage, column in STAGES.items():
        print(f"## {stage.replace('_', ' ')}\n")
        print("| vs | ratio | OBS % | other % | tasks OBS ahead/behind | Holm p "
              "| pairs ahead/behind |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for other in OTHERS:
            for ratio, ours, theirs, ahead, behind, pa, pb, n, p in compare(
                frame, column, other
            ):
                print(
                    f"| {display_name(other, ratio=False)} | {ratio} | {ours:.2f} | "
                    f"{theirs:.2f} | "
                    f"{ahead}/{behind} | {p:.3g} | {pa}/{pb} of {n} |"
                )
                lines.append(
                    f"deep_seeds: stage={stage} other={other} ratio={ratio} "
                    f"obs={ours:.2f} other_acc={theirs:.2f} "
                    f"tasks_ahead={ahead}/{n_tasks} holm_p={p:.3g}"
                )
        print()
    pruning = frame[frame["method"].str.contains("@")]
    seconds = pruning.groupby(pruning["method"].str.split("@").str[0])["prune_time"]
    medians = seconds.median().round(2)
    print(
        "Median prune seconds: "
        + ", ".join(f"{display_name(m, ratio=False)} {s}" for m, s in medians.items())
        + "\n"
    )
    print("```\n" + "\n".join(lines) + "\n```")


if __name__ == "__main__":
    main()
