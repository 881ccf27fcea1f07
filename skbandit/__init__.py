"""skbandit: prune whole hidden neurons of neural networks with multi-armed bandits.

The estimators :class:`BanditPrunedMLPClassifier` and
:class:`BanditPrunedMLPRegressor` train an MLP and remove the hidden neurons a
bandit policy finds safest to remove; :mod:`skbandit.policies` holds the
policies and :mod:`skbandit.pruning` prunes any torch model.

The estimators are imported on first use, so that ``import
skbandit.policies`` (numpy only) does not load torch.
"""

from ._lazy import attach
from ._version import __version__

__getattr__, __dir__, _names = attach(
    __name__,
    {
        ".estimators": (
            "BanditPrunedMLPClassifier",
            "BanditPrunedMLPRegressor",
            "smallest_within_tolerance",
        )
    },
)
__all__ = [*_names, "__version__"]
