"""Convolutions read as matrix products: which ones, and their im2col.

A plain convolution is a linear map of its zero-padded input patches, so
the batched pulls and the least-squares compensation can treat it as a
``Linear`` layer over :func:`unfold`'s columns.
"""

import torch.nn.functional as F
from torch import nn

__all__ = ["is_plain_conv", "unfold"]

_CONV = (nn.Conv1d, nn.Conv2d)


def is_plain_conv(module):
    """A 1d/2d convolution that is a linear map of its zero-padded patches."""
    return (
        type(module) in _CONV
        and module.groups == 1
        and module.padding_mode == "zeros"
        and isinstance(module.padding, tuple)
    )


def unfold(h, conv):
    """im2col of a 1d or 2d input as ``conv`` sees it: (batch, C * k, L)."""
    if h.dim() == 3:  # Conv1d: treat as a 2d image of height 1
        return F.unfold(
            h.unsqueeze(2),
            (1, *conv.kernel_size),
            dilation=(1, *conv.dilation),
            padding=(0, *conv.padding),
            stride=(1, *conv.stride),
        )
    return F.unfold(h, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
