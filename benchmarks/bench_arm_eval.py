"""Batched arm evaluation vs the naive loop, and latency of the pruned network.

Model: MLP 784-256-256-10 (ReLU, random weights), minibatch 512, all 512
hidden units as arms; then the same model with 50 % of each hidden layer
removed, timed at batch 1024 (median of repeats). Torch threads are fixed so
the two sides of each ratio run under the same conditions.

Run: ``python benchmarks/bench_arm_eval.py``. The last line is
``arm_eval: speedup=<naive time / batched time>x max_abs_diff=<d>``.
"""

import torch

from skbandit.benchmarks._perf import arm_eval, pruned_latency


def main(threads=2):
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} threads")
    latency = pruned_latency()
    print(
        f"pruned_latency: ratio={latency.ratio:.3f} "
        f"params_ratio={latency.extra['params_ratio']}"
    )
    speed = arm_eval()
    print(
        f"arm_eval: speedup={speed.ratio:.1f}x "
        f"max_abs_diff={speed.extra['max_abs_diff']}"
    )


if __name__ == "__main__":
    main()
