"""The bad-input matrix: estimators, ``skbandit.pruning.prune`` and the CLI.

Every case must raise (or, for the CLI, exit with status 2 and print) a clear
error whose message names the problem, and leave no partial result behind:

- estimators: no fitted attribute (nothing ending in ``_``), ``predict``
  still raises ``NotFittedError``; a fitted estimator given bad data at
  predict time is unchanged;
- ``prune``: the model passed in is untouched (same state dict);
- CLI: no traceback, no results file created, an existing file unchanged
  (same bytes, or the same rows).
"""

import dataclasses
import sqlite3

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from torch import nn

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor, cli
from skbandit.benchmarks import ResultStore, _store
from skbandit.policies import UCB1
from skbandit.pruning import UnitGroup, prune

pytestmark = pytest.mark.filterwarnings(
    # numpy's own warnings about the bad values themselves
    "ignore:invalid value encountered in cast:RuntimeWarning",
    "ignore:overflow encountered in cast:RuntimeWarning",
)

C, R = BanditPrunedMLPClassifier, BanditPrunedMLPRegressor
FAST = dict(hidden_layer_sizes=(4,), max_iter=2, fine_tune_epochs=1, budget=1)

RNG = np.random.default_rng(0)
X_OK = RNG.normal(size=(30, 3))
Y_OK = np.arange(30) % 2
T_OK = X_OK[:, 0].copy()  # regression target


def _with(X, index, value):
    X = np.array(X, dtype=float)
    X[index] = value
    return X


def _labels(index, value):
    """String labels (``Y_OK`` as "a"/"b") with ``value`` at ``index``."""
    y = np.where(Y_OK, "b", "a").astype(object)
    y[index] = value
    return y


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    kind: str  # "fit", "predict", "prune" or "cli"
    args: dict
    match: str
    error: type = ValueError

    def __repr__(self):
        return self.id


def fit(
    id, match, X=X_OK, y=Y_OK, est=C, error=ValueError, sample_weight=None, **params
):
    args = dict(est=est, X=X, y=y, sample_weight=sample_weight, params=params)
    return Case(id, "fit", args, match, error)


def predict(id, match, X, est=C, fitted=True, error=ValueError):
    args = dict(est=est, X=X, fitted=fitted)
    return Case(id, "predict", args, match, error)


def pruning(id, match, error=ValueError, **kwargs):
    return Case(id, "prune", kwargs, match, error)


def command(id, match, *argv, setup=None, suite="tabular"):
    args = dict(argv=argv, setup=setup, suite=suite)
    return Case(id, "cli", args, match, SystemExit)


# -- broken policies -----------------------------------------------------------------


class NaNEstimates(UCB1):
    def _estimates(self):
        return np.full(self.n_arms_, np.nan)


class OutOfRangeArms(UCB1):
    def _select(self, k):
        return super()._select(k) + self.n_arms_


class NoArms(UCB1):
    def _select(self, k):
        return np.array([], dtype=int)


class TextOutput(nn.Module):
    """A model whose forward returns no tensor at all.

    (A tuple such as ``(logits, features)`` is pruned on its first element,
    see ``tests/test_any_model.py``.)
    """

    def __init__(self):
        super().__init__()
        self.net = _net()

    def forward(self, x):
        return {"label": "text"}


# -- CLI fixtures ------------------------------------------------------------------

BENCH = ["--datasets", "iris", "--methods", "sk_knn"]
BENCH += ["--folds", "2", "--max-samples", "20", "--no-progress"]


def _corrupt(db):
    db.write_bytes(b"this is not an SQLite file\n" * 40)


def _other_protocol(db):
    with ResultStore(db) as store:
        store.check_protocol("tabular", {"n_folds": 10})
        store.add_result(("tabular", "iris", "sk_knn", 0, 0), {"metric": "accuracy"})


