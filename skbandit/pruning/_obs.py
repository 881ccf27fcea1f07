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

A unit that spans several input columns of its consumer (an attention head:
``head_dim`` columns of the output projection, or ``head_dim`` times the query
heads of one key/value head under grouped-query attention) is removed by
constraining its whole column set :math:`Q` to zero, the block form of the
same surgery (ZipLM, SlimGPT):

.. math::

    \Delta\text{RSS}_Q = \operatorname{tr}\bigl(\beta_Q^T
        ([G^{-1}]_{QQ})^{-1} \beta_Q\bigr), \qquad
    \beta' = \beta - G^{-1}_{:Q} ([G^{-1}]_{QQ})^{-1} \beta_Q,

which is the rank-1 formula when :math:`Q = \{j\}` (a :class:`Refit` of
``width`` 1 runs the rank-1 code itself).

The Gram matrices are accumulated over row chunks of the data, so memory does
not grow with the number of rows.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ._compensation import RIDGE, consumer_inputs, consumer_outputs, design
from ._layers import layer_type

__all__ = [
    "RIDGE",
    "Refit",
    "consumer_gram",
    "consumer_refits",
    "greedy_obs_order",
    "refit_width",
    "refittable",
]

#: Rows of the data per forward pass when accumulating Gram matrices.
_CHUNK_ROWS = 4096


