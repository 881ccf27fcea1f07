"""Masking units where their consumers read them (the reference for everything).

:func:`masked` replaces units by a fill value (each group registers its own
hooks, :meth:`BaseUnitGroup.mask_hooks`); :func:`refitted` removes them with
the least-squares compensation of their consumer.
"""

from contextlib import contextmanager

__all__ = ["masked", "refitted"]


@contextmanager
def masked(model, masks, fills=None):
    """Temporarily mask units of ``model``.

    Inside the ``with`` block each consumer of a group sees the masked units
    replaced by ``0`` (or by ``fills[group]``), exactly what their removal
    would do before compensation.

    Parameters
    ----------
    model : torch.nn.Module
    masks : dict of {UnitGroup or GraphGroup: tensor of shape (group.size,)}
        ``1`` keeps a unit, ``0`` masks it.
    fills : dict of {UnitGroup: tensor of shape (group.size,)}, default=None
        Value a masked unit is replaced with (e.g. its mean activation); a
        unit spanning several features (``unit_width > 1``) has the same
        value in all of them.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skbandit.pruning import find_unit_groups
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> (group,) = find_unit_groups(net)
    >>> with masked(net, {group: torch.zeros(3)}):
    ...     out = net(torch.ones(1, 2))
    >>> torch.allclose(out, net[2].bias)
    True
    """
    fills = fills or {}
    handles = []
    try:
        for group, keep in masks.items():
            handles.extend(group.mask_hooks(model, keep, fills.get(group)))
        yield model
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def refitted(model, refits, removed):
    """Temporarily remove units *with* least-squares compensation.

    Inside the ``with`` block each listed group's consumer outputs the refit
    :math:`A \\beta'` without the removed units (see
    :meth:`~skbandit.pruning.Refit.without`), computed from the input it
    receives: what ``remove_units(..., compensate="lstsq")`` produces, without
    copying the model.

    Parameters
    ----------
    model : torch.nn.Module
    refits : dict of {UnitGroup: Refit}
        The refit of each group's (``Linear``) consumer on all its inputs.
    removed : dict of {UnitGroup: array-like of int}
        Units removed per group (a group absent from it is left alone).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skbandit.pruning import consumer_refits, find_unit_groups, remove_units
    >>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> X = torch.randn(30, 2)
    >>> groups = find_unit_groups(net)
    >>> (refit,) = consumer_refits(net, groups, X)
    >>> with refitted(net, {groups[0]: refit}, {groups[0]: [1, 2]}):
    ...     out = net(X)
    >>> small = remove_units(net, groups, [[1, 2]], compensate="lstsq", X=X)
    >>> torch.allclose(out, small(X), atol=1e-5)
    True
    """
    handles = []
    try:
        for group, units in removed.items():
            partial = refits[group].without(units)

            def hook(module, args, output, partial=partial):
                h = args[0]
                out = partial.pre_activation(h.reshape(-1, h.shape[-1]))
                return out.to(output.dtype).view(output.shape)

            module = model.get_submodule(group.consumers[0])
            handles.append(module.register_forward_hook(hook))
        yield model
    finally:
        for handle in handles:
            handle.remove()
