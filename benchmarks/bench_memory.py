"""Peak memory of a full-data pass does not grow with the number of rows.

Each case runs in a fresh process (peak RSS is per process), on a random
(256, 256) MLP over 50 features, at 100,000 and at 1,000,000 rows:

* ``lstsq``: ``prune(net, X, y)`` with the defaults (company pulls and the
  least-squares refit, both reading every row);
* ``activation``: ``prune(net, X, y, policy="activation", compensate="mean")``
  (the activation baseline and mean folding, both reading every row).

The data themselves grow by 180 MB (float32 X); everything else must not.
One line per case::

    memory: case=<case> peak_100k_gb=<a> peak_1m_gb=<b> growth_gb=<b - a> \
target=0.5 ok|MISS

Usage: ``python benchmarks/bench_memory.py``.
"""

import subprocess
import sys

CASES = {
    "lstsq": "dict(policy='ucb1')",
    "activation": "dict(policy='activation', compensate='mean')",
}

SCRIPT = """
import torch
from torch import nn
from skbandit.pruning import prune
torch.manual_seed(0)
torch.set_num_threads(1)
net = nn.Sequential(nn.Linear(50, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                    nn.Linear(256, 2))
X = torch.randn({rows}, 50)
y = (X[:, 0] > 0).long()
prune(net, X, y, budget=1, random_state=0, **{options})
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

TARGET_GB = 0.5


def peak_gb(rows, options):
    """Peak resident memory (GB) of a fresh process pruning on ``rows`` rows."""
    code = SCRIPT.format(rows=rows, options=options)
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return int(out.split()[-1]) / 2**20  # ru_maxrss is in kB on Linux


def main():
    for case, options in CASES.items():
        small = peak_gb(100_000, options)
        large = peak_gb(1_000_000, options)
        growth = large - small
        verdict = "ok" if growth <= TARGET_GB else "MISS"
        print(
            f"memory: case={case} peak_100k_gb={small:.2f} peak_1m_gb={large:.2f} "
            f"growth_gb={growth:.2f} target={TARGET_GB} {verdict}",
            flush=True,
        )


if __name__ == "__main__":
    main()
