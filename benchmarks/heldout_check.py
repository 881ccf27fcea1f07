"""Issue 13's check: choose the bandit defaults on tuning datasets, test them on others.

Protocol, per dataset (at most 2000 rows, a seeded stratified subsample) and
fold (3-fold, shuffled, seed 0): standardise the features on the training
part, train ONE MLP with the architecture and epochs of
:data:`skbandit.benchmarks._methods.OURS_DEFAULTS` (policy ``"none"``, no
fine-tuning), then prune that same trained network with every method at 50,
75 and 90 % of the hidden neurons, **without fine-tuning**, scoring and
compensating on the training part, and record the drop of test accuracy
(points) against the unpruned network.

Two splits of datasets, never mixed:

* ``tuning`` (breast_cancer, wine, digits, spam7, Default, OJ): the candidate
  bandit configurations (:data:`CANDIDATES`) are compared here, next to
  ``obs`` and random + least-squares; the candidate with the lowest mean drop
  over the three ratios (:func:`choose`) became the defaults of
  :func:`skbandit.pruning.prune` and the estimators.
* ``heldout`` (CreditCard, Wells, BEPS, churn, attrition, cells, olive,
  biopsy): only the final methods (:data:`METHODS`, ``default`` = the
  library's defaults) run here, once the defaults are fixed.
* ``fresh``: the same methods on eight datasets in no suite of this project
  and never looked at before this check was written (after ``heldout``'s
  75 % comparison with ``obs`` came out a tie): ``ImageSegments`` and seven
  of river's generators with fixed settings and seed 0 (:data:`SYNTH`).
  Needs ``river`` (in the ``bench`` extra).

Each run prints one line per ratio::

    <split>: ratio=0.75 default=<drop> obs=<drop> ... p_random=<p> p_obs=<p> \
        gap_obs=<default - obs> ci95_obs=<low>,<high> ok|MISS

(the tuning split's lines judge the chosen candidate, and a last line names
it). ``ok`` means the default's (chosen candidate's) mean drop is at most
``obs``'s, and below
random + least-squares by a one-sided paired Wilcoxon signed-rank test over
the (dataset, fold) pairs at p < 0.05 (``p_random``; ``p_obs`` is the
two-sided paired test against ``obs``, ``gap_obs`` the mean paired
difference from ``obs`` and ``ci95_obs`` its 95 % t-interval, for
information: a gap inside a wide interval is a tie the check cannot
break). Rows are cached in
``benchmarks/results/heldout/<split>.csv`` (an interrupted run resumes) and a
markdown table is written to ``benchmarks/results/heldout/<split>.md``
(``summary.md`` for the held-out split).

Usage::

    python benchmarks/heldout_check.py tuning
    python benchmarks/heldout_check.py heldout
    python benchmarks/heldout_check.py fresh
"""

import argparse
import os
import time
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats
from scipy.stats import wilcoxon
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import LabelEncoder, StandardScaler

from skbandit import BanditPrunedMLPClassifier
from skbandit.benchmarks import load_dataset
from skbandit.benchmarks._methods import OURS_DEFAULTS
from skbandit.benchmarks._torch_pruning import TorchPruningMagnitude, TorchPruningTaylor
from skbandit.pruning import PAPER_SETTINGS, prune

DATASETS = {
    "tuning": ("breast_cancer", "wine", "digits", "spam7", "Default", "OJ"),
    "heldout": (
        "CreditCard",
        "Wells",
        "BEPS",
        "churn",
        "attrition",
        "cells",
        "olive",
        "biopsy",
    ),
    "fresh": (
        "ImageSegments",
        "Agrawal",
        "Hyperplane",
        "LED",
        "RandomRBF",
        "RandomTree",
        "SEA",
        "Waveform",
    ),
}
RATIOS = (0.5, 0.75, 0.9)
MAX_ROWS = 2000
N_FOLDS = 3
SEED = 0
RESULTS = Path(__file__).parent / "results" / "heldout"


