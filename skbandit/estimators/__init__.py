"""scikit-learn estimators: train an MLP, prune its neurons with a bandit.

:func:`build_mlp` is the network they train, for code that needs the same
architecture outside an estimator (benchmarks, export).
"""

from ._classifier import BanditPrunedMLPClassifier
from ._refit import candidate_size, smallest_within_tolerance
from ._regressor import BanditPrunedMLPRegressor
from ._training import build_mlp

__all__ = [
    "BanditPrunedMLPClassifier",
    "BanditPrunedMLPRegressor",
    "build_mlp",
    "candidate_size",
    "smallest_within_tolerance",
]
