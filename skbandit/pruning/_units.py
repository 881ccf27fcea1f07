"""Prunable units: which tensors a group of units lives in, and how to find them.

A *unit group* is a set of interchangeable units (the hidden neurons of one
layer, the output channels of one convolution) together with every tensor slice
that belongs to each unit: the rows of the layers that **produce** it (and of a
normalisation layer that rescales it) and the input columns of the layers that
**consume** it. Masking, scoring and physical removal all work on this one
abstraction, so a new layer type only needs a producer/consumer rule, not new
pruning code.
"""

from dataclasses import dataclass

from torch import nn

__all__ = ["UnitGroup", "find_unit_groups", "count_parameters"]

#: Modules that act on every unit independently (elementwise or per-feature
#: affine in eval mode), so they may sit between a producer and its consumer.
_PASS_THROUGH = (
    nn.ReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)
_PRODUCERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class UnitGroup:
    """One layer's worth of prunable units.

    Parameters
    ----------
    name : str
        Name of the module whose outputs are the units (the producer).
    size : int
        Number of units.
    producers : tuple of str
        Module names whose output dimension 0 of every parameter/buffer holds
        one slice per unit (the producing layer and a following batch norm).
    consumers : tuple of str
        Module names that read the units: the mask is applied to their input,
        and physical removal drops their input columns (weight dimension 1).
    feature_dim : int
        Dimension of the consumer's input that indexes the units (``-1`` for
        ``nn.Linear``, ``1`` for convolutions).
    """

    name: str
    size: int
    producers: tuple
    consumers: tuple
    feature_dim: int = -1


def _flat_children(model):
    """Named leaf-level children of a (possibly nested) ``nn.Sequential``."""
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            for sub_name, sub in _flat_children(child):
                yield f"{name}.{sub_name}", sub
        else:
            yield name, child


def find_unit_groups(model):
    """Discover the prunable unit groups of a sequential network.

    A group is a ``Linear`` / ``Conv`` layer followed, possibly through
    activations, dropout and batch normalisation, by another layer of the same
    family that reads all of its outputs. The last layer (the network output)
    is never a group.

    Parameters
    ----------
    model : torch.nn.Sequential
        The network. Other architectures declare their groups explicitly by
        building :class:`UnitGroup` objects.

    Returns
    -------
    groups : list of UnitGroup
        In forward order.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> [(g.name, g.size, g.consumers) for g in find_unit_groups(net)]
    [('0', 8, ('2',))]
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            "find_unit_groups discovers units in an nn.Sequential network; "
            f"got {type(model).__name__}. Declare the groups explicitly with "
            "UnitGroup for other architectures."
        )
    groups, open_group = [], None
    for name, module in _flat_children(model):
        if isinstance(module, _PRODUCERS):
            if open_group is not None and _reads_all(module, open_group):
                groups.append(
                    UnitGroup(
                        name=open_group["producers"][0],
                        size=open_group["size"],
                        producers=tuple(open_group["producers"]),
                        consumers=(name,),
                        feature_dim=-1 if isinstance(module, nn.Linear) else 1,
                    )
                )
            open_group = {
                "producers": [name],
                "size": _n_out(module),
                "kind": type(module),
            }
        elif isinstance(module, _NORMS) and open_group is not None:
            if isinstance(module, nn.LayerNorm):
                # LayerNorm mixes all units of a sample: removing one changes
                # the others, so the layer before it is not prunable.
                open_group = None
            else:
                open_group["producers"].append(name)
        elif not isinstance(module, _PASS_THROUGH):
            open_group = None
    return groups


def _n_out(module):
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _n_in(module):
    return module.in_features if isinstance(module, nn.Linear) else module.in_channels


def _reads_all(consumer, group):
    """Whether ``consumer`` reads the group's units one-to-one (same family)."""
    same_family = isinstance(consumer, nn.Linear) == (group["kind"] is nn.Linear)
    grouped = getattr(consumer, "groups", 1) != 1
    return same_family and not grouped and _n_in(consumer) == group["size"]


def count_parameters(model):
    """Number of parameters of ``model`` (trainable or not).

    Examples
    --------
    >>> from torch import nn
    >>> count_parameters(nn.Linear(4, 3))
    15
    """
    return sum(p.numel() for p in model.parameters())
