"""The language-model suite's methods: ours, the structured-LLM-pruning
baselines, and the allocation anchor.

Two scorers live here, benchmark-local (any object with ``score`` is a
``policy=`` of :func:`~skbandit.pruning.prune`):

- :class:`FluctuationScorer`: FLAP's fluctuation metric (An et al., "Fluctuation-
  based Adaptive Structured Pruning for Large Language Models", AAAI 2024),
  the structured member of the Wanda family: a channel's score is the sample
  variance of the activation its consumer reads times the squared norm of the
  consumer's column for it; with ``compensate="mean"`` the removed channels'
  mean activations are folded into the consumer's bias, FLAP's bias
  compensation.
- :class:`OWLAllocation`: OWL's non-uniform layer ratios (Yin et al.,
  "Outlier Weighed Layerwise Sparsity", ICML 2024) in front of any scorer: a
  layer whose consumer has more outliers of the Wanda metric
  :math:`|W_{ij}|\\,\\lVert x_j\\rVert_2` (above ``m`` times the layer's mean)
  gives up fewer channels, the ratios spread over ``[r - lam, r + lam]``
  around the target ``r`` with the same total.

Both need groups read by one ``nn.Linear`` consumer that reads only their
units: the MLP channels and the attention heads of :mod:`.models`. A head
spans ``head_dim`` columns of the output projection; its fluctuation score
is the sum over them (FLAP's head score), and OWL reads the output
projection's entries like any consumer's.
"""

import dataclasses

import numpy as np
import torch
from torch import nn

from ...pruning import Scores

__all__ = [
    "LM_METHODS",
    "DEFAULT_METHOD",
    "EXTERNAL_BASELINES",
    "FluctuationScorer",
    "OWLAllocation",
    "LMMethod",
    "consumer_statistics",
    "owl_ratios",
]

#: Rows (sequences) per forward pass when collecting statistics.
_CHUNK = 64


def _consumer(model, group):
    module = model.get_submodule(group.consumers[0])
    width = group.unit_width  # part of BaseUnitGroup: None for mixed widths
    if (
        len(group.consumers) != 1
        or not width
        or not isinstance(module, nn.Linear)
        or module.in_features != group.size * width
    ):
        raise ValueError(
            f"group {group.name!r} must be read by one nn.Linear consumer that "
            "reads only its units, the same number of features each."
        )
    return module


@torch.no_grad()
def consumer_statistics(model, groups, X):
    """Per group: ``(mean, variance, squared L2 norm)`` of every input
    feature of its consumer (a channel, or one of a head's ``head_dim``
    features), over all samples and positions of ``X`` (float64)."""
    consumers = [_consumer(model, g) for g in groups]
    sums = [None] * len(groups)

    def hook(i):
        def record(module, args):
            x = args[0].reshape(-1, args[0].shape[-1]).double()
            part = torch.stack((x.sum(0), x.pow(2).sum(0)))
            n = x.shape[0]
            sums[i] = (
                (n, part) if sums[i] is None else (sums[i][0] + n, sums[i][1] + part)
            )

        return record

    handles = [c.register_forward_pre_hook(hook(i)) for i, c in enumerate(consumers)]
    try:
        for start in range(0, X.shape[0], _CHUNK):
            model(X[start : start + _CHUNK])
    finally:
        for handle in handles:
            handle.remove()
    stats = []
    for n, (total, squares) in sums:
        mean = total / n
        stats.append(
            (mean, (squares / n - mean**2).clamp_min(0) * n / max(n - 1, 1), squares)
        )
    return stats


