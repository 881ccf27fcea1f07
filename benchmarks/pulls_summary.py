"""Single-unit vs set pulls: which ranks units better for removal?

Reads a store written by::

    skbandit bench tabular --methods "none,<p>@0.5:<c>/ft0,<p>@0.5:<c>/ft0+set,..." \\
        --db benchmarks/results/pulls-tabular.sqlite

(policies ``<p>`` except the full-information Hedge, compensation ``<c>`` in
none/mean, no fine-tuning, all on the same trained networks) and prints the
mean accuracy drop against the unpruned network for single and set pulls,
then ``pulls: single_drop=<a> set_drop=<b> set_better=<k>/<n>``.

Usage: ``python benchmarks/pulls_summary.py [db] [suite]``.
"""

import sys

import pandas as pd
from compensation_summary import mean_scores


def main(db="benchmarks/results/pulls-tabular.sqlite", suite="tabular"):
    scores = mean_scores(db, suite)
    singles = [m for m in scores.columns if m != "none" and not m.endswith("+set")]
    drop = scores.drop(columns="none").rsub(scores["none"], axis=0).mean()
    table = pd.DataFrame(
        {
            "single": [drop[m] for m in singles],
            "set": [drop[m + "+set"] for m in singles],
        },
        index=singles,
    )
    print("Mean drop vs the unpruned network, 50 % removed, no fine-tuning:\n")
    print(table.round(4).to_string())
    better = sum(int((scores[m + "+set"] > scores[m]).sum()) for m in singles)
    total = len(singles) * len(scores)
    print(
        f"pulls: single_drop={table['single'].mean():.4f} "
        f"set_drop={table['set'].mean():.4f} set_better={better}/{total}"
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
