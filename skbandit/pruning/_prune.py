"""One call that scores, removes and reports: :func:`prune`.

``prune`` is the two halves: ``_checked`` (the settings, checked each alone
by the shared option constraints on the way in and together here, the
model, the data and the groups, before any work) and ``_rounds`` (score and
remove, round by round, and report).
"""

import copy
import time
import warnings

import numpy as np
import torch
from torch import nn

from .._options import DEFAULTS, PAPER_SETTINGS
from .._validation import (
    SEED,
    check_option_combinations,
    option_constraints,
    validated,
)
from ._attention import convert_multihead_attention
from ._blocks import with_kv_cache_off
from ._chain import flat_children
from ._compensation import COMPENSATION
from ._discovery import discover_groups
from ._inputs import adapt_inputs, causal_lm_labels, qualify, unwrap
from ._layers import layer_type
from ._obs import refittable
from ._pulls import counting_fallbacks
from ._registry import make_scorer
from ._report import LayerReport, PruningReport
from ._resources import check_refit_memory
from ._rewards import check_causal_lm, resolve_loss, sample_metric
from ._selection import removal_counts, removals_by_count, removals_for_params
from ._surgery import remove_units
from ._targets import (
    latency_ratio,
    mac_cost,
    param_cost,
    round_count,
    round_param_target,
)
from ._units import check_unit_groups, count_parameters

__all__ = ["PAPER_SETTINGS", "prune", "evaluate_loss", "default_policy"]


#: Rows of the pruning data the reported ``latency_ratio`` is measured on.
_LATENCY_ROWS = 1024


@torch.no_grad()
def evaluate_loss(model, X, y, loss="cross_entropy", batch_size=4096):
    """Mean loss of ``model`` on ``(X, y)``, in chunks.

    Parameters
    ----------
    model : torch.nn.Module
    X, y : torch.Tensor
        Inputs and targets.
    loss : {"cross_entropy", "mse"} or callable, default="cross_entropy"
        See :func:`resolve_loss`.
    batch_size : int, default=4096
        Samples per forward pass.

    Returns
    -------
    float
    """
    metric = sample_metric("loss", resolve_loss(loss))
    total = 0.0
    for i in range(0, X.shape[0], batch_size):
        xb, yb = X[i : i + batch_size], y[i : i + batch_size]
        total += metric(model(xb), yb).sum().item()
    return total / X.shape[0]


def _numeric_tensor(values, name):
    """``values`` as a tensor; a clear error for strings, objects, complex."""
    if not torch.is_tensor(values):
        values = np.asarray(values)
        if values.dtype.kind not in "biuf":
            raise ValueError(
                f"{name} must be numeric, got an array of dtype {values.dtype}."
            )
    values = torch.as_tensor(values)
    if values.is_complex():
        raise ValueError(f"{name} must be real, got dtype {values.dtype}.")
    return values


def _first_layer(model):
    """``(name, module)`` of the layer that reads the input, when it is known:
    the first leaf of an ``nn.Sequential``, if it is a layer with weights
    (a registered ``Linear`` or convolution type)."""
    if not isinstance(model, nn.Sequential):
        return None
    for name, module in flat_children(model):
        entry = layer_type(module)
        if entry is not None and entry.weighted:
            return name, module
        return None
    return None


