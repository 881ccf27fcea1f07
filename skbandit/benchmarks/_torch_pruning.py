"""Torch-Pruning's magnitude criterion as a skbandit scorer (benchmark only).

Torch-Pruning (Fang et al., "DepGraph", CVPR 2023) is the standard structured
pruning library. To compare selection criteria on the *same* trained networks
with the *same* surgery, this scorer asks Torch-Pruning's dependency graph for
each unit group's coupled parameters and scores units by its
``GroupMagnitudeImportance``: the units Torch-Pruning's ``MagnitudePruner``
would remove are the ones removed here (tested). Torch-Pruning is an optional
dependency (``pip install torch-pruning``), needed only by the benchmarks.
"""

import numpy as np
import torch
from torch import nn

__all__ = ["TorchPruningMagnitude"]


class TorchPruningMagnitude:
    """Torch-Pruning's group magnitude for every unit group, heads included.

    Torch-Pruning's dependency graph couples each producer's output rows with
    everything that must shrink with them, and ``GroupMagnitudeImportance``
    (L2, mean-normalised) scores each row; lowest removed first. Torch-Pruning
    does not know this package's attention block: it sees the fused ``qkv``
    projection as ``3 * heads * head_dim`` independent rows, so a unit's
    score is the sum of the importances of the rows it owns (one row for a
    neuron or channel).

    Parameters
    ----------
    p : int, default=2
        Norm of the group magnitude.
    """

    def __init__(self, p=2):
        self.p = p

    def score(self, model, groups, X, y, loss_fn, rng, **context):
        from ..pruning import Scores

        rows = _torch_pruning_rows(model, groups, X, self.p)
        scores = []
        for group, r in zip(groups, rows):
            if r.size != group.n_rows:
                raise ValueError(
                    f"Torch-Pruning scored {r.size} rows of {group.producers[0]!r}; "
                    f"the group spans {group.n_rows}."
                )
            blocks = r.reshape(group.producer_chunks, group.size, group.producer_width)
            scores.append(-blocks.sum(axis=(0, 2)))
        return Scores(scores)

    def __repr__(self):
        return f"TorchPruningMagnitude(p={self.p})"


def _torch_pruning_rows(model, groups, X, p):
    """Torch-Pruning's importance of every output row of each group's producer."""
    try:
        import torch_pruning as tp
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError(
            "The 'tp_magnitude' method needs Torch-Pruning: pip install torch-pruning"
        ) from exc
    import warnings

    names = {module: name for name, module in model.named_modules()}
    with torch.enable_grad(), warnings.catch_warnings():
        # "Unwrapped parameters" (position embeddings): not pruned here.
        warnings.simplefilter("ignore", UserWarning)
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=X[:2])
    importance = tp.importance.GroupMagnitudeImportance(p=p)
    wanted = {g.producers[0] for g in groups}
    found = {}
    roots = [nn.Linear, nn.Conv1d, nn.Conv2d]
    for group in graph.get_all_groups(root_module_types=roots):
        name = names[group[0].dep.target.module]
        if name in wanted:
            found[name] = importance(group).detach().cpu().numpy()
    missing = wanted - set(found)
    if missing:
        raise ValueError(f"Torch-Pruning found no group for layers {sorted(missing)}.")
    return [np.asarray(found[g.producers[0]], dtype=float) for g in groups]
