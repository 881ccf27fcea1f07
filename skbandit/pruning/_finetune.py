"""Fine-tuning a (pruned) torch model: a small, seeded training loop."""

import contextlib
import numbers

import numpy as np
import torch

from .._random import draws_from_global_rng, seeded_global_rng
from ._rewards import resolve_loss

__all__ = ["fine_tune"]


def _as_tensor(data, like, integer_ok):
    """``data`` on ``like``'s device; floating data in ``like``'s dtype."""
    data = data if torch.is_tensor(data) else torch.as_tensor(np.asarray(data))
    data = data.to(like.device)
    if data.is_floating_point():
        return data.to(like.dtype)
    return data if integer_ok else data.to(like.dtype)


def fine_tune(
    model,
    X,
    y,
    loss="cross_entropy",
    epochs=3,
    lr=1e-3,
    batch_size=64,
    weight_decay=0.0,
    random_state=None,
    max_grad_norm=None,
):
    """Train ``model`` in place for a few epochs of Adam(W); return it in eval mode.

    The same loop trains the deep benchmarks' networks and fine-tunes them
    after pruning. The shuffling order and every random operation inside the
    model (dropout) are seeded by ``random_state``.

    The shuffling draws from a generator of its own. Dropout can only draw
    from torch's global generator: when ``model`` may draw from it (it holds
    a dropout-like module, or a module of a class that is neither torch's
    nor skbandit's, whose ``forward`` may draw), the training runs with the
    global generator seeded, holding a process-wide lock that serialises
    such sections across threads, and the caller's generator state (CPU,
    and the model's CUDA device's) is restored afterwards. Other code of the
    caller's that draws from the global generator in another thread at the
    same time would share that stream. A model built of deterministic torch
    layers only trains without touching the global generator.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place.
    X : array-like or torch.Tensor
        Inputs; floating inputs are cast to the model's dtype, integer inputs
        (token ids) are kept as they are.
    y : array-like or torch.Tensor
        Class indices for ``"cross_entropy"``, targets for ``"mse"``.
    loss : {"cross_entropy", "mse"} or callable, default="cross_entropy"
        A callable returns per-sample losses (see
        :func:`~skbandit.pruning.resolve_loss`).
    epochs : int, default=3
        Passes over the data; 0 returns the model unchanged (in eval mode).
    lr : float, default=1e-3
        Learning rate of ``torch.optim.AdamW``.
    batch_size : int, default=64
    weight_decay : float, default=0.0
        Decoupled weight decay of AdamW (0: plain Adam).
    random_state : int or None, default=None
        Seed of the shuffling and of dropout; None draws one from numpy.
    max_grad_norm : float, default=None
        Clip the gradient norm to this value (None: no clipping).

    Returns
    -------
    model : torch.nn.Module
        The same object, in eval mode.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> X = torch.randn(128, 2)
    >>> y = (X[:, 0] > 0).long()
    >>> net = fine_tune(net, X, y, epochs=20, lr=1e-2, random_state=0)
    >>> bool((net(X).argmax(1) == y).float().mean() > 0.9)
    True
    """
    if not (isinstance(epochs, numbers.Integral) and epochs >= 0):
        raise ValueError(f"epochs must be an int >= 0, got {epochs!r}.")
    if not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    if epochs == 0:
        return model.eval()
    param = next(model.parameters())
    X = _as_tensor(X, param, integer_ok=True)
    y = _as_tensor(y, param, integer_ok=True)
    if y.is_floating_point() and loss == "cross_entropy":
        y = y.long()
    loss_fn = resolve_loss(loss)
    if random_state is None:
        random_state = int(np.random.randint(2**31 - 1))
    seed = int(np.random.default_rng(random_state).integers(2**31 - 1))
    order_rng = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    dropout = (
        seeded_global_rng(seed, param.device)
        if draws_from_global_rng(model)
        else contextlib.nullcontext()
    )
    with dropout:
        model.train()
        with torch.enable_grad():
            for _ in range(epochs):
                order = torch.randperm(X.shape[0], generator=order_rng)
                for rows in order.to(X.device).split(batch_size):
                    optimizer.zero_grad(set_to_none=True)
                    value = loss_fn(model(X[rows]), y[rows]).mean()
                    value.backward()
                    if max_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(
                            model.parameters(), max_grad_norm
                        )
                    optimizer.step()
    return model.eval()
