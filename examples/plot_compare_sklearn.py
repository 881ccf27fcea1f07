"""
=====================================================
Compare bandit-pruned MLPs with scikit-learn models
=====================================================

Every estimator runs inside the same ``Pipeline(StandardScaler(), model)`` and
is scored by 5-fold ``cross_val_score`` on scikit-learn's bundled breast-cancer
data. The pruned networks (a bandit, the default greedy OBS and magnitude)
lose half of their hidden neurons; the table
shows what that costs (or gains) in accuracy next to the unpruned network and
scikit-learn's own models, and how many parameters the pruned network keeps.
"""

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbandit import BanditPrunedMLPClassifier

X, y = load_breast_cancer(return_X_y=True)
network = dict(hidden_layer_sizes=(64, 64), max_iter=30, random_state=0)

models = {
    "unpruned MLP (ours)": BanditPrunedMLPClassifier(policy="none", **network),
    "UCB1, 50 % pruned": BanditPrunedMLPClassifier(policy="ucb1", **network),
    "OBS (default), 50 % pruned": BanditPrunedMLPClassifier(**network),
    "magnitude, 50 % pruned": BanditPrunedMLPClassifier(policy="magnitude", **network),
    "LogisticRegression": LogisticRegression(max_iter=1000),
    "RandomForest": RandomForestClassifier(n_estimators=200, random_state=0),
    "sklearn MLPClassifier": MLPClassifier((64, 64), max_iter=300, random_state=0),
}

cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
print(f"{'model':<24} {'accuracy':>16} {'params kept':>12}")
for name, model in models.items():
    result = cross_validate(
        make_pipeline(StandardScaler(), model), X, y, cv=cv, return_estimator=True
    )
    scores = result["test_score"]
    report = getattr(result["estimator"][0][-1], "pruning_", None)
    kept = f"{report.params_after / report.params_before:.2f}" if report else "-"
    print(f"{name:<24} {np.mean(scores):.3f} ± {np.std(scores):.3f} {kept:>12}")
