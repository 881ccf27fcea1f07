r"""Least-squares refits of a consumer and their optimal-brain-surgeon downdates.

A ``Linear`` consumer computes ``Z = A [W^T; b]`` from its input ``H`` (``A =
[H, 1]``, one row per sample). Removing unit ``j`` and refitting the consumer
by ridge regression on the kept units (``compensate="lstsq"``) is a quadratic
problem with Hessian ``G = A^T A + Lambda`` (``Lambda`` the ridge penalty on
the weights, none on the bias). Constraining coefficient ``j`` to zero in it
has a closed form, the structured optimal brain surgeon [Hassibi1993]_:

.. math::

    \beta' = \beta - \frac{G^{-1} e_j\, \beta_j^T}{[G^{-1}]_{jj}}, \qquad
    \Delta\text{RSS}_j = \frac{\lVert \beta_j \rVert^2}{[G^{-1}]_{jj}},

with :math:`\beta = G^{-1} A^T Z` the refit on all units and :math:`\beta_j`
its row ``j`` (one coefficient per consumer output). The consumer's
pre-activation therefore changes by the rank-1 term

.. math::

    Z' - A\beta = -u_j \beta_j^T, \qquad
    u_j = \frac{A G^{-1} e_j}{[G^{-1}]_{jj}}
        = h_j + \sum_{i \ne j} \frac{[G^{-1}]_{ij}}{[G^{-1}]_{jj}} h_i
          + \frac{[G^{-1}]_{bj}}{[G^{-1}]_{jj}},

the zero-fill change ``-h_j w_j^T`` plus the correction the refit spreads on
the other inputs. This is what compensated pulls evaluate (batched, see
:func:`~skbandit.pruning.evaluate_arms`; the reference is
:func:`~skbandit.pruning.refitted`) and what the ``"obs"`` baseline
minimises greedily, downdating :math:`G^{-1}` and :math:`\beta` after each
removal instead of re-inverting.

The Gram matrices are accumulated over row chunks of the data, so memory does
not grow with the number of rows.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._surgery import RIDGE, _consumer_inputs_raw, _consumer_outputs

__all__ = [
    "RIDGE",
    "Refit",
    "consumer_gram",
    "solve_refit",
    "consumer_refits",
    "greedy_obs_order",
]

#: Rows of the data per forward pass when accumulating Gram matrices.
_CHUNK_ROWS = 4096


@dataclass
class Refit:
    """A ridge refit of one consumer on all of its inputs.

    Attributes
    ----------
    gram_inv : torch.Tensor of shape (p + 1, p + 1), float64
        :math:`G^{-1}`, the last row/column belonging to the bias.
    coef : torch.Tensor of shape (p + 1, n_outputs), float64
        :math:`\\beta = G^{-1} A^T Z`: the weights (transposed) then the bias.
    """

    gram_inv: torch.Tensor
    coef: torch.Tensor

    def removal_costs(self):
        """:math:`\\Delta\\text{RSS}_j` of removing each unit alone (no bias)."""
        diag = torch.diagonal(self.gram_inv)[:-1]
        return self.coef[:-1].square().sum(1) / diag

    def pre_activation(self, H):
        """The refit consumer's output on inputs ``H`` (all units kept)."""
        return _with_bias(H) @ self.coef

    def direction(self, H, units):
        """:math:`u_j` of each unit on inputs ``H``: shape (rows, len(units))."""
        columns = self.gram_inv[:, units]
        return (_with_bias(H) @ columns) / torch.diagonal(self.gram_inv)[units]

    def without(self, units):
        """The refit with the coefficients of ``units`` constrained to zero.

        The block form of the downdate, :math:`\\beta' = \\beta - G^{-1}_{:,S}
        (G^{-1}_{SS})^{-1} \\beta_S`; ``gram_inv`` is left as is (it is only
        needed for further downdates, see :func:`greedy_obs_order`).
        """
        units = torch.as_tensor(units, dtype=torch.long, device=self.coef.device)
        block = self.gram_inv[units][:, units]
        shift = self.gram_inv[:, units] @ torch.linalg.solve(block, self.coef[units])
        coef = self.coef - shift
        coef[units] = 0.0  # exactly zero, not rounding noise
        return Refit(self.gram_inv, coef)


def _with_bias(H):
    H = H.double()
    return torch.cat([H, H.new_ones(H.shape[0], 1)], dim=1)


