"""Behaviour of the scikit-learn estimators beyond scikit-learn's own checks."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor
from skbandit.policies import UCB1
from skbandit.pruning import METHODS, count_parameters

FAST = dict(
    hidden_layer_sizes=(16,),
    max_iter=15,
    learning_rate_init=0.01,
    fine_tune_epochs=2,
    budget=4,
)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_grid_search_over_every_policy_and_ratio(iris):
    X, y = iris
    pipe = make_pipeline(
        StandardScaler(), BanditPrunedMLPClassifier(random_state=0, **FAST)
    )
    grid = GridSearchCV(
        pipe,
        {
            "banditprunedmlpclassifier__policy": list(METHODS),
            "banditprunedmlpclassifier__prune_ratio": [0.25, 0.5],
        },
        cv=3,
        n_jobs=2,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 2 * len(METHODS) == 30
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_score_ > 0.8


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_cross_val_score_against_sklearn_models(iris):
    X, y = iris
    models = {
        "ours": BanditPrunedMLPClassifier(
            (32,), max_iter=40, learning_rate_init=0.01, random_state=0
        ),
        "logreg": LogisticRegression(),
        "forest": RandomForestClassifier(n_estimators=20, random_state=0),
        "mlp": MLPClassifier((32,), max_iter=200, random_state=0),
    }
    scores = {
        name: cross_val_score(make_pipeline(StandardScaler(), m), X, y, cv=3).mean()
        for name, m in models.items()
    }
    assert scores["ours"] > 0.85
    assert scores["ours"] > min(scores.values()) - 0.1


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_module_is_physically_smaller(iris, scope):
    X, y = iris
    clf = BanditPrunedMLPClassifier(
        (20, 10), prune_ratio=0.5, scope=scope, random_state=0, max_iter=10
    ).fit(X, y)
    # unpruned: 4*20+20 + 20*10+10 + 10*3+3 = 343 parameters
    assert clf.pruning_.params_before == 343
    assert count_parameters(clf.module_) == clf.pruning_.params_after < 343
    removed = sum(l.units_before - l.units_after for l in clf.pruning_.layers)
    assert removed == 15
    if scope == "layer":
        # 4*10+10 + 10*5+5 + 5*3+3 = 123
        assert clf.pruning_.params_after == 123


def test_pruning_report(iris):
    X, y = iris
    params = {**FAST, "hidden_layer_sizes": (16, 8), "policy": "ucb1"}
    clf = BanditPrunedMLPClassifier(random_state=0, **params).fit(X, y)
    report = clf.pruning_
    assert report.method == "ucb1"
    assert [l.units_before for l in report.layers] == [16, 8]
    assert [l.units_after for l in report.layers] == [8, 4]
    assert all(
        l.pulls.sum() > 0 and l.scores.shape == (l.units_before,) for l in report.layers
    )
    assert np.isfinite(
        [report.loss_before, report.loss_after, report.loss_after_fine_tune]
    ).all()
    assert report.time_scoring > 0 and report.time_fine_tune > 0
    assert clf.n_iter_ == 15 and clf.fine_tune_n_iter_ == 2
    assert len(clf.history_) == 15 + 2
    assert clf.loss_curve_ + clf.fine_tune_loss_curve_ == [
        row["train_loss"] for row in clf.history_
    ]


def test_same_seed_same_predictions_and_different_seed_differs(iris):
    X, y = iris
    fits = [
        BanditPrunedMLPClassifier(random_state=3, **FAST).fit(X, y) for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))
    other = BanditPrunedMLPClassifier(random_state=4, **FAST).fit(X, y)
    assert not np.array_equal(fits[0].predict_proba(X), other.predict_proba(X))


def test_fit_does_not_touch_global_torch_rng(iris):
    X, y = iris
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    BanditPrunedMLPClassifier(random_state=0, **FAST).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_pickle_round_trip(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(random_state=0, **FAST).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))
    unfitted = clone(clf)
    assert not hasattr(unfitted, "module_")
    assert unfitted.get_params() == clf.get_params()


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "mps", "xpu"])
def test_a_pickled_gpu_fit_predicts_on_the_cpu_where_its_device_is_missing(
    iris, device
):
    X, y = iris
    clf = BanditPrunedMLPClassifier(random_state=0, **FAST).fit(X, y)
    wanted = torch.device(device)
    if wanted.type == "cuda" and torch.cuda.device_count() > (wanted.index or 0):
        pytest.skip("this machine has that device")
    # What __getstate__ writes for a fit whose networks were on ``device``
    state = clf.__getstate__()
    state["_pickled_from"] = device
    again = BanditPrunedMLPClassifier.__new__(BanditPrunedMLPClassifier)
    with pytest.warns(UserWarning, match=f"fitted on '{device}'.*on the CPU"):
        again.__setstate__(state)
    assert not hasattr(again, "_pickled_from")
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_a_cpu_fit_pickles_without_a_device_note(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(random_state=0, **FAST).fit(X, y)
    clf.device = "cuda"  # the parameter alone: its networks are on the CPU
    assert "_pickled_from" not in clf.__getstate__()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(clf))


def test_policy_object_is_not_mutated(iris):
    X, y = iris
    policy = UCB1(c=1.0)
    clf = BanditPrunedMLPClassifier(policy=policy, random_state=0, **FAST).fit(X, y)
    assert not hasattr(policy, "n_arms_")
    assert clf.get_params()["policy"] is policy
    assert clf.pruning_.method == "UCB1"


def test_pandas_input_string_and_categorical_labels(iris):
    X, y = iris
    names = ["sepal length", "sepal width", "petal length", "petal width"]
    df = pd.DataFrame(X, columns=names)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = BanditPrunedMLPClassifier(random_state=0, **FAST).fit(df, labels)
    assert list(clf.feature_names_in_) == names
    assert set(clf.predict(df)) <= set(labels)
    np.testing.assert_array_equal(clf.classes_, ["setosa", "versicolor", "virginica"])
    categorical = pd.Series(labels, dtype="category")
    clf2 = BanditPrunedMLPClassifier(random_state=0, **FAST).fit(df, categorical)
    np.testing.assert_array_equal(clf2.predict(df), clf.predict(df))
    assert clf.predict_proba(df).shape == (150, 3)
    np.testing.assert_allclose(clf.predict_proba(df).sum(axis=1), 1.0)


def test_regressor_single_and_multi_output(diabetes):
    X, y = diabetes
    reg = BanditPrunedMLPRegressor((32,), max_iter=30, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (442,)
    assert reg.score(X, y) > 0.3
    Y = np.column_stack([y, -2 * y + 5])
    multi = BanditPrunedMLPRegressor((32,), max_iter=30, random_state=0).fit(X, Y)
    assert multi.predict(X).shape == (442, 2) and multi.n_outputs_ == 2
    assert multi.score(X, Y) > 0.3


def test_regressor_target_scale_does_not_matter(diabetes):
    X, y = diabetes
    a = BanditPrunedMLPRegressor(random_state=0, **FAST).fit(X, y)
    b = BanditPrunedMLPRegressor(random_state=0, **FAST).fit(X, y * 1000 + 7)
    np.testing.assert_allclose(b.predict(X), a.predict(X) * 1000 + 7, rtol=1e-4)


def test_early_stopping_and_cosine_schedule(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(
        (16,),
        max_iter=200,
        early_stopping=True,
        n_iter_no_change=3,
        learning_rate_init=0.05,
        learning_rate="cosine",
        fine_tune_epochs=0,
        random_state=0,
    ).fit(X, y)
    assert "valid_loss" in clf.history_[0]
    assert len(clf.history_) < 200


def test_verbose_prints_one_plain_line_per_phase(iris, capsys):
    X, y = iris
    BanditPrunedMLPClassifier(policy="ucb1", verbose=1, random_state=0, **FAST).fit(
        X, y
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "training",
        "pruning",
        "fine-tuning",
    ]
    assert lines[0].startswith("training: 15/15 epochs")
    assert "16→8 units, 64 pulls" in lines[1]
    assert "\x1b" not in "".join(lines)  # no ANSI colour codes


def test_verbose_2_adds_one_line_per_epoch(iris, capsys):
    X, y = iris
    BanditPrunedMLPClassifier(verbose=2, random_state=0, **FAST).fit(X, y)
    out = capsys.readouterr()
    lines = out.out.splitlines()
    epochs = [line for line in lines if " epoch " in line]
    assert len(epochs) == 15 + 2  # training, fine-tuning
    assert epochs[0].startswith("training epoch 1/15, train loss ")
    assert epochs[-1].startswith("fine-tuning epoch 2/2, train loss ")
    assert "\x1b" not in out.out and out.err == ""  # no colours, no tqdm bars


def test_policy_none_keeps_every_unit(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(policy="none", random_state=0, **FAST).fit(X, y)
    assert clf.pruning_.params_after == clf.pruning_.params_before
    # The same training budget as every pruning method: 15 + 2 epochs.
    assert (clf.n_iter_, clf.fine_tune_n_iter_) == (15, 2)


@pytest.mark.parametrize("n_rounds", [1, 3])
def test_policy_none_trains_as_many_epochs_as_pruning(iris, n_rounds):
    X, y = iris
    params = dict(random_state=0, n_rounds=n_rounds, **FAST)
    fits = {
        policy: BanditPrunedMLPClassifier(policy=policy, **params).fit(X, y)
        for policy in ("none", "ucb1", "obs")
    }
    # training, the fine-tunings between rounds, the final one
    expected = 15 + n_rounds * 2
    assert {p: len(f.history_) for p, f in fits.items()} == dict.fromkeys(
        fits, expected
    )
    assert all(f.n_iter_ + f.fine_tune_n_iter_ == expected for f in fits.values())
    # Removing nothing is pruning too: the same epochs.
    kept = BanditPrunedMLPClassifier(prune_ratio=0.0, **params).fit(X, y)
    assert kept.n_iter_ + kept.fine_tune_n_iter_ == expected


# -- bad input -------------------------------------------------------------------

X_OK = np.random.default_rng(0).normal(size=(30, 3))
Y_OK = np.arange(30) % 2


def _nan_X():
    X = X_OK.copy()
    X[3, 1] = np.nan
    return X


def _inf_X():
    X = X_OK.copy()
    X[0, 0] = np.inf
    return X


BAD_FITS = [
    ("NaN in X", {}, _nan_X(), Y_OK, ValueError, "NaN"),
    ("inf in X", {}, _inf_X(), Y_OK, ValueError, "infinity"),
    ("NaN in y", {}, X_OK, np.where(Y_OK == 0, np.nan, 1.0), ValueError, "NaN"),
    ("strings in X", {}, np.array([["a", "b", "c"]] * 30), Y_OK, ValueError, "string"),
    ("empty X", {}, np.empty((0, 3)), np.empty(0), ValueError, "0 sample"),
    ("one sample", {}, X_OK[:1], Y_OK[:1], ValueError, "1 sample"),
    # (one class is accepted, as by MLPClassifier: tests/test_mlp_dropin.py)
    ("continuous y", {}, X_OK, X_OK[:, 0], ValueError, "Unknown label type"),
    ("y length", {}, X_OK, Y_OK[:10], ValueError, "inconsistent numbers of samples"),
    ("1-d X", {}, X_OK[:, 0], Y_OK, ValueError, "Expected 2D array"),
    ("unknown policy", {"policy": "greedy"}, X_OK, Y_OK, ValueError, "policy"),
    ("ratio 1", {"prune_ratio": 1.0}, X_OK, Y_OK, ValueError, "prune_ratio"),
    ("negative ratio", {"prune_ratio": -0.1}, X_OK, Y_OK, ValueError, "prune_ratio"),
    ("zero budget", {"budget": 0}, X_OK, Y_OK, ValueError, "budget"),
    ("negative budget", {"budget": -3}, X_OK, Y_OK, ValueError, "budget"),
    (
        "unknown activation",
        {"activation": "gelu2"},
        X_OK,
        Y_OK,
        ValueError,
        "activation",
    ),
    # (a layer of one unit is kept unpruned: tests/test_mlp_dropin.py)
    ("hidden size 0", {"hidden_layer_sizes": (0,)}, X_OK, Y_OK, ValueError, "> 0"),
    (
        "hidden sizes float",
        {"hidden_layer_sizes": (2.5,)},
        X_OK,
        Y_OK,
        ValueError,
        "integers",
    ),
    (
        "zero learning_rate_init",
        {"learning_rate_init": 0},
        X_OK,
        Y_OK,
        ValueError,
        "learning_rate_init",
    ),
    ("bad scope", {"scope": "net"}, X_OK, Y_OK, ValueError, "scope"),
    ("bad compensate", {"compensate": "median"}, X_OK, Y_OK, ValueError, "compensate"),
    (
        # ceil(0.03 * 30) = 1 validation row (scikit-learn's split and
        # skorch's hold out the ceiling; 0.05 would hold out 2, enough)
        "validation split too small",
        {"early_stopping": True, "validation_fraction": 0.03},
        X_OK,
        Y_OK,
        ValueError,
        "validation split",
    ),
]


@pytest.mark.parametrize(
    "params,X,y,error,match",
    [case[1:] for case in BAD_FITS],
    ids=[c[0] for c in BAD_FITS],
)
def test_bad_input_fit(params, X, y, error, match):
    clf = BanditPrunedMLPClassifier(random_state=0, **{**FAST, **params})
    with pytest.raises(error, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "module_")


def test_wrong_number_of_features_at_predict():
    clf = BanditPrunedMLPClassifier(random_state=0, **FAST).fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match="X has 2 features"):
        clf.predict(X_OK[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(_nan_X())


def test_regressor_rejects_accuracy_reward_and_nan_target():
    with pytest.raises(ValueError, match="accuracy"):
        BanditPrunedMLPRegressor(reward="accuracy", **FAST).fit(X_OK, X_OK[:, 0])
    y = X_OK[:, 0].copy()
    y[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BanditPrunedMLPRegressor(**FAST).fit(X_OK, y)


def test_diverging_training_raises_clear_error():
    X = X_OK * 1e6
    reg = BanditPrunedMLPRegressor(
        (8,), learning_rate_init=1e6, solver="sgd", max_iter=20
    )
    with pytest.raises(ValueError, match="Training diverged"):
        reg.fit(X, X_OK[:, 0])
    assert not hasattr(reg, "module_")


def test_missing_labels_in_pandas_targets_are_named():
    labels = np.where(Y_OK, "b", "a")
    categorical = pd.Series(labels, dtype="category")
    categorical[3] = np.nan
    strings = pd.Series(labels, dtype="string")
    strings[3] = pd.NA
    objects = pd.Series(labels, dtype=object)
    objects[3] = None
    for y, match in [(categorical, "NaN"), (strings, "NaN"), (objects, "None")]:
        clf = BanditPrunedMLPClassifier(random_state=0, **FAST)
        with pytest.raises(ValueError, match=f"Input y contains {match}"):
            clf.fit(X_OK, y)


def test_a_class_weighted_zero_keeps_its_class():
    """As scikit-learn: a weight of 0 is allowed. The class is not learned,
    but it stays a class (``classes_``, a ``predict_proba`` column): the
    model's output has the shape the labels promise."""
    clf = BanditPrunedMLPClassifier(class_weight={0: 0.0, 1: 1.0}, **FAST)
    clf.fit(X_OK, Y_OK)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.predict_proba(X_OK).shape == (30, 2)
    assert clf.module_[-1].out_features == 2


