"""Models whose inputs or outputs are not one tensor (dicts, tuples, ModelOutput).

Everything in :func:`prune` slices, samples and replicates ``X`` along its
first dimension, so ``X`` is one tensor there. A Hugging Face model reads a
dict (``input_ids``, ``attention_mask``, ...) and returns a ``ModelOutput``;
other models take several positional tensors or return tuples.
:class:`InputAdapter` wraps such a model: it reads one packed tensor (each
input flattened per sample, side by side), unpacks it into the model's own
inputs with their own dtypes (token ids stay integers), calls the model and
returns its logits. ``prune`` returns the wrapped model, pruned. A model whose
``forward`` takes ``use_cache`` (a Hugging Face decoder) is called with
``use_cache=False``: scoring runs whole sequences, and a key/value cache
would only cost memory (and hold tensors of the unpruned widths).
"""

import inspect

import numpy as np
import torch
from torch import nn

__all__ = ["InputAdapter", "adapt_inputs", "causal_lm_labels", "model_output"]

#: Name of the wrapped model inside the adapter (its modules' name prefix).
PREFIX = "module."


def model_output(out):
    """The prediction tensor of a model's output.

    A tensor is itself; an object with ``logits`` (a Hugging Face
    ``ModelOutput``) gives its logits; a dict its ``"logits"`` entry or else
    its first value; a tuple or list its first element.

    Parameters
    ----------
    out : torch.Tensor, ModelOutput, dict, tuple or list

    Examples
    --------
    >>> import torch
    >>> model_output((torch.ones(2), torch.zeros(2)))
    tensor([1., 1.])
    """
    # A torch.fx Proxy (the adapter traced for the fast pulls) stands for a
    # tensor; every attribute of it is another Proxy, so asking it for
    # ``logits`` would never end.
    while not (torch.is_tensor(out) or isinstance(out, torch.fx.Proxy)):
        if getattr(out, "logits", None) is not None:
            out = out.logits
        elif isinstance(out, dict) and out:
            out = out["logits"] if "logits" in out else next(iter(out.values()))
        elif isinstance(out, (tuple, list)) and out:
            out = out[0]
        else:
            raise TypeError(
                "prune needs the model's prediction as a tensor, its logits or "
                f"the first element of a tuple; got {type(out).__name__}."
            )
    return out


class InputAdapter(nn.Module):
    """``module`` reading one packed tensor and returning one tensor.

    Parameters
    ----------
    module : torch.nn.Module
        The wrapped model.
    keys : tuple of str or None
        Keyword names of the inputs (a dict ``X``), or None for positional
        inputs.
    shapes : tuple of tuple of int
        Per-sample shape of each input.
    dtypes : tuple of torch.dtype
        Dtype of each input; floating inputs take the packed tensor's dtype.
    """

    def __init__(self, module, keys, shapes, dtypes):
        super().__init__()
        self.module = module
        self.keys, self.shapes, self.dtypes = keys, shapes, dtypes
        self.options = _no_cache(module, keys)

    def unpack(self, packed):
        """The model's inputs (a dict or a tuple) from a packed batch."""
        sizes = [int(np.prod(s)) for s in self.shapes]
        parts = []
        for part, shape, dtype in zip(
            packed.split(sizes, dim=1), self.shapes, self.dtypes, strict=True
        ):
            part = part.reshape(packed.shape[0], *shape)
            parts.append(part if dtype.is_floating_point else part.to(dtype))
        return dict(zip(self.keys, parts)) if self.keys else tuple(parts)

    def forward(self, packed):
        """The model's prediction on the packed inputs."""
        options = getattr(self, "options", {})  # adapters pickled before it
        if not self.shapes:
            return model_output(self.module(packed, **options))
        inputs = self.unpack(packed)
        if isinstance(inputs, dict):
            return model_output(self.module(**inputs, **options))
        return model_output(self.module(*inputs, **options))


def _no_cache(module, keys):
    """``{"use_cache": False}`` when ``module.forward`` takes ``use_cache``
    (and the inputs do not set it), else ``{}``."""
    if keys and "use_cache" in keys:
        return {}
    try:
        parameters = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return {}
    return {"use_cache": False} if "use_cache" in parameters else {}


