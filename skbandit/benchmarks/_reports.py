"""Reports of a benchmark suite, read from its results store.

A report opens with what a reader needs first (:func:`glance_tables`): the
unpruned network and scikit-learn's models it is read against, then one
small table per prune ratio (method, mean score, drop against the unpruned
network, parameters kept, fit time and the share of fits whose training came
from the cache). Methods are named for people (:func:`display_name`); the
internal names of the command line stay in ``results.csv``. Then:

Two comparisons, each with per-dataset mean ± std, mean ranks, the Friedman
test, the Nemenyi post-hoc matrix, the critical difference and a CD diagram
(:mod:`._stats`):

(a) **all methods**: our pruned networks and the scikit-learn peers;
(b) **pruning policies only**: our estimators (every policy and baseline at
    every ratio, and the unpruned network), which places UCB1 and Thompson
    sampling among the pruning methods.

Plus the cost of every method (fit and predict time, parameter count after /
before pruning) and, when the store holds several prune ratios, a pruning
curve: score against prune ratio per policy, averaged over datasets.

:func:`write_report` writes ``report.md``, the PNG figures and
``results.csv`` into a folder and returns a :class:`Report` whose
``terminal`` text is a compact summary for the console.
"""

import dataclasses
import os
import re
import warnings

import pandas as pd

from .._options import UNPRUNED
from ._errors import BenchmarkInputError
from ._names import (
    AUTO,
    SCRATCH,
    MethodName,
    display_name,
    format_ratio,
    parse_method_name,
)
from ._stats import friedman_lines, markdown_table, summarize, wilcoxon_holm
from ._store import ResultStore

__all__ = ["Report", "build_report", "write_report", "pruning_curve", "cost_table"]

# Policies whose standing the paper reports; the report states it explicitly.
HEADLINE_POLICIES = ("ucb1", "thompson")


@dataclasses.dataclass
class Report:
    """A rendered report.

    Attributes
    ----------
    markdown : str
        Content of ``report.md``.
    terminal : str
        Compact summary: mean scores, ranks, Friedman lines.
    summary_all : Summary
        Comparison (a), all methods.
    summary_ours : Summary or None
        Comparison (b), our pruning methods only (None without any).
    curve : pandas.DataFrame or None
        Mean score per policy (rows) and prune ratio (columns), when the
        store holds more than one ratio.
    costs : pandas.DataFrame
        Per method: mean fit / predict time and parameter ratio.
    files : list of str
        Paths written by :func:`write_report` (empty for :func:`build_report`).
    """

    markdown: str
    terminal: str
    summary_all: object
    summary_ours: object
    curve: object
    costs: pd.DataFrame
    files: list = dataclasses.field(default_factory=list)


def _is_ours(method):
    return parse_method_name(method) is not None


def _summarize_quietly(frame):
    # summarize() warns about incomplete datasets; the report lists them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return summarize(frame, higher_is_better=True)


def cost_table(frame):
    """Mean cost of every method over all its configurations.

    Parameters
    ----------
    frame : pandas.DataFrame
        Results in long format (``ResultStore.results_frame``).

    Returns
    -------
    pandas.DataFrame
        Indexed by method (first-appearance order): ``fit_s``,
        ``predict_s``, ``params_after`` (mean count, NaN when the method has
        no parameter count), ``params_ratio`` (mean after / before) and,
        when the results recorded them, ``train_s``, ``prune_s`` and
        ``fine_tune_s`` (mean seconds of each phase of our fits; NaN for
        peers), ``cache_hits`` (share of the fits whose trained network came
        from the cache, so that ``fit_s`` and ``train_s`` hold no training
        for them) and ``latency_ratio`` (mean measured pruned / unpruned
        inference latency).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"method": ["a", "a", "b"], "fit_time": [1.0, 3.0, 1.0],
    ...     "predict_time": [0.1, 0.1, 0.2], "params_before": [100, 100, None],
    ...     "params_after": [50, 40, None]})
    >>> float(cost_table(frame).loc["a", "params_ratio"])
    0.45
    """
    before = pd.to_numeric(frame["params_before"], errors="coerce").astype(float)
    after = pd.to_numeric(frame["params_after"], errors="coerce").astype(float)
    table = pd.DataFrame(
        {
            "method": frame["method"],
            "fit_s": frame["fit_time"].astype(float),
            "predict_s": frame["predict_time"].astype(float),
            "params_after": after,
            "params_ratio": after / before,
        }
    )
    extras = [
        e if isinstance(e, dict) else {}
        for e in frame.get("extra", [None] * len(frame))
    ]
    # Seconds per phase and cache hits, where our estimators recorded them.
    for phase in ("train", "prune", "fine_tune"):
        _add_recorded(
            table, f"{phase}_s", [e.get("fit_times", {}).get(phase) for e in extras]
        )
    _add_recorded(table, "cache_hits", [e.get("train_cache_hit") for e in extras])
    # Measured pruned / unpruned latency, where the run recorded it (deep).
    _add_recorded(table, "latency_ratio", [e.get("latency_ratio") for e in extras])
    costs = table.groupby("method", sort=False).mean()
    costs.index.name = "method"
    return costs


