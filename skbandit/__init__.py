"""skbandit: prune whole hidden neurons of neural networks with multi-armed bandits.

The estimators :class:`BanditPrunedMLPClassifier` and
:class:`BanditPrunedMLPRegressor` train an MLP and remove the hidden neurons a
bandit policy finds safest to remove; :mod:`skbandit.policies` holds the
policies and :mod:`skbandit.pruning` prunes any torch model.
"""

from ._version import __version__
from .estimators import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor

__all__ = ["BanditPrunedMLPClassifier", "BanditPrunedMLPRegressor", "__version__"]
