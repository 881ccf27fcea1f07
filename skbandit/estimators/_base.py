"""What the classifier and the regressor share: parameters, and fit = train, prune,
fine-tune."""

import copy
import dataclasses
import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from joblib import Memory
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from .._options import DEFAULTS, ESTIMATOR_POLICY
from .._validation import (
    OPTION_CONSTRAINTS,
    check_option_combinations,
    check_options,
    option_constraints,
)
from ..pruning import evaluate_loss, prune
from ._checks import (
    check_device,
    check_warm_start,
    check_warm_start_network,
    layers_as_numpy,
    pruning_line,
    varying,
)
from ._path import MAX_SCORE_DROP, PATH_STEP, check_auto_settings, fit_path
from ._resources import check_estimator_memory
from ._threads import batch_work, threads_for
from ._training import (
    ACTIVATIONS,
    SOLVERS,
    TrainingData,
    TrainingDiverged,
    build_mlp,
    cached_training,
    fit_module,
    train_network,
)

__all__ = ["BaseBanditPrunedMLP"]

_SEED_MAX = np.iinfo(np.int32).max

#: Most parameters the unpruned network may have. At 4 bytes each the
#: weights alone take 4 GB, and training with Adam keeps four such copies
#: (weights, gradients, two moments) plus the pruning's working copies:
#: larger requests are nearly always a typo in ``hidden_layer_sizes``, and
#: they would fail deep inside the allocator with a message that does not
#: say which parameter to fix.
_MAX_PARAMETERS = 10**9

#: Most values (rows x features) of a sparse ``X`` densified at once: the rows
#: pruning sees, and the chunks ``predict`` densifies.
_SPARSE_DENSE_VALUES = 2**22

#: Optimisation parameters, scikit-learn's names, passed on to training.
_OPTIMISATION = (
    "solver",
    "alpha",
    "learning_rate",
    "learning_rate_init",
    "power_t",
    "shuffle",
    "tol",
    "momentum",
    "nesterovs_momentum",
    "early_stopping",
    "validation_fraction",
    "beta_1",
    "beta_2",
    "epsilon",
    "n_iter_no_change",
)


def _check_float32_weights(weights, sample_weight, class_weights):
    """Training sums the weights of a batch in float32: a sum beyond its range
    is inf and every loss NaN, which would read as a diverged training."""
    with np.errstate(over="ignore"):
        total = weights.sum()
    largest = np.finfo(np.float32).max
    if total <= largest:
        return
    name = " times ".join(
        name
        for name, given in (
            ("sample_weight", sample_weight),
            ("class_weight", class_weights),
        )
        if given is not None
    )
    raise ValueError(
        f"{name} is too large for float32, the precision the network is "
        f"trained in: the weights sum to {total:.3g}, more than {largest:.3g}. "
        "Divide them by a constant (e.g. their mean): the loss is their "
        "weighted mean, so only the weight of the alpha penalty changes."
    )


def _beyond_float32(X):
    """Whether ``X`` holds values beyond float32's range, the precision the
    network is trained in (they become inf there)."""
    values = X.data if sp.issparse(X) else X
    return bool(values.size) and np.abs(values).max() > np.finfo(np.float32).max


#: scikit-learn's error when training leaves non-finite weights.
NON_FINITE_WEIGHTS = (
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed."
)


def _parameter_device(module):
    """The device of ``module``'s parameters (None: no module or none)."""
    parameter = next(module.parameters(), None) if module is not None else None
    return None if parameter is None else parameter.device


