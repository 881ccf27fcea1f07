"""Tests of skbandit.benchmarks._stats against published and hand-computed values.

Reference: J. Demšar, "Statistical comparisons of classifiers over multiple
data sets", JMLR 7 (2006) 1-30 -- Table 5 (critical values of the Nemenyi
test) and Table 6 (AUC of four C4.5 variants on 14 UCI data sets, with the
worked Friedman / Iman-Davenport / Nemenyi example of section 3.2.2).
"""

import math
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import scikit_posthocs as sp  # noqa: E402
from scipy import stats  # noqa: E402

from skbandit.benchmarks import (  # noqa: E402
    critical_difference,
    friedman_test,
    markdown_table,
    mean_ranks,
    nemenyi_test,
    plot_cd_diagram,
    summarize,
)
from skbandit.benchmarks._stats import _cd_groups_matrix, rank_table  # noqa: E402

METHODS = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
DATASETS = [
    "adult (sample)",
    "breast cancer",
    "breast cancer wisconsin",
    "cmc",
    "ionosphere",
    "iris",
    "liver disorders",
    "lung cancer",
    "lymphography",
    "mushroom",
    "primary tumor",
    "rheum",
    "voting",
    "wine",
]
# Demšar 2006, Table 6, as printed (AUC, higher is better).
TABLE6_PRINTED = np.array(
    [
        [0.763, 0.768, 0.771, 0.798],
        [0.599, 0.591, 0.590, 0.569],
        [0.954, 0.971, 0.968, 0.967],
        [0.628, 0.661, 0.654, 0.657],
        [0.882, 0.888, 0.886, 0.898],
        [0.936, 0.931, 0.916, 0.931],
        [0.661, 0.668, 0.609, 0.685],
        [0.583, 0.583, 0.563, 0.625],
        [0.775, 0.838, 0.866, 0.875],
        [1.000, 1.000, 1.000, 1.000],
        [0.940, 0.962, 0.965, 0.962],
        [0.619, 0.666, 0.614, 0.669],
        [0.972, 0.981, 0.975, 0.975],
        [0.957, 0.978, 0.946, 0.970],
    ]
)
# The paper ranks voting's two printed 0.975s as 2 (C4.5+cf) and 3
# (C4.5+m+cf): the unrounded AUCs differ. Nudging them by 1e-4 in that order
# reproduces the paper's ranks, and so its average ranks exactly.
TABLE6 = TABLE6_PRINTED.copy()
TABLE6[12, 2:] = [0.9751, 0.9749]

# Hand check of the paper's average ranks, from the per-dataset ranks printed
# in Table 6 (column sums 44, 28, 40.5, 27.5 over N = 14; total 140 = N*k(k+1)/2):
PAPER_RANKS = {
    "C4.5": 44 / 14,
    "C4.5+m": 28 / 14,
    "C4.5+cf": 40.5 / 14,
    "C4.5+m+cf": 27.5 / 14,
}

# Demšar 2006, Table 5: q_alpha of the two-tailed Nemenyi test, k = 2..10.
Q_05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
Q_10 = [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]


@pytest.fixture
def table6():
    return pd.DataFrame(TABLE6, index=DATASETS, columns=METHODS)


@pytest.fixture
def table6_printed():
    return pd.DataFrame(TABLE6_PRINTED, index=DATASETS, columns=METHODS)


# ----------------------------------------------------------------------------
# ranks