@dataclass
class Refit:
    """A ridge refit of one consumer, on all of its inputs or on a subset.

    Attributes
    ----------
    gram : torch.Tensor of shape (p + 1, p + 1), float64
        :math:`G = A^T A + \\Lambda`, the last row/column belonging to the bias.
    cross : torch.Tensor of shape (p + 1, n_outputs), float64
        :math:`A^T Z`.
    gram_inv : torch.Tensor of shape (p + 1, p + 1), float64
        :math:`G^{-1}`; after :meth:`without`, the inverse of the kept block
        (zero rows and columns at the removed units).
    coef : torch.Tensor of shape (p + 1, n_outputs), float64
        :math:`\\beta = G^{-1} A^T Z`: the weights (transposed) then the bias,
        zero at the removed units.
    width : int, default=1
        Consecutive input columns one unit owns: unit ``j`` is columns
        ``j * width:(j + 1) * width`` (an attention head's ``head_dim``
        inputs of the output projection). Unit indices given to
        :meth:`without` and :meth:`removal_costs`' entries are units, not
        columns; the rank-1 terms of the pulls (:meth:`direction`,
        :meth:`company_terms`) need ``width`` 1.

    Examples
    --------
    >>> import torch
    >>> from skbandit.pruning import Refit
    >>> H = torch.tensor([[1.0, 1], [1, -1], [-1, 1], [-1, -1]], dtype=torch.float64)
    >>> Z = 2 * H[:, :1] + 0.5 * H[:, 1:] + 3
    >>> A = torch.cat([H, torch.ones(4, 1, dtype=torch.float64)], 1)
    >>> refit = Refit.from_gram(A.T @ A, A.T @ Z)
    >>> refit.coef.flatten()
    tensor([2.0000, 0.5000, 3.0000], dtype=torch.float64)
    >>> refit.removal_costs()  # ||beta_j||^2 / [G^-1]_jj = beta_j^2 * 4
    tensor([16.,  1.], dtype=torch.float64)
    >>> refit.without([1]).coef.flatten()  # orthogonal inputs: nothing to move
    tensor([2., 0., 3.], dtype=torch.float64)
    """

    gram: torch.Tensor
    cross: torch.Tensor
    gram_inv: torch.Tensor
    coef: torch.Tensor
    width: int = 1
    _plan_cache: dict = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_gram(cls, gram, cross, width=1):
        """The refit on all inputs (pseudo-inverse if ``gram`` is singular),
        ``width`` columns per unit."""
        if (gram.shape[0] - 1) % width:
            raise ValueError(
                f"{gram.shape[0] - 1} input columns are not whole units of "
                f"{width} columns."
            )
        gram_inv, info = torch.linalg.inv_ex(gram)
        if info.any() or not torch.isfinite(gram_inv).all():
            gram_inv = torch.linalg.pinv(gram, hermitian=True)
        return cls(gram, cross, gram_inv, gram_inv @ cross, width)

    @property
    def n_units(self):
        """Units of the refit (input columns / ``width``)."""
        return (self.coef.shape[0] - 1) // self.width

    def columns(self, units):
        """Input columns of ``units``, unit-major: ``(len(units) * width,)``."""
        units = torch.as_tensor(units, dtype=torch.long, device=self.coef.device)
        if self.width == 1:
            return units.flatten()
        offsets = torch.arange(self.width, device=units.device)
        return (units.flatten()[:, None] * self.width + offsets).flatten()

    def removal_costs(self):
        """:math:`\\Delta\\text{RSS}` of removing each unit alone (no bias):
        :math:`\\lVert \\beta_j \\rVert^2 / [G^{-1}]_{jj}`, or with several
        columns per unit the block cost
        :math:`\\operatorname{tr}(\\beta_Q^T ([G^{-1}]_{QQ})^{-1} \\beta_Q)`."""
        if self.width == 1:
            diag = torch.diagonal(self.gram_inv)[:-1]
            return self.coef[:-1].square().sum(1) / diag
        return _block_costs(self.gram_inv, self.coef, self.width)

    def pre_activation(self, H):
        """The refit consumer's output on inputs ``H``."""
        return _with_bias(H) @ self.coef

    def direction(self, H, units):
        """:math:`u_j` of each (kept) unit on inputs ``H``: (rows, len(units))."""
        self._one_column("direction")
        columns = self.gram_inv[:, units]
        return (_with_bias(H) @ columns) / torch.diagonal(self.gram_inv)[units]

    def without(self, units):
        """The refit with the coefficients of ``units`` (kept ones) constrained
        to zero: the block form of the downdate,

        .. math::

            \\beta' = \\beta - G^{-1}_{:S} (G^{-1}_{SS})^{-1} \\beta_S, \\qquad
            {G^{-1}}' = G^{-1} - G^{-1}_{:S} (G^{-1}_{SS})^{-1} G^{-1}_{S:}.
        """
        units = self.columns(units)
        if units.numel() == 0:
            return self
        columns = self.gram_inv[:, units]
        solved = torch.linalg.solve(
            columns[units], torch.cat([self.coef[units], columns.T], 1)
        )
        coef = self.coef - columns @ solved[:, : self.coef.shape[1]]
        gram_inv = self.gram_inv - columns @ solved[:, self.coef.shape[1] :]
        # exactly zero at the removed units, not rounding noise
        coef[units] = 0.0
        gram_inv[units] = 0.0
        gram_inv[:, units] = 0.0
        return Refit(self.gram, self.cross, gram_inv, coef, self.width)

    def company_terms(self, H, arms, plan):
        """Rank-1 terms of removing each arm in the company of ``plan``.

        With :math:`S` = ``plan``, :math:`M = (G^{-1}_{SS})^{-1}` (cached for
        the last plan) and the refit without :math:`S`,
        :math:`\\beta^{(-S)} = \\beta - G^{-1}_{:S} M \\beta_S`:

        * an arm :math:`j \\notin S` is removed on top of :math:`S`: the
          column :math:`c_j = G^{-1}_{:j} - G^{-1}_{:S} M G^{-1}_{Sj}` of the
          downdated inverse gives :math:`u_j = A c_j / c_{jj}`, with row
          :math:`\\beta^{(-S)}_j`;
        * an arm :math:`j \\in S` is restored: since :math:`G^{-1} G = I`,
          :math:`w_j = G_{KK}^{-1} G_{Kj} = e_j - G^{-1}_{:S} M e_{S(j)}`,
          :math:`s_j = G_{jj} - G_{:j}^\\top w_j`,
          :math:`b_j = (A^\\top Z_j - G_{j:} \\beta^{(-S)}) / s_j` and
          :math:`u_j = A w_j - h_j`, with row :math:`b_j` (so that
          ``z - u_j b_j`` adds it back).

        Every term costs :math:`O(p\\,|S|)` per arm besides the products
        with ``H``: no :math:`p \\times p` matrix is formed.

        Returns
        -------
        z : torch.Tensor of shape (rows, n_outputs)
            :math:`A \\beta^{(-S)}`.
        rows : torch.Tensor of shape (p, n_outputs)
            The row each arm's term multiplies (indexed by unit).
        delta : torch.Tensor of shape (len(arms), rows)
            :math:`u_j` per arm: ``z - delta[i] * rows[arms[i]]`` per arm.
        """
        self._one_column("company_terms")
        plan = torch.as_tensor(plan, dtype=torch.long, device=self.coef.device)
        arms = torch.as_tensor(arms, dtype=torch.long, device=self.coef.device)
        columns, M, coef = self._plan_terms(plan)
        A = _with_bias(H)
        rows = coef[:-1].clone()
        delta = A.new_empty(len(arms), A.shape[0])
        position = torch.full(
            (rows.shape[0],), -1, dtype=torch.long, device=plan.device
        )
        position[plan] = torch.arange(len(plan), device=plan.device)
        inside = position[arms] >= 0
        outside = arms[~inside]
        if len(outside):
            c = self.gram_inv[:, outside] - columns @ (
                M @ self.gram_inv[plan[:, None], outside]
            )
            c[plan] = 0.0
            diag = c[outside, torch.arange(len(outside), device=c.device)]
            delta[~inside] = ((A @ c) / diag).T
        restored = arms[inside]
        if len(restored):
            W = -(columns @ M[:, position[restored]])
            W[plan] = 0.0  # w_j lives on the kept inputs
            schur = self.gram[restored, restored] - (self.gram[:, restored] * W).sum(0)
            B = (self.cross[restored] - self.gram[restored] @ coef) / schur[:, None]
            rows[restored] = B
            delta[inside] = (A @ W - A[:, restored]).T
        return A @ coef, rows, delta

    def _plan_terms(self, plan):
        """:math:`G^{-1}_{:S}`, :math:`M = (G^{-1}_{SS})^{-1}` and
        :math:`\\beta^{(-S)}` (zero on :math:`S`) of ``plan``, kept for the
        last plan: plans repeat from one round to the next once the bandit
        has settled, and these are the :math:`O(p\\,|S|^2)` part of a call.
        The cached tensors are shared, never written to."""
        key = plan.cpu().numpy().tobytes()
        if self._plan_cache.get("key") != key:
            columns = self.gram_inv[:, plan]
            block = columns[plan]
            eye = torch.eye(len(plan), dtype=block.dtype, device=block.device)
            M = torch.linalg.solve(block, eye)
            coef = self.coef - columns @ (M @ self.coef[plan])
            coef[plan] = 0.0
            self._plan_cache.update(key=key, terms=(columns, M, coef))
        return self._plan_cache["terms"]

    def _one_column(self, what):
        if self.width != 1:
            raise ValueError(
                f"Refit.{what} is a rank-1 term: it needs one column per "
                f"unit, not {self.width}."
            )


