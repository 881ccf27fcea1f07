"""prune() on architectures it was never written for, next to Torch-Pruning.

Models: the tiny torchvision/timm/PyTorch/Hugging Face-style architectures of
``tests/any_models.py`` (ResNet, MobileNetV2, ViT, ``nn.TransformerEncoder``
over token ids, a residual MLP with LayerNorm, BERT when ``transformers``
imports), random weights, 64 samples, no declared groups. Ours:
``prune(model, X, y, prune_ratio=0.5)`` with the default policy and budget;
Torch-Pruning: its ``MagnitudePruner`` (L2 norm) at ``pruning_ratio=0.5``
with the output layer ignored. Latency is timed over forward
passes on the 64 samples (fastest of 30, alternating), pruned over unpruned;
torch threads are fixed so both sides run under the same conditions.

Run from the repository root: ``python benchmarks/any_model.py``. One line
per model: ``any_model: model=<m> groups=<n> params_ratio=<r>
latency_ratio=<r> score_s=<s> tp_params_ratio=<r>``.
"""

import copy
import pathlib
import sys
import time

import numpy as np
import torch
from torch import nn

# The checkout's root: its skbandit and the test architectures.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from skbandit.pruning import count_parameters, prune  # noqa: E402
from tests.any_models import ARCHITECTURES  # noqa: E402

N_SAMPLES = 64
RATIO = 0.5


@torch.no_grad()
def latency_ratio(model, pruned, X, repeats=30):
    """Fastest forward pass of ``pruned`` over ``model``'s on ``X`` (a tensor
    or a dict); the two alternate so that load on the machine hits both."""

    def seconds(net):
        start = time.perf_counter()
        net(**X) if isinstance(X, dict) else net(X)
        return time.perf_counter() - start

    model.eval(), pruned.eval()
    seconds(model), seconds(pruned)  # warm up
    times = np.array([(seconds(model), seconds(pruned)) for _ in range(repeats)])
    return times[:, 1].min() / times[:, 0].min()


def torch_pruning_ratio(model, X):
    """Parameter ratio after Torch-Pruning's magnitude pruning at RATIO."""
    import torch_pruning as tp

    model = copy.deepcopy(model)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    pruner = tp.pruner.MagnitudePruner(
        model,
        X,
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=RATIO,
        ignored_layers=[head],
    )
    before = count_parameters(model)
    pruner.step()
    return count_parameters(model) / before


def run(name):
    torch.manual_seed(0)
    try:
        model, X, y = ARCHITECTURES[name](N_SAMPLES)
    except ImportError:
        print(f"any_model: model={name} skipped (not installed)")
        return
    model.eval()
    small, report = prune(model, X, y, prune_ratio=RATIO, random_state=0)
    try:
        tp_ratio = f"{torch_pruning_ratio(model, X):.3f}"
    except Exception as error:  # report Torch-Pruning's failure, keep going
        tp_ratio = f"failed({type(error).__name__})"
    print(
        f"any_model: model={name} groups={len(report.layers)} "
        f"params_ratio={report.params_after / report.params_before:.3f} "
        f"latency_ratio={latency_ratio(model, small, X):.3f} "
        f"score_s={report.time_scoring:.2f} tp_params_ratio={tp_ratio}"
    )


def main(threads=2):
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} threads, {N_SAMPLES} samples")
    for name in ARCHITECTURES:
        run(name)


if __name__ == "__main__":
    main()