def test_mean_ranks_reproduce_demsar_table6(table6):
    ranks = mean_ranks(table6)
    # Paper: 3.143, 2.000, 2.893, 1.964.
    assert ranks.round(3).to_dict() == {
        "C4.5": 3.143,
        "C4.5+m": 2.0,
        "C4.5+cf": 2.893,
        "C4.5+m+cf": 1.964,
    }
    assert ranks.to_dict() == pytest.approx(PAPER_RANKS)
    assert list(ranks.index) == ["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]  # best first


def test_mean_ranks_average_ties(table6_printed):
    # With the printed values voting's 0.975s tie: both get (2 + 3) / 2 = 2.5
    # instead of 2 and 3, so C4.5+cf's rank sum goes 40.5 -> 41 and
    # C4.5+m+cf's 27.5 -> 27.
    ranks = mean_ranks(table6_printed)
    assert ranks["C4.5+cf"] == pytest.approx(41 / 14)
    assert ranks["C4.5+m+cf"] == pytest.approx(27 / 14)
    # mushroom: four-way tie at 1.000 -> (1+2+3+4)/4 = 2.5 each.
    assert (rank_table(table6_printed).loc["mushroom"] == 2.5).all()


def test_mean_ranks_hand_example_and_direction():
    # dataset 1: a=0.9 > b=0.7 > c=0.5       -> ranks 1, 2, 3
    # dataset 2: a=0.8 = b=0.8 > c=0.6       -> ranks 1.5, 1.5, 3
    # means: a = 1.25, b = 1.75, c = 3.0
    scores = pd.DataFrame({"c": [0.5, 0.6], "a": [0.9, 0.8], "b": [0.7, 0.8]})
    ranks = mean_ranks(scores)
    assert list(ranks.index) == ["a", "b", "c"]
    assert ranks.tolist() == [1.25, 1.75, 3.0]
    # An error (lower is better) of minus the score ranks the same way.
    pd.testing.assert_series_equal(mean_ranks(-scores, higher_is_better=False), ranks)


def test_mean_ranks_rejects_nan_and_non_frames():
    with pytest.raises(ValueError, match="NaN"):
        mean_ranks(pd.DataFrame({"a": [1.0, np.nan], "b": [2.0, 3.0]}))
    with pytest.raises(TypeError, match="DataFrame"):
        mean_ranks(np.ones((3, 3)))


# ----------------------------------------------------------------------------
# Friedman


def test_friedman_reproduces_demsar_worked_example(table6):
    # Paper, section 3.2.2: chi2_F = 12*14/(4*5) * (3.143^2 + 2^2 + 2.893^2
    # + 1.964^2 - 4*5^2/4) = 9.28 and F_F = 13*9.28 / (14*3 - 9.28) = 3.69,
    # above the critical F(3, 39) = 2.85 at alpha = 0.05. The paper's formula
    # has no tie correction.
    res = friedman_test(table6, tie_correction=False)
    assert round(res.statistic, 2) == 9.28
    assert round(res.iman_davenport, 2) == 3.69
    assert res.pvalue == pytest.approx(stats.chi2.sf(res.statistic, 3))
    assert res.iman_davenport_pvalue == pytest.approx(
        stats.f.sf(res.iman_davenport, 3, 39)
    )
    assert (
        res.iman_davenport > stats.f.ppf(0.95, 3, 39) == pytest.approx(2.85, abs=5e-3)
    )
    assert (res.n_datasets, res.n_methods) == (14, 4)


def test_friedman_default_is_scipy_with_tie_correction(table6):
    chi2, p = friedman_test(table6)
    expected = stats.friedmanchisquare(*TABLE6.T)
    assert chi2 == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)
    # Ties (iris, lung cancer, mushroom, primary tumor) make the corrected
    # statistic larger: 9.2786 / (1 - sum(t^3 - t) / (N k (k^2 - 1)))
    # = 9.2786 / (1 - (6 + 6 + 60 + 6) / (14 * 4 * 15)) = 10.229.
    assert chi2 == pytest.approx(9.278571 / (1 - 78 / 840), rel=1e-5)


def test_friedman_scipy_documented_example():
    # scipy.stats.friedmanchisquare's docstring example (no ties). By hand:
    # per-subject ranks give rank sums before = 10, immediately = 21,
    # thirty = 11, so chi2 = 12 / (7*3*4) * (10^2 + 21^2 + 11^2) - 3*7*4
    # = 662/7 - 84 = 10.5714 and p = exp(-chi2 / 2) = 0.005063 (2 df).
    scores = pd.DataFrame(
        {
            "before": [72, 96, 88, 92, 74, 76, 82],
            "immediately_after": [120, 120, 132, 120, 101, 96, 112],
            "thirty_min_after": [76, 95, 104, 96, 84, 72, 76],
        }
    )
    for tie_correction in (True, False):
        chi2, p = friedman_test(scores, tie_correction=tie_correction)
        assert chi2 == pytest.approx(662 / 7 - 84)
        assert p == pytest.approx(math.exp(-chi2 / 2))


