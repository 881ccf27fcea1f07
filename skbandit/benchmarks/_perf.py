"""Performance measurements, each a ratio measured in one run.

Machines are noisy, so nothing here asserts absolute times: each measurement
times a fast path and its reference back to back, with torch threads fixed and
the median of repeats, and reports their ratio.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

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

__all__ = ["Measurement", "median_time", "arm_eval", "pruned_latency", "mlp"]


@dataclass
class Measurement:
    """One perf line: ``name: ratio=<r> target=<t> ok|MISS`` plus extras."""

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


def mlp(sizes, activation=nn.ReLU, seed=0):
    """A ``nn.Sequential`` MLP with the given layer sizes, in eval mode."""
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers).eval()


@torch.no_grad()
def arm_eval(sizes=(784, 256, 256, 10), batch=512, repeats=5, seed=0):
    """Batched pulls vs the naive one-forward-per-arm loop, all hidden units.

    Returns a :class:`Measurement` whose ratio is naive time / batched time
    and whose extras hold the largest absolute difference of the two.
    """
    net = mlp(sizes, seed=seed)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(batch, sizes[0], generator=g)
    y = torch.randint(0, sizes[-1], (batch,), generator=g)
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
    t_fast = median_time(batched, repeats)
    t_naive = median_time(naive, max(3, repeats // 2))
    return Measurement(
        "arm_eval",
        t_naive / t_fast,
        target=50,
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
    groups = find_unit_groups(net)
    removals = [np.arange(int(g.size * ratio)) for g in groups]
    small = remove_units(net, groups, removals)
    X = torch.randn(batch, sizes[0], generator=torch.Generator().manual_seed(seed))
    t_full = median_time(lambda: net(X), repeats, warmup=3)
    t_small = median_time(lambda: small(X), repeats, warmup=3)
    params = count_parameters(small) / count_parameters(net)
    return Measurement(
        "pruned_latency",
        t_small / t_full,
        target=0.5,
        extra={"params_ratio": f"{params:.3f}"},
    )
