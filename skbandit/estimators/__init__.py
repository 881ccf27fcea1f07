"""scikit-learn estimators: train an MLP, prune its neurons with a bandit."""

from ._classifier import BanditPrunedMLPClassifier
from ._regressor import BanditPrunedMLPRegressor

__all__ = ["BanditPrunedMLPClassifier", "BanditPrunedMLPRegressor"]
