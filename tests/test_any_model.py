"""prune() on architectures it was never written for, with no declared groups.

Each model of ``tests/any_models.py`` (ResNet, MobileNetV2, ViT,
``nn.TransformerEncoder`` over token ids, a residual MLP with LayerNorm, a
tiny BERT) is pruned by one ``prune(model, X, y, prune_ratio=0.5)`` call,
then checked: parameters drop, the output shape is unchanged, and the pruned
model computes exactly what the original computes with the removed units
masked (float64).
"""

import dataclasses
import functools

import pytest
import torch
from torch import nn

from skbandit.pruning import (
    GraphGroup,
    MultiheadSelfAttention,
    convert_multihead_attention,
    count_parameters,
    discover_groups,
    evaluate_arms,
    evaluate_arms_naive,
    find_graph_groups,
    masked,
    prune,
    remove_units,
    resolve_loss,
    sample_metric,
    unit_means,
)
from skbandit.pruning._inputs import adapt_inputs, model_output

from .any_models import ARCHITECTURES, residual_mlp

DTYPE = torch.float64


def _transformers_available():
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _architectures(slow=()):
    """Every architecture; those in ``slow`` carry the ``slow`` marker."""
    needs_transformers = pytest.mark.skipif(
        not _transformers_available(), reason="transformers not installed"
    )
    return [
        pytest.param(
            name,
            marks=([needs_transformers] if name == "bert" else [])
            + ([pytest.mark.slow] if name in slow else []),
        )
        for name in ARCHITECTURES
    ]


#: Architectures whose masked-equality check takes seconds each (tracing a
#: ResNet, MobileNetV2, a transformer or BERT twice); the default test run
#: keeps ViT and the residual MLP, and every architecture still runs
#: ``prune`` by default in the other tests below.
SLOW_EQUALITY = ("resnet", "mobilenet_v2", "transformer_encoder", "bert")


def build(name, n=8):
    """``(model, X, y)`` in float64, eval mode, seeded."""
    torch.manual_seed(0)
    model, X, y = ARCHITECTURES[name](n)
    model = model.to(DTYPE).eval()
    if torch.is_tensor(X) and X.is_floating_point():
        X = X.to(DTYPE)
    return model, X, y


@functools.lru_cache
def prepared(name, n=8):
    """``(model, X, y, groups)`` as prune sees them: attention converted,
    dict inputs packed, groups discovered (cached: discovery traces)."""
    model, X, y = build(name, n)
    model, X = adapt_inputs(convert_multihead_attention(model), X)
    return model, X, y, discover_groups(model, X)


def predict(model, X):
    """The model's prediction on raw (dict or tensor) inputs."""
    with torch.no_grad():
        out = model(**X) if isinstance(X, dict) else model(X)
    return model_output(out)


def _metric():
    return sample_metric("loss", resolve_loss("cross_entropy"))


@pytest.mark.parametrize("name", _architectures(slow=SLOW_EQUALITY))
def test_prune_any_model_equals_masked(name):
    model, X, y = build(name)
    before = predict(model, X)
    small, report = prune(
        model, X, y, prune_ratio=0.5, budget=1, compensate="none", random_state=0
    )
    assert isinstance(small, type(model))
    assert report.layers, "no groups found"
    assert count_parameters(small) < count_parameters(model)
    assert report.params_after == count_parameters(small)
    after = predict(small, X)
    assert after.shape == before.shape
    # The same groups, on the model as prune saw it (wrapped for dict inputs).
    adapted, packed, _, groups = prepared(name)
    assert [g.name for g in groups] == [layer.name for layer in report.layers]
    masks = {}
    for group, layer in zip(groups, report.layers):
        assert layer.units_after == group.size - group.size // 2
        keep = torch.ones(group.size, dtype=DTYPE)
        keep[layer.removed] = 0
        masks[group] = keep
    with torch.no_grad(), masked(adapted, masks):
        expected = adapted(packed)
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=1e-5)


