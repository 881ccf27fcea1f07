"""``prune_ratio="auto"``: find the size on a validation split, in one fit.

The estimators train once, prune the trained network along a nested path
(:func:`skbandit.pruning.prune_path`), score every step on validation rows
and keep the smallest network within ``max_score_drop`` of the best
one's score, then fine-tune it. This module holds what that adds to a fit:
which rows validate, how they are scored, and the fit itself.
"""

import copy
import time

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import is_classifier
from skorch.dataset import ValidSplit

from .._options import UNPRUNED
from ..pruning import prune_path
from ._training import TrainingData

__all__ = [
    "MAX_SCORE_DROP",
    "PATH_STEP",
    "check_auto_settings",
    "fit_path",
    "validation_split",
]

#: Default ``max_score_drop``: one point of accuracy (or of R²). Not in
#: :data:`skbandit._options.DEFAULTS`, whose fields define what a benchmark
#: store's method names mean.
MAX_SCORE_DROP = 0.01
#: Default ``path_step``: each step removes a fifth of the remaining units,
#: about 20 steps from 100 units down to one.
PATH_STEP = 0.2


def check_auto_settings(estimator, validation_data):
    """Clear errors for settings ``prune_ratio="auto"`` cannot use, and for
    ``validation_data`` without it."""
    if estimator.prune_ratio != "auto":
        if validation_data is not None:
            raise ValueError(
                "validation_data is only used with prune_ratio='auto', got "
                f"prune_ratio={estimator.prune_ratio!r}."
            )
        return
    if isinstance(estimator.policy, str) and estimator.policy == UNPRUNED:
        raise ValueError(
            "prune_ratio='auto' searches for the size by pruning; policy='none' "
            "prunes nothing. Use a pruning policy, or policy='none' with a "
            "numeric prune_ratio for the unpruned network."
        )
    if estimator.n_rounds != 1:
        raise ValueError(
            "prune_ratio='auto' prunes in steps of path_step already; use "
            f"n_rounds=1, got n_rounds={estimator.n_rounds}."
        )


def validation_split(targets, fraction, stratify, seed):
    """``(fit_rows, validation_rows)``: the split ``early_stopping`` makes
    with the same seed (skorch's ``ValidSplit``, stratified by ``targets``
    when ``stratify``), so that with ``early_stopping`` the size is chosen
    on the rows training held out.

    Examples
    --------
    >>> import numpy as np
    >>> fit, valid = validation_split(np.repeat([0, 1], 10), 0.2, True, 0)
    >>> len(fit), len(valid), int(np.repeat([0, 1], 10)[valid].sum())
    (16, 4, 2)
    """
    n = len(targets)
    split = ValidSplit(fraction, stratified=stratify, random_state=seed)
    fit, valid = split(np.arange(n), targets if stratify else None)
    return np.sort(fit.indices), np.sort(valid.indices)


def _check_split_sizes(n_fit, n_valid, n_classes, source):
    needed = max(2, n_classes)
    if n_valid < needed or n_fit < 2:
        raise ValueError(
            f"prune_ratio='auto' chooses the size on validation rows: {source} "
            f"gives {n_valid} validation rows and {n_fit} training rows; it "
            f"needs at least {needed} validation rows (2, and one per class "
            "for a classifier) and 2 training rows. Use more samples, a larger "
            "validation_fraction, or pass validation_data=(X_val, y_val) to fit."
        )


def _held_out_rows(estimator, X, targets, weights, validation_data, seed):
    """``(fit_rows, (X_val, y_val, w_val))``: which rows train, and the
    encoded validation rows (from ``X`` or from ``validation_data``)."""
    n_classes = len(getattr(estimator, "classes_", ())) if estimator._stratify else 0
    if validation_data is not None:
        X_val, y_val, w_val = _unpack(validation_data)
        X_val = estimator._validate_X(X_val, reset=False)
        y_val = estimator._encode_validation_targets(y_val)
        if y_val.shape[0] != X_val.shape[0]:
            raise ValueError(
                "validation_data has inconsistent numbers of samples: "
                f"{X_val.shape[0]} and {y_val.shape[0]}."
            )
        _check_split_sizes(X.shape[0], X_val.shape[0], 0, "validation_data")
        return np.arange(X.shape[0]), (X_val, y_val, w_val)
    stratify = estimator._stratify
    n_valid = int(np.ceil(estimator.validation_fraction * X.shape[0]))
    _check_split_sizes(
        X.shape[0] - n_valid,
        n_valid,
        n_classes,
        f"validation_fraction={estimator.validation_fraction} of {X.shape[0]} rows",
    )
    fit, valid = validation_split(
        targets, estimator.validation_fraction, stratify, seed
    )
    w_val = None if weights is None else weights[valid]
    return fit, (X[valid], targets[valid], w_val)