def bandit(policy, pull, reward, n_rounds=1):
    """A bandit configuration with least-squares compensation and every
    setting explicit, so that it does not change with the library's defaults."""
    return dict(
        policy=policy,
        pull=pull,
        reward=reward,
        compensate="lstsq",
        n_rounds=n_rounds,
        budget=10,
    )


#: Candidate bandit configurations compared on the tuning split only.
CANDIDATES = {
    "ucb1_single_loss": bandit("ucb1", "single", "loss"),
    "gts_single_fidelity": bandit("gaussian_thompson", "single", "fidelity"),
    "ucb1_company_loss": bandit("ucb1", "company", "loss"),
    "ucb1_company_fidelity": bandit("ucb1", "company", "fidelity"),
    "gts_company_fidelity": bandit("gaussian_thompson", "company", "fidelity"),
    "ucb1_company_fidelity_r4": bandit("ucb1", "company", "fidelity", n_rounds=4),
    "gts_company_fidelity_r4": bandit(
        "gaussian_thompson", "company", "fidelity", n_rounds=4
    ),
}

#: What the held-out split compares (``default`` = the library's defaults).
METHODS = {
    "default": {},
    "obs": dict(policy="obs", compensate="lstsq"),
    "random_lstsq": dict(policy="random", compensate="lstsq"),
    "magnitude_lstsq": dict(policy="magnitude", compensate="lstsq"),
    # The "ucb1 + LS": single pulls rewarded by the loss change.
    "ucb1_lstsq": CANDIDATES["ucb1_single_loss"],
    "paper": dict(PAPER_SETTINGS),
    "tp_magnitude_lstsq": dict(policy=TorchPruningMagnitude(), compensate="lstsq"),
    "tp_taylor_lstsq": dict(policy=TorchPruningTaylor(), compensate="lstsq"),
}

#: What the tuning split compares: the candidates and the two references.
TUNING_METHODS = {
    **CANDIDATES,
    "obs": METHODS["obs"],
    "random_lstsq": METHODS["random_lstsq"],
}

#: The comparison the ok|MISS verdict is about.
CHOSEN, GREEDY, RANDOM = "default", "obs", "random_lstsq"


#: river generators of the ``fresh`` split: ``name -> (class, settings)``.
SYNTH = {
    "Agrawal": ("Agrawal", dict(classification_function=2, seed=SEED)),
    "Hyperplane": (
        "Hyperplane",
        dict(seed=SEED, n_features=10, noise_percentage=0.05),
    ),
    "LED": ("LED", dict(seed=SEED, noise_percentage=0.1, irrelevant_features=True)),
    "RandomRBF": (
        "RandomRBF",
        dict(seed_model=SEED, seed_sample=SEED, n_classes=4, n_features=10),
    ),
    "RandomTree": (
        "RandomTree",
        dict(seed_tree=SEED, seed_sample=SEED, n_classes=3, n_num_features=6),
    ),
    "SEA": ("SEA", dict(variant=0, seed=SEED, noise=0.1)),
    "Waveform": ("Waveform", dict(seed=SEED, has_noise=True)),
}


def load(name):
    """Features and labels of one dataset: an installed table, or the first
    :data:`MAX_ROWS` samples of a river generator."""
    if name not in SYNTH:
        return load_dataset(name, max_samples=MAX_ROWS, random_state=SEED)
    from river.datasets import synth  # optional: only the fresh split

    kind, settings = SYNTH[name]
    rows = list(islice(getattr(synth, kind)(**settings), MAX_ROWS))
    return pd.DataFrame([x for x, _ in rows]), np.array([label for _, label in rows])


def folds(name):
    """``(fold, X_train, y_train, X_test, y_test)`` of one dataset, scaled."""
    return split_folds(*load(name))


def split_folds(X, y):
    """``(fold, X_train, y_train, X_test, y_test)`` of a feature table ``X``
    and labels ``y``: stratified, shuffled (seed :data:`SEED`), features
    standardised on each training part."""
    X = X.to_numpy(dtype=np.float32)
    y = LabelEncoder().fit_transform(y)
    splitter = StratifiedKFold(N_FOLDS, shuffle=True, random_state=SEED)
    for fold, (train, test) in enumerate(splitter.split(X, y)):
        scaler = StandardScaler().fit(X[train])
        yield (
            fold,
            scaler.transform(X[train]).astype(np.float32),
            y[train],
            scaler.transform(X[test]).astype(np.float32),
            y[test],
        )


