"""Re-run a seeded sample of a committed results store and compare the numbers.

A committed store is the evidence behind a report; a refactor or a speed-up
that claims to change no result must regenerate it identically. Re-running a
whole suite takes hours on two cores, so this script re-runs a seeded random
sample of its ``(dataset, method)`` pairs, every fold and seed of each, with
the store's own protocol, into a temporary store, and compares score and
parameter counts exactly (no tolerance: a fixed seed must give the same
bits).

Usage::

    python benchmarks/reproduce_check.py benchmarks/results/tabular.sqlite \\
        [--sample 4] [--seed 0] [--max-rows 2000]

It prints one line per pair and then, per suite of the store::

    reproduce: suite=<suite> pairs=<n> configs=<m> identical=<k> \\
        max_abs_diff=<d> ok|MISS
"""

import argparse
import os
import tempfile

import numpy as np
import pandas as pd

from skbandit.benchmarks import (
    OURS_DEFAULTS,
    ResultStore,
    get_spec,
    run_benchmark,
    run_deep_benchmark,
)


def _pairs(frame, sample, seed, max_rows):
    """A seeded sample of stored (dataset, method) pairs on small datasets."""
    small = frame["n_train"].fillna(0) + frame["n_test"].fillna(0) <= max_rows
    pairs = sorted(set(zip(frame.loc[small, "dataset"], frame.loc[small, "method"])))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pairs), size=min(sample, len(pairs)), replace=False)
    return [pairs[i] for i in sorted(chosen)]


def _same(a, b):
    """Equal, or both missing (scikit-learn peers have no parameter count)."""
    return bool(pd.isna(a) and pd.isna(b)) or bool(a == b)


def _rerun(suite, protocol, dataset, method, seeds, db):
    """Run one (dataset, method) pair of ``suite`` under ``protocol`` into ``db``."""
    if suite == "deep":
        return run_deep_benchmark(
            tasks=[dataset],
            methods=[method],
            seeds=seeds,
            db=db,
            budget=protocol["budget"],
            progress=False,
            on_error="raise",
        )
    overrides = {k: v for k, v in protocol["ours"].items() if OURS_DEFAULTS.get(k) != v}
    return run_benchmark(
        suite,
        datasets=[dataset],
        methods=[method],
        n_folds=protocol["n_folds"],
        seeds=seeds,
        db=db,
        max_samples=protocol["max_samples"],
        ours_params=overrides or None,
        progress=False,
        on_error="raise",
    )


def check_suite(store, suite, sample, seed, max_rows):
    """Re-run a sample of ``suite``; return (pairs, configs, identical, max diff)."""
    frame = store.results_frame(suite)
    protocol = store.protocol(suite)
    configs = identical = 0
    worst = 0.0
    pairs = _pairs(frame, sample, seed, max_rows)
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, method in pairs:
            if suite != "deep":
                get_spec(dataset)  # the dataset still exists
            stored = frame[(frame["dataset"] == dataset) & (frame["method"] == method)]
            db = os.path.join(tmp, f"{len(os.listdir(tmp))}.sqlite")
            _rerun(suite, protocol, dataset, method, sorted(set(stored["seed"])), db)
            with ResultStore(db, create=False) as fresh:
                again = fresh.results_frame(suite).set_index(["fold", "seed"])
            for _, row in stored.iterrows():
                new = again.loc[(row["fold"], row["seed"])]
                diff = abs(float(new["score"]) - float(row["score"]))
                same = diff == 0.0 and _same(new["params_after"], row["params_after"])
                configs += 1
                identical += bool(same)
                worst = max(worst, diff)
            print(
                f"  {suite} {dataset} {method}: "
                f"{identical}/{configs} identical so far, max |diff| {worst:.3g}",
                flush=True,
            )
    return len(pairs), configs, identical, worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", help="a committed results store (.sqlite)")
    parser.add_argument("--sample", type=int, default=4, help="pairs per suite")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument(
        "--max-rows", type=int, default=2000, help="only datasets this small"
    )
    args = parser.parse_args(argv)
    with ResultStore(args.db, create=False) as store:
        suites = store.suites()
        for suite in suites:
            pairs, configs, identical, worst = check_suite(
                store, suite, args.sample, args.seed, args.max_rows
            )
            verdict = "ok" if configs and identical == configs else "MISS"
            print(
                f"reproduce: suite={suite} pairs={pairs} "
                f"configs={configs} identical={identical} "
                f"max_abs_diff={worst:.3g} {verdict}"
            )


if __name__ == "__main__":
    main()
