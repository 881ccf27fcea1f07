"""scikit-learn estimators: train an MLP, prune its neurons with a bandit.

:func:`build_mlp` is the network they train, for code that needs the same
architecture outside an estimator (benchmarks, export); ``training_cache``
holds the trained networks of this process's recent fits (see the user
guide's "Searching over pruning settings").
"""

from ._classifier import BanditPrunedMLPClassifier
from ._refit import candidate_size, smallest_within_tolerance
from ._regressor import BanditPrunedMLPRegressor
from ._training import build_mlp, training_cache

__all__ = [
    "BanditPrunedMLPClassifier",
    "BanditPrunedMLPRegressor",
    "build_mlp",
    "candidate_size",
    "smallest_within_tolerance",
    "training_cache",
]
