"""The unit-group protocol: what every kind of prunable unit group provides.

A unit group is a set of interchangeable units (the neurons of a hidden
layer, the channels of a convolution, the heads of an attention layer, the
coupled channels of a residual sum) and the layers they live in. Masking,
pulling, scoring and removal only talk to a group through this interface, so
they never ask which kind of group they hold. Two kinds implement it:

* :class:`~skbandit.pruning.UnitGroup` (``_units.py``): units laid out by
  slice rules in named producers and consumers (``nn.Sequential`` chains and
  declared groups); its pulls are the batched rank-1 updates of
  ``_pulls.py`` and its removal the slicing of ``_surgery.py``.
* :class:`~skbandit.pruning.GraphGroup` (``_graph.py``): coupled units found
  by Torch-Pruning's dependency graph; pulls on replicated batches, removal
  by the graph.

A new kind subclasses :class:`BaseUnitGroup` and implements its abstract
members; nothing else in the package changes.
"""

import dataclasses
from abc import ABC, abstractmethod

__all__ = ["BaseUnitGroup"]


class BaseUnitGroup(ABC):
    """The interface of a group of prunable units (see the module docstring).

    Subclasses are frozen dataclasses with at least the fields ``name``
    (str: the layer whose outputs are the units, as reports name it) and
    ``size`` (int: the number of units), and provide the attributes below
    (as fields or properties).

    Attributes
    ----------
    producers : tuple of str
        Modules whose outputs hold the units (their rows are removed).
    consumers : tuple of str
        Modules that read the units (their input features are removed; masks
        act on their inputs).
    unit_width : int or None
        Consecutive features one unit spans in every consumer's input, or
        None when consumers read a unit as different numbers of features.
    producer_width, producer_chunks : int
        How a unit's rows are laid out in the first producer (see
        :func:`~skbandit.pruning.unit_weights`).

    Examples
    --------
    Callers hold any kind of group through this interface:

    >>> from torch import nn
    >>> from skbandit.pruning import BaseUnitGroup, find_unit_groups
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> (group,) = find_unit_groups(net)
    >>> isinstance(group, BaseUnitGroup), group.consumers
    (True, ('2',))
    >>> group.resized(3).size
    3
    """

    @abstractmethod
    def check(self, model):
        """Raise ``ValueError`` unless the group fits the layers of ``model``."""

    def check_compensation(self, compensate):
        """Raise ``ValueError`` before any scoring when removal cannot apply
        ``compensate`` to this group (nothing to check by default)."""

    @abstractmethod
    def unit_view(self, x):
        """The first consumer's input ``x`` as ``(samples, units, rest)``."""

    @abstractmethod
    def mask_hooks(self, model, keep, fill=None):
        """Register the hooks that mask units where the consumers read them.

        ``keep`` is ``(size,)`` (1 keeps a unit, 0 masks it) and ``fill``
        what a masked unit reads as (default 0). Returns handles with a
        ``remove()`` method, removed when masking ends.
        """

    @abstractmethod
    def evaluate_arms(self, model, arms, X, y, metric, fills=None, tr=None, refit=None):
        """Mean ``metric`` with each arm masked (or refit-removed) alone.

        The group picks its strategy (batched rank-1 updates, replicated
        batches, the naive loop); see
        :func:`~skbandit.pruning.evaluate_arms` for the parameters.
        """

    def company_batched(self, tr):
        """Whether company pulls on this group run batched on trace ``tr``
        (see :func:`~skbandit.pruning.evaluate_company`); False by default."""
        return False

    @abstractmethod
    def remove(self, original, pruned, removed, compensate, X, ridge):
        """Remove units ``removed`` from ``pruned`` in place, with the
        compensation ``compensate`` computed on ``X`` (``original``: the
        model before this call of :func:`~skbandit.pruning.remove_units`)."""

    @abstractmethod
    def qualified(self, prefix):
        """The group with every module name prefixed by ``prefix`` (the
        model wrapped by an input adapter)."""

    def resized(self, size):
        """The group after removal left ``size`` units."""
        return dataclasses.replace(self, size=size)