def _add_recorded(table, column, values):
    """Add ``values`` as a numeric column when any of them was recorded."""
    if any(v is not None for v in values):
        values = [float(v) if v is not None else None for v in values]
        table[column] = pd.to_numeric(pd.Series(values, index=table.index))


def pruning_curve(mean_scores):
    """Mean score per policy and prune ratio, averaged over datasets.

    Parameters
    ----------
    mean_scores : pandas.DataFrame
        Datasets x methods table of mean scores (``Summary.mean``); only
        datasets scored by every one of our methods count, so every point of
        the curve averages the same datasets.

    Returns
    -------
    pandas.DataFrame or None
        One row per method setting (its name without the ratio, e.g.
        ``"ucb1"`` or ``"ucb1:lstsq/ft0"``), ratios as columns (ascending),
        plus the unpruned score in column ``0.0`` when the unpruned net
        trained as long (see :func:`control_comparisons`) was run. None when
        fewer than two ratios are present.

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"none": [0.9, 0.8], "ucb1@0.3": [0.9, 0.7],
    ...                        "ucb1@0.5": [0.8, 0.6]})
    >>> pruning_curve(scores).round(2).to_dict("index")
    {'ucb1': {0.0: 0.85, 0.3: 0.8, 0.5: 0.7}}
    """
    parsed = {m: parse_method_name(m) for m in mean_scores.columns}
    ours = [m for m, p in parsed.items() if p is not None]
    complete = mean_scores[ours].dropna()
    # A curve over fixed ratios: "auto" finds a size of its own.
    pruned = [m for m in ours if isinstance(parsed[m].prune_ratio, float)]
    ratios = sorted({parsed[m].prune_ratio for m in pruned})
    if len(ratios) < 2 or complete.empty:
        return None
    means = complete.mean(axis=0)
    rows = pd.DataFrame(
        [(_curve_label(parsed[m]), parsed[m].prune_ratio, means[m]) for m in pruned],
        columns=["method", "ratio", "score"],
    )
    curve = rows.pivot(index="method", columns="ratio", values="score")
    labels = dict(zip(rows["method"], pruned))
    curve = curve.reindex(index=list(labels))
    unpruned = [_unpruned_control(parsed[m], means.index) for m in labels.values()]
    if all(name in means for name in unpruned):
        curve.insert(0, 0.0, means[unpruned].to_numpy())
    curve.columns.name = "ratio"
    return curve


def _curve_label(name):
    """A method's name without its ratio: one curve per setting
    (``"ucb1"``, ``"ucb1:lstsq/ft0"``)."""
    return str(name).replace(f"@{format_ratio(name.prune_ratio)}", "", 1)


def _setting(name):
    """What a method shares with its fair comparisons: ratio, compensation,
    fine-tuning and pull scheme (everything in its name but the policy)."""
    return dataclasses.replace(name, policy="random")


def _unpruned_control(setting, methods):
    """The unpruned net trained as long as ``setting``'s methods, if run.

    ``"none/ft0"`` for methods without fine-tuning, when ``methods`` has it;
    otherwise ``"none"``.
    """
    same_epochs = str(MethodName(UNPRUNED, fine_tune_epochs=setting.fine_tune_epochs))
    return same_epochs if same_epochs in methods else UNPRUNED


def _scratch_control(setting):
    """The network of ``setting``'s pruned size trained from scratch for as
    many epochs (compensation and pulls do not apply to it); None for a
    setting that finds its size (``"auto"``), which has no size to train."""
    if setting.prune_ratio == AUTO:
        return None
    return str(
        MethodName(
            SCRATCH, setting.prune_ratio, fine_tune_epochs=setting.fine_tune_epochs
        )
    )


