"""Torch-Pruning's magnitude criterion as a skbandit scorer (benchmark only).

Torch-Pruning (Fang et al., "DepGraph", CVPR 2023) is the standard structured
pruning library. To compare selection criteria on the *same* trained networks
with the *same* surgery, this scorer asks Torch-Pruning's dependency graph for
each hidden layer's coupled group (the layer's rows, its bias and the next
layer's columns) and scores units by its ``GroupMagnitudeImportance`` (L2,
mean-normalised): the units Torch-Pruning's ``MagnitudePruner`` would remove
are the ones removed here. Torch-Pruning is an optional dependency
(``pip install torch-pruning``), needed only by this benchmark method.
"""

import numpy as np
import torch
from torch import nn

__all__ = ["TorchPruningMagnitude"]


class TorchPruningMagnitude:
    """Score units by Torch-Pruning's group L2 magnitude (lowest removed first).

    Parameters
    ----------
    p : int, default=2
        Norm of the group magnitude.
    """

    def __init__(self, p=2):
        self.p = p

    def score(self, model, groups, X, y, loss_fn, rng, **context):
        try:
            import torch_pruning as tp
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError(
                "The 'tp_magnitude' method needs Torch-Pruning: "
                "pip install torch-pruning"
            ) from exc
        from ..pruning import Scores

        names = {module: name for name, module in model.named_modules()}
        producers = {g.name for g in groups}
        # The dependency graph is traced through autograd.
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=X[:2])
        importance = tp.importance.GroupMagnitudeImportance(p=self.p)
        found = {}
        for group in graph.get_all_groups(root_module_types=_ROOT_TYPES):
            name = names[group[0].dep.target.module]
            if name in producers:
                found[name] = -importance(group).detach().cpu().numpy()
        missing = producers - set(found)
        if missing:
            raise ValueError(
                f"Torch-Pruning found no group for layers {sorted(missing)}."
            )
        return Scores([np.asarray(found[g.name], dtype=float) for g in groups])

    def __repr__(self):
        return f"TorchPruningMagnitude(p={self.p})"


_ROOT_TYPES = [nn.Linear, nn.Conv1d, nn.Conv2d]