# -- warm start ------------------------------------------------------------------


@pytest.fixture
def warm():
    clf = BanditPrunedMLPClassifier(warm_start=True, random_state=0, **FAST)
    return clf.fit(X_OK, Y_OK)


@pytest.mark.parametrize(
    "change,match",
    [
        (
            dict(hidden_layer_sizes=(8,)),
            r"hidden_layer_sizes=\(8,\) differs from the previous fit's \(16,\)",
        ),
        (
            dict(hidden_layer_sizes=(16, 16)),
            r"hidden_layer_sizes=\(16, 16\) differs from the previous fit's \(16,\)",
        ),
        (
            dict(activation="tanh"),
            "activation='tanh' differs from the previous fit's 'relu'",
        ),
    ],
)
def test_warm_start_refuses_a_changed_architecture(warm, change, match):
    warm.set_params(**change)
    with pytest.raises(ValueError, match=match + ".* warm_start=False"):
        warm.fit(X_OK, Y_OK)
    # Without warm_start the new architecture is built.
    warm.set_params(warm_start=False).fit(X_OK, Y_OK)
    assert warm.unpruned_module_[0].out_features == warm.hidden_layer_sizes[0]


@pytest.mark.parametrize(
    "y,shown",
    [
        (Y_OK + 1, r"\[1 2\]"),  # the same number of outputs, other meanings
        (np.where(Y_OK, "b", "a"), r"\['a' 'b'\]"),
        (np.arange(30) % 3, r"\[0 1 2\]"),
    ],
)
def test_warm_start_refuses_other_classes(warm, y, shown):
    with pytest.raises(
        ValueError,
        match=r"warm_start can only be used where `y` has the same classes as in "
        r"the previous call to fit. Previously got \[0 1\], `y` has " + shown,
    ):
        warm.fit(X_OK, y)


