"""Comparing methods over many datasets (Demšar, 2006).

The protocol: rank the methods on every dataset (rank 1 = best, ties share the
average rank), test whether the mean ranks differ with the Friedman test
(and its Iman-Davenport F form), then compare every pair with the Nemenyi
post-hoc test, whose critical difference (CD) is drawn in a
critical-difference diagram.

Scores are a DataFrame with one row per dataset and one column per method.
The tests come from scipy and scikit-posthocs; this module only validates the
input, orients the ranks and formats the results.

References
----------
J. Demšar, "Statistical comparisons of classifiers over multiple data sets",
Journal of Machine Learning Research 7 (2006) 1-30.
"""

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "FriedmanResult",
    "Summary",
    "mean_ranks",
    "rank_table",
    "friedman_test",
    "nemenyi_test",
    "critical_difference",
    "holm_adjust",
    "wilcoxon_holm",
    "plot_cd_diagram",
    "summarize",
    "markdown_table",
]


def _check_scores(scores, min_methods=1, min_datasets=1):
    """Validate a datasets x methods table of scores and return it as floats."""
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(
            "scores must be a pandas DataFrame (datasets x methods), "
            f"got {type(scores).__name__}"
        )
    n_datasets, n_methods = scores.shape
    if n_methods < min_methods:
        raise ValueError(
            f"need at least {min_methods} methods (columns), got {n_methods}"
        )
    if n_datasets < min_datasets:
        raise ValueError(
            f"need at least {min_datasets} datasets (rows), got {n_datasets}"
        )
    values = scores.astype(float)
    if values.isna().any().any():
        missing = values.index[values.isna().any(axis=1)].tolist()
        raise ValueError(
            f"scores contain NaN (datasets {missing}); drop or fill them first"
        )
    return values


def rank_table(scores, higher_is_better=True):
    """Rank the methods within every dataset.

    Parameters
    ----------
    scores : pandas.DataFrame
        Datasets as rows, methods as columns.
    higher_is_better : bool, default=True
        True for accuracy-like scores, False for errors and losses.

    Returns
    -------
    pandas.DataFrame
        Same shape; rank 1 is the best method of the row, ties get the
        average of the ranks they span.

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"a": [0.9, 0.8], "b": [0.7, 0.8], "c": [0.5, 0.6]})
    >>> rank_table(scores)
         a    b    c
    0  1.0  2.0  3.0
    1  1.5  1.5  3.0
    """
    values = _check_scores(scores)
    return values.rank(axis=1, method="average", ascending=not higher_is_better)


def mean_ranks(scores, higher_is_better=True):
    """Average rank of every method over the datasets, best first.

    Parameters
    ----------
    scores : pandas.DataFrame
        Datasets as rows, methods as columns.
    higher_is_better : bool, default=True
        True for accuracy-like scores, False for errors and losses.

    Returns
    -------
    pandas.Series
        Mean rank per method, sorted ascending (the best method first).

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"a": [0.9, 0.8], "b": [0.7, 0.8], "c": [0.5, 0.6]})
    >>> mean_ranks(scores)
    a    1.25
    b    1.75
    c    3.00
    dtype: float64
    """
    ranks = rank_table(scores, higher_is_better).mean(axis=0)
    return ranks.sort_values(kind="stable")


