"""Torch-Pruning's magnitude and Taylor criteria as skbandit scorers (benchmark only).

Torch-Pruning (Fang et al., "DepGraph", CVPR 2023) is the standard structured
pruning library. To compare selection criteria on the *same* trained networks
with the *same* surgery (and compensation), these scorers ask Torch-Pruning's
dependency graph for each unit group's coupled parameters and score units by
one of its group importances: ``GroupMagnitudeImportance`` (the units
Torch-Pruning's ``MagnitudePruner`` would remove are the ones removed here,
tested) or ``GroupTaylorImportance``, the first-order Taylor criterion of
Molchanov et al. (CVPR 2019). Torch-Pruning is an optional dependency
(``pip install torch-pruning``), needed only by the benchmarks.
"""

import warnings
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

__all__ = ["EXTERNAL_SCORERS", "TorchPruningMagnitude", "TorchPruningTaylor"]

#: Rows per forward/backward pass when accumulating Taylor gradients.
_GRADIENT_ROWS = 4096


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
        importance = _tp().importance.GroupMagnitudeImportance(p=self.p)
        return _group_scores(model, groups, X, importance)

    def __repr__(self):
        return f"TorchPruningMagnitude(p={self.p})"


class TorchPruningTaylor:
    r"""Torch-Pruning's first-order Taylor importance for every unit group.

    ``GroupTaylorImportance`` scores an output row by
    :math:`\sum |w \odot \partial L / \partial w|` over the parameters the
    dependency graph couples with it (mean over the group, mean-normalised),
    :math:`L` the mean loss on the pruning data: the first-order estimate of
    the loss change when the row's weights are zeroed (Molchanov et al.,
    "Importance Estimation for Neural Network Pruning", CVPR 2019). Lowest
    removed first; units own rows as in :class:`TorchPruningMagnitude`. The
    model's gradients are computed here and cleared afterwards.

    Parameters
    ----------
    multivariable : bool, default=False
        Torch-Pruning's option: :math:`|\sum w \odot \partial L/\partial w|`
        per row instead of the sum of absolute values.
    """

    def __init__(self, multivariable=False):
        self.multivariable = multivariable

    def score(self, model, groups, X, y, loss_fn, rng, **context):
        importance = _tp().importance.GroupTaylorImportance(
            multivariable=self.multivariable
        )
        with _loss_gradients(model, X, y, loss_fn):
            return _group_scores(model, groups, X, importance)

    def __repr__(self):
        return f"TorchPruningTaylor(multivariable={self.multivariable})"


def _tp():
    try:
        import torch_pruning
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError(
            "The Torch-Pruning scorers need Torch-Pruning: pip install torch-pruning"
        ) from exc
    return torch_pruning


@contextmanager
def _loss_gradients(model, X, y, loss_fn):
    """``.grad`` of every parameter = gradient of the mean loss on ``(X, y)``,
    accumulated over row chunks; the gradients are dropped on exit."""
    params = list(model.parameters())
    saved = [p.grad for p in params]
    try:
        for p in params:
            p.grad = None
        with torch.enable_grad():
            for start in range(0, X.shape[0], _GRADIENT_ROWS):
                xb, yb = (
                    X[start : start + _GRADIENT_ROWS],
                    y[start : start + _GRADIENT_ROWS],
                )
                (loss_fn(model(xb), yb).sum() / X.shape[0]).backward()
        yield
    finally:
        for p, grad in zip(params, saved):
            p.grad = grad


def _group_scores(model, groups, X, importance):
    """Scores (higher = remove first) of each group's units from row importances."""
    from ..pruning import Scores

    rows = _torch_pruning_rows(model, groups, X, importance)
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


def _torch_pruning_rows(model, groups, X, importance):
    """Torch-Pruning's importance of every output row of each group's producer."""
    tp = _tp()
    names = {module: name for name, module in model.named_modules()}
    with torch.enable_grad(), warnings.catch_warnings():
        # "Unwrapped parameters" (position embeddings): not pruned here.
        warnings.simplefilter("ignore", UserWarning)
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=X[:2])
    wanted = {g.producers[0] for g in groups}
    found, others = {}, []
    roots = [nn.Linear, nn.Conv1d, nn.Conv2d]
    for group in graph.get_all_groups(root_module_types=roots):
        name = names[group[0].dep.target.module]
        if name in wanted:
            found[name] = importance(group).detach().cpu().numpy()
        else:
            others.append(group)
    for group in others:
        # A producer coupled into a group rooted elsewhere (separate q, k, v
        # projections: Torch-Pruning roots their group at one of them): its
        # rows' importances, read through the group's index map.
        rows = [
            item
            for item in group
            if names.get(item.dep.target.module) in wanted - set(found)
            and graph.is_out_channel_pruning_fn(item.dep.handler)
        ]
        if rows:
            scores = importance(group).detach().cpu().numpy()
        for item in rows:
            module = item.dep.target.module
            mine = np.zeros(module.weight.shape[0])
            mine[item.idxs] = scores[item.root_idxs]
            found[names[module]] = mine
    missing = wanted - set(found)
    if missing:
        raise ValueError(f"Torch-Pruning found no group for layers {sorted(missing)}.")
    return [np.asarray(found[g.producers[0]], dtype=float) for g in groups]


#: Benchmark method name -> scorer class (see :data:`._names.EXTERNAL`).
EXTERNAL_SCORERS = {
    "tp_magnitude": TorchPruningMagnitude,
    "tp_taylor": TorchPruningTaylor,
}