def _locked(db):
    """A store with one row, held by an exclusive transaction of another
    connection (what a second writer process looks like)."""
    _other_protocol(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


# -- the matrix -----------------------------------------------------------------------

CASES = [
    # ---- estimators: data ----
    fit("X NaN", "Input X contains NaN", X=_with(X_OK, (3, 1), np.nan)),
    fit("X inf", "Input X contains infinity", X=_with(X_OK, (0, 0), np.inf)),
    fit(
        "X -inf regressor",
        "Input X contains infinity",
        est=R,
        y=T_OK,
        X=_with(X_OK, (5, 2), -np.inf),
    ),
    fit(
        "y NaN classifier",
        "Input y contains NaN",
        y=np.where(Y_OK, np.nan, 1.0),
    ),
    fit(
        "y NaN regressor",
        "Input y contains NaN",
        est=R,
        y=_with(T_OK, 4, np.nan),
    ),
    fit(
        "y inf regressor",
        "Input y contains infinity",
        est=R,
        y=_with(T_OK, 4, np.inf),
    ),
    fit(
        "X strings",
        "could not convert string to float",
        X=np.array([["a", "b", "c"]] * 30),
    ),
    fit("X complex", "Complex data not supported", X=X_OK + 1j),
    fit(
        "X object None",
        "Input X contains NaN",
        X=np.array([[None] * 3] * 30, dtype=object),
    ),
    fit("X 1-d", "Expected 2D array, got 1D array", X=X_OK[:, 0]),
    fit("X 3-d", "Found array with dim 3", X=X_OK[:, :, None]),
    fit(
        "X empty", r"Found array with 0 sample\(s\)", X=np.empty((0, 3)), y=np.empty(0)
    ),
    fit("X no features", r"Found array with 0 feature\(s\)", X=np.empty((30, 0))),
    fit(
        "1 sample classifier", r"Found array with 1 sample\(s\)", X=X_OK[:1], y=Y_OK[:1]
    ),
    # (one class is accepted, as by MLPClassifier: tests/test_mlp_dropin.py)
    fit(
        "continuous y for classifier",
        "Unknown label type: continuous",
        y=T_OK,
    ),
    fit(
        # (a 2-d 0/1 indicator y is multilabel, see tests/test_mlp_dropin.py)
        "2-d multiclass y for classifier",
        "y should be a 1d array",
        y=np.stack([Y_OK, Y_OK + 2], 1),
    ),
    fit(
        "y length classifier",
        "inconsistent numbers of samples: 30 and 10",
        y=Y_OK[:10],
    ),
    fit(
        "y length regressor",
        "inconsistent numbers of samples: 30 and 10",
        est=R,
        y=T_OK[:10],
    ),
    fit("X beyond float32", "float32", X=X_OK * 1e39),
    fit(
        "sample_weight beyond float32",
        "sample_weight .*too large for float32",
        sample_weight=np.full(30, 1e39),
    ),
    fit(
        "sample_weight near float64's limit",
        "sample_weight .*too large for float32",
        sample_weight=np.r_[1e308, np.ones(29)],
    ),
    fit(
        "sample_weight summing beyond float32",
        "sample_weight .*too large for float32",
        sample_weight=np.full(30, 1e38),
    ),
    fit(
        "class_weight beyond float32",
        "class_weight .*too large for float32",
        class_weight={0: 1, 1: 1e38},
    ),
    fit("None in string labels", "Input y contains None", y=_labels(3, None)),
    fit("NaN in string labels", "Input y contains NaN", y=_labels(3, np.nan)),
    fit(
        "multilabel y with a 2",
        "multilabel indicator .* 0 and 1, got 2 ",
        y=np.stack([np.r_[2, Y_OK[1:]], 1 - Y_OK], 1),
    ),
    fit(
        "multilabel y of -1 and 1",
        "only 0 and 1, got -1",
        y=np.stack([2 * Y_OK - 1, 1 - 2 * Y_OK], 1),
    ),
    fit(
        "multiclass-multioutput y",
        "y should be a 1d array of class labels or a multilabel indicator .* 0 and "
        "1, got 2",
        y=np.stack([Y_OK, 1 - Y_OK, np.arange(30) % 3], 1),
    ),
    # ---- estimators: parameters ----
    fit("unknown policy", "The 'policy' parameter", policy="greedy"),
    fit("unknown reward", "The 'reward' parameter", reward="auc"),
    fit(
        "accuracy reward for regressor",
        "reward='accuracy' is for classifiers",
        est=R,
        y=T_OK,
        reward="accuracy",
    ),
    fit("unknown scope", "The 'scope' parameter", scope="network"),
    fit("unknown compensate", "The 'compensate' parameter", compensate="median"),
    fit("unknown activation", "The 'activation' parameter", activation="gelu2"),
    fit("unknown solver", "The 'solver' parameter", solver="rmsprop"),
    fit(
        "class_weight negative",
        "class_weight must map each class to a finite, non-negative number, got -1 "
        "for class 0",
        class_weight={0: -1, 1: 1},
    ),
    fit(
        "class_weight slightly negative",
        "class_weight must map .* got -1e-09 for class 0",
        class_weight={0: -1e-9, 1: 1},
    ),
    fit(
        "class_weight NaN",
        "class_weight must map .* finite.* got nan for class 0",
        class_weight={0: np.nan, 1: 1},
    ),
    fit(
        "class_weight inf",
        "class_weight must map .* finite.* got inf for class 1",
        class_weight={0: 1, 1: np.inf},
    ),
    fit(
        "class_weight not a number",
        "class_weight must map .* number, got 'heavy' for class 1",
        class_weight={0: 1, 1: "heavy"},
    ),
    fit(
        "prune_ratio 1",
        r"'prune_ratio' parameter .* range \[0.0, 1.0\)",
        prune_ratio=1.0,
    ),
    fit("prune_ratio negative", "'prune_ratio' parameter", prune_ratio=-0.1),
    fit("prune_ratio NaN", "'prune_ratio' parameter", prune_ratio=float("nan")),
    fit("budget 0", r"'budget' parameter .* range \[1.0, 1000.0\]", budget=0),
    fit("budget negative", "'budget' parameter", budget=-3),
    fit("budget inf", "'budget' parameter", budget=float("inf")),
    fit("budget below one pull", "'budget' parameter", budget=0.5),
    fit(
        "n_rounds beyond the neurons",
        "n_rounds=1000000000 exceeds the 4 hidden neurons",
        n_rounds=10**9,
    ),
    fit("budget above the cap", "'budget' parameter", budget=1e7),
    fit("max_budget above the cap", "'max_budget' parameter", max_budget=1e7),
    fit("batch_size 0", "'batch_size' parameter", batch_size=0),
    fit("arms_per_round 0", "'arms_per_round' parameter", arms_per_round=0),
    fit(
        "hidden layer of 0 units",
        "hidden_layer_sizes must be > 0",
        hidden_layer_sizes=(4, 0),
    ),
    # (a layer of one unit is kept unpruned: tests/test_mlp_dropin.py)
    fit("no hidden layer", "non-empty sequence of integers", hidden_layer_sizes=()),
    fit(
        "absurd hidden layer sizes",
        r"hidden_layer_sizes=\(1000000000000,\) is too large: .* 6e\+12 parameters",
        hidden_layer_sizes=(10**12,),
    ),
    fit(
        "hidden layer sizes whose product overflows int64",
        "is too large",
        hidden_layer_sizes=(2**40, 2**40),
    ),
    fit(
        "hidden layer whose least-squares refit cannot fit in memory",
        # It trained, then asked the allocator for 8 TB without naming either.
        r"hidden_layer_sizes=\(1000000,\) needs about 24,0\d\d GB of memory to fit "
        r"\(24,000 GB for the least-squares Gram matrices of compensate='lstsq'",
        hidden_layer_sizes=(10**6,),
        error=MemoryError,
    ),
    # ---- estimators: predict ----
    predict(
        "predict before fit",
        "is not fitted yet",
        X_OK,
        fitted=False,
        error=NotFittedError,
    ),
    predict(
        "predict wrong feature count",
        "X has 2 features, but BanditPrunedMLPClassifier is expecting 3",
        X_OK[:, :2],
    ),
    predict("predict NaN", "Input X contains NaN", _with(X_OK, (1, 1), np.nan), est=R),
    predict("predict empty", r"Found array with 0 sample\(s\)", np.empty((0, 3))),
    # ---- prune ----
    pruning(
        "prune unknown policy",
        r"'policy' parameter of prune must be one of \['activation', .*"
        r"Got 'greedy' instead\.",
        policy="greedy",
    ),
    pruning("prune misspelt policy", "Did you mean 'ucb1'", policy="ucb"),
    pruning(
        "prune unknown reward",
        r"'reward' parameter of prune must be one of \['accuracy', 'fidelity', "
        r"'loss'\] or a callable\. Got 'auc' instead",
        reward="auc",
    ),
    pruning("prune unknown loss", "Unknown loss 'hinge'", loss="hinge"),
    pruning(
        "prune unknown scope",
        r"'scope' parameter of prune must be one of \['global', 'layer'\]",
        scope="network",
    ),
    pruning(
        "prune unknown compensate",
        r"'compensate' parameter of prune must be one of \['lstsq', 'mean', "
        r"'none'\]\. Got 'median'",
        compensate="median",
    ),
    pruning(
        "prune ratio 1",
        r"'prune_ratio' parameter of prune must be a float in the range \[0.0, 1.0\)",
        prune_ratio=1.0,
    ),
    pruning(
        "prune ratio negative",
        r"'prune_ratio' parameter of prune must be a float in the range \[0.0, 1.0\)",
        prune_ratio=-0.5,
    ),
    pruning("prune budget 0", "'budget' parameter of prune must be", budget=0),
    pruning(
        "prune budget inf",
        "'budget' parameter of prune must be",
        budget=float("inf"),
    ),
    pruning(
        "prune budget below one pull",
        r"'budget' parameter of prune must be a float in the range "
        r"\[1.0, 1000.0\].* removed in index order",
        budget=1e-12,
    ),
    pruning(
        "prune budget above the cap",
        r"'budget' parameter of prune must be a float in the range "
        r"\[1.0, 1000.0\].* can run for days",
        budget=1e7,
    ),
    pruning(
        "prune max_budget above the cap",
        r"'max_budget' parameter of prune must be a float in the range "
        r"\[1.0, 1000.0\].* can run for days",
        budget="auto",
        max_budget=1e7,
    ),
    pruning(
        "prune a layer whose least-squares refit cannot fit in memory",
        r"compensate='lstsq' needs about 24,000 GB .* \('2' reads 1000000 inputs",
        model=lambda: nn.Sequential(
            nn.Linear(4, 10**6), nn.ReLU(), nn.Linear(10**6, 3)
        ),
        error=MemoryError,
    ),
    pruning(
        "prune obs on a layer whose refit cannot fit in memory",
        r"policy='obs' needs about 24,000 GB",
        model=lambda: nn.Sequential(
            nn.Linear(4, 10**6), nn.ReLU(), nn.Linear(10**6, 3)
        ),
        policy="obs",
        compensate="mean",
        error=MemoryError,
    ),
    pruning(
        "prune n_rounds beyond the units",
        "n_rounds=1000000000 exceeds the model's 8 prunable units",
        n_rounds=10**9,
    ),
    pruning(
        "prune policy with NaN estimates",
        r"policy 'NaNEstimates' returned non-finite scores .* layer '0'",
        policy=NaNEstimates(),
    ),
    pruning(
        "prune policy selecting arms out of range",
        r"OutOfRangeArms.select returned .* arms in \[0, 8\)",
        policy=OutOfRangeArms(),
    ),
    pruning(
        "prune policy selecting no arm",
        r"NoArms.select returned .* non-empty",
        policy=NoArms(),
    ),
    pruning(
        "prune model with an output holding no tensor",
        "the model's prediction as a tensor, its logits or the first element "
        "of a tuple; got str",
        model=lambda: TextOutput(),
        error=TypeError,
    ),
    pruning(
        "prune random_state a string",
        r"'random_state' parameter of prune must be None, an int in the range "
        r"\[0, inf\) or an instance of 'numpy.random._generator.Generator'",
        random_state="x",
    ),
    pruning(
        "prune random_state negative",
        r"'random_state' parameter of prune must be None, an int in the range "
        r"\[0, inf\) .* Got -1 instead",
        random_state=-1,
    ),
    pruning(
        "prune model on the meta device",
        "tensors on the 'meta' device",
        model=lambda: _net().to("meta"),
    ),
    pruning(
        "prune UnitGroup of the wrong size",
        r"UnitGroup '0' has 9 units \(9 rows\), but producer '0' has 8 rows",
        groups=[UnitGroup("0", 9, ("0",), ("2",))],
    ),
    pruning(
        "prune UnitGroup reading the wrong width",
        "UnitGroup '0' spans 16 input features, but consumer '2' reads 8",
        groups=[UnitGroup("0", 8, (), ("2",), unit_width=2)],
    ),
    pruning(
        "prune UnitGroup naming a missing module",
        "UnitGroup '0' names module 'fc', which the model does not have",
        groups=[UnitGroup("0", 8, ("fc",), ("2",))],
    ),
    pruning(
        "prune between_rounds returning None",
        "between_rounds must return the model .* got NoneType",
        n_rounds=2,
        between_rounds=lambda model: None,
        error=TypeError,
    ),
    pruning(
        "prune batch_size 0",
        r"'batch_size' parameter of prune must be an int in the range \[1, inf\)",
        batch_size=0,
    ),
    pruning(
        "prune arms_per_round 0",
        r"'arms_per_round' parameter of prune must be an int in the range "
        r"\[1, inf\) or None",
        arms_per_round=0,
    ),
    pruning(
        "prune model without prunable units",
        "has no prunable units",
        model=lambda: nn.Sequential(nn.Linear(4, 3)),
    ),
    pruning(
        "prune non-sequential model",
        "nn.Sequential",
        model=lambda: nn.Linear(4, 3),
        error=TypeError,
    ),
    pruning(
        "prune a string as model",
        "model must be a torch.nn.Module",
        model=lambda: "net",
        error=TypeError,
    ),
    pruning(
        "prune X with wrong feature count",
        "X has 5 features, but the model's first layer .* expects 4",
        X=torch.randn(32, 5),
    ),
    pruning("prune 1-d X", "X must have shape", X=torch.randn(32)),
    pruning(
        "prune y length",
        "inconsistent numbers of samples: 32 and 10",
        y=torch.randint(0, 3, (10,)),
    ),
    pruning(
        "prune NaN in X",
        "X contains NaN or infinity",
        X=torch.full((32, 4), float("nan")),
    ),
    pruning(
        "prune empty X",
        "X has 0 samples",
        X=torch.randn(0, 4),
        y=torch.zeros(0, dtype=torch.long),
    ),
    pruning(
        "prune strings in X",
        "X must be numeric",
        X=np.array([["a"] * 4] * 32),
    ),
    pruning(
        "prune labels beyond the outputs",
        r"class labels .* \[0, 3\)",
        y=torch.full((32,), 7),
    ),
    pruning(
        "prune float labels for cross-entropy",
        "integer class labels",
        y=torch.rand(32),
    ),
    # ---- CLI ----
    command("cli unknown dataset", "unknown dataset 'nope'", "--datasets", "nope"),
    command(
        "cli empty dataset name",
        "argument --datasets: expected a comma-separated list",
        "--datasets",
        ",",
    ),
    command(
        "cli missing dataset name",
        "argument --datasets: expected one argument",
        "--datasets",
    ),
    command(
        "cli dataset of the other task",
        "'diabetes' is a regression dataset",
        "--datasets",
        "diabetes",
    ),
    command("cli unknown method", "unknown method 'bogus'", "--methods", "bogus"),
    command("cli unknown suite", "invalid choice: 'images'", suite="images"),
    command(
        "cli ratio out of range",
        r"prune ratios must lie in (0, 1)",
        "--methods",
        "ucb1@*",
        "--ratios",
        "1.5",
    ),
    command(
        "cli ratios not numbers", "expected comma-separated floats", "--ratios", "half"
    ),
    command("cli 0 folds", "expected a positive integer, got '0'", "--folds", "0"),
    command("cli 1 fold", "n_folds must be an int >= 2", "--folds", "1"),
    command("cli seeds not numbers", "expected comma-separated ints", "--seeds", "x"),
    command(
        "cli negative seed",
        "argument --seeds: seeds must be integers in [0, 2**32 - 1]",
        "--seeds",
        "-1",
    ),
    command(
        "cli seed beyond numpy's range",
        "argument --seeds: seeds must be integers in [0, 2**32 - 1]",
        "--seeds",
        str(2**40),
    ),
    command(
        "cli more folds than a class has rows",
        "argument --folds: n_folds=11 is more than dataset 'iris' allows",
        "--folds",
        "11",
        "--max-samples",
        "30",
    ),
    command(
        "cli too few samples",
        "max_samples must be at least 2 * n_folds",
        "--max-samples",
        "3",
    ),
    command("cli unknown backend", "invalid choice: 'spark'", "--backend", "spark"),
    command(
        "cli bad scheduler address",
        "scheduler must be a Dask scheduler address",
        "--scheduler",
        "localhost",
    ),
    command("cli unknown option", "unrecognized arguments: --gpus", "--gpus", "2"),
    command(
        "cli corrupt results file",
        "is not a valid SQLite results store",
        setup=_corrupt,
    ),
    command(
        "cli results file is a directory", "is a directory", setup=lambda db: db.mkdir()
    ),
    command(
        "cli results file of another protocol",
        "another protocol",
        setup=_other_protocol,
    ),
    command("cli locked results file", "is locked by another process", setup=_locked),
]


def _fitted_attributes(est):
    return sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("__"))


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _state(model):
    if not isinstance(model, nn.Module):
        return model
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(before, model):
    after = _state(model)
    if not isinstance(model, nn.Module):
        return before == after
    return before.keys() == after.keys() and all(
        _same_tensor(before[k], after[k]) for k in before
    )