def control_comparisons(mean_scores, alpha=0.05):
    """Each pruning method against the unpruned net, random removal and scratch.

    Methods are compared only with controls of the same setting (prune
    ratio, compensation, fine-tuning epochs, pull scheme): the unpruned net
    (``"none/ft<epochs>"`` when run, so that both train equally long, else
    ``"none"``), the random removal of that setting and, when run, a network
    of the pruned size trained from scratch for as many epochs
    (``"scratch@<ratio>"``), by paired Wilcoxon signed-rank tests over
    datasets, Holm-corrected within each setting and control (see
    :func:`~skbandit.benchmarks.wilcoxon_holm`).

    Parameters
    ----------
    mean_scores : pandas.DataFrame
        Mean score per dataset (rows) and method (columns).
    alpha : float, default=0.05

    Returns
    -------
    pandas.DataFrame or None
        One row per pruning method with ``vs none`` and ``vs random`` mean
        differences and Holm p-values, or None when no setting has a
        control and two datasets.

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({
    ...     "none": [0.9, 0.8, 0.7],
    ...     "ucb1@0.5": [0.88, 0.79, 0.69],
    ...     "random@0.5": [0.85, 0.70, 0.66],
    ... })
    >>> table = control_comparisons(scores)
    >>> table.loc["ucb1@0.5", ["diff vs none", "diff vs random"]].round(3).tolist()
    [-0.013, 0.05]
    """
    complete = mean_scores.dropna()
    if len(complete) < 2:
        return None
    parsed = {m: parse_method_name(m) for m in complete.columns}
    pruned = [m for m, p in parsed.items() if p is not None and p.prune_ratio]
    by_setting = {}
    for method in pruned:
        by_setting.setdefault(_setting(parsed[method]), []).append(method)
    parts = []
    for setting, methods in by_setting.items():
        compared = [m for m in methods if m != str(setting)]
        if not compared:
            continue
        table = pd.DataFrame(index=compared)
        controls = (
            ("none", _unpruned_control(setting, complete.columns)),
            ("random", str(setting)),
            ("scratch", _scratch_control(setting)),
        )
        for label, control in controls:
            if control not in complete.columns:
                continue
            others = [m for m in table.index if m != control]
            tests = wilcoxon_holm(complete[[control, *others]], control, alpha)
            table[f"diff vs {label}"] = tests["mean_diff"]
            table[f"p_holm vs {label}"] = tests["p_holm"]
        parts.append(table)
    return pd.concat(parts) if parts else None


#: Methods every per-ratio table of a report shows when the suite ran them
#: (the estimators' default, the paper's bandit, the cheap baselines, the
#: controls), besides the best-scoring ones.
KEY_POLICIES = ("obs", "ucb1", "random", "magnitude", "tp_magnitude", SCRATCH, "paper")

#: How many of the best-scoring methods per ratio join :data:`KEY_POLICIES`.
TOP_K = 3


def _points(metric):
    """Drops in accuracy points (x 100); other metrics in their own units."""
    return 100.0 if metric == "accuracy" else 1.0


def _fmt(value, spec):
    return "" if pd.isna(value) else format(value, spec)


def _percent(value):
    return "" if pd.isna(value) else f"{value:.0%}".replace("%", " %")


def _cost_cells(costs, method):
    """``(params kept, fit s[, cached fits])`` cells of one method."""
    row = costs.loc[method] if method in costs.index else pd.Series(dtype=float)
    cells = [
        _percent(row.get("params_ratio", float("nan"))),
        _fmt(row.get("fit_s", float("nan")), ".3g"),
    ]
    if "cache_hits" in costs:
        cells.append(_percent(row.get("cache_hits", float("nan"))))
    return cells


def _glance_header(metric, costs):
    drop = "drop (points)" if metric == "accuracy" else f"drop ({metric})"
    header = ["method", f"mean {metric}", drop, "params kept"]
    if "cache_hits" in costs:
        return [*header, "fit s", "cached fits"]
    return [*header, "fit s (cache hits not recorded)"]