def _check_data(model, X, y, loss):
    """Clear errors for data that does not fit the model or the loss."""
    if X.dim() < 2:
        raise ValueError(
            "X must have shape (n_samples, n_features, ...) with at least 2 "
            f"dimensions, got shape {tuple(X.shape)}."
        )
    if X.shape[0] == 0:
        raise ValueError("X has 0 samples; prune needs data to score units on.")
    if y.dim() == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(
            "X and y have inconsistent numbers of samples: "
            f"{X.shape[0]} and {y.shape[0] if y.dim() else 'a scalar'}."
        )
    first = _first_layer(model)
    if first is not None:
        name, layer = first
        entry = layer_type(layer)
        dim, expected = entry.feature_dim, entry.n_in(layer)
        what = "features" if entry.flat else "channels"
        if X.shape[dim] != expected:
            raise ValueError(
                f"X has {X.shape[dim]} {what}, but the model's first layer "
                f"({name!r}, {type(layer).__name__}) expects {expected}."
            )
    if X.is_floating_point() and not torch.isfinite(X).all():
        raise ValueError("X contains NaN or infinity.")
    if y.is_floating_point() and not torch.isfinite(y).all():
        raise ValueError("y contains NaN or infinity.")
    # One tensor: adapt_inputs wrapped a model that returns anything else.
    out = model(X[:1])
    if not isinstance(loss, str):
        return  # a custom loss defines its own targets
    if loss == "cross_entropy":
        if y.dim() != out.dim() - 1:
            raise ValueError(
                "loss='cross_entropy' needs one class label per sample: y of "
                f"shape {(X.shape[0], *out.shape[2:])}, got {tuple(y.shape)}."
            )
        if y.is_floating_point() and not torch.equal(y, y.round()):
            raise ValueError(
                "loss='cross_entropy' needs integer class labels in y, got "
                "non-integer values (use loss='mse' for regression targets)."
            )
        n_classes = out.shape[1]
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(
                f"y has class labels in [{int(y.min())}, {int(y.max())}], outside "
                f"[0, {n_classes}) of the model's {n_classes} outputs."
            )
    elif loss == "causal_lm":
        check_causal_lm(out, y)
    elif loss == "mse" and y[:1].numel() != out.numel():
        raise ValueError(
            f"y has shape {tuple(y.shape)}, but the model outputs "
            f"{tuple(out.shape[1:])} per sample; loss='mse' needs one target "
            "per output."
        )


def _as_tensors(model, X, y, loss="cross_entropy"):
    """Tensors on the model's device and dtype, checked (``model`` in eval mode)."""
    param = next(model.parameters(), None)
    if param is None:
        raise ValueError("The model has no parameters, so nothing to prune.")
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise ValueError(
            "The model has tensors on the 'meta' device, which hold no values "
            "to compute with; materialise its weights first (e.g. to_empty() "
            "and load_state_dict())."
        )
    X = _numeric_tensor(X, "X")
    y = _numeric_tensor(y, "y")
    # Floating inputs, and any input of a model that starts with a Linear or
    # Conv layer (which cannot read integers), take the model's dtype; token
    # ids for an embedding stay integers.
    as_float = X.is_floating_point() or _first_layer(model) is not None
    X = X.to(param.device, param.dtype if as_float else None)
    y = y.to(param.device)
    if y.is_floating_point():
        y = y.to(param.dtype)
    _check_data(model, X, y, loss)
    return X, y


def _between_rounds(between_rounds, model):
    """``between_rounds(model)``, checked: the next round prunes what it returns."""
    result = between_rounds(model)
    if not isinstance(result, nn.Module):
        raise TypeError(
            "between_rounds must return the model to prune next (a "
            f"torch.nn.Module), got {type(result).__name__}; return the "
            "module it was given if it changes it in place."
        )
    return result.eval()


def _check_rounds(n_rounds, groups):
    units = sum(g.size for g in groups)
    if n_rounds > units:
        raise ValueError(
            f"n_rounds={n_rounds} exceeds the model's {units} prunable units; "
            "use at most one round per unit."
        )


def _check_scores(scores, groups, method):
    """One finite score per unit: a NaN or infinite score has no rank, and
    the removal rule would fall back to removing units in index order."""
    if len(scores) != len(groups):
        raise ValueError(
            f"policy {method!r} returned scores for {len(scores)} unit groups; "
            f"the model has {len(groups)}."
        )
    for group, values in zip(groups, scores):
        values = np.asarray(values, dtype=float)
        if values.shape != (group.size,):
            raise ValueError(
                f"policy {method!r} returned scores of shape {values.shape} for "
                f"the {group.size} units of layer {group.name!r}."
            )
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(
                f"policy {method!r} returned non-finite scores for "
                f"units {bad[:10].tolist()} of layer {group.name!r}; every unit "
                "needs a finite score to be ranked."
            )


