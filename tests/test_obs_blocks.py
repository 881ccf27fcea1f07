"""Block (structured) OBS: units that span several columns of their consumer.

An attention head is ``head_dim`` input columns of the output projection
(``head_dim`` times the query heads of one key/value head under grouped-query
attention). Its removal cost is the block form of the rank-1 one,
``tr(beta_Q^T ([G^-1]_QQ)^-1 beta_Q)``, checked here against refitting
without the columns by brute force, and ``policy="obs"`` prunes heads of an
``nn.MultiheadAttention``, a Hugging Face GPT-2 (``Conv1D`` consumer) and a
Hugging Face Llama with grouped-query attention.
"""

import numpy as np
import pytest
import torch
from torch import nn

from skbandit.pruning import (
    Refit,
    consumer_refits,
    discover_groups,
    greedy_obs_order,
    masked,
    prune,
    refitted,
    remove_units,
)
from skbandit.pruning._attention import convert_multihead_attention
from skbandit.pruning._inputs import adapt_inputs, model_output
from skbandit.pruning._obs import _greedy_block_order, refittable

DTYPE = torch.float64


def _problem(n=200, units=5, width=3, outputs=4, ridge=0.3, seed=0):
    """``A = [H 1]``, targets ``Z`` and the ridge penalty (none on the bias)."""
    generator = torch.Generator().manual_seed(seed)
    p = units * width
    mixing = torch.randn(p, p, generator=generator, dtype=DTYPE)
    H = torch.randn(n, p, generator=generator, dtype=DTYPE) @ mixing
    Z = H @ torch.randn(p, outputs, generator=generator, dtype=DTYPE)
    Z = Z + torch.randn(n, outputs, generator=generator, dtype=DTYPE)
    A = torch.cat([H, torch.ones(n, 1, dtype=DTYPE)], 1)
    penalty = torch.full((p + 1,), ridge * n, dtype=DTYPE)
    penalty[-1] = 0.0
    return A, Z, torch.diag(penalty)


def _objective(A, Z, penalty, kept):
    """Minimum of ``||A b - Z||^2 + b^T P b`` over coefficients on ``kept``."""
    a, p = A[:, kept], penalty[kept][:, kept]
    coef = torch.linalg.solve(a.T @ a + p, a.T @ Z)
    return float((a @ coef - Z).square().sum() + (coef * (p @ coef)).sum())


def _kept(n_columns, removed_columns):
    return [c for c in range(n_columns) if c not in set(removed_columns)]


def _columns(units, width):
    return [u * width + i for u in units for i in range(width)]


@pytest.mark.parametrize("width", [1, 3])
def test_block_cost_is_the_brute_force_increase(width):
    A, Z, penalty = _problem(units=5, width=width)
    refit = Refit.from_gram(A.T @ A + penalty, A.T @ Z, width=width)
    everything = _objective(A, Z, penalty, list(range(A.shape[1])))
    expected = [
        _objective(A, Z, penalty, _kept(A.shape[1], _columns([u], width))) - everything
        for u in range(5)
    ]
    np.testing.assert_allclose(
        refit.removal_costs().numpy(), expected, rtol=1e-8, atol=1e-8
    )


def test_block_cost_of_one_column_is_the_rank_one_cost():
    """Width 1 through the block code gives the rank-1 formula."""
    A, Z, penalty = _problem(units=6, width=1)
    refit = Refit.from_gram(A.T @ A + penalty, A.T @ Z)
    block = _obs_block_costs(refit)
    torch.testing.assert_close(block, refit.removal_costs(), rtol=1e-12, atol=0)
    rank1, costs = greedy_obs_order(refit)
    blocked, block_costs = _greedy_block_order(refit, None)
    np.testing.assert_array_equal(blocked, rank1)
    np.testing.assert_allclose(block_costs, costs, rtol=1e-10)


def _obs_block_costs(refit):
    from skbandit.pruning._obs import _block_costs

    return _block_costs(refit.gram_inv, refit.coef, refit.width)


def test_greedy_block_order_is_the_brute_force_greedy():
    width, units = 3, 5
    A, Z, penalty = _problem(units=units, width=width, seed=3)
    refit = Refit.from_gram(A.T @ A + penalty, A.T @ Z, width=width)
    order, costs = greedy_obs_order(refit)
    removed, expected_order, expected_costs = [], [], []
    n_columns = A.shape[1]
    for _ in range(units - 1):
        now = _objective(A, Z, penalty, _kept(n_columns, _columns(removed, width)))
        candidates = {
            u: _objective(
                A, Z, penalty, _kept(n_columns, _columns(removed + [u], width))
            )
            - now
            for u in range(units)
            if u not in removed
        }
        best = min(candidates, key=candidates.get)
        removed.append(best)
        expected_order.append(best)
        expected_costs.append(candidates[best])
    np.testing.assert_array_equal(order, expected_order)
    np.testing.assert_allclose(costs, expected_costs, rtol=1e-8, atol=1e-8)


