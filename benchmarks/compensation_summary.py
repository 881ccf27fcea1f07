"""What removal costs before fine-tuning, per selection and compensation.

Reads a results store written by::

    skbandit bench tabular \\
        --methods "none,none/ft0,<m>@<r>:<c>/ft0,...,paper@<r>/ft0" \\
        --db benchmarks/results/compensation-tabular.sqlite

(selection methods ``<m>``, Torch-Pruning's criteria included, with
compensation ``<c>``, at prune ratios ``<r>``, all pruning the same trained
networks without fine-tuning; the same for ``regression`` and ``deep``) and
prints, per prune ratio:

* the mean drop against the unpruned trained network (``none/ft0``), in
  points (100 x accuracy or R²), per method and compensation, as markdown;
* the selections compared at equal compensation: each one against random
  removal of the same compensation (Wilcoxon signed-rank over datasets, Holm
  within the ratio and compensation);
* one line ``compensation: prune_ratio=<r> default=<d> obs=<o> ... best=<m>``
  with the headline settings' drops (``default`` is UCB1 with the package's
  default pulls and least-squares compensation).

Usage: ``python benchmarks/compensation_summary.py [db] [suite] [ft0|before]
[datasets]``; ``before`` reads a deep store run with fine-tuning
(``skbandit bench deep``) at the accuracy it recorded right after removal;
``datasets`` (comma-separated) restricts the summary to those datasets.
"""

import sys

import pandas as pd

from skbandit._options import COMPENSATIONS, DEFAULTS, PAPER_SETTINGS
from skbandit.benchmarks import ResultStore, wilcoxon_holm
from skbandit.benchmarks._names import PAPER, display_name, parse_method_name

CONTROL = "none/ft0"
#: The line's columns: label -> (selection, compensation).
HEADLINE = {
    "default": ("ucb1", "lstsq"),
    "obs": ("obs", "lstsq"),
    "random_lstsq": ("random", "lstsq"),
    "magnitude_lstsq": ("magnitude", "lstsq"),
    "tp_magnitude_lstsq": ("tp_magnitude", "lstsq"),
    "tp_taylor_lstsq": ("tp_taylor", "lstsq"),
    "random_none": ("random", "none"),
    "paper": (PAPER, PAPER_SETTINGS["compensate"]),
}


def mean_scores(db, suite, before_fine_tuning=False):
    """Mean score per (dataset, method) over folds and seeds.

    With ``before_fine_tuning``, the deep suite's test accuracy right after
    removal (``extra["accuracy_pruned"]``), so that a store run with
    fine-tuning also answers without it; ``none`` is then the trained
    network itself, named :data:`CONTROL`.
    """
    with ResultStore(db, create=False) as store:
        frame = store.results_frame(suite)
    if before_fine_tuning:
        frame["score"] = [extra["accuracy_pruned"] for extra in frame["extra"]]
        frame["method"] = frame["method"].replace("none", CONTROL)
    return frame.pivot_table(index="dataset", columns="method", values="score")


def drops(scores, control=CONTROL):
    """Per-dataset drop against ``control`` in points, one column per method,
    indexed by (selection, compensation, prune ratio) of the pruning methods;
    only datasets where every method ran, so that all average the same."""
    points = scores.dropna().rsub(scores[control], axis=0).dropna() * 100
    parsed = {m: parse_method_name(m) for m in points.columns}
    kept = {m: p for m, p in parsed.items() if p is not None and p.prune_ratio}
    points = points[list(kept)]
    points.columns = pd.MultiIndex.from_tuples(
        [(p.policy, _compensation(p), p.prune_ratio) for p in kept.values()],
        names=["method", "compensate", "ratio"],
    )
    return points


def _compensation(name):
    """The compensation a parsed method name runs with."""
    if name.policy == PAPER:
        return PAPER_SETTINGS["compensate"]
    return name.compensate or DEFAULTS.compensate


def _cell(value):
    if isinstance(value, float):
        if pd.isna(value):
            return ""
        return f"{value:.3g}" if 0 < abs(value) < 0.01 else f"{value:.2f}"
    return str(value)


def markdown(table):
    """``table`` as a markdown table, numbers to two decimals (p-values to
    three significant digits), methods by their readable names (the
    summary lines keep the internal ones)."""
    header = [table.index.name or "", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in table.iterrows():
        cells = [_cell(v) for v in row]
        lines.append(
            f"| {display_name(key, ratio=False)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def drop_table(points, ratio):
    """Mean drop per method (rows) and compensation (columns) at ``ratio``."""
    at_ratio = points.xs(ratio, axis=1, level="ratio").mean()
    table = at_ratio.unstack("compensate")
    table = table[[c for c in COMPENSATIONS if c in table.columns]]
    return table.sort_values(list(table.columns[::-1]))


def against_random(points, ratio):
    """Mean drop difference and Holm p of each selection vs random removal
    of the same compensation at ``ratio`` (negative: loses less)."""
    rows = []
    at_ratio = points.xs(ratio, axis=1, level="ratio")
    for compensation in at_ratio.columns.get_level_values("compensate").unique():
        same = at_ratio.xs(compensation, axis=1, level="compensate")
        if "random" not in same.columns or same.shape[1] < 2:
            continue
        # wilcoxon_holm compares scores (higher is better): negate the drops.
        tests = wilcoxon_holm(-same, "random")
        for method, test in tests.iterrows():
            rows.append((method, compensation, -test["mean_diff"], test["p_holm"]))
    return pd.DataFrame(
        rows, columns=["method", "compensate", "drop - random's", "p_holm"]
    )


def headline_line(points, ratio):
    """The ``compensation: prune_ratio=...`` line at ``ratio``."""
    at_ratio = points.xs(ratio, axis=1, level="ratio").mean()
    values = {
        label: at_ratio.get(key)
        for label, key in HEADLINE.items()
        if key in at_ratio.index
    }
    best = at_ratio.idxmin()
    fields = " ".join(f"{label}={value:.2f}" for label, value in values.items())
    return (
        f"compensation: prune_ratio={ratio:g} {fields} "
        f"best={best[0]}:{best[1]} best_drop={at_ratio.min():.2f}"
    )


def main(
    db="benchmarks/results/compensation-tabular.sqlite",
    suite="tabular",
    when="ft0",
    datasets=None,
):
    scores = mean_scores(db, suite, before_fine_tuning=when == "before")
    if datasets:
        scores = scores.loc[datasets.split(",")]
    points = drops(scores)
    ratios = sorted(points.columns.get_level_values("ratio").unique())
    print(
        f"Datasets ({len(points)}): {', '.join(points.index)}. Mean drop "
        "against the unpruned trained network (none/ft0), in points of the "
        "score (lower is better), no fine-tuning.\n"
    )
    lines = []
    for ratio in ratios:
        print(f"## {ratio:.0%} of the hidden units removed\n")
        print(markdown(drop_table(points, ratio)))
        print("\nAgainst random removal with the same compensation:\n")
        print(markdown(against_random(points, ratio).set_index("method")))
        print()
        lines.append(headline_line(points, ratio))
    print("```\n" + "\n".join(lines) + "\n```")


if __name__ == "__main__":
    main(*sys.argv[1:])