def _method_name(policy):
    return policy if isinstance(policy, str) else type(policy).__name__


def _param_target(target_params, params_before):
    if target_params < 1:
        return int(round(target_params * params_before))
    return int(target_params)


#: What :func:`prune` accepts: the shared option constraints, under prune's
#: names, and its own ``between_rounds`` and ``random_state``.
_CONSTRAINTS = option_constraints(
    *(name for name in DEFAULTS.__dataclass_fields__ if name != "fine_tune_epochs"),
    renamed={"pull_batch_size": "batch_size"},
    between_rounds=[callable, None],
    random_state=SEED,
)
_CONSTRAINTS["policy"] = [*_CONSTRAINTS["policy"], None]


@with_kv_cache_off  # a decoder's KV cache is off while the pulls run
@validated(_CONSTRAINTS)
@torch.no_grad()
def prune(
    model,
    X,
    y,
    policy=None,
    prune_ratio=DEFAULTS.prune_ratio,
    *,
    loss="cross_entropy",
    budget=DEFAULTS.budget,
    batch_size=DEFAULTS.pull_batch_size,
    reward=DEFAULTS.reward,
    scope=DEFAULTS.scope,
    arms_per_round=DEFAULTS.arms_per_round,
    pull=DEFAULTS.pull,
    max_budget=DEFAULTS.max_budget,
    compensate=DEFAULTS.compensate,
    n_rounds=DEFAULTS.n_rounds,
    target_params=DEFAULTS.target_params,
    target_latency=DEFAULTS.target_latency,
    between_rounds=None,
    groups=None,
    prior=DEFAULTS.prior,
    prior_weight=DEFAULTS.prior_weight,
    random_state=None,
):
    """Prune whole units of a torch model, chosen by a bandit or a baseline.

    The defaults are the best configuration we measured (chosen on tuning
    datasets, checked on held-out ones, see :ref:`method-defaults`): the
    least-squares refit of each unit group's consumer (``compensate=
    "lstsq"``) and, where every consumer is one a refit covers (``Linear``
    layers, attention output projections), greedy structured OBS, as the
    estimators use; elsewhere (e.g. channels read by a convolution) UCB1
    over pulls that remove a unit *in the company* of the units the bandit
    currently plans to remove, *with* that compensation, rewarded by how
    little the network's outputs move (see :func:`default_policy`). The
    configuration of the paper is ``prune(model, X, y, **PAPER_SETTINGS)``
    (see :data:`PAPER_SETTINGS`).

    Parameters
    ----------
    model : torch.nn.Module
        A trained network. Its weights are left untouched (a pruned copy is
        returned, a plain copy for ``policy="none"``); it is put in eval mode.
        In the copy, self-attention ``nn.MultiheadAttention`` layers become
        equal :class:`MultiheadSelfAttention` layers, whose heads can be
        pruned. Its weights must hold values (not be on the ``meta``
        device).
    X, y : array-like or torch.Tensor
        Data the pulls, baselines and compensation are computed on. ``X``
        may also be a dict or tuple of tensors (samples along dimension 0),
        passed to the model as keyword or positional inputs; integer inputs
        (token ids) stay integers. A model returning a tuple or a Hugging
        Face ``ModelOutput`` is scored on its logits (first element).
    policy : str, policy object or None, default=None
        A bandit policy (``"epsilon_greedy"``, ``"softmax"``, ``"ucb1"``,
        ``"thompson"``, ``"gaussian_thompson"``, ``"hedge"``, ``"exp3"``, the
        pure-exploration ``"uniform"``, ``"sar"``, ``"lucb"`` or an
        object following :class:`skbandit.policies.BasePolicy`), a baseline
        (``"magnitude"``, ``"activation"``, ``"random"``, ``"obs"``),
        ``"none"``, or any scorer object with a ``score`` method. None:
        ``"obs"`` when every group's consumer is a refittable flat layer,
        ``compensate="lstsq"``, ``scope="layer"``, no target is set and no
        bandit option (``budget``, ``pull``, ``reward``, ``prior``, ...)
        is set away from its default; else ``"ucb1"``
        (:func:`default_policy`; ``report.method`` says which ran).
    prune_ratio : float in [0, 1), default=0.5
        Fraction of units removed (per layer or overall, see ``scope``).
    loss : {"cross_entropy", "mse", "causal_lm"} or callable, \
default="cross_entropy"
        See :func:`resolve_loss`. ``"causal_lm"`` scores a causal language
        model per token: ``(batch, seq, vocab)`` logits (a ``ModelOutput``'s
        ``.logits``; ``use_cache=False`` is passed when ``forward`` takes
        it), ``y`` the labels shifted the Hugging Face way inside the loss
        (``-100`` not counted), or ``y=None`` for the input ids themselves
        (``X`` or ``X["input_ids"]``, ``attention_mask`` zeros not counted).
    budget : float in [1, 1000] or "auto", default=10
        Average pulls per unit, or ``"auto"`` (stop when the split into
        removed and kept units is settled, at most ``max_budget``). Fewer
        than one pull per unit would leave units unmeasured, more than
        :data:`~skbandit.pruning.MAX_BUDGET` (1000) barely sharpens the
        estimates: both are errors.
    batch_size, arms_per_round, max_budget :
        Bandit settings, see :class:`BanditScorer`.
    reward : {"fidelity", "loss", "accuracy"} or reward object, \
default="fidelity"
        What a pull measures: the divergence of the outputs from the unpruned
        network's (:class:`FidelityReward`), the loss change
        (:class:`LossReward`, the paper's) or the accuracy change
        (:class:`AccuracyReward`).
    pull : {"company", "single", "set"}, default="company"
        ``"company"``: a pull removes one unit on top of the rest of the
        bandit's current removal plan (:func:`evaluate_company`);
        ``"single"``: one unit alone (the paper's); ``"set"``: the whole
        planned-size set at once, every unit sharing its reward. See
        :class:`BanditScorer`.
    scope : {"layer", "global"}, default="layer"
    compensate : {"lstsq", "mean", "none"}, default="lstsq"
        See :func:`remove_units`; ``"none"`` is the paper's zeroing. The pulls
        remove a unit the way removal will: zeroed, replaced by its mean
        activation, or with the least-squares refit of a ``Linear`` consumer
        (other consumers: the mean). ``"lstsq"`` needs ``Linear`` or plain
        convolution consumers.
    n_rounds : int, default=1
        Iterative pruning: reach the target in ``n_rounds`` geometric steps,
        re-scoring the surviving units each round (bandits warm-started with
        their earlier observations). At most the number of prunable units.
    target_params : int or float, default=None
        Instead of ``prune_ratio``: a parameter count (or a fraction of the
        current one, if < 1) to reach, removing units of all layers in one
        score order (per-layer ratios follow from it).
    target_latency : float in (0, 1), default=None
        Instead of ``prune_ratio``: a fraction of the unpruned inference
        latency to reach with the fewest units removed, in one score order
        over all layers. Latency is estimated by the multiply-accumulates of
        the linear and convolution layers per sample, not timed: a decision
        on timings would change with the machine's load, and the same
        ``random_state`` must keep the same units. The measured ratio is
        reported as ``latency_ratio``.
    between_rounds : callable, default=None
        ``between_rounds(model) -> model`` after every round but the last
        (e.g. a few epochs of fine-tuning); it must return the module.
    groups : list of UnitGroup, default=None
        The prunable units; discovered if None (:func:`discover_groups`): by
        :func:`find_unit_groups` in an ``nn.Sequential``; in any other model,
        the groups its modules declare plus those of its dependency graph
        (:func:`find_graph_groups`). Declared groups must match the sizes of
        the layers they name.
    prior : {"obs", "magnitude"} or None, default=None
        Start the bandits from closed-form scores (greedy OBS order, weight
        magnitudes), min-max scaled to ``[0, 1]`` per bandit and folded in as
        ``prior_weight`` pseudo-pulls per unit; see :class:`BanditScorer`.
        Ignored by baselines.
    prior_weight : int, default=2
        Pseudo-pulls of the prior per unit.
    random_state : int, numpy.random.Generator or None, default=None

    Returns
    -------
    pruned : torch.nn.Module
    report : PruningReport

    Raises
    ------
    MemoryError
        Before any pull, when the least-squares Gram matrices of
        ``compensate="lstsq"`` or ``policy="obs"`` (two float64 matrices of
        ``(p + 1) ** 2`` per consumer reading ``p`` inputs, and one more to
        invert) exceed the memory available on the model's device.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> small, report = prune(net, X, y, policy="ucb1", prune_ratio=0.5,
    ...                       random_state=0)
    >>> small[0].out_features, report.params_after < report.params_before
    (8, True)
    """
    model, X, y, groups = _checked(
        model,
        X,
        y,
        loss=loss,
        groups=groups,
        policy=policy,
        compensate=compensate,
        n_rounds=n_rounds,
        target_params=target_params,
        target_latency=target_latency,
    )
    if policy is None:
        policy = default_policy(
            model,
            groups,
            compensate,
            scope,
            targeted=target_params is not None or target_latency is not None,
            budget=budget,
            batch_size=batch_size,
            reward=reward,
            arms_per_round=arms_per_round,
            pull=pull,
            max_budget=max_budget,
            prior=prior,
            prior_weight=prior_weight,
        )
    scorer = make_scorer(
        policy,
        budget=budget,
        batch_size=batch_size,
        reward=reward,
        scope=scope,
        arms_per_round=arms_per_round,
        compensate=compensate,
        pull=pull,
        max_budget=max_budget,
        prior=prior,
        prior_weight=prior_weight,
    )
    pruned, report = _rounds(
        model,
        X,
        y,
        groups,
        scorer,
        method=_method_name(policy),
        loss=loss,
        prune_ratio=prune_ratio,
        scope=scope,
        compensate=compensate,
        n_rounds=n_rounds,
        target_params=target_params,
        target_latency=target_latency,
        between_rounds=between_rounds,
        random_state=random_state,
    )
    return unwrap(pruned), report


