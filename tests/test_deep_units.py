"""Units beyond MLP neurons: flattened conv channels, attention heads, FFN units
inside submodules and user-declared groups; masking == physical removal,
batched pulls == naive pulls, and the fine-tuning helper."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skbandit.benchmarks._torch_pruning import TorchPruningMagnitude
from skbandit.benchmarks.deep import TransformerClassifier
from skbandit.pruning import (
    SelfAttention,
    UnitGroup,
    _pulls,
    _trace,
    consumer_refits,
    count_parameters,
    evaluate_arms,
    evaluate_arms_naive,
    find_unit_groups,
    fine_tune,
    masked,
    prune,
    remove_units,
    resolve_loss,
    sample_metric,
    trace,
    unit_view,
    unit_weights,
)

DTYPE = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _randomise_batchnorm(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g, dtype=DTYPE))
            m.running_var.copy_(torch.rand(n, generator=g, dtype=DTYPE) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g, dtype=DTYPE) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g, dtype=DTYPE))
    return model


def make_cnn(c1=6, c2=5, hidden=7, pool=False, seed=0):
    """conv -> BN -> ReLU -> conv -> ReLU -> (pool) -> Flatten -> Linear -> ..."""
    torch.manual_seed(seed)
    side = 3 if pool else 6  # 8x8 input, second conv without padding
    layers = [
        nn.Conv2d(1, c1, 3, padding=1),
        nn.BatchNorm2d(c1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [
        nn.Flatten(),
        nn.Linear(c2 * side * side, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 3),
    ]
    return _randomise_batchnorm(nn.Sequential(*layers).to(DTYPE)).eval()


def make_transformer(heads=4, ffn=12, dim=16, seed=0, vocab=30, max_len=7, layers=1):
    torch.manual_seed(seed)
    net = TransformerClassifier(
        vocab, 3, max_len, dim=dim, num_heads=heads, ffn_dim=ffn, n_layers=layers
    )
    return net.to(DTYPE).eval()


def token_batch(n=12, vocab=30, length=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (n, length), generator=g)
    lengths = torch.randint(2, length + 1, (n,), generator=g)
    ids[torch.arange(length)[None, :] >= lengths[:, None]] = 0  # padding
    return ids.to(DTYPE), torch.randint(0, 3, (n,), generator=g)


def image_batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g, dtype=DTYPE), torch.randint(
        0, 3, (n,), generator=g
    )


def random_removals(groups, seed=0):
    rng = np.random.default_rng(seed)
    return [
        np.sort(rng.choice(g.size, size=max(1, g.size // 2), replace=False))
        for g in groups
    ]


def masks_of(groups, removals):
    masks = {}
    for group, removed in zip(groups, removals):
        keep = torch.ones(group.size, dtype=DTYPE)
        keep[torch.as_tensor(removed)] = 0
        masks[group] = keep
    return masks


def consumer_input(model, group, inputs):
    captured = {}
    module = model.get_submodule(group.consumers[0])
    handle = module.register_forward_pre_hook(lambda m, a: captured.update(x=a[0]))
    model(inputs)
    handle.remove()
    return captured["x"]


def assert_pruned_equals_masked(model, groups, removals, inputs, fills=None, **kw):
    with masked(model, masks_of(groups, removals), fills):
        expected = model(inputs)
    pruned = remove_units(model, groups, removals, **kw)
    torch.testing.assert_close(pruned(inputs), expected, atol=1e-5, rtol=0)
    return pruned


# -- UnitGroup layout -----------------------------------------------------------


def test_unit_group_defaults_are_neurons():
    g = UnitGroup("a", 4, ("a",), ("b",))
    assert (g.unit_width, g.producer_width, g.producer_chunks) == (1, 1, 1)
    assert g.producer_index([1, 3]).tolist() == [1, 3]
    assert g.consumer_index([1, 3]).tolist() == [1, 3]


def test_unit_group_chunked_layout():
    g = UnitGroup(
        "qkv", 3, ("qkv",), ("out",), unit_width=2, producer_width=2, producer_chunks=3
    )
    # head 1 owns rows 2,3 of each block of 6 rows, and input columns 2,3
    assert g.producer_index([1]).tolist() == [2, 3, 8, 9, 14, 15]
    assert g.consumer_index([0, 2]).tolist() == [0, 1, 4, 5]
    assert (g.n_rows, g.n_features) == (18, 6)


@pytest.mark.parametrize("field", ["size", "unit_width", "producer_chunks"])
def test_unit_group_rejects_bad_layout(field):
    kwargs = {"size": 2, "unit_width": 1, "producer_chunks": 1, field: 0}
    with pytest.raises(ValueError, match=field):
        UnitGroup("a", producers=("a",), consumers=("b",), **kwargs)


def test_unit_view_and_weights():
    g = UnitGroup("c", 3, ("c",), ("fc",), unit_width=4)
    x = torch.arange(24.0).view(2, 12)
    assert unit_view(x, g).shape == (2, 3, 4)
    assert unit_view(x, g)[0, 1].tolist() == [4.0, 5.0, 6.0, 7.0]
    with pytest.raises(ValueError, match="spans 12 features"):
        unit_view(torch.zeros(2, 10), g)
    attn = SelfAttention(8, 2).to(DTYPE)
    (heads,) = attn.unit_groups("")
    w = unit_weights(attn, heads)
    assert w.shape == (2, 3 * 4 * 8)
    torch.testing.assert_close(w[1, :32], attn.qkv.weight[4:8].flatten())


# -- discovery -------------------------------------------------------------------


def test_find_cnn_groups_with_example_input():
    net = make_cnn(pool=True)
    X, _ = image_batch(2)
    groups = find_unit_groups(net, example_input=X[:1])
    summary = [
        (g.name, g.size, g.producers, g.consumers, g.feature_dim, g.unit_width)
        for g in groups
    ]
    assert summary == [
        ("0", 6, ("0", "1"), ("3",), 1, 1),
        ("3", 5, ("3",), ("7",), -1, 9),  # 3x3 pooled map per channel
        ("7", 7, ("7",), ("9",), -1, 1),
    ]


def test_flatten_channels_need_example_input():
    net = make_cnn()
    with pytest.warns(UserWarning, match="example_input"):
        groups = find_unit_groups(net)
    assert [g.name for g in groups] == ["0", "6"]  # the flattened conv left out


def test_find_groups_in_submodules_and_declared_modules():
    net = make_transformer()
    groups = find_unit_groups(net)
    assert [
        (g.name, g.size, g.consumers, g.unit_width, g.producer_chunks) for g in groups
    ] == [
        ("blocks.0.attn.qkv", 4, ("blocks.0.attn.out",), 4, 3),
        ("blocks.0.ffn.0", 12, ("blocks.0.ffn.3",), 1, 1),
    ]


def test_find_unit_groups_still_rejects_unstructured_models():
    with pytest.raises(TypeError, match="nn.Sequential"):
        find_unit_groups(nn.Linear(3, 2))


# -- masked == physically removed --------------------------------------------------


@pytest.mark.parametrize("pool", [False, True])
def test_cnn_pruned_equals_masked(pool):
    net = make_cnn(pool=pool)
    X, _ = image_batch()
    groups = find_unit_groups(net, example_input=X[:1])
    removals = random_removals(groups)
    pruned = assert_pruned_equals_masked(net, groups, removals, X)
    kept = [g.size - len(r) for g, r in zip(groups, removals)]
    smaller = make_cnn(*kept, pool=pool)
    assert count_parameters(pruned) == count_parameters(smaller)
    assert pruned[7 if pool else 6].in_features == kept[1] * (9 if pool else 36)


def test_conv1d_flatten_pruned_equals_masked():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv1d(1, 4, 3, padding=1),
        nn.BatchNorm1d(4),
        nn.ReLU(),
        nn.Conv1d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool1d(2),
        nn.Flatten(),
        nn.Linear(6 * 5, 3),
    ).to(DTYPE)
    net = _randomise_batchnorm(net).eval()
    X = torch.randn(10, 1, 10, dtype=DTYPE)
    groups = find_unit_groups(net, example_input=X[:1])
    assert [(g.name, g.unit_width) for g in groups] == [("0", 1), ("3", 5)]
    pruned = assert_pruned_equals_masked(net, groups, [[1, 2], [0, 3, 5]], X)
    # conv0: 2 x (3 + 1) + BN 2 x 2; conv3: in 2 x 6 x 3 + out 3 x (2 x 3 + 1)
    # linear: 3 x 5 x 3 inputs
    removed = 2 * 4 + 2 * 2 + 2 * 6 * 3 + 3 * (2 * 3 + 1) + 3 * 5 * 3
    assert count_parameters(net) - count_parameters(pruned) == removed


def test_transformer_pruned_equals_masked():
    net = make_transformer(heads=4, ffn=12, dim=16)
    X, _ = token_batch()
    groups = find_unit_groups(net)
    removals = [[0, 2], [1, 4, 5, 9, 11]]
    pruned = assert_pruned_equals_masked(net, groups, removals, X)
    attn = pruned.blocks[0].attn
    assert attn.num_heads == 2
    assert tuple(attn.qkv.weight.shape) == (3 * 2 * 4, 16)
    assert tuple(attn.out.weight.shape) == (16, 2 * 4)
    hd, dim = 4, 16
    removed = 2 * (3 * hd * (dim + 1) + hd * dim) + 5 * ((dim + 1) + dim)
    assert count_parameters(net) - count_parameters(pruned) == removed
    smaller = make_transformer(heads=2, ffn=7, dim=16)
    smaller.blocks[0].attn.qkv = nn.Linear(16, 3 * 2 * 4)
    smaller.blocks[0].attn.out = nn.Linear(2 * 4, 16)
    assert count_parameters(pruned) == count_parameters(smaller)


def test_transformer_mean_compensation_equals_masked_with_means():
    """compensate='mean' removes exactly what masking with unit means does."""
    net = make_transformer()
    X, _ = token_batch()
    groups = find_unit_groups(net)
    removals = [[1], [0, 3, 7]]
    fills = {
        group: unit_view(consumer_input(net, group, X), group).mean((0, 2))
        for group in groups
    }
    # Groups are removed in order, each after the previous: mask both at once
    # only if the first does not change the second's input (heads feed the
    # FFN), so check one group at a time.
    for group, removed in zip(groups, removals):
        assert_pruned_equals_masked(
            net,
            [group],
            [removed],
            X,
            {group: fills[group]},
            compensate="mean",
            X=X,
        )


def test_cnn_flatten_mean_compensation_equals_masked_with_means():
    net = make_cnn()
    X, _ = image_batch()
    group = find_unit_groups(net, example_input=X[:1])[1]
    fill = unit_view(net[:6](X), group).mean((0, 2))
    assert_pruned_equals_masked(
        net, [group], [[0, 3]], X, {group: fill}, compensate="mean", X=X
    )


def test_lstsq_refits_linear_consumer_of_sequences():
    net = make_transformer()
    X, _ = token_batch(40)
    ffn = find_unit_groups(net)[1]
    none = remove_units(net, [ffn], [[0, 1, 2, 3]])
    refit = remove_units(net, [ffn], [[0, 1, 2, 3]], compensate="lstsq", X=X)
    full = net(X)
    assert (refit(X) - full).abs().mean() < (none(X) - full).abs().mean()


class Residual(nn.Module):
    """Not a Sequential: a hidden layer with a skip connection around it."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(5, 8)
        self.hidden = nn.Linear(8, 6)
        self.skip = nn.Linear(8, 3)
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        return self.out(torch.relu(self.hidden(h))) + self.skip(h)


