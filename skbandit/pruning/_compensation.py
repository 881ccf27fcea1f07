"""The compensations, and what they compute: the consumers' data and the refit.

:data:`COMPENSATION` is the one registry of what each ``compensate=`` value
does, on both sides: how a bandit pull removes a unit (what a masked unit
reads as, whether its consumer is refit) and what removal puts back (the
mean folded into a consumer's bias, the least-squares refit of the
consumers). The pulls (``_bandit.py``), both kinds of removal (``_surgery.py``
for slice-rule groups, ``_graph.py`` for graph groups) and ``prune()``'s
memory check read an entry's flags; none of them compares names.

Removal, the pulls and the closed-form scores (``_obs.py``) share the
computations below: the input and output a module sees on the data, the mean
folded into a consumer's bias, and the ridge regression of a consumer on its
kept inputs (for a convolution, on its unfolded patches).
"""

import dataclasses

import torch
from torch import nn

from .._options import COMPENSATIONS
from ._layers import LAYER_TYPES, layer_type

__all__ = [
    "COMPENSATION",
    "Compensation",
    "MAX_LSTSQ_ROWS",
    "RIDGE",
    "consumer_inputs",
    "consumer_outputs",
    "design",
    "fold_mean",
    "normal_equations",
    "refit_lstsq",
    "set_refit",
    "solve_ridge",
]

#: Ridge penalty of least-squares compensation, relative to the number of rows.
RIDGE = 1e-4


@dataclasses.dataclass(frozen=True)
class Compensation:
    """What one ``compensate=`` value does, on the pull side and the removal
    side alike (so that a pull removes a unit as removal will).

    Attributes
    ----------
    name : str
        The value of ``compensate`` (a name of
        :data:`skbandit._options.COMPENSATIONS`).
    fills : bool
        Pulls replace a removed unit by its mean activation on the data
        (:func:`~skbandit.pruning.unit_means`) instead of 0, where they do
        not refit its consumer.
    folds : bool
        Removal adds the removed units' mean contribution to their
        consumers' biases (:func:`fold_mean`).
    refits : bool
        Consumers are refit by ridge regression on their kept inputs:
        removal solves it (streamed normal equations, :func:`solve_ridge`,
        or :func:`refit_lstsq` for a graph group), pulls take its rank-1
        downdates (:func:`~skbandit.pruning.consumer_refits`); it needs
        refittable consumers (``Linear`` or plain convolutions) and memory
        for their Gram matrices.
    """

    name: str
    fills: bool = False
    folds: bool = False
    refits: bool = False

    @property
    def needs_data(self):
        """Whether removal and the pulls measure anything on the data."""
        return self.fills or self.folds or self.refits

    @property
    def measures_means(self):
        """Whether removal measures the units' means before it changes the
        network (they are folded, or stand in where a refit does not)."""
        return self.folds or self.refits


#: ``compensate=`` value -> :class:`Compensation`: zeroing (the paper's), the
#: mean, the least-squares refit. A new compensation is its name in
#: :data:`skbandit._options.COMPENSATIONS` and its entry here.
COMPENSATION = {
    c.name: c
    for c in (
        Compensation("none"),
        Compensation("mean", fills=True, folds=True),
        Compensation("lstsq", fills=True, refits=True),
    )
}
assert tuple(COMPENSATION) == COMPENSATIONS, "one entry per name, in order"


#: Rows (samples x positions) a least-squares refit uses at most; more are
#: subsampled with a fixed seed, which keeps the solve cheap on images.
MAX_LSTSQ_ROWS = 50_000


@torch.no_grad()
def consumer_inputs(model, name, X):
    """Input of the module ``name`` on ``X``, as it reads it."""
    captured = {}

    def hook(module, args):
        captured["x"] = args[0]

    handle = model.get_submodule(name).register_forward_pre_hook(hook)
    try:
        model(X)
    finally:
        handle.remove()
    return captured["x"]


@torch.no_grad()
def consumer_outputs(model, names, X):
    """Output of each named module on ``X``."""
    captured, handles = {}, []
    for name in names:

        def hook(module, args, output, name=name):
            # A copy: a later in-place module (ReLU(inplace=True)) would
            # overwrite the output itself.
            captured[name] = output.clone()

        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        model(X)
    finally:
        for handle in handles:
            handle.remove()
    return captured


@torch.no_grad()
def fold_mean(consumer, removed, means):
    """Add the removed units' mean contribution to the consumer's bias.

    Exact for a linear consumer when the removed units are constant; for a
    convolution it ignores zero padding at the borders.
    """
    weight = _matrix(consumer)  # (outputs, inputs, ...) whatever the layout
    if consumer.bias is None:
        consumer.bias = nn.Parameter(weight.new_zeros(weight.shape[0]))
    w = weight[:, removed]
    contribution = (w.flatten(2).sum(2) if w.dim() > 2 else w) @ means[removed]
    entry = layer_type(consumer)
    if entry is not None:
        contribution = contribution * entry.mean_gain(consumer)
    consumer.bias += contribution


