"""BanditPrunedMLPClassifier."""

import sys
from numbers import Real

import numpy as np
import scipy.sparse as sp
import torch.nn.functional as F
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
)
from sklearn.utils.validation import check_array, column_or_1d
from torch import nn

from .._options import DEFAULTS, ESTIMATOR_POLICY
from ._base import BaseBanditPrunedMLP
from ._docs import shared_parameters_doc
from ._path import MAX_SCORE_DROP, PATH_STEP

__all__ = ["BanditPrunedMLPClassifier"]


@shared_parameters_doc
class BanditPrunedMLPClassifier(ClassifierMixin, BaseBanditPrunedMLP):
    """Multi-layer perceptron classifier whose hidden neurons are pruned by a bandit.

    ``fit`` trains the network (through skorch, with the parameters and the
    stopping rule of scikit-learn's ``MLPClassifier``), then treats every
    hidden neuron as an arm of a multi-armed bandit: a pull removes the
    neuron on a sampled minibatch and turns the change it makes into a
    safe-removal reward in ``[0, 1]``. When the budget is spent, the
    ``prune_ratio`` of neurons with the highest estimated reward are removed
    physically (smaller weight matrices) and the network is fine-tuned.
    ``predict`` runs the compact network. The loss is the cross-entropy of a
    softmax output, or for multilabel targets (an indicator matrix) the
    binary cross-entropy of one sigmoid output per label.

    The defaults are the best configuration we measured (see
    :ref:`method-defaults`): UCB1 over pulls that remove a neuron in the
    company of the neurons the bandit currently plans to remove, with the
    least-squares compensation removal applies, rewarded by how little the
    outputs move. ``BanditPrunedMLPClassifier(**PAPER_SETTINGS)``
    (:data:`skbandit.pruning.PAPER_SETTINGS`) is the paper's configuration:
    UCB1 over single zero-masked neurons, loss reward, no compensation.

    Read more in the :ref:`User Guide <user_guide>` and :ref:`method`.

    %(parameters)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (``0 .. n_labels - 1`` for multilabel targets).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` had string column names.
    module_ : torch.nn.Sequential
        The trained, pruned (physically smaller) network; outputs logits.
    unpruned_module_ : torch.nn.Sequential
        The trained network before pruning (``warm_start`` continues it).
    coefs_ : list of ndarray
        Weights of ``module_`` in scikit-learn's layout: ``coefs_[i]`` of
        shape ``(n_in, n_out)`` for layer ``i``.
    intercepts_ : list of ndarray
        Biases of ``module_``: ``intercepts_[i]`` of shape ``(n_out,)``.
    pruning_ : skbandit.pruning.PruningReport
        What was measured and removed: per layer the units before/after,
        removed indices, scores and pulls per unit; the loss before and after
        pruning and after fine-tuning, parameter counts and times.
    n_outputs_ : int
        Outputs as scikit-learn counts them: 1 for two classes, the number
        of classes (or of labels, multilabel) otherwise. The network has one
        logit per class, two for two classes.
    out_activation_ : str
        scikit-learn's name of the output activation: ``"logistic"`` for two
        classes (a softmax of two logits gives the same probabilities) and
        multilabel, ``"softmax"`` otherwise.
    n_layers_ : int
        Layers, input and output included (``len(hidden_layer_sizes) + 2``).
    history_ : list of dict
        Per-epoch record: the ``n_iter_`` training epochs, then the
        ``fine_tune_n_iter_`` epochs after them.
    n_iter_ : int
        Epochs of training (of the unpruned network), at most ``max_iter``;
        fine-tuning epochs are not counted, as in scikit-learn.
    loss_curve_ : list of float
        Training loss (the penalised objective, averaged over the epoch's
        minibatches) of each of the ``n_iter_`` training epochs.
    loss_ : float
        The training loss of the last training epoch.
    best_loss_ : float or None
        Lowest of ``loss_curve_`` (None with ``early_stopping``).
    t_ : int
        Training samples the solver saw in training: ``n_iter_`` times the
        rows trained on (less the validation split with ``early_stopping``).
    fine_tune_n_iter_ : int
        Epochs after training: the fine-tuning between pruning rounds and
        after the last one. ``policy="none"`` prunes nothing and trains on
        for these epochs (``n_rounds * fine_tune_epochs``), so that every
        method gets the same total number of epochs.
    fine_tune_loss_curve_ : list of float
        Training loss of each of those epochs.
    validation_scores_ : list of float or None
        Accuracy on the validation split after each of the ``n_iter_``
        training epochs (with ``early_stopping``, else None).
    best_validation_score_ : float or None
        The best of ``validation_scores_``; its weights were kept.
    fit_times_ : dict
        Seconds per phase: ``"train"`` (the unpruned network, or loading it
        from ``memory``), ``"prune"`` (scoring and removal) and
        ``"fine_tune"`` (between rounds and after pruning).
    train_cache_hit_ : bool
        Whether the trained network came from the ``memory`` cache.
    path_ : skbandit.pruning.PruningPath or None
        With ``prune_ratio="auto"``: per step of the pruning path the units
        per layer, parameters, MAC ratio and validation accuracy, the
        chosen step, ``to_frame()`` and ``plot()``. None for a numeric
        ``prune_ratio`` (one prune, no path).
    chosen_ : int or None
        Index in ``path_`` of the network kept (None without a path).

    See Also
    --------
    BanditPrunedMLPRegressor : The same for regression.
    skbandit.pruning.prune : Prune any torch model.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skbandit import BanditPrunedMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(
    ...     StandardScaler(),
    ...     BanditPrunedMLPClassifier((32,), policy="ucb1", prune_ratio=0.5,
    ...                               max_iter=50, learning_rate_init=1e-2,
    ...                               random_state=0),
    ... ).fit(X, y)
    >>> clf[-1].module_[0].out_features
    16
    >>> round(clf.score(X, y), 2) >= 0.9
    True
    """

    _parameter_constraints = {
        **BaseBanditPrunedMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    #: As MLPClassifier's (an attribute there too, not a parameter): the loss
    #: is the log loss (cross-entropy; binary per label for multilabel).
    loss = "log_loss"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        tol=1e-4,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        warm_start=False,
        class_weight=None,
        policy=ESTIMATOR_POLICY,
        prune_ratio=DEFAULTS.prune_ratio,
        max_score_drop=MAX_SCORE_DROP,
        path_step=PATH_STEP,
        budget=DEFAULTS.budget,
        max_budget=DEFAULTS.max_budget,
        pull=DEFAULTS.pull,
        n_rounds=DEFAULTS.n_rounds,
        target_params=DEFAULTS.target_params,
        target_latency=DEFAULTS.target_latency,
        reward=DEFAULTS.reward,
        scope=DEFAULTS.scope,
        compensate=DEFAULTS.compensate,
        pull_batch_size=DEFAULTS.pull_batch_size,
        arms_per_round=DEFAULTS.arms_per_round,
        fine_tune_epochs="auto",
        memory=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            tol=tol,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            warm_start=warm_start,
            policy=policy,
            prune_ratio=prune_ratio,
            max_score_drop=max_score_drop,
            path_step=path_step,
            budget=budget,
            max_budget=max_budget,
            pull=pull,
            n_rounds=n_rounds,
            target_params=target_params,
            target_latency=target_latency,
            reward=reward,
            scope=scope,
            compensate=compensate,
            pull_batch_size=pull_batch_size,
            arms_per_round=arms_per_round,
            fine_tune_epochs=fine_tune_epochs,
            memory=memory,
            device=device,
            random_state=random_state,
            verbose=verbose,
        )
        self.class_weight = class_weight

    @property
    def _loss(self):
        return _binary_cross_entropy if self._multilabel else "cross_entropy"

    @property
    def _criterion(self):
        return _MultilabelLogLoss if self._multilabel else nn.CrossEntropyLoss

    @property
    def _stratify(self):
        return not self._multilabel

    @property
    def _validation_score(self):
        return _subset_accuracy if self._multilabel else _accuracy

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Train, prune and fine-tune the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A sparse matrix is densified one minibatch at a time.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels (numbers, strings or a pandas categorical; none
            missing), or a multilabel indicator matrix of 0 and 1.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of every sample in the training and fine-tuning losses;
            pruning scores on a weighted resample of the rows (see the user
            guide). Rows of weight 0 are left out.
        validation_data : tuple (X_val, y_val) or (X_val, y_val, \
sample_weight_val), default=None
            With ``prune_ratio="auto"``: the rows the size is chosen on,
            instead of a ``validation_fraction`` of ``X`` (then all of
            ``X`` trains). An error with a numeric ``prune_ratio``.

        Returns
        -------
        self : BanditPrunedMLPClassifier
        """
        return self._fit(X, y, sample_weight, validation_data)

    @available_if(BaseBanditPrunedMLP._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Train the network one epoch on ``X``, as scikit-learn's
        ``partial_fit``: no pruning, no fine-tuning, no early stopping.

        The first call builds the unpruned network (``hidden_layer_sizes``);
        a call after ``fit`` trains the fitted (pruned) network on. As in
        scikit-learn, ``n_iter_`` is 1 after each call (this call's epochs),
        while ``loss_curve_`` gains one loss and ``t_`` the call's rows; no
        ``ConvergenceWarning``. Unlike scikit-learn, each call starts a
        fresh optimizer: Adam's moment estimates and SGD's momentum (and the
        ``"invscaling"`` decay) do not carry over between calls.

        To prune a network that ``partial_fit`` started, call ``fit`` with
        ``warm_start=True``: it trains ``unpruned_module_`` (that network)
        on for up to ``max_iter`` epochs (``max_iter=1`` for the least),
        then prunes and fine-tunes. Or prune ``module_`` yourself with
        :func:`skbandit.pruning.prune`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels, one per sample (multilabel targets need ``fit``).
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array-like of shape (n_classes,), default=None
            Every class of all the calls; required on the first call (then
            ``y`` need not hold them all), optional after.

        Returns
        -------
        self : BanditPrunedMLPClassifier
        """
        return self._partial_fit(X, y, sample_weight, classes)

    def _encode_partial_targets(self, y, classes, first):
        multilabel = type_of_target(y, input_name="y") == "multilabel-indicator"
        if not first and multilabel != self._multilabel:
            before, now = ("class labels", "a multilabel indicator matrix")
            if self._multilabel:
                before, now = now, before
            raise ValueError(f"This classifier was fitted on {before}; y is {now}.")
        _check_missing_labels(y)
        if _check_partial_fit_first_call(self, classes) and not multilabel:
            if len(self.classes_) < 2:
                raise ValueError(
                    f"classes must hold at least 2 classes, got {self.classes_!r}."
                )
            self._multilabel = False
            binary = len(self.classes_) == 2
            self.n_outputs_ = 1 if binary else len(self.classes_)
            self.out_activation_ = "logistic" if binary else "softmax"
        if multilabel:
            # As scikit-learn: one sigmoid output per column of y, whatever
            # ``classes`` says (its ``classes_`` are the column indices).
            n_labels = np.shape(y)[1]
            if not first and n_labels != len(self.classes_):
                raise ValueError(
                    f"y has {n_labels} labels, the network was fitted on "
                    f"{len(self.classes_)}."
                )
            return self._encode_multilabel(y)
        y = column_or_1d(
            np.asarray(y, dtype=object) if _is_categorical(y) else y, warn=True
        )
        check_classification_targets(y)
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            raise ValueError(
                f"y holds labels not in classes_ {self.classes_!r}: {unseen!r}."
            )
        return np.searchsorted(self.classes_, y).astype(np.int64), len(self.classes_)

    def _encode_targets(self, y):
        _check_missing_labels(y)
        # Before classes_ is replaced: what a warm start continues from.
        previous = None
        if self._warm_start_module() is not None:
            previous = (self.classes_, self._multilabel)
        kind = type_of_target(y, input_name="y")
        if kind == "multilabel-indicator":
            encoded = self._encode_multilabel(y)
        else:
            if kind == "multiclass-multioutput":
                _refuse_multioutput(y)
            encoded = self._encode_labels(y)
        if previous is not None:
            self._check_warm_start_classes(*previous)
        return encoded

    def _encode_labels(self, y):
        self._multilabel = False
        y = column_or_1d(
            np.asarray(y, dtype=object) if _is_categorical(y) else y, warn=True
        )
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        # One class is accepted, as scikit-learn's MLPClassifier accepts it:
        # one output, a loss of 0, and that class predicted everywhere.
        self.classes_ = encoder.classes_
        # scikit-learn's names: one logistic output for two classes. The
        # network has two logits under a softmax, the same probabilities.
        binary = len(self.classes_) <= 2
        self.n_outputs_ = 1 if binary else len(self.classes_)
        self.out_activation_ = "logistic" if binary else "softmax"
        return encoder.transform(y).astype(np.int64), len(self.classes_)

    def _check_stratified_split(self, targets):
        """scikit-learn's error (``train_test_split``'s, in its words) when a
        class has one sample: a stratified split needs two of each. It names
        the classes as scikit-learn's split sees them, rows of the
        label-binarized ``y`` (``'True'`` for the second of two classes)."""
        counts = np.bincount(targets, minlength=len(self.classes_))
        if counts.min() >= 2:
            return
        few = np.flatnonzero(counts < 2)
        n = len(self.classes_)

        def binarized(i):
            if n <= 2:
                return str(i == 1)
            return " ".join(str(j == i) for j in range(n))

        raise ValueError(
            "The least populated classes in y have only 1 member, which is too "
            "few. The minimum number of groups for any class cannot be less "
            f"than 2. Classes with too few members are: {[binarized(i) for i in few]}"
            f" (classes {[_shown(c) for c in self.classes_[few]]} of y; "
            "early_stopping holds out a validation split stratified by class). "
            "Use more samples of them or early_stopping=False."
        )

    def _encode_multilabel(self, y):
        if self.reward == "accuracy":
            raise ValueError(
                "reward='accuracy' needs one label per sample; use reward='loss' "
                "with multilabel targets."
            )
        if self.class_weight is not None:
            raise ValueError("class_weight is not supported for multilabel targets.")
        y = check_array(y, dtype=None, input_name="y")
        # scikit-learn calls any 2-d y of two values multilabel ({-1, 1},
        # {0, 2}); the sigmoid outputs' targets must be 0 or 1.
        other = _other_than_0_1(y)
        if other is not None:
            raise ValueError(
                "A multilabel indicator y (one column per label) must hold only "
                f"0 and 1, got {other!r}."
            )
        self._multilabel = True
        self.classes_ = np.arange(y.shape[1])
        self.n_outputs_ = y.shape[1]
        self.out_activation_ = "logistic"
        return y.astype(np.float32), y.shape[1]

    def _check_warm_start_classes(self, classes, multilabel):
        """A warm start reuses the output units: their meanings must not change."""
        if multilabel != self._multilabel:
            before, now = ("class labels", "a multilabel indicator matrix")
            if multilabel:
                before, now = now, before
            raise ValueError(
                "warm_start can only be used where `y` is of the same type as in "
                f"the previous call to fit: previously {before}, now {now}. Use "
                "warm_start=False."
            )
        if not np.array_equal(classes, self.classes_):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in "
                f"the previous call to fit. Previously got {classes}, `y` has "
                f"{self.classes_}"
            )

    def _encode_validation_targets(self, y):
        """``y`` of ``validation_data`` encoded as the training targets."""
        if self._multilabel:
            return check_array(y, dtype=np.float32, input_name="y_val")
        y = column_or_1d(np.asarray(y, dtype=object) if _is_categorical(y) else y)
        unseen = ~np.isin(y, self.classes_)
        if unseen.any():
            raise ValueError(
                "validation_data has labels that y does not have: "
                f"{np.unique(y[unseen])!r}."
            )
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _class_weights(self, targets):
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, dict):
            _check_class_weight(self.class_weight)
        weights = compute_class_weight(
            self.class_weight, classes=self.classes_, y=self.classes_[targets]
        )
        return weights[targets]

    def predict_proba(self, X):
        """Class probabilities: the softmax of the network's logits, or one
        sigmoid per label for multilabel targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        logits, dtype = self._forward(X)
        proba = expit(logits) if self._multilabel else softmax(logits, axis=1)
        return proba.astype(dtype, copy=False)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed as scikit-learn's:
        ``np.log(predict_proba(X))`` (so both have the same argmax, even
        where probabilities round to 1; a probability that rounds to 0 gives
        ``-inf``)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels, or a multilabel indicator matrix.
        """
        logits, _ = self._forward(X)
        if self._multilabel:
            return (logits > 0).astype(int)
        return self.classes_[np.argmax(logits, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


def _is_categorical(y):
    return getattr(getattr(y, "dtype", None), "name", None) == "category"


def _shown(value):
    """``value`` as Python shows it (``-1``, not ``np.int64(-1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_missing_labels(y):
    """Name a missing label (None, NaN, pandas' NA) in ``y``.

    scikit-learn sorts the labels first and fails on comparing ``None`` or
    NaN with a string ("'<' not supported"); NaN in a numeric ``y`` is
    already named by ``type_of_target``.
    """
    if sp.issparse(y):
        return
    values = np.asarray(y, dtype=object) if _is_categorical(y) else np.asarray(y)
    if values.dtype != object:
        return
    values = values.ravel()
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        # Also pandas' NA, which cannot be compared (and is only made by pandas).
        missing = pandas.isna(values)
    else:
        missing = (values != values) | np.equal(values, None)
    if missing.any():
        first = values[np.argmax(missing)]
        raise ValueError(f"Input y contains {'None' if first is None else 'NaN'}.")


def _other_than_0_1(y):
    """The first value of ``y`` that is neither 0 nor 1, or None."""
    values = np.asarray(y)
    if values.dtype.kind not in "biuf":
        # Strings compare elementwise with numbers only as Python objects.
        values = values.astype(object)
    other = values[(values != 0) & (values != 1)]
    return _shown(other.flat[0]) if other.size else None


def _refuse_multioutput(y):
    """A 2-d ``y`` that is not an indicator matrix (several labels per sample
    but of more than two values): not supported, as in MLPClassifier."""
    raise ValueError(
        "y should be a 1d array of class labels or a multilabel indicator matrix "
        "(one column per label) of 0 and 1, got "
        f"{_other_than_0_1(y)!r} in a y of shape {np.shape(y)}; "
        "multiclass-multioutput targets are not supported."
    )


def _check_class_weight(class_weight):
    """Every weight finite and non-negative, as ``sample_weight``'s (a
    negative or NaN weight would drop the class's rows without a word)."""
    for label, weight in class_weight.items():
        if not (isinstance(weight, Real) and np.isfinite(weight) and weight >= 0):
            raise ValueError(
                "class_weight must map each class to a finite, non-negative "
                f"number, got {_shown(weight)!r} for class {_shown(label)!r}."
            )


class _MultilabelLogLoss(nn.BCEWithLogitsLoss):
    """scikit-learn's multilabel log loss per sample: the labels' binary
    cross-entropies summed, not averaged (``reduction="none"`` only)."""

    def forward(self, input, target):
        return super().forward(input, target).sum(dim=1)


def _binary_cross_entropy(output, target):
    """Per-sample, per-label binary cross-entropy of logits (multilabel)."""
    return F.binary_cross_entropy_with_logits(
        output, target.to(output.dtype), reduction="none"
    )


def _accuracy(y_pred, y, sample_weight):
    """Weighted accuracy of logits ``y_pred`` for class indices ``y``."""
    correct = (y_pred.argmax(dim=1) == y).double()
    return float((sample_weight.double() * correct).sum() / sample_weight.sum())


def _subset_accuracy(y_pred, y, sample_weight):
    """Weighted share of the samples with every label right (multilabel)."""
    correct = ((y_pred > 0) == (y > 0.5)).all(dim=1).double()
    return float((sample_weight.double() * correct).sum() / sample_weight.sum())