def _same_tensor(a, b):
    if a.is_meta or b.is_meta:  # no values to compare
        return a.is_meta and b.is_meta and a.shape == b.shape
    return torch.equal(a, b)


@pytest.fixture(scope="module")
def fitted():
    return {
        C: C(random_state=0, **FAST).fit(X_OK, Y_OK),
        R: R(random_state=0, **FAST).fit(X_OK, T_OK),
    }


def _raises(call, error, match):
    """Problems (empty = as expected) and a description of what happened."""
    try:
        call()
    except error as exc:
        if not pytest.raises(error, match=match).matches(exc):
            return [f"message {str(exc)[:300]!r} does not match {match!r}"]
        return []
    except Exception as exc:
        return [f"{type(exc).__name__}: {str(exc)[:300]}"]
    return ["no error"]


def _check_fit(case, tmp_path, capsys, fitted):
    a = case.args
    est = a["est"](random_state=0, **{**FAST, **a["params"]})
    problems = _raises(
        lambda: est.fit(a["X"], a["y"], sample_weight=a["sample_weight"]),
        case.error,
        case.match,
    )
    if problems:
        return problems
    if _fitted_attributes(est):
        problems.append(f"fitted attributes left: {_fitted_attributes(est)}")
    try:
        est.predict(X_OK)
        problems.append("predict works after a failed fit")
    except NotFittedError:
        pass
    except Exception as exc:
        problems.append(f"predict after the failed fit: {type(exc).__name__}: {exc}")
    return problems


