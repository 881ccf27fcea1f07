"""What :func:`~skbandit.pruning.prune` measured and removed: the report.

:class:`PruningReport` holds one :class:`LayerReport` per unit group plus the
losses, parameter counts and times of the whole call; it prints as one line,
turns into a DataFrame (``to_frame``) and renders as HTML in notebooks.
"""

import html
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["LayerReport", "PruningReport"]


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
        Set by callers that fine-tune (on a copy:
        ``dataclasses.replace(report, loss_after_fine_tune=...)``).
    time_fine_tune : float
        Seconds spent fine-tuning (0 when not fine-tuned).
    n_rounds : int
        Scoring-and-removal rounds run (0 for ``policy="none"``).
    latency_ratio : float or None
        Measured pruned / unpruned latency when ``target_latency`` was given
        (fastest of 15 runs each on one thread, on up to 1024 rows of the
        pruning data), for information: the units are chosen by
        multiply-accumulates.
    fast_path_fallbacks : int
        Pull evaluations that fell back from a batched fast path to one
        forward pass per arm (a path that failed, or ran out of GPU memory):
        the same values, only slower. Each fallback warns once per process;
        this counts every one, so a broken fast path shows in the report
        (0 for baselines, and whenever the fast paths ran).
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
    n_rounds: int = 1
    latency_ratio: float = None
    fast_path_fallbacks: int = 0

    @property
    def total_pulls(self):
        """Pulls spent over all layers (0 for baselines)."""
        return int(sum(l.pulls.sum() for l in self.layers if l.pulls is not None))

    @property
    def pulls_per_unit(self):
        """``{"min", "median", "max"}`` of the pulls per unit over all layers,
        or None for baselines: how unevenly the bandits spent their budget
        (equal values are uniform allocation)."""
        pulls = [l.pulls for l in self.layers if l.pulls is not None]
        return _pull_stats(np.concatenate(pulls)) if pulls else None

    def summary(self):
        """A flat ``dict`` of the scalars (for logs and result stores)."""
        out = {k: v for k, v in asdict(self).items() if k != "layers"}
        out["units_before"] = [l.units_before for l in self.layers]
        out["units_after"] = [l.units_after for l in self.layers]
        out["total_pulls"] = self.total_pulls
        for stat, value in (self.pulls_per_unit or {}).items():
            out[f"pulls_{stat}"] = value
        return out

    def __repr__(self):
        units = ", ".join(f"{l.units_before}→{l.units_after}" for l in self.layers)
        return (
            f"PruningReport(method={self.method!r}, units=[{units}], "
            f"params={self.params_before}→{self.params_after}, "
            f"loss={self.loss_before:.4g}→{self.loss_after:.4g}, "
            f"pulls={self.total_pulls})"
        )

    def to_frame(self):
        """One row per unit group: ``units_before``, ``units_after``,
        ``removed`` (count), ``pulls`` (total, 0 for baselines),
        ``pulls_min``, ``pulls_median``, ``pulls_max`` (per unit, NaN for
        baselines) and ``mean_score``; indexed by the group's ``name``.

        Returns
        -------
        pandas.DataFrame
        """
        import pandas as pd

        rows = [
            {
                "name": l.name,
                "units_before": l.units_before,
                "units_after": l.units_after,
                "removed": len(l.removed),
                "pulls": 0 if l.pulls is None else int(np.sum(l.pulls)),
                **{f"pulls_{k}": v for k, v in _frame_pull_stats(l.pulls).items()},
                "mean_score": float(np.mean(l.scores)) if len(l.scores) else None,
            }
            for l in self.layers
        ]
        columns = ["name", "units_before", "units_after", "removed", "pulls"]
        columns += ["pulls_min", "pulls_median", "pulls_max", "mean_score"]
        return pd.DataFrame(rows, columns=columns).set_index("name")

    def _repr_html_(self):
        return f"<p>{html.escape(repr(self))}</p>" + self.to_frame()._repr_html_()


def _pull_stats(pulls):
    return {
        "min": int(np.min(pulls)),
        "median": float(np.median(pulls)),
        "max": int(np.max(pulls)),
    }


def _frame_pull_stats(pulls):
    """:func:`_pull_stats`, NaN for a baseline's layer (no pulls)."""
    if pulls is None or not len(pulls):
        return dict.fromkeys(("min", "median", "max"), np.nan)
    return _pull_stats(pulls)