def test_block_without_is_the_direct_refit():
    width = 3
    A, Z, penalty = _problem(units=4, width=width, seed=5)
    refit = Refit.from_gram(A.T @ A + penalty, A.T @ Z, width=width)
    kept = _kept(A.shape[1], _columns([0, 2], width))
    a, p = A[:, kept], penalty[kept][:, kept]
    direct = torch.linalg.solve(a.T @ a + p, a.T @ Z)
    torch.testing.assert_close(refit.without([0, 2]).coef[kept], direct)
    assert refit.without([0, 2]).coef[_columns([0, 2], width)].abs().max() == 0


def test_rank_one_terms_refuse_blocks():
    A, Z, penalty = _problem(units=2, width=2)
    refit = Refit.from_gram(A.T @ A + penalty, A.T @ Z, width=2)
    with pytest.raises(ValueError, match="one column per unit"):
        refit.direction(A[:, :-1], [0])
    with pytest.raises(ValueError, match="whole units"):
        Refit.from_gram(A.T @ A, A.T @ Z, width=3)


# -- prune(policy="obs") on attention ------------------------------------------


class _MHAClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, ids):
        x = self.embed(ids)
        return self.head(self.attn(x, x, x, need_weights=False)[0].mean(1))


def _mha():
    torch.manual_seed(0)
    X = torch.randint(0, 20, (48, 6))
    return _MHAClassifier().to(DTYPE).eval(), X, torch.randint(0, 3, (48,)), None


def _gpt2():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        vocab_size=23, n_positions=12, n_embd=16, n_head=4, n_layer=2, n_inner=24,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).to(DTYPE).eval()
    return model, torch.randint(0, 23, (24, 12)), None, "causal_lm"


def _llama_gqa():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=29, hidden_size=32, intermediate_size=24, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).to(DTYPE).eval()
    return model, torch.randint(0, 29, (24, 12)), None, "causal_lm"


MODELS = {"mha": _mha, "gpt2": _gpt2, "llama-gqa": _llama_gqa}


def _prepared(model, X):
    adapted, packed = adapt_inputs(convert_multihead_attention(model), X)
    return adapted, packed, discover_groups(adapted, packed)


def _output(model, X):
    with torch.no_grad():
        return model_output(model(X))


@pytest.mark.parametrize("name", list(MODELS))
def test_obs_prunes_heads_and_removal_equals_masking(name):
    model, X, y, loss = MODELS[name]()
    options = {"loss": loss} if loss else {}
    adapted, packed, groups = _prepared(model, X)
    heads = [g for g in groups if g.unit_width > 1]
    assert heads and all(refittable(adapted, g) for g in groups)
    small, report = prune(
        model, X, y, policy="obs", prune_ratio=0.5, compensate="none", **options
    )
    assert [g.name for g in groups] == [layer.name for layer in report.layers]
    masks = {}
    for group, layer in zip(groups, report.layers, strict=True):
        assert layer.units_after == group.size - group.size // 2
        keep = torch.ones(group.size, dtype=DTYPE)
        keep[layer.removed] = 0
        masks[group] = keep
    with torch.no_grad(), masked(adapted, masks):
        expected = model_output(adapted(packed))
    torch.testing.assert_close(_output(small, X), expected, atol=1e-8, rtol=1e-8)
    # With the refit: the heads go too, and the loss stays finite.
    small, report = prune(
        model, X, y, policy="obs", prune_ratio=0.5, compensate="lstsq", **options
    )
    removed = {layer.name: layer for layer in report.layers}
    assert all(removed[g.name].units_after == g.size - g.size // 2 for g in heads)
    assert np.isfinite(report.loss_after)


@pytest.mark.parametrize("name", list(MODELS))
def test_head_refit_removal_equals_the_refitted_model(name):
    """``compensate="lstsq"`` removal of the greedy's heads equals the
    original model with the consumer's refit (:func:`refitted`), and the
    greedy's first head costs least of all."""
    model, X, _, _ = MODELS[name]()
    adapted, packed, groups = _prepared(model, X)
    head = next(g for g in groups if g.unit_width > 1)
    (refit,) = consumer_refits(adapted, [head], packed, blocks=True)
    assert refit.width == head.unit_width
    order, costs = greedy_obs_order(refit)
    assert costs[0] == pytest.approx(float(refit.removal_costs().min()))
    units = order[: head.size // 2]
    removals = [units if g is head else [] for g in groups]
    small = remove_units(adapted, groups, removals, "lstsq", packed)
    with torch.no_grad(), refitted(adapted, {head: refit}, {head: units}):
        expected = model_output(adapted(packed))
    torch.testing.assert_close(
        model_output(small(packed)), expected, atol=1e-8, rtol=1e-8
    )


def test_bandit_pulls_heads_with_masks_not_block_refits():
    """The bandit's compensated pulls are rank-1 terms: by default
    ``consumer_refits`` (which the bandit calls) refits one-column units
    only."""
    model, X, _, _ = _mha()
    adapted, packed, groups = _prepared(model, X)
    (everything,) = consumer_refits(adapted, groups, packed, blocks=True)
    (rank_one,) = consumer_refits(adapted, groups, packed)
    assert everything.width == 4 and rank_one is None