@dataclasses.dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over datasets; unpacks as ``(statistic, pvalue)``.

    Attributes
    ----------
    statistic : float
        Friedman's chi-square statistic (k - 1 degrees of freedom).
    pvalue : float
        Its p-value.
    iman_davenport : float
        Iman and Davenport's F statistic, ``(N-1) chi2 / (N(k-1) - chi2)``,
        less conservative than chi-square (Demšar 2006, section 3.2.2).
    iman_davenport_pvalue : float
        Its p-value under F(k - 1, (k - 1)(N - 1)).
    n_datasets, n_methods : int
        N and k.
    """

    statistic: float
    pvalue: float
    iman_davenport: float
    iman_davenport_pvalue: float
    n_datasets: int
    n_methods: int

    def __iter__(self):
        # Unpack like scipy's result: ``chi2, p = friedman_test(scores)``.
        return iter((self.statistic, self.pvalue))


def friedman_test(scores, tie_correction=True):
    """Friedman test that all methods have the same mean rank.

    Parameters
    ----------
    scores : pandas.DataFrame
        Datasets as rows (N >= 2), methods as columns (k >= 3), no NaN. The
        direction of the scores does not matter: reversing every ranking
        leaves the statistic unchanged.
    tie_correction : bool, default=True
        True: ``scipy.stats.friedmanchisquare``, which divides the statistic
        by the usual tie correction. False: Demšar's formula
        ``12N / (k(k+1)) * (sum_j R_j^2 - k(k+1)^2 / 4)`` on the mean ranks
        R_j, which ignores ties (the two agree when no dataset has ties).

    Returns
    -------
    FriedmanResult
        Unpacks as ``(chi2, pvalue)``; also carries the Iman-Davenport F.

    Raises
    ------
    ValueError
        For fewer than 3 methods, fewer than 2 datasets, or NaN scores.

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"a": [1, 1, 1, 1], "b": [2, 2, 2, 3], "c": [3, 3, 3, 2]})
    >>> chi2, p = friedman_test(scores)
    >>> round(chi2, 3), round(p, 3)
    (6.5, 0.039)
    """
    values = _check_scores(scores, min_methods=3, min_datasets=2)
    n, k = values.shape
    if tie_correction:
        chi2 = float(stats.friedmanchisquare(*values.to_numpy().T).statistic)
    else:
        r = rank_table(values).mean(axis=0).to_numpy()
        chi2 = 12.0 * n / (k * (k + 1)) * (np.sum(r**2) - k * (k + 1) ** 2 / 4.0)
    p = float(stats.chi2.sf(chi2, k - 1))
    # chi2 reaches N(k-1) when every dataset ranks the methods identically;
    # F is then infinite and its p-value 0.
    with np.errstate(divide="ignore"):
        f = (n - 1) * chi2 / np.float64(n * (k - 1) - chi2)
    f_p = float(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))
    return FriedmanResult(float(chi2), p, float(f), f_p, n, k)


def nemenyi_test(scores):
    """Nemenyi post-hoc p-values for every pair of methods.

    Thin wrapper of ``scikit_posthocs.posthoc_nemenyi_friedman`` that keeps
    the method names. Two methods differ at level alpha exactly when their
    mean ranks differ by more than :func:`critical_difference`.

    Parameters
    ----------
    scores : pandas.DataFrame
        Datasets as rows (N >= 2), methods as columns (k >= 2), no NaN. The
        direction of the scores does not matter.

    Returns
    -------
    pandas.DataFrame
        Symmetric k x k matrix of p-values, 1 on the diagonal, indexed by
        method.

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"a": [1, 1, 1, 1], "b": [2, 2, 2, 3], "c": [3, 3, 3, 2]})
    >>> p = nemenyi_test(scores)
    >>> float(p.loc["a", "a"]), bool(p.loc["a", "b"] == p.loc["b", "a"])
    (1.0, True)
    """
    import scikit_posthocs as sp

    values = _check_scores(scores, min_methods=2, min_datasets=2)
    p = sp.posthoc_nemenyi_friedman(values.to_numpy())
    return pd.DataFrame(p.to_numpy(), index=values.columns, columns=values.columns)


def holm_adjust(pvalues):
    """Holm's step-down adjusted p-values (family-wise error control).

    The i-th smallest of m p-values becomes ``max_{j <= i} min(1, (m - j + 1)
    p_(j))``; rejecting the adjusted p-values below alpha is Holm's
    procedure (Holm, 1979).

    Parameters
    ----------
    pvalues : array-like of float
        Unadjusted p-values, in any order.

    Returns
    -------
    ndarray
        Adjusted p-values in the input order.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    factors = len(p) - np.arange(len(p))
    stepped = np.minimum(1.0, np.maximum.accumulate(p[order] * factors))
    adjusted = np.empty_like(p)
    adjusted[order] = stepped
    return adjusted