def default_policy(
    model, groups, compensate="lstsq", scope="layer", targeted=False, **bandit_options
):
    """What ``policy=None`` prunes with: greedy OBS (``"obs"``) when every
    group is read by a flat layer that least squares refits (``Linear``,
    GPT-2's ``Conv1D``: MLPs, attention heads, feed-forward channels) and
    removal refits it (``compensate="lstsq"``), else the bandit
    (:data:`~skbandit._options.DEFAULTS` ``.policy``, UCB1).

    OBS ranks a layer's units by the exact increase of the refit's
    residual, at a small multiple of a magnitude ranking's time; the bandit
    measures the same kind of quantity by pulls, at 10 to 25 times that
    time, and is the one that prunes any group. OBS also runs on channels
    read by a convolution (``policy="obs"``), but is not the default there:
    on a tuning split of two Fashion-MNIST CNNs it tied the bandit and its
    uniform control right after removal, at 0.6 of the bandit's time
    (``benchmarks/conv_default_check.py``).

    Greedy OBS needs the count of each layer: with ``scope="global"`` or a
    parameter or latency target the bandit runs (OBS's scores are positions
    in each layer's own order, not comparable across layers), and so it
    does when any option only a bandit reads (``budget``, ``pull``,
    ``reward``, ``prior``, ...) is set away from its default.

    Parameters
    ----------
    model : torch.nn.Module
        The network (as :func:`prune` prepared it).
    groups : list of BaseUnitGroup
        Its unit groups.
    compensate : {"none", "mean", "lstsq"}, default="lstsq"
        The compensation removal will apply.
    scope : {"layer", "global"}, default="layer"
    targeted : bool, default=False
        Whether a parameter or latency target sets the size.
    **bandit_options
        :func:`prune`'s bandit options (``budget``, ``batch_size``,
        ``reward``, ``arms_per_round``, ``pull``, ``max_budget``,
        ``prior``, ``prior_weight``) as the caller gave them.

    Returns
    -------
    str

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skbandit.pruning import find_unit_groups
    >>> mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> groups = find_unit_groups(mlp)
    >>> default_policy(mlp, groups)
    'obs'
    >>> default_policy(mlp, groups, "none"), default_policy(mlp, groups, scope="global")
    ('ucb1', 'ucb1')
    >>> default_policy(mlp, groups, budget=50)
    'ucb1'
    """
    unknown = set(bandit_options) - set(_BANDIT_OPTIONS)
    if unknown:
        raise TypeError(f"default_policy() got unexpected options {sorted(unknown)}.")
    bandit_asked = any(
        bandit_options.get(name, default) != default
        for name, default in _BANDIT_OPTIONS.items()
    )
    obs_applies = compensate == "lstsq" and scope == "layer" and not targeted
    if obs_applies and not bandit_asked:
        if all(_flat_refittable(model, g) for g in groups):
            return "obs"
    return DEFAULTS.policy


