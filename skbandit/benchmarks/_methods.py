"""Registry of the methods that a benchmark compares.

A method is a name and a recipe ``(task, random_state) -> Pipeline`` of
``StandardScaler()`` followed by one estimator (the benchmark datasets are
already numeric, so scaling is the only preprocessing).

Two families:

* **ours**: :class:`skbandit.BanditPrunedMLPClassifier` /
  :class:`~skbandit.BanditPrunedMLPRegressor` with every bandit policy and
  every pruning baseline, named ``"<policy>@<prune ratio>"`` (``"ucb1@0.5"``),
  plus the unpruned network ``"none"`` (once: a ratio means nothing without
  pruning). All of them share one architecture and training budget,
  :data:`OURS_DEFAULTS`.
* **peers**: scikit-learn models, named ``"sk_<model>"``: linear
  (logistic regression / ridge), k-NN, decision tree, random forest,
  histogram gradient boosting, RBF SVM, and scikit-learn's own MLP with the
  hidden sizes, epochs, batch size and learning rate of :data:`OURS_DEFAULTS`.

Our estimators (and so torch) are imported only when a pipeline is built, so
listing methods is cheap.
"""

import dataclasses
import fnmatch
import functools
import importlib

from .._options import BASELINE_NAMES, PAPER_SETTINGS, POLICY_NAMES, UNPRUNED
from ._datasets import TASKS
from ._errors import BenchmarkInputError
from ._names import (
    EXTERNAL,
    PAPER,
    SCRATCH,
    MethodName,
    check_method_ratio,
    parse_method_name,
)

__all__ = [
    "Method",
    "OURS_DEFAULTS",
    "DEFAULT_RATIOS",
    "PEERS",
    "list_methods",
    "select_methods",
    "ours_method",
]

# The one architecture and training budget of every "ours" method (and of the
# scikit-learn MLP peer): changing a value here changes every run, and the
# runner records these values in the results store.
OURS_DEFAULTS = {
    "hidden_layer_sizes": (64, 64),
    "activation": "relu",
    "max_iter": 60,
    "batch_size": 64,
    "learning_rate_init": 1e-3,
    # A fixed budget: no L2 penalty and no tolerance stop, so every method
    # trains exactly its epochs (scikit-learn's MLP peer shares both).
    "alpha": 0.0,
    "tol": 0.0,
    "fine_tune_epochs": 5,
    "device": "cpu",
}

DEFAULT_RATIOS = (0.5,)


@dataclasses.dataclass(frozen=True)
class Method:
    """One benchmarked method.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"ucb1@0.5"`` or ``"sk_knn"``.
    family : {"ours", "peer"}
        Our pruned networks or a scikit-learn peer.
    build : callable
        ``build(task, random_state) -> estimator`` (the last pipeline step).
        A module-level function or a ``functools.partial`` of one, so that a
        method pickles into joblib workers.
    params : dict
        The estimator parameters the method sets, recorded with each result.
    policy : str or None
        ``policy`` of our estimator; None for peers.
    prune_ratio : float or None
        ``prune_ratio`` of our estimator; None for peers and ``"none"``.
    """

    name: str
    family: str
    build: object
    params: dict = dataclasses.field(default_factory=dict)
    policy: str = None
    prune_ratio: float = None

    def make(self, task, random_state=None):
        """The pipeline ``StandardScaler() -> estimator`` for ``task``.

        Parameters
        ----------
        task : {"classification", "regression"}
        random_state : int or None
            Seed of the estimator (also the seed of the CV folds in a run).

        Returns
        -------
        sklearn.pipeline.Pipeline
        """
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        _check_task(task)
        return make_pipeline(StandardScaler(), self.build(task, random_state))


def _check_task(task):
    if task not in TASKS:
        raise BenchmarkInputError(f"task must be one of {TASKS}, got {task!r}")


# ----------------------------------------------------------------------------
# builders (module-level so that methods pickle)


def _scratch_params(params):
    """A "scratch@<ratio>" method: the unpruned recipe at the pruned size.

    Every hidden layer keeps as many units as per-layer pruning at that
    ratio would; the estimator's ``policy="none"`` then trains for the same
    total epochs as a pruned network (training plus fine-tuning).
    """
    from skbandit.pruning import removal_counts

    sizes = list(params["hidden_layer_sizes"])
    removed = removal_counts(sizes, params.pop("prune_ratio"))
    return {
        **params,
        "policy": UNPRUNED,
        "hidden_layer_sizes": tuple(n - r for n, r in zip(sizes, removed)),
    }


