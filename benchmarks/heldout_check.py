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

The unpruned network's test accuracy of every (dataset, fold), the baseline
the drops are read against, is kept in ``<split>_base.csv``; ``--bases``
recovers it for runs that did not keep it (retraining only the unpruned
networks and checking them against the stored drops), ``--report-only``
rewrites the markdown from the CSV files without training anything.

Usage::

    python benchmarks/heldout_check.py tuning
    python benchmarks/heldout_check.py heldout
    python benchmarks/heldout_check.py fresh
    python benchmarks/heldout_check.py heldout --report-only
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
from skbandit._options import DEFAULTS
from skbandit.benchmarks import load_dataset
from skbandit.benchmarks._methods import OURS_DEFAULTS
from skbandit.benchmarks._names import COMPENSATION_NAMES, DISPLAY_NAMES, PULL_NAMES
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
    # prune()'s default when these results were stored: the bandit (on these
    # MLPs policy=None now resolves to OBS, which is the "obs" row).
    "default": dict(policy=DEFAULTS.policy),
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
            record_base(split, name, fold, base)
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


def _base_path(split):
    return RESULTS / f"{split}_base.csv"


def read_bases(split):
    """Test accuracy of the unpruned network of every (dataset, fold)
    recorded for ``split`` (the baseline the drops are read against)."""
    path = _base_path(split)
    if not path.exists():
        return pd.DataFrame(columns=["dataset", "fold", "base"])
    return pd.read_csv(path)


def record_base(split, dataset, fold, base):
    frame = read_bases(split)
    frame = frame[~((frame["dataset"] == dataset) & (frame["fold"] == fold))]
    row = pd.DataFrame([dict(dataset=dataset, fold=fold, base=base)])
    frame = pd.concat([frame, row], ignore_index=True) if len(frame) else row
    frame.sort_values(["dataset", "fold"]).to_csv(_base_path(split), index=False)


def recompute_bases(split, frame):
    """Retrain the unpruned network of every (dataset, fold) whose baseline
    is not recorded (runs before the baseline was kept), record its test
    accuracy, and check that it is the same network: ``obs`` (deterministic)
    pruning it at 50 % must drop exactly the recorded points. Prints
    ``<split>_base: folds=N reproduced=R`` and returns the bases."""
    have = {(r.dataset, r.fold) for r in read_bases(split).itertuples()}
    checked = reproduced = 0
    for name in DATASETS[split]:
        for fold, X, y, X_test, y_test in folds(name):
            if (name, fold) in have:
                continue
            net = train(X, y, fold)
            base = accuracy(net, X_test, y_test)
            stored = frame[
                (frame["dataset"] == name)
                & (frame["fold"] == fold)
                & (frame["method"] == GREEDY)
                & (frame["ratio"] == 0.5)
            ]["drop"]
            if len(stored):
                pruned, _ = prune(
                    net, X, y, prune_ratio=0.5, random_state=fold, **METHODS[GREEDY]
                )
                drop = 100 * (base - accuracy(pruned, X_test, y_test))
                checked += 1
                if abs(drop - float(stored.iloc[0])) > 1e-6:
                    print(
                        f"{name} fold {fold}: obs drop {drop:.4f} != stored "
                        f"{float(stored.iloc[0]):.4f}; baseline not recorded"
                    )
                    continue
                reproduced += 1
            record_base(split, name, fold, base)
            print(f"{name} fold {fold}: base={base:.3f}", flush=True)
    print(f"{split}_base: folds={checked} reproduced={reproduced}")
    return read_bases(split)


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


