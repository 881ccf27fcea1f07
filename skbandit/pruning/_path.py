"""A pruning path: nested prunes of one network, scored, and the size chosen.

:func:`prune_path` removes units in steps (each step prunes the previous
step's network with :func:`prune`), scores every step with a callable (a
validation score) and keeps the smallest network whose score stays within a
tolerance of the best one's; :class:`PruningPath` is the record of it,
as a table (``to_frame``) and a plot (``plot``).
"""

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ._discovery import discover_groups
from ._prune import prune
from ._report import LayerReport, PruningReport
from ._targets import mac_cost
from ._units import count_parameters

__all__ = ["PruningPath", "choose_step", "prune_path", "step_ratio"]


@dataclass
class PruningPath:
    """The networks of a pruning path: size and validation score per step.

    Step 0 is the unpruned network; every later step prunes the one before.

    Attributes
    ----------
    units : list of tuple of int
        Units of every unit group (hidden layer), per step.
    params : list of int
        Parameters per step.
    mac_ratio : list of float
        Multiply-accumulates per sample, as a fraction of the unpruned
        network's (the deterministic stand-in for latency that
        ``target_latency`` uses).
    scores : list of float
        Validation score per step (accuracy or R², higher is better).
    eligible : list of bool
        Whether the step may be chosen: all pruned steps, or with
        ``target_params`` / ``target_latency`` those that meet the target.
    max_score_drop : float
        The tolerance: a step is within it if its score is at least the
        best score on the path minus ``max_score_drop`` (the best is the
        unpruned network's unless removing units raised the score).
    chosen : int
        Index of the chosen step: the last eligible step within the
        tolerance, or the first eligible step if none is (a hard target
        wins over the tolerance).
    score_name : str, default="score"
        What ``scores`` measure, for the table and the plot.
    score_after_fine_tune : float or None, default=None
        Score of the chosen network after a final fine-tuning (set by the
        estimators; None when not fine-tuned).

    Examples
    --------
    >>> path = PruningPath(units=[(8,), (4,), (2,)], params=[33, 17, 9],
    ...                    mac_ratio=[1.0, 0.5, 0.25], scores=[0.9, 0.9, 0.7],
    ...                    eligible=[True] * 3, max_score_drop=0.05, chosen=1)
    >>> path.to_frame()[["hidden_units", "params", "within_tolerance"]]
    ... # doctest: +NORMALIZE_WHITESPACE
          hidden_units  params  within_tolerance
    step
    0                8      33              True
    1                4      17              True
    2                2       9             False
    """

    units: list
    params: list
    mac_ratio: list
    scores: list
    eligible: list
    max_score_drop: float
    chosen: int
    score_name: str = "score"
    score_after_fine_tune: float = None

    def __len__(self):
        return len(self.scores)

    @property
    def reference(self):
        """The best score on the path, which the tolerance is measured from."""
        return max(self.scores)

    @property
    def threshold(self):
        """The lowest score within the tolerance."""
        return self.reference - self.max_score_drop

    def to_frame(self):
        """One row per step: ``units`` (per layer), ``hidden_units``,
        ``params``, ``param_ratio``, ``mac_ratio``, ``score``,
        ``score_drop``, ``within_tolerance``, ``eligible`` and ``chosen``.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``step``.
        """
        import pandas as pd

        scores = np.asarray(self.scores, dtype=float)
        frame = pd.DataFrame(
            {
                "units": [tuple(u) for u in self.units],
                "hidden_units": [int(sum(u)) for u in self.units],
                "params": self.params,
                "param_ratio": np.asarray(self.params) / self.params[0],
                "mac_ratio": self.mac_ratio,
                "score": scores,
                "score_drop": self.reference - scores,
                "within_tolerance": scores >= self.threshold,
                "eligible": self.eligible,
                "chosen": np.arange(len(self)) == self.chosen,
            }
        )
        frame.index.name = "step"
        return frame

    def plot(self, ax=None):
        """Validation score against parameters, the tolerance band shaded and
        the chosen step marked.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Where to draw; a new figure's axes if None.

        Returns
        -------
        ax : matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        ax.axhspan(
            self.threshold,
            self.reference,
            color="tab:green",
            alpha=0.15,
            label=f"within {self.max_score_drop:g} of the best",
        )
        ax.plot(self.params, self.scores, "o-", color="tab:blue", label="path")
        ax.plot(
            self.params[self.chosen],
            self.scores[self.chosen],
            "*",
            color="tab:red",
            markersize=15,
            label=f"chosen: {self.params[self.chosen]} parameters",
        )
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(f"validation {self.score_name}")
        ax.legend(loc="lower right")
        return ax

    def __repr__(self):
        return (
            f"PruningPath(steps={len(self)}, chosen={self.chosen}, "
            f"units={list(self.units[self.chosen])}, "
            f"params={self.params[0]}→{self.params[self.chosen]}, "
            f"{self.score_name}={self.scores[0]:.4g}→"
            f"{self.scores[self.chosen]:.4g})"
        )


def step_ratio(sizes, path_step, scope="layer"):
    """The ``prune_ratio`` of one path step from groups of ``sizes``.

    ``path_step`` of the remaining units, raised where it would round down
    to nothing so that every step removes at least one unit: of the widest
    group (``scope="layer"``) or overall (``scope="global"``).

    Examples
    --------
    >>> step_ratio([100, 50], 0.2)
    0.2
    >>> step_ratio([4, 2], 0.2)
    0.25
    """
    total = max(sizes) if scope == "layer" else sum(sizes)
    return max(path_step, 1 / total)


def choose_step(scores, eligible, max_score_drop):
    """Index of the last eligible step whose score is within ``max_score_drop``
    of the best score; the first eligible step if none is.

    The reference is the best score on the path, not the unpruned
    network's: when removal raises the validation score, measuring from the
    unpruned one would let noise on few validation rows carry the choice to
    networks far below the best one seen (the rule
    :func:`~skbandit.estimators.smallest_within_tolerance` applies across a
    grid of sizes).

    Examples
    --------
    >>> choose_step([0.9, 0.89, 0.8, 0.9], [True] * 4, 0.02)
    3
    >>> choose_step([0.9, 0.7, 0.6], [False, True, True], 0.02)
    1
    >>> choose_step([0.85, 0.95, 0.9, 0.88], [True] * 4, 0.02)
    1
    """
    threshold = max(scores) - max_score_drop
    candidates = [i for i, ok in enumerate(eligible) if ok]
    within = [i for i in candidates if scores[i] >= threshold]
    return within[-1] if within else candidates[0]


def prune_path(
    model,
    X,
    y,
    score,
    *,
    max_score_drop,
    path_step=0.2,
    target_params=None,
    target_latency=None,
    random_state=None,
    score_name="score",
    **settings,
):
    """Prune ``model`` in nested steps down to one unit per group; choose a size.

    Step 1 prunes ``path_step`` of the units (see :func:`step_ratio`), or to
    ``target_params`` / ``target_latency`` when given; every later step
    prunes ``path_step`` of the previous step's remaining units, with the
    same ``settings``, until every group has one unit. Each network is
    scored by ``score``; the chosen one is the smallest whose score is at
    least the best score on the path (the unpruned network's unless removal
    raised it) minus ``max_score_drop`` (see :func:`choose_step`). With a
    target, only the networks that meet it may be chosen (the target is a
    hard limit).

    Parameters
    ----------
    model : torch.nn.Module
        The trained network; left untouched.
    X, y : torch.Tensor
        The pruning data (see :func:`prune`).
    score : callable
        ``score(module) -> float``, higher is better (e.g. accuracy on
        validation rows the pruning data does not hold).
    max_score_drop : float
        The tolerance, >= 0.
    path_step : float in (0, 1), default=0.2
        Fraction of the remaining units each step removes.
    target_params, target_latency : float, default=None
        A hard limit reached by step 1 (see :func:`prune`).
    random_state : int or None, default=None
        Seeds every step's pruning (one derived seed per step).
    score_name : str, default="score"
        What ``score`` measures, for :class:`PruningPath`.
    **settings
        Everything else :func:`prune` takes (``policy``, ``loss``,
        ``budget``, ``compensate``, ``scope``, ...), used by every step.

    Returns
    -------
    chosen : torch.nn.Module
        The chosen network (a copy of ``model`` when step 0 is chosen).
    report : PruningReport
        From ``model`` to ``chosen``, over the steps that led to it; its
        times cover the whole path.
    path : PruningPath

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> def accuracy(m):
    ...     return float((m(X).argmax(1) == y).float().mean())
    >>> small, report, path = prune_path(net, X, y, accuracy, max_score_drop=0.05,
    ...                                  policy="magnitude", random_state=0)
    >>> [u[0] for u in path.units]
    [8, 7, 6, 5, 4, 3, 2, 1]
    >>> small[0].out_features == path.units[path.chosen][0]
    True
    """
    model.eval()
    groups = discover_groups(model, X)
    sizes = [g.size for g in groups]
    macs = mac_cost(model, groups, X[:1])
    seeds = iter(np.random.SeedSequence(random_state).generate_state(sum(sizes)))
    scope = settings.get("scope", "layer")
    with torch.no_grad():
        scores = [float(score(model))]
    targets = {"target_params": target_params, "target_latency": target_latency}
    first = target_params is not None or target_latency is not None
    # With a target, the unpruned network is only the reference.
    units, params, eligible = [tuple(sizes)], [count_parameters(model)], [not first]
    chosen, network, reports, chosen_reports = copy.deepcopy(model), model, [], []
    while max(sizes) > 1:
        ratio = step_ratio(sizes, path_step, scope)
        network, report = prune(
            network,
            X,
            y,
            prune_ratio=ratio,
            random_state=int(next(seeds)),
            **(targets if first else {}),
            **settings,
        )
        first = False
        reports.append(report)
        sizes = [layer.units_after for layer in report.layers]
        with torch.no_grad():
            scores.append(float(score(network.eval())))
        units.append(tuple(sizes))
        params.append(report.params_after)
        eligible.append(True)
        if choose_step(scores, eligible, max_score_drop) == len(scores) - 1:
            # prune() leaves its input untouched: the step's network is kept
            # as it is, the next step prunes a copy of it.
            chosen, chosen_reports = network, list(reports)
    path = PruningPath(
        units=units,
        params=params,
        mac_ratio=[macs(list(u)) / macs(list(units[0])) for u in units],
        scores=scores,
        eligible=eligible,
        max_score_drop=max_score_drop,
        chosen=choose_step(scores, eligible, max_score_drop),
        score_name=score_name,
    )
    return chosen, _composed_report(chosen_reports, reports, model), path


def _composed_report(steps, all_steps, model):
    """One report from the unpruned network to the chosen one: removed
    indices in the unpruned layers, each unit's score from the last step
    that scored it, pulls summed; times over the whole path."""
    if not all_steps:  # nothing was prunable: one unit per group already
        return PruningReport(method="none", n_rounds=0)
    first = all_steps[0]
    report = dataclasses.replace(
        first,
        layers=[_composed_layer(i, steps, first) for i in range(len(first.layers))],
        loss_after=steps[-1].loss_after if steps else first.loss_before,
        params_after=steps[-1].params_after if steps else count_parameters(model),
        time_scoring=sum(s.time_scoring for s in all_steps),
        time_removal=sum(s.time_removal for s in all_steps),
        n_rounds=len(steps),
        latency_ratio=None,
    )
    return report


def _composed_layer(i, steps, first):
    layer = first.layers[i]
    alive = np.arange(layer.units_before)
    scores = np.full(layer.units_before, np.nan)
    pulls = None
    for step in steps:
        current = step.layers[i]
        scores[alive] = current.scores
        if current.pulls is not None:
            pulls = np.zeros(layer.units_before, dtype=int) if pulls is None else pulls
            pulls[alive] += current.pulls
        alive = np.delete(alive, current.removed)
    if not steps:
        scores = np.asarray(layer.scores, dtype=float)
    return LayerReport(
        name=layer.name,
        units_before=layer.units_before,
        units_after=len(alive),
        removed=np.setdiff1d(np.arange(layer.units_before), alive),
        scores=scores,
        pulls=pulls,
    )