def _block_costs(gram_inv, coef, width, alive=None):
    """:math:`\\operatorname{tr}(\\beta_Q^T ([G^{-1}]_{QQ})^{-1} \\beta_Q)`
    of every unit's column block :math:`Q` (``inf`` where not ``alive``)."""
    n_units = (coef.shape[0] - 1) // width
    blocks = gram_inv[:-1, :-1].reshape(n_units, width, n_units, width)
    diagonal = blocks[torch.arange(n_units), :, torch.arange(n_units)]
    beta = coef[:-1].reshape(n_units, width, -1)
    costs = torch.full((n_units,), torch.inf, dtype=coef.dtype, device=coef.device)
    alive = torch.ones(n_units, dtype=torch.bool) if alive is None else alive
    alive = alive.to(coef.device)
    solved = torch.linalg.solve(diagonal[alive], beta[alive])
    costs[alive] = (beta[alive] * solved).sum((1, 2))
    return costs


def _with_bias(H):
    H = H.double()
    return torch.cat([H, H.new_ones(H.shape[0], 1)], dim=1)


@torch.no_grad()
def consumer_gram(model, name, X, target_model=None, ridge=RIDGE):
    """Ridge Gram matrix :math:`G` and :math:`A^T Z` of a flat linear consumer
    (``nn.Linear``, GPT-2's ``Conv1D``: whatever the weight's layout, it maps
    the last dimension of its input to the last of its output).

    Parameters
    ----------
    model : torch.nn.Module
        The network whose consumer input ``H`` is read.
    name : str
        The consumer (reading ``(..., p)`` inputs).
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
    consumer = model.get_submodule(name)
    gram = cross = None
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        xb = X[start : start + _CHUNK_ROWS]
        H = consumer_inputs(model, name, xb)
        Z = consumer_outputs(target_model, [name], xb)[name]
        # One row per sample (and position): a convolution's rows are its
        # unfolded patches, each input channel's kernel taps side by side.
        H, Z = design(consumer, H, Z)
        A = _with_bias(H)
        Z = Z.double()
        gram = A.T @ A if gram is None else gram.addmm_(A.T, A)
        cross = A.T @ Z if cross is None else cross.addmm_(A.T, Z)
    # Rows, not samples: a consumer reading (samples, positions, features)
    # regresses one row per position, and the removal's refit
    # (remove_units) penalises by that count too.
    rows = float(gram[-1, -1])  # the bias column's sum of ones
    penalty = torch.full((gram.shape[0],), ridge * rows, dtype=gram.dtype)
    penalty[-1] = 0.0
    return gram + torch.diag(penalty.to(gram.device)), cross


def refittable(model, group):
    """Whether a group's units are read by one consumer that least squares
    refits from its Gram matrix: a layer whose registry entry is a
    refittable linear map (``nn.Linear``, GPT-2's ``Conv1D``, an ungrouped
    convolution) reading ``group.unit_width`` consecutive input features per
    unit, and nothing else (one feature per neuron or channel, ``head_dim``
    per attention head)."""
    if len(group.consumers) != 1 or not group.unit_width:
        return False
    consumer = model.get_submodule(group.consumers[0])
    entry = layer_type(consumer)
    return (
        entry is not None
        and entry.refittable(consumer)
        and entry.n_in(consumer) == group.size * group.unit_width
    )


def _one_column(model, group):
    """One regression column per unit, read by a flat layer: the units the
    bandit's compensated pulls refit by rank-1 terms."""
    consumer = model.get_submodule(group.consumers[0])
    return layer_type(consumer).flat and refit_width(model, group) == 1


