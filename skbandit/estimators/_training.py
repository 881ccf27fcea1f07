"""Training a torch module through skorch, reproducibly, with scikit-learn's
MLP objective and stopping rule.

skorch runs the loop (batching, validation split, callbacks); this module
assembles the net from the estimator's hyperparameters, adds what
scikit-learn's ``MLPClassifier``/``MLPRegressor`` do that skorch does not
(the L2 penalty ``alpha``, sample weights, the ``tol``/``n_iter_no_change``
convergence rule, ``learning_rate="invscaling"``/``"adaptive"``,
``solver="lbfgs"``'s full-batch L-BFGS with ``max_fun``) and seeds it
so that the same seed gives the same weights. Every draw comes from a
``torch.Generator`` of the fit's own: torch's global random state is neither
read nor written, so fits in parallel threads are as reproducible as
sequential ones.
"""

import copy
import math

import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, LRScheduler
from skorch.dataset import ValidSplit
from skorch.utils import to_tensor
from torch import nn

from .._cache import ProcessCache, TensorCache
from ..pruning._resources import available_memory

__all__ = [
    "ACTIVATIONS",
    "SOLVERS",
    "TrainingData",
    "TrainingDiverged",
    "build_mlp",
    "cached_training",
    "fit_module",
    "train_network",
    "training_cache",
]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}

SOLVERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "lbfgs": torch.optim.LBFGS,
}

#: Loss evaluations one L-BFGS iteration's line search may take at most.
_LBFGS_LINE_SEARCH_EVALS = 25

#: scipy's ``L-BFGS-B`` defaults, which scikit-learn's ``solver="lbfgs"`` uses:
#: the correction pairs kept, and ``ftol`` (``factr * eps``, the relative loss
#: decrease below which it stops).
_LBFGS_HISTORY = 10
_LBFGS_FTOL = 1e7 * np.finfo(float).eps

#: scikit-learn's floor of the learning rate with ``learning_rate="adaptive"``.
_MIN_ADAPTIVE_LR = 1e-6


def _training_cache_bytes():
    """256 MiB, or a sixteenth of the free memory where that is less."""
    available = available_memory()
    limit = 256 * 2**20
    return limit if available is None else min(limit, available // 16)


#: The trained, unpruned networks of this process's recent fits (see
#: :func:`cached_training`): a search over pruning settings trains once per
#: fold. ``training_cache.max_bytes = 0`` turns it off, ``clear()`` empties it.
training_cache = ProcessCache(_training_cache_bytes())


def build_mlp(n_in, hidden_layer_sizes, n_out, activation, *, generator=None):
    """The estimators' network: ``Linear`` layers with ``activation`` between.

    Each layer is initialised as ``nn.Linear`` initialises itself, drawing
    from ``generator``: the weights equal those of ``nn.Linear`` layers
    built in turn after ``torch.manual_seed`` with ``generator``'s seed.

    Parameters
    ----------
    n_in : int
        Input features.
    hidden_layer_sizes : sequence of int
        Width of each hidden layer.
    n_out : int
        Outputs (classes, or regression targets).
    activation : {"relu", "tanh", "logistic", "identity"}
        Activation after every hidden ``Linear``.
    generator : torch.Generator, default=None
        Source of the initial weights; None draws from torch's global
        generator.

    Returns
    -------
    torch.nn.Sequential
        Freshly initialised.

    Examples
    --------
    >>> from skbandit.estimators import build_mlp
    >>> import torch
    >>> build_mlp(4, (8,), 3, "relu", generator=torch.Generator().manual_seed(0))
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=3, bias=True)
    )
    """
    sizes = [n_in, *hidden_layer_sizes, n_out]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(_linear(sizes[i], sizes[i + 1], generator))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _linear(n_in, n_out, generator):
    """``nn.Linear(n_in, n_out)``, its ``reset_parameters`` drawing from
    ``generator`` (the constructor's own would draw from the global one).
    float32 whatever torch's default dtype: training feeds float32 rows."""
    layer = nn.utils.skip_init(nn.Linear, n_in, n_out, dtype=torch.float32)
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    bound = 1 / math.sqrt(n_in)
    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


class TrainingData(torch.utils.data.Dataset):
    """Inputs, targets and optional sample weights of a fit.

    ``X`` may be a scipy CSR matrix: :class:`TensorBatches` densifies it one
    minibatch at a time, never whole.

    Parameters
    ----------
    X : ndarray of float32 or scipy.sparse.csr_matrix
    y : ndarray
        Encoded targets (class indices, indicator rows or scaled values).
    sample_weight : ndarray of float or None, default=None
        ``None`` weighs every sample 1.
    """

    def __init__(self, X, y, sample_weight=None):
        self.X = X if sp.issparse(X) else torch.as_tensor(X)
        self.y = torch.as_tensor(y)
        if sample_weight is None:
            sample_weight = np.ones(X.shape[0], dtype=np.float32)
        self.sample_weight = torch.as_tensor(sample_weight, dtype=torch.float32)

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, i):
        X, (y, w) = self.rows(slice(i, i + 1))
        return X[0], (y[0], w[0])

    def rows(self, index):
        """``(X, (y, sample_weight))`` of ``index`` (a tensor or a slice)."""
        if sp.issparse(self.X):
            rows = index.numpy() if torch.is_tensor(index) else index
            X = torch.from_numpy(self.X[rows].toarray())
        else:
            X = self.X[index]
        return X, (self.y[index], self.sample_weight[index])


