"""Does the unpruned estimator train as well per epoch as scikit-learn's MLP?

Issue 29's parity check. Per dataset, seed and epoch budget, both
estimators get the same split (75/25, seeded, stratified for classification),
the same standardised features and the same hyper-parameters by the same
names: hidden (64, 64), relu, Adam, learning rate 1e-3, batch ``"auto"``
(``min(200, n)``), ``alpha`` 1e-4, and exactly ``epochs`` epochs
(``tol=0``, ``n_iter_no_change=epochs``). Ours is unpruned
(``policy="none"``, ``fine_tune_epochs=0``). The target is left as it is
(scikit-learn's MLPRegressor trains on it raw; ours standardises it
internally, which is part of how it trains).

It prints one row per dataset and budget (mean test accuracy or R² over the
seeds, and the difference) and the summary line::

    sklearn_parity: cells=N within=K worse=W better=B

``within``: cells where ours is at least scikit-learn's minus 0.02;
``worse``: the others; ``better``: cells where ours exceeds scikit-learn's by
more than 0.02. The table goes to ``benchmarks/results/sklearn_parity.md``.

Usage::

    python benchmarks/sklearn_parity.py             # 6 datasets, 5 seeds
    python benchmarks/sklearn_parity.py --seeds 2   # quicker
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_iris,
    load_wine,
    make_friedman1,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor

EPOCHS = (15, 60, 200)
TOLERANCE = 0.02
OUT = Path(__file__).parent / "results" / "sklearn_parity.md"


def datasets():
    """``name -> (X, y, classification)``: three classification and three
    regression sets that ship with scikit-learn or are generated."""
    return {
        "iris": (*load_iris(return_X_y=True), True),
        "wine": (*load_wine(return_X_y=True), True),
        "breast_cancer": (*load_breast_cancer(return_X_y=True), True),
        "diabetes": (*load_diabetes(return_X_y=True), False),
        "make_regression": (
            *make_regression(300, 10, noise=5, random_state=0),
            False,
        ),
        "friedman1": (*make_friedman1(500, random_state=0), False),
    }


def common(epochs, seed):
    return dict(
        hidden_layer_sizes=(64, 64),
        activation="relu",
        solver="adam",
        learning_rate_init=1e-3,
        batch_size="auto",
        alpha=1e-4,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs,
        random_state=seed,
    )


def scores(X, y, classification, epochs, seed):
    """``(ours, scikit-learn's)`` test scores of one split and budget."""
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, random_state=seed, stratify=y if classification else None
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    ours_cls, theirs_cls = (
        (BanditPrunedMLPClassifier, MLPClassifier)
        if classification
        else (BanditPrunedMLPRegressor, MLPRegressor)
    )
    params = common(epochs, seed)
    ours = ours_cls(policy="none", fine_tune_epochs=0, **params)
    theirs = theirs_cls(**params)
    return tuple(
        est.fit(X_train, y_train).score(X_test, y_test) for est in (ours, theirs)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = []
    start = time.perf_counter()
    torch.set_num_threads(1)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, (X, y, classification) in datasets().items():
            for epochs in EPOCHS:
                pairs = [
                    scores(X, y, classification, epochs, seed)
                    for seed in range(args.seeds)
                ]
                ours, theirs = np.mean(pairs, axis=0)
                rows.append(
                    dict(
                        dataset=name,
                        metric="accuracy" if classification else "R²",
                        epochs=epochs,
                        ours=ours,
                        sklearn=theirs,
                        difference=ours - theirs,
                    )
                )
                print(
                    f"{name:16s} {epochs:4d} epochs: ours {ours:.3f} "
                    f"sklearn {theirs:.3f}",
                    flush=True,
                )
    table = pd.DataFrame(rows)
    within = int((table["difference"] >= -TOLERANCE).sum())
    better = int((table["difference"] > TOLERANCE).sum())
    line = (
        f"sklearn_parity: cells={len(table)} within={within} "
        f"worse={len(table) - within} better={better}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# Unpruned estimator vs scikit-learn's MLP at equal epochs\n\n"
        f"Mean test score over {args.seeds} seeds (75/25 splits); hidden "
        "(64, 64), Adam, lr 1e-3, batch auto, alpha 1e-4, exactly the epochs "
        "shown; one thread. Produced by `python benchmarks/sklearn_parity.py`"
        f" in {time.perf_counter() - start:.0f} s.\n\n"
        f"{table.round(3).to_markdown(index=False)}\n\n`{line}`\n"
    )
    print(line)


if __name__ == "__main__":
    main()