def test_warm_start_refuses_multilabel_after_classes(warm):
    with pytest.raises(ValueError, match="warm_start .* multilabel"):
        warm.fit(X_OK, np.stack([Y_OK, 1 - Y_OK], 1))


def test_warm_start_continues_with_the_same_classes(warm):
    before = warm.unpruned_module_
    warm.fit(X_OK, Y_OK[::-1])  # the same classes in another order
    assert warm.unpruned_module_ is not before
    np.testing.assert_array_equal(warm.classes_, [0, 1])


# -- caching the trained network ----------------------------------------------


def _cache_calls(memory_dir):
    """Number of cached training results stored under ``memory_dir``."""
    return sum(1 for _ in memory_dir.rglob("*.pt"))


def test_memory_reuses_base_network_across_pruning_settings(iris, tmp_path):
    X, y = iris
    params = dict(random_state=0, memory=str(tmp_path), **FAST)
    first = BanditPrunedMLPClassifier(policy="ucb1", prune_ratio=0.5, **params).fit(
        X, y
    )
    assert _cache_calls(tmp_path) == 1
    hit = BanditPrunedMLPClassifier(policy="ucb1", prune_ratio=0.5, **params).fit(X, y)
    fresh = BanditPrunedMLPClassifier(
        policy="ucb1", prune_ratio=0.5, **FAST, random_state=0
    )
    fresh.fit(X, y)
    np.testing.assert_array_equal(hit.predict_proba(X), fresh.predict_proba(X))
    np.testing.assert_array_equal(hit.predict_proba(X), first.predict_proba(X))
    for pruning in [{"prune_ratio": 0.25}, {"policy": "magnitude"}, {"budget": 2}]:
        BanditPrunedMLPClassifier(**{**params, **pruning}).fit(X, y)
    assert _cache_calls(tmp_path) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"max_iter": 16},
        {"learning_rate_init": 0.02},
        {"batch_size": 32},
        {"hidden_layer_sizes": (17,)},
        {"activation": "tanh"},
        {"alpha": 1e-3},
        {"solver": "sgd"},
        {"random_state": 1},
        {"learning_rate": "cosine"},
    ],
)
def test_memory_misses_when_training_changes(iris, tmp_path, change):
    X, y = iris
    params = dict(random_state=0, memory=str(tmp_path), **FAST)
    BanditPrunedMLPClassifier(**params).fit(X, y)
    BanditPrunedMLPClassifier(**{**params, **change}).fit(X, y)
    assert _cache_calls(tmp_path) == 2


