"""
=======================
Write your own policy
=======================

A policy is a small numpy class that decides which neurons (arms) to measure
next and how to rank them for removal. Subclass
:class:`skbandit.policies.BasePolicy`, implement ``_select(k)`` and
``_estimates()``, and pass an instance as ``policy=`` — to the estimators,
to :func:`skbandit.pruning.prune`, or in a ``GridSearchCV`` grid.

This example writes a *round-robin* (pure exploration) policy: it always
measures the least-measured neurons, so every neuron gets the same number of
pulls, and it ranks neurons by their mean reward. Then it compares the
policy with UCB1.
"""

# %%
# The policy
# ----------
# ``BasePolicy`` validates the arguments and keeps the shared state:
# ``n_arms_``, ``rng_`` (a seeded ``numpy.random.Generator``), ``counts_``
# (pulls per arm), ``sums_`` (reward sums) and ``n_rounds_``. Hyper-parameters
# are the arguments of ``__init__``, stored under the same names, so
# ``get_params``/``set_params`` and scikit-learn's ``clone`` work.
# ``_check_params`` is called by ``reset``.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbandit import BanditPrunedMLPClassifier
from skbandit.policies import BasePolicy


class RoundRobin(BasePolicy):
    """Pull the least-pulled arms; rank arms by their mean reward.

    Parameters
    ----------
    initial_value : float, default=0.5
        Estimate of an arm never pulled.
    """

    def __init__(self, initial_value=0.5):
        self.initial_value = initial_value

    def _check_params(self):
        if not 0 <= self.initial_value <= 1:
            raise ValueError(
                f"initial_value must be in [0, 1], got {self.initial_value}"
            )

    def _select(self, k):
        # Fewest pulls first; ties in a random order, from the seeded generator.
        order = np.lexsort((self.rng_.random(self.n_arms_), self.counts_))
        return order[:k]

    def _estimates(self):
        means = np.full(self.n_arms_, float(self.initial_value))
        pulled = self.counts_ > 0
        means[pulled] = self.sums_[pulled] / self.counts_[pulled]
        return means


# %%
# On its own
# ----------
# Policies know nothing about networks: any bandit problem with rewards in
# ``[0, 1]`` works. Three rounds of two pulls on four arms:

policy = RoundRobin().reset(n_arms=4, rng=0)
for _ in range(3):
    arms = policy.select(2)
    policy.update(arms, rewards=np.array([0.9, 0.1, 0.6, 0.3])[arms])
    print("pulled", arms, "counts", policy.counts_)
print("estimates", policy.estimates_)

# %%
# In the estimator
# ----------------
# The estimator never mutates the object it is given: each fit builds a fresh
# policy from ``get_params()``.

X, y = load_breast_cancer(return_X_y=True)
settings = dict(
    hidden_layer_sizes=(48,),
    prune_ratio=0.75,
    budget=10,
    max_iter=20,
    batch_size=128,
    fine_tune_epochs=0,
    random_state=0,
)
pulls, scores = {}, {}
for name, policy in [("round robin", RoundRobin()), ("UCB1", "ucb1")]:
    model = make_pipeline(
        StandardScaler(), BanditPrunedMLPClassifier(policy=policy, **settings)
    )
    scores[name] = cross_val_score(model, X, y, cv=3)
    pulls[name] = model.fit(X, y)[-1].pruning_.layers[0].pulls
    print(
        f"{name:<12} CV accuracy {scores[name].mean():.3f} ± {scores[name].std():.3f}, "
        f"pulls per neuron {pulls[name].min()}-{pulls[name].max()}"
    )

# %%
# Where the pulls went
# --------------------
# Round robin gives every neuron the same 10 pulls; UCB1 gives more to the
# neurons that look safe to remove, whose estimates decide the removal.

fig, ax = plt.subplots(figsize=(6, 3.5))
bins = np.arange(0, max(p.max() for p in pulls.values()) + 2) - 0.5
for name, counts in pulls.items():
    ax.hist(counts, bins=bins, alpha=0.6, label=name)
ax.set_xlabel("pulls of a neuron")
ax.set_ylabel("neurons")
ax.set_title("Budget 10 pulls per neuron, 48 neurons")
ax.legend()
fig.tight_layout()
plt.show()
