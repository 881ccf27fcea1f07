"""The torch backend: find prunable units, pull arms, score, remove physically.

The pieces compose: :func:`find_unit_groups` lists the units,
:func:`evaluate_arms` measures masked variants (batched; the naive loop
:func:`evaluate_arms_naive` is its reference), a scorer (bandit or baseline)
ranks the units, :func:`select_removals` applies the removal rule and
:func:`remove_units` shrinks the layers. :func:`prune` does all of it.
"""

from .._options import COMPENSATIONS
from ._attention import (
    MultiheadSelfAttention,
    SelfAttention,
    convert_multihead_attention,
)
from ._bandit import MAX_BUDGET, BanditScorer
from ._blocks import BlockGroup, find_block_groups
from ._discovery import discover_groups, find_graph_groups
from ._finetune import fine_tune
from ._graph import GraphGroup, GraphMember
from ._group import BaseUnitGroup
from ._masking import masked, refitted
from ._obs import Refit, consumer_refits, greedy_obs_order
from ._path import PruningPath, prune_path
from ._prune import PAPER_SETTINGS, default_policy, evaluate_loss, prune
from ._pulls import evaluate_arms, evaluate_arms_naive, evaluate_company, trace
from ._registry import METHODS, make_scorer
from ._report import LayerReport, PruningReport
from ._rewards import (
    AccuracyReward,
    FidelityReward,
    LossReward,
    make_reward,
    resolve_loss,
    sample_metric,
)
from ._scorers import (
    BASELINES,
    ActivationScorer,
    MagnitudeScorer,
    OBSScorer,
    RandomScorer,
    Removal,
    Scores,
    unit_means,
)
from ._selection import (
    removal_counts,
    removals_by_count,
    removals_for_params,
    select_removals,
)
from ._surgery import RIDGE, remove_units
from ._units import (
    UnitGroup,
    count_parameters,
    find_unit_groups,
    unit_view,
    unit_weights,
)

__all__ = [
    "AccuracyReward",
    "ActivationScorer",
    "BASELINES",
    "BanditScorer",
    "BaseUnitGroup",
    "BlockGroup",
    "GraphGroup",
    "GraphMember",
    "COMPENSATIONS",
    "FidelityReward",
    "LayerReport",
    "METHODS",
    "LossReward",
    "MAX_BUDGET",
    "MagnitudeScorer",
    "OBSScorer",
    "PAPER_SETTINGS",
    "MultiheadSelfAttention",
    "PruningPath",
    "PruningReport",
    "RIDGE",
    "RandomScorer",
    "Refit",
    "Scores",
    "Removal",
    "SelfAttention",
    "UnitGroup",
    "consumer_refits",
    "convert_multihead_attention",
    "count_parameters",
    "discover_groups",
    "evaluate_arms",
    "evaluate_arms_naive",
    "evaluate_company",
    "evaluate_loss",
    "find_block_groups",
    "find_graph_groups",
    "find_unit_groups",
    "fine_tune",
    "greedy_obs_order",
    "make_reward",
    "make_scorer",
    "masked",
    "prune",
    "default_policy",
    "prune_path",
    "refitted",
    "removal_counts",
    "removals_by_count",
    "removals_for_params",
    "remove_units",
    "resolve_loss",
    "select_removals",
    "trace",
    "unit_means",
    "unit_view",
    "unit_weights",
    "sample_metric",
]