def test_memory_misses_when_data_changes(iris, tmp_path):
    X, y = iris
    params = dict(random_state=0, memory=str(tmp_path), **FAST)
    BanditPrunedMLPClassifier(**params).fit(X, y)
    X2 = X.copy()
    X2[0, 0] += 1e-3
    BanditPrunedMLPClassifier(**params).fit(X2, y)
    assert _cache_calls(tmp_path) == 2


@pytest.mark.training_cache
def test_training_cache_trains_once_per_fold_in_a_search(iris, monkeypatch):
    from sklearn.model_selection import GridSearchCV

    from skbandit.estimators import _training, training_cache

    trainings = []
    train = _training.train_network
    monkeypatch.setattr(
        _training,
        "train_network",
        lambda *args, **kwargs: trainings.append(1) or train(*args, **kwargs),
    )
    X, y = iris
    grid = GridSearchCV(
        BanditPrunedMLPClassifier(random_state=0, **FAST),
        {"policy": ["ucb1", "magnitude"], "prune_ratio": [0.25, 0.5]},
        cv=3,
    ).fit(X, y)
    # 3 folds and the refit on all rows: 4 trainings for 13 fits.
    assert len(trainings) == len(training_cache) == 4
    assert not grid.best_estimator_.train_cache_hit_  # the refit's rows are new