def _build_ours(task, random_state, **params):
    # Imported here: skbandit.benchmarks must not import torch up front.
    import skbandit

    if params["policy"] == SCRATCH:
        params = _scratch_params(params)
    if params["policy"] == PAPER:
        params = {**params, **PAPER_SETTINGS}
    if params["policy"] in EXTERNAL:
        # Imported here: torch-pruning is an optional dependency.
        from ._torch_pruning import EXTERNAL_SCORERS

        params["policy"] = EXTERNAL_SCORERS[params["policy"]]()
    cls = (
        skbandit.BanditPrunedMLPClassifier
        if task == "classification"
        else skbandit.BanditPrunedMLPRegressor
    )
    return cls(random_state=random_state, **params)


def _build_sklearn(task, random_state, *, classifier, regressor, params):
    module, _, name = (
        classifier if task == "classification" else regressor
    ).rpartition(".")
    estimator = getattr(importlib.import_module(module), name)(**params)
    # Only randomized models take a seed (k-NN, ridge and SVR have none).
    if "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=random_state)
    return estimator


def ours_method(
    policy,
    prune_ratio=None,
    ours_params=None,
    compensate=None,
    fine_tune_epochs=None,
    pull=None,
):
    """Our estimator with ``policy`` at ``prune_ratio``.

    Parameters
    ----------
    policy : str
        A bandit policy, a baseline, an external scorer (``"tp_taylor"``)
        or ``"none"`` (see :mod:`skbandit.benchmarks._names`).
    prune_ratio : float or None
        In (0, 1); ignored (and the name carries no ratio) for ``"none"``.
    ours_params : dict, optional
        Overrides of :data:`OURS_DEFAULTS`.
    compensate : {"none", "mean", "lstsq"} or None
        When given, set on the estimator and appended to the name
        (``"ucb1@0.5:lstsq"``).
    fine_tune_epochs : int or None
        When given, overrides the default and is appended to the name
        (``"ucb1@0.5:lstsq/ft0"``).
    pull : {"company", "single", "set"} or None
        When given, the pull scheme, appended to the name (``"ucb1@0.5+set"``).

    Returns
    -------
    Method

    Examples
    --------
    >>> ours_method("ucb1", 0.5).name
    'ucb1@0.5'
    >>> ours_method("none").name
    'none'
    >>> ours_method("magnitude", 0.5, compensate="mean", fine_tune_epochs=0).name
    'magnitude@0.5:mean/ft0'
    """
    name = MethodName(
        policy,
        None if policy == UNPRUNED else prune_ratio,
        compensate,
        fine_tune_epochs,
        pull,
    )
    return _from_name(name, ours_params)


def _from_name(name, ours_params=None):
    """The :class:`Method` a parsed :class:`MethodName` describes."""
    params = {
        **OURS_DEFAULTS,
        **(ours_params or {}),
        "policy": name.policy,
        **name.settings(),
    }
    return Method(
        name=str(name),
        family="ours",
        build=functools.partial(_build_ours, **params),
        params=params,
        policy=name.policy,
        prune_ratio=name.prune_ratio,
    )


#: Our parameters that scikit-learn's MLP shares, by the same names.
_MLP_SHARED = (
    "activation",
    "max_iter",
    "batch_size",
    "learning_rate_init",
    "alpha",
    "tol",
)


def _mlp_params(ours):
    """scikit-learn MLP settings matching our architecture and budget."""
    return {
        "hidden_layer_sizes": tuple(ours["hidden_layer_sizes"]),
        "solver": "adam",
        **{name: ours[name] for name in _MLP_SHARED},
    }