def _rows_to_markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def glance_tables(mean_scores, costs, metric):
    """The opening tables of a report: baselines, then one small table per ratio.

    Parameters
    ----------
    mean_scores : pandas.DataFrame
        Datasets x methods mean scores (``Summary.mean``). Only datasets on
        which every method scored are averaged, so that all rows read
        against the same baseline.
    costs : pandas.DataFrame
        :func:`cost_table`.
    metric : str

    Returns
    -------
    list of (str, str)
        ``(title, markdown table)`` pairs: ``"Read against"`` (the unpruned
        networks and scikit-learn's models), then ``"<ratio> removed"`` per
        prune ratio, each with the unpruned network it is read against, the
        :data:`KEY_POLICIES` present and the :data:`TOP_K` best others,
        best first. Method cells are :func:`display_name` (without the
        ratio, which the title gives).

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"none": [0.9, 0.8], "ucb1@0.5": [0.88, 0.8],
    ...                        "random@0.5": [0.85, 0.7], "sk_knn": [0.8, 0.8]})
    >>> costs = pd.DataFrame({"params_ratio": [1.0, 0.5, 0.5, float("nan")],
    ...     "fit_s": [1.0, 1.2, 1.1, 0.1]}, index=scores.columns)
    >>> [title for title, _ in glance_tables(scores, costs, "accuracy")]
    ['Read against', '50 % of the hidden units removed']
    >>> costs["cache_hits"] = [0.0, 1.0, 1.0, float("nan")]
    >>> print(glance_tables(scores, costs, "accuracy")[1][1])
    | method | mean accuracy | drop (points) | params kept | fit s | cached fits |
    |---|---:|---:|---:|---:|---:|
    | Unpruned network (baseline) | 0.850 |  | 100 % | 1 | 0 % |
    | UCB1 | 0.840 | 1.00 | 50 % | 1.2 | 100 % |
    | Random removal | 0.775 | 7.50 | 50 % | 1.1 | 100 % |
    """
    complete = mean_scores.dropna()
    if complete.empty:
        complete = mean_scores
    means = complete.mean(axis=0)
    scale = _points(metric)
    header = _glance_header(metric, costs)
    parsed = {m: parse_method_name(m) for m in means.index}
    baselines = [m for m, p in parsed.items() if p is not None and not p.prune_ratio]
    peers = [m for m, p in parsed.items() if p is None]
    tables = []
    reference = sorted(baselines, key=lambda m: -means[m]) + sorted(
        peers, key=lambda m: -means[m]
    )
    if reference:
        rows = [
            [display_name(m), _fmt(means[m], ".3f"), "", *_cost_cells(costs, m)]
            for m in reference
        ]
        tables.append(("Read against", _rows_to_markdown(header, rows)))
    ratios = {p.prune_ratio for p in parsed.values() if p and p.prune_ratio}
    # The fixed ratios in order, then the methods that found their size.
    ratios = sorted(ratios - {AUTO}) + sorted(ratios & {AUTO})
    for ratio in ratios:
        at_ratio = [m for m, p in parsed.items() if p and p.prune_ratio == ratio]
        ranked = sorted(at_ratio, key=lambda m: -means[m])
        shown = [m for m in ranked if parsed[m].policy in KEY_POLICIES]
        shown += [m for m in ranked if m not in shown][:TOP_K]
        shown = [m for m in ranked if m in shown]
        controls = list(
            dict.fromkeys(_unpruned_control(parsed[m], means.index) for m in shown)
        )
        rows = [
            [
                display_name(c) + " (baseline)",
                _fmt(means[c], ".3f"),
                "",
                *_cost_cells(costs, c),
            ]
            for c in controls
            if c in means.index
        ]
        for m in shown:
            control = _unpruned_control(parsed[m], means.index)
            drop = (
                scale * (means[control] - means[m])
                if control in means.index
                else float("nan")
            )
            rows.append(
                [
                    display_name(m, ratio=False),
                    _fmt(means[m], ".3f"),
                    _fmt(drop, ".2f" if scale == 100.0 else ".3f"),
                    *_cost_cells(costs, m),
                ]
            )
        title = (
            "Size found on validation rows (prune_ratio='auto')"
            if ratio == AUTO
            else f"{_percent(ratio)} of the hidden units removed"
        )
        note = ""
        if len(at_ratio) > len(shown):
            note = (
                f"\n\n{len(shown)} of the {len(at_ratio)} methods run at this "
                "ratio (the key baselines and the best others); every method "
                "is in the tables below and in `results.csv`."
            )
        tables.append((title, _rows_to_markdown(header, rows) + note))
    return tables


def _params_kept(frame, costs):
    """``costs`` with ``params_ratio`` of the networks trained from scratch
    (whose own count is before = after) against the unpruned network's
    count on the same dataset, so that every row reads the same way."""
    unpruned = frame[frame["method"] == UNPRUNED]
    if unpruned.empty:
        return costs
    base = (
        pd.to_numeric(unpruned["params_after"], errors="coerce")
        .groupby(unpruned["dataset"])
        .mean()
    )
    costs = costs.copy()
    for method in costs.index:
        parsed = parse_method_name(method)
        if parsed is None or parsed.policy != SCRATCH:
            continue
        rows = frame[frame["method"] == method]
        after = pd.to_numeric(rows["params_after"], errors="coerce").to_numpy()
        costs.loc[method, "params_ratio"] = float(
            (after / rows["dataset"].map(base).to_numpy()).mean()
        )
    return costs


