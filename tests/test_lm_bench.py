"""The lm suite's methods: the fluctuation baseline, OWL allocation, heads."""

import numpy as np
import pytest
import torch
from torch import nn

from skbandit.benchmarks.lm.methods import (
    LM_METHODS,
    FluctuationScorer,
    OWLAllocation,
    _allocate,
    consumer_statistics,
    owl_ratios,
)
from skbandit.benchmarks.lm.models import DecoderLM, head_groups, lm_groups, mlp_groups
from skbandit.pruning import MagnitudeScorer, find_unit_groups, prune

from .any_models import assert_report_equals_masked


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).double().eval()


def test_fluctuation_scores_by_hand():
    net, X = _net(), torch.randn(200, 5, dtype=torch.float64)
    groups = find_unit_groups(net)
    (scores,) = FluctuationScorer().score(net, groups, X, None, None, None).scores
    hidden = torch.relu(net[0](X))
    expected = -(hidden.var(0) * net[2].weight.pow(2).sum(0))
    np.testing.assert_allclose(scores, expected.detach().numpy(), rtol=1e-9)


def test_fluctuation_removes_constant_channels_exactly():
    """A channel that never fluctuates goes first, and the bias compensation
    (compensate="mean") removes it without changing any output."""
    net, X = _net(), torch.randn(100, 5, dtype=torch.float64)
    with torch.no_grad():
        net[0].weight[[1, 6]] = 0.0
        net[0].bias[[1, 6]] = torch.tensor([0.7, 1.3], dtype=torch.float64)
    small, report = prune(
        net, X, torch.zeros(100, dtype=torch.long), policy=FluctuationScorer(),
        prune_ratio=0.25, compensate="mean",
    )  # fmt: skip
    assert sorted(report.layers[0].removed.tolist()) == [1, 6]
    torch.testing.assert_close(small(X), net(X), atol=1e-12, rtol=0)


def test_fluctuation_on_decoder_and_statistics():
    torch.manual_seed(0)
    model = DecoderLM(13, 16, 2, 2, 24, 8, "llama").eval()
    X = torch.randint(0, 13, (70, 8))  # more than one chunk of rows
    groups = mlp_groups(model)
    (mean, var, squares), _ = consumer_statistics(model, groups, X)
    captured = []
    handle = model.blocks[0].mlp.down.register_forward_pre_hook(
        lambda m, a: captured.append(a[0].reshape(-1, 24).double())
    )
    with torch.no_grad():
        model(X)
    handle.remove()
    inputs = captured[0]
    torch.testing.assert_close(mean, inputs.mean(0))
    torch.testing.assert_close(var, inputs.var(0))
    torch.testing.assert_close(squares, inputs.pow(2).sum(0))
    pruned, _ = prune(
        model, X, None, policy=FluctuationScorer(), prune_ratio=0.5,
        loss="causal_lm", compensate="mean", groups=groups,
    )  # fmt: skip
    assert [g.size for g in mlp_groups(pruned)] == [12, 12]


def test_allocate_keeps_the_total():
    counts = _allocate([10, 10, 10], [0.2, 0.5, 0.8], 15)
    assert counts.sum() == 15 and counts.tolist() == [2, 5, 8]
    assert _allocate([4, 4], [1.0, 1.0], 6).tolist() == [3, 3]
    assert _allocate([10, 10, 10], [0.33, 0.33, 0.34], 10).sum() == 10