def _group_names(name):
    return [(g.name, g.size) for g in prepared(name)[3]]


def test_resnet_groups_couple_the_residual_stream():
    names = _group_names("resnet")
    # Each stage's residual stream is one group (stem or downsample as root,
    # every block writing into it), plus each block's inner channels.
    assert ("conv1", 8) in names and ("layers.1.0.downsample.0", 16) in names
    assert ("layers.0.0.conv1", 8) in names and ("layers.1.1.conv1", 16) in names
    assert len(names) == 6  # fc, the output layer, is never a group


def test_mobilenet_groups_carry_depthwise_channels():
    groups = {g.name: g for g in prepared("mobilenet_v2")[3]}
    expand = groups["features.1.conv.3"]  # depthwise root, 16 hidden channels
    assert set(expand.producers) >= {"features.1.conv.0", "features.1.conv.3"}
    assert expand.consumers == ("features.1.conv.6",)


def test_transformers_keep_the_residual_stream_and_prune_heads():
    # LayerNorm, embeddings and attention mix the units of the residual
    # stream: the attention heads (fused qkv) and the feed-forward hidden
    # units are the groups, found from the blocks' structure.
    assert _group_names("vit") == [
        ("blocks.0.attn.qkv", 4),
        ("blocks.0.mlp.fc1", 32),
        ("blocks.1.attn.qkv", 4),
        ("blocks.1.mlp.fc1", 32),
    ]
    assert _group_names("residual_mlp") == [
        ("head.0", 16),
        ("ups.1", 16),
        ("ups.0", 16),
    ]


@pytest.mark.skipif(not _transformers_available(), reason="transformers not installed")
def test_bert_heads_are_groups_not_query_key_dimensions():
    groups = dict(_group_names("bert"))
    assert groups["bert.encoder.layer.0.intermediate.dense"] == 32
    # Query/key dimensions one by one are not units; whole heads are.
    attention = {n: s for n, s in groups.items() if "attention" in n}
    assert attention == {
        f"bert.encoder.layer.{i}.attention.self.query": 4 for i in (0, 1)
    }


def test_token_ids_stay_integer():
    model, X, y = build("transformer_encoder")
    assert X.dtype == torch.long
    small, report = prune(model, X, y, policy="magnitude", prune_ratio=0.5)
    assert small.encoder.layers[0].linear1.out_features == 16


@pytest.mark.parametrize("name", _architectures())
@pytest.mark.parametrize("with_fill", [False, True])
def test_replicated_pulls_equal_naive(name, with_fill):
    model, X, y, groups = prepared(name)
    X, y = X[:5], y[:5]
    for group in [g for g in groups if isinstance(g, GraphGroup)]:
        # A few arms, one repeated (each arm costs a naive forward pass).
        arms = [0, group.size - 1, 1, 0]
        fill = torch.randn(group.size, dtype=DTYPE) if with_fill else None
        fast = evaluate_arms(model, group, arms, X, y, _metric(), fill)
        naive = evaluate_arms_naive(model, group, arms, X, y, _metric(), fill)
        torch.testing.assert_close(fast, naive, atol=1e-5, rtol=0)


def test_replicated_pulls_chunk(monkeypatch):
    from skbandit.pruning import _graph

    model, X, y, (group, *_) = prepared("resnet")
    whole = evaluate_arms(model, group, range(group.size), X, y, _metric())
    monkeypatch.setattr(_graph, "MAX_ROWS", 10)  # two arms per forward pass
    chunked = evaluate_arms(model, group, range(group.size), X, y, _metric())
    torch.testing.assert_close(chunked, whole, atol=1e-12, rtol=0)