class Patches(nn.Module):
    """Each unit of ``a`` is read as 3 consecutive features by ``b``."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 5)
        self.b = nn.Linear(15, 2)

    def forward(self, x):
        h = torch.relu(self.a(x))  # (n, 3, 5)
        return self.b(h.transpose(1, 2).flatten(1))  # unit-major: 5 x 3


def test_user_declared_group_in_non_sequential_model():
    torch.manual_seed(0)
    net = Residual().to(DTYPE).eval()
    X = torch.randn(9, 5, dtype=DTYPE)
    with pytest.raises(TypeError):
        find_unit_groups(net)
    group = UnitGroup("hidden", 6, ("hidden",), ("out",))
    pruned = assert_pruned_equals_masked(net, [group], [[0, 2, 5]], X)
    assert count_parameters(net) - count_parameters(pruned) == 3 * (8 + 1) + 3 * 3
    small, report = prune(
        net,
        X,
        torch.randint(0, 3, (9,)),
        policy="ucb1",
        groups=[group],
        random_state=0,
        budget=2,
    )
    assert small.hidden.out_features == 3 and report.params_after < report.params_before


def test_user_declared_wide_units():
    torch.manual_seed(0)
    net = Patches().to(DTYPE).eval()
    X = torch.randn(6, 3, 4, dtype=DTYPE)
    group = UnitGroup("a", 5, ("a",), ("b",), unit_width=3)
    pruned = assert_pruned_equals_masked(net, [group], [[1, 4]], X)
    assert pruned.b.in_features == 9


def test_shape_mismatch_of_declared_group_is_clear():
    net = Residual().to(DTYPE)
    with pytest.raises(ValueError, match="spans 7"):
        remove_units(net, [UnitGroup("hidden", 7, ("hidden",), ("out",))], [[0]])


# -- batched pulls == naive pulls ----------------------------------------------------


def _metric():
    return sample_metric("loss", resolve_loss("cross_entropy"))


@pytest.mark.parametrize("with_fill", [False, True])
def test_conv_flatten_linear_batched_equals_naive(with_fill, monkeypatch):
    net = make_cnn(pool=True)
    X, y = image_batch(20)
    groups = find_unit_groups(net, example_input=X[:1])
    tr = trace(net, X)
    kinds = [_pulls.batched_kind(tr, g) for g in groups]
    assert kinds == ["conv", "block", "linear"]
    for group in groups:
        arms = list(range(group.size)) + [0]
        fill = torch.randn(group.size, dtype=DTYPE) if with_fill else None
        fast = evaluate_arms(net, group, arms, X, y, _metric(), fill, tr=tr)
        naive = evaluate_arms_naive(net, group, arms, X, y, _metric(), fill)
        torch.testing.assert_close(fast, naive, atol=1e-10, rtol=0)
    # several chunks give the same values
    monkeypatch.setattr(_pulls, "_CHUNK_ELEMENTS", 20 * 7)
    chunked = evaluate_arms(net, groups[1], range(5), X, y, _metric(), tr=tr)
    naive = evaluate_arms_naive(net, groups[1], range(5), X, y, _metric())
    torch.testing.assert_close(chunked, naive, atol=1e-10, rtol=0)


@pytest.mark.parametrize("with_fill,layers", [(False, 1), (True, 1), (False, 2)])
def test_transformer_graph_pulls_equal_naive(with_fill, layers, monkeypatch):
    net = make_transformer(layers=layers)
    X, y = token_batch(10)
    tr = trace(net, X)
    assert isinstance(tr, _trace.GraphTrace)
    torch.testing.assert_close(tr.output, net(X))
    calls = []
    original = _pulls._graph_values
    monkeypatch.setattr(
        _pulls, "_graph_values", lambda *a: calls.append(1) or original(*a)
    )
    for group in find_unit_groups(net):
        arms = list(range(group.size)) + [1]
        fill = torch.randn(group.size, dtype=DTYPE) if with_fill else None
        fast = evaluate_arms(net, group, arms, X, y, _metric(), fill, tr=tr)
        naive = evaluate_arms_naive(net, group, arms, X, y, _metric(), fill)
        torch.testing.assert_close(fast, naive, atol=1e-10, rtol=0)
    assert len(calls) == 2 * layers  # every group took the graph path


@pytest.mark.parametrize("layers", [1, 2])
def test_transformer_compensated_graph_pulls_equal_naive(layers, monkeypatch):
    net = make_transformer(layers=layers)
    X, y = token_batch(10)
    tr = trace(net, X)
    groups = find_unit_groups(net)
    refits = consumer_refits(net, groups, X)
    calls = []
    original = _pulls._graph_refit_values
    monkeypatch.setattr(
        _pulls, "_graph_refit_values", lambda *a: calls.append(1) or original(*a)
    )
    compensated = [(g, r) for g, r in zip(groups, refits) if r is not None]
    assert compensated
    for group, refit in compensated:
        arms = [0, group.size - 1, 1, 0]  # repeats allowed
        fast = evaluate_arms(net, group, arms, X, y, _metric(), tr=tr, refit=refit)
        naive = evaluate_arms_naive(net, group, arms, X, y, _metric(), refit=refit)
        torch.testing.assert_close(fast, naive, atol=1e-10, rtol=0)
    assert len(calls) == len(compensated)  # every one took the graph path


def test_transformer_compensated_pulls_equal_compensated_removal():
    net = make_transformer()
    X, y = token_batch(10)
    groups = find_unit_groups(net)
    refits = consumer_refits(net, groups, X)
    for group, refit in [(g, r) for g, r in zip(groups, refits) if r is not None]:
        arms = [0, group.size - 1, 1]
        pulls = evaluate_arms(net, group, arms, X, y, _metric(), refit=refit)
        for arm, value in zip(arms, pulls):
            removals = [[arm] if g is group else [] for g in groups]
            small = remove_units(net, groups, removals, "lstsq", X)
            removal = _metric()(small(X), y).mean()
            torch.testing.assert_close(value, removal, atol=1e-10, rtol=0)


def test_user_model_graph_pulls_equal_naive():
    torch.manual_seed(0)
    net = Residual().to(DTYPE).eval()
    X = torch.randn(9, 5, dtype=DTYPE)
    y = torch.randint(0, 3, (9,))
    group = UnitGroup("hidden", 6, ("hidden",), ("out",))
    fast = evaluate_arms(net, group, range(6), X, y, _metric())
    naive = evaluate_arms_naive(net, group, range(6), X, y, _metric())
    torch.testing.assert_close(fast, naive, atol=1e-10, rtol=0)


@pytest.mark.parametrize("compensated", [False, True])
def test_graph_pulls_out_of_gpu_memory_warn_and_run_naive(compensated, monkeypatch):
    torch.manual_seed(0)
    net = Residual().to(DTYPE).eval()
    X = torch.randn(9, 5, dtype=DTYPE)
    y = torch.randint(0, 3, (9,))
    group = UnitGroup("hidden", 6, ("hidden",), ("out",))
    refit = consumer_refits(net, [group], X)[0] if compensated else None

    def out_of_memory(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    for path in ("_graph_values", "_graph_refit_values"):
        monkeypatch.setattr(_pulls, path, out_of_memory)
    with pytest.warns(UserWarning, match="Out of GPU memory.*'hidden'") as record:
        fast = evaluate_arms(net, group, range(6), X, y, _metric(), refit=refit)
    assert record[0].filename == __file__  # points at the caller
    naive = evaluate_arms_naive(net, group, range(6), X, y, _metric(), refit=refit)
    torch.testing.assert_close(fast, naive, atol=0, rtol=0)


@pytest.mark.parametrize(
    "compensated, path", [(False, "_graph_values"), (True, "_graph_refit_values")]
)
def test_a_failing_fast_path_warns_once_and_runs_naive(compensated, path, monkeypatch):
    torch.manual_seed(0)
    net = Residual().to(DTYPE).eval()
    X = torch.randn(9, 5, dtype=DTYPE)
    y = torch.randint(0, 3, (9,))
    group = UnitGroup("hidden", 6, ("hidden",), ("out",))
    refit = consumer_refits(net, [group], X)[0] if compensated else None

    def broken(*args):
        raise NotImplementedError("no batching rule")

    monkeypatch.setattr(_pulls, path, broken)
    monkeypatch.setattr(_pulls, "_FELL_BACK", set())
    with pytest.warns(RuntimeWarning, match=f"{path}.*no batching rule") as record:
        fast = evaluate_arms(net, group, range(6), X, y, _metric(), refit=refit)
    assert record[0].filename == __file__  # points at the caller
    naive = evaluate_arms_naive(net, group, range(6), X, y, _metric(), refit=refit)
    torch.testing.assert_close(fast, naive, atol=0, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process
        again = evaluate_arms(net, group, range(6), X, y, _metric(), refit=refit)
    torch.testing.assert_close(again, naive, atol=0, rtol=0)


class InPlace(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.a = nn.Linear(3, 4)
        self.act = nn.ReLU(inplace=kind == "module")
        self.b = nn.Linear(4, 2)

    def forward(self, x):
        h = self.a(x)
        if self.kind == "method":
            h.add_(1.0)  # in place: recorded values would be aliased
        elif self.kind == "function":
            torch.relu_(h)
        return self.b(self.act(h))


@pytest.mark.parametrize("kind", ["method", "function", "module"])
def test_in_place_models_use_naive_pulls(kind):
    torch.manual_seed(0)
    net = InPlace(kind).to(DTYPE).eval()
    X = torch.randn(5, 3, dtype=DTYPE)
    assert trace(net, X) is None
    group = UnitGroup("a", 4, ("a",), ("b",))
    y = torch.randint(0, 2, (5,))
    torch.testing.assert_close(
        evaluate_arms(net, group, range(4), X, y, _metric()),
        evaluate_arms_naive(net, group, range(4), X, y, _metric()),
    )


# -- attention conversions and scorers ------------------------------------------------


def test_self_attention_from_multihead_attention():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(12, 3, batch_first=True).to(DTYPE).eval()
    block = SelfAttention.from_multihead_attention(mha)
    x = torch.randn(2, 5, 12, dtype=DTYPE)
    torch.testing.assert_close(block(x), mha(x, x, x, need_weights=False)[0])
    with pytest.raises(ValueError, match="batch_first"):
        SelfAttention.from_multihead_attention(nn.MultiheadAttention(4, 2))


def test_torch_pruning_scores_heads_and_channels():
    pytest.importorskip("torch_pruning")
    for net, (X, y) in [
        (make_transformer(), token_batch()),
        (make_cnn(pool=True), image_batch()),
    ]:
        groups = find_unit_groups(net, example_input=X[:1])
        scores = TorchPruningMagnitude().score(net, groups, X, y, None, None).scores
        assert [len(s) for s in scores] == [g.size for g in groups]
        assert all(np.all(np.isfinite(s)) for s in scores)


# -- fine-tuning ---------------------------------------------------------------


def test_fine_tune_is_seeded_and_leaves_global_rng_alone():
    X, y = token_batch(24)

    nets = [make_transformer(seed=3).float() for _ in range(2)]
    state = torch.get_rng_state()
    a, b = [
        fine_tune(net, X, y, epochs=2, lr=1e-2, batch_size=8, random_state=5)
        for net in nets
    ]
    assert torch.equal(torch.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0)
    assert not a.training


def test_fine_tune_lowers_the_loss_and_validates():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    X = np.random.default_rng(0).normal(size=(64, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    before = (
        (net(torch.as_tensor(X).float()).squeeze(1) - torch.as_tensor(y)) ** 2
    ).mean()
    fine_tune(net, X, y, loss="mse", epochs=30, lr=1e-2, random_state=0)
    after = (
        (net(torch.as_tensor(X).float()).squeeze(1) - torch.as_tensor(y)) ** 2
    ).mean()
    assert after < before / 4
    with pytest.raises(ValueError, match="epochs"):
        fine_tune(net, X, y, epochs=-1)
    assert fine_tune(net, X, y, epochs=0) is net


def test_fast_path_fallbacks_are_counted_in_the_report(monkeypatch):
    from skbandit.pruning import prune

    torch.manual_seed(0)
    net = Residual().to(DTYPE).eval()
    X = torch.randn(16, 5, dtype=DTYPE)
    y = torch.randint(0, 3, (16,))
    group = UnitGroup("hidden", 6, ("hidden",), ("out",))
    settings = dict(groups=[group], compensate="none", budget=2, random_state=0)
    _, clean = prune(net, X, y, "ucb1", 0.5, **settings)
    assert clean.fast_path_fallbacks == 0

    def broken(*args):
        raise NotImplementedError("no batching rule")

    monkeypatch.setattr(_pulls, "_graph_values", broken)
    monkeypatch.setattr(_pulls, "_FELL_BACK", set())
    with pytest.warns(RuntimeWarning, match="no batching rule"):
        _, report = prune(net, X, y, "ucb1", 0.5, **settings)
    # Every pull evaluation that fell back, not just the one warning; the
    # naive loop gives the same values, so the same units go.
    assert report.fast_path_fallbacks > 1
    assert report.summary()["fast_path_fallbacks"] == report.fast_path_fallbacks
    np.testing.assert_array_equal(report.layers[0].removed, clean.layers[0].removed)
