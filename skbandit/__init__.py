"""skbandit: prune whole hidden neurons of neural networks with multi-armed bandits."""

from ._version import __version__

__all__ = ["__version__"]