@torch.no_grad()
def design(consumer, inputs, targets):
    """Rows of the consumer's regression: (features, outputs).

    ``inputs`` is the consumer's input restricted to the kept units, as it
    reads it; ``targets`` its original output. A convolution is a linear map
    of its input's patches, so both reduce to ridge regression on rows of
    features (:func:`solve_ridge`): a ``Linear`` has one row per sample (and
    position), a convolution one per sample and output position, its patches
    unfolded with the layer's own padding, stride and dilation.
    """
    entry = layer_type(consumer)
    if entry is not None and entry.refittable(consumer):
        if entry.flat:
            features = inputs.reshape(-1, inputs.shape[-1])
            return features, targets.reshape(-1, targets.shape[-1])
        patches = entry.rows(consumer, inputs)  # (batch, in * k, positions)
        features = patches.transpose(1, 2).reshape(-1, patches.shape[1])
        outputs = targets.flatten(2).transpose(1, 2).reshape(-1, targets.shape[1])
        return features, outputs
    raise ValueError(
        "compensate='lstsq' refits Linear and convolution consumers "
        f"({', '.join(c.__name__ for c in _refittable_types())}; ungrouped, "
        "zero or no padding); use 'mean' or 'none' for "
        f"{type(consumer).__name__}."
    )


def _matrix(module):
    """``module``'s weight as (outputs, inputs, ...), by its registry entry
    (GPT-2's ``Conv1D`` stores the transpose, a transposed convolution its
    flipped transpose)."""
    entry = layer_type(module)
    return module.weight if entry is None else entry.matrix(module)


def _refittable_types():
    return [c for c, e in LAYER_TYPES.items() if e.weighted]


def normal_equations(H, Z):
    """``([H 1]^T [H 1], [H 1]^T Z, rows)`` in float64, at most
    :data:`MAX_LSTSQ_ROWS` rows (a seeded subsample beyond)."""
    if H.shape[0] > MAX_LSTSQ_ROWS:
        generator = torch.Generator(device=H.device).manual_seed(0)
        rows = torch.randperm(H.shape[0], generator=generator, device=H.device)
        H, Z = H[rows[:MAX_LSTSQ_ROWS]], Z[rows[:MAX_LSTSQ_ROWS]]
    H = H.double()
    A = torch.cat([H, H.new_ones(H.shape[0], 1)], dim=1)
    return A.T @ A, A.T @ Z.double(), H.shape[0]


def solve_ridge(gram, cross, n, ridge):
    """``min ||[H 1] [W b]^T - Z||^2 + ridge * n * ||W||^2`` from its normal
    equations; the bias is not penalised. Returns ``W`` of shape
    ``(p, outputs)`` and ``b`` of shape ``(outputs,)``."""
    penalty = torch.full(
        (gram.shape[0],), ridge * n, dtype=gram.dtype, device=gram.device
    )
    penalty[-1] = 0.0
    gram = gram + torch.diag(penalty)
    solution, info = torch.linalg.solve_ex(gram, cross)
    if info.any() or not torch.isfinite(solution).all():
        # Numerically singular (e.g. a constant unit of large magnitude, whose
        # column is collinear with the bias): the least-norm solution.
        solution = torch.linalg.pinv(gram, hermitian=True) @ cross
    return solution[:-1], solution[-1]


@torch.no_grad()
def set_refit(consumer, weight, bias):
    """Write a refit's ``(p, outputs)`` weights and bias into ``consumer``."""
    matrix = _matrix(consumer)
    weight = weight.T.reshape(matrix.shape).to(matrix.dtype)
    entry = layer_type(consumer)
    if entry is None:
        consumer.weight.copy_(weight)
    else:
        entry.set_matrix(consumer, weight)
    if consumer.bias is None:
        consumer.bias = nn.Parameter(matrix.new_zeros(matrix.shape[0]))
    consumer.bias.copy_(bias.to(consumer.bias.dtype))


def refit_lstsq(consumer, inputs, targets, ridge):
    """Refit ``consumer`` on its kept ``inputs`` to reproduce ``targets``, in
    memory (the graph groups' removal; MLP and CNN groups stream, see
    :func:`_compensation_statistics`)."""
    features, outputs = design(consumer, inputs, targets)
    gram, cross, rows = normal_equations(features, outputs)
    set_refit(consumer, *solve_ridge(gram, cross, rows, ridge))
