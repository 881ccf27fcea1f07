"""Checks and conversions the estimators' ``fit`` uses (small, pure helpers)."""

import numpy as np
import torch

from ._training import ACTIVATIONS

__all__ = [
    "check_device",
    "check_warm_start",
    "check_warm_start_network",
    "layers_as_numpy",
    "pruning_line",
    "varying",
]


def check_device(device):
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={device!r} is not a torch device: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r}: CUDA is not available in this torch build; "
            "use device='cpu'."
        )


def check_warm_start(previous, n_features, n_outputs):
    if previous is None:
        return
    layers = [m for m in previous if isinstance(m, torch.nn.Linear)]
    if (layers[0].in_features, layers[-1].out_features) != (n_features, n_outputs):
        raise ValueError(
            "warm_start needs data of the previous fit's shape: "
            f"{layers[0].in_features} features and {layers[-1].out_features} "
            f"outputs, got {n_features} and {n_outputs}. Use warm_start=False."
        )


def check_warm_start_network(previous, sizes, hidden_layer_sizes, activation):
    """A warm start continues the previous network: refuse parameters that
    describe another one (training would silently keep the old one)."""
    if previous is None:
        return
    layers = [m for m in previous if isinstance(m, torch.nn.Linear)]
    fitted_sizes = tuple(m.out_features for m in layers[:-1])
    if tuple(sizes) != fitted_sizes:
        raise ValueError(
            f"hidden_layer_sizes={hidden_layer_sizes!r} differs from the previous "
            f"fit's {fitted_sizes}: warm_start continues that network. Use "
            "warm_start=False to train the new architecture."
        )
    names = {cls: name for name, cls in ACTIVATIONS.items()}
    fitted_activation = names.get(type(previous[1]))
    if activation != fitted_activation:
        raise ValueError(
            f"activation={activation!r} differs from the previous fit's "
            f"{fitted_activation!r}: warm_start continues that network. Use "
            "warm_start=False to train with the new activation."
        )


def layers_as_numpy(module):
    """``coefs_``, ``intercepts_`` in scikit-learn's layout: ``coefs_[i]`` of
    shape ``(n_in, n_out)``."""
    layers = [m for m in module if isinstance(m, torch.nn.Linear)]
    coefs = [m.weight.detach().cpu().numpy().T.copy() for m in layers]
    intercepts = [m.bias.detach().cpu().numpy().copy() for m in layers]
    return coefs, intercepts


def pruning_line(report):
    """``ucb1 64→32 / 64→32 units, 640 pulls, loss 0.3100→0.3300``."""
    if not report.layers:
        return f"{report.method}, nothing removed"
    units = " / ".join(f"{l.units_before}→{l.units_after}" for l in report.layers)
    return (
        f"{report.method} {units} units, {report.total_pulls} pulls, "
        f"loss {report.loss_before:.4f}→{report.loss_after:.4f}"
    )


def varying(weights):
    """Whether sample weights differ from row to row (None: no weights).
    Equal weights are treated as none, so they give exactly what no weights
    give."""
    return weights is not None and np.ptp(weights) > 0
