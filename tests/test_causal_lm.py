"""loss="causal_lm": per-token loss of decoder LMs, end to end in prune()."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skbandit.pruning import prune, resolve_loss, sample_metric
from skbandit.pruning._inputs import InputAdapter, adapt_inputs, causal_lm_labels

from .any_models import assert_report_equals_masked


class CausalBlock(nn.Module):
    """Pre-norm block: causal nn.MultiheadAttention, SwiGLU or GELU MLP."""

    def __init__(self, d, heads, d_ff, swiglu):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.swiglu = swiglu
        if swiglu:
            self.gate = nn.Linear(d, d_ff, bias=False)
            self.up = nn.Linear(d, d_ff, bias=False)
        else:
            self.up = nn.Linear(d, d_ff)
        self.down = nn.Linear(d_ff, d)

    def forward(self, x):
        seq = x.shape[1]
        causal = torch.ones(seq, seq, dtype=torch.bool, device=x.device).triu(1)
        h = self.norm1(x)
        x = x + self.attn(h, h, h, attn_mask=causal, need_weights=False)[0]
        h = self.norm2(x)
        hidden = (
            F.silu(self.gate(h)) * self.up(h) if self.swiglu else F.gelu(self.up(h))
        )
        return x + self.down(hidden)


class TinyDecoder(nn.Module):
    def __init__(
        self, vocab=17, d=16, heads=2, d_ff=24, layers=2, max_len=10, swiglu=True
    ):
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(
            CausalBlock(d, heads, d_ff, swiglu) for _ in range(layers)
        )
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        x = self.embed(ids) + self.pos(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def _reference(logits, labels):
    """Hugging Face's causal LM loss per sequence, written out."""
    shifted, target = logits[:, :-1], labels[:, 1:]
    tokens = F.cross_entropy(
        shifted.reshape(-1, shifted.shape[-1]),
        target.reshape(-1),
        ignore_index=-100,
        reduction="none",
    ).view(target.shape)
    counted = (target != -100).sum(1).clamp(min=1)
    return tokens.sum(1) / counted


def test_causal_lm_loss_shifts_and_ignores():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 9)
    labels = torch.randint(0, 9, (4, 6))
    labels[1, 3:] = -100
    labels[2, 1:] = -100  # nothing counted: loss 0, not NaN
    loss = resolve_loss("causal_lm")(logits, labels)
    assert loss.shape == (4,)
    torch.testing.assert_close(loss, _reference(logits, labels))
    assert loss[2] == 0
    # Position t predicts label t + 1: the first label and the last logits
    # never count.
    changed = labels.clone()
    changed[:, 0] = (changed[:, 0] + 1) % 9
    torch.testing.assert_close(resolve_loss("causal_lm")(logits, changed), loss)


def test_causal_lm_metrics():
    torch.manual_seed(0)
    logits, labels = torch.randn(3, 5, 7), torch.randint(0, 7, (3, 5))
    fn = resolve_loss("causal_lm")
    accuracy = sample_metric("accuracy", fn)(logits, labels)
    expected = (logits[:, :-1].argmax(-1) == labels[:, 1:]).float().mean(1)
    torch.testing.assert_close(accuracy, expected)
    fidelity = sample_metric("fidelity", fn)
    assert fidelity(logits, logits).abs().max() < 1e-6
    assert (fidelity(logits + torch.randn_like(logits), logits) > 0).all()
    assert fidelity(logits, logits).shape == (3,)


