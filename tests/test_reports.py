"""Reports for people: readable method names, an opening table per ratio
with the baseline it is read against, collapsed wide tables, cache hits."""

import pytest

from skbandit.benchmarks import list_methods
from skbandit.benchmarks._names import parse_method_name
from skbandit.benchmarks._reports import build_report

from .test_benchmark_runner import _synthetic_frame


def test_report_opens_with_a_table_per_ratio_and_its_baseline():
    report = build_report(
        _synthetic_frame(), "tabular", command="skbandit bench tabular"
    )
    text = report.markdown
    lines = text.splitlines()
    # The title, then the opening tables, before any rank statistics.
    assert lines[0].startswith("# skbandit benchmark: tabular")
    assert lines[2] == "## At a glance"
    glance = text.index("## At a glance")
    for later in ("mean rank", "Nemenyi", "Friedman", "## How it was run"):
        assert text.index(later) > glance
    opening = text[glance : text.index("## How it was run")]
    assert "### Read against" in opening
    assert "| Unpruned network | 0.785 |" in opening
    assert "| scikit-learn k-nearest neighbours |" in opening
    for ratio in ("30 %", "60 %"):
        section = opening.split(f"### {ratio} of the hidden units removed")[1]
        section = section.split("###")[0]
        header = (
            "| method | mean accuracy | drop (points) | params kept | "
            "fit s (cache hits not recorded) |"
        )
        assert header in section
        rows = [r for r in section.splitlines() if r.startswith("| ")][1:]
        # The baseline first, then the methods best first, each with its drop.
        assert rows[0].startswith("| Unpruned network (baseline) | 0.785 |")
        assert [r.split(" | ")[0] for r in rows[1:]] == [
            "| UCB1",
            "| Thompson sampling",
            "| Random removal",
        ]
    ucb1 = report.summary_all.mean["ucb1@0.3"].mean()
    none = report.summary_all.mean["none"].mean()
    assert f"| UCB1 | {ucb1:.3f} | {100 * (none - ucb1):.2f} | 70 % |" in opening
    # Internal method names stay out of the report (except the command).
    for internal in ("ucb1@0.3", "thompson@0.6", "sk_knn", "random@0.6"):
        assert internal not in text
    # Wide tables are collapsed.
    assert "<details>" in text and "</details>" in text


def test_report_says_which_fits_were_cached():
    frame = _synthetic_frame()
    frame["extra"] = [
        {"train_cache_hit": i % 2 == 0} if parse_method_name(m) else {}
        for i, m in enumerate(frame["method"])
    ]
    report = build_report(frame, "tabular")
    assert "| fit s | cached fits |" in report.markdown
    assert "| Random removal |" in report.markdown
    assert "50 % |" in report.markdown
    assert "cached fits" in report.terminal
    plain = build_report(_synthetic_frame(), "tabular")
    assert "fit s (cached fits not recorded)" in plain.terminal


@pytest.mark.parametrize(
    "method, expected",
    [
        ("none", "Unpruned network"),
        ("none/ft0", "Unpruned network, no fine-tuning"),
        ("ucb1@0.5", "UCB1, 50 % removed"),
        (
            "ucb1@0.5:lstsq/ft0",
            "UCB1 + least-squares refit, 50 % removed, no fine-tuning",
        ),
        ("tp_magnitude@0.75", "Torch-Pruning magnitude, 75 % removed"),
        (
            "obs@0.9:lstsq/ft0",
            "Greedy OBS + least-squares refit, 90 % removed, no fine-tuning",
        ),
        (
            "exp3@0.5:lstsq/ft0+set",
            "EXP3 + least-squares refit, set pulls, 50 % removed, no fine-tuning",
        ),
        ("random@0.5/ft3", "Random removal, 50 % removed, 3 fine-tuning epochs"),
        ("scratch@0.75", "Pruned size, trained from scratch, 75 % removed"),
        ("sk_mlp", "scikit-learn MLP"),
        ("not_a_method", "not_a_method"),
    ],
)
def test_display_names(method, expected):
    from skbandit.benchmarks._names import display_name

    assert display_name(method) == expected


def test_every_method_has_a_display_name():
    from skbandit.benchmarks._methods import PEERS
    from skbandit.benchmarks._names import (
        DISPLAY_NAMES,
        PRUNING_POLICIES,
        display_name,
    )

    for name in (*PRUNING_POLICIES, *PEERS, "none"):
        assert name in DISPLAY_NAMES
    shown = [display_name(m) for m in list_methods("classification")]
    assert len(set(shown)) == len(shown)  # no two methods read the same
    assert not any("@" in s or "_" in s.replace("scikit-learn", "") for s in shown)


def test_report_only_rewrites_the_report_and_runs_nothing(tmp_path, capsys):
    from skbandit.cli import main

    from .test_benchmark_runner import _store_frame

    db, out = tmp_path / "r.sqlite", tmp_path / "out"
    _store_frame(db, _synthetic_frame())
    before = db.stat().st_mtime_ns, db.read_bytes()
    argv = ["bench", "tabular", "--db", str(db), "--out", str(out)]
    assert main([*argv, "--report-only", "--no-progress"]) == 0
    text = (out / "report.md").read_text()
    assert text.splitlines()[2] == "## At a glance"
    assert f"Regenerate: `skbandit bench tabular --db {db} --out {out} " in text
    assert "--report-only" not in text
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before
    assert "cached fits not recorded" in capsys.readouterr().out
    missing = ["bench", "tabular", "--db", str(tmp_path / "no.sqlite")]
    assert main([*missing, "--report-only"]) != 0
    assert "no results file" in capsys.readouterr().err


def test_printed_table_opens_with_the_baselines_and_readable_names():
    terminal = build_report(_synthetic_frame(), "tabular").terminal
    # What `skbandit bench tabular` prints: the report's opening tables
    # first, rank statistics last, and no internal method names.
    assert terminal.index("Read against:") < terminal.index("Ranks (1 = best):")
    assert terminal.index("30 % of the hidden units removed:") < terminal.index(
        "Friedman (all methods)"
    )
    assert "| Unpruned network (baseline) | 0.785 |" in terminal
    assert "| UCB1, 30 % removed |" in terminal
    for internal in ("ucb1@0.3", "thompson@0.6", "sk_knn", "random@0.6"):
        assert internal not in terminal
    # The synthetic runs recorded no cache hits: the header says so.
    assert "cache hits were not recorded" in terminal
    assert "cached fits = share" not in terminal
