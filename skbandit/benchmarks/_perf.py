"""Performance measurements, each a ratio measured in one run.

Machines are noisy, so nothing here asserts absolute times: each measurement
times a fast path and its reference back to back, with torch threads fixed and
the median of repeats, and reports their ratio.
"""

import functools
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._options import DEFAULTS
from ..pruning import (
    count_parameters,
    evaluate_arms,
    evaluate_arms_naive,
    find_unit_groups,
    remove_units,
    resolve_loss,
    sample_metric,
    trace,
)

__all__ = [
    "MEASUREMENTS",
    "Measurement",
    "arm_eval",
    "arm_eval_conv",
    "arm_eval_gpu",
    "depth_scaling",
    "import_time",
    "small_fit",
    "cnn",
    "default_fit",
    "fit_vs_sklearn",
    "grid_reuse",
    "median_time",
    "mlp",
    "prune_overhead",
    "pruned_latency",
    "pruned_latency_cnn",
    "readme_grid",
    "scaling",
]


@dataclass
class Measurement:
    """One perf line: ``name: ratio=<r> target=<t> ok|MISS`` plus extras.

    Attributes
    ----------
    name : str
        The measurement's label, first on its line.
    ratio : float
        The measured ratio (reference time over fast-path time, or the
        reverse, depending on the measurement).
    target : float, default=None
        Bound that ``ratio`` must meet to be ``ok``; None: no target (always
        ok, no verdict printed).
    higher_is_better : bool, default=False
        Whether ``ratio`` must be at least ``target`` (else at most).
    extra : dict, default=None
        More ``key=value`` facts appended to the line.

    Examples
    --------
    >>> Measurement("arm_eval", 62.0, target=50, higher_is_better=True).line()
    'arm_eval: ratio=62 target=50 ok'
    >>> Measurement("prune_overhead", 1.234, extra={"units": 64}).line()
    'prune_overhead: ratio=1.23 units=64'
    """

    name: str
    ratio: float
    target: float = None
    higher_is_better: bool = False
    extra: dict = None

    @property
    def ok(self):
        if self.target is None:
            return True
        return (
            self.ratio >= self.target
            if self.higher_is_better
            else self.ratio <= self.target
        )

    def line(self):
        extra = "".join(f" {k}={v}" for k, v in (self.extra or {}).items())
        target = "" if self.target is None else f" target={self.target:g}"
        verdict = "" if self.target is None else (" ok" if self.ok else " MISS")
        return f"{self.name}: ratio={self.ratio:.3g}{target}{verdict}{extra}"


def median_time(fn, repeats=7, warmup=1):
    """Median wall time of ``fn()`` over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def timing_trainings(measure):
    """Run ``measure`` with the estimators' in-process training cache off:
    a measurement that times fits must time trainings, not cache hits of
    its own repeats."""

    @functools.wraps(measure)
    def wrapped(*args, **kwargs):
        from ..estimators import training_cache

        previous = training_cache.max_bytes
        training_cache.max_bytes = 0
        try:
            return measure(*args, **kwargs)
        finally:
            training_cache.max_bytes = previous

    return wrapped


def mlp(sizes, activation="relu", seed=0):
    """The estimators' MLP (:func:`build_mlp`) with seeded weights, in eval mode."""
    from ..estimators import build_mlp

    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return build_mlp(sizes[0], sizes[1:-1], sizes[-1], activation).eval()


def _synchronized(fn, device):
    """``fn`` that waits for the device, so that wall time is its work."""
    if torch.device(device).type != "cuda":
        return fn

    def run():
        fn()
        torch.cuda.synchronize(device)

    return run