def _drop_note(metric):
    """What a drop in the opening tables is."""
    if metric == "accuracy":
        return "accuracy points (100 × the unpruned network's accuracy − the method's)"
    return f"units of {metric} (the unpruned network's score − the method's)"


def _cached_note(costs):
    """What the opening tables' fit seconds hold."""
    if "cache_hits" in costs:
        return (
            "cached fits = share of the fits that loaded the trained network "
            "from the cache, so their fit time holds no training"
        )
    return (
        "cache hits were not recorded by this run: a fit whose trained "
        "network came from the cache takes about the pruning time only"
    )


def _glance_lines(summary_all, costs, metric, n_datasets):
    complete = summary_all.mean.dropna()
    used = len(complete) if len(complete) else len(summary_all.mean)
    drop, cached = _drop_note(metric), _cached_note(costs)
    lines = [
        "## At a glance",
        "",
        f"Mean {metric} over the {used} of {n_datasets} datasets every method "
        f"completed (higher is better). Drop = {drop}, against the unpruned "
        "network trained as many epochs (marked *baseline*; a method without "
        "fine-tuning is read against the trained network itself); a negative "
        "drop is a gain. Params kept = parameters of the pruned network / of "
        "the unpruned one; fit s = mean seconds per fit; "
        f"{cached}.",
        "",
    ]
    for title, table in glance_tables(summary_all.mean, costs, metric):
        lines += [f"### {title}", "", table, ""]
    return lines


def _details(summary_text, body):
    """A collapsed block (``<details>``): long tables stay out of the way."""
    return [
        "<details>",
        f"<summary>{summary_text}</summary>",
        "",
        *body,
        "",
        "</details>",
        "",
    ]


def _summary_markdown(summary, what):
    """Scores, mean ranks and tests of one comparison, readable: the top of
    the ranking and the tests in view, the full tables collapsed."""
    direction = "higher" if summary.higher_is_better else "lower"
    ranks = summary.ranks
    table = summary.table.T.reindex(
        ranks.index.append(summary.table.columns.difference(ranks.index))
    )
    table.index = [display_name(m) for m in table.index]
    table.index.name = "method"
    rank_table = pd.DataFrame(
        {
            "method": [display_name(m) for m in ranks.index],
            "mean rank": ranks.to_numpy(),
        }
    ).set_index("method")
    top = min(10, len(rank_table))
    parts = [
        f"### Mean ranks (1 = best; {direction} scores are better)",
        "",
        f"The {top} best of {len(rank_table)} {what}:",
        "",
        markdown_table(rank_table.iloc[:top]),
        "",
    ]
    if len(rank_table) > top:
        parts += _details(
            f"All {len(rank_table)} mean ranks", [markdown_table(rank_table)]
        )
    if summary.dropped_datasets:
        parts += [
            "Left out of ranks and tests (incomplete): "
            + ", ".join(summary.dropped_datasets),
            "",
        ]
    parts += _details(
        f"Scores per dataset (mean ± std over folds and seeds), {len(table)} "
        f"{what} × {len(summary.table)} datasets",
        [markdown_table(table)],
    )
    if summary.friedman is not None:
        nemenyi = summary.nemenyi.copy()
        nemenyi.index = [
            f"{i + 1}. {display_name(m)}" for i, m in enumerate(nemenyi.index)
        ]
        nemenyi.columns = [str(i + 1) for i in range(len(nemenyi.columns))]
        parts += friedman_lines(summary)
        parts += _details(
            "Nemenyi p-values (column j = row j)",
            [markdown_table(nemenyi, ".3f")],
        )
    return "\n".join(parts)


def _display_index(frame, ratio=True):
    frame = frame.copy()
    frame.index = [display_name(m, ratio=ratio) for m in frame.index]
    frame.index.name = "method"
    return frame


def _curve_display(label):
    """A :func:`pruning_curve` label (``"ucb1:lstsq/ft0"``), for people.

    >>> _curve_display("ucb1:lstsq/ft0")
    'UCB1 + least-squares refit, no fine-tuning'
    >>> _curve_display("paper/ft0")
    "Paper's configuration (UCB1, zeroing), no fine-tuning"
    """
    policy = re.match(r"[a-z_0-9]*", label).group(0)
    name = f"{policy}@0.5{label[len(policy) :]}"
    return display_name(name, ratio=False) if parse_method_name(name) else label