class BaseBanditPrunedMLP(BaseEstimator):
    """Base class for bandit-pruned MLP estimators. Do not use directly."""

    _parameter_constraints = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", "cosine"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        # The pruning options: the constraints prune() and the bandit scorer
        # share (skbandit._validation), prune_ratio also "auto" (the path).
        **option_constraints(
            *(name for name in DEFAULTS.__dataclass_fields__ if "prior" not in name),
            prune_ratio=[
                *OPTION_CONSTRAINTS["prune_ratio"],
                StrOptions({"auto"}),
            ],
            fine_tune_epochs=[
                *OPTION_CONSTRAINTS["fine_tune_epochs"],
                StrOptions({"auto"}),
            ],
        ),
        "max_score_drop": [Interval(Real, 0, None, closed="left")],
        "path_step": [Interval(Real, 0, 1, closed="neither")],
        "memory": [None, str, os.PathLike, Memory],
        "device": [str, HasMethods(["__str__"])],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.warm_start = warm_start
        self.policy = policy
        self.prune_ratio = prune_ratio
        self.max_score_drop = max_score_drop
        self.path_step = path_step
        self.budget = budget
        self.max_budget = max_budget
        self.pull = pull
        self.n_rounds = n_rounds
        self.target_params = target_params
        self.target_latency = target_latency
        self.reward = reward
        self.scope = scope
        self.compensate = compensate
        self.pull_batch_size = pull_batch_size
        self.arms_per_round = arms_per_round
        self.fine_tune_epochs = fine_tune_epochs
        self.memory = memory
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- what subclasses define ---------------------------------------------

    def _encode_targets(self, y):
        """Validate ``y``, set target attributes; return (targets, n_outputs)."""
        raise NotImplementedError

    def _training_targets(self, targets, weights, first):
        """The targets training reads, from the encoded ones of the training
        rows and their weights (None: equal); ``first``: a ``fit`` or the
        first ``partial_fit`` call."""
        return targets

    def _class_weights(self, targets):
        """Per-sample weights from ``class_weight`` (None: all 1)."""
        return None

    #: Loss of the pruning (a name or callable understood by
    #: :func:`skbandit.pruning.prune`).
    _loss = None
    #: The matching torch criterion class.
    _criterion = None
    #: Whether the validation split is stratified.
    _stratify = False
    #: Fewest samples ``fit`` takes: a classifier needs two classes, so two
    #: samples (the regressor fits one, as scikit-learn's MLPRegressor).
    _min_fit_samples = 2
    #: ``score(y_pred, y, sample_weight)`` of the validation split (torch).
    _validation_score = None

    # -- parameter checks ------------------------------------------------------

    def _validate_params(self):
        # scikit-learn's check, with the advice prune() gives (a misspelt
        # policy's closest name, why a budget is out of range), and the
        # options that exclude each other, before training.
        check_options(
            self._parameter_constraints,
            self.get_params(deep=False),
            type(self).__name__,
        )
        check_option_combinations(
            self.n_rounds, self.target_params, self.target_latency
        )

    def _check_training_options(self):
        check_device(self.device)

    @property
    def _early_stopping(self):
        """Whether training holds out a validation split: scikit-learn's
        ``solver="lbfgs"`` ignores ``early_stopping``, and so does this."""
        return self.early_stopping and self.solver != "lbfgs"

    def _validate_hidden_layer_sizes(self, pruning=True):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or sizes.size == 0 or sizes.dtype.kind not in "iu":
            raise ValueError(
                "hidden_layer_sizes must be a non-empty sequence of integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        if np.any(sizes < 1):
            raise ValueError(
                f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes!r}."
            )
        # As scikit-learn, one unit is a layer; pruning keeps at least one
        # unit per layer, so such a layer stays whole.
        prunes = not (isinstance(self.policy, str) and self.policy == "none")
        if pruning and prunes and self.prune_ratio != 0 and np.any(sizes == 1):
            warnings.warn(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} has a layer of "
                "one unit: pruning keeps at least one unit per layer, so that "
                "layer is not pruned.",
                UserWarning,
                stacklevel=3,
            )
        return [int(s) for s in sizes]

    def _check_n_rounds(self, sizes):
        # Before training: prune() would only reject it after.
        if self.n_rounds > sum(sizes):
            raise ValueError(
                f"n_rounds={self.n_rounds} exceeds the {sum(sizes)} hidden "
                "neurons; use at most one round per neuron."
            )

    def _check_network_size(self, n_features, sizes, n_outputs):
        """Refuse a network too large to allocate, before allocating it."""
        widths = [n_features, *sizes, n_outputs]
        # Python ints: the count of an absurd request overflows int64.
        n_params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))
        if n_params > _MAX_PARAMETERS:
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} is too large: "
                f"with {n_features} features and {n_outputs} outputs the "
                f"network would have {n_params:.3g} parameters, more than the "
                f"{_MAX_PARAMETERS:.0e} this estimator trains."
            )

    def _check_memory(self):
        """A cache location must be a directory, not a file."""
        location = self.memory
        if isinstance(location, (str, os.PathLike)) and os.path.exists(location):
            if not os.path.isdir(location):
                raise ValueError(
                    f"memory={location!r} is a file; memory must be a cache "
                    "directory (created if missing), a joblib.Memory or None."
                )

    def _check_validation_split(self, targets):
        """scikit-learn's checks of the ``early_stopping`` split, in its order
        and words: a stratified split needs two samples of every class, and
        the split (``ceil(validation_fraction * n)`` rows, as
        ``train_test_split`` and skorch hold out) two validation rows."""
        if not self._early_stopping:
            return
        n_samples = targets.shape[0]
        if self._stratify:
            self._check_stratified_split(targets)
        n_valid = int(np.ceil(self.validation_fraction * n_samples))
        if n_valid < 2 or n_samples - n_valid < 1:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset. (early_stopping holds out a "
                f"validation split: validation_fraction={self.validation_fraction} "
                f"of {n_samples} samples leaves {n_valid} for validation and "
                f"{n_samples - n_valid} for training; validation needs at least "
                "2. Or use early_stopping=False.)"
            )

    def _check_stratified_split(self, targets):
        """A stratified split needs two samples of every class (classifiers)."""

    def _validate_X(self, X, reset, min_samples=None, check_range=True):
        """``X`` as float (CSR when sparse); a hint to encode string features.

        ``check_range=False`` leaves values beyond float32's range to
        training, which then ends in scikit-learn's error on non-finite
        weights (see :meth:`_check_finite_weights`)."""
        if min_samples is None:
            min_samples = self._min_fit_samples if reset else 1
        try:
            X = validate_data(
                self,
                X,
                reset=reset,
                accept_sparse="csr",
                dtype=[np.float64, np.float32],
                ensure_min_samples=min_samples,
            )
        except ValueError as error:
            if "could not convert" not in str(error):
                raise
            raise ValueError(
                f"{error}. X has non-numeric (e.g. string) features; encode them "
                "first, e.g. make_pipeline(make_column_transformer("
                "(OneHotEncoder(), categorical_columns), remainder='passthrough'), "
                "estimator), or OrdinalEncoder."
            ) from error
        if check_range and _beyond_float32(X):
            raise ValueError(
                "Input X contains values too large for float32 (|x| > 3.4e38), "
                "the precision the network is trained in; rescale X (e.g. "
                "StandardScaler)."
            )
        return X

    # -- fit ---------------------------------------------------------------------

    def _fit(self, X, y, sample_weight, validation_data=None):
        try:
            return self._fit_unchecked(X, y, sample_weight, validation_data)
        except BaseException:
            self._forget_fit()
            raise

    #: Fitted attributes that hold torch modules.
    _MODULE_ATTRIBUTES = ("module_", "unpruned_module_")

    def __getstate__(self):
        # Tensors pickle with their device, and a GPU fit's pickle would not
        # load where CUDA is missing: fitted modules travel on the CPU, with
        # the device they were on. A copy: BaseEstimator may hand back the
        # instance's own __dict__.
        state = dict(super().__getstate__())
        for name in self._MODULE_ATTRIBUTES:
            device = _parameter_device(state.get(name))
            if device is not None and device.type != "cpu":
                state[name] = copy.deepcopy(state[name]).cpu()
                state["_pickled_from"] = str(device)
        return state

    def __setstate__(self, state):
        state = dict(state)
        device = state.pop("_pickled_from", None)
        super().__setstate__(state)
        if device is None:
            return
        fitted = [n for n in self._MODULE_ATTRIBUTES if n in state]
        try:
            check_device(device)
            moved = {name: getattr(self, name).to(device) for name in fitted}
        except (ValueError, RuntimeError, AssertionError):
            # No such device here (torch asserts for builds without one).
            warnings.warn(
                f"This estimator was fitted on {device!r}, which this machine "
                "does not have: it predicts on the CPU. Set device='cpu' "
                "before refitting it here.",
                UserWarning,
                stacklevel=2,
            )
            return
        for name, module in moved.items():
            setattr(self, name, module)

    def _forget_fit(self):
        """Drop every fitted attribute: a failed fit leaves the estimator
        unfitted (check_is_fitted fails), not half fitted."""
        for name in list(vars(self)):
            if (name.endswith("_") and not name.startswith("__")) or name in (
                "_y_ndim",
                "_multilabel",
                "_fit_dtype",
                "_partial_state",
                "_X_beyond_float32",
            ):
                delattr(self, name)

    def _fit_unchecked(self, X, y, sample_weight, validation_data):
        self._check_training_options()
        check_auto_settings(self, validation_data)
        sizes = self._validate_hidden_layer_sizes()
        self._check_n_rounds(sizes)
        previous = self._warm_start_module()
        check_warm_start_network(
            previous, sizes, self.hidden_layer_sizes, self.activation
        )
        X = self._validate_X(X, reset=True, check_range=False)
        self._X_beyond_float32 = _beyond_float32(X)
        # A fit starts a fresh optimizer; partial_fit then starts its own.
        self._partial_state = None
        # coefs_ and intercepts_ come in X's precision, as scikit-learn's.
        self._fit_dtype = X.dtype
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        targets, n_outputs = self._encode_targets(y)
        self._check_network_size(X.shape[1], sizes, n_outputs)
        check_estimator_memory(self, X.shape[0], X.shape[1], sizes, n_outputs)
        self._check_memory()
        X, targets, weights = self._training_rows(X, targets, sample_weight)
        targets = self._training_targets(targets, weights, first=True)
        self._check_validation_split(targets)
        check_warm_start(previous, X.shape[1], n_outputs)

        self._warn_clipped_batch(X.shape[0])
        work = batch_work(X.shape[1], sizes, n_outputs, self._batch_size(X.shape[0]))
        with threads_for(work):
            return self._train_prune_tune(
                X, targets, weights, sizes, n_outputs, previous, validation_data
            )

    def _train_prune_tune(
        self, X, targets, weights, sizes, n_outputs, previous, validation_data
    ):
        """Train, prune and fine-tune on validated data; set fitted attributes."""
        rng = check_random_state(self.random_state)
        train_seed, prune_seed, tune_seed = rng.randint(_SEED_MAX, size=3)
        self.fit_times_ = {}
        if self.prune_ratio == "auto":
            seeds = (int(train_seed), prune_seed, int(tune_seed))
            return fit_path(
                self,
                X,
                targets,
                weights,
                sizes,
                n_outputs,
                previous,
                seeds,
                validation_data=validation_data,
            )
        # A fixed ratio has no path to choose along.
        self.path_ = self.chosen_ = None
        module, history = self._train(
            X, targets, weights, sizes, n_outputs, int(train_seed), previous
        )
        self.unpruned_module_ = copy.deepcopy(module).eval()
        self._record_training(history, X.shape[0], sizes)
        pruning_rows = self._pruning_data(X, targets, weights, prune_seed)
        pruned, report, round_history = self._prune(
            module, pruning_rows, X, targets, weights, prune_seed, tune_seed
        )
        tune_history = []
        tune_epochs = self._final_fine_tune_epochs(report)
        if tune_epochs:
            tune_history, report = self._fine_tune(
                pruned,
                report,
                pruning_rows,
                TrainingData(X, targets, weights),
                tune_epochs,
                int(tune_seed),
            )
        return self._set_fitted(pruned, report, history, round_history + tune_history)

    def _set_fitted(self, pruned, report, history, tuning):
        """Set the attributes of the fitted network; return ``self``.

        ``history`` is the training's (its attributes are set by
        :meth:`_record_training`), ``tuning`` every epoch after it.
        """
        self.module_ = pruned.eval()
        self.pruning_ = report
        self.history_ = history + tuning
        self.fine_tune_loss_curve_ = self._losses(tuning)
        self.fine_tune_n_iter_ = len(tuning)
        coefs, intercepts = layers_as_numpy(self.module_)
        dtype = getattr(self, "_fit_dtype", np.float32)
        self.coefs_ = [c.astype(dtype) for c in coefs]
        self.intercepts_ = [b.astype(dtype) for b in intercepts]
        return self

    def _loss_factor(self):
        """What turns the training loss into scikit-learn's (1: the same)."""
        return 1.0

    def _losses(self, history):
        """The training losses of ``history`` on scikit-learn's scale."""
        factor = self._loss_factor()
        return [float(row["train_loss"]) * factor for row in history]

    # -- partial_fit -------------------------------------------------------------

    def _check_solver(self):
        """``partial_fit`` exists for the stochastic solvers only (as in
        scikit-learn: ``hasattr(estimator, "partial_fit")`` says so)."""
        if self.solver == "lbfgs" or self.solver not in SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    def _partial_fit(self, X, y, sample_weight, classes=None):
        """One epoch of training on ``X``, no pruning; see ``partial_fit``."""
        first = not hasattr(self, "module_")
        try:
            return self._partial_fit_unchecked(X, y, sample_weight, classes, first)
        except BaseException:
            if first:
                self._forget_fit()
            raise

    def _partial_fit_unchecked(self, X, y, sample_weight, classes, first):
        if self.early_stopping:
            # scikit-learn's words: a validation split of one epoch's rows
            # says nothing about when to stop.
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.learning_rate == "cosine":
            # Its schedule anneals to 0 over a known number of epochs; one
            # call is one epoch, so the rate would be 0 from the second on.
            raise ValueError(
                "partial_fit does not support learning_rate='cosine': the "
                "schedule needs the total number of epochs, and each call is "
                "one. Use 'constant', 'invscaling' or 'adaptive', or fit."
            )
        self._check_training_options()
        sizes = self._validate_hidden_layer_sizes(pruning=False)
        # One sample is a batch, as in scikit-learn's partial_fit.
        X = self._validate_X(X, reset=first, min_samples=1, check_range=False)
        if first:
            self._fit_dtype = X.dtype
        self._X_beyond_float32 = _beyond_float32(X)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        targets, n_outputs = self._encode_partial_targets(y, classes, first)
        X, targets, weights = self._training_rows(X, targets, sample_weight)
        self._warn_clipped_batch(X.shape[0])
        targets = self._training_targets(targets, weights, first)
        # The first call builds the network from the seed fit would train it
        # from; the optimizer's state and the batch orders' random stream
        # then carry over from call to call (``_partial_state``), so that n
        # calls on the same data train as n epochs of fit's training do.
        base = check_random_state(self.random_state).randint(_SEED_MAX, size=3)[0]
        state = getattr(self, "_partial_state", None)
        if first or state is None:
            calls = len(getattr(self, "loss_curve_", ()))
            seed = (
                int(base)
                if first
                else int(
                    np.random.SeedSequence([int(base), calls]).generate_state(1)[0]
                )
            )
            state = self._partial_state = {}
        else:
            seed = int(base)  # unused: the stream continues from state
        if first:
            self._check_network_size(X.shape[1], sizes, n_outputs)
            module = build_mlp(
                X.shape[1],
                sizes,
                n_outputs,
                self.activation,
                generator=torch.Generator().manual_seed(seed),
            )
            self._start_partial_fit(module, sizes)
        params = dict(
            self._training_params(X.shape[0]), early_stopping=False, stratify=False
        )
        work = batch_work(X.shape[1], sizes, n_outputs, params["batch_size"])
        start = time.perf_counter()
        with threads_for(work):
            history = fit_module(
                self.module_.train(),
                TrainingData(X, targets, weights),
                epochs=1,
                seed=seed,
                verbose=self.verbose,
                log_factor=self._loss_factor(),
                state=state,
                **params,
            )
        self.fit_times_ = {"train": time.perf_counter() - start}
        self.module_.eval()
        self._check_finite_weights(self.module_, history)
        self.history_ = self.history_ + history
        self.loss_curve_ = self.loss_curve_ + self._losses(history)
        # As scikit-learn: n_iter_ counts this call's epochs, loss_curve_
        # and t_ every call's.
        self.n_iter_ = 1
        self.loss_ = self.loss_curve_[-1]
        self.best_loss_ = min(self.loss_curve_)
        self.t_ += X.shape[0]
        self.validation_scores_ = self.best_validation_score_ = None
        coefs, intercepts = layers_as_numpy(self.module_)
        dtype = getattr(self, "_fit_dtype", np.float32)
        self.coefs_ = [c.astype(dtype) for c in coefs]
        self.intercepts_ = [b.astype(dtype) for b in intercepts]
        return self

    def _start_partial_fit(self, module, sizes):
        """The attributes of a network that ``partial_fit`` starts."""
        self.module_ = self.unpruned_module_ = module.to(self.device)
        self.pruning_ = self.path_ = self.chosen_ = None
        self.history_, self.loss_curve_ = [], []
        self.n_iter_ = self.t_ = 0
        self.fine_tune_n_iter_, self.fine_tune_loss_curve_ = 0, []
        self.n_layers_ = len(sizes) + 2
        self.train_cache_hit_ = False

    def _encode_partial_targets(self, y, classes, first):
        """``(targets, n_outputs)`` of a ``partial_fit`` call."""
        raise NotImplementedError

    def _warm_start_module(self):
        """The network ``warm_start`` continues from, or None."""
        if self.warm_start and hasattr(self, "unpruned_module_"):
            return self.unpruned_module_
        return None

    def _training_rows(self, X, targets, sample_weight):
        """``(X, targets, weights)`` as training reads them: lengths checked,
        weights applied (see :meth:`_weighted_rows`), ``X`` float32 and
        writable (torch cannot wrap read-only, e.g. joblib memmapped, arrays);
        a sparse ``X`` stays sparse (CSR)."""
        if targets.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {X.shape[0]} and "
                f"{targets.shape[0]}."
            )
        X, targets, weights = self._weighted_rows(X, targets, sample_weight)
        X = (
            X.astype(np.float32)
            if sp.issparse(X)
            else np.require(X, dtype=np.float32, requirements=["C", "W"])
        )
        return X, targets, weights

    def _weighted_rows(self, X, targets, sample_weight):
        """Rows and weights that training sees: ``sample_weight`` times the
        class weights, rows of weight 0 dropped (they add nothing to any
        weighted loss, so a zero weight equals leaving the row out)."""
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        class_weights = self._class_weights(targets)
        if class_weights is not None:
            weights = class_weights if weights is None else weights * class_weights
        if weights is None:
            return X, targets, None
        _check_float32_weights(weights, sample_weight, class_weights)
        keep = weights > 0
        if keep.sum() < self._min_fit_samples:
            raise ValueError(
                "sample_weight (times class_weight) must be positive for at "
                f"least {self._min_fit_samples} samples, got {int(keep.sum())}."
            )
        if not keep.all():
            X, targets, weights = X[keep], targets[keep], weights[keep]
        return X, targets, weights

    def _warn_clipped_batch(self, n_samples):
        """scikit-learn's warning when a stochastic solver's ``batch_size``
        exceeds the rows (L-BFGS ignores the batch size)."""
        if (
            self.solver != "lbfgs"
            and self.batch_size != "auto"
            and self.batch_size > n_samples
        ):
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is "
                "going to be clipped",
                UserWarning,
                stacklevel=4,
            )

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        return min(self.batch_size, n_samples)

    def _training_params(self, n_samples):
        """Everything besides data, epochs and seed that shapes training."""
        params = dict(
            {name: getattr(self, name) for name in _OPTIMISATION},
            batch_size=self._batch_size(n_samples),
            criterion=self._criterion,
            score=self._validation_score,
            stratify=self._stratify and self._early_stopping,
            device=str(self.device),
        )
        if self.solver == "lbfgs":
            # Only there: the other solvers' cache keys stay as they were.
            params["max_fun"] = self.max_fun
        return params

    def _train(self, X, targets, weights, sizes, n_outputs, seed, previous):
        """The trained, unpruned network and its history (cached by ``memory``
        unless continuing a warm start)."""
        arguments = dict(
            hidden_layer_sizes=sizes,
            activation=self.activation,
            n_outputs=n_outputs,
            epochs=self.max_iter,
            seed=seed,
            verbose=self.verbose,
            init=previous,
            log_factor=self._loss_factor(),
            **self._training_params(X.shape[0]),
        )
        start = time.perf_counter()
        # A warm start continues the previous network: nothing to cache.
        if previous is None:
            (module, history), self.train_cache_hit_ = cached_training(
                self.memory, X, targets, weights, **arguments
            )
        else:
            self.train_cache_hit_ = False
            module, history = train_network(X, targets, weights, **arguments)
        self.fit_times_["train"] = time.perf_counter() - start
        self._check_finite_weights(module, history)
        self._log(
            f"training: {len(history)}/{self.max_iter} epochs, "
            f"{self.fit_times_['train']:.2f} s, loss "
            f"{history[0]['train_loss']:.4f}→{history[-1]['train_loss']:.4f}"
            + (" (cached)" if self.train_cache_hit_ else "")
        )
        return module, history

    def _check_finite_weights(self, module, history):
        """scikit-learn's error when training left non-finite weights (with
        ``early_stopping`` the best validation score's weights are kept, which
        are finite: no error then, as in scikit-learn)."""
        if all(torch.isfinite(p).all() for p in module.parameters()):
            return
        losses = [row["train_loss"] for row in history]
        first = next(
            (i for i, loss in enumerate(losses) if not np.isfinite(loss)), None
        )
        detail = ""
        if first is not None:
            detail = (
                f" Training diverged: the training loss was {losses[first]} "
                f"first at epoch {first + 1}."
            )
        if getattr(self, "_X_beyond_float32", False):
            detail += (
                " X holds values beyond float32's range (|x| > 3.4e38), the "
                "precision the network is trained in."
            )
        raise ValueError(
            f"{NON_FINITE_WEIGHTS}{detail} Scale the features (e.g. "
            "StandardScaler), lower `learning_rate_init` or check the data for "
            "extreme values."
        )

    def _record_training(self, history, n_rows, sizes):
        """scikit-learn's MLP attributes of the training phase (``n_rows``
        rows trained on, a validation split included), and its
        ``ConvergenceWarning``."""
        self.n_iter_ = len(history)
        self.loss_curve_ = self._losses(history)
        self.loss_ = self.loss_curve_[-1]
        n_train = n_rows
        if self._early_stopping:
            # skorch's split, as scikit-learn's, holds out ceil(fraction * n).
            n_train -= int(np.ceil(self.validation_fraction * n_rows))
        self.t_ = self.n_iter_ * n_train
        self.n_layers_ = len(sizes) + 2
        if self._early_stopping:
            self.validation_scores_ = [row["valid_score"] for row in history]
            self.best_validation_score_ = max(self.validation_scores_)
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_)
        if history[-1].get("diverged"):
            # Only with early_stopping (else _check_finite_weights raised):
            # training ended short of max_iter, on the best weights.
            message = (
                f"Training diverged: the weights were not finite after epoch "
                f"{self.n_iter_} of max_iter={self.max_iter}; the weights of the "
                "best validation score were kept. Lower `learning_rate_init` or "
                "scale the data."
            )
        elif history[-1].get("max_fun_reached"):
            # Stopped short of convergence, as scikit-learn warns.
            message = (
                "lbfgs failed to converge: the number of loss evaluations "
                f"reached max_fun={self.max_fun}; increase max_fun or max_iter, "
                "or scale the data."
            )
        elif self.n_iter_ == self.max_iter and not history[-1].get("converged"):
            message = (
                f"lbfgs failed to converge after {self.max_iter} iteration(s): "
                "increase the number of iterations (max_iter) or scale the data."
                if self.solver == "lbfgs"
                else f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                "reached and the optimization hasn't converged yet."
            )
        else:
            return
        warnings.warn(message, ConvergenceWarning, stacklevel=2)

    def _pruning_data(self, X, targets, weights, seed):
        """Dense tensors of the rows pruning scores on.

        All rows, except: with sample weights that are not all equal, a
        weighted resample (with replacement, as many rows as the data) so
        that the pulls' losses and every baseline see the weighted
        distribution; with a sparse ``X``, at most ``2**22`` values
        (sampled rows), densified.
        """
        n = X.shape[0]
        n_rows = n
        if sp.issparse(X):
            n_rows = max(2, min(n, _SPARSE_DENSE_VALUES // max(X.shape[1], 1)))
        rows = slice(None)
        rng = np.random.default_rng(seed)
        if varying(weights):
            rows = np.sort(rng.choice(n, size=n_rows, p=weights / weights.sum()))
        elif n_rows < n:
            rows = np.sort(rng.choice(n, size=n_rows, replace=False))
        X_rows = X[rows]
        if sp.issparse(X_rows):
            X_rows = X_rows.toarray()
        self._warn_few_pruning_rows(X_rows.shape[0])
        return (
            torch.as_tensor(X_rows, device=self.device),
            torch.as_tensor(targets[rows], device=self.device),
        )

    def _warn_few_pruning_rows(self, n_rows):
        """Warn when pruning would score the units of a layer on fewer rows
        than the layer has units: the activations' Gram matrix, which the
        least-squares refit and OBS solve with and which the unit scores
        estimate, then has a lower rank than the layer is wide. A
        ``RuntimeWarning``, as numpy's ``RankWarning`` and scipy's
        ``LinAlgWarning`` for rank-deficient systems."""
        if isinstance(self.policy, str) and self.policy == "none":
            return
        widest = int(np.max(self.hidden_layer_sizes))
        if self.prune_ratio != 0 and n_rows < widest:
            warnings.warn(
                f"Pruning scores the units on {n_rows} rows, fewer than the "
                f"{widest} units of the widest hidden layer: the unit scores "
                "and the least-squares refit are underdetermined. Use at least "
                f"{widest} rows for pruning, or narrower hidden layers.",
                RuntimeWarning,
                stacklevel=4,
            )

    def _prune(self, module, pruning_rows, X, targets, weights, prune_seed, tune_seed):
        """``(pruned, report, fine-tuning history between rounds)``."""
        X_prune, y_prune = pruning_rows
        round_tuner, round_history = self._round_fine_tuner(
            X, targets, weights, tune_seed
        )
        start = time.perf_counter()
        pruned, report = prune(
            module.to(self.device),
            X_prune,
            y_prune,
            prune_ratio=self.prune_ratio,
            n_rounds=self.n_rounds,
            target_params=self.target_params,
            target_latency=self.target_latency,
            between_rounds=round_tuner,
            random_state=prune_seed,
            **self._prune_settings(),
        )
        between = sum(row["dur"] for row in round_history)
        self.fit_times_["prune"] = time.perf_counter() - start - between
        self.fit_times_["fine_tune"] = between
        self._log(f"pruning: {pruning_line(report)}, {self.fit_times_['prune']:.2f} s")
        return pruned, report, round_history

    def _prune_settings(self):
        """How every pruning of this estimator scores and removes units."""
        return dict(
            policy=self.policy,
            loss=self._loss,
            budget=self.budget,
            max_budget=self.max_budget,
            pull=self.pull,
            batch_size=self.pull_batch_size,
            reward=self.reward,
            scope=self.scope,
            arms_per_round=self.arms_per_round,
            compensate=self.compensate,
        )

    def _fine_tune(self, pruned, report, pruning_rows, data, epochs, seed):
        """Fine-tune ``pruned`` in place; its history and the updated report."""
        start = time.perf_counter()
        history = self._tune(pruned, data, epochs, seed)
        elapsed = time.perf_counter() - start
        self.fit_times_["fine_tune"] += elapsed
        loss = evaluate_loss(pruned.eval(), *pruning_rows, self._loss)
        self._log(
            f"fine-tuning: {len(history)} epochs, {elapsed:.2f} s, loss "
            f"{report.loss_after:.4f}→{loss:.4f}"
        )
        report = dataclasses.replace(
            report, time_fine_tune=elapsed, loss_after_fine_tune=loss
        )
        return history, report

    def _tune(self, module, data, epochs, seed):
        """Fine-tune ``module`` in place; its history. A fine-tuning whose loss
        is not finite is undone, with a ``ConvergenceWarning``: the network
        stays as pruned (scikit-learn, which does not fine-tune, would keep
        it), and the history is empty."""
        before = copy.deepcopy(module.state_dict())
        try:
            return fit_module(
                module,
                data,
                epochs=epochs,
                seed=seed,
                verbose=self.verbose,
                phase="fine-tuning",
                **self._training_params(len(data)),
            )
        except TrainingDiverged as error:
            module.load_state_dict(before)
            warnings.warn(
                f"Fine-tuning was undone, the pruned network kept as it was: {error}",
                ConvergenceWarning,
                stacklevel=3,
            )
            return []

    def _fine_tune_epochs(self):
        """``fine_tune_epochs``, with ``"auto"`` resolved: the shared default
        (``DEFAULTS.fine_tune_epochs``, 5) with a stochastic solver, whose
        epochs are passes over the data, and ``max_iter`` with L-BFGS, whose
        epochs are single full-batch iterations: its fine-tuning then runs
        to convergence, as its training does."""
        if self.fine_tune_epochs != "auto":
            return self.fine_tune_epochs
        if self.solver == "lbfgs":
            return self.max_iter
        return DEFAULTS.fine_tune_epochs

    def _final_fine_tune_epochs(self, report):
        """Epochs of training after the last pruning round.

        Every method trains ``max_iter + n_rounds * fine_tune_epochs``
        epochs in all, whatever it removed: a pruning method fine-tunes
        between its rounds and after the last one; ``policy="none"``
        (``report.n_rounds == 0``) trains all of those epochs here, so an
        unpruned network is never compared after less training.
        """
        if report.n_rounds == 0:
            return self._fine_tune_epochs() * self.n_rounds
        return self._fine_tune_epochs()

    def _round_fine_tuner(self, X, targets, weights, seed):
        """Fine-tuning between pruning rounds (``n_rounds > 1``) and its history.

        Returns ``(None, [])`` without rounds or fine-tuning.
        """
        history = []
        epochs = self._fine_tune_epochs()
        if not epochs or self.n_rounds == 1:
            return None, history
        data = TrainingData(X, targets, weights)
        # Each phase draws its own batch order: one seed per round between
        # rounds, derived from the final fine-tuning's.
        rounds = np.random.SeedSequence(int(seed)).generate_state(self.n_rounds - 1)
        seeds = iter(rounds)

        def fine_tune(module):
            # prune() runs without gradients; training needs them back.
            with torch.enable_grad():
                history.extend(self._tune(module, data, epochs, int(next(seeds))))
            return module

        return fine_tune, history

    def _log(self, line):
        if self.verbose:
            print(line, flush=True)

    # -- predict -------------------------------------------------------------------

    @torch.no_grad()
    def _forward(self, X):
        """Raw network output on ``X`` as a float64 numpy array, and the
        dtype predictions come in.

        The forward pass runs in float64 on a copy of ``module_``: in float32
        a row's result can depend on which rows share its batch (the matrix
        kernels block rows differently), and predictions must not. A sparse
        ``X`` is densified in chunks. Predictions are then cast as
        scikit-learn's MLPs give them: float32 when both ``X`` and the fit's
        ``X`` are float32 (``coefs_`` are float32), else float64.
        """
        check_is_fitted(self, "module_")
        X = self._validate_X(X, reset=False)
        dtype = np.result_type(X.dtype, self.coefs_[0].dtype)
        return self._forward_float64(X), dtype

    def _forward_float64(self, X):
        module = copy.deepcopy(self.module_).to(torch.float64)
        device = next(module.parameters()).device
        if not sp.issparse(X):
            X = np.require(X, dtype=np.float64, requirements=["C", "W"])
            return module(torch.as_tensor(X, device=device)).cpu().numpy()
        chunk = max(1, _SPARSE_DENSE_VALUES // max(X.shape[1], 1))
        outputs = [
            module(
                torch.as_tensor(
                    X[i : i + chunk].toarray().astype(np.float64, copy=False),
                    device=device,
                )
            )
            for i in range(0, X.shape[0], chunk)
        ]
        return torch.cat(outputs).cpu().numpy()