class TrainingDiverged(ValueError):
    """The loss of a fine-tuning epoch was not finite."""


class _DivergenceGuard(Callback):
    """Stop with a clear error (:class:`TrainingDiverged`) as soon as the
    fine-tuning loss is not finite."""

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"Training diverged: the training loss is {loss} at epoch "
                f"{len(net.history)}. Lower `learning_rate_init`, scale the "
                "features (e.g. StandardScaler) or check the data for extreme "
                "values."
            )


class _DivergenceStop(Callback):
    """Training: a non-finite loss is recorded, as scikit-learn records it,
    and training goes on; once the weights themselves are not finite (no
    gradient step brings them back) it stops, with ``diverged`` recorded.
    The estimator then raises scikit-learn's error, unless ``early_stopping``
    restored the weights of the best validation score."""

    def on_epoch_end(self, net, **kwargs):
        if math.isfinite(net.history[-1, "train_loss"]):
            return
        if all(torch.isfinite(p).all() for p in net.module_.parameters()):
            return
        net.history.record("diverged", True)
        raise KeyboardInterrupt  # skorch's way to end training early


class TensorBatches:
    """skorch iterator: minibatches sliced from whole tensors.

    torch's ``DataLoader`` fetches and collates every sample separately,
    which on small tabular networks costs more than the arithmetic. This
    iterator indexes the whole data once per batch, and draws from
    ``generator`` exactly as a ``DataLoader`` with a ``RandomSampler`` and
    no generator draws from torch's global one (one base seed per epoch,
    one sampler seed when shuffling).

    Parameters
    ----------
    dataset : TrainingData or torch.utils.data.Subset of one
    batch_size : int
    shuffle : bool, default=False
    generator : torch.Generator, default=None
        Source of the seeds; None draws from torch's global generator.
    """

    def __init__(self, dataset, batch_size, shuffle=False, generator=None):
        self.indices = None
        if isinstance(dataset, torch.utils.data.Subset):
            dataset, self.indices = dataset.dataset, torch.as_tensor(dataset.indices)
        self.data = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return math.ceil(self._n_rows() / self.batch_size)

    def _n_rows(self):
        return len(self.data) if self.indices is None else len(self.indices)

    def __iter__(self):
        n = self._n_rows()
        draw = torch.empty((), dtype=torch.int64)
        draw.random_(generator=self.generator)  # DataLoader's base seed
        order = self.indices
        if self.shuffle:
            seed = int(draw.random_(generator=self.generator).item())
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
            order = perm if order is None else order[perm]
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            yield self.data.rows(
                slice(start, stop) if order is None else order[start:stop]
            )