#: Readable column names of :func:`cost_table` in the report.
_COST_COLUMNS = {
    "fit_s": "fit s",
    "predict_s": "predict s",
    "params_after": "params after",
    "params_ratio": "params kept",
    "train_s": "train s",
    "prune_s": "prune s",
    "fine_tune_s": "fine-tune s",
    "cache_hits": "cached fits",
    "latency_ratio": "latency pruned / unpruned",
}


def _plot_pruning_curve(curve, metric, path):
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    # One colour per selection method, one line style per compensation, so
    # that a suite comparing compensations stays readable.
    policies = list(dict.fromkeys(_label_parts(label)[0] for label in curve.index))
    colors = colormaps["tab20"].colors
    figure = Figure(figsize=(7.5, 4.2))
    ax = figure.add_subplot()
    for label, row in curve.iterrows():
        row = row.dropna()
        policy, compensation = _label_parts(label)
        headline = policy in HEADLINE_POLICIES
        ax.plot(
            row.index,
            row.to_numpy(),
            linestyle=_COMPENSATION_STYLES.get(compensation, "-" if headline else "--"),
            marker="o" if headline else ".",
            color=colors[policies.index(policy) % len(colors)],
            label=_curve_display(label),
        )
    ax.set_xlabel("prune ratio (0 = unpruned network)")
    ax.set_ylabel(f"mean {metric} over datasets")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))
    figure.savefig(path, dpi=150, bbox_inches="tight")


#: Line styles of the pruning curve by compensation (default: solid/dashed).
_COMPENSATION_STYLES = {"none": ":", "mean": "-."}


def _label_parts(label):
    """``(policy, compensation or None)`` of a :func:`pruning_curve` label.

    >>> _label_parts("ucb1:none/ft0"), _label_parts("paper/ft0")
    (('ucb1', 'none'), ('paper', None))
    """
    policy, _, rest = label.partition(":")
    policy = policy.split("/")[0].split("+")[0]
    compensation = rest.split("/")[0].split("+")[0] or None
    return policy, compensation


def _friedman_line(label, summary):
    if summary is None:
        return f"Friedman ({label}): no methods"
    fr = summary.friedman
    if fr is None:
        n, k = summary.mean.dropna().shape
        return (
            f"Friedman ({label}): not computed (needs >= 3 methods and >= 2 "
            f"complete datasets; have k = {k}, N = {n})"
        )
    return (
        f"Friedman ({label}): chi2 = {fr.statistic:.3f}, p = {fr.pvalue:.3g} "
        f"(N = {fr.n_datasets}, k = {fr.n_methods}); Nemenyi CD = {summary.cd:.3f}"
    )


def _standing(summary_all, summary_ours):
    """Sentences placing UCB1 and Thompson among pruning methods and overall."""
    lines = []
    ranks_ours = summary_ours.ranks if summary_ours is not None else pd.Series()
    for method in summary_all.ranks.index:
        parsed = parse_method_name(method)
        if parsed is None or parsed.policy not in HEADLINE_POLICIES:
            continue
        text = (
            f"- **{display_name(method)}**: mean rank "
            f"{summary_all.ranks[method]:.2f}, "
            f"position {list(summary_all.ranks.index).index(method) + 1} of "
            f"{len(summary_all.ranks)} among all methods"
        )
        if method in ranks_ours:
            text += (
                f"; {ranks_ours[method]:.2f}, position "
                f"{list(ranks_ours.index).index(method) + 1} of {len(ranks_ours)} "
                "among pruning methods"
            )
        if UNPRUNED in ranks_ours and summary_ours.nemenyi is not None:
            p = summary_ours.nemenyi.loc[method, UNPRUNED]
            side = "better" if ranks_ours[method] < ranks_ours[UNPRUNED] else "worse"
            text += f"; ranked {side} than the unpruned net (Nemenyi p = {p:.3g})"
        peers = [m for m in summary_all.ranks.index if not _is_ours(m)]
        if peers:
            beaten = [
                m for m in peers if summary_all.ranks[m] > summary_all.ranks[method]
            ]
            text += f"; ahead of {len(beaten)} of {len(peers)} scikit-learn peers"
        lines.append(text + ".")
    return lines


