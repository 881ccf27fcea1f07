"""The layers an ``nn.Sequential`` chain runs, nested chains flattened."""

from torch import nn

__all__ = ["flat_children"]


def flat_children(model, remove_duplicate=True):
    """Named leaf-level children of a (possibly nested) ``nn.Sequential``;
    with ``remove_duplicate=False`` a module listed twice is yielded twice.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)))
    >>> [name for name, _ in flat_children(net)]
    ['0', '1.0', '1.1']
    """
    if remove_duplicate:
        children = model.named_children()
    else:
        children = ((n, m) for n, m in model._modules.items() if m is not None)
    for name, child in children:
        if isinstance(child, nn.Sequential):
            for sub_name, sub in flat_children(child, remove_duplicate):
                yield f"{name}.{sub_name}", sub
        else:
            yield name, child