def _unpack(validation_data):
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (
        2,
        3,
    ):
        raise ValueError(
            "validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
            f"sample_weight_val), got {type(validation_data).__name__}."
        )
    X_val, y_val, *rest = validation_data
    w_val = np.asarray(rest[0], dtype=np.float64) if rest else None
    return X_val, y_val, w_val


def _scorer(estimator, X_val, y_val, w_val):
    """``score(module)``: the estimator's validation score (accuracy or R²,
    weighted) of a network on the validation rows."""
    dense = X_val.toarray() if sp.issparse(X_val) else X_val
    X_t = torch.as_tensor(np.asarray(dense, dtype=np.float32), device=estimator.device)
    y_t = torch.as_tensor(y_val)
    w_t = torch.ones(len(y_t)) if w_val is None else torch.as_tensor(w_val)
    score = estimator._validation_score

    def validation_score(module):
        with torch.no_grad():
            return score(module.eval()(X_t).cpu(), y_t, w_t)

    return validation_score


def fit_path(
    estimator,
    X,
    targets,
    weights,
    sizes,
    n_outputs,
    previous,
    seeds,
    *,
    validation_data=None,
):
    """Train, prune along the path, choose, fine-tune: the fitted attributes
    of ``prune_ratio="auto"`` (``path_`` and ``chosen_`` besides the usual).

    Training sees every row with ``early_stopping`` (which holds out the
    same validation rows itself), else only the rows that do not validate;
    pruning and fine-tuning see only those.
    """
    train_seed, prune_seed, tune_seed = seeds
    fit, (X_val, y_val, w_val) = _held_out_rows(
        estimator, X, targets, weights, validation_data, train_seed
    )
    rows = _subset(X, targets, weights, fit)
    training = (X, targets, weights) if estimator._early_stopping else rows
    module, history = estimator._train(
        *training, sizes, n_outputs, train_seed, previous
    )
    estimator.unpruned_module_ = copy.deepcopy(module).eval()
    estimator._record_training(history, training[0].shape[0], sizes)
    pruning_rows = estimator._pruning_data(*rows, prune_seed)
    score = _scorer(estimator, X_val, y_val, w_val)
    start = time.perf_counter()
    chosen, report, path = prune_path(
        module.to(estimator.device),
        *pruning_rows,
        score,
        max_score_drop=estimator.max_score_drop,
        path_step=estimator.path_step,
        target_params=estimator.target_params,
        target_latency=estimator.target_latency,
        random_state=int(prune_seed),
        score_name="accuracy" if is_classifier(estimator) else "R²",
        **estimator._prune_settings(),
    )
    estimator.fit_times_["prune"] = time.perf_counter() - start
    estimator.fit_times_["fine_tune"] = 0.0
    estimator._log(f"pruning path: {path!r}, {estimator.fit_times_['prune']:.2f} s")
    tune_history = []
    epochs = estimator._final_fine_tune_epochs(report)
    if epochs:
        tune_history, report = estimator._fine_tune(
            chosen, report, pruning_rows, TrainingData(*rows), epochs, tune_seed
        )
        path.score_after_fine_tune = float(score(chosen))
    estimator.path_ = path
    estimator.chosen_ = path.chosen
    return estimator._set_fitted(chosen, report, history, tune_history)


def _subset(X, targets, weights, rows):
    if len(rows) == X.shape[0]:
        return X, targets, weights
    return X[rows], targets[rows], None if weights is None else weights[rows]
