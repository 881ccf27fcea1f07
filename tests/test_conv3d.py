"""Conv3d and BatchNorm3d: a layer type added by its registry entries alone.

The pruning backend reads every layer type with weights from one registry
(``skbandit/pruning/_layers.py``); these tests show that its ``Conv3d`` and
``BatchNorm3d`` entries (with the 3-d pooling and dropout layers as
channel-wise pass-throughs in ``_units.py``) give the whole pipeline:
discovery, batched pulls equal to naive ones, removal equal to masking,
compensation, parameter and MAC targets, the graph path and export.
"""

import pytest
import torch
from torch import nn

from skbandit.export import load_module, save_module
from skbandit.pruning import (
    _pulls,
    count_parameters,
    discover_groups,
    evaluate_arms,
    evaluate_arms_naive,
    find_unit_groups,
    masked,
    prune,
    remove_units,
    resolve_loss,
    sample_metric,
    trace,
    unit_means,
)
from skbandit.pruning._layers import layer_type
from skbandit.pruning._targets import mac_cost, param_cost

from .any_models import assert_report_equals_masked

DTYPE = torch.float64

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_cnn3d(c1=5, c2=4, hidden=6, pool=True, seed=0):
    """conv3d -> BN3d -> ReLU -> conv3d -> ReLU -> (pool) -> Flatten -> MLP."""
    torch.manual_seed(seed)
    layers = [
        nn.Conv3d(2, c1, 3, padding=1),
        nn.BatchNorm3d(c1),
        nn.ReLU(),
        nn.Conv3d(c1, c2, (3, 2, 2), stride=(1, 2, 1), dilation=(1, 1, 2)),
        nn.ReLU(),
    ]
    side = (4, 2, 2)  # 6 x 5 x 6 input: (4, 2, 4) after the second conv
    if pool:
        layers.append(nn.MaxPool3d((1, 1, 2)))
    else:
        side = (4, 2, 4)
    layers += [
        nn.Flatten(),
        nn.Linear(c2 * side[0] * side[1] * side[2], hidden),
        nn.ReLU(),
        nn.Linear(hidden, 3),
    ]
    net = nn.Sequential(*layers).to(DTYPE).eval()
    g = torch.Generator().manual_seed(1)
    bn = net[1]
    bn.running_mean.copy_(torch.randn(c1, generator=g, dtype=DTYPE))
    bn.running_var.copy_(torch.rand(c1, generator=g, dtype=DTYPE) + 0.5)
    bn.weight.data.copy_(torch.rand(c1, generator=g, dtype=DTYPE) + 0.5)
    return net


def volume_batch(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, 6, 5, 6, generator=g, dtype=DTYPE)
    y = torch.randint(0, 3, (n,), generator=g)
    return X, y


def _metric():
    return sample_metric("loss", resolve_loss("cross_entropy"))


def test_conv3d_groups_are_found():
    net = make_cnn3d()
    X, _ = volume_batch()
    groups = find_unit_groups(net, example_input=X[:1])
    assert [(g.name, g.size, g.producers, g.consumers) for g in groups] == [
        ("0", 5, ("0", "1"), ("3",)),
        ("3", 4, ("3",), ("7",)),
        ("7", 6, ("7",), ("9",)),
    ]
    assert [g.unit_width for g in groups] == [1, 4 * 2 * 2, 1]


