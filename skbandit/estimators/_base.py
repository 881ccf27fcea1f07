"""What the classifier and the regressor share: parameters, and fit = train, prune,
fine-tune."""

import copy
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory, validate_data

from ..pruning import METHODS, evaluate_loss, prune
from ._training import ACTIVATIONS, OPTIMIZERS, fit_module, train_network

__all__ = ["BaseBanditPrunedMLP"]

_SEED_MAX = np.iinfo(np.int32).max


class BaseBanditPrunedMLP(BaseEstimator):
    """Base class for bandit-pruned MLP estimators. Do not use directly."""

    _parameter_constraints = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "policy": [
            StrOptions(set(METHODS)),
            HasMethods(["reset", "select", "update"]),
            HasMethods(["score"]),
        ],
        "prune_ratio": [Interval(Real, 0, 1, closed="left")],
        "budget": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "max_budget": [Interval(Real, 0, None, closed="neither")],
        "pull": [StrOptions({"company", "single", "set"})],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
        "target_params": [Interval(Real, 0, None, closed="neither"), None],
        "target_latency": [Interval(Real, 0, 1, closed="neither"), None],
        "reward": [StrOptions({"fidelity", "loss", "accuracy"}), callable],
        "scope": [StrOptions({"layer", "global"})],
        "compensate": [StrOptions({"none", "mean", "lstsq"})],
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
        policy="ucb1",
        prune_ratio=0.5,
        budget=10,
        max_budget=50,
        pull="company",
        n_rounds=1,
        target_params=None,
        target_latency=None,
        reward="fidelity",
        scope="layer",
        compensate="lstsq",
        pull_batch_size=256,
        arms_per_round=None,
        max_epochs=100,
        batch_size=64,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        lr_schedule="constant",
        fine_tune_epochs=5,
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
        if targets.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {X.shape[0]} and "
                f"{targets.shape[0]}."
            )
        self._check_validation_split(X.shape[0])
        # Writable: torch cannot wrap read-only (e.g. joblib memmapped) arrays.
        X = np.require(X, dtype=np.float32, requirements=["C", "W"])

        rng = check_random_state(self.random_state)
        train_seed, prune_seed, tune_seed = rng.randint(_SEED_MAX, size=3)
        train = check_memory(self.memory).cache(train_network, ignore=["verbose"])
        start = time.perf_counter()
        module, history = train(
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
        tune_epochs = self._final_fine_tune_epochs(report)
        if tune_epochs:
            start = time.perf_counter()
            history = history + fit_module(
                pruned,
                X,
                targets,
                epochs=tune_epochs,
                seed=int(tune_seed),
                verbose=self.verbose,
                **self._training_params(),
            )
            report.time_fine_tune = time.perf_counter() - start
            report.loss_after_fine_tune = evaluate_loss(
                pruned.eval(),
                torch.as_tensor(X, device=self.device),
                torch.as_tensor(targets, device=self.device),
                self._loss,
            )
        self.module_ = pruned.eval()
        self.pruning_ = report
        self.history_ = history
        self.loss_curve_ = [row["train_loss"] for row in history]
        self.n_iter_ = len(history)
        return self

    def _final_fine_tune_epochs(self, report):
        """Epochs of training after the last pruning round.

        Every method trains ``max_epochs + n_rounds * fine_tune_epochs``
        epochs in all, whatever it removed: a pruning method fine-tunes
        between its rounds and after the last one; ``policy="none"``
        (``report.n_rounds == 0``) trains all of those epochs here, so an
        unpruned network is never compared after less training.
        """
        if report.n_rounds == 0:
            return self.fine_tune_epochs * self.n_rounds
        return self.fine_tune_epochs

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
