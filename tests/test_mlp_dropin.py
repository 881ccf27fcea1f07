"""Our estimators as drop-ins for scikit-learn's MLPClassifier / MLPRegressor:
the same parameter names and meanings, sample and class weights, sparse and
multilabel data, warm starts, fitted attributes and clear errors."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import (
    load_breast_cancer,
    load_iris,
    make_classification,
    make_friedman1,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.linear_model import LinearRegression
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor
from skbandit.estimators._training import _Net

FAST = dict(
    hidden_layer_sizes=(16,),
    max_iter=15,
    batch_size=32,
    learning_rate_init=0.01,
    fine_tune_epochs=2,
    budget=4,
    random_state=0,
)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def imbalanced():
    X, y = make_classification(
        400, 6, n_informative=3, weights=[0.92, 0.08], class_sep=0.6, random_state=1
    )
    return StandardScaler().fit_transform(X), y


# -- parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (BanditPrunedMLPClassifier, MLPClassifier),
        (BanditPrunedMLPRegressor, MLPRegressor),
    ],
)
def test_every_mlp_parameter_has_the_same_name_and_default(ours, theirs):
    mine, sklearn = ours().get_params(), theirs().get_params()
    assert set(sklearn) <= set(mine)
    assert {k: mine[k] for k in sklearn} == sklearn


def test_mlpclassifier_grid_runs_unchanged(iris):
    X, y = iris
    grid = {
        "hidden_layer_sizes": [(16,)],
        "alpha": [1e-4, 1e-3],
        "learning_rate_init": [1e-3],
        "max_iter": [20],
        "solver": ["adam", "sgd"],
        "batch_size": [32],
    }
    search = GridSearchCV(
        BanditPrunedMLPClassifier(fine_tune_epochs=1, budget=2, random_state=0),
        grid,
        cv=3,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # ... and is scikit-learn's grid: MLPClassifier accepts it as is.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GridSearchCV(MLPClassifier(), grid, cv=2, error_score="raise").fit(X, y)


LBFGS = dict(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=200, random_state=0)


def _held_out(X, y):
    return train_test_split(StandardScaler().fit_transform(X), y, random_state=0)


@pytest.mark.parametrize("load", [load_iris, load_breast_cancer])
def test_lbfgs_classifies_as_well_as_mlpclassifiers(load):
    """Full-batch L-BFGS, then the default pruning (half the neurons) and
    fine-tuning: held-out accuracy within 0.05 of scikit-learn's L-BFGS
    with the same hidden sizes and max_iter (2 of iris's 38 test rows, 7 of
    breast cancer's 143). The initial weights differ (torch's draws, not
    scikit-learn's) and the network is half as wide, so equality is not
    expected; 0.05 still tells a trained network from a failed one."""
    X_train, X_test, y_train, y_test = _held_out(*load(return_X_y=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = MLPClassifier(**LBFGS).fit(X_train, y_train)
        ours = BanditPrunedMLPClassifier(**LBFGS).fit(X_train, y_train)
    assert ours.module_[0].out_features < 20  # pruned, then fine-tuned
    assert ours.score(X_test, y_test) >= theirs.score(X_test, y_test) - 0.05


def test_lbfgs_regresses_as_well_as_mlpregressors():
    """R² on held-out Friedman #1 rows within 0.05 of scikit-learn's L-BFGS
    (same hidden sizes, max_iter, alpha; margin as for the classifier)."""
    X_train, X_test, y_train, y_test = _held_out(
        *make_friedman1(n_samples=400, random_state=0)
    )
    params = dict(LBFGS, alpha=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = MLPRegressor(**params).fit(X_train, y_train)
        ours = BanditPrunedMLPRegressor(**params).fit(X_train, y_train)
    assert ours.score(X_test, y_test) >= theirs.score(X_test, y_test) - 0.05


def test_lbfgs_fine_tunes_to_convergence_by_default():
    """fine_tune_epochs="auto": max_iter L-BFGS iterations (stopped by the
    training's rule), not 5, which barely move a full-batch quasi-Newton
    fit; stochastic solvers keep 5 epochs."""
    X, y = make_regression(200, 10, bias=20.0, noise=100.0, random_state=7)
    y = (y - y.mean()) / y.std()
    params = dict(solver="lbfgs", hidden_layer_sizes=50, tol=1e-3, random_state=1)
    auto = BanditPrunedMLPRegressor(**params).fit(X, y)
    five = BanditPrunedMLPRegressor(**params, fine_tune_epochs=5).fit(X, y)
    assert auto._fine_tune_epochs() == auto.max_iter == 200
    assert five.fine_tune_n_iter_ == 5 < auto.fine_tune_n_iter_ <= 200
    # scikit-learn's test_lbfgs_regression asks R² > 0.98 of these settings.
    assert auto.score(X, y) > 0.98 > five.score(X, y)
    assert BanditPrunedMLPRegressor()._fine_tune_epochs() == 5
    assert BanditPrunedMLPClassifier(solver="sgd")._fine_tune_epochs() == 5


def test_lbfgs_is_reproducible_and_ignores_minibatch_options(iris):
    """Same seed, same predictions; batch_size, shuffle and early_stopping
    change nothing (full batch, no validation split, as in scikit-learn)."""
    X, y = iris
    params = dict(FAST, solver="lbfgs", max_iter=30)
    first = BanditPrunedMLPClassifier(**params).fit(X, y)
    again = BanditPrunedMLPClassifier(**params).fit(X, y)
    other = BanditPrunedMLPClassifier(
        **dict(params, batch_size=7, shuffle=False, early_stopping=True)
    ).fit(X, y)
    expected = first.predict_proba(X)
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    np.testing.assert_array_equal(other.predict_proba(X), expected)
    assert other.validation_scores_ is None
    # One epoch per L-BFGS iteration, training then fine-tuning.
    assert len(first.history_) <= 30 + params["fine_tune_epochs"]


@pytest.mark.parametrize("max_fun", [5, 12])
def test_lbfgs_max_fun_limits_loss_evaluations(iris, monkeypatch, max_fun):
    """max_fun bounds the loss evaluations of each training phase (training,
    fine-tuning), where max_iter alone would take more."""
    X, y = iris
    calls = []
    get_loss = _Net.get_loss

    def counting(self, *args, training=False, **kwargs):
        calls.append(training)
        return get_loss(self, *args, training=training, **kwargs)

    monkeypatch.setattr(_Net, "get_loss", counting)
    BanditPrunedMLPClassifier(
        **dict(FAST, solver="lbfgs", max_iter=200, fine_tune_epochs=0),
        policy="none",
        max_fun=max_fun,
    ).fit(X, y)
    assert max_fun - 1 <= sum(calls) <= max_fun


def test_lbfgs_warns_when_max_fun_or_max_iter_stop_it_as_sklearn(iris):
    X, y = iris
    settings = dict(solver="lbfgs", hidden_layer_sizes=(16,), random_state=0)
    for limits, match in [
        (dict(max_iter=200, max_fun=5), "max_fun=5"),
        (dict(max_iter=3), "after 3 iteration"),
    ]:
        with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
            MLPClassifier(**settings, **limits).fit(X, y)
        with pytest.warns(ConvergenceWarning, match=match):
            BanditPrunedMLPClassifier(**settings, **limits, policy="none").fit(X, y)


@pytest.mark.parametrize(
    "estimator", [BanditPrunedMLPClassifier, BanditPrunedMLPRegressor]
)
def test_one_unit_layers_without_pruning(iris, estimator):
    """MLPClassifier accepts hidden_layer_sizes=(1,); so do ours. Pruning keeps
    a unit per layer, so a layer of one unit stays whole, with a warning, and
    the other layers are pruned as usual."""
    X, y = iris
    fitted = estimator(**dict(FAST, hidden_layer_sizes=(1, 3)), policy="none").fit(X, y)
    assert [c.shape[1] for c in fitted.coefs_[:-1]] == [1, 3]
    assert np.all(np.isfinite(fitted.predict(X).astype(float)))
    with pytest.warns(UserWarning, match="layer of one unit"):
        pruned = estimator(**dict(FAST, hidden_layer_sizes=(1, 4))).fit(X, y)
    assert [c.shape[1] for c in pruned.coefs_[:-1]] == [1, 2]
    assert np.all(np.isfinite(pruned.predict(X).astype(float)))


@pytest.mark.parametrize("fit_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("predict_dtype", [np.float32, np.float64])
def test_dtypes_are_sklearns(iris, fit_dtype, predict_dtype):
    """coefs_ and intercepts_ in the fit's X dtype, and predictions in the
    dtype scikit-learn's MLPs give (float32 only when both are float32)."""
    X, y = iris
    expected = np.result_type(fit_dtype, predict_dtype)
    X_fit, X_predict = X.astype(fit_dtype), X.astype(predict_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = MLPClassifier(max_iter=2).fit(X_fit, y)
        theirs_reg = MLPRegressor(max_iter=2).fit(X_fit, X[:, 0])
    assert theirs.predict_proba(X_predict).dtype == expected
    assert theirs_reg.predict(X_predict).dtype == expected
    clf = BanditPrunedMLPClassifier(**FAST).fit(X_fit, y)
    reg = BanditPrunedMLPRegressor(**FAST).fit(X_fit, X[:, 0])
    for fitted in (clf, reg):
        for array in fitted.coefs_ + fitted.intercepts_:
            assert array.dtype == fit_dtype
    assert clf.predict_proba(X_predict).dtype == expected
    assert clf.predict_log_proba(X_predict).dtype == expected
    assert reg.predict(X_predict).dtype == expected
    assert reg.predict(sp.csr_matrix(X_predict)).dtype == expected


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_regressor_fits_one_sample_as_mlpregressor(iris, solver):
    """MLPRegressor fits a single sample; so does ours (pruned on that row).
    The classifier still needs two samples: one sample is one class."""
    X, _ = iris
    params = dict(FAST, solver=solver, max_iter=50)
    fitted = BanditPrunedMLPRegressor(**params).fit(X[:1], [3.0])
    assert fitted.predict(X[:1]) == pytest.approx([3.0], abs=0.1)
    weighted = BanditPrunedMLPRegressor(**params).fit(
        X[:3], [3.0, 1.0, 2.0], sample_weight=[1.0, 0.0, 0.0]
    )
    assert weighted.predict(X[:1]) == pytest.approx([3.0], abs=0.1)
    with pytest.raises(ValueError, match=r"1 sample\(s\)"):
        BanditPrunedMLPClassifier(**params).fit(X[:1], [0])


def test_alpha_is_sklearns_l2_penalty():
    """loss = weighted mean loss + 0.5 * alpha * ||W||² / sum of batch weights."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)
    )
    net = _Net(module, criterion=torch.nn.CrossEntropyLoss, alpha=0.3)
    net.set_params(criterion__reduction="none").initialize()
    X, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(module(X), y, reduction="none")
        squares = module[0].weight.pow(2).sum() + module[2].weight.pow(2).sum()
        expected = (w * losses).sum() / w.sum() + 0.5 * 0.3 * squares / w.sum()
        loss = net.get_loss(module(X), (y, w), X)
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_tol_stops_training_as_sklearn_does(iris, early_stopping):
    """With a tolerance no epoch can meet, both stop after the same epochs."""
    X, y = iris
    params = dict(
        hidden_layer_sizes=(8,),
        tol=100.0,
        n_iter_no_change=3,
        max_iter=50,
        early_stopping=early_stopping,
        random_state=0,
    )
    # fine_tune_epochs=0: "none" otherwise trains a pruned net's fine-tuning
    # epochs too (equal budgets), which scikit-learn's MLP does not have.
    ours = BanditPrunedMLPClassifier(policy="none", fine_tune_epochs=0, **params)
    ours.fit(X, y)
    theirs = MLPClassifier(**params).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 5
    if early_stopping:
        assert len(ours.validation_scores_) == 5
        assert ours.best_validation_score_ == max(ours.validation_scores_)
        assert ours.best_loss_ is None
    else:
        assert ours.validation_scores_ is None and ours.best_validation_score_ is None
        assert ours.best_loss_ == min(ours.loss_curve_)


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive", "cosine"])
def test_sgd_learning_rate_schedules(iris, learning_rate):
    X, y = iris
    clf = BanditPrunedMLPClassifier(
        solver="sgd", learning_rate=learning_rate, **FAST
    ).fit(X, y)
    assert clf.score(X, y) > 0.6


@pytest.mark.parametrize("learning_rate", ["constant", "adaptive"])
def test_adaptive_learning_rate_divides_instead_of_stopping(iris, learning_rate):
    """With ``"adaptive"``, epochs without improvement divide the learning
    rate by 5 until it is below 1e-6, as in scikit-learn."""
    X, y = iris
    params = dict(
        hidden_layer_sizes=(8,),
        solver="sgd",
        learning_rate=learning_rate,
        tol=100.0,
        n_iter_no_change=2,
        max_iter=30,
        random_state=0,
    )
    ours = BanditPrunedMLPClassifier(policy="none", fine_tune_epochs=0, **params)
    ours.fit(X, y)
    theirs = MLPClassifier(**params).fit(X, y)
    assert (
        ours.n_iter_ == theirs.n_iter_ == {"constant": 4, "adaptive": 19}[learning_rate]
    )


# -- training attributes ----------------------------------------------------------


def _fit_both(ours, theirs, X, y, **params):
    """Our fit and scikit-learn's on the same data; the warnings of each."""
    fits, caught = [], []
    for cls in (ours, theirs):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            fits.append(cls(**params).fit(X, y))
        caught.append([w for w in record if w.category is ConvergenceWarning])
    return fits, caught


@pytest.mark.parametrize("policy", ["obs", "none"])
def test_n_iter_and_loss_curve_count_training_epochs_only(iris, policy):
    """n_iter_ and loss_curve_ are the training's, as scikit-learn's; the
    epochs after it (fine-tuning, or policy="none"'s continued training) have
    attributes of their own."""
    X, y = iris
    params = dict(FAST, n_rounds=2, n_iter_no_change=np.inf, policy=policy)
    clf = BanditPrunedMLPClassifier(**params).fit(X, y)
    theirs = MLPClassifier(
        hidden_layer_sizes=(16,), max_iter=15, batch_size=32, learning_rate_init=0.01
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
    assert clf.n_iter_ == theirs.n_iter_ == 15
    assert len(clf.loss_curve_) == len(theirs.loss_curve_) == 15
    # Two rounds of 2 epochs: between the rounds and after the last one,
    # or, with nothing to prune, the same 4 epochs of training on.
    assert clf.fine_tune_n_iter_ == len(clf.fine_tune_loss_curve_) == 2 * 2
    assert len(clf.history_) == clf.n_iter_ + clf.fine_tune_n_iter_
    assert clf.loss_curve_ + clf.fine_tune_loss_curve_ == [
        row["train_loss"] for row in clf.history_
    ]
    assert clf.best_loss_ == min(clf.loss_curve_)


def test_validation_scores_has_one_score_per_iteration(iris):
    X, y = iris
    params = dict(
        hidden_layer_sizes=(8,),
        early_stopping=True,
        n_iter_no_change=2,
        learning_rate_init=0.05,
        max_iter=200,
        random_state=0,
    )
    (ours, theirs), _ = _fit_both(
        BanditPrunedMLPClassifier, MLPClassifier, X, y, **params
    )
    assert ours.n_iter_ < 200 and ours.fine_tune_n_iter_ > 0
    assert len(ours.validation_scores_) == ours.n_iter_ == len(ours.loss_curve_)
    assert len(theirs.validation_scores_) == theirs.n_iter_


def test_convergence_warning_when_max_iter_is_reached(iris):
    X, y = iris
    params = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    (ours, theirs), caught = _fit_both(
        BanditPrunedMLPClassifier, MLPClassifier, X, y, **params
    )
    assert [len(c) for c in caught] == [1, 1]
    assert str(caught[0][0].message) == str(caught[1][0].message)
    assert "Maximum iterations (3) reached" in str(caught[0][0].message)
    assert ours.n_iter_ == theirs.n_iter_ == 3


@pytest.mark.parametrize("max_iter", [3, 50])
def test_no_convergence_warning_when_tol_stops_training(iris, max_iter):
    """tol=100 stops both after 3 epochs (n_iter_no_change=1), also when that
    is max_iter: the rule, not max_iter, ended training."""
    X, y = iris
    params = dict(
        hidden_layer_sizes=(8,),
        tol=100.0,
        n_iter_no_change=1,
        max_iter=max_iter,
        random_state=0,
    )
    (ours, theirs), caught = _fit_both(
        BanditPrunedMLPClassifier, MLPClassifier, X, y, **params
    )
    assert ours.n_iter_ == theirs.n_iter_ == 3
    assert caught == [[], []]


def test_n_iter_no_change_inf_never_stops_early(iris):
    X, y = iris
    params = dict(
        hidden_layer_sizes=(8,), tol=100.0, n_iter_no_change=np.inf, max_iter=12
    )
    (ours, theirs), caught = _fit_both(
        BanditPrunedMLPClassifier, MLPClassifier, X, y, random_state=0, **params
    )
    assert ours.n_iter_ == theirs.n_iter_ == 12
    assert [len(c) for c in caught] == [1, 1]


@pytest.mark.parametrize("early_stopping", [False, True])
def test_t_counts_the_samples_training_saw(iris, early_stopping):
    X, y = iris
    params = dict(
        hidden_layer_sizes=(8,),
        n_iter_no_change=np.inf,
        max_iter=4,
        early_stopping=early_stopping,
        random_state=0,
    )
    (ours, theirs), _ = _fit_both(
        BanditPrunedMLPClassifier, MLPClassifier, X, y, **params
    )
    assert ours.t_ == theirs.t_ == 4 * (135 if early_stopping else 150)


def _targets(kind):
    X, y = make_classification(
        60, 5, n_informative=3, n_classes=3, n_clusters_per_class=1, random_state=0
    )
    if kind == "binary":
        return X, y % 2
    if kind == "multilabel":
        return make_multilabel_classification(60, 5, n_classes=3, random_state=0)
    if kind == "regression":
        return X, y.astype(float)
    return X, y


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
def test_fitted_attributes_match_sklearns(kind):
    X, y = _targets(kind)
    ours, theirs = (
        (BanditPrunedMLPRegressor, MLPRegressor)
        if kind == "regression"
        else (BanditPrunedMLPClassifier, MLPClassifier)
    )
    params = dict(hidden_layer_sizes=(6, 4), max_iter=5, random_state=0)
    (mine, sklearn), _ = _fit_both(ours, theirs, X, y, **params)
    for name in ("n_layers_", "out_activation_", "n_outputs_", "n_iter_", "t_"):
        assert getattr(mine, name) == getattr(sklearn, name), name
    assert mine.loss_ == mine.loss_curve_[-1]


def test_regressor_loss_is_on_sklearns_scale():
    """best_loss_ is half the mean squared error of y (plus the penalty), as
    MLPRegressor's, though training standardises y. A linear network (identity
    activation) on a linear target: both converge to the least-squares fit,
    whose half MSE is the noise's; the epoch losses average minibatch losses
    taken while the weights still move, and alpha's penalty (1e-4) is
    negligible, hence 5%."""
    X, y = make_regression(200, 4, noise=10.0, random_state=0)
    params = dict(
        hidden_layer_sizes=(8,),
        activation="identity",
        learning_rate_init=0.01,
        max_iter=1000,
        batch_size=50,
        random_state=0,
    )
    ours = BanditPrunedMLPRegressor(policy="none", fine_tune_epochs=0, **params)
    (ours, theirs), caught = _fit_both(lambda **p: ours, MLPRegressor, X, y, **params)
    assert caught == [[], []]  # both converged
    floor = 0.5 * np.mean((LinearRegression().fit(X, y).predict(X) - y) ** 2)
    assert theirs.best_loss_ == pytest.approx(floor, rel=0.05)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=0.05)
    assert ours.loss_ == ours.loss_curve_[-1]


# -- partial_fit ------------------------------------------------------------------


def test_partial_fit_needs_classes_on_the_first_call(iris):
    X, y = iris
    for estimator in (BanditPrunedMLPClassifier(), MLPClassifier()):
        with pytest.raises(ValueError, match="classes must be passed on the first"):
            estimator.partial_fit(X, y)


def test_partial_fit_trains_one_epoch_per_call_as_sklearn(iris):
    X, y = iris
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    ours, theirs = BanditPrunedMLPClassifier(**params), MLPClassifier(**params)
    halves = [(X[::2], y[::2]), (X[1::2], y[1::2])]
    for i in range(30):
        for estimator in (ours, theirs):
            estimator.partial_fit(*halves[i % 2], classes=np.unique(y))
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    # n_iter_: this call's epochs; loss_curve_ and t_: every call's.
    assert ours.n_iter_ == 1 and ours.t_ == 30 * 75
    assert len(ours.loss_curve_) == len(theirs.loss_curve_) == 30
    assert ours.loss_ == ours.loss_curve_[-1] < ours.loss_curve_[0]
    assert ours.score(X, y) > 0.8
    # Nothing pruned: the network of hidden_layer_sizes, and no report.
    assert ours.coefs_[0].shape == (4, 16) and ours.pruning_ is None
    assert ours.fine_tune_n_iter_ == 0


def test_partial_fit_classes_need_not_all_be_in_y(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier((8,), random_state=0)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.predict_proba(X).shape == (150, 3)
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X, y + 1)
    with pytest.raises(ValueError, match="not the same as on last call"):
        clf.partial_fit(X, y, classes=[0, 1])


def test_prune_after_partial_fit_with_a_warm_start(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(**FAST)
    for _ in range(10):
        clf.partial_fit(X, y, classes=np.unique(y))
    clf.set_params(warm_start=True, max_iter=1, prune_ratio=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.module_[0].out_features == 8 and clf.n_iter_ == 1
    clf.partial_fit(X, y)  # trains the pruned network on
    assert clf.module_[0].out_features == 8 and len(clf.loss_curve_) == 2


def test_regressor_partial_fit(iris):
    X, y = iris
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    ours, theirs = BanditPrunedMLPRegressor(**params), MLPRegressor(**params)
    target = X[:, 0] * 100 + 50
    for _ in range(20):
        ours.partial_fit(X, target)
        theirs.partial_fit(X, target)
    assert ours.n_iter_ == theirs.n_iter_ == 1 and ours.t_ == theirs.t_ == 20 * 150
    assert len(ours.loss_curve_) == 20
    assert ours.out_activation_ == theirs.out_activation_ == "identity"
    assert ours.score(X, target) > 0.9
    # The first call's standardisation.
    assert ours.y_mean_ == pytest.approx(target.mean())
    assert ours.loss_ == ours.loss_curve_[-1] < ours.loss_curve_[0]
    with pytest.raises(ValueError, match="2 targets, the network was fitted on 1"):
        ours.partial_fit(X, np.c_[target, target])


def test_partial_fit_is_missing_with_lbfgs():
    assert hasattr(BanditPrunedMLPClassifier(), "partial_fit")
    assert hasattr(BanditPrunedMLPRegressor(solver="sgd"), "partial_fit")
    for estimator in (
        BanditPrunedMLPClassifier(solver="lbfgs"),
        BanditPrunedMLPRegressor(solver="lbfgs"),
        MLPClassifier(solver="lbfgs"),
    ):
        assert not hasattr(estimator, "partial_fit")


# -- sample and class weights ----------------------------------------------------


def test_zero_weights_equal_dropping_the_rows(iris):
    X, y = iris
    keep = np.random.default_rng(0).random(len(y)) > 0.3
    weighted = BanditPrunedMLPClassifier(**FAST).fit(X, y, sample_weight=keep * 1.0)
    dropped = BanditPrunedMLPClassifier(**FAST).fit(X[keep], y[keep])
    np.testing.assert_array_equal(weighted.predict_proba(X), dropped.predict_proba(X))


def test_uniform_weights_equal_no_weights(iris):
    X, y = iris
    ones = BanditPrunedMLPClassifier(**FAST).fit(X, y, sample_weight=np.ones(len(y)))
    plain = BanditPrunedMLPClassifier(**FAST).fit(X, y)
    np.testing.assert_allclose(ones.predict_proba(X), plain.predict_proba(X), atol=1e-6)


def test_weights_raise_minority_recall(imbalanced):
    X, y = imbalanced
    # The setting this was measured in: weights move the bandit's removals too.
    params = dict(FAST, max_iter=40, policy="ucb1")
    plain = BanditPrunedMLPClassifier(**params).fit(X, y)
    weights = compute_sample_weight("balanced", y)
    weighted = BanditPrunedMLPClassifier(**params).fit(X, y, sample_weight=weights)
    assert (
        recall_score(y, weighted.predict(X)) > recall_score(y, plain.predict(X)) + 0.1
    )


def test_balanced_class_weight_equals_balanced_sample_weight(imbalanced):
    X, y = imbalanced
    by_class = BanditPrunedMLPClassifier(class_weight="balanced", **FAST).fit(X, y)
    by_sample = BanditPrunedMLPClassifier(**FAST).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y)
    )
    np.testing.assert_array_equal(by_class.predict_proba(X), by_sample.predict_proba(X))
    by_dict = BanditPrunedMLPClassifier(class_weight={0: 1.0, 1: 11.5}, **FAST)
    assert recall_score(y, by_dict.fit(X, y).predict(X)) > 0.5


def test_task_specific_parameters(iris):
    """As in scikit-learn: class_weight is the classifier's, loss the
    regressor's (squared error or Poisson: test_poisson_loss_matches_the_glm;
    the classifier's ``loss`` is a fixed attribute, as MLPClassifier's)."""
    X, y = iris
    assert "class_weight" not in BanditPrunedMLPRegressor().get_params()
    assert "loss" not in BanditPrunedMLPClassifier().get_params()
    assert BanditPrunedMLPClassifier().loss == MLPClassifier().loss == "log_loss"
    with pytest.raises(ValueError, match="'loss' parameter"):
        BanditPrunedMLPRegressor(loss="absolute_error").fit(X, y)


def test_weighted_regression(iris):
    X, y = iris
    target = X[:, 0] + (y == 2) * 3.0
    weights = np.where(y == 2, 5.0, 1.0)
    reg = BanditPrunedMLPRegressor(**FAST).fit(X, target, sample_weight=weights)
    assert reg.score(X, target, sample_weight=weights) > 0.5


def test_column_vector_y_is_one_target_as_in_mlpregressor(iris):
    X, y = iris
    column = (X[:, 0] + y)[:, None]
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        reg = BanditPrunedMLPRegressor(**FAST).fit(X, column)
    flat = BanditPrunedMLPRegressor(**FAST).fit(X, column.ravel())
    assert reg.predict(X).shape == (len(X),)
    assert reg.n_outputs_ == 1
    np.testing.assert_array_equal(reg.predict(X), flat.predict(X))


# -- sparse and multilabel data ----------------------------------------------------


def test_sparse_X_is_never_densified_whole(monkeypatch):
    X, y = make_classification(3000, 2000, n_informative=10, random_state=0)
    X[np.abs(X) < 1.5] = 0
    X = sp.csr_matrix(X)
    toarray = sp.csr_matrix.toarray

    def rows_only(matrix, *args, **kwargs):
        assert matrix.shape[0] < X.shape[0], "the whole matrix was densified"
        return toarray(matrix, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", rows_only)
    monkeypatch.setattr(sp.csr_matrix, "todense", rows_only)
    params = dict(FAST, hidden_layer_sizes=(8,), max_iter=5, batch_size=200)
    clf = BanditPrunedMLPClassifier(**params).fit(X, y)
    assert clf.score(X, y) > 0.7
    assert clf.predict_proba(X).shape == (3000, 2)


def test_sparse_and_dense_fits_agree(iris):
    X, y = iris
    sparse = BanditPrunedMLPClassifier(**FAST).fit(sp.csr_matrix(X), y)
    dense = BanditPrunedMLPClassifier(**FAST).fit(X, y)
    np.testing.assert_allclose(
        sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X), atol=1e-6
    )


def test_multilabel_classification():
    X, Y = make_multilabel_classification(300, 10, n_classes=4, random_state=0)
    X = StandardScaler().fit_transform(X)
    clf = BanditPrunedMLPClassifier(**dict(FAST, max_iter=40)).fit(X, Y)
    assert clf.predict(X).shape == Y.shape
    assert set(np.unique(clf.predict(X))) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_array_equal(clf.classes_, np.arange(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = MLPClassifier((16,), max_iter=40, random_state=0).fit(X, Y)
    assert clf.score(X, Y) > theirs.score(X, Y) - 0.15


# -- warm start and fitted attributes ---------------------------------------------


def test_warm_start_continues_training(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(**dict(FAST, max_iter=5, tol=0.0)).fit(X, y)
    first = clf.loss_curve_[:5]
    clf.set_params(warm_start=True).fit(X, y)
    assert clf.loss_curve_[0] < first[0]
    assert clf.loss_curve_[0] < first[-1] + 0.05
    with pytest.raises(ValueError, match="warm_start needs data"):
        clf.fit(X[:, :3], y)


def test_coefs_and_intercepts_describe_the_pruned_network(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(**dict(FAST, hidden_layer_sizes=(16, 8))).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (4,), (3,)]
    hidden = X
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        hidden = np.maximum(hidden @ W + b, 0)
    logits = hidden @ clf.coefs_[-1] + clf.intercepts_[-1]
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[logits.argmax(1)])


def test_fit_times_separate_the_phases_and_show_cache_hits(iris, tmp_path):
    X, y = iris
    clf = BanditPrunedMLPClassifier(memory=str(tmp_path), **FAST).fit(X, y)
    assert set(clf.fit_times_) == {"train", "prune", "fine_tune"}
    assert all(t >= 0 for t in clf.fit_times_.values())
    assert not clf.train_cache_hit_
    clf.set_params(policy="thompson").fit(X, y)
    assert clf.train_cache_hit_


def test_pruning_report_is_short_and_tabular(iris):
    X, y = iris
    clf = BanditPrunedMLPClassifier(**dict(FAST, hidden_layer_sizes=(16, 8))).fit(X, y)
    text = repr(clf.pruning_)
    assert len(text) < 200 and "units=[16→8, 8→4]" in text
    frame = clf.pruning_.to_frame()
    assert list(frame["units_after"]) == [8, 4]
    assert list(frame["removed"]) == [8, 4]
    assert frame["pulls"].sum() == clf.pruning_.total_pulls
    assert "<table" in clf.pruning_._repr_html_()


# -- clear errors ----------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_without_cuda_is_a_clear_error(iris):
    X, y = iris
    with pytest.raises(ValueError, match="CUDA is not available in this torch build"):
        BanditPrunedMLPClassifier(device="cuda").fit(X, y)


def test_misspelt_policy_suggests_the_closest_name(iris):
    X, y = iris
    with pytest.raises(ValueError, match="Did you mean 'ucb1'") as error:
        BanditPrunedMLPClassifier(policy="ucb").fit(X, y)
    assert "['activation', 'epsilon_greedy', 'exp3'" in str(error.value)


def test_string_features_hint_at_encoding():
    X = np.array([["blue", 1.0], ["red", 2.0], ["blue", 3.0]], dtype=object)
    with pytest.raises(ValueError, match="OneHotEncoder"):
        BanditPrunedMLPClassifier().fit(X, [0, 1, 0])


# -- scikit-learn's semantics, edge cases and the public API ----------------------

#: Public names of a fitted MLPClassifier / MLPRegressor that ours may lack,
#: each deliberately (docs/user_guide.rst, "A drop-in for scikit-learn's MLP",
#: lists the differences in behaviour). None at present.
DELIBERATE_MISSING = {"MLPClassifier": set(), "MLPRegressor": set()}


def _public(estimator):
    return {name for name in dir(estimator) if not name.startswith("_")}


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (BanditPrunedMLPClassifier, MLPClassifier),
        (BanditPrunedMLPRegressor, MLPRegressor),
    ],
)
def test_every_public_attribute_and_method_of_a_fitted_mlp_exists(
    iris, ours, theirs, early_stopping
):
    X, y = iris
    params = dict(max_iter=5, random_state=0, early_stopping=early_stopping)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mine = ours(**dict(FAST, **params)).fit(X, y)
        sklearn = theirs(**params).fit(X, y)
    missing = _public(sklearn) - _public(mine) - DELIBERATE_MISSING[theirs.__name__]
    assert not missing
    for name in _public(sklearn) - DELIBERATE_MISSING[theirs.__name__]:
        assert callable(getattr(mine, name)) == callable(getattr(sklearn, name)), name


def test_partial_fit_calls_train_as_fits_epochs():
    """n partial_fit calls on the same data train exactly as n epochs of
    fit's training: the optimizer's state (momentum) and the batch orders
    carry over, as scikit-learn's test_partial_fit_regression expects."""
    X, y = make_regression(200, 10, noise=10.0, random_state=7)
    params = dict(
        hidden_layer_sizes=(16,),
        solver="sgd",
        momentum=0.9,
        learning_rate_init=0.001,
        batch_size=32,
        random_state=1,
    )
    fitted = BanditPrunedMLPRegressor(
        max_iter=20, policy="none", fine_tune_epochs=0, **params
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted.fit(X, y)
    calls = BanditPrunedMLPRegressor(**params)
    for _ in range(fitted.n_iter_):
        calls.partial_fit(X, y)
    assert calls.loss_curve_ == fitted.loss_curve_
    np.testing.assert_array_equal(calls.predict(X), fitted.predict(X))


def test_partial_fit_edge_cases_as_sklearn():
    clf = BanditPrunedMLPClassifier(solver="sgd", hidden_layer_sizes=(4,))
    clf.partial_fit([[3, 2]], [0], classes=[0, 1])  # one sample
    with pytest.raises(ValueError, match="not the same as on last call"):
        clf.partial_fit([[3, 2]], [0], classes=[1, 2])
    X, Y = make_multilabel_classification(50, random_state=0, return_indicator=True)
    multi = BanditPrunedMLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    for _ in range(3):
        multi.partial_fit(X, Y, classes=np.arange(Y.shape[1]))
    assert multi.predict(X).shape == Y.shape and multi.out_activation_ == "logistic"
    early = BanditPrunedMLPClassifier(early_stopping=True, **FAST)
    with pytest.raises(ValueError, match="partial_fit does not support early_stop"):
        early.partial_fit(X, Y[:, 0], classes=[0, 1])


def test_one_class_is_accepted_as_mlpclassifier():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # A batch within the 20 rows: a larger one warns (as scikit-learn).
        clf = BanditPrunedMLPClassifier(**dict(FAST, batch_size=8)).fit(
            X, np.full(20, 7)
        )
    assert list(clf.classes_) == [7] and set(clf.predict(X)) == {7}
    np.testing.assert_allclose(clf.predict_proba(X), 1.0)


def test_poisson_loss_matches_the_glm():
    """scikit-learn's test_mlp_vs_poisson_glm_equivalent, on one seed."""
    from sklearn.linear_model import PoissonRegressor

    rng = np.random.default_rng(0)
    X = np.linspace(0, 1, 100)
    y = rng.poisson(np.exp(X + 1))
    X = X.reshape(-1, 1)
    glm = PoissonRegressor(alpha=0, tol=1e-7).fit(X, y)
    params = dict(hidden_layer_sizes=(1,), activation="identity", alpha=0)
    params.update(solver="lbfgs", tol=1e-7, random_state=1)
    with pytest.warns(UserWarning, match="layer of one unit"):
        mlp = BanditPrunedMLPRegressor(loss="poisson", **params).fit(X, y)
    assert mlp.out_activation_ == "exp"
    np.testing.assert_allclose(mlp.predict(X), glm.predict(X), rtol=1e-4)
    with pytest.raises(ValueError, match="non-negative"):
        BanditPrunedMLPRegressor(loss="poisson", **params).fit(X, -y)


def test_divergence_as_sklearn(iris):
    """A diverging training records the non-finite scores and keeps the best
    weights with early_stopping; without, scikit-learn's error."""
    X, y = iris
    params = dict(
        hidden_layer_sizes=(100,),
        activation="identity",
        solver="sgd",
        learning_rate_init=1,
        max_iter=20,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = BanditPrunedMLPRegressor(early_stopping=True, **params).fit(X, y)
    assert np.isnan(reg.validation_scores_[-1])
    assert np.all(np.isfinite(reg.predict(X)))
    with pytest.raises(ValueError, match="Solver produced non-finite parameter"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            BanditPrunedMLPRegressor(**params).fit(X, y)


def test_early_stopping_split_errors_in_sklearns_words():
    with pytest.raises(ValueError, match=r"Classes with too few members are: \['True'"):
        BanditPrunedMLPClassifier(early_stopping=True).fit(
            [[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1]
        )
    X, y = make_regression(2, 5, random_state=0)
    with pytest.raises(ValueError, match="The validation set is too small"):
        BanditPrunedMLPRegressor(early_stopping=True).fit(X, y)


def test_verbose_prints_sklearns_iteration_lines(iris, capsys):
    X, y = iris
    BanditPrunedMLPClassifier(verbose=2, **FAST).partial_fit(X, y, classes=[0, 1, 2])
    assert "Iteration 1, loss = " in capsys.readouterr().out


def test_regressor_standardises_the_rows_training_sees():
    """The target's mean and scale are those of the weighted training rows:
    a zero weight equals dropping the row, an integer weight repeating it."""
    rng = np.random.default_rng(0)
    X, y = make_regression(60, 4, noise=5.0, bias=30.0, random_state=0)
    keep = rng.random(len(y)) > 0.3
    weighted = BanditPrunedMLPRegressor(**FAST).fit(X, y, sample_weight=keep * 1.0)
    dropped = BanditPrunedMLPRegressor(**FAST).fit(X[keep], y[keep])
    np.testing.assert_array_equal(weighted.predict(X), dropped.predict(X))
    counts = rng.integers(1, 4, len(y))
    repeated = BanditPrunedMLPRegressor(**FAST).fit(
        np.repeat(X, counts, axis=0), np.repeat(y, counts)
    )
    by_weight = BanditPrunedMLPRegressor(**FAST).fit(X, y, sample_weight=counts)
    np.testing.assert_allclose(by_weight.y_mean_, repeated.y_mean_, rtol=1e-12)
    np.testing.assert_allclose(by_weight.y_scale_, repeated.y_scale_, rtol=1e-12)


def test_weights_too_uneven_for_float32_targets_are_named():
    # A row of weight 1e-44 beside rows of 1e38 lies ~1e41 deviations from
    # the weighted mean: not a float32 target, and not the features' fault.
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match="exceeds float32.*sample_weight"):
        BanditPrunedMLPRegressor(**FAST).fit(
            X, [0.0, 0.0, 0.0, 1.0], sample_weight=[1e38, 1e38, 1e38, 1e-44]
        )


def test_partial_fit_refuses_the_cosine_schedule(iris):
    # It anneals over max_iter epochs; one call is one epoch, so every call
    # after the first trained at rate 0 without a word.
    X, y = iris
    clf = BanditPrunedMLPClassifier(**dict(FAST, learning_rate="cosine"))
    with pytest.raises(ValueError, match="partial_fit does not support.*cosine"):
        clf.partial_fit(X, y, classes=np.unique(y))
    assert not hasattr(clf, "module_")


def test_fits_whatever_torchs_default_dtype(iris):
    X, y = iris
    expected = BanditPrunedMLPClassifier(**FAST).fit(X, y).predict_proba(X)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = BanditPrunedMLPClassifier(**FAST).fit(X, y).predict_proba(X)
    finally:
        torch.set_default_dtype(previous)
    np.testing.assert_array_equal(got, expected)


def test_a_batch_larger_than_the_data_warns_as_sklearn(iris):
    X, y = iris
    params = dict(FAST, batch_size=1000)
    with pytest.warns(UserWarning, match="larger than sample size"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, batch_size=1000).fit(X, y)
    with pytest.warns(UserWarning, match="larger than sample size"):
        BanditPrunedMLPClassifier(**params).fit(X, y)
    with pytest.warns(UserWarning, match="larger than sample size"):
        BanditPrunedMLPClassifier(**params).partial_fit(X, y, classes=np.unique(y))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*larger than sample size")
        BanditPrunedMLPClassifier(**dict(params, solver="lbfgs")).fit(X, y)
