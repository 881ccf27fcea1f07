"""Company, single and set pulls: which ranks units better for removal?

Reads a store written by::

    skbandit bench tabular --methods "none,none/ft0,<p>@<r>:lstsq/ft0+<pull>,..." \\
        --db benchmarks/results/pulls-tabular.sqlite

(bandit policies ``<p>`` with each pull scheme, least-squares compensation,
no fine-tuning, all on the same trained networks) and prints, per prune
ratio, the mean drop against the unpruned trained network (``none/ft0``) in
points per policy and pull scheme, then one line per ratio
``pulls: prune_ratio=<r> company=<a> single=<b> set=<c> company_better=<k>/<n>``
(the drops averaged over the policies; ``company_better`` counts the
dataset x policy pairs where company pulls lose less than single pulls).

Usage: ``python benchmarks/pulls_summary.py [db] [suite]``.
"""

import sys

import pandas as pd
from compensation_summary import CONTROL, markdown, mean_scores

from skbandit._options import PULLS
from skbandit.benchmarks._names import parse_method_name


def pull_drops(scores):
    """Per-dataset drop in points, columns (policy, pull, ratio)."""
    points = scores.rsub(scores[CONTROL], axis=0) * 100
    parsed = {m: parse_method_name(m) for m in points.columns}
    kept = {m: p for m, p in parsed.items() if p is not None and p.pull}
    points = points[list(kept)]
    points.columns = pd.MultiIndex.from_tuples(
        [(p.policy, p.pull, p.prune_ratio) for p in kept.values()],
        names=["policy", "pull", "ratio"],
    )
    return points


def main(db="benchmarks/results/pulls-tabular.sqlite", suite="tabular"):
    points = pull_drops(mean_scores(db, suite))
    print(
        f"Datasets: {len(points)}. Mean drop against the unpruned trained "
        "network (none/ft0), in points (lower is better), least-squares "
        "compensation, no fine-tuning.\n"
    )
    means = points.mean()
    lines = []
    for ratio in sorted(means.index.get_level_values("ratio").unique()):
        table = means.xs(ratio, level="ratio").unstack("pull")
        table = table[[p for p in PULLS if p in table.columns]]
        print(f"## {ratio:.0%} of the hidden units removed\n")
        print(markdown(table))
        print()
        company = points[[c for c in points.columns if c[1:] == ("company", ratio)]]
        single = points[[(c[0], "single", ratio) for c in company.columns]]
        better = int((company.to_numpy() < single.to_numpy()).sum())
        fields = " ".join(f"{p}={table[p].mean():.2f}" for p in table.columns)
        lines.append(
            f"pulls: prune_ratio={ratio:g} {fields} "
            f"company_better={better}/{company.size}"
        )
    print("```\n" + "\n".join(lines) + "\n```")


if __name__ == "__main__":
    main(*sys.argv[1:])