@torch.no_grad()
def consumer_gram(model, name, X, target_model=None, ridge=RIDGE):
    """Ridge Gram matrix :math:`G` and :math:`A^T Z` of a ``Linear`` consumer.

    Parameters
    ----------
    model : torch.nn.Module
        The network whose consumer input ``H`` is read.
    name : str
        The consumer (an ``nn.Linear`` reading ``(rows, p)`` inputs).
    X : torch.Tensor
        The data, run through the models in chunks of rows.
    target_model : torch.nn.Module, default=None
        The network whose consumer output ``Z`` the refit reproduces (the
        unpruned one when earlier layers were already pruned); ``model``
        if None.
    ridge : float, default=RIDGE
        Penalty on the weights (not the bias), times the number of rows.

    Returns
    -------
    gram : torch.Tensor of shape (p + 1, p + 1), float64
    cross : torch.Tensor of shape (p + 1, n_outputs), float64
    """
    target_model = model if target_model is None else target_model
    gram = cross = None
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        xb = X[start : start + _CHUNK_ROWS]
        H = _consumer_inputs_raw(model, name, xb)
        Z = _consumer_outputs(target_model, [name], xb)[name]
        A = _with_bias(H.reshape(-1, H.shape[-1]))
        Z = Z.reshape(-1, Z.shape[-1]).double()
        gram = A.T @ A if gram is None else gram.addmm_(A.T, A)
        cross = A.T @ Z if cross is None else cross.addmm_(A.T, Z)
    penalty = torch.full((gram.shape[0],), ridge * X.shape[0], dtype=gram.dtype)
    penalty[-1] = 0.0
    return gram + torch.diag(penalty.to(gram.device)), cross


def solve_refit(gram, cross):
    """The :class:`Refit` of a Gram system (pseudo-inverse if singular)."""
    gram_inv, info = torch.linalg.inv_ex(gram)
    if info.any() or not torch.isfinite(gram_inv).all():
        gram_inv = torch.linalg.pinv(gram, hermitian=True)
    return Refit(gram_inv, gram_inv @ cross)


def _refittable(model, group):
    """Whether a group's units are read by one ``Linear`` consumer, one each."""
    if len(group.consumers) != 1 or group.unit_width != 1:
        return False
    return isinstance(model.get_submodule(group.consumers[0]), nn.Linear)


def consumer_refits(model, groups, X, ridge=RIDGE):
    """A :class:`Refit` of each group's consumer on ``X`` (``None`` where the
    consumer is not a ``Linear`` layer reading one feature per unit)."""
    return [
        solve_refit(*consumer_gram(model, g.consumers[0], X, ridge=ridge))
        if _refittable(model, g)
        else None
        for g in groups
    ]


def greedy_obs_order(refit, n_steps=None):
    """Units in the order greedy OBS removes them, each the cheapest at its turn.

    At every step the unit with the smallest :math:`\\Delta\\text{RSS}_j`
    among those left is removed, and :math:`G^{-1}` and :math:`\\beta` are
    downdated (rank-1, no re-inversion):
    :math:`G^{-1} \\leftarrow G^{-1} - G^{-1} e_j e_j^T G^{-1} / [G^{-1}]_{jj}`.

    Parameters
    ----------
    refit : Refit
    n_steps : int, default=None
        Removals to run; all units but one if None.

    Returns
    -------
    order : ndarray of int
        Removed units, first removed first.
    costs : ndarray of float
        :math:`\\Delta\\text{RSS}` of each removal when it was made.
    """
    gram_inv, coef = refit.gram_inv.clone(), refit.coef.clone()
    p = coef.shape[0] - 1
    n_steps = p - 1 if n_steps is None else n_steps
    alive = torch.ones(p, dtype=torch.bool, device=coef.device)
    order, costs = [], []
    for _ in range(n_steps):
        cost = coef[:-1].square().sum(1) / torch.diagonal(gram_inv)[:-1]
        cost = torch.where(alive, cost, torch.full_like(cost, torch.inf))
        j = int(torch.argmin(cost))
        column = gram_inv[:, j].clone()
        coef -= torch.outer(column, coef[j]) / column[j]
        gram_inv -= torch.outer(column, column) / column[j]
        alive[j] = False
        order.append(j)
        costs.append(float(cost[j]))
    return np.asarray(order, dtype=int), np.asarray(costs)