def test_conv3d_rows_are_the_convolution_as_a_matrix_product():
    torch.manual_seed(0)
    conv = nn.Conv3d(
        3, 4, (3, 2, 2), stride=(1, 2, 1), padding=(1, 0, 1), dilation=(2, 1, 1)
    )
    conv = conv.to(DTYPE)
    h = torch.randn(2, 3, 7, 6, 5, dtype=DTYPE)
    entry = layer_type(conv)
    assert entry.refittable(conv) and not entry.flat
    rows = entry.rows(conv, h)  # (batch, C * k, positions)
    out = conv.weight.flatten(1) @ rows + conv.bias[:, None]
    expected = conv(h)
    torch.testing.assert_close(out.view_as(expected), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("with_fill", [False, True])
def test_conv3d_batched_pulls_equal_naive(with_fill):
    net = make_cnn3d()
    X, y = volume_batch()
    groups = find_unit_groups(net, example_input=X[:1])
    tr = trace(net, X)
    assert [_pulls.batched_kind(tr, g) for g in groups] == ["conv", "block", "linear"]
    for group in groups:
        arms = list(range(group.size)) + [0]
        fill = torch.randn(group.size, dtype=DTYPE) if with_fill else None
        fast = evaluate_arms(net, group, arms, X, y, _metric(), fill, tr=tr)
        naive = evaluate_arms_naive(net, group, arms, X, y, _metric(), fill)
        torch.testing.assert_close(fast, naive, atol=1e-10, rtol=0)


@pytest.mark.parametrize("policy", ["ucb1", "magnitude"])
def test_conv3d_pruned_equals_masked(policy):
    net = make_cnn3d()
    X, y = volume_batch()
    small, report = prune(
        net, X, y, policy, 0.5, budget=2, compensate="none", random_state=0
    )
    assert small[0].out_channels == 3 and small[1].num_features == 3
    assert small[3].in_channels == 3 and small[3].out_channels == 2
    assert count_parameters(small) < count_parameters(net)
    assert report.params_after == count_parameters(small)
    groups = find_unit_groups(net, example_input=X[:1])
    assert_report_equals_masked(net, small, groups, report, X, atol=1e-5, rtol=1e-5)


def test_conv3d_mean_compensation_equals_mean_fill():
    # No padding in the consumer: folding a constant map into its bias is exact.
    net = make_cnn3d(pool=False)
    X, _ = volume_batch()
    groups = find_unit_groups(net, example_input=X[:1])
    assert [g.name for g in groups] == ["0", "3", "6"]  # no pooling layer
    removals = [[1, 3], [0, 2], [5]]
    pruned = remove_units(net, groups, removals, compensate="mean", X=X)
    current = net
    for g, (group, removed) in enumerate(zip(groups, removals)):
        # each group sees the earlier ones removed, as remove_units does
        now = find_unit_groups(current, example_input=X[:1])[g]
        keep = torch.ones(group.size, dtype=DTYPE)
        keep[removed] = 0
        (fill,) = unit_means(current, [now], X)
        with torch.no_grad(), masked(current, {now: keep}, {now: fill}):
            expected = current(X)
        current = remove_units(current, [now], [removed], compensate="mean", X=X)
        with torch.no_grad():
            torch.testing.assert_close(current(X), expected, atol=1e-8, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(pruned(X), current(X), atol=1e-10, rtol=0)


def test_conv3d_lstsq_compensation_recovers_a_duplicate_channel():
    net = make_cnn3d()
    X, _ = volume_batch(n=40)
    with torch.no_grad():  # channel 4 of the first conv repeats channel 2
        net[0].weight[4] = net[0].weight[2]
        net[0].bias[4] = net[0].bias[2]
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(net[1], name)[4] = getattr(net[1], name)[2]
    groups = find_unit_groups(net, example_input=X[:1])
    refit = remove_units(net, groups, [[4], [], []], compensate="lstsq", X=X, ridge=0)
    plain = remove_units(net, groups, [[4], [], []])
    with torch.no_grad():
        torch.testing.assert_close(refit(X), net(X), atol=1e-8, rtol=0)
        assert (plain(X) - net(X)).abs().max() > 1e-3


@pytest.mark.parametrize("compensate", ["mean", "lstsq"])
def test_conv3d_prunes_with_compensation(compensate):
    net = make_cnn3d()
    X, y = volume_batch(n=24)
    small, report = prune(net, X, y, "ucb1", 0.5, budget=2, compensate=compensate)
    assert report.params_after == count_parameters(small) < count_parameters(net)
    assert (small[0].out_channels, small[3].out_channels) == (3, 2)


def test_conv3d_parameter_and_mac_costs_match_the_pruned_network():
    net = make_cnn3d()
    X, _ = volume_batch()
    groups = find_unit_groups(net, example_input=X[:1])
    assert [g.name for g in groups] == ["0", "3", "7"]
    params, macs = param_cost(net, groups), mac_cost(net, groups, X[:1])
    assert params([g.size for g in groups]) == count_parameters(net)
    removals = [[0, 1], [3], [2, 4]]
    small = remove_units(net, groups, removals)
    sizes = [g.size - len(r) for g, r in zip(groups, removals)]
    assert params(sizes) == count_parameters(small)
    assert macs(sizes) == mac_cost(small, find_unit_groups(small, X[:1]), X[:1])(sizes)
    assert macs(sizes) < macs([g.size for g in groups])


def test_conv3d_prunes_to_a_latency_target():
    net = make_cnn3d()
    X, y = volume_batch()
    macs = mac_cost(net, find_unit_groups(net, example_input=X[:1]), X[:1])
    small, _ = prune(
        net, X, y, "magnitude", target_latency=0.6, compensate="none", random_state=0
    )
    pruned = find_unit_groups(small, example_input=X[:1])
    cost = mac_cost(small, pruned, X[:1])([g.size for g in pruned])
    assert cost <= 0.6 * macs([5, 4, 6])
    assert small[0].out_channels < 5 or small[3].out_channels < 4


class Residual3d(nn.Module):
    """conv3d -> BN3d -> ReLU -> conv3d + skip: not a Sequential (graph path)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(2, 4, 3, padding=1)
        self.conv = nn.Conv3d(4, 6, 3, padding=1)
        self.bn = nn.BatchNorm3d(6)
        self.back = nn.Conv3d(6, 4, 1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = h + self.back(torch.relu(self.bn(self.conv(h))))
        return self.head(h.mean((2, 3, 4)))


def test_conv3d_graph_groups_prune_as_masked():
    torch.manual_seed(0)
    net = Residual3d().to(DTYPE).eval()
    X, y = volume_batch()
    groups = discover_groups(net, X)
    assert {g.name for g in groups} >= {"conv"}
    small, report = prune(
        net, X, y, "ucb1", 0.5, budget=1, compensate="none", random_state=0
    )
    assert count_parameters(small) < count_parameters(net)
    assert_report_equals_masked(net, small, groups, report, X, atol=1e-5, rtol=1e-5)


def test_conv3d_pruned_network_saves_and_loads(tmp_path):
    net = make_cnn3d(pool=False)
    X, y = volume_batch()
    small, _ = prune(net, X, y, "magnitude", 0.5, compensate="mean")
    path = tmp_path / "net.pt"
    save_module(small, path)
    again = load_module(path).to(DTYPE)
    with torch.no_grad():
        torch.testing.assert_close(again(X), small(X), atol=1e-12, rtol=0)
