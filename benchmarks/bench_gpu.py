"""The pruning backend on a GPU: chunk sizes, default pruning, CUDA against CPU fits.

Needs CUDA. Run: ``python benchmarks/bench_gpu.py``. Each line is one
measurement from this run, ``name: key=value ...``:

- ``gpu_chunks`` (one line per bound): the batched pulls of
  :func:`skbandit.benchmarks.arm_eval_gpu` (784-1024-1024-10, batch 2048,
  all 2048 hidden units as arms) with the stacked tensors of a chunk bounded
  by ``elements``; ``ratio`` is the naive loop's time over theirs,
  ``peak_gib`` the most GPU memory allocated. The first bound is the CPU's
  (what CUDA used before it had its own); ``arm_eval_gpu``, the line of
  ``skbandit bench perf``, precedes them.
- ``gpu_prune``: the default :func:`~skbandit.pruning.prune` (50 %) of the
  same network on 8192 rows, CPU (all cores) time over CUDA time, and the
  overlap of the two removal sets.
- ``fit_split`` (one line per device and policy): the seconds of a fit of
  20 000 x 40 rows, 5 classes, hidden 256-256, 5 epochs of training and
  5 of fine-tuning, split into training, pruning and fine-tuning
  (``fit_times_``), unpruned (``policy="none"``) and with the default UCB1
  pruning; the second of two fits each (the first warms up).
- ``gpu_fit``: those default fits on CUDA and on the CPU, same seed: the
  CPU time over the CUDA time, the largest difference of their predicted
  probabilities, and how often their labels agree; ``cpu_threads_diff`` is
  the same difference between CPU fits on all threads and on one.
"""

import time

import numpy as np
import torch

from skbandit import BanditPrunedMLPClassifier
from skbandit.benchmarks._perf import _synchronized, arm_eval_gpu, median_time, mlp
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

            torch.cuda.reset_peak_memory_stats()
            diff = (batched() - naive).abs().max().item()
            peak = torch.cuda.max_memory_allocated() / 2**30
            t = median_time(_synchronized(batched, "cuda"), 5)
            print(
                f"gpu_chunks: elements={bound} ratio={t_naive / t:.1f} "
                f"batched_ms={1e3 * t:.1f} naive_ms={1e3 * t_naive:.0f} "
                f"peak_gib={peak:.2f} max_abs_diff={diff:.2g}",
                flush=True,
            )
    finally:
        _pulls._ACCELERATOR_CHUNK_ELEMENTS = default


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _timed_prune(device, X, y):
    net = mlp(SIZES).to(device)
    X, y = X.to(device), y.to(device)
    settings = dict(policy="ucb1", prune_ratio=0.5, random_state=0)
    prune(net, X[:512], y[:512], **settings)  # warm-up
    _synchronize(device)
    start = time.perf_counter()
    _, report = prune(net, X, y, **settings)
    _synchronize(device)
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


def _timed_fit(X, y, device, policy="ucb1"):
    """Seconds of the second of two fits (the first warms up) and the fit."""
    for _ in range(2):
        est = BanditPrunedMLPClassifier(
            (256, 256), max_iter=5, device=device, policy=policy, random_state=0
        )
        start = time.perf_counter()
        est.fit(X, y)
        _synchronize(device)
    return time.perf_counter() - start, est


def fit_lines(n=20000, n_features=40):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n, n_features, n_informative=20, n_classes=5, random_state=0
    )
    X = X.astype(np.float32)
    fits = {}
    for device in ("cuda", "cpu"):
        for policy in ("none", "ucb1"):
            seconds, est = fits[device, policy] = _timed_fit(X, y, device, policy)
            parts = " ".join(f"{k}={v:.2f}" for k, v in est.fit_times_.items())
            print(
                f"fit_split: device={device} policy={policy} "
                f"total_s={seconds:.2f} {parts}",
                flush=True,
            )
    (t_cuda, on_cuda), (t_cpu, on_cpu) = fits["cuda", "ucb1"], fits["cpu", "ucb1"]
    p_cuda, p_cpu = on_cuda.predict_proba(X), on_cpu.predict_proba(X)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, one_thread = _timed_fit(X, y, "cpu")
    finally:
        torch.set_num_threads(threads)
    agree = np.mean(p_cuda.argmax(1) == p_cpu.argmax(1))
    print(
        f"gpu_fit: ratio={t_cpu / t_cuda:.2f} cpu_s={t_cpu:.2f} cuda_s={t_cuda:.2f} "
        f"max_proba_diff={np.abs(p_cuda - p_cpu).max():.3g} "
        f"label_agreement={agree:.4f} "
        f"cpu_threads_diff={np.abs(one_thread.predict_proba(X) - p_cpu).max():.3g}",
        flush=True,
    )


def main():
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs CUDA")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print(arm_eval_gpu().line(), flush=True)
    chunk_lines()
    prune_line()
    fit_lines()


if __name__ == "__main__":
    main()