def test_mean_compensation_equals_mean_fill():
    model, X, _ = build("residual_mlp", n=32)
    groups = discover_groups(model, X)
    removals = [[0, 3, 5], [1, 2], [4, 7, 8, 9]]
    pruned = remove_units(model, groups, removals, compensate="mean", X=X)
    # Group by group, each seeing the earlier ones removed, as remove_units.
    current = model
    for group, removed in zip(groups, removals):
        keep = torch.ones(group.size, dtype=DTYPE)
        keep[removed] = 0
        (means,) = unit_means(current, [group], X)
        with torch.no_grad(), masked(current, {group: keep}, {group: means}):
            expected = current(X)
        current = remove_units(current, [group], [removed], compensate="mean", X=X)
        torch.testing.assert_close(current(X), expected, atol=1e-10, rtol=0)
    torch.testing.assert_close(pruned(X), current(X), atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", ["residual_mlp", "resnet"])
def test_lstsq_refits_graph_consumers(name):
    model, X, _ = build(name, n=32)
    groups = discover_groups(model, X)
    removals = [list(range(0, g.size, 2)) for g in groups]
    full = model(X)
    plain = remove_units(model, groups, removals)
    refit = remove_units(model, groups, removals, compensate="lstsq", X=X)
    assert count_parameters(refit) <= count_parameters(plain) + sum(
        m.weight.shape[0] for m in refit.modules() if isinstance(m, nn.Conv2d)
    )  # at most a bias per refitted convolution
    assert (refit(X) - full).abs().mean() < (plain(X) - full).abs().mean()


class ReflectConsumer(nn.Module):
    """A convolution read by a convolution with reflection padding."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.b(torch.relu(self.a(x))).mean((2, 3)))


def test_lstsq_on_a_consumer_it_cannot_refit_is_clear():
    torch.manual_seed(0)
    model = ReflectConsumer().to(DTYPE).eval()
    X = torch.randn(6, 2, 5, 5, dtype=DTYPE)
    (group,) = [g for g in find_graph_groups(model, X[:4]) if g.name == "a"]
    assert group.consumers == ("b",)
    with pytest.raises(ValueError, match="compensate='lstsq' refits Linear"):
        remove_units(model, [group], [[0]], compensate="lstsq", X=X)


def test_lstsq_on_a_layer_that_reads_its_own_units_is_clear():
    # A Linear applied twice (tied weights) both produces and consumes the
    # units of its group; the refit of its input columns cannot reproduce
    # outputs it no longer has ("shape '[16, 16]' is invalid ...").
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.o = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 2)

        def forward(self, x):
            h = torch.relu(self.b(torch.relu(self.a(x))))
            return self.o(torch.relu(self.b(h)))

    torch.manual_seed(0)
    model = Tied().eval()
    X, y = torch.randn(32, 6), torch.randint(0, 2, (32,))
    with pytest.raises(ValueError, match="'b' reads the units it produces"):
        prune(model, X, y, compensate="lstsq", random_state=0)
    small, report = prune(model, X, y, compensate="mean", random_state=0)
    assert small.b.weight.shape == (4, 4)


def test_tuple_inputs_and_outputs():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 8)
            self.b = nn.Linear(8, 2)

        def forward(self, x, shift):
            h = self.b(torch.relu(self.a(x) + shift[:, :1]))
            return h, h.detach()

    torch.manual_seed(0)
    model = TwoInputs().eval()
    X = (torch.randn(12, 3), torch.randn(12, 1))
    small, report = prune(model, X, torch.randint(0, 2, (12,)), policy="magnitude")
    assert small.a.out_features == 4 and small.b.in_features == 4
    assert small(*X)[0].shape == (12, 2)


@pytest.mark.parametrize("wrap", ["tuple", "dict"])
def test_one_input_tuple_or_dict_output_traces_and_equals_tensor_output(wrap):
    # One tensor in, a tuple or dict out: torch.fx traces the adapter, and
    # model_output must stop at the traced logits (a Proxy, whose every
    # attribute is another Proxy) instead of looping until memory runs out.
    class Net(nn.Module):
        def __init__(self, wrap):
            super().__init__()
            self.wrap = wrap
            self.a, self.b = nn.Linear(5, 8), nn.Linear(8, 3)

        def forward(self, x):
            out = self.b(torch.relu(self.a(x)))
            if self.wrap == "tuple":
                return out, x
            if self.wrap == "dict":
                return {"logits": out, "aux": x}
            return out

    torch.manual_seed(0)
    plain = Net(None).eval()
    wrapped = Net(wrap).eval()
    wrapped.load_state_dict(plain.state_dict())
    X, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    small, report = prune(wrapped, X, y, random_state=0)
    expected, expected_report = prune(plain, X, y, random_state=0)
    assert [r.removed.tolist() for r in report.layers] == [
        r.removed.tolist() for r in expected_report.layers
    ]
    assert torch.allclose(model_output(small(X)), expected(X))


def test_residual_mlp_graph_versus_sequential_rules():
    # The old rules saw only the head's Sequential; the graph sees the
    # residual blocks' hidden units too.
    model, X, y = residual_mlp()
    _, report = prune(model, X, y, policy="magnitude", prune_ratio=0.5)
    assert [layer.name for layer in report.layers] == ["head.0", "ups.1", "ups.0"]


def test_multihead_attention_heads_are_pruned():
    model, X, y = build("transformer_encoder")
    small, report = prune(model, X, y, policy="magnitude", prune_ratio=0.5)
    heads = [layer for layer in report.layers if layer.name.endswith("self_attn.qkv")]
    assert [(h.units_before, h.units_after) for h in heads] == [(4, 2), (4, 2)]
    attention = small.encoder.layers[0].self_attn
    assert isinstance(attention, MultiheadSelfAttention)
    assert attention.num_heads == 2 and attention.out.in_features == 8
    assert isinstance(model.encoder.layers[0].self_attn, nn.MultiheadAttention)


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_self_attention_equals_multihead_attention(batch_first):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first).to(DTYPE).eval()
    block = MultiheadSelfAttention.from_multihead_attention(mha).eval()
    x = torch.randn(3, 5, 8, dtype=DTYPE)
    x = x if batch_first else x.transpose(0, 1)
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[0, -2:] = True
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    per_head = torch.randn(6, 5, 5, dtype=DTYPE)
    for masks in (
        {},
        {"key_padding_mask": padding},
        {"attn_mask": causal, "key_padding_mask": padding},
        {"attn_mask": per_head},
    ):
        expected = mha(x, x, x, need_weights=False, **masks)[0]
        torch.testing.assert_close(block(x, x, x, **masks)[0], expected)
    with pytest.raises(ValueError, match="self-attention only"):
        block(x, x.clone(), x)


class Concat(nn.Module):
    """Two convolutions concatenated, read by a third (a DenseNet join)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3, padding=1)
        self.b = nn.Conv2d(2, 6, 1)
        self.c = nn.Conv2d(10, 4, 3)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(torch.cat([self.a(x), self.b(x)], dim=1))
        return self.head(self.c(h).mean((2, 3)))