def _tiny_gpt2(**config):
    """A seeded GPT-2 LM of 23 tokens, 12 positions and 16 features."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        vocab_size=23,
        n_positions=12,
        n_embd=16,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        **config,
    )
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config).eval()


def test_hf_loss_matches():
    model = _tiny_gpt2(n_layer=1)
    ids = torch.randint(0, 23, (5, 12))
    labels = ids.clone()
    labels[:, -4:] = -100
    with torch.no_grad():
        out = model(ids, labels=labels)
    # HF averages over all counted tokens; ours per sequence: equal counts.
    mine = resolve_loss("causal_lm")(out.logits, labels).mean()
    torch.testing.assert_close(mine, out.loss)


def test_labels_from_inputs():
    ids = torch.tensor([[3, 4, 5], [6, 7, 0]])
    assert torch.equal(causal_lm_labels(ids), ids)
    labels = causal_lm_labels(
        {"input_ids": ids, "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]])}
    )
    assert labels.tolist() == [[3, 4, 5], [6, 7, -100]]
    with pytest.raises(ValueError, match="input_ids"):
        causal_lm_labels({"x": ids})
    with pytest.raises(ValueError, match="integer token ids"):
        causal_lm_labels(torch.randn(2, 3))


@pytest.mark.parametrize("swiglu", [True, False])
def test_prune_hand_written_decoder(swiglu):
    torch.manual_seed(0)
    model = TinyDecoder(swiglu=swiglu).eval()
    X = torch.randint(0, 17, (48, 10))
    pruned, report = prune(
        model,
        X,
        None,
        policy="magnitude",
        prune_ratio=0.5,
        loss="causal_lm",
        compensate="none",
    )
    assert report.params_after < report.params_before
    mlp = [layer for layer in report.layers if layer.name.endswith(".up")]
    assert len(mlp) == 2 and all(layer.units_after == 12 for layer in mlp)
    assert pruned.blocks[0].up.out_features == 12
    expected = resolve_loss("causal_lm")(model(X), X).mean().item()
    assert report.loss_before == pytest.approx(expected, rel=1e-5)
    assert torch.isfinite(torch.tensor(report.loss_after))


def test_pruned_equals_masked_decoder():
    """Removing MLP channels of a decoder equals masking them (float64)."""
    from skbandit.benchmarks.lm.models import DecoderLM, mlp_groups

    torch.manual_seed(0)
    for style in ("llama", "gpt2"):
        model = DecoderLM(19, 16, 2, 2, 24, 10, style).double().eval()
        X = torch.randint(0, 19, (32, 10))
        groups = mlp_groups(model)
        pruned, report = prune(
            model,
            X,
            None,
            policy="random",
            prune_ratio=0.5,
            loss="causal_lm",
            compensate="none",
            groups=groups,
            random_state=0,
        )
        assert_report_equals_masked(model, pruned, groups, report, X)


def test_prune_bandit_and_obs_on_decoder():
    from skbandit.benchmarks.lm.models import DecoderLM, mlp_groups

    torch.manual_seed(0)
    model = DecoderLM(19, 16, 2, 2, 16, 8, "llama").eval()
    X = torch.randint(0, 19, (32, 8))
    for policy in ("obs", "ucb1"):
        pruned, report = prune(
            model,
            X,
            None,
            policy=policy,
            prune_ratio=0.25,
            loss="causal_lm",
            groups=mlp_groups(model),
            budget=1,
            batch_size=16,
            random_state=0,
        )
        assert [g.size for g in mlp_groups(pruned)] == [12, 12]
        assert report.loss_after < report.loss_before * 1.5


def test_causal_lm_data_errors():
    model = TinyDecoder().eval()
    X = torch.randint(0, 17, (8, 10))
    with pytest.raises(ValueError, match=r"labels of shape \(n_samples, 10\)"):
        prune(model, X, X[:, :5], loss="causal_lm")
    bad = X.clone()
    bad[0, 3] = 17
    with pytest.raises(ValueError, match="outside"):
        prune(model, X, bad, loss="causal_lm")
    with pytest.raises(ValueError, match="logits"):
        prune(
            nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)),
            torch.randn(8, 4),
            torch.zeros(8, 4),
            loss="causal_lm",
        )


def _tiny_llama():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=29,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def test_hf_llama_mlp_channels():
    model = _tiny_llama()
    ids = torch.randint(0, 29, (32, 12))
    mask = torch.ones_like(ids)
    mask[:4, -3:] = 0
    wrapped, _ = adapt_inputs(model, {"input_ids": ids, "attention_mask": mask})
    assert isinstance(wrapped, InputAdapter)
    assert wrapped.options == {"use_cache": False}  # no KV cache while scoring
    pruned, report = prune(
        model,
        {"input_ids": ids, "attention_mask": mask},
        None,
        policy="magnitude",
        prune_ratio=0.5,
        loss="causal_lm",
        random_state=0,
    )
    assert pruned is not model and type(pruned).__name__ == "LlamaForCausalLM"
    assert [layer.mlp.up_proj.out_features for layer in pruned.model.layers] == [16, 16]
    with torch.no_grad():
        logits = pruned(input_ids=ids, attention_mask=mask).logits
    labels = causal_lm_labels({"input_ids": ids, "attention_mask": mask})
    loss = resolve_loss("causal_lm")(logits, labels).mean().item()
    assert loss == pytest.approx(report.loss_after, rel=1e-4)


def test_hf_gpt2_lm_head():
    model = _tiny_gpt2(n_layer=2, n_inner=32)
    ids = torch.randint(0, 23, (32, 12))
    pruned, report = prune(
        model, ids, None, policy="magnitude", prune_ratio=0.5, loss="causal_lm"
    )
    assert report.params_after < report.params_before
    assert torch.isfinite(torch.tensor(report.loss_after))