#: prune()'s options that only a bandit reads, and their defaults.
_BANDIT_OPTIONS = {
    "budget": DEFAULTS.budget,
    "batch_size": DEFAULTS.pull_batch_size,
    "reward": DEFAULTS.reward,
    "arms_per_round": DEFAULTS.arms_per_round,
    "pull": DEFAULTS.pull,
    "max_budget": DEFAULTS.max_budget,
    "prior": DEFAULTS.prior,
    "prior_weight": DEFAULTS.prior_weight,
}


def _flat_refittable(model, group):
    """Refittable and read by a flat layer: where OBS was measured to prune
    as well as the bandit (MLPs, transformers). On convolutions it also
    runs, but tied the bandit there on the tuning split (see
    :func:`default_policy`), so the bandit stays the default."""
    if not refittable(model, group):
        return False
    return layer_type(model.get_submodule(group.consumers[0])).flat


def _checked(
    model,
    X,
    y,
    *,
    loss,
    groups,
    policy,
    compensate,
    n_rounds,
    target_params,
    target_latency,
):
    """The checking half of :func:`prune`: the settings that exclude each
    other (each one alone was checked on the way in), the model and the data,
    before any work. Returns the model (in eval mode, attention
    converted, inputs adapted), ``X`` and ``y`` as tensors on its device and
    the unit groups to prune (discovered or the given ones, checked)."""
    # Each option alone was checked on the way in (``validated``).
    check_option_combinations(n_rounds, target_params, target_latency)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    model.eval()
    if y is None and loss == "causal_lm":
        y = causal_lm_labels(X)
    model, X = adapt_inputs(convert_multihead_attention(model), X)
    X, y = _as_tensors(model, X, y, loss)
    if groups is None:
        groups = discover_groups(model, X)
    else:
        groups = qualify(model, list(groups))
        check_unit_groups(model, groups)
    if not groups:
        raise ValueError(
            "The model has no prunable units: it needs a hidden layer whose "
            "outputs feed another layer (or declare UnitGroups explicitly)."
        )
    _check_rounds(n_rounds, groups)
    for group in groups:  # before scoring, not after it
        group.check_compensation(compensate)
    refits = COMPENSATION[compensate].refits
    if refits or policy == "obs":
        reason = f"compensate={compensate!r}" if refits else "policy='obs'"
        check_refit_memory(model, groups, reason, next(model.parameters()).device)
    resolve_loss(loss)  # an unknown loss fails here, before any scoring
    return model, X, y, groups


