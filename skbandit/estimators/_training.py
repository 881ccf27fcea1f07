"""Training a torch module through skorch, reproducibly.

skorch runs the loop (batching, shuffling, validation split, early stopping,
learning-rate schedule, progress bar); this module only assembles the net from
the estimator's hyperparameters and seeds it so that the same seed gives the
same weights.
"""

import math

import torch
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    LRScheduler,
    ProgressBar,
)
from skorch.dataset import ValidSplit
from torch import nn

from .._cache import with_digest

__all__ = [
    "ACTIVATIONS",
    "OPTIMIZERS",
    "build_mlp",
    "cached_training",
    "fit_module",
    "seeded",
    "train_network",
]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


class seeded:
    """Context manager: seed torch's global RNG, restore the caller's state after.

    skorch's data loader and torch's weight initialisation draw from the global
    generator; forking it keeps a fit reproducible without leaking the seed
    into the user's program.
    """

    def __init__(self, seed):
        self.seed = int(seed)

    def __enter__(self):
        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        # Only the CPU generator: torch.manual_seed would also reseed (and
        # leak into) the caller's CUDA generators, which fork_rng(devices=[])
        # does not restore. Training draws from the CPU generator only.
        torch.default_generator.manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)


def build_mlp(n_in, hidden_layer_sizes, n_out, activation):
    """The estimators' network: ``Linear`` layers with ``activation`` between.

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

    Returns
    -------
    torch.nn.Sequential
        Freshly initialised (from torch's global generator).

    Examples
    --------
    >>> from skbandit.estimators import build_mlp
    >>> build_mlp(4, (8,), 3, "relu")
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=3, bias=True)
    )
    """
    sizes = [n_in, *hidden_layer_sizes, n_out]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class _DivergenceGuard(Callback):
    """Stop with a clear error as soon as the training loss is not finite."""

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not math.isfinite(loss):
            raise ValueError(
                f"Training diverged: the training loss is {loss} at epoch "
                f"{len(net.history)}. Lower `lr`, scale the features (e.g. "
                "StandardScaler) or check the data for extreme values."
            )


class TensorBatches:
    """skorch iterator: minibatches sliced from whole tensors.

    torch's ``DataLoader`` fetches and collates every sample separately,
    which on small tabular networks costs more than the arithmetic. This
    iterator indexes the whole ``X`` and ``y`` once per batch, and draws from
    torch's global generator exactly as a ``DataLoader`` with a
    ``RandomSampler`` does (one base seed per epoch, one sampler seed when
    shuffling), so a fit gives the same batches, bit for bit.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset or torch.utils.data.Subset of one
    batch_size : int
    shuffle : bool, default=False
    """

    def __init__(self, dataset, batch_size, shuffle=False):
        self.X, self.y = _tensors(dataset)
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(len(self.X) / self.batch_size)

    def __iter__(self):
        n = len(self.X)
        torch.empty((), dtype=torch.int64).random_()  # DataLoader's base seed
        order = None
        if self.shuffle:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            index = order[start:stop] if order is not None else slice(start, stop)
            yield self.X[index], self.y[index]


def _tensors(dataset):
    """Whole ``(X, y)`` tensors of a skorch dataset or a subset of one."""
    indices = None
    if isinstance(dataset, torch.utils.data.Subset):
        dataset, indices = dataset.dataset, torch.as_tensor(dataset.indices)
    X, y = torch.as_tensor(dataset.X), torch.as_tensor(dataset.y)
    if indices is not None:
        X, y = X[indices], y[indices]
    return X, y


def _callbacks(early_stopping, n_iter_no_change, lr_schedule, epochs, verbose):
    callbacks = [("divergence_guard", _DivergenceGuard())]
    if early_stopping:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor="valid_loss",
                    patience=n_iter_no_change,
                    load_best=True,
                    sink=print if verbose else (lambda *a, **k: None),
                ),
            )
        )
    if lr_schedule == "cosine":
        callbacks.append(
            (
                "lr_scheduler",
                LRScheduler(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs),
            )
        )
    if verbose > 1:
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks


def fit_module(
    module,
    X,
    y,
    *,
    criterion,
    epochs,
    batch_size,
    lr,
    optimizer,
    weight_decay,
    early_stopping,
    validation_fraction,
    n_iter_no_change,
    lr_schedule,
    stratify,
    device,
    verbose,
    seed,
):
    """Train ``module`` in place with skorch; return its training history.

    Returns
    -------
    history : list of dict
        One entry per epoch (``epoch``, ``train_loss``, ``valid_loss`` when
        validating, ``dur``).
    """
    train_split = (
        ValidSplit(validation_fraction, stratified=stratify, random_state=seed)
        if early_stopping
        else None
    )
    net = NeuralNet(
        module=module,
        criterion=criterion,
        optimizer=OPTIMIZERS[optimizer],
        optimizer__weight_decay=weight_decay,
        lr=lr,
        max_epochs=epochs,
        batch_size=batch_size,
        iterator_train=TensorBatches,
        iterator_valid=TensorBatches,
        iterator_train__shuffle=True,
        train_split=train_split,
        callbacks=_callbacks(
            early_stopping, n_iter_no_change, lr_schedule, epochs, verbose
        ),
        device=device,
        verbose=verbose,
    )
    if not verbose:
        # Printing is skorch's largest per-epoch cost on small data.
        net.set_params(callbacks__print_log=None)
    with seeded(seed):
        net.fit(X, y)
    keys = ("epoch", "train_loss", "valid_loss", "dur")
    return [{k: row[k] for k in keys if k in row} for row in net.history]


def train_network(
    X, y, *, hidden_layer_sizes, activation, n_outputs, epochs, seed, verbose, **params
):
    """Build an MLP with seeded weights and train it; a pure function of its
    arguments, so that ``joblib.Memory`` can cache it (see the estimators'
    ``memory`` parameter).

    Returns
    -------
    module : torch.nn.Sequential
    history : list of dict
    """
    with seeded(seed):
        module = build_mlp(X.shape[1], hidden_layer_sizes, n_outputs, activation)
    history = fit_module(
        module, X, y, epochs=epochs, seed=seed, verbose=verbose, **params
    )
    return module, history


def cached_training(X, y, *, verbose, **params):
    """What ``memory=`` stores: :func:`train_network`'s output and its digest.

    The digest lets :func:`skbandit._cache.verified_call` retrain instead of
    trusting a damaged cache entry.
    """
    return with_digest(train_network, X, y, verbose=verbose, **params)