def _protocol_lines(frame, protocol, command):
    seeds = sorted(frame["seed"].unique().tolist())
    folds = sorted(frame["fold"].unique().tolist())
    lines = []
    if command:
        lines += [f"Regenerate: `{command}`", ""]
    lines.append(
        f"Datasets: {frame['dataset'].nunique()}; methods: "
        f"{frame['method'].nunique()}; folds: {len(folds)}; seeds: {seeds}; "
        f"results: {len(frame)}."
    )
    if protocol and protocol.get("split") == "fixed":
        lines.append(
            "Protocol: one fixed train/test split per task (seed "
            f"{protocol.get('split_seed')}); every method prunes the same trained "
            f"network (bandit budget {protocol.get('budget')} pulls per unit), "
            f"then fine-tunes; metric {protocol.get('metric')}."
        )
    elif protocol:
        lines.append(
            f"Protocol: {protocol.get('n_folds')}-fold {protocol.get('cv')} "
            f"(shuffled, random_state = seed), metric {protocol.get('metric')}, "
            f"max_samples = {protocol.get('max_samples')}."
        )
        ours = ", ".join(f"{k}={v}" for k, v in (protocol.get("ours") or {}).items())
        lines.append(f"Our networks: {ours}.")
    versions = next(
        (
            e["versions"]
            for e in frame["extra"]
            if isinstance(e, dict) and "versions" in e
        ),
        None,
    )
    if versions:
        lines.append(
            "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        )
    return lines


def _figure(name, path):
    return [f"![{name}]({os.path.basename(path)})", ""] if path else []


def build_report(frame, suite, protocol=None, command=None, figures=None):
    """Render the report of one suite from its results.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``ResultStore.results_frame(suite)``: columns ``dataset``,
        ``method``, ``fold``, ``seed``, ``metric``, ``score``, ``fit_time``,
        ``predict_time``, ``params_before``, ``params_after``, ``extra``.
    suite : str
    protocol : dict, optional
        The suite's stored protocol, quoted in the report.
    command : str, optional
        The command that regenerates the report, quoted in it.
    figures : dict, optional
        ``{"cd_all": path, "cd_pruning": path, "pruning_curve": path}`` of
        figures to draw; missing keys are not drawn.

    Returns
    -------
    Report
    """
    if frame.empty:
        raise ValueError(f"no results for suite {suite!r}")
    figures = dict(figures or {})
    metric = str(frame["metric"].iloc[0])
    summary_all = _summarize_quietly(frame)
    ours_frame = frame[frame["method"].map(_is_ours)]
    summary_ours = _summarize_quietly(ours_frame) if len(ours_frame) else None
    curve = pruning_curve(summary_all.mean)
    costs = cost_table(frame)

    drawn = {}
    for key, summary in (("cd_all", summary_all), ("cd_pruning", summary_ours)):
        if key in figures and summary is not None and summary.cd is not None:
            from ._stats import plot_cd_diagram

            title = "all methods" if key == "cd_all" else "pruning methods"
            plot_cd_diagram(
                summary.ranks.rename(display_name),
                summary.cd,
                path=figures[key],
                title=f"{suite}: {title}",
            )
            drawn[key] = figures[key]
    if "pruning_curve" in figures and curve is not None:
        _plot_pruning_curve(curve, metric, figures["pruning_curve"])
        drawn["pruning_curve"] = figures["pruning_curve"]

    parts = [f"# skbandit benchmark: {suite} ({metric}, higher is better)", ""]
    parts += _glance_lines(
        summary_all, _params_kept(frame, costs), metric, frame["dataset"].nunique()
    )
    parts += ["## How it was run", ""]
    parts += _protocol_lines(frame, protocol, command) + [""]
    standing = _standing(summary_all, summary_ours)
    if standing:
        parts += ["## Where UCB1 and Thompson sampling stand", ""] + standing + [""]
    controls = control_comparisons(summary_all.mean)
    if controls is not None:
        parts += [
            "## Against the controls, at equal setting",
            "",
            "Each pruning method against the unpruned network trained as long, "
            "random removal with the same prune ratio, compensation and "
            "fine-tuning, and (where run) a network of the pruned size trained "
            "from scratch for the same epochs: "
            "mean score difference over datasets (positive = better) and "
            "Holm-corrected p-values of paired Wilcoxon signed-rank tests.",
            "",
            markdown_table(_display_index(controls), floatfmt=".3g"),
            "",
        ]
    if curve is not None:
        shown = curve.rename(index=_curve_display, columns=lambda r: f"{r:g}")
        shown.index.name = "method"
        parts += [
            "## Pruning curve (mean score over datasets)",
            "",
            "Columns: the fraction of hidden units removed (0 = the unpruned network).",
            "",
            markdown_table(shown),
            "",
        ]
        parts += _figure("pruning curve", drawn.get("pruning_curve"))
    cost_note = (
        "cached fits = share of fits that loaded the trained network from the "
        "cache (their fit and train seconds hold no training)"
        if "cache_hits" in costs
        else "cache hits not recorded: fits that loaded a cached trained "
        "network count about their pruning time only"
    )
    parts += [
        "## Cost",
        "",
        "Mean per fit; params kept = after / before pruning; "
        f"train/prune/fine-tune s = seconds of each phase; {cost_note}.",
        "",
    ]
    parts += _details(
        f"Cost of all {len(costs)} methods",
        [
            markdown_table(
                _display_index(costs).rename(columns=_COST_COLUMNS), floatfmt=".4g"
            )
        ],
    )
    parts += [
        "## (a) All methods",
        "",
        _summary_markdown(summary_all, "methods"),
        "",
    ]
    parts += _figure("CD diagram, all methods", drawn.get("cd_all"))
    if summary_ours is not None:
        parts += [
            "## (b) Pruning methods only",
            "",
            _summary_markdown(summary_ours, "pruning methods"),
            "",
        ]
        parts += _figure("CD diagram, pruning methods", drawn.get("cd_pruning"))
    return Report(
        markdown="\n".join(parts),
        terminal=_terminal(suite, metric, frame, summary_all, summary_ours, costs),
        summary_all=summary_all,
        summary_ours=summary_ours,
        curve=curve,
        costs=costs,
        files=sorted(drawn.values()),
    )


def _terminal(suite, metric, frame, summary_all, summary_ours, costs):
    """What the command prints: the report's opening tables (the baselines,
    then one small table per ratio, readable names), the per-dataset scores
    (one row per method), then the rank statistics."""
    ranks = pd.DataFrame({"rank (all)": summary_all.ranks})
    if summary_ours is not None:
        ranks["rank (pruning)"] = summary_ours.ranks
    ranks["mean score"] = summary_all.mean.mean(axis=0)
    ranks["params ratio"] = costs["params_ratio"]
    if "cache_hits" in costs:
        ranks["fit s"] = costs["fit_s"]
        ranks["cached fits"] = costs["cache_hits"]
    else:
        # Not recorded: a fit that loaded its trained network from the cache
        # costs about its pruning time only.
        ranks["fit s (cached fits not recorded)"] = costs["fit_s"]
    lines = [
        f"{suite}: mean {metric} over {frame['fold'].nunique()} folds x "
        f"{frame['seed'].nunique()} seed(s). Drop = {_drop_note(metric)}; "
        f"negative: a gain. Fit s = mean seconds per fit; {_cached_note(costs)}.",
        "",
    ]
    for title, table in glance_tables(summary_all.mean, costs, metric):
        lines += [f"{title}:", "", table, ""]
    by_method = _display_index(summary_all.mean.T)
    lines += [
        f"Mean {metric} per dataset:",
        "",
        markdown_table(by_method.rename_axis(columns=None)),
        "",
        "Ranks (1 = best):",
        "",
        markdown_table(_display_index(ranks)),
        "",
        _friedman_line("all methods", summary_all),
    ]
    if summary_ours is not None:
        lines.append(_friedman_line("pruning methods", summary_ours))
    if summary_all.dropped_datasets:
        lines.append(
            "incomplete datasets, left out of ranks: "
            + ", ".join(summary_all.dropped_datasets)
        )
    return "\n".join(lines)


def write_report(db, suite, out, command=None):
    """Write ``report.md``, figures and ``results.csv`` of ``suite`` into ``out``.

    Parameters
    ----------
    db : str or path-like
        Results store (must exist).
    suite : str
    out : str or path-like
        Output folder, created if missing; existing files are overwritten.
    command : str, optional
        Command quoted in the report as the way to regenerate it.

    Returns
    -------
    Report
        With ``files`` listing everything written.

    Raises
    ------
    StoreError
        When ``db`` is missing or unusable.
    ValueError
        When the store has no results for ``suite``.
    """
    with ResultStore(db, create=False) as store:
        frame = store.results_frame(suite)
        protocol = store.protocol(suite)
    if frame.empty:
        raise BenchmarkInputError(f"no results for suite {suite!r} in {os.fspath(db)}")
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    figures = {
        name: os.path.join(out, f"{name}.png")
        for name in ("cd_all", "cd_pruning", "pruning_curve")
    }
    report = build_report(frame, suite, protocol, command, figures)
    report_path = os.path.join(out, "report.md")
    with open(report_path, "w", encoding="utf-8") as handle:
        handle.write(report.markdown + "\n")
    csv_path = os.path.join(out, "results.csv")
    frame.drop(columns="extra").to_csv(csv_path, index=False)
    report.files = sorted([report_path, csv_path, *report.files])
    return report
