"""BanditPrunedMLPClassifier."""

import numpy as np
from scipy.special import softmax
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d
from torch import nn

from ._base import BaseBanditPrunedMLP

__all__ = ["BanditPrunedMLPClassifier"]


class BanditPrunedMLPClassifier(ClassifierMixin, BaseBanditPrunedMLP):
    """Multi-layer perceptron classifier whose hidden neurons are pruned by a bandit.

    ``fit`` trains the network (Adam on cross-entropy, through skorch), then
    treats every hidden neuron as an arm of a multi-armed bandit: a pull
    removes the neuron on a sampled minibatch and turns the change it makes
    into a safe-removal reward in ``[0, 1]``. When the budget is spent, the
    ``prune_ratio`` of neurons with the highest estimated reward are removed
    physically (smaller weight matrices) and the network is fine-tuned.
    ``predict`` runs the compact network.

    The defaults are the best configuration we measured (see
    :ref:`method-defaults`): UCB1 over pulls that remove a neuron in the
    company of the neurons the bandit currently plans to remove, with the
    least-squares compensation removal applies, rewarded by how little the
    outputs move. ``BanditPrunedMLPClassifier(**PAPER_SETTINGS)``
    (:data:`skbandit.pruning.PAPER_SETTINGS`) is the paper's configuration:
    UCB1 over single zero-masked neurons, loss reward, no compensation.

    Read more in the :ref:`User Guide <user_guide>` and :ref:`method`.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Width of each hidden layer before pruning (each at least 2).
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Hidden activation.
    policy : str or policy object, default="ucb1"
        How the neurons to remove are chosen. A bandit policy:
        ``"epsilon_greedy"``, ``"softmax"``, ``"ucb1"``, ``"thompson"``,
        ``"gaussian_thompson"``, ``"hedge"``, ``"exp3"``, or an object
        following :class:`skbandit.policies.BasePolicy`; a baseline:
        ``"magnitude"`` (smallest incoming-weight norm), ``"activation"``
        (least varying activation), ``"random"``, ``"obs"`` (greedy optimal
        brain surgeon on the next layer's least-squares refit); or ``"none"``
        (no pruning). One ``GridSearchCV`` grid can therefore compare every
        method.
    prune_ratio : float in [0, 1), default=0.5
        Fraction of hidden neurons removed (per layer or overall, see
        ``scope``); a layer always keeps at least one neuron.
    budget : float > 0 or "auto", default=10
        Average bandit pulls per neuron, or ``"auto"``: each bandit stops as
        soon as the neurons it would remove and those it would keep are
        separated by confidence bounds (at most ``max_budget`` per neuron).
    max_budget : float > 0, default=50
        Cap of pulls per neuron when ``budget="auto"``.
    pull : {"company", "single", "set"}, default="company"
        What a pull removes: one neuron on top of the rest of the bandit's
        current removal plan (its marginal cost in the company it will be
        removed with), one neuron alone (the paper's), or the whole planned
        set (combinatorial feedback, every neuron of the set shares its
        reward).
    n_rounds : int, default=1
        Iterative pruning: reach the target in ``n_rounds`` geometric steps,
        re-scoring the survivors each time (bandits warm-started) and
        fine-tuning ``fine_tune_epochs`` after every round.
    target_params : int or float, default=None
        Prune to a parameter count (or a fraction of it, if < 1) instead of
        ``prune_ratio``; neurons of all layers are removed in one score
        order, so per-layer ratios follow from the scores.
    target_latency : float in (0, 1), default=None
        Prune to this fraction of the unpruned inference latency (measured
        on the training data) with the fewest neurons removed, instead of
        ``prune_ratio``.
    reward : {"fidelity", "loss", "accuracy"} or reward object, \
default="fidelity"
        Safe-removal reward: how little the outputs move from the unpruned
        network's (:class:`skbandit.pruning.FidelityReward`), the loss change
        (:class:`skbandit.pruning.LossReward`, the paper's) or the accuracy
        change (:class:`skbandit.pruning.AccuracyReward`).
    scope : {"layer", "global"}, default="layer"
        One bandit and one ratio per layer, or one over the whole network.
    compensate : {"lstsq", "mean", "none"}, default="lstsq"
        What replaces the removed neurons' contribution to the next layer,
        see :func:`skbandit.pruning.remove_units`: a least-squares refit of
        the next layer, the mean activation folded into its bias, or nothing
        (``"none"``, the zeroing of the original method). The pulls remove a
        neuron the same way.
    pull_batch_size : int, default=256
        Minibatch size of a pull.
    arms_per_round : int, default=None
        Neurons a bandit pulls per minibatch; ``None`` is an eighth of them.
    max_epochs : int, default=100
        Training epochs of the unpruned network.
    batch_size : int, default=64
        Training minibatch size.
    lr : float, default=1e-3
        Learning rate.
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    weight_decay : float, default=0.0
    lr_schedule : {"constant", "cosine"}, default="constant"
        Learning-rate schedule over the training epochs.
    fine_tune_epochs : int, default=5
        Epochs of training after pruning (0 for none). Every method,
        ``policy="none"`` included, trains ``max_epochs + n_rounds *
        fine_tune_epochs`` epochs in all, so none gets more training.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified),
        stop when its loss has not improved for ``n_iter_no_change`` epochs
        and restore the best weights.
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int, default=10
    memory : str, joblib.Memory or None, default=None
        Cache of the trained, unpruned network (like ``Pipeline(memory=...)``),
        keyed on the data, every training hyperparameter and the seed. Fits
        that differ only in pruning settings (``policy``, ``prune_ratio``,
        ``budget``, ...) then train once, also across processes: a
        ``GridSearchCV`` over pruning settings costs about one training per
        fold. ``None`` caches nothing; a string is a cache directory. Only
        effective with an int ``random_state`` (otherwise every fit draws new
        weights).
    device : str or torch.device, default="cpu"
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch order and the bandit; an int gives
        identical predictions on every fit.
    verbose : int, default=0
        1 prints one line per epoch, 2 adds a progress bar.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` had string column names.
    module_ : torch.nn.Sequential
        The trained, pruned (physically smaller) network; outputs logits.
    pruning_ : skbandit.pruning.PruningReport
        What was measured and removed: per layer the units before/after,
        removed indices, scores and pulls per unit; the loss before and after
        pruning and after fine-tuning, parameter counts and times.
    history_ : list of dict
        Per-epoch training record (training, then fine-tuning).
    loss_curve_ : list of float
        Training loss per epoch.
    n_iter_ : int
        Epochs run (training plus fine-tuning).
    fit_time_ : float
        Seconds spent training the unpruned network.

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
    ...                               max_epochs=50, lr=1e-2, random_state=0),
    ... ).fit(X, y)
    >>> clf[-1].module_[0].out_features
    16
    >>> round(clf.score(X, y), 2) >= 0.9
    True
    """

    _loss = "cross_entropy"
    _criterion = nn.CrossEntropyLoss
    _stratify = True

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train, prune and fine-tune the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (numbers, strings or a pandas categorical).

        Returns
        -------
        self : BanditPrunedMLPClassifier
        """
        return self._fit(X, y)

    def _encode_targets(self, y):
        y = column_or_1d(
            np.asarray(y, dtype=object) if _is_categorical(y) else y, warn=True
        )
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                "The target y has only one class "
                f"({encoder.classes_[0]!r}); a classifier needs at least 2 classes."
            )
        self.classes_ = encoder.classes_
        return encoder.transform(y).astype(np.int64), len(self.classes_)

    def predict_proba(self, X):
        """Class probabilities (softmax of the network's logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return softmax(self._forward(X), axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        from scipy.special import log_softmax

        return log_softmax(self._forward(X), axis=1)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        logits = self._forward(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


def _is_categorical(y):
    return getattr(getattr(y, "dtype", None), "name", None) == "category"
