"""What the classifier and the regressor share: parameters, and fit = train, prune,
fine-tune."""

import copy
import dataclasses
import os
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory, validate_data

from .._cache import verified_call
from .._options import COMPENSATIONS, DEFAULTS, METHOD_NAMES, PULLS, REWARDS, SCOPES
from ..pruning import MAX_BUDGET, evaluate_loss, prune
from ._threads import batch_work, threads_for
from ._training import ACTIVATIONS, OPTIMIZERS, cached_training, fit_module

__all__ = ["BaseBanditPrunedMLP", "shared_parameters_doc"]

_SEED_MAX = np.iinfo(np.int32).max

#: Most parameters the unpruned network may have. At 4 bytes each the
#: weights alone take 4 GB, and training with Adam keeps four such copies
#: (weights, gradients, two moments) plus the pruning's working copies:
#: larger requests are nearly always a typo in ``hidden_layer_sizes``, and
#: they would fail deep inside the allocator with a message that does not
#: say which parameter to fix.
_MAX_PARAMETERS = 10**9


# The Parameters section both estimators share (numpydoc), with the defaults
# read from the one registry so that the docs cannot drift from the code.
_PARAMETERS_DOC = """Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Width of each hidden layer before pruning (each at least 2; the
        whole network at most 10**9 parameters).
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Hidden activation.
    policy : str or policy object, default=%(policy)s
        How the neurons to remove are chosen. A bandit policy:
        ``"epsilon_greedy"``, ``"softmax"``, ``"ucb1"``, ``"thompson"``,
        ``"hedge"``, ``"exp3"``, or an object following
        :class:`skbandit.policies.BasePolicy`; a baseline: ``"magnitude"``
        (smallest incoming-weight norm), ``"activation"`` (least varying
        activation), ``"random"``; or ``"none"`` (no pruning). One
        ``GridSearchCV`` grid can therefore compare every method.
    prune_ratio : float in [0, 1), default=%(prune_ratio)s
        Fraction of hidden neurons removed (per layer or overall, see
        ``scope``); a layer always keeps at least one neuron.
    budget : float in [1, 1000] or "auto", default=%(budget)s
        Average bandit pulls per neuron, or ``"auto"``: each bandit stops as
        soon as the neurons it would remove and those it would keep are
        separated by confidence bounds (at most ``max_budget`` per neuron).
        At least one pull per neuron (fewer leaves neurons unmeasured), at
        most :data:`skbandit.pruning.MAX_BUDGET` (1000).
    max_budget : float in [1, 1000], default=%(max_budget)s
        Cap of pulls per neuron when ``budget="auto"``.
    pull : {"single", "set"}, default=%(pull)s
        A pull masks one neuron, or the whole set the bandit would remove
        (combinatorial feedback, every neuron of the set shares its reward).
    n_rounds : int, default=%(n_rounds)s
        Iterative pruning: reach the target in ``n_rounds`` geometric steps,
        re-scoring the survivors each time (bandits warm-started) and
        fine-tuning ``fine_tune_epochs`` after every round. At most the
        number of hidden neurons.
    target_params : int or float, default=%(target_params)s
        Prune to a parameter count (or a fraction of it, if < 1) instead of
        ``prune_ratio``; neurons of all layers are removed in one score
        order, so per-layer ratios follow from the scores.
    target_latency : float in (0, 1), default=%(target_latency)s
        Prune to this fraction of the unpruned inference latency with the
        fewest neurons removed, instead of ``prune_ratio``. Latency is
        estimated by the multiply-accumulates per sample, which are
        deterministic, so a fixed ``random_state`` keeps the same neurons on
        every fit; the measured ratio is reported in
        ``pruning_.latency_ratio``.
    reward : {"loss", "accuracy"} or reward object, default=%(reward)s
        Safe-removal reward (``"accuracy"`` for classification only), see
        :class:`skbandit.pruning.LossReward` and
        :class:`skbandit.pruning.AccuracyReward`.
    scope : {"layer", "global"}, default=%(scope)s
        One bandit and one ratio per layer, or one over the whole network.
    compensate : {"none", "mean", "lstsq"}, default=%(compensate)s
        What replaces the removed neurons' contribution to the next layer,
        see :func:`skbandit.pruning.remove_units`. ``"none"`` is the
        zeroing of the original method.
    pull_batch_size : int, default=%(pull_batch_size)s
        Minibatch size of a pull.
    arms_per_round : int, default=%(arms_per_round)s
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
    fine_tune_epochs : int, default=%(fine_tune_epochs)s
        Epochs of training after pruning (0 for none).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified
        for classification), stop when its loss has not improved for
        ``n_iter_no_change`` epochs and restore the best weights.
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int, default=10
    memory : str, joblib.Memory or None, default=None
        Cache of the trained, unpruned network (like ``Pipeline(memory=...)``),
        keyed on the data, every training hyperparameter and the seed. Fits
        that differ only in pruning settings (``policy``, ``prune_ratio``,
        ``budget``, ...) then train once, also across processes: a
        ``GridSearchCV`` over pruning settings costs about one training per
        fold. ``None`` caches nothing; a string is a cache directory
        (created if missing; an existing file is an error). Only effective
        with an int ``random_state`` (otherwise every fit draws new
        weights). An entry whose contents fail their digest is retrained.
    device : str or torch.device, default="cpu"
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch order and the bandit; an int gives
        identical predictions on every fit.
    verbose : int, default=0
        1 prints one line per epoch, 2 adds a progress bar."""