def test_concatenated_channels_are_groups_with_offsets():
    torch.manual_seed(0)
    model = Concat().to(DTYPE).eval()
    X = torch.randn(10, 2, 6, 6, dtype=DTYPE)
    groups = {g.name: g for g in discover_groups(model, X)}
    a, b = groups["a"], groups["b"]
    assert (a.members[-1].offset, b.members[-1].offset) == (0, 4)
    removals = [[0, 2], [1, 3, 5]]
    pruned = remove_units(model, [a, b], removals)
    assert pruned.c.in_channels == 5
    masks = {}
    for group, removed in zip([a, b], removals):
        keep = torch.ones(group.size, dtype=DTYPE)
        keep[removed] = 0
        masks[group] = keep
    with torch.no_grad(), masked(model, masks):
        torch.testing.assert_close(pruned(X), model(X))
    # Mean compensation finds b's channels where a's removal moved them.
    fills = dict(zip([a, b], unit_means(model, [a, b], X)))
    compensated = remove_units(model, [a, b], removals, compensate="mean", X=X)
    with torch.no_grad(), masked(model, masks, fills):
        torch.testing.assert_close(compensated(X), model(X))
    # A group kept across a round in which its neighbour shrank has moved:
    # a clear error, not a wrong mask.
    moved = dataclasses.replace(b, size=3)
    with pytest.raises(ValueError, match="find the groups again"):
        with masked(pruned, {moved: torch.ones(3)}):
            pass


