"""The pruning backend on a GPU: chunk sizes, default pruning, CUDA against CPU fits.

Needs CUDA. Run: ``python benchmarks/bench_gpu.py``. Each line is one
measurement from this run, ``name: key=value ...``:

- ``gpu_chunks`` (one line per bound): the batched pulls of
  :func:`skbandit.benchmarks.arm_eval_gpu` (784-1024-1024-10, batch 2048,
  all 2048 hidden units as arms) with the stacked tensors of a chunk bounded
  by ``elements``; ``ratio`` is the naive loop's time over theirs. The first
  bound is the CPU's (what CUDA used before it had its own).
- ``gpu_prune``: the default :func:`~skbandit.pruning.prune` (50 %) of the
  same network on 8192 rows, CPU (all cores) time over CUDA time, and the
  overlap of the two removal sets.
- ``gpu_fit``: the default classifier fitted on CUDA and on the CPU with the
  same seed (20 000 x 40, hidden 256-256, 5 epochs): times, the largest
  difference of their predicted probabilities, and how often their labels
  agree; ``cpu_threads_diff`` is the same difference between two CPU fits
  that differ only in their thread count.
- ``fit_split`` (one line per device and policy): the same fits' seconds
  of training, pruning and fine-tuning (``fit_times_``), unpruned
  (``policy="none"``) and with the default UCB1 pruning.
"""

import time

import numpy as np
import torch

from skbandit import BanditPrunedMLPClassifier
from skbandit.benchmarks._perf import _synchronized, median_time, mlp
from skbandit.pruning import (
    _pulls,
    evaluate_arms,
    evaluate_arms_naive,
    find_unit_groups,
    prune,
    resolve_loss,
    sample_metric,
    trace,
)

SIZES = (784, 1024, 1024, 10)


def _problem(n, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, SIZES[0], generator=g)
    y = torch.randint(0, SIZES[-1], (n,), generator=g)
    return X.to(device), y.to(device)


def chunk_lines(bounds=(1 << 21, 1 << 23, 1 << 25, 1 << 27, 1 << 28), batch=2048):
    net = mlp(SIZES).cuda()
    X, y = _problem(batch, "cuda")
    metric = sample_metric("loss", resolve_loss("cross_entropy"))
    groups = find_unit_groups(net)

    def run(evaluate, **kw):
        return torch.cat(
            [evaluate(net, g, range(g.size), X, y, metric, **kw) for g in groups]
        )

    naive = run(evaluate_arms_naive)
    t_naive = median_time(_synchronized(lambda: run(evaluate_arms_naive), "cuda"), 3)
    default = _pulls._ACCELERATOR_CHUNK_ELEMENTS
    try:
        for bound in bounds:
            _pulls._ACCELERATOR_CHUNK_ELEMENTS = bound

            def batched():
                return run(evaluate_arms, tr=trace(net, X))

            diff = (batched() - naive).abs().max().item()
            t = median_time(_synchronized(batched, "cuda"), 5)
            print(
                f"gpu_chunks: elements={bound} ratio={t_naive / t:.1f} "
                f"batched_ms={1e3 * t:.1f} naive_ms={1e3 * t_naive:.0f} "
                f"max_abs_diff={diff:.2g}",
                flush=True,
            )
    finally:
        _pulls._ACCELERATOR_CHUNK_ELEMENTS = default


def _timed_prune(device, X, y):
    net = mlp(SIZES).to(device)
    X, y = X.to(device), y.to(device)
    prune(net, X[:512], y[:512], prune_ratio=0.5, random_state=0)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    _, report = prune(net, X, y, prune_ratio=0.5, random_state=0)
    if device == "cuda":
        torch.cuda.synchronize()
    layers = enumerate(report.layers)
    removed = {(i, int(u)) for i, layer in layers for u in layer.removed}
    return time.perf_counter() - start, removed


def prune_line(n=8192):
    X, y = _problem(n, "cpu")
    t_cpu, cpu = _timed_prune("cpu", X, y)
    t_cuda, cuda = _timed_prune("cuda", X, y)
    print(
        f"gpu_prune: ratio={t_cpu / t_cuda:.2f} cpu_s={t_cpu:.2f} "
        f"cuda_s={t_cuda:.2f} cpu_threads={torch.get_num_threads()} "
        f"removal_overlap={len(cpu & cuda) / len(cpu):.3f}",
        flush=True,
    )


def _fit(X, y, device):
    est = BanditPrunedMLPClassifier(
        (256, 256), max_iter=5, device=device, random_state=0
    )
    start = time.perf_counter()
    est.fit(X, y)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, est.predict_proba(X)


def fit_line(n=20000, n_features=40):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n, n_features, n_informative=20, n_classes=5, random_state=0
    )
    X = X.astype(np.float32)
    _fit(X[:500], y[:500], "cuda")  # warm-up: CUDA context and kernels
    t_cuda, p_cuda = _fit(X, y, "cuda")
    t_cpu, p_cpu = _fit(X, y, "cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, p_one = _fit(X, y, "cpu")
    finally:
        torch.set_num_threads(threads)
    agree = np.mean(p_cuda.argmax(1) == p_cpu.argmax(1))
    print(
        f"gpu_fit: ratio={t_cpu / t_cuda:.2f} cpu_s={t_cpu:.2f} cuda_s={t_cuda:.2f} "
        f"max_proba_diff={np.abs(p_cuda - p_cpu).max():.3g} "
        f"label_agreement={agree:.4f} "
        f"cpu_threads_diff={np.abs(p_one - p_cpu).max():.3g}",
        flush=True,
    )


def fit_split_lines(n=20000, n_features=40):
    """Where the time of a fit goes (``fit_times_``), unpruned and pruned,
    on CUDA and on the CPU; the second of two fits each (the first warms)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n, n_features, n_informative=20, n_classes=5, random_state=0
    )
    X = X.astype(np.float32)
    for device in ("cuda", "cpu"):
        for policy in ("none", "ucb1"):
            for _ in range(2):
                start = time.perf_counter()
                est = BanditPrunedMLPClassifier(
                    (256, 256),
                    max_iter=5,
                    device=device,
                    policy=policy,
                    random_state=0,
                ).fit(X, y)
                if device == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
            parts = " ".join(f"{k}={v:.2f}" for k, v in est.fit_times_.items())
            print(
                f"fit_split: device={device} policy={policy} "
                f"total_s={seconds:.2f} {parts}",
                flush=True,
            )


def main():
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs CUDA")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    chunk_lines()
    prune_line()
    fit_line()
    fit_split_lines()


if __name__ == "__main__":
    main()