class FluctuationScorer:
    """FLAP's fluctuation baseline: remove the channels whose contribution
    to the consumer's output varies least.

    Score of channel ``j`` (lowest removed first):
    :math:`\\operatorname{Var}(x_j)\\,\\lVert W_{:,j}\\rVert_2^2`, the
    variance its removal adds to the consumer's output once its mean is
    folded into the bias (``compensate="mean"``); a unit of several consumer
    features (an attention head) scores the sum over its features.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skbandit.pruning import prune
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> small, _ = prune(net, X, y, policy=FluctuationScorer(), compensate="mean")
    >>> small[0].out_features
    4
    """

    @torch.no_grad()
    def score(self, model, groups, X, y, loss_fn, rng, **context):
        stats = consumer_statistics(model, groups, X)
        scores = []
        for group, (_, var, _) in zip(groups, stats, strict=True):
            column = _consumer(model, group).weight.double().pow(2).sum(0)
            metric = var * column.to(var.device)
            if group.unit_width > 1:
                metric = metric.view(group.size, group.unit_width).sum(1)
            scores.append(-metric.cpu().numpy())
        return Scores(scores)

    def __repr__(self):
        return "FluctuationScorer()"


@torch.no_grad()
def owl_ratios(model, groups, X, prune_ratio, lam=0.08, m=5.0):
    """OWL's prune ratio of each group for an overall ``prune_ratio``.

    Outlier ratio :math:`D_l`: the fraction of the consumer's entries whose
    Wanda metric :math:`|W_{ij}|\\,\\lVert x_j\\rVert_2` exceeds ``m`` times
    its mean; the ratios are ``prune_ratio - (d_l - mean(d))`` with ``d``
    the outlier ratios min-max scaled to ``[0, 2 lam]`` (all equal when the
    layers do not differ), clipped to ``[0, 1)``.
    """
    stats = consumer_statistics(model, groups, X)
    outliers = []
    for group, (_, _, squares) in zip(groups, stats, strict=True):
        weight = _consumer(model, group).weight.double()
        metric = weight.abs() * squares.sqrt().to(weight.device)
        outliers.append(float((metric > m * metric.mean()).double().mean()))
    d = np.asarray(outliers)
    spread = d.max() - d.min()
    scaled = (d - d.min()) / spread * 2 * lam if spread > 0 else np.zeros_like(d)
    return np.clip(prune_ratio - (scaled - scaled.mean()), 0.0, 0.999)


def _allocate(sizes, ratios, total, most=None):
    """Integer counts near ``ratios * sizes`` summing to ``total`` (largest
    remainders), each at most ``most`` (default ``size - 1``; ``total`` is
    at most their sum)."""
    sizes = np.asarray(sizes)
    most = sizes - 1 if most is None else np.asarray(most)
    want = np.minimum(np.asarray(ratios) * sizes, most)
    counts = np.floor(want).astype(int)
    order = np.argsort(-(want - counts), kind="stable")
    i = 0
    while counts.sum() < total:
        g = order[i % len(order)]
        if counts[g] < most[g]:
            counts[g] += 1
        i += 1
    while counts.sum() > total:
        g = int(np.argmax(counts))
        counts[g] -= 1
    return counts