@torch.no_grad()
def arm_eval(
    sizes=(784, 256, 256, 10),
    batch=512,
    repeats=5,
    seed=0,
    device="cpu",
    name="arm_eval",
    target=50,
):
    """Batched pulls vs the naive one-forward-per-arm loop, all hidden units.

    Returns a :class:`Measurement` whose ratio is naive time / batched time
    and whose extras hold the largest absolute difference of the two.
    """
    net = mlp(sizes, seed=seed).to(device)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(batch, sizes[0], generator=g).to(device)
    y = torch.randint(0, sizes[-1], (batch,), generator=g).to(device)
    metric = sample_metric("loss", resolve_loss("cross_entropy"))
    groups = find_unit_groups(net)

    def batched():
        tr = trace(net, X)
        return torch.cat(
            [
                evaluate_arms(net, gr, range(gr.size), X, y, metric, tr=tr)
                for gr in groups
            ]
        )

    def naive():
        return torch.cat(
            [
                evaluate_arms_naive(net, gr, range(gr.size), X, y, metric)
                for gr in groups
            ]
        )

    diff = (batched() - naive()).abs().max().item()
    t_fast = median_time(_synchronized(batched, device), repeats)
    t_naive = median_time(_synchronized(naive, device), max(3, repeats // 2))
    return Measurement(
        name,
        t_naive / t_fast,
        target=target,
        higher_is_better=True,
        extra={"max_abs_diff": f"{diff:.2g}", "arms": sum(gr.size for gr in groups)},
    )


@torch.no_grad()
def pruned_latency(
    sizes=(784, 256, 256, 10), ratio=0.5, batch=1024, repeats=25, seed=0
):
    """Inference latency of the network with ``ratio`` of each hidden layer removed.

    Returns a :class:`Measurement` with ratio = pruned / unpruned latency and
    the parameter ratio as an extra.
    """
    net = mlp(sizes, seed=seed)
    X = torch.randn(batch, sizes[0], generator=torch.Generator().manual_seed(seed))
    return _latency_measurement("pruned_latency", net, X, ratio, repeats)


def _latency_measurement(name, net, X, ratio, repeats):
    """Remove the first ``ratio`` of every group's units, time both networks."""
    groups = find_unit_groups(net, example_input=X[:1])
    small = remove_units(net, groups, [np.arange(int(g.size * ratio)) for g in groups])
    t_full = median_time(lambda: net(X), repeats, warmup=3)
    t_small = median_time(lambda: small(X), repeats, warmup=3)
    params = count_parameters(small) / count_parameters(net)
    return Measurement(
        name, t_small / t_full, target=0.5, extra={"params_ratio": f"{params:.3f}"}
    )


def cnn(channels=32, n_classes=10, side=8, seed=0):
    """Small CNN on ``side x side`` images: two 3x3 convolutions, then a linear
    layer (the digits 8x8 model of the deep benchmarks). Seeded as
    :func:`mlp` is: the caller's global generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(channels * side * side, n_classes),
        ).eval()


@torch.no_grad()
def arm_eval_conv(channels=32, batch=256, repeats=5, seed=0):
    """Batched vs naive pulls for the first convolution's output channels.

    Each arm still runs everything after the consuming convolution, so the
    ceiling is the cost of a full forward over the cost of that suffix plus a
    one-channel convolution (about 3x for this model), far below the MLP's.
    """
    net = cnn(channels, seed=seed)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(batch, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    metric = sample_metric("loss", resolve_loss("cross_entropy"))
    # The first convolution's channels, read by the second convolution.
    group = find_unit_groups(net, example_input=X[:1])[0]
    arms = range(group.size)

    def batched():
        return evaluate_arms(net, group, arms, X, y, metric)

    def naive():
        return evaluate_arms_naive(net, group, arms, X, y, metric)

    diff = (batched() - naive()).abs().max().item()
    ratio = median_time(naive, repeats) / median_time(batched, repeats)
    return Measurement(
        "arm_eval_conv",
        ratio,
        extra={"max_abs_diff": f"{diff:.2g}", "arms": group.size},
    )


@torch.no_grad()
def pruned_latency_cnn(channels=32, ratio=0.5, batch=1024, repeats=25, seed=0):
    """Latency and parameter ratios of the CNN with half of both convolutions'
    channels removed."""
    net = cnn(channels, seed=seed)
    X = torch.randn(batch, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    # Both convolutions' channels (the second is read through Flatten).
    return _latency_measurement("pruned_latency_cnn", net, X, ratio, repeats)


def _tabular(n_samples, n_features, seed=0):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples, n_features, n_informative=n_features // 2, random_state=seed
    )
    return X.astype(np.float32), y


@timing_trainings
def prune_overhead(n_samples=10000, n_features=50):
    """Bandit search time at the default budget / training time (defaults)."""
    from ..estimators import BanditPrunedMLPClassifier

    X, y = _tabular(n_samples, n_features)
    clf = BanditPrunedMLPClassifier(fine_tune_epochs=0, random_state=0).fit(X, y)
    return Measurement(
        "prune_overhead",
        clf.pruning_.time_scoring / clf.fit_times_["train"],
        target=0.15,
        extra={
            "scoring_s": f"{clf.pruning_.time_scoring:.2f}",
            "train_s": f"{clf.fit_times_['train']:.2f}",
        },
    )


@timing_trainings
def fit_vs_sklearn(n_samples=10000, n_features=50, epochs=20, repeats=3):
    """Our unpruned fit / scikit-learn's MLPClassifier fit, same everything.

    256-256 hidden units, Adam, ``epochs`` epochs, batch 256, lr 1e-3, no
    early stopping, the same thread count; median of ``repeats`` fits each.
    Run with ``OPENBLAS_CORETYPE`` unset where it is set to an older core
    type, or scikit-learn's BLAS runs slower kernels than it could.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    from ..estimators import BanditPrunedMLPClassifier

    X, y = _tabular(n_samples, n_features)
    # The same parameters, by the same names; tol=0 runs every epoch.
    common = dict(
        hidden_layer_sizes=(256, 256),
        solver="adam",
        batch_size=256,
        max_iter=epochs,
        learning_rate_init=1e-3,
        tol=0.0,
        random_state=0,
    )
    ours = BanditPrunedMLPClassifier(policy="none", fine_tune_epochs=0, **common)
    theirs = MLPClassifier(**common)
    # Both sides get the same number of threads: torch's setting for
    # scikit-learn's BLAS too.
    with warnings.catch_warnings(), threadpool_limits(torch.get_num_threads()):
        warnings.simplefilter("ignore", ConvergenceWarning)
        t_ours = median_time(lambda: ours.fit(X, y), repeats, warmup=0)
        t_theirs = median_time(lambda: theirs.fit(X, y), repeats, warmup=0)
    return Measurement(
        "fit_vs_sklearn",
        t_ours / t_theirs,
        target=1.0,
        extra={"ours_s": f"{t_ours:.2f}", "sklearn_s": f"{t_theirs:.2f}"},
    )


@timing_trainings
def grid_reuse(n_samples=3000, n_features=20):
    """GridSearchCV over 4 prune ratios / over 1 ratio, both with ``memory``."""
    import tempfile

    from sklearn.model_selection import GridSearchCV

    from ..estimators import BanditPrunedMLPClassifier

    X, y = _tabular(n_samples, n_features)

    def search(ratios):
        with tempfile.TemporaryDirectory() as cache:
            est = BanditPrunedMLPClassifier(
                (64, 64), max_iter=30, memory=cache, random_state=0
            )
            start = time.perf_counter()
            GridSearchCV(est, {"prune_ratio": ratios}, cv=3).fit(X, y)
            return time.perf_counter() - start

    # Untimed first: a first search also pays the process's warm-up (lazy
    # imports, allocator growth), which made the one-ratio search look
    # slower and the ratio smaller in a fresh process than within the suite.
    search([0.5])
    t_one = search([0.5])
    t_four = search([0.2, 0.4, 0.6, 0.8])
    return Measurement("grid_reuse", t_four / t_one, target=1.5)


def readme_grid(n_jobs=2):
    """The README's search / the same-size search over scikit-learn's MLP.

    Ours: the README's ``GridSearchCV`` (breast cancer, standardised, hidden
    (64, 64), 4 policies x 2 ratios, 5 folds, ``n_jobs``), everything else
    default: the in-process training cache trains once per fold and worker.
    Theirs: ``MLPClassifier((64, 64))`` over 8 values of ``alpha``, the same
    folds and ``n_jobs``. Each search runs once untimed first, with another
    seed, so both time warm worker processes (which import torch once) and
    the timed search finds nothing of the untimed one's in the cache.
    """
    import warnings

    from sklearn.datasets import load_breast_cancer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..estimators import BanditPrunedMLPClassifier

    X, y = load_breast_cancer(return_X_y=True)
    ours_grid = {
        "banditprunedmlpclassifier__policy": ["obs", "ucb1", "magnitude", "none"],
        "banditprunedmlpclassifier__prune_ratio": [0.25, 0.5],
    }
    theirs_grid = {"mlpclassifier__alpha": list(np.logspace(-5, -1.5, 8))}

    def search(estimator, grid, seed):
        pipe = make_pipeline(StandardScaler(), estimator(random_state=seed))
        start = time.perf_counter()
        GridSearchCV(pipe, grid, cv=5, n_jobs=n_jobs).fit(X, y)
        return time.perf_counter() - start

    def ours(random_state):
        return BanditPrunedMLPClassifier((64, 64), random_state=random_state)

    def theirs(random_state):
        return MLPClassifier((64, 64), random_state=random_state)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search(ours, ours_grid, 1)
        search(theirs, theirs_grid, 1)
        t_ours = search(ours, ours_grid, 0)
        t_theirs = search(theirs, theirs_grid, 0)
    return Measurement(
        "readme_grid",
        t_ours / t_theirs,
        target=1.5,
        extra={"ours_s": f"{t_ours:.1f}", "sklearn_s": f"{t_theirs:.1f}"},
    )


def scaling(widths=(128, 256, 512, 1024, 2048, 4096), budget=5, n_samples=2048):
    """Growth exponent of the bandit search time in the number of arms.

    One hidden layer of ``width`` units (all arms), ``budget`` pulls per arm,
    fixed data; the exponent is the slope of log(time) on log(width). The
    pulls are the batched zero-fill single pulls (:data:`PAPER_SETTINGS`):
    the default least-squares refit adds its own :math:`O(n p^2 + p^3)` per
    layer (Gram matrix and its inverse), which this does not measure.
    """
    from ..pruning import PAPER_SETTINGS, prune

    g = torch.Generator().manual_seed(0)
    X = torch.randn(n_samples, 32, generator=g)
    y = torch.randint(0, 10, (n_samples,), generator=g)
    nets = [mlp((32, width, 10)) for width in widths]
    return _growth_exponent(
        "scaling",
        widths,
        nets,
        lambda net: prune(
            net,
            X,
            y,
            prune_ratio=0.5,
            random_state=0,
            **{**PAPER_SETTINGS, "budget": budget},
        ),
        target=1.15,
    )


def _growth_exponent(name, sizes, nets, run, target, warmup=1):
    """Slope of log(median time of ``run(net)``) on log(size), as a line."""
    times = [
        median_time(lambda net=net: run(net), repeats=3, warmup=warmup) for net in nets
    ]
    slope = np.polyfit(np.log(sizes), np.log(times), 1)[0]
    return Measurement(
        name,
        float(slope),
        target=target,
        extra={"seconds": "/".join(f"{t:.3f}" for t in times)},
    )


def arm_eval_gpu():
    """:func:`arm_eval` on CUDA at width 1024, batch 2048 (only with a GPU)."""
    return arm_eval(
        sizes=(784, 1024, 1024, 10),
        batch=2048,
        device="cuda",
        name="arm_eval_gpu",
        target=20,
    )


def _fit_seconds(make, X, y, repeats):
    return median_time(lambda: make().fit(X, y), repeats, warmup=1)


@timing_trainings
def small_fit(epochs=30, repeats=5):
    """Default fits on a small data set / scikit-learn's MLPClassifier.

    wine (178 x 13, standardised), hidden (32, 32), ``epochs`` epochs,
    batch 64, the caller's thread settings (what a user gets). The ratio is
    the default pruned fit's; the unpruned fit's is an extra.
    """
    import warnings

    from sklearn.datasets import load_wine
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from ..estimators import BanditPrunedMLPClassifier

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    common = dict(hidden_layer_sizes=(32, 32), batch_size=64, random_state=0)

    def ours(**params):
        return lambda: BanditPrunedMLPClassifier(max_iter=epochs, **common, **params)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t_sklearn = _fit_seconds(
            lambda: MLPClassifier(max_iter=epochs, tol=0.0, **common), X, y, repeats
        )
        t_pruned = _fit_seconds(ours(), X, y, repeats)
        t_unpruned = _fit_seconds(ours(policy="none"), X, y, repeats)
    return Measurement(
        "small_fit",
        t_pruned / t_sklearn,
        target=1.5,
        extra={
            "unpruned_ratio": f"{t_unpruned / t_sklearn:.3g}",
            "sklearn_s": f"{t_sklearn:.3f}",
            "pruned_s": f"{t_pruned:.3f}",
            "unpruned_s": f"{t_unpruned:.3f}",
        },
    )


def _default_fit_data():
    """Small classification data sets of at most 2000 rows, standardised, in
    float64 as users' data usually are (scikit-learn's MLP trains in X's
    precision, ours in float32 either way)."""
    from sklearn.datasets import load_breast_cancer, load_wine, make_classification
    from sklearn.preprocessing import StandardScaler

    sets = {
        "wine": load_wine(return_X_y=True),
        "breast_cancer": load_breast_cancer(return_X_y=True),
        "rows2000": make_classification(2000, 20, n_informative=10, random_state=0),
    }
    return {k: (StandardScaler().fit_transform(X), y) for k, (X, y) in sets.items()}


@timing_trainings
def default_fit(repeats=5):
    """The default fit / scikit-learn's default MLPClassifier, same epochs.

    Both estimators with their defaults (one hidden layer of 100, Adam,
    batch ``min(200, n)``), except ``tol=0``, so that every epoch runs: ours
    trains ``max_iter`` epochs and fine-tunes ``fine_tune_epochs`` after
    pruning, scikit-learn's trains as many epochs in all. On wine (178
    rows), breast cancer (569) and 2000 generated rows; the ratio is the
    largest of the three, the pruned (default) fit's; the unpruned fit's
    ratios (``policy="none"``) are extras. Median of ``repeats`` fits after
    one untimed fit, on the caller's thread settings (one thread in
    ``benchmarks/dropin_cost.py``).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    from ..estimators import BanditPrunedMLPClassifier

    ours = BanditPrunedMLPClassifier(tol=0.0, random_state=0)
    epochs = ours.max_iter + ours._fine_tune_epochs()
    theirs = MLPClassifier(max_iter=epochs, tol=0.0, random_state=0)
    unpruned = BanditPrunedMLPClassifier(policy="none", tol=0.0, random_state=0)
    ratios, unpruned_ratios = {}, {}
    with warnings.catch_warnings(), threadpool_limits(torch.get_num_threads()):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, (X, y) in _default_fit_data().items():
            t_theirs = _fit_seconds(lambda: theirs, X, y, repeats)
            ratios[name] = _fit_seconds(lambda: ours, X, y, repeats) / t_theirs
            unpruned_ratios[name] = (
                _fit_seconds(lambda: unpruned, X, y, repeats) / t_theirs
            )
    return Measurement(
        "default_fit",
        max(ratios.values()),
        target=2.0,
        extra={
            **{name: f"{r:.2f}" for name, r in ratios.items()},
            "unpruned": "/".join(f"{r:.2f}" for r in unpruned_ratios.values()),
            "epochs": epochs,
        },
    )


def _import_seconds(statement, repeats):
    """Median seconds of a fresh interpreter running ``statement``, minus an
    empty interpreter's start."""
    import subprocess
    import sys

    def run(code):
        return median_time(
            lambda: subprocess.run([sys.executable, "-c", code], check=True),
            repeats,
            warmup=1,
        )

    return max(0.0, run(statement) - run("pass"))


def import_time(repeats=5):
    """Importing our estimator / importing torch and scikit-learn's MLP.

    torch and scikit-learn are what the estimator needs; the ratio says what
    skbandit adds on top (target: at most 20 %). ``import skbandit`` itself
    is lazy and reported as an extra.
    """
    ours = _import_seconds("from skbandit import BanditPrunedMLPClassifier", repeats)
    deps = _import_seconds(
        "import torch, skorch; from sklearn.neural_network import MLPClassifier",
        repeats,
    )
    package = _import_seconds("import skbandit", repeats)
    return Measurement(
        "import_time",
        ours / deps,
        target=1.2,
        extra={
            "estimator_s": f"{ours:.2f}",
            "dependencies_s": f"{deps:.2f}",
            "import_skbandit_s": f"{package:.3f}",
        },
    )


def depth_scaling(depths=(2, 4, 8), width=128, n_samples=1024, budget=5):
    """Growth exponent of pruning time in the number of hidden layers.

    An MLP of ``depth`` hidden layers of ``width`` units, the default
    pruning settings at ``budget`` pulls per unit; the exponent is the slope
    of log(time) on log(depth): 1 is linear (target 1.2), 2 quadratic.
    """
    from ..pruning import prune

    g = torch.Generator().manual_seed(0)
    X = torch.randn(n_samples, 32, generator=g)
    y = torch.randint(0, 10, (n_samples,), generator=g)
    nets = [mlp((32, *([width] * depth), 10)) for depth in depths]
    return _growth_exponent(
        "depth_scaling",
        depths,
        nets,
        lambda net: prune(
            net, X, y, policy=DEFAULTS.policy, budget=budget, random_state=0
        ),
        target=1.2,
        warmup=0,
    )


def _with_cuda(measurements):
    """The measurements, with the GPU ones only where CUDA is present."""
    if torch.cuda.is_available():
        return measurements
    return tuple(m for m in measurements if m is not arm_eval_gpu)


#: Every measurement of ``skbandit bench perf``, in order (GPU ones only
#: where CUDA is available).
MEASUREMENTS = _with_cuda(
    (
        arm_eval,
        arm_eval_gpu,
        arm_eval_conv,
        pruned_latency,
        pruned_latency_cnn,
        prune_overhead,
        fit_vs_sklearn,
        small_fit,
        default_fit,
        import_time,
        grid_reuse,
        readme_grid,
        scaling,
        depth_scaling,
    )
)
