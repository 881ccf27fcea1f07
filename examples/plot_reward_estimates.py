"""
=========================================
Bandit reward estimates, neuron by neuron
=========================================

After ``fit``, ``pruning_.layers[i]`` holds what the bandit learned about each
neuron of hidden layer ``i``: ``scores`` (the policy's ``estimates_``, the
estimated safe-removal reward; higher = safer to remove), ``pulls`` (how
often the neuron was masked and measured) and ``removed`` (which neurons
went). Here we plot them for UCB1 and, for contrast, Hedge, which measures
every neuron in every round. Both get ``budget=30`` pulls per neuron on
average.
"""

# %%
# Fit two pruned networks
# -----------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from skbandit import BanditPrunedMLPClassifier

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)

reports = {}
for policy in ["ucb1", "hedge"]:
    clf = BanditPrunedMLPClassifier(
        (48,),
        policy=policy,
        prune_ratio=0.5,
        budget=30,
        max_iter=30,
        batch_size=128,
        random_state=0,
    ).fit(X, y)
    reports[policy] = clf.pruning_
    layer = clf.pruning_.layers[0]
    print(
        f"{policy}: {layer.units_before} -> {layer.units_after} neurons, "
        f"{layer.pulls.sum()} pulls (min {layer.pulls.min()}, "
        f"max {layer.pulls.max()} per neuron)"
    )

# %%
# Scores and pulls per neuron
# ---------------------------
# Bars are the estimated safe-removal reward of each neuron (0.5 = removing
# it alone leaves the loss unchanged, above 0.5 = lowers it); the removed half
# is highlighted. Below, the number of pulls each neuron received. Both
# policies train the same network (same ``random_state``), so the neurons are
# the same. UCB1 spends more pulls on the neurons whose upper confidence
# bound is high — the candidates for removal, so its pulls follow its
# estimates — while Hedge spreads them evenly.

fig, axes = plt.subplots(
    2, 2, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
)
for col, (policy, report) in enumerate(reports.items()):
    layer = report.layers[0]
    units = np.arange(layer.units_before)
    removed = np.isin(units, layer.removed)
    colors = np.where(removed, "tab:red", "tab:blue")
    ax = axes[0, col]
    ax.bar(units, layer.scores, color=colors)
    ax.axhline(0.5, color="k", linewidth=0.8, linestyle=":")
    ax.set_ylim(layer.scores.min() - 0.02, max(0.52, layer.scores.max() + 0.02))
    ax.set_title(f"{policy}: estimated reward (red = removed)")
    ax.set_ylabel("scores")
    axes[1, col].bar(units, layer.pulls, color=colors)
    axes[1, col].set_ylabel("pulls")
    axes[1, col].set_xlabel("hidden neuron")
fig.tight_layout()
plt.show()

# %%
# Do the two policies agree?
# --------------------------
# The removal rule takes the highest scores, so what matters is the ranking.
# Scatter the two policies' scores against each other: the neurons both
# remove are in the top right.

ucb, hedge = (reports[p].layers[0] for p in ("ucb1", "hedge"))
both = np.intersect1d(ucb.removed, hedge.removed)
print(f"neurons removed by both: {len(both)} of {len(ucb.removed)}")
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(
    ucb.scores,
    hedge.scores,
    c=np.isin(np.arange(ucb.units_before), both),
    cmap="coolwarm",
)
ax.set_xlabel("UCB1 estimate")
ax.set_ylabel("Hedge estimate")
ax.set_title("Per-neuron estimates (red: removed by both)")
fig.tight_layout()
plt.show()