def markdown(frame, split, bases=None):
    """The report of a split: the baseline the drops are read against, then
    the mean drop (and its standard error over dataset-folds) per method x
    ratio, methods named for people (:func:`label`)."""
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
    ]
    lines += _baseline_lines(frame, split, bases)
    lines += [
        "| method | "
        + " | ".join(f"{r:.0%} removed" for r in ratios)
        + " | s / prune |",
        "|---|" + "---:|" * (len(ratios) + 1),
    ]
    for method in order:
        cells = [
            f"{table.loc[method, r]:.2f} ± {errors.loc[method, r]:.2f}" for r in ratios
        ]
        lines.append(
            f"| {label(method)} | " + " | ".join(cells) + f" | {seconds[method]:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _baseline_lines(frame, split, bases):
    """What the drops are read against: the unpruned networks' accuracy."""
    pairs = frame[["dataset", "fold"]].drop_duplicates()
    if bases is None or bases.empty:
        return [
            "Read against the test accuracy of the unpruned network of each "
            "dataset-fold (drop = 100 × (unpruned − pruned)); this run did not "
            "record it (`python benchmarks/heldout_check.py "
            f"{split} --bases` retrains the unpruned networks to recover it).",
            "",
        ]
    known = pairs.merge(bases, on=["dataset", "fold"], how="inner")
    per_dataset = known.groupby("dataset", sort=False)["base"].mean()
    per_dataset = per_dataset.reindex([d for d in DATASETS[split] if d in per_dataset])
    cells = ", ".join(f"{d} {100 * a:.1f}" for d, a in per_dataset.items())
    complete = len(known) == len(pairs)
    return [
        "**Read against**: the unpruned network's test accuracy, "
        f"{100 * known['base'].mean():.1f} % on average over "
        f"{len(known)}{'' if complete else f' of {len(pairs)}'} dataset-folds "
        f"(per dataset, %: {cells}). Drop = 100 × (unpruned − pruned accuracy), "
        "in points: 1.00 means 1 point of accuracy lost.",
        "",
    ]


def label(method):
    """A method of this check (a key of :data:`METHODS` or
    :data:`CANDIDATES`), named for people from its settings and the
    project's one mapping of names (:data:`DISPLAY_NAMES`)."""
    if method == "default":
        return (
            f"prune()'s bandit default: {DISPLAY_NAMES[DEFAULTS.policy]} + "
            f"{COMPENSATION_NAMES[DEFAULTS.compensate]}, "
            f"{PULL_NAMES[DEFAULTS.pull]}, {DEFAULTS.reward} reward"
        )
    if method == "paper":
        return DISPLAY_NAMES["paper"]
    settings = {**METHODS, **CANDIDATES}[method]
    policy = settings["policy"]
    if not isinstance(policy, str):
        policy = {"TorchPruningMagnitude": "tp_magnitude"}.get(
            type(policy).__name__, "tp_taylor"
        )
    text = DISPLAY_NAMES[policy]
    if settings.get("compensate"):
        text += f" + {COMPENSATION_NAMES[settings['compensate']]}"
    parts = [text]
    if "pull" in settings:
        parts.append(PULL_NAMES[settings["pull"]])
    if "reward" in settings:
        parts.append(f"{settings['reward']} reward")
    if settings.get("n_rounds", 1) > 1:
        parts.append(f"{settings['n_rounds']} rounds")
    return ", ".join(parts)


#: The tabular suite's store: the same eight held-out datasets, 5-fold on all
#: rows, every method fine-tuned 5 epochs after pruning (the estimators'
#: default use), the unpruned network trained as many epochs.
TABULAR_STORE = RESULTS.parent / "tabular.sqlite"

#: This check's methods -> the tabular suite's policies with the same
#: selection and refit (the suite prunes with prune()'s defaults:
#: least-squares refit, company pulls, fidelity reward); "ucb1_lstsq"
#: (single pulls, loss reward) has no counterpart there.
FINE_TUNED = {
    "default": "ucb1",
    "obs": "obs",
    "random_lstsq": "random",
    "magnitude_lstsq": "magnitude",
    "tp_magnitude_lstsq": "tp_magnitude",
    "tp_taylor_lstsq": "tp_taylor",
    "paper": "paper",
}


def fine_tuned_drops(split):
    """Drops after fine-tuning of the split's datasets, read from the tabular
    suite's committed store (nothing is run): ``dataset, fold, method,
    ratio, drop`` (points against the unpruned network trained as long), or
    None when the store lacks them."""
    if not TABULAR_STORE.exists():
        return None
    from skbandit.benchmarks._store import ResultStore

    with ResultStore(TABULAR_STORE, create=False) as store:
        results = store.results_frame("tabular")
    results = results[results["dataset"].isin(DATASETS[split])]
    if results.empty:
        return None
    scores = results.pivot_table(
        index=["dataset", "fold"], columns="method", values="score"
    )
    rows = []
    for method, policy in FINE_TUNED.items():
        for ratio in RATIOS:
            name = f"{policy}@{ratio:g}"
            if name not in scores or "none" not in scores:
                continue
            drop = 100 * (scores["none"] - scores[name])
            for (dataset, fold), value in drop.dropna().items():
                rows.append(
                    dict(
                        dataset=dataset, fold=fold, method=method, ratio=ratio,
                        drop=value,
                    )
                )  # fmt: skip
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame.attrs["base"] = scores["none"].mean()
    frame.attrs["folds"] = len(scores)
    return frame


def fine_tuned_markdown(tuned):
    """The after-fine-tuning table of the held-out datasets."""
    table = tuned.pivot_table(index="method", columns="ratio", values="drop")
    errors = tuned.groupby(["method", "ratio"])["drop"].sem().unstack()
    order = table.mean(axis=1).sort_values().index
    lines = [
        "## After fine-tuning (the estimators' default use)",
        "",
        "The same eight datasets in the tabular suite's committed store "
        "(`benchmarks/results/tabular.sqlite`, nothing rerun): 5-fold on all "
        "rows, every method fine-tuned 5 epochs after pruning, read against "
        "the unpruned network trained as many epochs (test accuracy "
        f"{100 * tuned.attrs['base']:.1f} % on average over "
        f"{tuned.attrs['folds']} dataset-folds). Mean drop ± standard error "
        "(points; negative = better than the unpruned network).",
        "",
        "| method | " + " | ".join(f"{r:.0%} removed" for r in table.columns) + " |",
        "|---|" + "---:|" * len(table.columns),
    ]
    for method in order:
        cells = [
            f"{table.loc[method, r]:.2f} ± {errors.loc[method, r]:.2f}"
            for r in table.columns
        ]
        lines.append(f"| {label(method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _draw(ax, frame, title, log):
    from matplotlib.ticker import ScalarFormatter

    means = frame.groupby(["method", "ratio"])["drop"].mean().unstack("ratio")
    for method, row in means.iterrows():
        style = "-o" if method == "default" else "--."
        color = f"C{list(METHODS).index(method) % 10}"
        ax.plot(
            100 * row.index, row.to_numpy(), style, color=color, label=label(method)
        )
    if log:
        # Drops span 0.1 to 40 points: a log axis, labelled in plain numbers.
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
    else:
        # Gains (negative drops) and one method near 12 points: linear
        # within one point of zero, logarithmic beyond.
        ax.set_yscale("symlog", linthresh=1.0)
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("hidden neurons removed (%)")
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)


def plot(frame, path, tuned=None):
    """Accuracy drop against the fraction of neurons removed, per method:
    after fine-tuning (when ``tuned`` is given) beside no fine-tuning."""
    from matplotlib.figure import Figure

    panels = 2 if tuned is not None else 1
    figure = Figure(figsize=(6.0 * panels, 4.6))
    axes = figure.subplots(1, panels, squeeze=False)[0]
    if tuned is not None:
        _draw(axes[0], tuned, "after 5 epochs of fine-tuning (default use)", False)
    _draw(axes[-1], frame, "right after removal, no fine-tuning", True)
    axes[0].set_ylabel("test accuracy drop (points)")
    figure.suptitle("8 held-out tabular datasets")
    handles, labels = axes[-1].get_legend_handles_labels()
    figure.legend(
        handles, labels, loc="lower center", ncol=2, fontsize="small",
        bbox_to_anchor=(0.5, -0.02 - 0.04 * ((len(labels) + 1) // 2)),
    )  # fmt: skip
    figure.savefig(path, dpi=150, bbox_inches="tight")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", choices=sorted(DATASETS))
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the split's markdown (and figure) from its CSV files; "
        "train and prune nothing",
    )
    parser.add_argument(
        "--bases",
        action="store_true",
        help="retrain only the unpruned networks whose test accuracy (the "
        "baseline) is not recorded, check them against the stored drops, "
        "record it, then report",
    )
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("SKBANDIT_THREADS", "1")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    methods = TUNING_METHODS if args.split == "tuning" else METHODS
    path = RESULTS / f"{args.split}.csv"
    if args.report_only or args.bases:
        frame = pd.read_csv(path)
    else:
        frame = run(args.split, methods, path)
    frame = frame[frame["method"].isin(list(methods))]
    bases = recompute_bases(args.split, frame) if args.bases else None
    chosen = choose(frame) if args.split == "tuning" else CHOSEN
    lines = [f"{args.split}: {line}" for _, line in verdicts(frame, chosen)]
    if args.split == "tuning":
        lines.append(f"tuning: chosen={chosen} (lowest mean drop over the ratios)")
    name = "summary.md" if args.split == "heldout" else f"{args.split}.md"
    bases = read_bases(args.split) if bases is None else bases
    report = markdown(frame, args.split, bases)
    tuned = fine_tuned_drops(args.split) if args.split == "heldout" else None
    if tuned is not None:
        report = report.replace(
            "drop (points), no fine-tuning", "drop (points), without fine-tuning "
            "and after it", 1,
        )  # fmt: skip
        report += "\n" + fine_tuned_markdown(tuned)
    report += "\n" + _machine_lines(lines)
    (RESULTS / name).write_text(report, encoding="utf-8")
    if args.split == "heldout":
        plot(frame, RESULTS / "heldout.png", tuned)
    print("\n".join(lines))


def _machine_lines(lines):
    """The summary lines, as the script prints them (checks parse them),
    collapsed below the table and wrapped rather than cut."""
    return "\n".join(
        [
            "<details>",
            "<summary>Summary lines as the script prints them (p-values, "
            "verdicts; internal method names)</summary>",
            "",
            "```text",
            *lines,
            "```",
            "",
            "</details>",
            "",
        ]
    )


if __name__ == "__main__":
    main()