def train(X, y, fold):
    """The one trained, unpruned network of a fold (no fine-tuning)."""
    params = {k: v for k, v in OURS_DEFAULTS.items() if k != "fine_tune_epochs"}
    clf = BanditPrunedMLPClassifier(
        policy="none", fine_tune_epochs=0, random_state=fold, **params
    )
    return clf.fit(X, y).module_


@torch.no_grad()
def accuracy(module, X, y):
    return float((module(torch.as_tensor(X)).argmax(1).numpy() == y).mean())


def run(split, methods, path):
    """Drops of every (dataset, fold, method, ratio), cached in ``path``."""
    done = pd.read_csv(path) if path.exists() else pd.DataFrame()
    rows = done.to_dict("records")
    have = {(r["dataset"], r["fold"], r["method"], r["ratio"]) for r in rows}
    for name in DATASETS[split]:
        for fold, X, y, X_test, y_test in folds(name):
            todo = [
                (m, r)
                for m in methods
                for r in RATIOS
                if (name, fold, m, r) not in have
            ]
            if not todo:
                continue
            start = time.perf_counter()
            net = train(X, y, fold)
            base = accuracy(net, X_test, y_test)
            for method, ratio in todo:
                tic = time.perf_counter()
                pruned, _ = prune(
                    net, X, y, prune_ratio=ratio, random_state=fold, **methods[method]
                )
                rows.append(
                    dict(
                        dataset=name,
                        fold=fold,
                        method=method,
                        ratio=ratio,
                        drop=100 * (base - accuracy(pruned, X_test, y_test)),
                        seconds=time.perf_counter() - tic,
                    )
                )
            pd.DataFrame(rows).to_csv(path, index=False)
            print(
                f"{name} fold {fold}: base={base:.3f} "
                f"({time.perf_counter() - start:.0f}s)",
                flush=True,
            )
    return pd.DataFrame(rows)


def _paired_p(gap, alternative):
    """Wilcoxon signed-rank p-value of paired drop differences (1 if all tie)."""
    return wilcoxon(gap, alternative=alternative).pvalue if (gap != 0).any() else 1.0


def _mean_interval(gap, level=0.95):
    """Mean of paired differences and its Student-t confidence interval."""
    half = stats.t.ppf(0.5 + level / 2, gap.size - 1) * stats.sem(gap)
    return gap.mean(), gap.mean() - half, gap.mean() + half


def verdicts(frame, chosen):
    """Per ratio: mean drops of every method and the ok|MISS verdict.

    ``p_random``: one-sided, ``chosen`` drops less than random + least
    squares; ``p_obs``: two-sided, ``chosen`` and ``obs`` differ, and
    ``gap_obs`` / ``ci95_obs`` the mean of ``chosen``'s drop minus ``obs``'s
    over the (dataset, fold) pairs and its 95 % t-interval: how large a
    difference the check could detect (reported, not part of the verdict).
    """
    lines = []
    for ratio, part in frame.groupby("ratio"):
        pivot = part.pivot_table(
            index=["dataset", "fold"], columns="method", values="drop"
        )
        means = pivot.mean()
        p_random = _paired_p(pivot[chosen] - pivot[RANDOM], "less")
        p_obs = _paired_p(pivot[chosen] - pivot[GREEDY], "two-sided")
        gap, low, high = _mean_interval((pivot[chosen] - pivot[GREEDY]).to_numpy())
        ok = means[chosen] <= means[GREEDY] and p_random < 0.05
        drops = " ".join(
            f"{m}={means[m]:.2f}" for m in [chosen, *means.index.drop(chosen)]
        )
        lines.append(
            (
                ratio,
                f"ratio={ratio} {drops} p_random={p_random:.3g} p_obs={p_obs:.3g} "
                f"gap_obs={gap:.2f} ci95_obs={low:.2f},{high:.2f} "
                f"{'ok' if ok else 'MISS'}",
            )
        )
    return lines