def test_graph_groups_over_rounds():
    model, X, y = build("resnet")
    small, report = prune(model, X, y, "magnitude", 0.75, n_rounds=2)
    assert [layer.units_after for layer in report.layers] == [4, 2, 2, 2, 4, 4]
    assert predict(small, X).shape == (8, 3)


def test_masks_leave_the_attention_fast_path_as_they_found_it():
    model, X, y, groups = prepared("transformer_encoder")
    assert torch.backends.mha.get_fastpath_enabled()
    graph = [g for g in groups if isinstance(g, GraphGroup)]
    with masked(model, {g: torch.ones(g.size) for g in graph}):
        assert not torch.backends.mha.get_fastpath_enabled()
    assert torch.backends.mha.get_fastpath_enabled()


class Untraceable(nn.Module):
    """Reads a value through numpy, which autograd (and so tracing) refuses."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        # numpy() fails on a tensor that requires grad: only when traced.
        return self.body(x) + 0 * float(self.body[0].weight.sum().numpy())


def test_untraceable_model_falls_back_to_sequential_rules():
    torch.manual_seed(0)
    X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    with pytest.warns(UserWarning, match="could not trace Untraceable"):
        small, report = prune(Untraceable(), X, y, policy="magnitude")
    assert [layer.name for layer in report.layers] == ["body.0"]


class _Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8, batch_first=True)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        h, _ = self.gru(x)
        return self.out(h[:, -1])


def test_a_model_without_prunable_units_says_how_to_declare_them():
    X, y = torch.randn(20, 5, 4), torch.randint(0, 3, (20,))
    with pytest.raises(
        TypeError,
        match=r"No prunable units found in _Recurrent.*"
        r"prune\(\.\.\., groups=",
    ):
        prune(_Recurrent(), X, y, budget=1)


def test_graph_groups_can_be_passed_explicitly():
    model, X, y = build("residual_mlp")
    groups = find_graph_groups(model, X[:4])
    small, report = prune(model, X, y, "magnitude", groups=groups[1:])
    assert [layer.name for layer in report.layers] == ["ups.1", "ups.0"]
    assert small.head[0].out_features == 16


@pytest.mark.parametrize("name", _architectures())
def test_the_default_configuration_runs_on_any_model(name):
    # Company pulls, the fidelity reward and least-squares compensation
    # (single pulls and in-memory refits where the group is a graph group).
    model, X, y = build(name)
    before = predict(model, X)
    small, report = prune(model, X, y, budget=1, random_state=0)
    assert count_parameters(small) < count_parameters(model)
    after = predict(small, X)
    assert after.shape == before.shape and torch.isfinite(after).all()


# -- transformers, decoders, GroupNorm and transposed convolutions -------------
#
# Issue 27: no groups declared; at prune_ratio=0.5 the prunable blocks keep at
# most 0.55 of their parameters, the pruned model equals the masked one
# (float64) and discovery takes seconds on tiny configurations.


def _lm_loss(out, y):
    """Per-token cross-entropy of (batch, seq, vocab) logits."""
    return torch.nn.functional.cross_entropy(out.transpose(1, 2), y, reduction="none")


def _gpt2(head):
    import transformers

    config = transformers.GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=4,
        vocab_size=100,
        n_positions=32,
        bos_token_id=0,
        eos_token_id=0,
    )
    if head == "lm":
        return transformers.GPT2LMHeadModel(config)
    config.num_labels, config.pad_token_id = 3, 0
    return transformers.GPT2ForSequenceClassification(config)


def _llama():
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention: 2 query heads per KV head
        max_position_embeddings=32,
    )
    return transformers.LlamaForCausalLM(config)


def _distilbert():
    import transformers

    config = transformers.DistilBertConfig(
        vocab_size=100,
        dim=32,
        n_layers=2,
        n_heads=4,
        hidden_dim=64,
        max_position_embeddings=32,
        num_labels=3,
    )
    return transformers.DistilBertForSequenceClassification(config)


class FusedAttention(nn.Module):
    """A timm-style attention: fused ``qkv``, ``num_heads`` read in forward."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, -1))