def test_friedman_perfect_agreement_gives_infinite_f():
    # chi2 = N (k - 1) = 6 when every dataset ranks a < b < c the same way.
    scores = pd.DataFrame({"a": [1, 2, 3], "b": [2, 3, 4], "c": [3, 4, 5]})
    res = friedman_test(scores)
    assert res.statistic == pytest.approx(6.0)
    assert res.iman_davenport == np.inf and res.iman_davenport_pvalue == 0.0


@pytest.mark.parametrize(
    "scores, message",
    [
        (pd.DataFrame({"a": [1, 2], "b": [2, 1]}), "at least 3 methods"),
        (pd.DataFrame({"a": [1], "b": [2], "c": [3]}), "at least 2 datasets"),
        (pd.DataFrame({"a": [1, np.nan], "b": [2, 1], "c": [3, 3]}), "NaN"),
    ],
)
def test_friedman_rejects_bad_input(scores, message):
    with pytest.raises(ValueError, match=message):
        friedman_test(scores)


# ----------------------------------------------------------------------------
# critical difference and Nemenyi


@pytest.mark.parametrize("alpha, table", [(0.05, Q_05), (0.10, Q_10)])
def test_critical_difference_matches_demsar_table5(alpha, table):
    for k, q_paper in zip(range(2, 11), table, strict=True):
        n = 7
        q = critical_difference(k, n, alpha) / math.sqrt(k * (k + 1) / (6 * n))
        # Table 5 rounds some entries and truncates others (k=3: 2.3437 is
        # printed 2.343), so it agrees with the exact quantile to 1e-3.
        assert q == pytest.approx(q_paper, abs=1e-3), k


def test_critical_difference_worked_example():
    # Paper: CD = 2.569 * sqrt(4*5 / (6*14)) = 1.25 at alpha = 0.05 and
    # 2.291 * sqrt(20 / 84) = 1.12 at alpha = 0.10.
    assert round(critical_difference(4, 14), 2) == 1.25
    assert round(critical_difference(4, 14, alpha=0.10), 2) == 1.12


@pytest.mark.parametrize(
    "args", [(1, 10), (2.5, 10), (3, 0), (3, 10, 0.0), (3, 10, 1.5)]
)
def test_critical_difference_rejects_bad_input(args):
    with pytest.raises(ValueError):
        critical_difference(*args)


def test_nemenyi_matrix(table6):
    p = nemenyi_test(table6)
    assert list(p.index) == list(p.columns) == METHODS
    np.testing.assert_allclose(p.to_numpy(), p.to_numpy().T)
    np.testing.assert_allclose(np.diag(p.to_numpy()), 1.0)
    assert ((p >= 0) & (p <= 1)).all().all()
    expected = sp.posthoc_nemenyi_friedman(TABLE6)
    np.testing.assert_allclose(p.to_numpy(), expected.to_numpy())


@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_nemenyi_agrees_with_critical_difference(table6, alpha):
    # Rank differences: C4.5 vs C4.5+m = 1.143, vs C4.5+m+cf = 1.179; all
    # others < 0.93. At alpha = 0.05 (CD = 1.25) no pair differs -- the
    # paper's conclusion; at alpha = 0.10 (CD = 1.12) exactly those two do.
    ranks = mean_ranks(table6)
    p = nemenyi_test(table6)
    cd = critical_difference(4, 14, alpha)
    significant = set()
    for a in METHODS:
        for b in METHODS:
            if a < b:
                far = abs(ranks[a] - ranks[b]) > cd
                assert (p.loc[a, b] < alpha) == far, (a, b)
                if far:
                    significant.add(frozenset((a, b)))
    expected = (
        set()
        if alpha == 0.05
        else {
            frozenset(("C4.5", "C4.5+m")),
            frozenset(("C4.5", "C4.5+m+cf")),
        }
    )
    assert significant == expected


