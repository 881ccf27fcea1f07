"""Reports of a benchmark suite, read from its results store.

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
import warnings

import pandas as pd

from .._options import UNPRUNED
from ._errors import BenchmarkInputError
from ._names import SCRATCH, MethodName, format_ratio, parse_method_name
from ._stats import markdown_table, summarize, wilcoxon_holm
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
    pruned = [m for m in ours if parsed[m].prune_ratio is not None]
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
    many epochs (compensation and pulls do not apply to it)."""
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
            label=label,
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
            f"- **{method}**: mean rank {summary_all.ranks[method]:.2f}, "
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
                summary.ranks, summary.cd, path=figures[key], title=f"{suite}: {title}"
            )
            drawn[key] = figures[key]
    if "pruning_curve" in figures and curve is not None:
        _plot_pruning_curve(curve, metric, figures["pruning_curve"])
        drawn["pruning_curve"] = figures["pruning_curve"]

    parts = [f"# skbandit benchmark: {suite} ({metric}, higher is better)", ""]
    parts += _protocol_lines(frame, protocol, command) + [""]
    standing = _standing(summary_all, summary_ours)
    if standing:
        parts += ["## Where UCB1 and Thompson sampling stand", ""] + standing + [""]
    parts += ["## (a) All methods", "", summary_all.to_markdown(), ""]
    parts += _figure("CD diagram, all methods", drawn.get("cd_all"))
    if summary_ours is not None:
        parts += ["## (b) Pruning methods only", "", summary_ours.to_markdown(), ""]
        parts += _figure("CD diagram, pruning methods", drawn.get("cd_pruning"))
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
            markdown_table(controls, floatfmt=".3g"),
            "",
        ]
    if curve is not None:
        parts += [
            "## Pruning curve (mean score over datasets)",
            "",
            markdown_table(curve.rename(columns=lambda r: f"{r:g}")),
            "",
        ]
        parts += _figure("pruning curve", drawn.get("pruning_curve"))
    parts += [
        "## Cost (mean per fit; params ratio = after / before pruning; "
        "train/prune/fine_tune s = seconds of each phase; cache hits = share "
        "of fits that loaded the trained network from the cache)",
        "",
        markdown_table(costs, floatfmt=".4g"),
        "",
    ]
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
    ranks = pd.DataFrame({"rank (all)": summary_all.ranks})
    if summary_ours is not None:
        ranks["rank (pruning)"] = summary_ours.ranks
    ranks["mean score"] = summary_all.mean.mean(axis=0)
    ranks["params ratio"] = costs["params_ratio"]
    ranks["fit s"] = costs["fit_s"]
    ranks.index.name = "method"
    header = (
        f"{suite}: mean {metric} over {frame['fold'].nunique()} folds x "
        f"{frame['seed'].nunique()} seed(s)"
    )
    lines = [
        header,
        "",
        markdown_table(summary_all.mean),
        "",
        markdown_table(ranks),
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
