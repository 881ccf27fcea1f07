"""
=====================================
Choosing the size of a pruned network
=====================================

"The smallest network that keeps its accuracy": with ``prune_ratio="auto"``
one fit trains the network, prunes it in nested steps (each step removes a
fifth of the remaining neurons of the previous step's network) down to one
neuron per layer, scores every step on held-out validation rows, and keeps
the smallest network whose validation accuracy is at most
``max_score_drop`` below the best on the path (the unpruned network's unless
removal raised it). The whole path is kept as
``path_``.
"""

# %%
# One fit, the whole path
# -----------------------
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skbandit import BanditPrunedMLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

clf = BanditPrunedMLPClassifier(
    (48,),
    policy="obs",  # any policy: a bandit or a baseline
    prune_ratio="auto",
    max_score_drop=0.01,
    validation_fraction=0.2,
    max_iter=20,
    batch_size=64,
    learning_rate_init=1e-2,
    random_state=0,
).fit(X_train, y_train)
print(clf.path_)
print(f"test accuracy of the chosen network: {clf.score(X_test, y_test):.3f}")

# %%
# The path as a table: units per layer, parameters, multiply-accumulates and
# the validation accuracy of every step.
clf.path_.to_frame()[["hidden_units", "params", "mac_ratio", "score", "chosen"]]

# %%
# The path as a plot: the shaded band is the tolerance, the star the chosen
# network (the smallest step inside the band). Steps are nested, so the
# curve usually falls as neurons go; a step back into the band after
# leaving it would be chosen, since the rule keeps the smallest network
# within the tolerance.
ax = clf.path_.plot()
ax.set_title("digits: validation accuracy along the pruning path")
