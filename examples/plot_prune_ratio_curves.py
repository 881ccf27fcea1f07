"""
=========================================
Accuracy against prune ratio, per policy
=========================================

How much of a network can be removed before it breaks, and does the choice of
neurons matter? We train one network on the 8x8 digits with
:class:`~skbandit.BanditPrunedMLPClassifier` (``policy="none"``: no pruning),
then prune copies of it with :func:`skbandit.pruning.prune` at growing
ratios — with bandit policies and with the baselines — and measure test
accuracy *without* fine-tuning, so the curves show only which neurons each
method chose. Stochastic methods are repeated over three seeds (mean and
range shown).
"""

# %%
# Train one network
# -----------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skbandit import BanditPrunedMLPClassifier
from skbandit.pruning import prune

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

net = BanditPrunedMLPClassifier(
    (64,), policy="none", max_iter=20, batch_size=64, random_state=0
).fit(X_train, y_train)
print(f"unpruned test accuracy: {net.score(X_test, y_test):.3f}")
model = net.module_  # the trained torch network, 64-64-10

X_test_t = torch.as_tensor(X_test, dtype=torch.float32)


def accuracy(module):
    with torch.no_grad():
        return (module(X_test_t).argmax(1).numpy() == y_test).mean()


# %%
# Prune at several ratios
# -----------------------
# ``prune`` leaves ``model`` untouched and returns a physically smaller copy.
# The labels passed are the *encoded* classes (here the digits themselves).

ratios = [0.25, 0.5, 0.6, 0.7, 0.8, 0.9]
methods = {
    "ucb1": 3,
    "thompson": 3,
    "exp3": 3,
    "magnitude": 1,  # deterministic: one run
    "activation": 1,
    "random": 3,
}
curves = {}
for method, n_seeds in methods.items():
    runs = [
        [
            accuracy(
                prune(
                    model,
                    X_train,
                    y_train,
                    policy=method,
                    prune_ratio=ratio,
                    budget=10,
                    random_state=seed,
                )[0]
            )
            for ratio in ratios
        ]
        for seed in range(n_seeds)
    ]
    curves[method] = np.array(runs)
    print(f"{method:<11}", " ".join(f"{a:.3f}" for a in curves[method].mean(0)))

# %%
# The curves
# ----------

fig, ax = plt.subplots(figsize=(6.5, 4))
for method, runs in curves.items():
    style = "-" if method in ("ucb1", "thompson", "exp3") else "--"
    (line,) = ax.plot(ratios, runs.mean(0), style, marker="o", label=method)
    if len(runs) > 1:
        ax.fill_between(
            ratios, runs.min(0), runs.max(0), alpha=0.15, color=line.get_color()
        )
ax.axhline(accuracy(model), color="k", linewidth=1, label="unpruned")
ax.set_xlabel("prune_ratio (share of the 64 hidden neurons removed)")
ax.set_ylabel("test accuracy (no fine-tuning)")
ax.set_title("Digits, 64 hidden neurons")
ax.legend(ncol=2, fontsize="small")
fig.tight_layout()
plt.show()

# %%
# Reading the curves: each bandit estimates how much removing a neuron *alone*
# costs (its safe-removal reward) and removes the neurons that cost least.
# At small ratios that is what matters; at large ratios many neurons go at
# once, and their interactions, which no one-neuron-at-a-time score sees,
# weigh more — compare the methods there before trusting any of them. The
# estimators fine-tune after pruning (``fine_tune_epochs``), which this example
# leaves out on purpose; choose the ratio by cross-validation
# (see :ref:`sphx_glr_auto_examples_plot_grid_search.py`).