def _rounds(
    model,
    X,
    y,
    groups,
    scorer,
    *,
    method,
    loss,
    prune_ratio,
    scope,
    compensate,
    n_rounds,
    target_params,
    target_latency,
    between_rounds,
    random_state,
):
    """The orchestration half of :func:`prune`: score and remove in
    ``n_rounds`` rounds (or to a parameter or latency target) with
    ``scorer`` (None: no pruning). Returns the pruned model and the report."""
    loss_fn = resolve_loss(loss)
    report = PruningReport(method=method, params_before=count_parameters(model))
    report.loss_before = evaluate_loss(model, X, y, loss_fn)
    state = _RoundState(groups)
    pruned = model if scorer is not None else copy.deepcopy(model)
    if scorer is not None:
        plan = _Plan(model, groups, prune_ratio, scope, n_rounds, target_params)
        if target_latency is None and plan.removes_nothing():
            warnings.warn(
                f"prune_ratio={prune_ratio} removes no unit from unit groups "
                f"of sizes {plan.sizes} (scope={scope!r}): the count rounds "
                "down to zero, and every group keeps at least one unit. The "
                "network is returned unchanged.",
                UserWarning,
                # prune's caller, past torch.no_grad's, validated's and the
                # KV cache's wrappers
                stacklevel=6,
            )
        rng = np.random.default_rng(random_state)
        for r in range(n_rounds):
            start = time.perf_counter()
            with counting_fallbacks() as fallbacks:
                result = scorer.score(
                    pruned,
                    state.groups,
                    X,
                    y,
                    loss_fn,
                    rng,
                    n_remove=None if target_latency is not None else plan.counts(r),
                    warm_start=state.history,
                )
            report.fast_path_fallbacks += fallbacks[0]
            _check_scores(result.scores, state.groups, report.method)
            if target_latency is not None:
                removals = _latency_removals(
                    pruned, state.groups, result.scores, X, target_latency
                )
            else:
                removals = plan.removals(r, result.scores)
            report.time_scoring += time.perf_counter() - start
            start = time.perf_counter()
            pruned = _removed(pruned, state.groups, removals, compensate, X, result)
            report.time_removal += time.perf_counter() - start
            state.advance(result, removals)
            if between_rounds is not None and r < n_rounds - 1:
                pruned = _between_rounds(between_rounds, pruned)
    report.params_after = count_parameters(pruned)
    report.loss_after = evaluate_loss(pruned, X, y, loss_fn)
    report.n_rounds = n_rounds if scorer is not None else 0
    report.layers = state.layer_reports()
    if target_latency is not None and scorer is not None:
        report.latency_ratio = latency_ratio(model, pruned, X[:_LATENCY_ROWS])
    return pruned, report


