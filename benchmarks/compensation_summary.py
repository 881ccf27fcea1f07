"""What removal costs before fine-tuning, per compensation.

Reads a results store written by::

    skbandit bench tabular --methods "none,<m>@0.5:<c>/ft<e>,..." \\
        --db benchmarks/results/compensation-tabular.sqlite

(every selection method ``<m>``, including Torch-Pruning's ``tp_magnitude``,
with compensation ``<c>`` in none/mean/lstsq and ``<e>`` in 0/5 fine-tuning
epochs, all pruning the same trained networks), and prints:

* the mean score drop against the unpruned network (``none``) per method,
  compensation and fine-tuning, as a markdown table;
* mean ranks, Friedman and Nemenyi over the no-fine-tuning methods (a CD
  diagram is saved next to the store's report);
* the last line ``compensation: best=<method> drop=<d> tp_drop=<t>
  ratio=<d/t> target=0.333 ok|MISS``: the best no-fine-tuning setting's mean
  drop over Torch-Pruning magnitude's (no compensation, no fine-tuning).

Usage: ``python benchmarks/compensation_summary.py [db] [suite] [out]``, or
``python benchmarks/compensation_summary.py deep [db]`` for the deep suite
(before/after fine-tuning from one run, see :func:`deep_main`).
"""

import sys

import numpy as np
import pandas as pd

from skbandit.benchmarks import plot_cd_diagram, summarize
from skbandit.benchmarks._store import ResultStore

TARGET = 1 / 3
REFERENCE = "tp_magnitude@0.5:none/ft0"


def mean_scores(db, suite):
    """Mean score per (dataset, method) over folds and seeds."""
    with ResultStore(db, create=False) as store:
        frame = store.results_frame(suite)
    return frame.pivot_table(index="dataset", columns="method", values="score")


def drop_table(scores):
    """Mean drop vs ``none`` per selection method x compensation x fine-tuning."""
    drops = scores.drop(columns="none").rsub(scores["none"], axis=0).mean()
    rows = []
    for name, drop in drops.items():
        selection, rest = name.split("@")
        ratio, variant = rest.split(":")
        compensation, epochs = variant.split("/ft")
        rows.append((selection, compensation, int(epochs), drop))
    table = pd.DataFrame(rows, columns=["method", "compensate", "ft", "drop"])
    return table.pivot_table(
        index="method", columns=["ft", "compensate"], values="drop"
    ).sort_values((0, "lstsq"))


def _ours(drops):
    """Our settings only: Torch-Pruning's criterion is the reference."""
    return drops[[m for m in drops.index if not m.startswith("tp_")]]


def markdown(table):
    header = ["method"] + [f"ft{ft} {c}" for ft, c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, row in table.iterrows():
        lines.append(f"| {method} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    return "\n".join(lines)


def main(
    db="benchmarks/results/compensation-tabular.sqlite",
    suite="tabular",
    out="benchmarks/results/compensation-tabular",
):
    scores = mean_scores(db, suite)
    table = drop_table(scores)
    print(
        "Mean score drop vs the unpruned network (lower is better), 50 % of "
        "hidden units removed:\n"
    )
    print(markdown(table))
    no_ft = [m for m in scores.columns if m.endswith("/ft0")]
    summary = summarize(
        scores[no_ft]
        .stack()
        .rename("score")
        .reset_index()
        .rename(columns={"level_1": "method"})
        .assign(fold=0, seed=0)
    )
    print(
        f"\nFriedman (no fine-tuning, {len(no_ft)} settings): "
        f"chi2 = {summary.friedman.statistic:.3f}, p = {summary.friedman.pvalue:.3g}; "
        f"CD = {summary.cd:.3f}"
    )
    print(
        "Best mean ranks:",
        ", ".join(f"{m} ({r:.2f})" for m, r in summary.ranks.head(5).items()),
    )
    plot_cd_diagram(
        summary.ranks,
        summary.cd,
        path=f"{out}/cd_no_finetune.png",
        title=f"{suite}: removal without fine-tuning",
    )
    drops = scores[no_ft].rsub(scores["none"], axis=0).mean()
    best = _ours(drops).idxmin()
    reference = drops[REFERENCE]
    ratio = drops[best] / reference if reference > 0 else np.inf
    verdict = "ok" if ratio <= TARGET else "MISS"
    print(
        f"compensation: best={best} drop={drops[best]:.4f} "
        f"tp_drop={reference:.4f} ratio={ratio:.3f} target={TARGET:.3f} {verdict}"
    )


def deep_main(db="benchmarks/results/compensation-deep.sqlite"):
    """The same comparison on the deep suite (``skbandit bench deep`` with
    methods ``<m>@0.5:<c>``): each configuration records the accuracy before
    fine-tuning (``extra["accuracy_pruned"]``) and after (``score``)."""
    with ResultStore(db, create=False) as store:
        frame = store.results_frame("deep")
    frame["before"] = [e["accuracy_pruned"] for e in frame["extra"]]
    before = frame.pivot_table(index="dataset", columns="method", values="before")
    after = frame.pivot_table(index="dataset", columns="method", values="score")
    # Only tasks where every setting ran (lstsq cannot refit a convolution),
    # so that every column averages over the same tasks.
    complete = before.dropna().index
    before, after = before.loc[complete], after.loc[complete]
    print(f"Tasks compared ({len(complete)}): {', '.join(complete)}\n")
    rows = []
    for name in before.columns.drop("none"):
        selection, _, compensation = name.partition(":")
        rows.append(
            (
                selection.split("@")[0],
                compensation,
                (before["none"] - before[name]).mean(),
                (after["none"] - after[name]).mean(),
            )
        )
    table = pd.DataFrame(rows, columns=["method", "compensate", "before", "after"])
    wide = table.pivot_table(
        index="method", columns="compensate", values=["before", "after"]
    )
    print(
        "Mean accuracy drop vs the unpruned network, 50 % removed, before and "
        "after the task's fine-tuning:\n"
    )
    print(wide.round(4).to_string())
    drops = before.drop(columns="none").rsub(before["none"], axis=0).mean()
    reference = drops["tp_magnitude@0.5:none"]
    best = _ours(drops).idxmin()
    ratio = drops[best] / reference if reference > 0 else np.inf
    verdict = "ok" if ratio <= TARGET else "MISS"
    print(
        f"compensation: best={best} drop={drops[best]:.4f} "
        f"tp_drop={reference:.4f} ratio={ratio:.3f} target={TARGET:.3f} {verdict}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["deep"]:
        deep_main(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