# name -> (classifier path, regressor path, params); params may depend on
# OURS_DEFAULTS (the MLP), hence a function of the "ours" parameters.
PEERS = {
    "sk_linear": (
        "sklearn.linear_model.LogisticRegression",
        "sklearn.linear_model.Ridge",
        lambda ours, task: {"max_iter": 1000} if task == "classification" else {},
    ),
    "sk_knn": (
        "sklearn.neighbors.KNeighborsClassifier",
        "sklearn.neighbors.KNeighborsRegressor",
        lambda ours, task: {},
    ),
    "sk_tree": (
        "sklearn.tree.DecisionTreeClassifier",
        "sklearn.tree.DecisionTreeRegressor",
        lambda ours, task: {},
    ),
    "sk_forest": (
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.RandomForestRegressor",
        lambda ours, task: {"n_estimators": 100},
    ),
    "sk_hgb": (
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.ensemble.HistGradientBoostingRegressor",
        lambda ours, task: {},
    ),
    "sk_svm": (
        "sklearn.svm.SVC",
        "sklearn.svm.SVR",
        lambda ours, task: {"kernel": "rbf"},
    ),
    "sk_mlp": (
        "sklearn.neural_network.MLPClassifier",
        "sklearn.neural_network.MLPRegressor",
        lambda ours, task: _mlp_params(ours),
    ),
}


def _peer_method(name, task, ours_params):
    classifier, regressor, params_of = PEERS[name]
    params = params_of({**OURS_DEFAULTS, **(ours_params or {})}, task)
    return Method(
        name=name,
        family="peer",
        build=functools.partial(
            _build_sklearn, classifier=classifier, regressor=regressor, params=params
        ),
        params=params,
    )


def list_methods(task, ratios=DEFAULT_RATIOS, ours_params=None):
    """Every method of ``task``: ours at each ratio, then the peers.

    Parameters
    ----------
    task : {"classification", "regression"}
    ratios : sequence of float, default=(0.5,)
        Prune ratios of every policy and baseline.
    ours_params : dict, optional
        Overrides of :data:`OURS_DEFAULTS` (also used by ``sk_mlp``).

    Returns
    -------
    dict of str to Method
        In a fixed order: ``"none"``, then each ratio's policies and
        baselines, then the peers.

    Examples
    --------
    >>> list(list_methods("classification"))[:3]
    ['none', 'epsilon_greedy@0.5', 'softmax@0.5']
    >>> "sk_mlp" in list_methods("regression")
    True
    """
    _check_task(task)
    ratios = sorted({check_method_ratio(r) for r in ratios})
    methods = [ours_method(UNPRUNED, ours_params=ours_params)]
    methods += [
        ours_method(policy, ratio, ours_params)
        for ratio in ratios
        for policy in (*POLICY_NAMES, *BASELINE_NAMES, *EXTERNAL, SCRATCH, PAPER)
    ]
    methods += [_peer_method(name, task, ours_params) for name in PEERS]
    return {m.name: m for m in methods}


def select_methods(task, names=None, ratios=DEFAULT_RATIOS, ours_params=None):
    """Methods chosen by names or shell-style globs.

    Parameters
    ----------
    task : {"classification", "regression"}
    names : sequence of str or None, default=None
        Exact names (``"ucb1@0.5"``, ``"sk_knn"``) or globs (``"ucb1@*"``,
        ``"sk_*"``, ``"*@0.5"``) matched against :func:`list_methods` at
        ``ratios``. An exact ``"<policy>@<ratio>"`` is accepted at any ratio.
        None selects every method.
    ratios : sequence of float, default=(0.5,)
    ours_params : dict, optional

    Returns
    -------
    dict of str to Method
        In registry order, each method once.

    Raises
    ------
    ValueError
        When a name or glob matches nothing (the message lists the names).

    Examples
    --------
    >>> list(select_methods("classification", ["ucb1@*", "sk_k*"], ratios=(0.3, 0.5)))
    ['ucb1@0.3', 'ucb1@0.5', 'sk_knn']
    >>> list(select_methods("classification", ["thompson@0.7"]))
    ['thompson@0.7']
    """
    registry = list_methods(task, ratios, ours_params)
    if names is None:
        return registry
    chosen = {}
    for pattern in names:
        matches = fnmatch.filter(registry, pattern)
        explicit = parse_method_name(pattern)
        if not matches and explicit is not None:
            method = _from_name(explicit, ours_params)
            registry[method.name] = method
            matches = [method.name]
        if not matches:
            raise BenchmarkInputError(
                f"unknown method {pattern!r}; valid names (globs allowed): "
                f"{', '.join(registry)}"
            )
        chosen.update((name, registry[name]) for name in matches)
    # Registry order, not the order of the patterns: tables read the same way
    # whatever the command line said.
    return {name: chosen[name] for name in registry if name in chosen}