def refit_width(model, group):
    """Columns of the consumer's regression one unit owns: its input features
    (``group.unit_width``) times the consumer's kernel taps (1 for a flat
    layer, ``k * k`` for a ``k x k`` convolution)."""
    consumer = model.get_submodule(group.consumers[0])
    taps = layer_type(consumer).matrix(consumer).shape[2:]
    return group.unit_width * math.prod(taps)


def consumer_refits(model, groups, X, ridge=RIDGE, blocks=False):
    """A :class:`Refit` of each group's consumer on ``X`` (``None`` where
    the group is not :func:`refittable`).

    Parameters
    ----------
    model : torch.nn.Module
        The network, in eval mode.
    groups : list of UnitGroup
        Its unit groups (see :func:`find_unit_groups`).
    X : torch.Tensor
        The data the consumers' inputs and outputs are recorded on.
    ridge : float, default=1e-4
        Ridge penalty of the refit, times the number of rows.
    blocks : bool, default=False
        Whether units that span several regression columns each (attention
        heads; channels read by a convolution, one column per kernel tap)
        get a refit too (``width`` = :func:`refit_width`, for
        :meth:`Refit.without`, :meth:`Refit.removal_costs` and
        :func:`greedy_obs_order`); by default None for them and for any
        convolution consumer: the batched compensated pulls are rank-1
        terms of one column per unit of a flat layer, so the bandit masks
        those units with their means.

    Returns
    -------
    list of Refit or None
        One per group.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skbandit.pruning import consumer_refits, find_unit_groups
    >>> net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    >>> (refit,) = consumer_refits(net, find_unit_groups(net), torch.randn(50, 4))
    >>> tuple(refit.coef.shape)  # 6 weights and the bias, per output
    (7, 2)
    """
    return [
        Refit.from_gram(
            *consumer_gram(model, g.consumers[0], X, ridge=ridge),
            refit_width(model, g),
        )
        if refittable(model, g) and (blocks or _one_column(model, g))
        else None
        for g in groups
    ]


