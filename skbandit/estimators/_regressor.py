"""BanditPrunedMLPRegressor."""

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils.validation import check_array
from torch import nn

from ._base import BaseBanditPrunedMLP

__all__ = ["BanditPrunedMLPRegressor"]


class BanditPrunedMLPRegressor(RegressorMixin, BaseBanditPrunedMLP):
    """Multi-layer perceptron regressor whose hidden neurons are pruned by a bandit.

    The same method as :class:`BanditPrunedMLPClassifier` with the squared
    error as loss. Targets are standardised internally (and predictions mapped
    back), so one learning rate and one reward temperature suit any target
    scale. Several targets (multi-output regression) are supported.

    Parameters
    ----------
    hidden_layer_sizes, activation, policy, prune_ratio, budget, max_budget, \
pull, n_rounds, target_params, target_latency, reward, scope, compensate, \
pull_batch_size, arms_per_round, max_epochs, batch_size, lr, optimizer, \
weight_decay, lr_schedule, fine_tune_epochs, early_stopping, \
validation_fraction, n_iter_no_change, memory, device, random_state, verbose
        As in :class:`BanditPrunedMLPClassifier`, defaults included (the
        best configuration we measured; ``**PAPER_SETTINGS`` for the
        paper's). ``reward="accuracy"`` is not available for regression;
        ``reward="fidelity"`` measures the mean squared change of the
        (standardised) predictions; the validation split is not
        stratified.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    n_outputs_ : int
        Number of targets.
    module_ : torch.nn.Sequential
        The pruned network; it predicts standardised targets.
    y_mean_, y_scale_ : ndarray of shape (n_outputs_,)
        Target standardisation: ``prediction = module_(X) * y_scale_ + y_mean_``.
    pruning_ : skbandit.pruning.PruningReport
    history_ : list of dict
    loss_curve_ : list of float
    n_iter_ : int
    fit_time_ : float

    See Also
    --------
    BanditPrunedMLPClassifier : The same for classification.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skbandit import BanditPrunedMLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = make_pipeline(
    ...     StandardScaler(),
    ...     BanditPrunedMLPRegressor((32, 32), policy="thompson", prune_ratio=0.25,
    ...                              max_epochs=30, random_state=0),
    ... ).fit(X, y)
    >>> [reg[-1].module_[i].out_features for i in (0, 2)]
    [24, 24]
    >>> reg.score(X, y) > 0.4
    True
    """

    _loss = "mse"
    _criterion = nn.MSELoss
    _stratify = False

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train, prune and fine-tune the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self : BanditPrunedMLPRegressor
        """
        if self.reward == "accuracy":
            raise ValueError("reward='accuracy' is for classifiers; use 'loss'.")
        return self._fit(X, y)

    def _encode_targets(self, y):
        y = check_array(
            y, ensure_2d=False, dtype=np.float64, input_name="y", ensure_min_samples=2
        )
        if y.ndim > 2:
            raise ValueError(f"y must be 1d or 2d, got shape {y.shape}.")
        self._y_ndim = y.ndim
        y2 = y.reshape(len(y), -1)
        self.n_outputs_ = y2.shape[1]
        with np.errstate(over="ignore", invalid="ignore"):
            mean, scale = y2.mean(axis=0), y2.std(axis=0)
            targets = (y2 - mean) / np.where(scale > 0, scale, 1.0)
        if not all(np.all(np.isfinite(a)) for a in (mean, scale, targets)):
            # Finite but huge targets (|y| >~ 1e154): the squares of std
            # overflow. Standardise y / max|y| instead, then scale back.
            peak = np.abs(y2).max(axis=0)
            peak = np.where(peak > 0, peak, 1.0)
            unit = y2 / peak
            unit_mean, unit_scale = unit.mean(axis=0), unit.std(axis=0)
            targets = (unit - unit_mean) / np.where(unit_scale > 0, unit_scale, 1.0)
            mean, scale = unit_mean * peak, unit_scale * peak
        self.y_mean_ = mean
        # A constant target has nothing to scale.
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        return targets.astype(np.float32), self.n_outputs_

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs_)
        """
        pred = self._forward(X) * self.y_scale_ + self.y_mean_
        return pred.ravel() if self._y_ndim == 1 else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
