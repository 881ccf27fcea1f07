"""One call that scores, removes and reports: :func:`prune`."""

import numbers
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ._rewards import resolve_loss, sample_metric
from ._scorers import make_scorer
from ._selection import (
    select_removals,
)
from ._surgery import COMPENSATIONS, remove_units
from ._units import count_parameters, find_unit_groups

__all__ = ["LayerReport", "PruningReport", "prune", "evaluate_loss"]


@dataclass
class LayerReport:
    """What was measured and removed in one unit group.

    Attributes
    ----------
    name : str
        The producing module.
    units_before, units_after : int
    removed : ndarray of int
        Indices (in the unpruned layer) of the removed units.
    scores : ndarray of float
        Removal score of every unit (higher = safer to remove).
    pulls : ndarray of int or None
        Bandit pulls per unit (``None`` for baselines).
    """

    name: str
    units_before: int
    units_after: int
    removed: np.ndarray
    scores: np.ndarray
    pulls: np.ndarray = None


@dataclass
class PruningReport:
    """Everything :func:`prune` measured.

    Attributes
    ----------
    method : str
        The policy or baseline.
    layers : list of LayerReport
    loss_before, loss_after : float
        Loss on the pruning data before and after removal.
    params_before, params_after : int
    time_scoring, time_removal : float
        Seconds spent choosing the units and removing them.
    loss_after_fine_tune : float or None
        Filled in by callers that fine-tune.
    time_fine_tune : float
        Seconds spent fine-tuning (0 when not fine-tuned).
    """

    method: str
    layers: list = field(default_factory=list)
    loss_before: float = float("nan")
    loss_after: float = float("nan")
    params_before: int = 0
    params_after: int = 0
    time_scoring: float = 0.0
    time_removal: float = 0.0
    loss_after_fine_tune: float = None
    time_fine_tune: float = 0.0

    @property
    def total_pulls(self):
        """Pulls spent over all layers (0 for baselines)."""
        return int(sum(l.pulls.sum() for l in self.layers if l.pulls is not None))

    def summary(self):
        """A flat ``dict`` of the scalars (for logs and result stores)."""
        out = {k: v for k, v in asdict(self).items() if k != "layers"}
        out["units_before"] = [l.units_before for l in self.layers]
        out["units_after"] = [l.units_after for l in self.layers]
        out["total_pulls"] = self.total_pulls
        return out


@torch.no_grad()
def evaluate_loss(model, X, y, loss="cross_entropy", batch_size=4096):
    """Mean loss of ``model`` on ``(X, y)``, in chunks."""
    metric = sample_metric("loss", resolve_loss(loss))
    total = 0.0
    for i in range(0, X.shape[0], batch_size):
        xb, yb = X[i : i + batch_size], y[i : i + batch_size]
        total += metric(model(xb), yb).sum().item()
    return total / X.shape[0]


def _as_tensors(model, X, y):
    param = next(model.parameters())
    X = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X)
    y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y)
    X = X.to(device=param.device, dtype=param.dtype)
    y = y.to(param.device)
    if y.is_floating_point():
        y = y.to(param.dtype)
    return X, y


def _check_settings(prune_ratio, compensate):
    if not (isinstance(prune_ratio, numbers.Real) and 0 <= prune_ratio < 1):
        raise ValueError(f"prune_ratio must be in [0, 1), got {prune_ratio!r}.")
    if compensate not in COMPENSATIONS:
        raise ValueError(
            f"compensate must be one of {COMPENSATIONS}, got {compensate!r}."
        )


def _method_name(policy):
    return policy if isinstance(policy, str) else type(policy).__name__


@torch.no_grad()
def prune(
    model,
    X,
    y,
    policy="ucb1",
    prune_ratio=0.5,
    *,
    loss="cross_entropy",
    budget=10,
    batch_size=256,
    reward="loss",
    scope="layer",
    arms_per_round=None,
    compensate="none",
    groups=None,
    random_state=None,
):
    """Prune whole units of a torch model, chosen by a bandit or a baseline.

    Parameters
    ----------
    model : torch.nn.Module
        A trained network; left untouched (a pruned copy is returned).
    X, y : array-like or torch.Tensor
        Data the pulls, baselines and compensation are computed on.
    policy : str or policy object, default="ucb1"
        A bandit policy (``"epsilon_greedy"``, ``"softmax"``, ``"ucb1"``,
        ``"thompson"``, ``"hedge"``, ``"exp3"`` or an object following
        :class:`skbandit.policies.BasePolicy`), a baseline (``"magnitude"``,
        ``"activation"``, ``"random"``), ``"none"``, or any scorer object with
        a ``score`` method.
    prune_ratio : float in [0, 1), default=0.5
        Fraction of units removed (per layer or overall, see ``scope``).
    loss : {"cross_entropy", "mse"} or callable, default="cross_entropy"
    budget, batch_size, reward, arms_per_round :
        Bandit settings, see :class:`BanditScorer`.
    scope : {"layer", "global"}, default="layer"
    compensate : {"none", "mean", "lstsq"}, default="none"
        See :func:`remove_units`. With ``"mean"`` and ``"lstsq"`` the pulls
        replace a unit by its mean activation, as removal will.
    groups : list of UnitGroup, default=None
        The prunable units; discovered by :func:`find_unit_groups` if None.
    random_state : int, numpy.random.Generator or None, default=None

    Returns
    -------
    pruned : torch.nn.Module
    report : PruningReport

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> small, report = prune(net, X, y, policy="ucb1", prune_ratio=0.5,
    ...                       random_state=0)
    >>> small[0].out_features, report.params_after < report.params_before
    (8, True)
    """
    _check_settings(prune_ratio, compensate)
    model.eval()
    X, y = _as_tensors(model, X, y)
    groups = find_unit_groups(model) if groups is None else list(groups)
    if not groups:
        raise ValueError(
            "The model has no prunable units: it needs a hidden layer whose "
            "outputs feed another layer (or declare UnitGroups explicitly)."
        )
    rng = np.random.default_rng(random_state)
    loss_fn = resolve_loss(loss)
    report = PruningReport(
        method=_method_name(policy), params_before=count_parameters(model)
    )
    report.loss_before = evaluate_loss(model, X, y, loss_fn)

    start = time.perf_counter()
    scorer = make_scorer(
        policy,
        budget=budget,
        batch_size=batch_size,
        reward=reward,
        scope=scope,
        arms_per_round=arms_per_round,
        fill="zero" if compensate == "none" else "mean",
    )
    if scorer is None:
        result_scores, pulls = [np.zeros(g.size) for g in groups], [None] * len(groups)
        removals = [np.array([], dtype=int) for _ in groups]
    else:
        result = scorer.score(model, groups, X, y, loss_fn, rng)
        result_scores, pulls = result.scores, result.pulls or [None] * len(groups)
        removals = select_removals(result_scores, prune_ratio, scope)
    report.time_scoring = time.perf_counter() - start

    start = time.perf_counter()
    pruned = remove_units(model, groups, removals, compensate, X)
    report.time_removal = time.perf_counter() - start
    report.params_after = count_parameters(pruned)
    report.loss_after = evaluate_loss(pruned, X, y, loss_fn)
    report.layers = [
        LayerReport(g.name, g.size, g.size - len(r), np.asarray(r), np.asarray(s), p)
        for g, r, s, p in zip(groups, removals, result_scores, pulls)
    ]
    return pruned, report