def _check_predict(case, tmp_path, capsys, fitted):
    a = case.args
    est = fitted[a["est"]] if a["fitted"] else a["est"](**FAST)
    before = _state(getattr(est, "module_", None))
    attributes = dict(vars(est))
    problems = _raises(lambda: est.predict(a["X"]), case.error, case.match)
    if a["fitted"] and not _same_state(before, est.module_):
        problems.append("module_ changed")
    if set(vars(est)) != set(attributes):
        problems.append("attributes changed")
    return problems


def _check_prune(case, tmp_path, capsys, fitted):
    kwargs = dict(case.args)
    model = kwargs.pop("model", _net)()
    X = kwargs.pop("X", torch.randn(32, 4, generator=torch.Generator().manual_seed(0)))
    y = kwargs.pop("y", torch.arange(32) % 3)
    before = _state(model)
    problems = _raises(
        lambda: prune(model, X, y, **{"random_state": 0, **kwargs}),
        case.error,
        case.match,
    )
    if not _same_state(before, model):
        problems.append("the model passed in was modified")
    return problems


def _check_cli(case, tmp_path, capsys, fitted, monkeypatch):
    db = tmp_path / "r.sqlite"
    holder = case.args["setup"](db) if case.args["setup"] else None
    exists = db.exists()
    before = db.read_bytes() if db.is_file() else None
    rows = _rows(db) if case.args["setup"] in (_other_protocol, _locked) else None
    argv = ["bench", case.args["suite"], *BENCH, *case.args["argv"]]
    argv += ["--db", str(db), "--out", str(tmp_path / "out")]
    # A locked file is waited for (30 s by default) before giving up.
    monkeypatch.setattr(_store.ResultStore.__init__, "__defaults__", (True, 0.2))
    try:
        status = cli.main(argv)
    finally:
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
    out, err = capsys.readouterr()
    problems = []
    if status != 2:
        problems.append(f"exit status {status}, stderr {err[-300:]!r}")
    if case.match not in err:
        problems.append(f"stderr {err[-400:]!r} lacks {case.match!r}")
    if "Traceback" in out + err:
        problems.append("a traceback was printed")
    if not exists and db.exists():
        problems.append("a results file was created")
    if before is not None and rows is None and db.read_bytes() != before:
        problems.append("the results file was modified")
    if rows is not None and _rows(db) != rows:
        problems.append("rows were added")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    return problems