@pytest.mark.training_cache
@pytest.mark.parametrize(
    "Estimator", [BanditPrunedMLPClassifier, BanditPrunedMLPRegressor]
)
def test_training_cache_hit_equals_a_training(iris, Estimator):
    from skbandit.estimators import training_cache

    X, y = iris
    params = dict(random_state=0, policy="ucb1", **FAST)
    first = Estimator(**params).fit(X, y)
    hit = Estimator(**params).fit(X, y)
    assert (first.train_cache_hit_, hit.train_cache_hit_) == (False, True)
    training_cache.max_bytes = 0
    assert len(training_cache) == 0
    fresh = Estimator(**params).fit(X, y)
    assert not fresh.train_cache_hit_
    for fitted in (first, hit):
        np.testing.assert_array_equal(fitted.predict(X), fresh.predict(X))
        assert fitted.loss_curve_ == fresh.loss_curve_
        assert fitted.n_iter_ == fresh.n_iter_
        for a, b in zip(fitted.coefs_, fresh.coefs_):
            np.testing.assert_array_equal(a, b)


@pytest.mark.training_cache
def test_training_cache_skips_unseeded_and_warm_started_fits(iris):
    from skbandit.estimators import training_cache

    X, y = iris
    a = BanditPrunedMLPClassifier(random_state=None, **FAST).fit(X, y)
    b = BanditPrunedMLPClassifier(random_state=None, **FAST).fit(X, y)
    # Unseeded fits draw their own seeds: different keys, no hit.
    assert not a.train_cache_hit_ and not b.train_cache_hit_
    warm = BanditPrunedMLPClassifier(random_state=0, warm_start=True, **FAST)
    warm.fit(X, y)
    size = len(training_cache)
    warm.fit(X, y)
    assert not warm.train_cache_hit_ and len(training_cache) == size