def greedy_obs_order(refit, n_steps=None):
    """Units in the order greedy OBS removes them, each the cheapest at its turn.

    At every step the unit with the smallest :math:`\\Delta\\text{RSS}_j`
    among those left is removed, and :math:`G^{-1}` and :math:`\\beta` are
    downdated (rank-1, no re-inversion):
    :math:`G^{-1} \\leftarrow G^{-1} - G^{-1} e_j e_j^T G^{-1} / [G^{-1}]_{jj}`.
    A unit of ``refit.width`` columns :math:`Q` costs
    :math:`\\operatorname{tr}(\\beta_Q^T ([G^{-1}]_{QQ})^{-1} \\beta_Q)` and is
    removed by the block downdate
    :math:`G^{-1} \\leftarrow G^{-1} - G^{-1}_{:Q} ([G^{-1}]_{QQ})^{-1}
    G^{-1}_{Q:}`, :math:`\\beta \\leftarrow \\beta - G^{-1}_{:Q}
    ([G^{-1}]_{QQ})^{-1} \\beta_Q`.

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

    Examples
    --------
    >>> import torch
    >>> from skbandit.pruning import Refit, greedy_obs_order
    >>> H = torch.tensor([[1.0, 1], [1, -1], [-1, 1], [-1, -1]], dtype=torch.float64)
    >>> A = torch.cat([H, torch.ones(4, 1, dtype=torch.float64)], 1)
    >>> refit = Refit.from_gram(A.T @ A, A.T @ (2 * H[:, :1] + 0.5 * H[:, 1:]))
    >>> greedy_obs_order(refit)  # unit 1 costs 0.5^2 * 4, unit 0 would cost 16
    (array([1]), array([1.]))
    """
    if refit.width != 1:
        return _greedy_block_order(refit, n_steps)
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


def _greedy_block_order(refit, n_steps):
    """:func:`greedy_obs_order` of units of ``refit.width`` columns each."""
    gram_inv, coef = refit.gram_inv.clone(), refit.coef.clone()
    n_units = refit.n_units
    n_steps = n_units - 1 if n_steps is None else n_steps
    alive = torch.ones(n_units, dtype=torch.bool)
    order, costs = [], []
    for _ in range(n_steps):
        cost = _block_costs(gram_inv, coef, refit.width, alive)
        j = int(torch.argmin(cost))
        q = refit.columns([j])
        columns = gram_inv[:, q].clone()
        solved = torch.linalg.solve(columns[q], torch.cat([coef[q], columns.T], 1))
        coef -= columns @ solved[:, : coef.shape[1]]
        gram_inv -= columns @ solved[:, coef.shape[1] :]
        # exactly zero at the removed columns, not rounding noise
        coef[q] = 0.0
        gram_inv[q] = 0.0
        gram_inv[:, q] = 0.0
        alive[j] = False
        order.append(j)
        costs.append(float(cost[j]))
    return np.asarray(order, dtype=int), np.asarray(costs)