def _rows(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM results ORDER BY rowid").fetchall()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, capsys, monkeypatch, fitted):
    if case.kind == "cli":
        problems = _check_cli(case, tmp_path, capsys, fitted, monkeypatch)
    else:
        check = {"fit": _check_fit, "predict": _check_predict, "prune": _check_prune}
        problems = check[case.kind](case, tmp_path, capsys, fitted)
    assert not problems, "; ".join(problems)


def test_the_matrix_is_large_and_spans_every_entry_point():
    kinds = [c.kind for c in CASES]
    assert len(CASES) >= 30
    assert {"fit", "predict", "prune", "cli"} <= set(kinds)
    assert len({c.id for c in CASES}) == len(CASES)


# -- memory estimates ----------------------------------------------------------------


def test_fit_memory_counts_by_hand():
    from skbandit.estimators._resources import fit_memory

    # 4 features, 10 units, 3 outputs: (4 + 1) * 10 + (10 + 1) * 3 = 83
    # parameters, 4 float32 copies each (weights, gradients, Adam's moments);
    # 200 rows x 13 units x 2 float32 values; 3 float64 matrices of 11 x 11
    # (the Gram matrix, its inverse, the copy being inverted).
    needs = fit_memory(4, [10], 3, 200, refit=True)
    assert needs == {"network": 83 * 4 * 4, "activations": 200 * 13 * 2 * 4,
                     "refits": 3 * 11 * 11 * 8}  # fmt: skip
    assert fit_memory(4, [10], 3, 200, refit=False)["refits"] == 0
    # Two hidden layers: each keeps 2 matrices, the wider (7 x 7) is inverted.
    refits = fit_memory(2, [6, 5], 1, 1, refit=True)["refits"]
    assert refits == 8 * (2 * 49 + 2 * 36 + 49)
    # The request: 24 TB, counted without int64 overflow.
    assert fit_memory(4, [10**6], 3, 150, refit=True)["refits"] == 24_000_048_000_024


def test_check_fit_memory_names_the_parameter_and_the_sizes():
    from skbandit.estimators._resources import check_fit_memory

    needs = {"network": 1e9, "activations": 0, "refits": 24e9}
    with pytest.raises(MemoryError) as caught:
        check_fit_memory("hidden_layer_sizes=(50000,)", needs, "policy='obs'", 8e9)
    message = str(caught.value)
    assert message.startswith("hidden_layer_sizes=(50000,) needs about 25 GB")
    assert "24 GB for the least-squares Gram matrices of policy='obs'" in message
    assert "1 GB for the network" in message and "activations" not in message
    assert "but 8 GB is available" in message and "compensate='mean'" in message
    check_fit_memory("hidden_layer_sizes=(50000,)", needs, "policy='obs'", 25e9)
    check_fit_memory("hidden_layer_sizes=(50000,)", needs, "policy='obs'", None)


def test_available_memory_falls_back_to_sysconf(monkeypatch):
    import builtins
    import os

    from skbandit.pruning import _resources

    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    # The host's figures only: no container limit on top.
    monkeypatch.setattr(_resources, "cgroup_headroom", lambda: None)

    def sysconf(pages):
        def value(name):
            if name not in pages:
                raise ValueError(f"unrecognized configuration name {name!r}")
            return pages[name]

        return value

    pages = {"SC_PAGE_SIZE": 4096, "SC_AVPHYS_PAGES": 1000}
    monkeypatch.setattr(os, "sysconf", sysconf(pages), raising=False)
    assert _resources.available_memory("cpu") == 4096 * 1000
    monkeypatch.setattr(os, "sysconf", sysconf({}), raising=False)  # e.g. macOS
    assert _resources.available_memory("cpu") is None
    assert _resources.available_memory("meta") is None


def _cgroup_tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


_GIB = 2**30


@pytest.mark.parametrize(
    "files, headroom",
    [
        # v2: 4 GiB limit, 3 GiB used of which 1 GiB reclaimable cache.
        (
            {
                "memory.max": f"{4 * _GIB}\n",
                "memory.current": f"{3 * _GIB}\n",
                "memory.stat": f"anon 1\ninactive_file {_GIB}\nactive_file 5\n",
            },
            2 * _GIB,
        ),
        # v1: its hierarchical total_inactive_file, not inactive_file.
        (
            {
                "memory/memory.limit_in_bytes": f"{8 * _GIB}\n",
                "memory/memory.usage_in_bytes": f"{2 * _GIB}\n",
                "memory/memory.stat": f"inactive_file 0\ntotal_inactive_file {_GIB}\n",
            },
            7 * _GIB,
        ),
        ({"memory.max": "100", "memory.current": "150", "memory.stat": ""}, 0),
        ({"memory.max": "max\n"}, None),
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, None),
        ({}, None),
    ],
    ids=["v2", "v1", "over-limit", "v2-unlimited", "v1-unlimited", "no-cgroup"],
)
def test_cgroup_headroom_reads_v2_and_v1_limits(tmp_path, files, headroom):
    from skbandit.pruning._resources import cgroup_headroom

    assert cgroup_headroom(_cgroup_tree(tmp_path / "cgroup", files)) == headroom


