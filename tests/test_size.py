"""prune_ratio="auto": the pruning path, the chosen size, the refit rule."""

import matplotlib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor
from skbandit.estimators import smallest_within_tolerance
from skbandit.estimators._path import validation_split
from skbandit.pruning import PruningPath

matplotlib.use("Agg")

FAST = dict(max_iter=20, learning_rate_init=1e-2, fine_tune_epochs=1, budget=2)


@pytest.fixture(scope="module")
def classification():
    X, y = make_classification(
        n_samples=240, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=200, n_features=6, noise=5.0, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def fitted(classification):
    X, y = classification
    return BanditPrunedMLPClassifier(
        (10, 6), prune_ratio="auto", max_score_drop=0.05, random_state=0, **FAST
    ).fit(X, y)


def _accuracy(module, X, y):
    with torch.no_grad():
        logits = module(torch.as_tensor(X, dtype=torch.float32))
    return float((logits.argmax(1).numpy() == y).mean())


def test_path_is_monotone_in_size(fitted):
    path = fitted.path_
    units = np.array(path.units)
    assert units[0].tolist() == [10, 6]
    assert (np.diff(units, axis=0) <= 0).all()
    assert (np.diff(units.sum(axis=1)) < 0).all()
    assert (np.diff(path.params) < 0).all()
    assert (np.diff(path.mac_ratio) < 0).all() and path.mac_ratio[0] == 1
    assert units[-1].tolist() == [1, 1]
    assert len(path.scores) == len(path.units) == len(path.eligible)


def test_chosen_network_is_the_path_step_and_the_fitted_module(fitted):
    path = fitted.path_
    assert fitted.chosen_ == path.chosen
    sizes = [fitted.module_[i].out_features for i in (0, 2)]
    assert tuple(sizes) == path.units[path.chosen]
    assert fitted.pruning_.params_after == path.params[path.chosen]
    for layer, before, after in zip(fitted.pruning_.layers, path.units[0], sizes):
        assert (layer.units_before, layer.units_after) == (before, after)
        assert len(layer.removed) == before - after


def test_chosen_step_is_the_smallest_within_tolerance(fitted):
    path = fitted.path_
    scores = np.asarray(path.scores)
    # Measured from the best score on the path, which is the unpruned
    # network's unless removal raised it.
    assert path.reference == scores.max() >= scores[0]
    within = np.flatnonzero(scores >= scores.max() - 0.05)
    assert path.chosen == within[-1]
    frame = path.to_frame()
    assert frame["chosen"].sum() == 1 and frame.index[frame["chosen"]][0] == path.chosen
    assert frame.loc[path.chosen, "score_drop"] <= 0.05


def test_tolerance_holds_on_the_validation_data(classification):
    X, y = classification
    X_val, y_val = X[:60], y[:60]
    clf = BanditPrunedMLPClassifier(
        (10,),
        prune_ratio="auto",
        max_score_drop=0.03,
        policy="magnitude",
        random_state=0,
        **{**FAST, "fine_tune_epochs": 0},
    ).fit(X[60:], y[60:], validation_data=(X_val, y_val))
    path = clf.path_
    # The path scores are the accuracies on validation_data.
    assert path.scores[0] == _accuracy(clf.unpruned_module_, X_val, y_val)
    assert path.scores[path.chosen] == _accuracy(clf.module_, X_val, y_val)
    assert clf.score(X_val, y_val) >= max(path.scores) - 0.03 >= path.scores[0] - 0.03


def test_early_stopping_rows_are_the_validation_rows(regression):
    X, y = regression
    reg = BanditPrunedMLPRegressor(
        (8,),
        prune_ratio="auto",
        early_stopping=True,
        validation_fraction=0.2,
        policy="magnitude",
        random_state=0,
        **FAST,
    ).fit(X, y)
    # The unpruned network is early stopping's best, scored on its rows.
    assert reg.path_.scores[0] == pytest.approx(reg.best_validation_score_, abs=1e-5)
    assert reg.path_.score_name == "R²"


def test_validation_split_is_stratified_and_disjoint():
    y = np.repeat([0, 1, 2], [30, 20, 10])
    fit, valid = validation_split(y, 0.2, True, seed=3)
    assert len(np.intersect1d(fit, valid)) == 0 and len(fit) + len(valid) == 60
    assert np.bincount(y[valid]).tolist() == [6, 4, 2]


def test_random_state_reproduces_the_path(classification):
    X, y = classification
    est = BanditPrunedMLPClassifier(
        (8,), prune_ratio="auto", random_state=1, policy="ucb1", **FAST
    )
    a, b = clone(est).fit(X, y), clone(est).fit(X, y)
    assert a.path_.units == b.path_.units and a.path_.scores == b.path_.scores
    assert a.chosen_ == b.chosen_
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_zero_drop_keeps_the_unpruned_size_unless_removal_does_not_hurt(
    classification,
):
    X, y = classification
    clf = BanditPrunedMLPClassifier(
        (8,), prune_ratio="auto", max_score_drop=0, random_state=0, **FAST
    ).fit(X, y)
    scores = np.asarray(clf.path_.scores)
    assert scores[clf.chosen_] == scores.max() >= scores[0]
    assert (scores[clf.chosen_ + 1 :] < scores.max()).all()


@pytest.mark.parametrize(
    "policy", ["magnitude", "obs", "random", "activation", "thompson"]
)
def test_every_policy_gives_a_path(classification, policy):
    X, y = classification
    clf = BanditPrunedMLPClassifier(
        (6,), prune_ratio="auto", policy=policy, random_state=0, **FAST
    ).fit(X, y)
    assert clf.path_.units[-1] == (1,)
    assert clf.module_[0].out_features == clf.path_.units[clf.chosen_][0]
    assert clf.pruning_.method == policy


def test_global_scope_path_removes_units_overall(regression):
    X, y = regression
    reg = BanditPrunedMLPRegressor(
        (6, 4), prune_ratio="auto", scope="global", random_state=0, **FAST
    ).fit(X, y)
    totals = [sum(u) for u in reg.path_.units]
    assert totals[0] == 10 and totals[-1] == 2
    assert (np.diff(totals) < 0).all()


@pytest.mark.parametrize("target", [{"target_params": 0.5}, {"target_latency": 0.5}])
def test_targets_are_hard_limits(classification, target):
    X, y = classification
    clf = BanditPrunedMLPClassifier(
        (10,),
        prune_ratio="auto",
        max_score_drop=1.0,  # any size is within the tolerance
        policy="magnitude",
        random_state=0,
        **target,
        **FAST,
    ).fit(X, y)
    path = clf.path_
    assert not path.eligible[0] and all(path.eligible[1:])
    limit = path.params[0] * 0.5 if "target_params" in target else None
    if limit is not None:
        assert path.params[1] <= limit
    else:
        assert path.mac_ratio[1] <= 0.5
    # The whole path is within a tolerance of 1: the smallest is chosen.
    assert clf.chosen_ == len(path) - 1


def test_target_wins_over_the_tolerance(classification):
    X, y = classification
    clf = BanditPrunedMLPClassifier(
        (10,),
        prune_ratio="auto",
        max_score_drop=0,
        target_params=40,
        policy="magnitude",
        random_state=0,
        **FAST,
    ).fit(X, y)
    assert clf.chosen_ >= 1
    assert clf.path_.params[clf.chosen_] <= 40


def test_in_a_pipeline_and_a_grid_search(classification):
    X, y = classification
    pipe = make_pipeline(
        StandardScaler(),
        BanditPrunedMLPClassifier(
            (8,), prune_ratio="auto", policy="magnitude", random_state=0, **FAST
        ),
    )
    search = GridSearchCV(
        pipe,
        {"banditprunedmlpclassifier__max_score_drop": [0.0, 0.1]},
        cv=2,
    ).fit(X, y)
    best = search.best_estimator_[-1]
    assert isinstance(best.path_, PruningPath)
    assert best.get_params()["prune_ratio"] == "auto"
    assert search.score(X, y) > 0.5


def test_fixed_ratio_has_no_path(classification):
    X, y = classification
    clf = BanditPrunedMLPClassifier(
        (8,), prune_ratio=0.5, policy="magnitude", random_state=0, **FAST
    ).fit(X, y)
    assert clf.path_ is None and clf.chosen_ is None


def test_to_frame_and_plot(fitted):
    frame = fitted.path_.to_frame()
    assert list(frame.columns) == [
        "units",
        "hidden_units",
        "params",
        "param_ratio",
        "mac_ratio",
        "score",
        "score_drop",
        "within_tolerance",
        "eligible",
        "chosen",
    ]
    ax = fitted.path_.plot()
    assert ax.get_xlabel() == "parameters" and "accuracy" in ax.get_ylabel()
    assert "PruningPath(steps=" in repr(fitted.path_)


@pytest.mark.parametrize("drop", [-0.1, "big"])
def test_bad_max_score_drop(classification, drop):
    X, y = classification
    clf = BanditPrunedMLPClassifier(prune_ratio="auto", max_score_drop=drop)
    with pytest.raises(InvalidParameterError, match="max_score_drop"):
        clf.fit(X, y)


def test_bad_prune_ratio_string(classification):
    X, y = classification
    with pytest.raises(InvalidParameterError, match="prune_ratio"):
        BanditPrunedMLPClassifier(prune_ratio="smallest").fit(X, y)


def test_too_few_validation_rows(classification):
    X, y = classification
    clf = BanditPrunedMLPClassifier(
        (4,), prune_ratio="auto", validation_fraction=0.01, **FAST
    )
    # 3 validation rows for 3 classes is enough; 20 rows * 0.01 is not.
    with pytest.raises(ValueError, match="validation rows"):
        clf.fit(X[:20], y[:20])
    with pytest.raises(ValueError, match="validation rows"):
        clf.fit(X, y, validation_data=(X[:1], y[:1]))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"policy": "none"}, "policy='none'"),
        ({"n_rounds": 2}, "n_rounds=1"),
    ],
)
def test_auto_refuses_settings_it_cannot_use(classification, params, match):
    X, y = classification
    clf = BanditPrunedMLPClassifier(prune_ratio="auto", **params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_validation_data_needs_auto_and_known_labels(classification):
    X, y = classification
    with pytest.raises(ValueError, match="only used with prune_ratio='auto'"):
        BanditPrunedMLPClassifier().fit(X, y, validation_data=(X, y))
    clf = BanditPrunedMLPClassifier((4,), prune_ratio="auto", **FAST)
    with pytest.raises(ValueError, match="labels that y does not have"):
        clf.fit(X, y, validation_data=(X[:10], np.full(10, 7)))
    assert not hasattr(clf, "module_")


# -- the refit rule -------------------------------------------------------------


def _results(params, means, stds=None, n_splits=4):
    results = {"params": params, "mean_test_score": np.asarray(means)}
    results["std_test_score"] = np.asarray(stds if stds else [0.0] * len(means))
    for i in range(n_splits):
        results[f"split{i}_test_score"] = results["mean_test_score"]
    return results


def test_refit_picks_the_smallest_within_tolerance():
    params = [{"clf__hidden_layer_sizes": (h,)} for h in (4, 16, 64, 256)]
    results = _results(params, [0.80, 0.89, 0.90, 0.905])
    assert smallest_within_tolerance(0.0)(results) == 3
    assert smallest_within_tolerance(0.02)(results) == 1
    assert smallest_within_tolerance(0.2)(results) == 0


def test_refit_one_standard_error_rule():
    params = [{"prune_ratio": r} for r in (0.0, 0.5, 0.9)]
    results = _results(params, [0.90, 0.88, 0.80], stds=[0.04, 0.01, 0.01])
    assert smallest_within_tolerance(0.0)(results) == 0
    # The best's standard error: 0.04 / sqrt(4) = 0.02.
    assert smallest_within_tolerance(0.0, standard_error=True)(results) == 1


def test_refit_ties_go_to_the_better_score_and_size_must_be_readable():
    params = [{"hidden_layer_sizes": (8,), "alpha": a} for a in (1e-4, 1e-2)]
    assert smallest_within_tolerance(0.1)(_results(params, [0.8, 0.85])) == 1
    with pytest.raises(ValueError, match="size=callable"):
        smallest_within_tolerance()(_results([{"alpha": 1.0}], [0.5]))
    with pytest.raises(ValueError, match="max_score_drop"):
        smallest_within_tolerance(-1)


def test_refit_in_grid_search(classification):
    X, y = classification
    search = GridSearchCV(
        BanditPrunedMLPClassifier((8,), policy="magnitude", random_state=0, **FAST),
        {"prune_ratio": [0.0, 0.5, 0.75]},
        cv=2,
        refit=smallest_within_tolerance(1.0),
    ).fit(X, y)
    assert search.best_params_ == {"prune_ratio": 0.75}
    assert search.best_estimator_.module_[0].out_features == 2