def wilcoxon_holm(scores, control, alpha=0.05, higher_is_better=True):
    """Every method against one control: paired Wilcoxon tests, Holm-corrected.

    With many methods the Nemenyi critical difference grows until it
    separates nothing; comparing each method with a single control (the
    unpruned network, random removal) needs only k - 1 tests, which Holm's
    procedure corrects (Demšar, 2006, section 3.2.2 recommends exactly this
    for comparisons with a control).

    Parameters
    ----------
    scores : pandas.DataFrame
        Datasets as rows (N >= 2), methods as columns, no NaN.
    control : str
        The column every other method is compared with.
    alpha : float, default=0.05
        Level of the family of k - 1 tests.
    higher_is_better : bool, default=True
        Orientation of the scores (for ``wins`` and ``mean_diff``).

    Returns
    -------
    pandas.DataFrame
        One row per method (not the control), in column order: ``mean_diff``
        (method minus control, oriented so that positive is better),
        ``wins``, ``ties``, ``losses`` (datasets), ``p`` (two-sided
        Wilcoxon signed-rank, zero differences dropped; 1 when every
        difference is zero), ``p_holm`` and ``significant`` (``p_holm <
        alpha``).

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({
    ...     "none": [0.90, 0.80, 0.70, 0.60, 0.85, 0.75],
    ...     "a": [0.91, 0.82, 0.73, 0.64, 0.90, 0.81],
    ...     "b": [0.90, 0.80, 0.70, 0.60, 0.85, 0.75],
    ... })
    >>> table = wilcoxon_holm(scores, "none")
    >>> table[["wins", "ties", "losses"]].to_dict("index")
    {'a': {'wins': 6, 'ties': 0, 'losses': 0}, 'b': {'wins': 0, 'ties': 6, 'losses': 0}}
    >>> float(table.loc["a", "p"]), float(table.loc["b", "p_holm"])
    (0.03125, 1.0)
    """
    values = _check_scores(scores, min_methods=2, min_datasets=2)
    if control not in values.columns:
        raise ValueError(f"control {control!r} is not a column of scores")
    sign = 1.0 if higher_is_better else -1.0
    rows = {}
    for method in values.columns.drop(control):
        diff = sign * (values[method] - values[control]).to_numpy(dtype=float)
        nonzero = diff[diff != 0]
        p = stats.wilcoxon(nonzero).pvalue if len(nonzero) else 1.0
        rows[method] = {
            "mean_diff": float(diff.mean()),
            "wins": int((diff > 0).sum()),
            "ties": int((diff == 0).sum()),
            "losses": int((diff < 0).sum()),
            "p": float(p),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["p_holm"] = holm_adjust(table["p"]) if len(table) else []
    table["significant"] = table["p_holm"] < alpha
    return table


def critical_difference(n_methods, n_datasets, alpha=0.05):
    """Nemenyi critical difference of mean ranks.

    ``CD = q_alpha * sqrt(k (k + 1) / (6 N))`` with ``q_alpha`` the upper
    alpha quantile of the studentized range of k means with infinite degrees
    of freedom, divided by sqrt(2) (Demšar 2006, Table 5).

    Parameters
    ----------
    n_methods : int
        k >= 2.
    n_datasets : int
        N >= 1.
    alpha : float, default=0.05
        Significance level, in (0, 1).

    Returns
    -------
    float

    Examples
    --------
    >>> round(critical_difference(4, 14), 2)  # Demšar 2006, section 3.2.2
    1.25
    """
    if int(n_methods) != n_methods or n_methods < 2:
        raise ValueError(f"n_methods must be an int >= 2, got {n_methods!r}")
    if int(n_datasets) != n_datasets or n_datasets < 1:
        raise ValueError(f"n_datasets must be an int >= 1, got {n_datasets!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    k = int(n_methods)
    q_alpha = stats.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0)
    return float(q_alpha * math.sqrt(k * (k + 1) / (6.0 * n_datasets)))


def _cd_groups_matrix(ranks, cd):
    """Pseudo p-value matrix: 1 where two mean ranks lie within CD, else 0.

    scikit-posthocs joins methods whose p-value is above alpha with a bar, so
    this matrix makes it draw exactly the groups that the CD defines.
    """
    r = ranks.to_numpy()
    within = np.abs(r[:, None] - r[None, :]) < cd
    return pd.DataFrame(within.astype(float), index=ranks.index, columns=ranks.index)


def plot_cd_diagram(ranks, cd, path=None, title=None, ax=None):
    """Critical-difference diagram of mean ranks.

    The mean ranks lie on an axis from 1 (best, left) to k; each method is
    named on the left or right; a thick bar joins every maximal group of
    methods whose mean ranks differ by less than ``cd``; a bracket of length
    ``cd`` is drawn above the axis. Drawing is done by
    ``scikit_posthocs.critical_difference_diagram``.

    Parameters
    ----------
    ranks : pandas.Series or dict
        Mean rank per method, e.g. from :func:`mean_ranks`.
    cd : float
        Critical difference, e.g. from :func:`critical_difference`.
    path : str or path-like, optional
        Where to save the figure (format from the suffix, e.g. PNG).
    title : str, optional
        Axes title.
    ax : matplotlib.axes.Axes, optional
        Where to draw. By default a new ``matplotlib.figure.Figure`` is made
        without pyplot, so nothing accumulates in pyplot's figure manager and
        no display backend is needed (it works under Agg).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> ranks = pd.Series(
    ...     {"C4.5": 3.143, "C4.5+m": 2.0, "C4.5+cf": 2.893, "C4.5+m+cf": 1.964}
    ... )
    >>> ax = plot_cd_diagram(ranks, cd=1.25, title="Demšar 2006, Fig. 1")
    >>> ax.get_title()
    'Demšar 2006, Fig. 1'
    """
    import scikit_posthocs as sp
    from matplotlib.figure import Figure

    ranks = pd.Series(ranks, dtype=float).sort_values(kind="stable")
    if len(ranks) < 2:
        raise ValueError("a CD diagram needs at least 2 methods")
    if not cd > 0:
        raise ValueError(f"cd must be positive, got {cd!r}")
    if ax is None:
        figure = Figure(figsize=(7.0, 1.6 + 0.32 * len(ranks)))
        ax = figure.add_subplot()
    sp.critical_difference_diagram(
        ranks,
        _cd_groups_matrix(ranks, cd),
        ax=ax,
        label_fmt_left="{label} ({rank:.2f})",
        label_fmt_right="({rank:.2f}) {label}",
        crossbar_props={"linewidth": 4},
    )
    k = len(ranks)
    right = max(float(k), 1.0 + cd)
    ax.set_xlim(1.0, right)
    ax.set_xticks(range(1, int(math.floor(right)) + 1))
    _draw_cd_bracket(ax, cd)
    _, top = ax.get_ylim()
    ax.set_ylim(top=max(top, 1.3))
    if title:
        ax.set_title(title, pad=18)
    if path is not None:
        ax.figure.savefig(path, dpi=150, bbox_inches="tight")
    return ax


def _draw_cd_bracket(ax, cd, y=0.8, tick=0.12):
    """A |---CD---| bracket from rank 1, above the rank axis."""
    x0, x1 = 1.0, 1.0 + cd
    ax.plot([x0, x1], [y, y], color="k", linewidth=1.5, clip_on=False)
    for x in (x0, x1):
        ax.plot([x, x], [y - tick, y + tick], color="k", linewidth=1.5, clip_on=False)
    ax.text((x0 + x1) / 2, y + 1.5 * tick, f"CD = {cd:.2f}", ha="center", va="bottom")


# ----------------------------------------------------------------------------
# summaries of a benchmark run


@dataclasses.dataclass(frozen=True)
class Summary:
    """Everything :func:`summarize` computes; ``to_markdown()`` renders it.

    Attributes
    ----------
    mean, std : pandas.DataFrame
        Per-dataset mean and standard deviation (ddof=1, over folds and seeds)
        of the score, datasets x methods.
    table : pandas.DataFrame
        The same as ``"mean ± std"`` strings.
    ranks : pandas.Series
        Mean ranks over the complete datasets, best first.
    friedman : FriedmanResult or None
        None when there are fewer than 3 methods or 2 complete datasets.
    nemenyi : pandas.DataFrame or None
        Nemenyi p-values, same condition.
    cd : float or None
        Critical difference at ``alpha``, same condition.
    alpha : float
    higher_is_better : bool
    dropped_datasets : tuple of str
        Datasets left out of ranks and tests because a method has no score.
    """

    mean: pd.DataFrame
    std: pd.DataFrame
    table: pd.DataFrame
    ranks: pd.Series
    friedman: object
    nemenyi: object
    cd: object
    alpha: float
    higher_is_better: bool
    dropped_datasets: tuple = ()

    def to_markdown(self, floatfmt=".3f"):
        """Render the tables and tests as one markdown string."""
        return summary_to_markdown(self, floatfmt=floatfmt)


def _mean_std_strings(mean, std, floatfmt):
    def cell(m, s):
        if pd.isna(m):
            return ""
        if pd.isna(s):
            return format(m, floatfmt)
        return f"{format(m, floatfmt)} ± {format(s, floatfmt)}"

    cells = [
        [cell(m, s) for m, s in zip(mr, sr, strict=True)]
        for mr, sr in zip(mean.to_numpy(), std.to_numpy(), strict=True)
    ]
    return pd.DataFrame(cells, index=mean.index, columns=mean.columns)


def summarize(
    results, higher_is_better=True, alpha=0.05, score="score", floatfmt=".3f"
):
    """Tables and tests of a benchmark run in long format.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per evaluation with columns ``dataset``, ``method`` and the
        ``score`` column (typically also ``fold`` and ``seed``, which are
        averaged over).
    higher_is_better : bool, default=True
        Direction of the score.
    alpha : float, default=0.05
        Level of the critical difference.
    score : str, default="score"
        Name of the score column.
    floatfmt : str, default=".3f"
        Format of the numbers in ``Summary.table``.

    Returns
    -------
    Summary

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [(d, m, f, 0, s) for d, base in [("x", 0.9), ("y", 0.7)]
    ...         for m, gap in [("a", 0.0), ("b", 0.05), ("c", 0.1)]
    ...         for f, s in enumerate([base - gap, base - gap + 0.02])]
    >>> res = pd.DataFrame(rows, columns=["dataset", "method", "fold", "seed", "score"])
    >>> s = summarize(res)
    >>> s.ranks.to_dict()
    {'a': 1.0, 'b': 2.0, 'c': 3.0}
    >>> s.table.loc["x", "a"]
    '0.910 ± 0.014'
    """
    missing = {"dataset", "method", score} - set(results.columns)
    if missing:
        raise ValueError(f"results lacks the columns {sorted(missing)}")
    grouped = results.groupby(["dataset", "method"], sort=False)[score]
    # Keep first-appearance order: the runner's order is more meaningful than
    # alphabetical order.
    datasets, methods = results["dataset"].unique(), results["method"].unique()
    mean = grouped.mean().unstack("method").reindex(index=datasets, columns=methods)
    std = grouped.std(ddof=1).unstack("method").reindex(index=datasets, columns=methods)
    for frame in (mean, std):
        frame.index.name, frame.columns.name = "dataset", None

    complete = mean.dropna()
    dropped = tuple(str(d) for d in mean.index.difference(complete.index, sort=False))
    if dropped:
        warnings.warn(
            "datasets without a score for every method are left out of ranks "
            f"and tests: {list(dropped)}",
            stacklevel=2,
        )
    ranks = (
        mean_ranks(complete, higher_is_better)
        if len(complete)
        else pd.Series(dtype=float)
    )
    friedman = nemenyi = cd = None
    n, k = complete.shape
    if k >= 3 and n >= 2:
        friedman = friedman_test(complete)
        nemenyi = nemenyi_test(complete)
        cd = critical_difference(k, n, alpha)
    return Summary(
        mean=mean,
        std=std,
        table=_mean_std_strings(mean, std, floatfmt),
        ranks=ranks,
        friedman=friedman,
        nemenyi=nemenyi,
        cd=cd,
        alpha=alpha,
        higher_is_better=higher_is_better,
        dropped_datasets=dropped,
    )


# ----------------------------------------------------------------------------
# markdown without the optional ``tabulate`` package


def _md_cell(value, floatfmt):
    if isinstance(value, (float, np.floating)):
        text = "" if np.isnan(value) else format(value, floatfmt)
    else:
        text = str(value)
    # A literal pipe would end the cell; newlines would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame, floatfmt=".3f", index=True):
    """Render a DataFrame (or Series) as a GitHub-flavoured markdown table.

    Parameters
    ----------
    frame : pandas.DataFrame or pandas.Series
    floatfmt : str, default=".3f"
        Format spec applied to float cells; NaN becomes an empty cell.
    index : bool, default=True
        Include the index as the first column.

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> print(markdown_table(pd.DataFrame({"acc": [0.91234, 0.8]}, index=["a", "b"])))
    |  | acc |
    |---|---:|
    | a | 0.912 |
    | b | 0.800 |
    """
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    header = [str(c) for c in frame.columns]
    align = [
        "---:" if pd.api.types.is_numeric_dtype(t) else "---" for t in frame.dtypes
    ]
    rows = [
        [_md_cell(v, floatfmt) for v in row] for row in frame.itertuples(index=False)
    ]
    if index:
        header = [str(frame.index.name or "")] + header
        align = ["---"] + align
        rows = [
            [_md_cell(i, floatfmt)] + r for i, r in zip(frame.index, rows, strict=True)
        ]
    lines = [_md_row(header), "|" + "|".join(align) + "|"] + [_md_row(r) for r in rows]
    return "\n".join(lines)


def _md_row(cells):
    return "| " + " | ".join(cells) + " |"


def summary_to_markdown(summary, floatfmt=".3f"):
    """Markdown report of a :class:`Summary`: scores, ranks, tests.

    Examples
    --------
    >>> import pandas as pd
    >>> res = pd.DataFrame({"dataset": ["x", "x", "y", "y"], "method": ["a", "b"] * 2,
    ...                     "score": [0.9, 0.8, 0.7, 0.75]})
    >>> print(summary_to_markdown(summarize(res)).splitlines()[0])
    ### Scores (mean ± std over folds and seeds)
    """
    direction = "higher" if summary.higher_is_better else "lower"
    parts = [
        "### Scores (mean ± std over folds and seeds)",
        "",
        markdown_table(summary.table, floatfmt),
        "",
        f"### Mean ranks (1 = best; {direction} scores are better)",
        "",
        markdown_table(
            summary.ranks.rename("mean rank").rename_axis("method"), floatfmt
        ),
    ]
    if summary.dropped_datasets:
        parts += [
            "",
            "Left out of ranks and tests (incomplete): "
            + ", ".join(summary.dropped_datasets),
        ]
    if summary.friedman is not None:
        parts += [
            "",
            *friedman_lines(summary),
            "Nemenyi p-values:",
            "",
            markdown_table(summary.nemenyi, floatfmt),
        ]
    return "\n".join(parts)


def friedman_lines(summary):
    """The "Tests" section's lines: Friedman (with Iman-Davenport) and the
    Nemenyi critical difference of ``summary`` (which has a Friedman test)."""
    fr = summary.friedman
    return [
        "### Tests",
        "",
        f"Friedman chi2 = {fr.statistic:.3f} (df = {fr.n_methods - 1}), "
        f"p = {fr.pvalue:.3g}; Iman-Davenport F = {fr.iman_davenport:.3f}, "
        f"p = {fr.iman_davenport_pvalue:.3g} "
        f"(N = {fr.n_datasets} datasets, k = {fr.n_methods} methods).",
        "",
        f"Nemenyi critical difference at alpha = {summary.alpha:g}: "
        f"CD = {summary.cd:.3f}.",
        "",
    ]