def _removed(model, groups, removals, compensate, X, result):
    """``model`` without ``removals``: the network the scorer built on its
    way (``result.removed``) when it removed the same units the same way,
    else :func:`remove_units`."""
    if result.removed is not None and result.removed.matches(removals, compensate):
        return result.removed.network
    return remove_units(model, groups, removals, compensate, X)


class _Plan:
    """What each round removes: a count per layer/total, or a parameter target.

    Each round's share is computed when the round starts, so a plan costs
    the same memory for any ``n_rounds``.
    """

    def __init__(self, model, groups, prune_ratio, scope, n_rounds, target_params):
        self.sizes = [g.size for g in groups]
        self.prune_ratio, self.scope, self.n_rounds = prune_ratio, scope, n_rounds
        self.cost = param_cost(model, groups)
        self.param_target = None
        if target_params is not None:
            self.param_target = _param_target(target_params, self.cost(self.sizes))

    def counts(self, r):
        """Units this round removes (per group or total), for the bandits;
        ``None`` (half of the units) when a parameter target fixes no count."""
        if self.param_target is not None:
            return None
        return round_count(self.sizes, self.prune_ratio, self.scope, self.n_rounds, r)

    def removes_nothing(self):
        """Whether a positive ``prune_ratio`` rounds down to no unit at all."""
        if self.param_target is not None or self.prune_ratio == 0:
            return False
        counts = removal_counts(self.sizes, self.prune_ratio, self.scope)
        return np.sum(counts) == 0

    def removals(self, r, scores):
        if self.param_target is None:
            return removals_by_count(scores, self.counts(r))
        target = round_param_target(
            self.cost(self.sizes), self.param_target, self.n_rounds, r
        )
        return removals_for_params(scores, self.cost, target)