def choose(frame):
    """The candidate with the lowest mean drop over ratios, datasets and folds."""
    candidates = frame[frame["method"].isin(list(CANDIDATES))]
    return candidates.groupby("method")["drop"].mean().idxmin()


def markdown(frame, split):
    """Mean drop (and its standard error over dataset-folds) per method x ratio."""
    table = frame.pivot_table(index="method", columns="ratio", values="drop")
    errors = frame.groupby(["method", "ratio"])["drop"].sem().unstack()
    seconds = frame.groupby("method")["seconds"].mean()
    order = table.mean(axis=1).sort_values().index
    ratios = list(table.columns)
    lines = [
        f"# {split}: test-accuracy drop (points), no fine-tuning",
        "",
        f"Datasets: {', '.join(DATASETS[split])}; {N_FOLDS}-fold (seed {SEED}), "
        f"at most {MAX_ROWS} rows; one MLP {OURS_DEFAULTS['hidden_layer_sizes']} "
        f"{OURS_DEFAULTS['activation']} ({OURS_DEFAULTS['max_iter']} epochs) per "
        "fold, pruned by every method. Mean ± standard error over dataset-folds.",
        "",
        "| method | "
        + " | ".join(f"{r:.0%} removed" for r in ratios)
        + " | s / prune |",
        "|---|" + "---|" * (len(ratios) + 1),
    ]
    for method in order:
        cells = [
            f"{table.loc[method, r]:.2f} ± {errors.loc[method, r]:.2f}" for r in ratios
        ]
        lines.append(
            f"| {method} | " + " | ".join(cells) + f" | {seconds[method]:.2f} |"
        )
    return "\n".join(lines) + "\n"


#: How the figure names the methods of the held-out split.
LABELS = {
    "default": "skbandit default (bandit + LS)",
    "obs": "greedy OBS + LS",
    "random_lstsq": "random + LS",
    "magnitude_lstsq": "magnitude + LS",
    "tp_magnitude_lstsq": "Torch-Pruning magnitude + LS",
    "tp_taylor_lstsq": "Torch-Pruning Taylor + LS",
    "ucb1_lstsq": "UCB1 single pulls + LS",
    "paper": "paper (UCB1, no compensation)",
}


def plot(frame, path):
    """Accuracy drop against the fraction of neurons removed, per method."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    means = frame.groupby(["method", "ratio"])["drop"].mean().unstack("ratio")
    figure = Figure(figsize=(6.4, 4.0))
    ax = figure.add_subplot()
    for method, row in means.iterrows():
        style = "-o" if method == "default" else "--."
        label = LABELS.get(method, method)
        ax.plot(100 * row.index, row.to_numpy(), style, label=label)
    # Drops span 0.1 to 40 points: a log axis, labelled in plain numbers.
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("hidden neurons removed (%)")
    ax.set_ylabel("test accuracy drop (points, no fine-tuning)")
    ax.set_title("8 held-out tabular datasets, same trained MLPs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    figure.savefig(path, dpi=150, bbox_inches="tight")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", choices=sorted(DATASETS))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("SKBANDIT_THREADS", "1")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    methods = TUNING_METHODS if args.split == "tuning" else METHODS
    frame = run(args.split, methods, RESULTS / f"{args.split}.csv")
    frame = frame[frame["method"].isin(list(methods))]
    chosen = choose(frame) if args.split == "tuning" else CHOSEN
    lines = [f"{args.split}: {line}" for _, line in verdicts(frame, chosen)]
    if args.split == "tuning":
        lines.append(f"tuning: chosen={chosen} (lowest mean drop over the ratios)")
    name = "summary.md" if args.split == "heldout" else f"{args.split}.md"
    report = markdown(frame, args.split) + "\n```\n" + "\n".join(lines) + "\n```\n"
    (RESULTS / name).write_text(report, encoding="utf-8")
    if args.split == "heldout":
        plot(frame, RESULTS / "heldout.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