class OWLAllocation:
    """OWL's layer ratios in front of ``scorer``; use with ``scope="global"``.

    ``prune`` passes the total count (``scope="global"``); this splits it
    over the groups by :func:`owl_ratios`, asks ``scorer`` with those
    per-group counts (so ``OBSScorer`` scores each layer after the previous
    ones are removed) and returns scores whose global top units are exactly
    each group's top ``count`` by ``scorer``.

    Units of different kinds (attention heads of ``head_dim`` features, MLP
    channels of one) are not traded for one another: the total is split
    over the kinds in proportion to their units (largest remainders), and
    OWL's ratios spread each kind's share over its own groups.

    Parameters
    ----------
    scorer : scorer object
    lam : float, default=0.08
        Largest deviation from the overall ratio (OWL's lambda).
    m : float, default=5.0
        Outlier threshold, times the layer's mean metric (OWL's M).
    """

    def __init__(self, scorer, lam=0.08, m=5.0):
        self.scorer, self.lam, self.m = scorer, lam, m

    def score(self, model, groups, X, y, loss_fn, rng, n_remove=None, **context):
        sizes = [g.size for g in groups]
        total = int(np.sum(n_remove)) if n_remove is not None else sum(sizes) // 2
        kinds = {}
        for g, group in enumerate(groups):
            kinds.setdefault(group.unit_width, []).append(g)
        kinds = list(kinds.values())
        shares = _allocate(
            [sum(sizes[g] for g in kind) for kind in kinds],
            [total / sum(sizes)] * len(kinds),
            total,
            most=[sum(sizes[g] - 1 for g in kind) for kind in kinds],
        )
        counts = [0] * len(groups)
        for kind, share in zip(kinds, shares, strict=True):
            kind_sizes = [sizes[g] for g in kind]
            ratios = owl_ratios(
                model,
                [groups[g] for g in kind],
                X,
                share / sum(kind_sizes),
                self.lam,
                self.m,
            )
            for g, c in zip(kind, _allocate(kind_sizes, ratios, share), strict=True):
                counts[g] = int(c)
        inner = self.scorer.score(
            model, groups, X, y, loss_fn, rng, n_remove=counts, **context
        )
        scores = []
        for s, k, size in zip(inner.scores, counts, sizes, strict=True):
            rank = np.empty(size)
            rank[np.argsort(-np.asarray(s, float), kind="stable")] = np.arange(size)
            # The top k of each group above every other unit of any group.
            scores.append(np.where(rank < k, 2.0 - rank / size, -1.0 - rank / size))
        # The top k of each group are the inner scorer's removals: a network
        # it built for them stands (the removal step checks that it matches).
        return Scores(scores, inner.pulls, inner.history, inner.removed)

    def __repr__(self):
        return f"OWLAllocation({self.scorer!r}, lam={self.lam}, m={self.m})"


@dataclasses.dataclass(frozen=True)
class LMMethod:
    """How one method prunes: the ``prune()`` arguments (``make`` builds a
    fresh scorer object where the policy is not a name) and a description."""

    description: str
    policy: object
    compensate: str
    scope: str = "layer"
    bandit: bool = False

    def scorer(self):
        return self.policy() if callable(self.policy) else self.policy


def _obs():
    from ...pruning import OBSScorer

    return OBSScorer()


def _tp(name):
    def make():
        from .. import _torch_pruning

        return getattr(_torch_pruning, name)()

    return make


#: The method the summary line calls "default": the estimators' default.
DEFAULT_METHOD = "obs"

#: name -> method. ``obs`` is the estimators' default (greedy structured OBS
#: with the least-squares refit, :data:`skbandit._options.ESTIMATOR_POLICY`),
#: ``ucb1`` prune()'s bandit default (company pulls, refit, fidelity reward).
LM_METHODS = {
    "obs": LMMethod(
        "greedy structured OBS + lstsq refit (our default)", "obs", "lstsq"
    ),
    "obs-owl": LMMethod(
        "obs with OWL non-uniform layer ratios",
        lambda: OWLAllocation(_obs()),
        "lstsq",
        scope="global",
    ),
    "ucb1": LMMethod(
        "UCB1 bandit, company pulls + lstsq refit", "ucb1", "lstsq", bandit=True
    ),
    "fluct": LMMethod(
        "FLAP/Wanda-SP fluctuation + bias compensation", FluctuationScorer, "mean"
    ),
    "fluct-owl": LMMethod(
        "fluct with OWL non-uniform layer ratios",
        lambda: OWLAllocation(FluctuationScorer()),
        "mean",
        scope="global",
    ),
    "magnitude": LMMethod(
        "L2 norm of the channel's input weights", "magnitude", "none"
    ),
    "random": LMMethod("uniformly random channels", "random", "none"),
    "tp-magnitude": LMMethod(
        "Torch-Pruning GroupMagnitudeImportance", _tp("TorchPruningMagnitude"), "none"
    ),
    "tp-taylor": LMMethod(
        "Torch-Pruning GroupTaylorImportance (first-order Taylor)",
        _tp("TorchPruningTaylor"),
        "none",
    ),
}

#: The structured-LLM-pruning baselines the default is compared with (our
#: bandit and the allocation anchor are reported, not counted as baselines).
EXTERNAL_BASELINES = (
    "fluct",
    "fluct-owl",
    "magnitude",
    "random",
    "tp-magnitude",
    "tp-taylor",
)