def _latency_removals(model, groups, scores, X, target):
    """Fewest units, in one score order over all layers, whose removal brings
    the multiply-accumulates per sample to ``target`` times the unpruned ones.

    Multiply-accumulates (:func:`mac_cost`) stand in for latency because
    they are deterministic: a decision on measured times changes from run
    to run with the machine's load, so the same seed would keep different
    units.
    """
    cost = mac_cost(model, groups, X[:1])
    allowed = target * cost([g.size for g in groups])
    smallest = cost([1] * len(groups))
    if smallest > allowed:
        raise ValueError(
            f"target_latency={target} is unreachable: with one unit left per "
            f"layer the network still costs {smallest / (allowed / target):.3g} "
            "of the unpruned multiply-accumulates per sample."
        )
    return removals_for_params(scores, cost, allowed)


class _RoundState:
    """Groups, original unit indices, scores, pulls and history across rounds."""

    def __init__(self, groups):
        self.groups = list(groups)
        self.original = [np.arange(g.size) for g in groups]
        self.scores = [np.zeros(g.size) for g in groups]
        self.pulls = [None] * len(groups)
        self.history = None
        self.removed = [np.array([], dtype=int) for _ in groups]

    @property
    def sizes(self):
        return [g.size for g in self.groups]

    def advance(self, result, removals):
        for g, (scores, removed) in enumerate(zip(result.scores, removals)):
            index = self.original[g]
            self.scores[g][index] = scores
            if result.pulls is not None and result.pulls[g] is not None:
                if self.pulls[g] is None:
                    self.pulls[g] = np.zeros(len(self.scores[g]), dtype=np.int64)
                self.pulls[g][index] += result.pulls[g]
            keep = np.setdiff1d(np.arange(len(index)), removed)
            self.removed[g] = np.sort(np.concatenate([self.removed[g], index[removed]]))
            self.original[g] = index[keep]
        self.history = _surviving_history(
            self.history, result.history, removals, self.sizes
        )
        self.groups = [g.resized(len(o)) for g, o in zip(self.groups, self.original)]

    def layer_reports(self):
        return [
            LayerReport(g.name, len(s), len(o), r, s, p)
            for g, o, r, s, p in zip(
                self.groups, self.original, self.removed, self.scores, self.pulls
            )
        ]


def _surviving_history(previous, new, removals, sizes):
    """Observations of the surviving units, re-indexed, earlier rounds first."""
    if new is None:
        return None
    history = []
    for g, removed in enumerate(removals):
        rounds = (previous[g] if previous is not None else []) + new[g]
        keep = np.setdiff1d(np.arange(sizes[g]), removed)
        position = np.full(sizes[g], -1)
        position[keep] = np.arange(len(keep))
        kept_rounds = []
        for units, rewards in rounds:
            mask = position[units] >= 0
            kept_rounds.append((position[units[mask]], rewards[mask]))
        history.append(kept_rounds)
    return history
