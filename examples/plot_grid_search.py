"""
================================================
GridSearchCV over the policy and the prune ratio
================================================

Every pruning method — the bandit policies, the baselines and ``"none"`` — is a
value of the ``policy`` parameter, and the share of neurons removed is
``prune_ratio``. So one ``GridSearchCV`` over a ``Pipeline`` compares methods
and ratios by cross-validation, and ``cv_results_`` shows the whole grid as a
heat map.

The network is small and trained briefly so that the 45 fits of this example
take seconds; use more epochs and folds on real problems.
"""

# %%
# The search
# ----------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skbandit import BanditPrunedMLPClassifier

X, y = load_breast_cancer(return_X_y=True)

pipe = Pipeline(
    [
        ("scale", StandardScaler()),
        (
            "net",
            BanditPrunedMLPClassifier(
                (32,),
                max_iter=15,
                batch_size=128,
                fine_tune_epochs=0,  # show the effect of the removal alone
                budget=5,
                random_state=0,
            ),
        ),
    ]
)
grid = {
    "net__policy": ["ucb1", "thompson", "exp3", "magnitude", "random"],
    "net__prune_ratio": [0.5, 0.75, 0.9],
}
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
search = GridSearchCV(pipe, grid, cv=cv, n_jobs=1).fit(X, y)
print("best:", search.best_params_, f"accuracy {search.best_score_:.3f}")

# %%
# The results as a heat map
# -------------------------
# Mean cross-validated accuracy of every (policy, prune ratio) pair. Without
# fine-tuning, the differences come only from *which* neurons each method
# removes.

results = pd.DataFrame(search.cv_results_)
table = results.pivot(
    index="param_net__policy",
    columns="param_net__prune_ratio",
    values="mean_test_score",
).loc[grid["net__policy"]]
print(table.round(3))

fig, ax = plt.subplots(figsize=(5.5, 4))
image = ax.imshow(table.to_numpy(), cmap="viridis", aspect="auto")
ax.set_xticks(np.arange(table.shape[1]), [f"{r:.2f}" for r in table.columns])
ax.set_yticks(np.arange(table.shape[0]), table.index)
ax.set_xlabel("prune_ratio")
ax.set_ylabel("policy")
for i in range(table.shape[0]):
    for j in range(table.shape[1]):
        ax.text(j, i, f"{table.iat[i, j]:.3f}", ha="center", va="center", color="w")
fig.colorbar(image, ax=ax, label="mean CV accuracy")
ax.set_title("3-fold CV accuracy, 32 hidden neurons")
fig.tight_layout()
plt.show()
