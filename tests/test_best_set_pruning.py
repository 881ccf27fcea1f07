"""The pruning side of the best-set policies: what the arena tells a policy,
early stops, priors, the pulls report and the estimators' ``policy=``."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from torch import nn

from skbandit import BanditPrunedMLPClassifier
from skbandit.policies import LUCB, Uniform
from skbandit.pruning import prune


@pytest.fixture
def problem():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)
    )
    X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    return net, X, y


class RecordingUniform(Uniform):
    """Uniform that keeps what each reset was told (shared across copies)."""

    seen = []

    def reset(self, n_arms, rng=None, **context):
        RecordingUniform.seen.append({"n_arms": n_arms, **context})
        return super().reset(n_arms, rng, **context)


class DoneAfterOneRound(LUCB):
    """LUCB that declares its set identified after its first round."""

    def _refresh(self):
        self.done_ = self.n_rounds_ >= 1


class NoContext:
    """A duck-typed policy whose reset takes n_arms and rng only."""

    def reset(self, n_arms, rng=None):
        self.estimates_ = np.zeros(n_arms)
        return self

    def select(self, k):
        return np.arange(k)

    def update(self, arms, rewards):
        return self


def test_the_arena_tells_a_policy_its_split_budget_and_prior(problem):
    net, X, y = problem
    RecordingUniform.seen.clear()
    prune(net, X, y, RecordingUniform(), 0.5, budget=3, random_state=0)
    assert [
        (s["n_arms"], s["n_select"], s["budget"]) for s in RecordingUniform.seen
    ] == [
        (12, 6, 36),
        (8, 4, 24),
    ]
    assert all(s["prior_means"] is None for s in RecordingUniform.seen)
    RecordingUniform.seen.clear()
    prune(
        net,
        X,
        y,
        RecordingUniform(),
        0.5,
        budget=3,
        scope="global",
        prior="magnitude",
        prior_weight=4,
        random_state=0,
    )
    (seen,) = RecordingUniform.seen
    assert (seen["n_arms"], seen["n_select"], seen["prior_weight"]) == (20, 10, 4)
    prior = seen["prior_means"]
    assert prior.shape == (20,) and prior.min() == 0.0 and prior.max() == 1.0
    # Higher = safer to remove: the smallest incoming weights.
    norms = torch.cat([net[0].weight.norm(dim=1), net[2].weight.norm(dim=1)])
    assert np.argmax(prior) == int(norms.argmin())


@pytest.mark.parametrize("policy", ["uniform", "sar", "lucb"])
def test_best_set_policies_prune_and_report_their_pulls(problem, policy):
    net, X, y = problem
    small, report = prune(net, X, y, policy, 0.5, budget=4, random_state=0)
    assert [small[0].out_features, small[2].out_features] == [6, 4]
    stats = report.pulls_per_unit
    assert stats["min"] <= stats["median"] <= stats["max"]
    assert report.total_pulls <= 4 * 20
    frame = report.to_frame()
    assert list(frame["pulls_max"]) == [int(l.pulls.max()) for l in report.layers]
    assert report.summary()["pulls_median"] == stats["median"]
    if policy == "uniform":  # round robin: every unit alike
        assert stats["min"] == stats["max"] == 4
    if policy == "sar":  # the clear units are decided early
        assert stats["max"] > 2 * stats["min"]


def test_a_done_policy_stops_its_bandit(problem):
    net, X, y = problem
    _, report = prune(net, X, y, DoneAfterOneRound(), 0.5, budget=10, random_state=0)
    # One round per layer: an eighth of its units, rounded up.
    assert [int(l.pulls.sum()) for l in report.layers] == [math.ceil(12 / 8), 1]


def test_baselines_report_no_pulls(problem):
    net, X, y = problem
    _, report = prune(net, X, y, "magnitude", 0.5)
    assert report.pulls_per_unit is None
    assert report.to_frame()["pulls_min"].isna().all()


def test_prior_needs_a_policy_that_takes_it(problem):
    net, X, y = problem
    with pytest.raises(ValueError, match="takes_context"):
        prune(net, X, y, NoContext(), 0.5, prior="obs", random_state=0)
    with pytest.raises(
        ValueError, match=r"'prior' parameter of prune must be one of \['magnitude',"
    ):
        prune(net, X, y, "ucb1", 0.5, prior="lstsq")
    with pytest.raises(
        ValueError,
        match=r"'prior_weight' parameter of prune must be an int in the range \[0,",
    ):
        prune(net, X, y, "ucb1", 0.5, prior="obs", prior_weight=0.5)
    with pytest.raises(ValueError, match="pull='set'"):
        prune(net, X, y, "sar", 0.5, pull="set")


def test_a_prior_informs_the_scores(problem):
    net, X, y = problem
    _, plain = prune(net, X, y, "ucb1", 0.5, budget=2, random_state=0)
    _, informed = prune(net, X, y, "ucb1", 0.5, budget=2, prior="obs", random_state=0)
    assert not np.array_equal(plain.layers[0].scores, informed.layers[0].scores)
    # A duck-typed policy still prunes without a prior.
    small, _ = prune(net, X, y, NoContext(), 0.5, budget=1, random_state=0)
    assert small[0].out_features == 6


@pytest.mark.parametrize("policy", ["uniform", "sar", "lucb"])
def test_estimators_accept_the_new_names(policy):
    X, y = load_iris(return_X_y=True)
    clf = BanditPrunedMLPClassifier(
        hidden_layer_sizes=(16,),
        max_iter=20,
        policy=policy,
        budget=3,
        fine_tune_epochs=0,
        random_state=0,
    ).fit(X, y)
    assert clf.pruning_.layers[0].units_after == 8
    assert clf.pruning_.pulls_per_unit["max"] >= 1
    assert clf.predict(X).shape == y.shape