def shared_parameters_doc(cls):
    """Class decorator: fill ``%(parameters)s`` in ``cls``'s docstring."""
    if cls.__doc__:  # None under python -OO
        defaults = {
            name: f'"{value}"' if isinstance(value, str) else value
            for name, value in dataclasses.asdict(DEFAULTS).items()
        }
        parameters = _PARAMETERS_DOC % defaults
        cls.__doc__ = cls.__doc__.replace("%(parameters)s", parameters)
    return cls


class BaseBanditPrunedMLP(BaseEstimator):
    """Base class for bandit-pruned MLP estimators. Do not use directly."""

    _parameter_constraints = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "policy": [
            StrOptions(set(METHOD_NAMES)),
            HasMethods(["reset", "select", "update"]),
            HasMethods(["score"]),
        ],
        "prune_ratio": [Interval(Real, 0, 1, closed="left")],
        "budget": [Interval(Real, 1, MAX_BUDGET, closed="both"), StrOptions({"auto"})],
        "max_budget": [Interval(Real, 1, MAX_BUDGET, closed="both")],
        "pull": [StrOptions(set(PULLS))],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
        "target_params": [Interval(Real, 0, None, closed="neither"), None],
        "target_latency": [Interval(Real, 0, 1, closed="neither"), None],
        "reward": [StrOptions(set(REWARDS)), callable],
        "scope": [StrOptions(set(SCOPES))],
        "compensate": [StrOptions(set(COMPENSATIONS))],
        "pull_batch_size": [Interval(Integral, 1, None, closed="left")],
        "arms_per_round": [Interval(Integral, 1, None, closed="left"), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "fine_tune_epochs": [Interval(Integral, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "memory": [None, str, HasMethods(["cache"])],
        "device": [str, HasMethods(["__str__"])],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        policy=DEFAULTS.policy,
        prune_ratio=DEFAULTS.prune_ratio,
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
        max_epochs=100,
        batch_size=64,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        lr_schedule="constant",
        fine_tune_epochs=DEFAULTS.fine_tune_epochs,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        memory=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.policy = policy
        self.prune_ratio = prune_ratio
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
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.fine_tune_epochs = fine_tune_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.memory = memory
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- what subclasses define ---------------------------------------------

    def _encode_targets(self, y):
        """Validate ``y``, set target attributes; return (targets, n_outputs)."""
        raise NotImplementedError

    #: Loss name understood by :func:`skbandit.pruning.prune`.
    _loss = None
    #: The matching torch criterion class.
    _criterion = None
    #: Whether the validation split is stratified.
    _stratify = False

    # -- fit ---------------------------------------------------------------------

    def _validate_hidden_layer_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or sizes.size == 0 or sizes.dtype.kind not in "iu":
            raise ValueError(
                "hidden_layer_sizes must be a non-empty sequence of integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        if np.any(sizes < 2):
            raise ValueError(
                "hidden_layer_sizes must be >= 2 (a layer keeps at least one unit "
                f"when pruned), got {self.hidden_layer_sizes!r}."
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
        """A cache location must be a directory (joblib fails deep inside)."""
        location = self.memory
        if isinstance(location, str) and os.path.exists(location):
            if not os.path.isdir(location):
                raise ValueError(
                    f"memory={location!r} is a file; memory must be a cache "
                    "directory (created if missing), a joblib.Memory or None."
                )

    def _check_validation_split(self, n_samples):
        if not self.early_stopping:
            return
        n_valid = int(np.floor(self.validation_fraction * n_samples))
        if n_valid < 2 or n_samples - n_valid < 2:
            raise ValueError(
                f"early_stopping needs a validation split: validation_fraction="
                f"{self.validation_fraction} of {n_samples} samples leaves "
                f"{n_valid} for validation and {n_samples - n_valid} for "
                "training; each needs at least 2. Use more samples, a larger "
                "validation_fraction or early_stopping=False."
            )

    def _fit(self, X, y):
        try:
            return self._fit_unchecked(X, y)
        except BaseException:
            self._forget_fit()
            raise

    def _forget_fit(self):
        """Drop every fitted attribute: a failed fit leaves the estimator
        unfitted (check_is_fitted fails), not half fitted."""
        for name in list(vars(self)):
            if (name.endswith("_") and not name.startswith("__")) or name in (
                "_y_ndim",
            ):
                delattr(self, name)

    def _fit_unchecked(self, X, y):
        sizes = self._validate_hidden_layer_sizes()
        self._check_n_rounds(sizes)
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
        )
        if X.size and np.abs(X).max() > np.finfo(np.float32).max:
            raise ValueError(
                "Input X contains values too large for float32 (|x| > 3.4e38), "
                "the precision the network is trained in; rescale X (e.g. "
                "StandardScaler)."
            )
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        targets, n_outputs = self._encode_targets(y)
        self._check_network_size(X.shape[1], sizes, n_outputs)
        self._check_memory()
        if targets.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {X.shape[0]} and "
                f"{targets.shape[0]}."
            )
        self._check_validation_split(X.shape[0])
        # Writable: torch cannot wrap read-only (e.g. joblib memmapped) arrays.
        X = np.require(X, dtype=np.float32, requirements=["C", "W"])

        work = batch_work(X.shape[1], sizes, n_outputs, self.batch_size)
        with threads_for(work):
            return self._train_prune_tune(X, targets, sizes, n_outputs)

    def _train_prune_tune(self, X, targets, sizes, n_outputs):
        """Train, prune and fine-tune on validated data; set fitted attributes."""
        rng = check_random_state(self.random_state)
        train_seed, prune_seed, tune_seed = rng.randint(_SEED_MAX, size=3)
        train = check_memory(self.memory).cache(cached_training, ignore=["verbose"])
        start = time.perf_counter()
        module, history = verified_call(
            train,
            X,
            targets,
            hidden_layer_sizes=sizes,
            activation=self.activation,
            n_outputs=n_outputs,
            epochs=self.max_epochs,
            seed=int(train_seed),
            verbose=self.verbose,
            **self._training_params(),
        )
        self.fit_time_ = time.perf_counter() - start

        round_tuner, round_history = self._round_fine_tuner(X, targets, tune_seed)
        pruned, report = prune(
            module.to(self.device),
            torch.as_tensor(X, device=self.device),
            torch.as_tensor(targets, device=self.device),
            policy=self.policy,
            prune_ratio=self.prune_ratio,
            loss=self._loss,
            budget=self.budget,
            max_budget=self.max_budget,
            pull=self.pull,
            n_rounds=self.n_rounds,
            target_params=self.target_params,
            target_latency=self.target_latency,
            between_rounds=round_tuner,
            batch_size=self.pull_batch_size,
            reward=self.reward,
            scope=self.scope,
            arms_per_round=self.arms_per_round,
            compensate=self.compensate,
            random_state=prune_seed,
        )
        history = history + round_history
        if self.fine_tune_epochs and report.params_after < report.params_before:
            start = time.perf_counter()
            history = history + fit_module(
                pruned,
                X,
                targets,
                epochs=self.fine_tune_epochs,
                seed=int(tune_seed),
                verbose=self.verbose,
                **self._training_params(),
            )
            report = dataclasses.replace(
                report,
                time_fine_tune=time.perf_counter() - start,
                loss_after_fine_tune=evaluate_loss(
                    pruned.eval(),
                    torch.as_tensor(X, device=self.device),
                    torch.as_tensor(targets, device=self.device),
                    self._loss,
                ),
            )
        self.module_ = pruned.eval()
        self.pruning_ = report
        self.history_ = history
        self.loss_curve_ = [row["train_loss"] for row in history]
        self.n_iter_ = len(history)
        return self

    def _round_fine_tuner(self, X, targets, seed):
        """Fine-tuning between pruning rounds (``n_rounds > 1``) and its history.

        Returns ``(None, [])`` without rounds or fine-tuning.
        """
        history = []
        if not self.fine_tune_epochs or self.n_rounds == 1:
            return None, history

        def fine_tune(module):
            # prune() runs without gradients; training needs them back.
            with torch.enable_grad():
                history.extend(
                    fit_module(
                        module,
                        X,
                        targets,
                        epochs=self.fine_tune_epochs,
                        seed=int(seed),
                        verbose=self.verbose,
                        **self._training_params(),
                    )
                )
            return module

        return fine_tune, history

    def _training_params(self):
        """Everything besides data, epochs and seed that shapes training."""
        return dict(
            criterion=self._criterion,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            weight_decay=self.weight_decay,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            lr_schedule=None if self.lr_schedule == "constant" else self.lr_schedule,
            stratify=self._stratify,
            device=str(self.device),
        )

    # -- predict -------------------------------------------------------------------

    @torch.no_grad()
    def _forward(self, X):
        """Raw network output on ``X`` as a float64 numpy array.

        The forward pass runs in float64 on a copy of ``module_``: in float32
        a row's result can depend on which rows share its batch (the matrix
        kernels block rows differently), and predictions must not.
        """
        check_is_fitted(self, "module_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        module = copy.deepcopy(self.module_).to(torch.float64)
        device = next(module.parameters()).device
        X = np.require(X, dtype=np.float64, requirements=["C", "W"])
        X = torch.as_tensor(X, device=device)
        return module(X).cpu().numpy()