class ViTBlock(nn.Module):
    """Patch embedding, one pre-norm ViT block, a classifier."""

    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, 4)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = FusedAttention(dim, heads)
        self.mlp = nn.ModuleDict({"fc1": nn.Linear(dim, 64), "fc2": nn.Linear(64, dim)})
        self.head = nn.Linear(dim, 3)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = x + self.attn(self.norm1(x))
        h = self.mlp["fc2"](torch.nn.functional.gelu(self.mlp["fc1"](self.norm2(x))))
        return self.head((x + h).mean(1))


class GroupNormCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.gn1 = nn.Conv2d(3, 16, 3, padding=1), nn.GroupNorm(4, 16)
        self.conv2, self.gn2 = nn.Conv2d(16, 16, 3, padding=1), nn.GroupNorm(8, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = torch.relu(self.gn1(self.conv1(x)))
        x = torch.relu(self.gn2(self.conv2(x)))
        return self.head(x.mean((2, 3)))


class UNet(nn.Module):
    """Encoder, ConvTranspose2d upsampling, skip concatenation, decoder."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Conv2d(3, 8, 3, padding=1)
        self.enc2 = nn.Conv2d(8, 16, 3, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec = nn.Conv2d(16, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        e1 = torch.relu(self.enc1(x))
        e2 = torch.relu(self.enc2(torch.nn.functional.max_pool2d(e1, 2)))
        u = torch.relu(self.up(e2))
        return self.head(torch.relu(self.dec(torch.cat([u, e1], 1)))).mean((2, 3))


def _tokens(n=8, length=12):
    return torch.randint(1, 100, (n, length))


#: name -> (model factory, X, y, loss, groups expected by kind)
def _issue_27_case(name):
    torch.manual_seed(0)
    ids = _tokens()
    labels = torch.randint(0, 3, (ids.shape[0],))
    images = torch.randn(16, 3, 8, 8, dtype=DTYPE)
    cases = {
        "gpt2_lm": (lambda: _gpt2("lm"), ids, torch.roll(ids, -1, 1), _lm_loss),
        "gpt2_cls": (lambda: _gpt2("cls"), ids, labels, "cross_entropy"),
        "llama": (_llama, ids, torch.roll(ids, -1, 1), _lm_loss),
        "distilbert": (_distilbert, ids, labels, "cross_entropy"),
        "vit_block": (ViTBlock, images, torch.randint(0, 3, (16,)), "cross_entropy"),
        "groupnorm": (
            GroupNormCNN,
            images,
            torch.randint(0, 3, (16,)),
            "cross_entropy",
        ),
        "unet": (UNet, images, torch.randint(0, 3, (16,)), "cross_entropy"),
    }
    factory, X, y, loss = cases[name]
    return factory().to(DTYPE).eval(), X, y, loss


_HF = ("gpt2_lm", "gpt2_cls", "llama", "distilbert")
_NEEDS_TRANSFORMERS = pytest.mark.skipif(
    not _transformers_available(), reason="transformers not installed"
)
_ISSUE_27 = [
    pytest.param(name, "none", marks=[_NEEDS_TRANSFORMERS] if name in _HF else [])
    for name in (*_HF, "vit_block", "groupnorm")
] + [pytest.param("unet", c, id=f"unet-{c}") for c in ("none", "mean", "lstsq")]


def _block_params(model, groups):
    names = {n for g in groups for n in (*g.producers, *g.consumers)}
    return sum(p.numel() for n in names for p in model.get_submodule(n).parameters())


@pytest.mark.parametrize("name, compensate", _ISSUE_27)
def test_transformers_and_decoders_prune_to_their_masked_selves(name, compensate):
    import time

    model, X, y, loss = _issue_27_case(name)
    adapted, packed = adapt_inputs(model, X)
    start = time.perf_counter()
    groups = discover_groups(adapted, packed)
    assert time.perf_counter() - start < 10
    assert groups
    small, report = prune(
        model,
        X,
        y,
        prune_ratio=0.5,
        budget=1,
        compensate=compensate,
        loss=loss,
        random_state=0,
    )
    assert isinstance(small, type(model))
    assert [g.name for g in groups] == [layer.name for layer in report.layers]
    small_adapted, _ = adapt_inputs(small, X)
    ratio = _block_params(small_adapted, groups) / _block_params(adapted, groups)
    assert ratio <= 0.55
    if compensate != "none":
        return
    masks = {}
    for group, layer in zip(groups, report.layers):
        keep = torch.ones(group.size, dtype=DTYPE)
        keep[layer.removed] = 0
        masks[group] = keep
    with torch.no_grad():
        after = small_adapted(packed)
        with masked(adapted, masks):
            expected = adapted(packed)
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=1e-5)


@_NEEDS_TRANSFORMERS
def test_gpt2_heads_are_fused_conv1d_rows_and_split_size_follows():
    model, X, y, loss = _issue_27_case("gpt2_lm")
    adapted, packed = adapt_inputs(model, X)
    heads = discover_groups(adapted, packed)[0]
    assert (heads.name, heads.size, heads.head_dim) == (
        "transformer.h.0.attn.c_attn",
        4,
        8,
    )
    assert heads.consumers == ("module.transformer.h.0.attn.c_proj",)  # adapted
    assert model.config.use_cache
    small, _ = prune(model, X, y, "magnitude", 0.5, loss=loss)
    attn = small.transformer.h[0].attn
    assert attn.c_attn.weight.shape == (32, 48) and attn.c_attn.nf == 48
    assert attn.c_proj.weight.shape == (16, 32) and attn.c_proj.nx == 16
    assert attn.split_size == 16 and attn.embed_dim == 32
    assert small.config.use_cache and model.config.use_cache  # restored


@_NEEDS_TRANSFORMERS
def test_llama_grouped_query_heads_go_with_their_key_value_head():
    model, X, y, loss = _issue_27_case("llama")
    adapted, packed = adapt_inputs(model, X)
    heads = discover_groups(adapted, packed)[0]
    # 4 query heads over 2 KV heads: a unit is a KV head and its 2 queries.
    assert (heads.size, heads.heads_per_unit, heads.head_dim) == (2, 2, 8)
    assert [w for _, w, _ in heads.layout] == [16, 8, 8]
    small, _ = prune(model, X, y, "magnitude", 0.5, loss=loss)
    attn = small.model.layers[0].self_attn
    assert (attn.q_proj.out_features, attn.k_proj.out_features) == (16, 8)
    assert (attn.o_proj.in_features, attn.num_key_value_groups) == (16, 2)
    rotary = small.model.rotary_emb.inv_freq
    torch.testing.assert_close(rotary, model.model.rotary_emb.inv_freq)


def test_block_group_pulls_equal_naive():
    for name in ("vit_block", "groupnorm", "unet"):
        model, X, y, _ = _issue_27_case(name)
        X, y = X[:5], y[:5]
        for group in discover_groups(model, X):
            arms = [0, group.size - 1, 1, 0]
            fast = evaluate_arms(model, group, arms, X, y, _metric())
            naive = evaluate_arms_naive(model, group, arms, X, y, _metric())
            torch.testing.assert_close(fast, naive, atol=1e-10, rtol=0)


def test_groupnorm_channels_go_in_whole_norm_groups():
    model, X, y, _ = _issue_27_case("groupnorm")
    groups = {g.name: g for g in discover_groups(model, X)}
    assert (groups["conv1"].size, groups["conv1"].channels_per_unit) == (4, 4)
    assert (groups["conv2"].size, groups["conv2"].channels_per_unit) == (8, 2)
    small, _ = prune(model, X, y, "magnitude", 0.5)
    assert (small.gn1.num_groups, small.gn1.num_channels) == (2, 8)
    assert (small.gn2.num_groups, small.gn2.num_channels) == (4, 8)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2, "stride": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
        {"kernel_size": 4, "stride": 2, "padding": 1},
    ],
)
def test_transposed_convolution_refits_exactly(kwargs):
    from skbandit.pruning._compensation import refit_lstsq

    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(5, 4, **kwargs).to(DTYPE)
    x = torch.randn(6, 5, 5, 7, dtype=DTYPE)
    target = layer(x)
    fresh = nn.ConvTranspose2d(5, 4, **kwargs).to(DTYPE)
    refit_lstsq(fresh, x, target, 1e-12)
    torch.testing.assert_close(fresh(x), target, atol=1e-7, rtol=0)


def test_unet_lstsq_refits_the_transposed_consumer():
    model, X, _, _ = _issue_27_case("unet")
    groups = {g.name: g for g in discover_groups(model, X)}
    enc2 = groups["enc2"]
    assert enc2.consumers == ("up",)
    plain = remove_units(model, [enc2], [[0, 2, 4, 6]])
    refit = remove_units(model, [enc2], [[0, 2, 4, 6]], compensate="lstsq", X=X)
    full = model(X)
    assert (refit(X) - full).abs().mean() < (plain(X) - full).abs().mean()


class Sleeper(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        import time

        time.sleep(0.3)
        return self.b(torch.relu(self.a(x)))


def test_tracing_has_a_time_limit_that_names_the_model(monkeypatch):
    from skbandit.pruning import _discovery

    monkeypatch.setattr(_discovery, "TRACE_TIMEOUT", 0.1)
    X, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    with pytest.raises(TimeoutError, match="units of Sleeper took more than 0.1 s"):
        prune(Sleeper(), (X,), y, policy="magnitude")


def test_an_interruption_is_not_taken_for_a_failed_trace(monkeypatch):
    from skbandit.pruning import _discovery

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_discovery, "find_graph_groups", interrupted)
    X = torch.randn(8, 4)
    with pytest.raises(KeyboardInterrupt):
        discover_groups(Sleeper(), X)


def test_no_units_names_the_users_class_not_the_adapter():
    X, y = torch.randn(20, 5, 4), torch.randint(0, 3, (20,))
    with pytest.raises(TypeError, match="No prunable units found in _Recurrent"):
        prune(_Recurrent(), (X,), y, budget=1)


def test_conv1d_layer_type_reads_its_transposed_weight():
    transformers = pytest.importorskip("transformers")
    from skbandit.pruning._layers import layer_type

    layer = transformers.pytorch_utils.Conv1D(6, 4)
    entry = layer_type(layer)
    assert (entry.n_in(layer), entry.n_out(layer)) == (4, 6)
    assert entry.matrix(layer).shape == (6, 4)
    x = torch.randn(3, 4)
    expected = layer(x)[:, [1, 3]]
    entry.slice_out(layer, torch.tensor([1, 3]))
    torch.testing.assert_close(layer(x), expected)
    entry.slice_in(layer, torch.tensor([0, 2]))
    assert layer.weight.shape == (2, 2) and layer.nx == 2
