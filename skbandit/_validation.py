"""The one validation of pruning options, built from :mod:`skbandit._options`.

:data:`OPTION_CONSTRAINTS` holds, per pruning option (the fields of
:class:`~skbandit._options.PruningDefaults`), its scikit-learn parameter
constraints (:mod:`sklearn.utils._param_validation`). The estimators'
``_parameter_constraints``, :func:`skbandit.pruning.prune`,
:class:`~skbandit.pruning.BanditScorer` and
:func:`~skbandit.pruning.remove_units` take their constraints from it
(:func:`option_constraints`) and check them with :func:`check_options`:
scikit-learn's ``validate_parameter_constraints``, parameter by parameter,
with a sentence of advice where a bare range would not say why (a budget
below one pull per unit, a misspelt policy). Errors are
``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``) and read
``The 'budget' parameter of prune must be ... Got 0 instead.``

:func:`validated` applies a table to a function, as scikit-learn's
``validate_params`` does (skipped, like it, inside a call that already
validated: ``sklearn.config_context(skip_parameter_validation=True)``);
:func:`check_option_combinations` checks the options that exclude each
other.
"""

import difflib
import functools
import inspect
import numbers
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

from ._options import (
    COMPENSATIONS,
    MAX_BUDGET,
    METHOD_NAMES,
    POLICY_NAMES,
    PRIORS,
    PULLS,
    REWARDS,
    SCOPES,
    PruningDefaults,
)

__all__ = [
    "BANDIT_POLICY",
    "OPTION_CONSTRAINTS",
    "SEED",
    "Names",
    "check_option_combinations",
    "check_options",
    "option_constraints",
    "validated",
]


class Names(StrOptions):
    """``StrOptions`` whose message lists the names sorted, as a list:
    ``one of ['layer', 'global']`` (a set's order changes between runs)."""

    def __str__(self):
        return f"one of {sorted(self.options)}"


_POLICY_OBJECT = HasMethods(["reset", "select", "update"])
_SCORER_OBJECT = HasMethods(["score"])
_PULLS_PER_UNIT = Interval(Real, 1, MAX_BUDGET, closed="both")

#: Constraints of every pruning option, by its name in
#: :class:`~skbandit._options.PruningDefaults` (``pull_batch_size`` is
#: ``batch_size`` in ``prune()`` and the scorer).
OPTION_CONSTRAINTS = {
    "policy": [Names(set(METHOD_NAMES)), _POLICY_OBJECT, _SCORER_OBJECT],
    "prune_ratio": [Interval(Real, 0, 1, closed="left")],
    "budget": [_PULLS_PER_UNIT, StrOptions({"auto"})],
    "max_budget": [_PULLS_PER_UNIT],
    "pull": [Names(set(PULLS))],
    "n_rounds": [Interval(Integral, 1, None, closed="left")],
    "target_params": [Interval(Real, 0, None, closed="neither"), None],
    "target_latency": [Interval(Real, 0, 1, closed="neither"), None],
    "reward": [Names(set(REWARDS)), callable],
    "scope": [Names(set(SCOPES))],
    "compensate": [Names(set(COMPENSATIONS))],
    "pull_batch_size": [Interval(Integral, 1, None, closed="left")],
    "arms_per_round": [Interval(Integral, 1, None, closed="left"), None],
    "prior": [Names(set(PRIORS)), None],
    "prior_weight": [Interval(Integral, 0, None, closed="left")],
    "fine_tune_epochs": [Interval(Integral, 0, None, closed="left")],
}
assert set(OPTION_CONSTRAINTS) == set(PruningDefaults.__dataclass_fields__)


def option_constraints(*names, renamed=None, **overrides):
    """The constraints of the options ``names`` (all if none is given), a
    dict for ``_parameter_constraints`` or :func:`validated`.

    ``renamed`` maps an option to the caller's name for it (``{"pull_batch_size":
    "batch_size"}``); ``overrides`` replace or add constraints by the caller's
    names (e.g. ``policy`` limited to bandit policies, or ``random_state``).
    """
    renamed = renamed or {}
    table = {
        renamed.get(name, name): list(OPTION_CONSTRAINTS[name])
        for name in (names or OPTION_CONSTRAINTS)
    }
    table.update(overrides)
    return table


#: Bandit policies only (the scorer has no baselines).
BANDIT_POLICY = [Names(set(POLICY_NAMES)), _POLICY_OBJECT]


def _policy_advice(value):
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, sorted(METHOD_NAMES), n=1)
    return f"Did you mean {close[0]!r}?" if close else ""


def _pulls_advice(value):
    """Why a number of pulls per unit outside ``[1, MAX_BUDGET]`` is refused."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return ""
    if not value >= 1:  # also NaN
        return (
            "It is an average of pulls per unit: with fewer than one pull per "
            "unit some units are never measured and would be removed in index "
            "order."
        )
    if value > MAX_BUDGET:
        return (
            f"It is an average of pulls per unit: more than {MAX_BUDGET} pulls "
            "per unit barely sharpens the estimates and can run for days."
        )
    return ""


#: A sentence of advice after the message, by parameter name.
_ADVICE = {
    "policy": _policy_advice,
    "budget": _pulls_advice,
    "max_budget": _pulls_advice,
}


def check_options(constraints, params, caller):
    """Check ``params`` (``{name: value}``) against ``constraints`` (a
    ``{name: list of constraints}`` table), in the order of ``params``.

    Raises scikit-learn's ``InvalidParameterError`` naming the parameter,
    ``caller``, what it must be and the value, followed by advice where the
    range alone does not say why. Parameters without constraints are not
    checked. Nothing is checked inside
    ``sklearn.config_context(skip_parameter_validation=True)`` (the
    estimators' ``fit`` calling ``prune()``: they validated the same
    options).

    Examples
    --------
    >>> check_options(option_constraints("budget"), {"budget": 0}, "prune")
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'budget' \
parameter of prune must be a float in the range [1.0, 1000.0] or a str among \
{'auto'}. Got 0 instead. It is an average of pulls per unit: with fewer than \
one pull per unit some units are never measured and would be removed in \
index order.
    """
    if get_config()["skip_parameter_validation"]:
        return
    for name, value in params.items():
        if name not in constraints:
            continue
        try:
            validate_parameter_constraints(
                {name: constraints[name]}, {name: value}, caller_name=caller
            )
        except InvalidParameterError as error:
            advice = _ADVICE.get(name, lambda value: "")(value)
            if not advice:
                raise
            raise InvalidParameterError(f"{error} {advice}") from None


def check_option_combinations(n_rounds, target_params, target_latency):
    """Options valid alone that exclude each other (``ValueError``)."""
    if target_params is not None and target_latency is not None:
        raise ValueError("Give target_params or target_latency, not both.")
    if target_latency is not None and n_rounds != 1:
        raise ValueError("target_latency needs n_rounds=1.")


def validated(constraints):
    """Decorate a function so that its arguments are checked against
    ``constraints`` (:func:`check_options`) before it runs; the table is
    kept as ``func._skl_parameter_constraints``, as scikit-learn's
    ``validate_params`` keeps it."""

    def decorator(func):
        signature = inspect.signature(func)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{func.__qualname__} has no parameters {unknown}")

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            check_options(constraints, bound.arguments, func.__qualname__)
            return func(*args, **kwargs)

        wrapper._skl_parameter_constraints = constraints
        return wrapper

    return decorator


#: ``random_state`` of the functions that seed ``numpy.random.default_rng``.
SEED = [None, Interval(Integral, 0, None, closed="left"), np.random.Generator]