def test_owl_ratios_spare_the_outlier_layer():
    torch.manual_seed(0)
    model = DecoderLM(13, 16, 3, 2, 24, 8, "gpt2").eval()
    with torch.no_grad():  # a few huge weights in layer 1's consumer
        model.blocks[1].mlp.proj.weight[:, :3] *= 50
    X = torch.randint(0, 13, (32, 8))
    groups = mlp_groups(model)
    ratios = owl_ratios(model, groups, X, 0.4, lam=0.1)
    assert ratios[1] == pytest.approx(ratios.min())
    assert ratios.mean() == pytest.approx(0.4)
    assert ratios.max() - ratios.min() == pytest.approx(0.2)
    pruned, report = prune(
        model, X, None, policy=OWLAllocation(MagnitudeScorer(), lam=0.1),
        prune_ratio=0.4, scope="global", loss="causal_lm", compensate="none",
        groups=groups,
    )  # fmt: skip
    removed = [layer.units_before - layer.units_after for layer in report.layers]
    expected = _allocate([24] * 3, ratios, sum(removed))
    assert removed == expected.tolist()
    # Within each layer, the magnitude scorer's top units went.
    norms = model.blocks[0].mlp.fc.weight.norm(dim=1)
    top = torch.argsort(norms)[: removed[0]].sort().values
    assert report.layers[0].removed.tolist() == top.tolist()


def test_every_method_prunes_a_tiny_decoder():
    pytest.importorskip("torch_pruning")
    torch.manual_seed(0)
    model = DecoderLM(13, 16, 2, 2, 16, 8, "llama").eval()
    X = torch.randint(0, 13, (32, 8))
    for name, method in LM_METHODS.items():
        options = {"budget": 1, "batch_size": 8} if method.bandit else {}
        pruned, _ = prune(
            model, X, None, policy=method.scorer(), prune_ratio=0.35,
            loss="causal_lm", compensate=method.compensate, scope=method.scope,
            groups=mlp_groups(model), random_state=0, **options,
        )  # fmt: skip
        assert sum(g.size for g in mlp_groups(pruned)) < 32, name


def test_fluctuation_scores_heads_by_hand():
    """A head's score is the sum of its head_dim features' fluctuations."""
    torch.manual_seed(0)
    model = DecoderLM(13, 16, 1, 4, 24, 8, "gpt2").double().eval()
    X = torch.randint(0, 13, (40, 8))
    (group,) = head_groups(model)
    (scores,) = FluctuationScorer().score(model, [group], X, None, None, None).scores
    captured = []
    handle = model.blocks[0].attn.o.register_forward_pre_hook(
        lambda m, a: captured.append(a[0].reshape(-1, 16))
    )
    with torch.no_grad():
        model(X)
    handle.remove()
    per_feature = captured[0].var(0) * model.blocks[0].attn.o.weight.pow(2).sum(0)
    expected = -per_feature.view(4, 4).sum(1)
    np.testing.assert_allclose(scores, expected.detach().numpy(), rtol=1e-9)


@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_head_removal_equals_masking(style):
    torch.manual_seed(0)
    model = DecoderLM(19, 16, 2, 4, 24, 10, style).double().eval()
    X = torch.randint(0, 19, (32, 10))
    groups = lm_groups(model)
    assert [g.name for g in groups] == [
        "blocks.0.attn.q", "blocks.0.mlp.up" if style == "llama" else "blocks.0.mlp.fc",
        "blocks.1.attn.q", "blocks.1.mlp.up" if style == "llama" else "blocks.1.mlp.fc",
    ]  # fmt: skip
    pruned, report = prune(
        model, X, None, policy="random", prune_ratio=0.5, loss="causal_lm",
        compensate="none", groups=groups, random_state=0,
    )  # fmt: skip
    assert [g.size for g in head_groups(pruned)] == [2, 2]
    assert [a.n_heads for a in (b.attn for b in pruned.blocks)] == [2, 2]
    assert_report_equals_masked(model, pruned, groups, report, X)


@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_every_method_prunes_heads_and_channels(style):
    pytest.importorskip("torch_pruning")
    torch.manual_seed(0)
    model = DecoderLM(13, 16, 2, 4, 16, 8, style).eval()
    X = torch.randint(0, 13, (32, 8))
    for name, method in LM_METHODS.items():
        options = {"budget": 1, "batch_size": 8} if method.bandit else {}
        pruned, _ = prune(
            model, X, None, policy=method.scorer(), prune_ratio=0.5,
            loss="causal_lm", compensate=method.compensate, scope=method.scope,
            groups=lm_groups(model), random_state=0, **options,
        )  # fmt: skip
        assert [g.size for g in head_groups(pruned)] == [2, 2], name
        assert [g.size for g in mlp_groups(pruned)] == [8, 8], name


