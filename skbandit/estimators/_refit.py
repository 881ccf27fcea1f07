"""The cross-validated size: a ``refit`` rule for ``GridSearchCV``.

:func:`smallest_within_tolerance` is scikit-learn's "balance model
complexity and cross-validated score" idiom: ``GridSearchCV(refit=...)``
keeps the smallest candidate whose mean test score is within a tolerance
of the best one's (optionally widened by the best one's standard error, the
one-standard-error rule). It reads sizes from the candidates' parameters, so
the same rule picks among our ``prune_ratio`` values and among
``MLPClassifier`` ``hidden_layer_sizes`` alike.
"""

import numbers

import numpy as np

__all__ = ["candidate_size", "smallest_within_tolerance"]


def candidate_size(params):
    """Hidden units a candidate keeps: ``sum(hidden_layer_sizes) * (1 -
    prune_ratio)``, each read from ``params`` under its name or as a
    ``Pipeline`` step's (``"clf__prune_ratio"``); a missing one counts as a
    constant (1 unit, or no pruning).

    Parameters
    ----------
    params : dict
        One candidate's parameters (an entry of ``cv_results_["params"]``).

    Returns
    -------
    size : float

    Examples
    --------
    >>> candidate_size({"clf__hidden_layer_sizes": (64, 32), "clf__prune_ratio": 0.5})
    48.0
    >>> candidate_size({"hidden_layer_sizes": 10})
    10.0
    """
    by_name = {key.rsplit("__", 1)[-1]: value for key, value in params.items()}
    if "hidden_layer_sizes" not in by_name and "prune_ratio" not in by_name:
        raise ValueError(
            "The candidates' sizes are read from hidden_layer_sizes and "
            f"prune_ratio, and neither is among {sorted(params)}; pass "
            "size=callable(params) -> number."
        )
    units = float(np.sum(by_name.get("hidden_layer_sizes", 1)))
    ratio = by_name.get("prune_ratio", 0.0)
    if not isinstance(ratio, numbers.Real):
        raise ValueError(
            f"prune_ratio={ratio!r} has no size before fitting; give the "
            "grid numeric ratios, or pass size=callable(params) -> number."
        )
    return units * (1 - ratio)


def smallest_within_tolerance(
    max_score_drop=0.01, *, size=candidate_size, standard_error=False, score="score"
):
    """A ``refit`` callable: the smallest candidate within a tolerance of the best.

    For ``GridSearchCV(..., refit=smallest_within_tolerance(0.01))``: among
    the candidates whose mean test score is at least the best mean minus
    ``max_score_drop`` (plus, with ``standard_error``, the best candidate's
    standard error over the folds), the one of the smallest ``size``; ties
    go to the higher mean score. ``best_index_`` is that candidate and
    ``best_estimator_`` is refitted with its parameters
    (``best_score_`` is not set, as for every callable ``refit``).

    Parameters
    ----------
    max_score_drop : float >= 0, default=0.01
        The tolerance, in units of the score (accuracy, R², ...).
    size : callable, default=candidate_size
        ``size(params) -> number`` of a candidate's parameters; the default
        counts hidden units from ``hidden_layer_sizes`` and
        ``prune_ratio`` (see :func:`candidate_size`).
    standard_error : bool, default=False
        Widen the tolerance by the best candidate's standard error
        (``std_test_score / sqrt(n_splits)``): the one-standard-error rule
        when ``max_score_drop=0``.
    score : str, default="score"
        The scorer's name in ``cv_results_`` (``"mean_test_<score>"``), for a
        multi-metric ``scoring``.

    Returns
    -------
    refit : callable
        ``refit(cv_results) -> int``.

    Examples
    --------
    >>> from skbandit.estimators import smallest_within_tolerance
    >>> cv_results = {
    ...     "params": [{"prune_ratio": r} for r in (0.0, 0.5, 0.75, 0.9)],
    ...     "mean_test_score": [0.95, 0.96, 0.955, 0.90],
    ... }
    >>> smallest_within_tolerance(0.01)(cv_results)  # the 0.75 candidate
    2

    In a search (``memory=`` trains each fold's network once for all ratios):

    >>> from sklearn.model_selection import GridSearchCV
    >>> from skbandit import BanditPrunedMLPClassifier
    >>> search = GridSearchCV(
    ...     BanditPrunedMLPClassifier((64,), random_state=0, memory="cache"),
    ...     {"prune_ratio": [0.0, 0.5, 0.75, 0.9]},
    ...     refit=smallest_within_tolerance(0.01),
    ... )  # then search.fit(X, y); search.best_params_
    """
    if not (isinstance(max_score_drop, numbers.Real) and max_score_drop >= 0):
        raise ValueError(f"max_score_drop must be >= 0, got {max_score_drop!r}.")

    def refit(cv_results):
        means = np.asarray(cv_results[f"mean_test_{score}"], dtype=float)
        best = int(np.nanargmax(means))
        tolerance = max_score_drop
        if standard_error:
            n_splits = sum(
                key.startswith("split") and key.endswith(f"_test_{score}")
                for key in cv_results
            )
            std = cv_results[f"std_test_{score}"][best]
            tolerance += std / np.sqrt(n_splits)
        within = np.flatnonzero(means >= means[best] - tolerance)
        sizes = [size(cv_results["params"][i]) for i in within]
        # Smallest size first, then the higher score.
        return int(min(zip(sizes, -means[within], within))[2])

    return refit