def test_available_memory_is_the_smaller_of_host_and_container(monkeypatch):
    from skbandit.pruning import _resources

    monkeypatch.setattr(_resources, "_host_available", lambda: 24 * 10**9)
    monkeypatch.setattr(_resources, "cgroup_headroom", lambda: 2 * 10**9)
    assert _resources.available_memory("cpu") == 2 * 10**9
    monkeypatch.setattr(_resources, "cgroup_headroom", lambda: None)
    assert _resources.available_memory("cpu") == 24 * 10**9
    monkeypatch.setattr(_resources, "_host_available", lambda: None)
    assert _resources.available_memory("cpu") is None


def test_refit_widths_are_the_inputs_each_consumer_regresses():
    from skbandit.pruning import find_unit_groups
    from skbandit.pruning._resources import refit_widths

    net = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 5), nn.ReLU(), nn.Linear(5, 2),
    )  # fmt: skip
    groups = find_unit_groups(net, example_input=torch.zeros(1, 3, 8, 8))
    widths = refit_widths(net, groups)
    # 8 channels x 3 x 3 kernel positions; 64 flattened features; 5 units.
    assert widths == {"2": 72, "5": 64, "7": 5}


def test_a_fit_too_large_for_memory_fails_before_training(monkeypatch):
    # (10**6,) trained 27 s before the refit asked for 8 TB.
    from skbandit.estimators import _base

    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(_base, "train_network", no_training)
    monkeypatch.setattr(_base, "cached_training", no_training)
    est = C(hidden_layer_sizes=(10**6,), random_state=0)
    with pytest.raises(MemoryError, match=r"hidden_layer_sizes=\(1000000,\)"):
        est.fit(X_OK, Y_OK)
    # Without refits (no lstsq, no OBS) the same width needs far less (and
    # trains here).
    with pytest.raises(AssertionError, match="trained"):
        C(hidden_layer_sizes=(10**6,), policy="ucb1", compensate="mean").fit(X_OK, Y_OK)