def causal_lm_labels(X):
    """The labels of ``loss="causal_lm"`` when ``y`` is None: the input ids.

    ``X`` is the token ids ``(n_samples, seq)`` or a dict holding
    ``input_ids`` (and optionally ``attention_mask``, whose zeros become
    ``-100``: padding no loss counts). The loss shifts them (position ``t``
    predicts label ``t + 1``).

    Examples
    --------
    >>> import torch
    >>> causal_lm_labels({"input_ids": torch.tensor([[5, 6, 0]]),
    ...                   "attention_mask": torch.tensor([[1, 1, 0]])})
    tensor([[   5,    6, -100]])
    """
    mask = None
    if isinstance(X, dict):
        if "input_ids" not in X:
            raise ValueError(
                "loss='causal_lm' with y=None takes the labels from X's "
                f"'input_ids'; X has keys {sorted(X)}. Pass y (the labels)."
            )
        X, mask = X["input_ids"], X.get("attention_mask")
    elif isinstance(X, tuple) and X:  # positional inputs: the ids first
        X = X[0]
    labels = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X)
    if labels.is_floating_point() or labels.dim() != 2:
        raise ValueError(
            "loss='causal_lm' with y=None needs integer token ids of shape "
            f"(n_samples, seq) in X, got dtype {labels.dtype} and shape "
            f"{tuple(labels.shape)}. Pass y (the labels)."
        )
    labels = labels.clone().long()
    if mask is not None:
        labels[torch.as_tensor(mask) == 0] = -100
    return labels


def _pack(X):
    """``(packed tensor, keys, shapes, dtypes)`` of a dict or tuple ``X``."""
    keys = tuple(X) if isinstance(X, dict) else None
    tensors = [torch.as_tensor(v) for v in (X.values() if keys else X)]
    n = {t.shape[0] if t.dim() else None for t in tensors}
    if len(n) != 1 or None in n:
        raise ValueError(
            "Every input in X must have the samples along dimension 0, the "
            f"same number for all; got shapes {[tuple(t.shape) for t in tensors]}."
        )
    dtypes = tuple(t.dtype for t in tensors)
    # One dtype holds them all: theirs when shared, else float64, which
    # holds float32 values and integer ids below 2**53 exactly.
    common = dtypes[0] if len(set(dtypes)) == 1 else torch.float64
    flat = [t.reshape(t.shape[0], -1).to(common) for t in tensors]
    return (
        torch.cat(flat, dim=1),
        keys,
        tuple(tuple(t.shape[1:]) for t in tensors),
        dtypes,
    )


def adapt_inputs(model, X):
    """``(model, X)`` with ``X`` one tensor and ``model`` returning one.

    A dict or tuple ``X`` of tensors or arrays is packed (a list stays
    array-like data: rows of samples) and the model wrapped in an
    :class:`InputAdapter`; a tensor ``X`` is left as it is, the model wrapped
    only when its output is not a tensor (a tuple, a ``ModelOutput``).

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode.
    X : array-like, torch.Tensor, dict or tuple of them

    Returns
    -------
    model : torch.nn.Module
        ``model`` or an :class:`InputAdapter` around it.
    X : array-like or torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> class TwoInputs(nn.Module):
    ...     def forward(self, a, b):
    ...         return a + b.float(), a
    >>> net, X = adapt_inputs(TwoInputs(), (torch.ones(3, 2), torch.ones(3, 2).long()))
    >>> X.shape, net(X).shape
    (torch.Size([3, 4]), torch.Size([3, 2]))
    """
    if (
        isinstance(X, (dict, tuple))
        and X
        and all(
            torch.is_tensor(v) or isinstance(v, np.ndarray)
            for v in (X.values() if isinstance(X, dict) else X)
        )
    ):
        packed, keys, shapes, dtypes = _pack(X)
        return InputAdapter(model, keys, shapes, dtypes), packed
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        X = torch.as_tensor(X)
    if torch.is_tensor(X) and X.dim() >= 1 and X.shape[0] > 0:
        out = _output_on(model, X[:1])
        if out is not None and not torch.is_tensor(out):
            return InputAdapter(model, None, (), ()), X
    return model, X


@torch.no_grad()
def _output_on(model, sample):
    """``model``'s output on one sample, or None when it rejects the sample
    (prune's data checks then say what is wrong with it)."""
    param = next(model.parameters(), None)
    if param is not None:
        sample = sample.to(param.device)
        if sample.is_floating_point():
            sample = sample.to(param.dtype)
    try:
        return model(sample)
    except (RuntimeError, ValueError, TypeError, IndexError):
        return None


def unwrap(model):
    """The user's model inside an :class:`InputAdapter` (else ``model``)."""
    return model.module if isinstance(model, InputAdapter) else model


def qualify(model, groups):
    """Declared groups named inside the adapter when ``model`` is one."""
    if groups is None or not isinstance(model, InputAdapter):
        return groups
    return [g.qualified(PREFIX) for g in groups]
