"""benchmarks/conv_default_check.py: the rule that picks prune()'s default on
convolutions, its paired table, and a missing dataset's message."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import conv_default_check as cdc  # noqa: E402


def _frame(drops, seconds):
    """Two tasks x two seeds x the three ratios; ``drops[m]`` is method m's
    drop at 75 and 90 % (its 50 % drop is 0), ``seconds[m]`` its time."""
    rows = [
        dict(task=task, seed=seed, method=m, ratio=ratio, prune_s=seconds[m],
             drop=0.0 if ratio == 0.5 else drops[m] + 0.1 * seed)
        for task in ("a", "b")
        for seed in (0, 1)
        for m in cdc.METHODS
        for ratio in cdc.RATIOS
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_rule_takes_the_lowest_drop_within_twice_obs_time():
    seconds = {"obs": 1.0, "ucb1": 1.9, "uniform": 2.5, "magnitude": 0.2}
    drops = {"obs": 3.0, "ucb1": 2.0, "uniform": 1.0, "magnitude": 5.0}
    chosen, within, mean_drops, ratios = cdc.choose(_frame(drops, seconds))
    # uniform loses least but takes 2.5x OBS's time: out.
    assert within == ["obs", "ucb1", "magnitude"]
    assert chosen == "ucb1"
    assert ratios["uniform"] == pytest.approx(2.5)
    # The 50 % drops (0 here) do not count.
    assert mean_drops["ucb1"] == pytest.approx(2.05)


def test_paired_table_is_holm_corrected_and_oriented():
    seconds = dict.fromkeys(cdc.METHODS, 1.0)
    drops = {"obs": 1.0, "ucb1": 2.0, "uniform": 2.0, "magnitude": 4.0}
    table = cdc.paired(_frame(drops, seconds))
    obs = table.loc["Greedy OBS - UCB1"]
    # Positive: OBS lost a point less than UCB1 on every pair.
    assert obs["mean_diff"] == pytest.approx(1.0)
    assert (obs["wins"], obs["ties"], obs["losses"]) == (8, 0, 0)
    assert table.loc["Uniform pulls (control) - UCB1", "ties"] == 8
    assert (table["p_holm"] >= table["p"]).all()


def test_missing_fashion_mnist_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(cdc, "FASHION", tmp_path / "absent")
    with pytest.raises(SystemExit, match="apt-get install dataset-fashion-mnist"):
        cdc.fashion(28)