# -- rounds, targets, automatic budget ---------------------------------------


def test_rounds_fine_tune_between_rounds(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(random_state=0, n_rounds=3, **FAST).fit(X, y)
    assert clf.pruning_.n_rounds == 3
    assert clf.module_[0].out_features == 8
    # training, two fine-tunings between rounds, the final one
    assert clf.n_iter_ == 15 and clf.fine_tune_n_iter_ == 2 * 2 + 2


def test_every_fine_tuning_draws_its_own_batch_order(iris, monkeypatch):
    from skbandit.estimators import _base

    seeds = []
    fit_module = _base.fit_module

    def recording(*args, seed, phase="training", **kwargs):
        seeds.append((phase, seed))
        return fit_module(*args, seed=seed, phase=phase, **kwargs)

    monkeypatch.setattr(_base, "fit_module", recording)
    X, y = iris
    BanditPrunedMLPClassifier(random_state=0, n_rounds=3, **FAST).fit(X, y)
    tunings = [seed for phase, seed in seeds if phase == "fine-tuning"]
    assert len(tunings) == 3  # two between rounds, the final one
    assert len(set(tunings)) == 3


def test_target_params_and_auto_budget(iris):
    X, y = iris
    params = {**FAST, "budget": "auto", "max_budget": 8}
    clf = BanditPrunedMLPClassifier(random_state=0, target_params=0.5, **params)
    clf.fit(X, y)
    assert clf.pruning_.params_after <= round(0.5 * clf.pruning_.params_before)
    assert clf.pruning_.total_pulls <= 8 * 16


def test_set_pulls_in_estimator(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(random_state=0, pull="set", **FAST).fit(X, y)
    assert clf.module_[0].out_features == 8


class _GlobalStreamLoader:
    """skorch's default ``DataLoader``, drawing from ``generator``'s stream as
    from the global generator: a ``DataLoader`` given a generator draws
    differently (no sampler seed)."""

    def __init__(self, dataset, generator, **kwargs):
        from torch.utils.data import DataLoader

        self.loader = DataLoader(dataset, **kwargs)
        self.generator = generator

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.generator.get_state())
            batches = list(self.loader)
            self.generator.set_state(torch.get_rng_state())
        return iter(batches)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_tensor_batches_equal_dataloader(iris, monkeypatch, early_stopping):
    """The fast iterator gives the same fit as skorch's default DataLoader."""
    from skbandit.estimators import _training

    X, y = iris
    params = dict(random_state=3, early_stopping=early_stopping, **FAST)
    fast = BanditPrunedMLPClassifier(**params).fit(X, y)
    monkeypatch.setattr(_training, "TensorBatches", _GlobalStreamLoader)
    reference = BanditPrunedMLPClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(fast.predict_proba(X), reference.predict_proba(X))
    assert fast.loss_curve_ == reference.loss_curve_


def test_memory_retrains_instead_of_trusting_a_damaged_entry(iris, tmp_path):
    import torch

    X, y = iris
    params = dict(random_state=0, memory=str(tmp_path), **FAST)
    fresh = BanditPrunedMLPClassifier(**FAST, random_state=0).fit(X, y)
    BanditPrunedMLPClassifier(**params).fit(X, y)
    (entry,) = tmp_path.rglob("*.pt")
    # Damage that still loads: one weight changed, the digest kept.
    stored = torch.load(entry, weights_only=True)
    stored["tensors"]["0.weight"][0, 0] += 1.0
    torch.save(stored, entry)
    with pytest.warns(RuntimeWarning, match="fail their digest"):
        again = BanditPrunedMLPClassifier(**params).fit(X, y)
    assert not again.train_cache_hit_
    np.testing.assert_array_equal(again.predict_proba(X), fresh.predict_proba(X))
    # The entry was stored again, sound: the next fit trusts it silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        hit = BanditPrunedMLPClassifier(**params).fit(X, y)
    assert hit.train_cache_hit_
    np.testing.assert_array_equal(hit.predict_proba(X), fresh.predict_proba(X))


def test_small_fits_run_on_one_thread_and_restore_the_callers(iris, monkeypatch):
    import torch

    from skbandit.estimators import _base, _threads

    seen = []
    real_prune = _base.prune

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_prune(*args, **kwargs)

    monkeypatch.setattr(_base, "prune", spy)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        X, y = iris
        BanditPrunedMLPClassifier(random_state=0, **FAST).fit(X, y)
        assert seen == [1]
        assert torch.get_num_threads() == 2
        # A large problem keeps the caller's threads.
        monkeypatch.setattr(_threads, "SMALL_BATCH_WORK", 0)
        BanditPrunedMLPClassifier(random_state=0, **FAST).fit(X, y)
        assert seen == [1, 2]
    finally:
        torch.set_num_threads(previous)


def test_warns_when_pruning_has_fewer_rows_than_units():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    y = np.array([0, 1, 1, 0])
    with pytest.warns(RuntimeWarning, match="on 4 rows, fewer than the 16 units"):
        BanditPrunedMLPClassifier(
            random_state=0, **{**FAST, "hidden_layer_sizes": (16, 8)}
        ).fit(X, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Pruning scores the units")
        # Unpruned, or as many rows as units: nothing to warn about.
        BanditPrunedMLPClassifier(policy="none", random_state=0, **FAST).fit(X, y)
        BanditPrunedMLPClassifier(
            random_state=0, **{**FAST, "hidden_layer_sizes": (4,)}
        ).fit(X, y)


def test_no_cache_no_hashing(iris, monkeypatch):
    """With the in-process cache off (as in these tests) and no memory=, a
    fit does not hash its data."""
    from skbandit._cache import TensorCache

    def refuse(self, **call):
        raise AssertionError("hashed the data without any cache")

    monkeypatch.setattr(TensorCache, "key", refuse)
    X, y = iris
    clf = BanditPrunedMLPClassifier(random_state=0, **FAST).fit(X, y)
    assert not clf.train_cache_hit_
