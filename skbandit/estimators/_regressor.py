"""BanditPrunedMLPRegressor."""

import numpy as np
import torch
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_array, column_or_1d
from torch import nn

from .._options import DEFAULTS, ESTIMATOR_POLICY
from ._base import BaseBanditPrunedMLP
from ._checks import varying
from ._docs import shared_parameters_doc
from ._path import MAX_SCORE_DROP, PATH_STEP

__all__ = ["BanditPrunedMLPRegressor"]


@shared_parameters_doc
class BanditPrunedMLPRegressor(RegressorMixin, BaseBanditPrunedMLP):
    """Multi-layer perceptron regressor whose hidden neurons are pruned by a bandit.

    The same method as :class:`BanditPrunedMLPClassifier` with the squared
    error as loss, and the parameters and stopping rule of scikit-learn's
    ``MLPRegressor``. Targets are standardised internally (and predictions mapped
    back), so one learning rate and one reward temperature suit any target
    scale. Several targets (multi-output regression) are supported.

    %(parameters)s

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    n_outputs_ : int
        Number of targets.
    module_ : torch.nn.Sequential
        The pruned network; it predicts standardised targets.
    unpruned_module_ : torch.nn.Sequential
    coefs_, intercepts_ : list of ndarray
        Weights (``coefs_[i]`` of shape ``(n_in, n_out)``) and biases of
        ``module_``, scikit-learn's layout; the last layer maps to
        standardised targets.
    y_mean_, y_scale_ : ndarray of shape (n_outputs_,)
        Target standardisation: ``prediction = module_(X) * y_scale_ + y_mean_``.
    out_activation_ : str
        ``"identity"``.
    n_layers_ : int
        Layers, input and output included.
    pruning_ : skbandit.pruning.PruningReport
    history_ : list of dict
        Per-epoch record, as trained: its ``train_loss`` is the mean squared
        error of the standardised targets plus the penalty.
    n_iter_ : int
        Epochs of training, fine-tuning not counted (see
        :class:`BanditPrunedMLPClassifier`).
    loss_curve_, loss_, best_loss_ : list of float, float, float or None
        The training losses on scikit-learn's scale, comparable with
        ``MLPRegressor``'s: half the mean squared error of ``y``, i.e. the
        recorded loss times ``0.5 * y_scale_**2`` (times the mean of
        ``y_scale_**2`` over several targets: exact when their scales are
        equal). The ``alpha`` penalty, of the weights that predict
        standardised targets, is scaled alike. ``tol`` applies to the loss as
        trained (standardised), not to these.
    t_ : int
        Training samples the solver saw in training.
    fine_tune_n_iter_ : int
    fine_tune_loss_curve_ : list of float
        Epochs after training and their losses (scikit-learn's scale), see
        :class:`BanditPrunedMLPClassifier`.
    validation_scores_ : list of float or None
        R² on the validation split after each training epoch (with
        ``early_stopping``, else None).
    best_validation_score_ : float or None
    fit_times_ : dict
        Seconds per phase: ``"train"``, ``"prune"``, ``"fine_tune"``.
    train_cache_hit_ : bool
    path_ : skbandit.pruning.PruningPath or None
        With ``prune_ratio="auto"``: the pruning path, scored by validation
        R² (see :class:`BanditPrunedMLPClassifier`); None otherwise.
    chosen_ : int or None
        Index in ``path_`` of the network kept.

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
    ...                              max_iter=30, random_state=0),
    ... ).fit(X, y)
    >>> [reg[-1].module_[i].out_features for i in (0, 2)]
    [24, 24]
    >>> reg.score(X, y) > 0.4
    True
    """

    _parameter_constraints = {
        **BaseBanditPrunedMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss="squared_error",
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
        self.loss = loss

    _stratify = False
    _min_fit_samples = 1  # as MLPRegressor

    @property
    def _poisson(self):
        return self.loss == "poisson"

    @property
    def _loss(self):
        return _poisson_deviance if self._poisson else "mse"

    @property
    def _criterion(self):
        return _PoissonDeviance if self._poisson else nn.MSELoss

    @property
    def _validation_score(self):
        return _r2_score_of_log if self._poisson else _r2_score

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Train, prune and fine-tune the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A sparse matrix is densified one minibatch at a time.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
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
        self : BanditPrunedMLPRegressor
        """
        if self.reward == "accuracy":
            raise ValueError("reward='accuracy' is for classifiers; use 'loss'.")
        return self._fit(X, y, sample_weight, validation_data)

    def _encode_targets(self, y):
        y = check_array(
            y,
            ensure_2d=False,
            dtype=np.float64,
            input_name="y",
            ensure_min_samples=self._min_fit_samples,
        )
        if y.ndim > 2:
            raise ValueError(f"y must be 1d or 2d, got shape {y.shape}.")
        if y.ndim == 2 and y.shape[1] == 1:
            # As MLPRegressor: a column vector is one target, predicted 1d.
            y = column_or_1d(y, warn=True)
        self._y_ndim = y.ndim
        y2 = y.reshape(len(y), -1)
        self.n_outputs_ = y2.shape[1]
        self.out_activation_ = "exp" if self._poisson else "identity"
        if self._poisson:
            # The network predicts log(y): nothing to standardise.
            if np.any(y2 < 0):
                raise ValueError(
                    "loss='poisson' needs non-negative targets (counts or "
                    f"rates); y has {y2.min()!r}."
                )
        # Standardised by _training_targets, once the rows and their weights
        # are known.
        return y2, self.n_outputs_

    def _training_targets(self, targets, weights, first):
        """Targets standardised by the sample-weighted mean and standard
        deviation of the fit's rows, so that a weight of 0 equals dropping
        the row and an integer weight repeating it; ``fit`` and the first
        ``partial_fit`` set ``y_mean_``, ``y_scale_``, later calls reuse
        them. ``loss="poisson"`` trains on ``y`` itself (the network
        predicts ``log(y)``)."""
        if not first:
            return self._scaled(targets)
        if self._poisson:
            self.y_mean_ = np.zeros(self.n_outputs_)
            self.y_scale_ = np.ones(self.n_outputs_)
            return targets.astype(np.float32)
        targets, self.y_mean_, self.y_scale_ = _standardise(targets, weights)
        return targets

    def _scaled(self, y2):
        """``y2`` standardised as the fit's targets were, in float32."""
        return ((y2 - self.y_mean_) / self.y_scale_).astype(np.float32)

    @available_if(BaseBanditPrunedMLP._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train the network one epoch on ``X``, as scikit-learn's
        ``partial_fit``: no pruning, no fine-tuning, no early stopping.

        The first call builds the unpruned network and standardises the
        targets with the (sample-weighted) mean and scale of its ``y`` (``y_mean_``,
        ``y_scale_``; later calls reuse them, so make the first batch
        representative); a call after ``fit`` trains the fitted (pruned)
        network on. Each call starts a fresh optimizer, and pruning is left
        to ``fit`` with ``warm_start=True`` or :func:`skbandit.pruning.prune`
        (see :meth:`BanditPrunedMLPClassifier.partial_fit`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : BanditPrunedMLPRegressor
        """
        return self._partial_fit(X, y, sample_weight)

    def _encode_partial_targets(self, y, classes, first):
        if first:
            return self._encode_targets(y)
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        y2 = y.reshape(len(y), -1)
        if y2.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y2.shape[1]} targets, the network was fitted on "
                f"{self.n_outputs_}."
            )
        return y2, self.n_outputs_

    def _loss_factor(self):
        """Training minimises the mean squared error of standardised
        targets; scikit-learn reports half the mean squared error of ``y``:
        for one target, ``0.5 * y_scale_**2`` times ours (the mean over
        targets of their squared scales for several). The Poisson loss is
        scikit-learn's as trained."""
        if self._poisson:
            return 1.0
        return 0.5 * float(np.mean(self.y_scale_**2))

    def _encode_validation_targets(self, y):
        """``y`` of ``validation_data`` standardised as the training targets."""
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y_val")
        y2 = y.reshape(len(y), -1)
        if y2.shape[1] != self.n_outputs_:
            raise ValueError(
                f"validation_data has {y2.shape[1]} targets, y has {self.n_outputs_}."
            )
        return self._scaled(y2)

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs_)
        """
        outputs, dtype = self._forward(X)
        if self.out_activation_ == "exp":
            outputs = np.exp(outputs)
        pred = (outputs * self.y_scale_ + self.y_mean_).astype(dtype, copy=False)
        return pred.ravel() if self._y_ndim == 1 else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        return tags


def _moments(y, weights):
    """Mean and standard deviation of every column of ``y``, its rows
    weighted by ``weights`` (None: equally; equal weights take the
    unweighted arithmetic, so that they give exactly what no weights give)."""
    if not varying(weights):
        return y.mean(axis=0), y.std(axis=0)
    mean = np.average(y, axis=0, weights=weights)
    return mean, np.sqrt(np.average((y - mean) ** 2, axis=0, weights=weights))


def _standardise(y, weights):
    """``(targets, mean, scale)``: ``y`` standardised in float32, by the
    weighted :func:`_moments` (a constant column is only centred)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean, scale = _moments(y, weights)
        targets = (y - mean) / np.where(scale > 0, scale, 1.0)
    if not all(np.all(np.isfinite(a)) for a in (mean, scale, targets)):
        # Finite but huge targets (|y| >~ 1e154): the squares of std
        # overflow. Standardise y / max|y| instead, then scale back.
        peak = np.abs(y).max(axis=0)
        peak = np.where(peak > 0, peak, 1.0)
        unit = y / peak
        unit_mean, unit_scale = _moments(unit, weights)
        targets = (unit - unit_mean) / np.where(unit_scale > 0, unit_scale, 1.0)
        mean, scale = unit_mean * peak, unit_scale * peak
    targets = targets.astype(np.float32)
    if not np.all(np.isfinite(targets)):
        # Only weights reach this: a row of negligible weight can lie
        # sqrt(1 / its share of the weight) deviations from the mean.
        raise ValueError(
            "y standardised by the sample-weighted mean and standard deviation "
            "exceeds float32: rows whose sample_weight is negligible next to "
            "the others' lie too far from the weighted mean. Drop those rows "
            "or give them larger weights."
        )
    return targets, mean, np.where(scale > 0, scale, 1.0)


def _r2_score(y_pred, y, sample_weight):
    """Weighted R² averaged over the outputs, as ``sklearn.metrics.r2_score``
    (a constant target scores 1 when predicted exactly, else 0)."""
    y_pred = y_pred.double()
    y = y.reshape(y_pred.shape).double()
    w = sample_weight.double()[:, None]
    mean = (w * y).sum(dim=0) / w.sum()
    residual = (w * (y - y_pred) ** 2).sum(dim=0)
    total = (w * (y - mean) ** 2).sum(dim=0)
    exact = torch.where(residual > 0, 0.0, 1.0).double()
    r2 = torch.where(total > 0, 1 - residual / total.clamp_min(1e-300), exact)
    return float(r2.mean())


def _r2_score_of_log(y_pred, y, sample_weight):
    """:func:`_r2_score` of ``exp(y_pred)``: the Poisson network predicts
    ``log(y)``."""
    return _r2_score(torch.exp(y_pred.double()), y, sample_weight)


def _poisson_deviance(output, target):
    """Half the Poisson deviance of ``exp(output)`` per sample and target,
    scikit-learn's ``loss="poisson"``: ``y log(y / mu) - y + mu``."""
    target = target.reshape(output.shape).to(output.dtype)
    return (
        torch.exp(output)
        - target * output
        + torch.special.xlogy(target, target)
        - target
    )


class _PoissonDeviance(nn.Module):
    """:func:`_poisson_deviance` as a torch criterion (``reduction="none"``
    only: training weighs and averages the samples itself)."""

    def __init__(self, reduction="none"):
        super().__init__()
        if reduction != "none":
            raise ValueError("_PoissonDeviance computes per-sample losses only.")

    def forward(self, output, target):
        return _poisson_deviance(output, target)
