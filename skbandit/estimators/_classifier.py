"""BanditPrunedMLPClassifier."""

import numpy as np
from scipy.special import softmax
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d
from torch import nn

from ._base import BaseBanditPrunedMLP, shared_parameters_doc

__all__ = ["BanditPrunedMLPClassifier"]


@shared_parameters_doc
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

    %(parameters)s

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
