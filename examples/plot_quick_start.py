"""
===========
Quick start
===========

Train a small network on scikit-learn's breast-cancer data, let a UCB1 bandit
remove half of its hidden neurons, and fine-tune what is left. The estimator
is an ordinary scikit-learn classifier, so it sits in a ``Pipeline`` behind a
``StandardScaler``.
"""

# %%
# Fit
# ---
# ``policy="ucb1"`` and ``prune_ratio=0.5``: after training, every hidden
# neuron is an arm; UCB1 spends ``budget=10`` pulls per neuron on average
# (each pull masks one neuron on a minibatch and measures the loss change),
# then the half of each layer with the highest safe-removal reward is removed.

import matplotlib.pyplot as plt
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbandit import BanditPrunedMLPClassifier

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

clf = make_pipeline(
    StandardScaler(),
    BanditPrunedMLPClassifier(
        (64, 64),
        policy="ucb1",
        prune_ratio=0.5,
        max_iter=30,
        batch_size=128,
        fine_tune_epochs=5,
        random_state=0,
    ),
)
clf.fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# What was removed
# ----------------
# ``pruning_`` records the pruning: per layer the units before and after, the
# removed indices, the scores and pulls; the loss before and after removal and
# after fine-tuning; parameter counts and times. ``module_`` is the compact
# torch network that ``predict`` runs.

net = clf[-1]
report = net.pruning_
for layer in report.layers:
    print(f"layer {layer.name}: {layer.units_before} -> {layer.units_after} units")
print(f"parameters: {report.params_before} -> {report.params_after}")
print(
    f"training loss: {report.loss_before:.4f} before, {report.loss_after:.4f} "
    f"after removal, {report.loss_after_fine_tune:.4f} after fine-tuning"
)
print(f"{report.total_pulls} pulls in {report.time_scoring:.2f} s")
print(net.module_)

# %%
# The training curve
# ------------------
# ``loss_curve_`` holds the training loss of every epoch of the unpruned
# network (``n_iter_`` of them, as in scikit-learn), ``fine_tune_loss_curve_``
# that of every fine-tuning epoch of the pruned one.

n_train, n_fine = net.n_iter_, net.fine_tune_n_iter_
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, n_train + 1), net.loss_curve_, marker=".", label="training")
ax.plot(
    range(n_train + 1, n_train + n_fine + 1),
    net.fine_tune_loss_curve_,
    marker=".",
    label="fine-tuning (pruned)",
)
ax.plot(
    [n_train + 0.5],
    [report.loss_after],
    "x",
    color="tab:red",
    markersize=9,
    label="right after removal",
)
ax.axvline(n_train + 0.5, color="tab:red", linestyle="--", linewidth=1)
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.set_title("Train, remove half of the neurons, fine-tune")
ax.legend()
fig.tight_layout()
plt.show()