def test_nemenyi_ignores_score_direction(table6):
    pd.testing.assert_frame_equal(nemenyi_test(table6), nemenyi_test(-table6))


# ----------------------------------------------------------------------------
# CD diagram


def test_cd_groups_matrix():
    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 3.0})
    groups = _cd_groups_matrix(ranks, cd=1.0)
    assert groups.loc["a", "b"] == 1.0 and groups.loc["b", "c"] == 0.0
    assert groups.loc["a", "c"] == 0.0 and groups.loc["c", "c"] == 1.0


def test_cd_diagram_writes_png(tmp_path, table6):
    import matplotlib.pyplot as plt

    figures_before = plt.get_fignums()
    path = tmp_path / "cd.png"
    ax = plot_cd_diagram(
        mean_ranks(table6), critical_difference(4, 14), path=path, title="T6"
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert ax.get_title() == "T6"
    texts = " ".join(t.get_text() for t in ax.texts)
    assert all(m in texts for m in METHODS) and "CD = 1.25" in texts
    # One thick bar joins the four methods (all within CD of each other).
    thick = [line for line in ax.lines if line.get_linewidth() >= 4]
    assert len(thick) == 1 and len(thick[0].get_xdata()) == 4
    # No figure was left in pyplot's manager.
    assert plt.get_fignums() == figures_before


def test_cd_diagram_on_given_axes():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        ranks = pd.Series({"a": 1.2, "b": 1.9, "c": 3.6, "d": 3.3})
        out = plot_cd_diagram(ranks, cd=1.0, ax=ax)
        assert out is ax
        thick = [line for line in ax.lines if line.get_linewidth() >= 4]
        assert sorted(len(line.get_xdata()) for line in thick) == [
            2,
            2,
        ]  # {a, b}, {c, d}
    finally:
        plt.close(fig)


def test_cd_diagram_rejects_bad_input():
    with pytest.raises(ValueError, match="2 methods"):
        plot_cd_diagram(pd.Series({"a": 1.0}), cd=1.0)
    with pytest.raises(ValueError, match="cd"):
        plot_cd_diagram(pd.Series({"a": 1.0, "b": 2.0}), cd=0.0)


# ----------------------------------------------------------------------------
# summarize and markdown


def _long_results(table, spread=0.01):
    """Two folds per (dataset, method) whose mean is the table value."""
    rows = []
    for dataset, row in table.iterrows():
        for method, value in row.items():
            for fold, delta in enumerate((-spread, spread)):
                rows.append((dataset, method, fold, 0, value + delta))
    return pd.DataFrame(rows, columns=["dataset", "method", "fold", "seed", "score"])


def test_summarize_demsar(table6):
    summary = summarize(_long_results(table6))
    pd.testing.assert_frame_equal(
        summary.mean, table6.rename_axis("dataset"), atol=1e-12
    )
    pd.testing.assert_series_equal(summary.ranks, mean_ranks(table6))
    assert summary.friedman.statistic == pytest.approx(friedman_test(table6).statistic)
    pd.testing.assert_frame_equal(summary.nemenyi, nemenyi_test(table6))
    assert summary.cd == pytest.approx(critical_difference(4, 14))
    # std of (v - 0.01, v + 0.01) with ddof=1 is 0.01 * sqrt(2) = 0.014.
    assert summary.table.loc["adult (sample)", "C4.5"] == "0.763 ± 0.014"
    assert summary.dropped_datasets == ()


def test_summarize_lower_is_better(table6):
    summary = summarize(_long_results(1 - table6), higher_is_better=False)
    pd.testing.assert_series_equal(summary.ranks, mean_ranks(table6))


def test_summarize_drops_incomplete_datasets(table6):
    results = _long_results(table6)
    results = results[~((results.dataset == "iris") & (results.method == "C4.5"))]
    with pytest.warns(UserWarning, match="iris"):
        summary = summarize(results)
    assert summary.dropped_datasets == ("iris",)
    assert summary.friedman.n_datasets == 13
    assert summary.table.loc["iris", "C4.5"] == ""


def test_summarize_two_methods_has_no_tests(table6):
    summary = summarize(_long_results(table6[["C4.5", "C4.5+m"]]))
    assert summary.friedman is None and summary.nemenyi is None and summary.cd is None
    assert "### Tests" not in summary.to_markdown()


def test_summarize_requires_columns():
    with pytest.raises(ValueError, match="method"):
        summarize(pd.DataFrame({"dataset": ["x"], "score": [1.0]}))


def test_markdown_table_exact():
    frame = pd.DataFrame(
        {"acc": [0.91234, np.nan], "note": ["a|b", "ok"]}, index=["m1", "m2"]
    )
    frame.index.name = "method"
    assert markdown_table(frame, floatfmt=".2f") == (
        "| method | acc | note |\n|---|---:|---|\n| m1 | 0.91 | a\\|b |\n| m2 |  | ok |"
    )
    assert markdown_table(frame, index=False).splitlines()[0] == "| acc | note |"


def test_summary_markdown_needs_no_tabulate(table6, monkeypatch):
    # A None entry makes any ``import tabulate`` fail.
    monkeypatch.setitem(sys.modules, "tabulate", None)
    text = summarize(_long_results(table6)).to_markdown()
    assert "| C4.5+m+cf | 1.964 |" in text
    assert "Friedman chi2 = " in text and "Iman-Davenport F" in text
    assert "CD = 1.254" in text
    assert "| adult (sample) | 0.763 ± 0.014 |" in text


# ----------------------------------------------------------------------------
# comparisons with a control: paired Wilcoxon tests, Holm's correction


def _holm_by_hand(p):
    """Holm (1979) literally: step down, stop at the first non-rejection."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


@pytest.mark.parametrize(
    "p",
    [[0.01, 0.04, 0.03], [0.5], [0.001, 0.2, 0.03, 0.04, 0.9], [0.02, 0.02, 0.02]],
)
def test_holm_adjust_matches_the_step_down_procedure(p):
    from skbandit.benchmarks import holm_adjust

    np.testing.assert_allclose(holm_adjust(p), _holm_by_hand(p))


def test_wilcoxon_holm_against_scipy_and_by_hand():
    from scipy.stats import wilcoxon

    from skbandit.benchmarks import wilcoxon_holm

    control = np.array([0.90, 0.80, 0.70, 0.60, 0.85, 0.75, 0.65])
    scores = pd.DataFrame(
        {
            "none": control,
            "better": control + [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, -0.005],
            "worse": control - [0.02, 0.01, 0.03, 0.0, 0.02, 0.04, 0.01],
        }
    )
    table = wilcoxon_holm(scores, "none")
    assert list(table.index) == ["better", "worse"]
    assert table.loc["better", ["wins", "ties", "losses"]].tolist() == [6, 0, 1]
    assert table.loc["worse", ["wins", "ties", "losses"]].tolist() == [0, 1, 6]
    p_better = wilcoxon(scores["better"] - control).pvalue
    diff_worse = (scores["worse"] - control).to_numpy()
    p_worse = wilcoxon(diff_worse[diff_worse != 0]).pvalue
    assert table.loc["better", "p"] == pytest.approx(p_better)
    assert table.loc["worse", "p"] == pytest.approx(p_worse)
    np.testing.assert_allclose(table["p_holm"], _holm_by_hand([p_better, p_worse]))
    assert table.loc["worse", "mean_diff"] == pytest.approx(-0.13 / 7)
    # Lower-is-better scores flip the orientation, not the p-values.
    flipped = wilcoxon_holm(scores, "none", higher_is_better=False)
    assert flipped.loc["worse", "wins"] == 6
    np.testing.assert_allclose(flipped["p"], table["p"])


def test_wilcoxon_holm_needs_the_control():
    from skbandit.benchmarks import wilcoxon_holm

    with pytest.raises(ValueError, match="control 'x'"):
        wilcoxon_holm(pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 3.0]}), "x")