def test_torch_pruning_scores_heads_from_the_coupled_group():
    """Torch-Pruning roots the q/k/v/o group elsewhere; the q rows'
    importances come through the group's index map, and a head's score is
    the sum over its rows."""
    pytest.importorskip("torch_pruning")
    from skbandit.benchmarks._torch_pruning import (
        TorchPruningMagnitude,
        _torch_pruning_rows,
    )

    torch.manual_seed(0)
    model = DecoderLM(13, 16, 1, 4, 16, 8, "gpt2").eval()
    X = torch.randint(0, 13, (8, 8))
    (group,) = head_groups(model)
    (scores,) = (
        TorchPruningMagnitude().score(model, [group], X, None, None, None).scores
    )
    import torch_pruning as tp

    (rows,) = _torch_pruning_rows(
        model, [group], X, tp.importance.GroupMagnitudeImportance(p=2)
    )
    assert rows.shape == (16,) and (rows > 0).all()
    np.testing.assert_allclose(scores, -rows.reshape(4, 4).sum(1))


def test_owl_does_not_trade_heads_for_channels():
    """Each kind of unit (heads, channels) gets its share of the total; OWL
    spreads it over that kind's groups (MLP-only models: one kind, as
    before)."""
    torch.manual_seed(0)
    model = DecoderLM(13, 16, 3, 4, 24, 8, "llama").eval()
    X = torch.randint(0, 13, (32, 8))
    groups = lm_groups(model)
    for ratio in (0.2, 0.35, 0.5):
        _, report = prune(
            model, X, None, policy=OWLAllocation(MagnitudeScorer()),
            prune_ratio=ratio, scope="global", loss="causal_lm",
            compensate="none", groups=groups,
        )  # fmt: skip
        removed = [layer.units_before - layer.units_after for layer in report.layers]
        heads, channels = sum(removed[0::2]), sum(removed[1::2])
        total = int(ratio * (12 + 72) + 1e-9)
        assert heads + channels == total
        assert abs(heads - ratio * 12) <= 1 and abs(channels - ratio * 72) <= 1
    # A share above a kind's capacity goes to the other kind.
    assert _allocate([12, 72], [0.9, 0.9], 76, most=[9, 69]).tolist() == [9, 67]


def test_paired_table_counts_wins_losses_ties_and_holm_adjusts():
    import pandas as pd

    from skbandit.benchmarks.lm.suite import _paired_table

    rows = []
    for dataset in ("a", "b"):
        for seed in range(3):
            for ratio, others in ((0.35, 8.0), (0.5, 6.0)):
                rows.append((dataset, seed, ratio, "obs", 7.0))
                # at 0.5 magnitude wins on model b and ties on seed 0 of a
                theirs = (
                    7.0
                    if (ratio == 0.5 and dataset == "a" and seed == 0)
                    else (others if dataset == "a" or ratio == 0.35 else 6.5)
                )
                rows.append((dataset, seed, ratio, "magnitude", theirs))
    frame = pd.DataFrame(
        rows, columns=["dataset", "seed", "ratio", "name", "ppl_pruned"]
    )
    lines = _paired_table(frame, ["none", "obs", "magnitude"])
    (row,) = [line for line in lines if line.startswith("| magnitude")]
    # 0.35: 6 wins, sign test p = 2 / 64 = 0.03125; 0.5: 0 wins, 5 losses,
    # 1 tie, p = 2 / 32 = 0.0625; Holm: 0.0625 for both
    assert row == "| magnitude | 6/0/0, p = 0.0625 | 0/5/1, p = 0.0625 |"