class _Net(NeuralNet):
    """skorch net whose loss is scikit-learn's MLP objective.

    The loss of a minibatch is the sample-weighted mean of the per-sample
    losses plus ``0.5 * alpha * ||W||² / s``, where ``||W||²`` sums the squared
    weights of every ``Linear`` layer (not the biases) and ``s`` is the
    batch's sum of sample weights (its size when unweighted), exactly as
    ``MLPClassifier``'s ``alpha``. The criterion must not reduce
    (``criterion__reduction="none"``).
    """

    def __init__(self, *args, alpha=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y, w = y_true
        losses = self.criterion_(y_pred, to_tensor(y, device=self.device))
        if losses.dim() > 1:
            losses = losses.flatten(1).mean(dim=1)
        w = to_tensor(w, device=self.device).to(losses.dtype)
        total = w.sum()
        loss = (w * losses).sum() / total
        if self.alpha:
            squares = sum(weight.pow(2).sum() for weight in self._penalised)
            loss = loss + 0.5 * self.alpha * squares / total
        return loss

    def initialize_module(self):
        """skorch's, then the weights ``alpha`` penalises (every ``Linear``
        layer's, in module order), found once rather than at every step."""
        super().initialize_module()
        self._penalised = [
            m.weight for m in self.module_.modules() if isinstance(m, nn.Linear)
        ]
        return self


class _ValidationScore(Callback):
    """Record ``valid_score`` (``score(y_pred, y, sample_weight)``, higher is
    better: accuracy or R²) of every epoch on the validation split."""

    def __init__(self, score):
        self.score = score

    def on_epoch_begin(self, net, **kwargs):
        self._batches = []

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not training:
            self._batches.append((y_pred.detach().cpu(), batch[1]))

    def on_epoch_end(self, net, **kwargs):
        y_pred = torch.cat([p for p, _ in self._batches])
        y = torch.cat([y for _, (y, _) in self._batches])
        w = torch.cat([w for _, (_, w) in self._batches])
        net.history.record("valid_score", float(self.score(y_pred, y.cpu(), w)))


class _Convergence(Callback):
    """scikit-learn's MLP stopping rule.

    An epoch does not improve when the training loss is not below the best
    one by more than ``tol`` (or, with ``early_stopping``, the validation
    score not above the best one by more than ``tol``). After more than
    ``n_iter_no_change`` such epochs in a row training stops, or with
    ``adaptive`` the learning rate is divided by 5 (stopping once it is at or
    below 1e-6). With ``early_stopping`` the weights of the best validation
    score are restored at the end.
    """

    def __init__(self, tol, n_iter_no_change, early_stopping, adaptive):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.adaptive = adaptive

    def on_train_begin(self, net, **kwargs):
        self._best = -math.inf if self.early_stopping else math.inf
        self._best_state = None
        self._count = 0

    def on_epoch_end(self, net, **kwargs):
        if self.early_stopping:
            value = net.history[-1, "valid_score"]
            self._count = self._count + 1 if value < self._best + self.tol else 0
            if value > self._best:
                self._best = value
                self._best_state = copy.deepcopy(net.module_.state_dict())
        else:
            value = net.history[-1, "train_loss"]
            self._count = self._count + 1 if value > self._best - self.tol else 0
            self._best = min(self._best, value)
        if self._count > self.n_iter_no_change:
            self._count = 0
            if not self.adaptive or _learning_rate(net) <= _MIN_ADAPTIVE_LR:
                # The rule ended training (not max_epochs): no ConvergenceWarning.
                net.history.record("converged", True)
                raise KeyboardInterrupt  # skorch's way to end training early
            _set_learning_rate(net, _learning_rate(net) / 5.0)

    def on_train_end(self, net, **kwargs):
        if self._best_state is not None:
            net.module_.load_state_dict(self._best_state)


class _InvScaling(Callback):
    """``learning_rate="invscaling"``: after each epoch the learning rate is
    ``learning_rate_init / (t + 1) ** power_t``, ``t`` the samples seen
    (``seen`` of them before this training, by earlier ``partial_fit``
    calls)."""

    def __init__(self, power_t, seen=0):
        self.power_t = power_t
        self.seen = seen

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        seen = self.seen + len(net.history) * len(dataset_train)
        _set_learning_rate(net, net.lr / (seen + 1) ** self.power_t)


class _EpochLog(Callback):
    """One plain line per epoch (``verbose >= 2``), no colours or tables;
    in training, followed by scikit-learn's MLP line (``Iteration 3, loss =
    0.12345678``, the loss times ``log_factor``: on scikit-learn's scale)."""

    def __init__(self, phase, log_factor=1.0):
        self.phase = phase
        self.log_factor = log_factor

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        parts = [f"{self.phase} epoch {row['epoch']}/{net.max_epochs}"]
        parts += [
            f"{key.replace('_', ' ')} {row[key]:.4f}"
            for key in ("train_loss", "valid_loss", "valid_score")
            if key in row
        ]
        print(", ".join(parts) + f", {row['dur']:.2f} s", flush=True)
        if self.phase == "training":
            loss = row["train_loss"] * self.log_factor
            print(f"Iteration {row['epoch']}, loss = {loss:.8f}", flush=True)


class _LBFGSStop(Callback):
    """``solver="lbfgs"``: one epoch is one full-batch L-BFGS iteration
    (``torch.optim.LBFGS`` with ``max_iter=1`` and a strong-Wolfe line search,
    its curvature pairs kept from epoch to epoch), stopped as scipy's
    ``L-BFGS-B`` stops for scikit-learn.

    Training stops when the largest absolute gradient is at most ``tol``
    (scipy's ``gtol``), when the loss decreased by at most ``ftol`` relative
    to its size over the last iteration (scipy's ``ftol``), when the line
    search found no descent, or before an iteration could take the loss
    evaluations past ``max_fun`` (each iteration takes one evaluation at
    its start and at least one in its line search).
    """

    def __init__(self, max_fun):
        self.max_fun = max_fun

    def _state(self, net):
        optimizer = net.optimizer_
        return optimizer.state[optimizer.param_groups[0]["params"][0]]

    def on_train_begin(self, net, **kwargs):
        self._iterations = 0

    def on_epoch_begin(self, net, **kwargs):
        # The line search may use what is left of max_fun, less the
        # iteration's first evaluation.
        left = self.max_fun - self._state(net).get("func_evals", 0)
        for group in net.optimizer_.param_groups:
            group["max_eval"] = max(1, min(_LBFGS_LINE_SEARCH_EVALS, left - 1))

    def on_epoch_end(self, net, **kwargs):
        state = self._state(net)
        iterations = state.get("n_iter", 0)
        progressed = iterations > self._iterations
        self._iterations = iterations
        if len(net.history) > 1:
            before, after = net.history[-2, "train_loss"], net.history[-1, "train_loss"]
            scale = max(abs(before), abs(after), 1.0)
            progressed = progressed and before - after > _LBFGS_FTOL * scale
        if not progressed:
            # scipy's gtol/ftol: converged, so no ConvergenceWarning.
            net.history.record("converged", True)
            raise KeyboardInterrupt  # skorch's way to end training early
        if self.max_fun - state["func_evals"] < 2:
            # Stopped by the budget, not converged: the estimator warns.
            net.history.record("max_fun_reached", True)
            raise KeyboardInterrupt


def _learning_rate(net):
    return net.optimizer_.param_groups[0]["lr"]


def _set_learning_rate(net, lr):
    for group in net.optimizer_.param_groups:
        group["lr"] = lr


def _optimizer_params(
    solver, momentum, nesterovs_momentum, beta_1, beta_2, epsilon, tol=0.0
):
    """skorch ``optimizer__*`` settings of ``solver``, scikit-learn's names."""
    if solver == "lbfgs":
        return {
            "optimizer__max_iter": 1,  # one iteration per epoch
            "optimizer__line_search_fn": "strong_wolfe",
            "optimizer__history_size": _LBFGS_HISTORY,
            "optimizer__tolerance_grad": tol,
        }
    if solver == "sgd":
        return {
            "optimizer__momentum": momentum,
            "optimizer__nesterov": bool(nesterovs_momentum and momentum > 0),
        }
    return {"optimizer__betas": (beta_1, beta_2), "optimizer__eps": epsilon}


def _callbacks(params, score, epochs, phase, verbose, log_factor=1.0, seen=0):
    solver, schedule = params["solver"], params["learning_rate"]
    early_stopping = params["early_stopping"]
    callbacks = []
    if phase != "training":
        callbacks.append(("divergence_guard", _DivergenceGuard()))
    if solver == "lbfgs":
        callbacks.append(("lbfgs_stop", _LBFGSStop(params["max_fun"])))
        if verbose >= 2:
            callbacks.append(("epoch_log", _EpochLog(phase, log_factor)))
        if phase == "training":
            callbacks.append(("divergence_stop", _DivergenceStop()))
        return callbacks
    if early_stopping:
        callbacks.append(("valid_score", _ValidationScore(score)))
    callbacks.append(
        (
            "convergence",
            _Convergence(
                params["tol"],
                params["n_iter_no_change"],
                early_stopping,
                adaptive=solver == "sgd" and schedule == "adaptive",
            ),
        )
    )
    if solver == "sgd" and schedule == "invscaling":
        callbacks.append(("invscaling", _InvScaling(params["power_t"], seen)))
    if schedule == "cosine":
        callbacks.append(
            (
                "lr_scheduler",
                LRScheduler(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs),
            )
        )
    if verbose >= 2:
        callbacks.append(("epoch_log", _EpochLog(phase, log_factor)))
    if phase == "training":
        # Last: the epoch's validation score is recorded before it stops.
        callbacks.append(("divergence_stop", _DivergenceStop()))
    return callbacks


def fit_module(
    module,
    data,
    *,
    criterion,
    score,
    epochs,
    stratify,
    device,
    verbose,
    seed,
    phase="training",
    log_factor=1.0,
    state=None,
    **params,
):
    """Train ``module`` in place with skorch; return its training history.

    Parameters
    ----------
    module : torch.nn.Module
    data : TrainingData
    criterion : type
        Loss class, instantiated with ``reduction="none"``.
    score : callable
        ``score(y_pred, y, sample_weight) -> float``, higher is better; the
        validation score with ``early_stopping``.
    epochs : int
        Most epochs.
    stratify : bool
        Stratify the validation split by ``data.y``.
    device : str
    verbose : int
        ``>= 2`` prints one line per epoch.
    seed : int
        Seed of the validation split and of the generator that every
        iterator (train and valid) draws from.
    phase : str, default="training"
        Name of the phase in the printed lines. In ``"training"`` a
        non-finite loss is recorded and training goes on until the weights
        are not finite (``diverged``); in any other phase it raises.
    log_factor : float, default=1.0
        What turns the loss into scikit-learn's, for the printed lines.
    state : dict, default=None
        What carries over between calls (``partial_fit``): the optimizer's
        state, the batch orders' random stream and the samples seen. Read
        when it holds them (the first call fills it), updated in place.
    **params
        The estimator's optimisation parameters (scikit-learn's names):
        ``solver``, ``learning_rate_init``, ``alpha``, ``batch_size``,
        ``shuffle``, ``tol``, ``n_iter_no_change``, ``early_stopping``,
        ``validation_fraction``, ``learning_rate``, ``power_t``,
        ``momentum``, ``nesterovs_momentum``, ``beta_1``, ``beta_2``,
        ``epsilon``, and ``max_fun`` with ``solver="lbfgs"``. With
        ``"lbfgs"`` each epoch is one full-batch L-BFGS iteration (see
        :class:`_LBFGSStop`): ``batch_size``, ``shuffle``,
        ``learning_rate*``, ``n_iter_no_change`` and ``early_stopping`` are
        ignored, as scikit-learn ignores them.

    Returns
    -------
    history : list of dict
        One entry per epoch (``epoch``, ``train_loss``, ``valid_loss`` and
        ``valid_score`` when validating, ``dur``; ``converged``, True, on
        the epoch after which the ``tol``/``n_iter_no_change`` rule stopped
        training; ``diverged``, True, on the epoch after which the weights
        were not finite).
    """
    # One stream for both iterators: they draw in turn, epoch after epoch,
    # as DataLoaders drawing from one seeded global generator would.
    generator = torch.Generator().manual_seed(seed)
    if state is not None and "generator" in state:
        generator.set_state(state["generator"])
    lbfgs = params["solver"] == "lbfgs"
    if lbfgs:
        # Full batch, no validation split: scikit-learn's L-BFGS ignores
        # batch_size and early_stopping; its step length comes from the line
        # search (1 is where it starts).
        params = dict(
            params,
            early_stopping=False,
            shuffle=False,
            batch_size=max(len(data), 1),
            learning_rate="constant",
            learning_rate_init=1.0,
        )
        stratify = False
    train_split = (
        ValidSplit(
            params["validation_fraction"], stratified=stratify, random_state=seed
        )
        if params["early_stopping"]
        else None
    )
    net = _Net(
        module=module,
        criterion=criterion,
        criterion__reduction="none",
        optimizer=SOLVERS[params["solver"]],
        **_optimizer_params(
            params["solver"],
            params["momentum"],
            params["nesterovs_momentum"],
            params["beta_1"],
            params["beta_2"],
            params["epsilon"],
            params["tol"],
        ),
        alpha=params["alpha"],
        lr=params["learning_rate_init"],
        max_epochs=epochs,
        batch_size=params["batch_size"],
        iterator_train=TensorBatches,
        iterator_valid=TensorBatches,
        iterator_train__shuffle=params["shuffle"],
        iterator_train__generator=generator,
        iterator_valid__generator=generator,
        train_split=train_split,
        callbacks=_callbacks(
            params,
            score,
            epochs,
            phase,
            verbose,
            log_factor,
            seen=0 if state is None else state.get("seen", 0),
        ),
        callbacks__print_log=None,  # _EpochLog prints plain lines instead
        # Without a validation split there is no valid_loss to pass through
        # (skorch's callback would still run every epoch).
        **({} if train_split else {"callbacks__valid_loss": None}),
        device=device,
        verbose=0,
    )
    y_split = data.y.numpy() if stratify else None
    if state is None:
        net.fit(data, y_split)
    else:
        net.initialize()
        if "optimizer" in state:
            net.optimizer_.load_state_dict(state["optimizer"])
        net.partial_fit(data, y_split)
        state["optimizer"] = copy.deepcopy(net.optimizer_.state_dict())
        state["generator"] = generator.get_state()
        state["seen"] = state.get("seen", 0) + len(net.history) * len(data)
    keys = (
        "epoch",
        "train_loss",
        "valid_loss",
        "valid_score",
        "dur",
        "converged",
        "max_fun_reached",
        "diverged",
    )
    return [{k: row[k] for k in keys if k in row} for row in net.history]


def train_network(
    X,
    y,
    sample_weight,
    *,
    hidden_layer_sizes,
    activation,
    n_outputs,
    seed,
    verbose,
    init=None,
    log_factor=1.0,
    **params,
):
    """Build an MLP with seeded weights (or start from a copy of ``init``) and
    train it on ``TrainingData(X, y, sample_weight)``; a pure function of its
    arguments, so that :func:`cached_training` can cache it (see the estimators'
    ``memory`` parameter).

    Returns
    -------
    module : torch.nn.Sequential
    history : list of dict
    """
    if init is not None:
        module = copy.deepcopy(init)
    else:
        module = build_mlp(
            X.shape[1],
            hidden_layer_sizes,
            n_outputs,
            activation,
            generator=torch.Generator().manual_seed(seed),
        )
    data = TrainingData(X, y, sample_weight)
    history = fit_module(
        module, data, seed=seed, verbose=verbose, log_factor=log_factor, **params
    )
    return module, history


def cached_training(memory, X, y, sample_weight, *, verbose, log_factor=1.0, **params):
    """:func:`train_network` through :data:`training_cache` and the cache
    folder ``memory``.

    The entry holds the network's state dict and the history (see
    :class:`skbandit._cache.TensorCache`): nothing in it is unpickled, and
    the network is rebuilt from ``params``. ``verbose`` and ``log_factor``
    (printing only) are not part of the key. The same key finds the entry in
    this process's :data:`training_cache` first, then in ``memory`` (None:
    no folder).

    Returns
    -------
    (module, history) : tuple
        As :func:`train_network`.
    hit : bool
        Whether they came from the cache.
    """
    cache = TensorCache(memory, "mlp-training")
    if not cache.enabled and training_cache.max_bytes == 0:
        # No cache at all: do not hash the data for nothing.
        return train_network(
            X, y, sample_weight, verbose=verbose, log_factor=log_factor, **params
        ), False
    key = cache.key(X=X, y=y, sample_weight=sample_weight, **params)

    def decode(state, meta):
        # The stored state replaces the initial weights; a generator of its
        # own keeps their draws off the global one.
        module = build_mlp(
            X.shape[1],
            params["hidden_layer_sizes"],
            params["n_outputs"],
            params["activation"],
            generator=torch.Generator(),
        )
        module.load_state_dict(state)
        return module.to(params["device"]), meta["history"]

    def encode(value):
        return value[0].state_dict(), {"history": value[1]}

    entry = training_cache.get(key)
    if entry is not None:
        return decode(*entry), True
    value, hit = cache.get_or_compute(
        key,
        lambda: train_network(
            X, y, sample_weight, verbose=verbose, log_factor=log_factor, **params
        ),
        encode,
        decode,
    )
    training_cache.put(key, *encode(value))
    return value, hit
