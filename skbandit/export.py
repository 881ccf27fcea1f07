"""Export a pruned network: a portable checkpoint, TorchScript and ONNX.

A fitted :class:`~skbandit.BanditPrunedMLPClassifier` /
:class:`~skbandit.BanditPrunedMLPRegressor` keeps its compact network in
``module_`` (a ``torch.nn.Sequential`` that outputs logits, or standardised
targets for the regressor). The helpers here take either such an estimator
or any supported ``nn.Module``:

- :func:`save_module` / :func:`load_module`: ``torch.save`` of the state dict
  plus a small JSON-like *spec* (layer types and sizes) from which
  :func:`build_module` rebuilds the ``nn.Sequential``. Loading uses
  ``torch.load(weights_only=True)``: no class is unpickled, so a file from
  an untrusted source cannot run code, and the file does not depend on
  skbandit's (or your) class names. Nor can the file make the loader
  allocate more than it holds: the spec is checked against the weights on
  the ``meta`` device first, and any malformed file raises ``ValueError``.
- :func:`to_torchscript`: ``torch.jit.trace`` or ``torch.jit.script``.
- :func:`export_onnx`: ``torch.onnx.export`` (needs ``pip install
  'skbandit[export]'`` to run the result with onnxruntime).

Every export is of the network alone, in float32 and eval mode. What turns
its output into predictions stays with the estimator and is saved in the
checkpoint's ``meta``, its ``output`` naming the transform:

- ``"softmax"``: a classifier (two classes included); ``predict_proba`` is
  ``softmax(logits)``, ``predict`` ``classes[argmax(logits)]``;
- ``"sigmoid"``: a multilabel classifier; ``predict_proba`` is
  ``sigmoid(logits)`` per label, ``predict`` ``logits > 0``;
- ``"identity"``: a regressor; ``predict`` is ``output * y_scale + y_mean``;
- ``"exp"``: a regressor with ``loss="poisson"``; ``predict`` is
  ``exp(output)``. The estimators themselves run ``module_``
in float64 (see ``_forward``), so exported float32 outputs agree with their
predictions to float32 precision (about 1e-6 relative).

Examples
--------
>>> import os, tempfile
>>> import torch
>>> from torch import nn
>>> from skbandit.export import load_module, module_spec, save_module
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> module_spec(net)["layers"][1]
{'name': '1', 'type': 'ReLU'}
>>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
>>> save_module(net, path)
>>> again = load_module(path)
>>> x = torch.randn(5, 4)
>>> torch.equal(again(x), net(x))
True
"""

import contextlib
import copy
import inspect
import numbers
import os
import pickle
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from .pruning._layers import LAYER_TYPES, layer_type

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "module_spec",
    "build_module",
    "save_module",
    "load_module",
    "load_checkpoint",
    "to_torchscript",
    "export_onnx",
]

#: ``format`` entry of a checkpoint written by :func:`save_module`.
FORMAT = "skbandit.module"
#: Version of the checkpoint layout; :func:`load_module` refuses newer ones.
FORMAT_VERSION = 1

# Layer type -> (class, constructor arguments read from the module's
# attributes): the pruning backend's layer registry (its ``export_args``),
# then the layers without units. Layers with weights also record whether
# they have a bias; the pruning backend may add one (compensate="mean").
_LAYERS = {
    **{c.__name__: (c, e.export_args) for c, e in LAYER_TYPES.items()},
    "LayerNorm": (nn.LayerNorm, ("normalized_shape", "eps", "elementwise_affine")),
    "ReLU": (nn.ReLU, ()),
    "Tanh": (nn.Tanh, ()),
    "Sigmoid": (nn.Sigmoid, ()),
    "Identity": (nn.Identity, ()),
    "SiLU": (nn.SiLU, ()),
    "GELU": (nn.GELU, ("approximate",)),
    "LeakyReLU": (nn.LeakyReLU, ("negative_slope",)),
    "ELU": (nn.ELU, ("alpha",)),
    "Softplus": (nn.Softplus, ("beta", "threshold")),
    "Dropout": (nn.Dropout, ("p",)),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")),
    "MaxPool1d": (nn.MaxPool1d, ("kernel_size", "stride", "padding", "dilation")),
    "MaxPool2d": (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation")),
    "AvgPool1d": (nn.AvgPool1d, ("kernel_size", "stride", "padding")),
    "AvgPool2d": (nn.AvgPool2d, ("kernel_size", "stride", "padding")),
    "AdaptiveAvgPool1d": (nn.AdaptiveAvgPool1d, ("output_size",)),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ("output_size",)),
}
_WITH_BIAS = tuple(c.__name__ for c, e in LAYER_TYPES.items() if e.weighted)

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16}


def _plain(value):
    """``value`` as JSON-like Python (tuples become lists)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"cannot store {value!r} in a module spec")


def _tupled(value):
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def _module_of(obj):
    """The ``nn.Module`` of an estimator (its ``module_``) or the module itself."""
    if isinstance(obj, nn.Module):
        return obj
    if hasattr(obj, "get_params") and hasattr(obj, "fit"):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(obj, "module_")
        return obj.module_
    raise TypeError(
        "expected a fitted skbandit estimator or a torch.nn.Module, got "
        f"{type(obj).__name__}"
    )


def _layer_spec(name, module):
    kind = type(module).__name__
    if kind not in _LAYERS or type(module) is not _LAYERS[kind][0]:
        raise ValueError(
            f"cannot describe layer {name!r} of type {type(module).__name__} in a "
            f"module spec; supported layers: {', '.join(_LAYERS)} and nested "
            "nn.Sequential. Export it with to_torchscript or export_onnx instead."
        )
    spec = {"name": name, "type": kind}
    for attr in _LAYERS[kind][1]:
        spec[attr] = _plain(getattr(module, attr))
    if kind in _WITH_BIAS:
        spec["bias"] = module.bias is not None
    return spec


def _sequential_spec(module):
    layers = []
    for name, child in module.named_children():
        if type(child) is nn.Sequential:
            layers.append(
                {"name": name, "type": "Sequential", "layers": _sequential_spec(child)}
            )
        else:
            layers.append(_layer_spec(name, child))
    return layers


def module_spec(obj):
    """The JSON-like description of a network that :func:`build_module` rebuilds.

    Parameters
    ----------
    obj : fitted estimator or torch.nn.Sequential
        A skbandit estimator (its ``module_`` is described) or a sequential
        network of the layers listed in ``_LAYERS`` (linear, convolution,
        normalisation, activation, dropout, pooling, flatten), possibly
        nested.

    Returns
    -------
    spec : dict
        ``{"type": "Sequential", "dtype": "float32", "layers": [...]}``; each
        layer is ``{"name", "type", <constructor arguments>}``. Only lists,
        strings, numbers and booleans: it can be written as JSON.

    Raises
    ------
    ValueError
        For a layer type the spec cannot describe (the message names it).
    TypeError
        When ``obj`` is neither a fitted estimator nor an ``nn.Sequential``.
    """
    module = _module_of(obj)
    if type(module) is not nn.Sequential:
        raise TypeError(
            "module_spec describes nn.Sequential networks; got "
            f"{type(module).__name__}. Use to_torchscript or export_onnx."
        )
    dtypes = {str(p.dtype).replace("torch.", "") for p in module.parameters()}
    if len(dtypes) > 1:
        raise ValueError(f"the network mixes parameter dtypes {sorted(dtypes)}")
    dtype = dtypes.pop() if dtypes else "float32"
    if dtype not in _DTYPES:
        raise ValueError(f"unsupported parameter dtype {dtype}")
    return {"type": "Sequential", "dtype": dtype, "layers": _sequential_spec(module)}


#: Deepest nesting of ``Sequential`` a spec may declare (the estimators'
#: networks have none; the limit keeps a hostile file from exhausting the
#: stack).
_MAX_DEPTH = 16


def _check_value(value, where):
    """Spec arguments are JSON-like: numbers, strings, booleans, None, lists."""
    if isinstance(value, list):
        for item in value:
            _check_value(item, where)
    elif not (value is None or isinstance(value, (bool, numbers.Real, str))):
        raise ValueError(
            f"{where}: argument values must be numbers, strings, booleans or "
            f"lists of them, got {type(value).__name__}."
        )


def _build_layers(layers, depth=0):
    if not isinstance(layers, list):
        raise ValueError(
            f"a Sequential's 'layers' must be a list, got {type(layers).__name__}."
        )
    if depth > _MAX_DEPTH:
        raise ValueError(f"module spec nests Sequential deeper than {_MAX_DEPTH}.")
    children = OrderedDict()
    for spec in layers:
        if not isinstance(spec, dict):
            raise ValueError(f"a layer spec is a dict, got {type(spec).__name__}.")
        spec = dict(spec)
        name, kind = spec.pop("name", None), spec.pop("type", None)
        if not isinstance(name, str) or not name or "." in name or name in children:
            raise ValueError(
                f"layer name {name!r} in module spec: names are non-empty strings "
                "without '.', unique within their Sequential."
            )
        if kind == "Sequential":
            if set(spec) != {"layers"}:
                raise ValueError(f"Sequential {name!r} in module spec needs 'layers'.")
            children[name] = _build_layers(spec["layers"], depth + 1)
            continue
        if not isinstance(kind, str) or kind not in _LAYERS:
            raise ValueError(
                f"unknown layer type {kind!r} in module spec; known: "
                f"{', '.join(_LAYERS)}"
            )
        cls, args = _LAYERS[kind]
        unknown = set(spec) - set(args) - ({"bias"} if kind in _WITH_BIAS else set())
        if unknown:
            raise ValueError(f"unknown arguments {sorted(unknown)} of layer {kind}")
        _check_value(list(spec.values()), f"layer {name!r} ({kind})")
        try:
            children[name] = cls(**{k: _tupled(v) for k, v in spec.items()})
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise ValueError(
                f"layer {name!r} ({kind}) of the module spec cannot be built: {exc}"
            ) from exc
    return nn.Sequential(children)


def build_module(spec, device=None):
    """Rebuild the (untrained) ``nn.Sequential`` described by ``spec``.

    Parameters
    ----------
    spec : dict
        As returned by :func:`module_spec`.
    device : str or torch.device, default=None
        Where the parameters are created (torch's default device if None).
        ``"meta"`` allocates nothing: the module then only describes shapes,
        which is how :func:`load_checkpoint` checks a file before trusting
        the sizes it declares.

    Returns
    -------
    torch.nn.Sequential
        In eval mode, with the spec's dtype; load weights into it with
        ``load_state_dict``.

    Raises
    ------
    ValueError
        For anything in ``spec`` that does not describe a network (the
        message names the layer).
    """
    if not isinstance(spec, dict) or spec.get("type") != "Sequential":
        raise ValueError("a module spec is a dict with type 'Sequential'")
    dtype = spec.get("dtype", "float32")
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r} in module spec")
    with torch.device(device) if device is not None else contextlib.nullcontext():
        module = _build_layers(spec.get("layers"))
    return module.to(_DTYPES[dtype]).eval()


def _estimator_meta(obj):
    """What turns the network's output into an estimator's predictions."""
    if isinstance(obj, nn.Module):
        return {}
    meta = {
        "estimator": type(obj).__name__,
        "n_features_in": int(obj.n_features_in_),
    }
    if hasattr(obj, "feature_names_in_"):
        meta["feature_names_in"] = [str(n) for n in obj.feature_names_in_]
    if hasattr(obj, "classes_"):
        classes = np.asarray(obj.classes_)
        if classes.dtype.kind in "biuf":
            meta["classes"] = classes.tolist()
        else:
            meta["classes"] = [str(c) for c in classes]
    for attr in ("y_mean_", "y_scale_"):
        if hasattr(obj, attr):
            meta[attr.rstrip("_")] = np.asarray(getattr(obj, attr), float).tolist()
    meta["output"] = _output_transform(obj)
    return meta


#: The values of ``meta["output"]`` (see the module's text).
OUTPUT_TRANSFORMS = ("softmax", "sigmoid", "identity", "exp")


def _output_transform(estimator):
    """The ``meta["output"]`` of a fitted estimator (see the module's text)."""
    if hasattr(estimator, "classes_"):
        return "sigmoid" if estimator._multilabel else "softmax"
    return "exp" if estimator.out_activation_ == "exp" else "identity"


def save_module(obj, path):
    """Save a network as its state dict plus a spec that rebuilds it.

    Parameters
    ----------
    obj : fitted estimator or torch.nn.Sequential
    path : str or path-like
        Written with ``torch.save``; read it back with :func:`load_module`.

    Notes
    -----
    The file holds a dict of plain values and tensors: ``format``,
    ``version``, ``spec`` (see :func:`module_spec`), ``state_dict`` and
    ``meta`` (for an estimator: its class name, ``n_features_in``,
    ``classes`` or ``y_mean`` / ``y_scale``). Nothing in it is a pickled
    class, so ``torch.load(path, weights_only=True)`` reads it.
    """
    module = _module_of(obj)
    spec = module_spec(module)
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    checkpoint = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "spec": spec,
        "state_dict": state,
        "meta": _estimator_meta(obj),
        "torch": str(torch.__version__),
    }
    torch.save(checkpoint, os.fspath(path))


def load_checkpoint(path):
    """Read a :func:`save_module` file: ``{"module", "spec", "meta"}``.

    The file is not trusted: its spec is first built on the ``meta`` device
    (nothing is allocated for the sizes it declares), every tensor of its
    state dict must have the name, shape and dtype that the spec implies,
    and only then do the file's own tensors become the module's parameters
    (``load_state_dict(assign=True)``). A small file declaring a huge layer
    is therefore rejected without allocating that layer.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_module`.

    Raises
    ------
    ValueError
        When the file is not a skbandit module checkpoint, is of a newer
        format version, its spec is malformed, its weights do not fit its
        spec or are not finite, or its ``meta`` does not fit the network
        (``classes``, ``y_mean`` or ``y_scale`` not one per output,
        ``n_features_in`` not the first layer's input width).
    FileNotFoundError
        When ``path`` does not exist.
    """
    path = os.fspath(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable module checkpoint: {exc}") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skbandit module checkpoint")
    version = checkpoint.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: checkpoint version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint version {version}; this "
            f"skbandit reads version {FORMAT_VERSION} (upgrade skbandit)"
        )
    meta = checkpoint.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: 'meta' must be a dict, got {type(meta).__name__}")
    try:
        module = build_module(checkpoint.get("spec"), device="meta")
    except ValueError as exc:
        raise ValueError(f"{path}: invalid module spec: {exc}") from exc
    state = checkpoint.get("state_dict")
    _check_state(path, module.state_dict(), state)
    _check_meta(path, module, meta)
    module.load_state_dict(state, strict=True, assign=True)
    return {"module": module, "spec": checkpoint["spec"], "meta": meta}


def _check_state(path, expected, state):
    """``state`` holds exactly the tensors of ``expected``: names, shapes, dtypes."""
    if not isinstance(state, dict):
        raise ValueError(f"{path}: 'state_dict' must be a dict of tensors")
    missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
    if missing or unexpected:
        raise ValueError(
            f"{path}: the weights do not fit the spec: missing "
            f"{sorted(missing)}, unexpected {sorted(map(str, unexpected))}"
        )
    for key, want in expected.items():
        got = state[key]
        if not torch.is_tensor(got) or got.layout != torch.strided:
            raise ValueError(f"{path}: state_dict entry {key!r} is not a dense tensor")
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ValueError(
                f"{path}: the weights do not fit the spec: {key!r} is "
                f"{got.dtype} {tuple(got.shape)}, the spec needs "
                f"{want.dtype} {tuple(want.shape)}"
            )
        # A NaN or infinite weight makes every prediction through it NaN.
        if got.is_floating_point() and not torch.isfinite(got).all():
            raise ValueError(
                f"{path}: state_dict entry {key!r} holds NaN or infinite values"
            )


def _check_meta(path, module, meta):
    """What turns outputs into predictions fits the network: one class (or
    one ``y_mean`` / ``y_scale``) per output, as many features as its first
    layer reads. Otherwise ``classes[argmax]`` would name the wrong class,
    or the scaling broadcast one target's statistics to another."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if meta.get("output", "identity") not in OUTPUT_TRANSFORMS:
        raise ValueError(
            f"{path}: meta['output'] must be one of {list(OUTPUT_TRANSFORMS)}, "
            f"got {meta['output']!r}"
        )
    if any(key in meta for key in ("classes", "y_mean", "y_scale")):
        if not linears:
            raise ValueError(
                f"{path}: meta describes an estimator's outputs, but the network "
                "has no Linear output layer"
            )
        n_outputs = linears[-1].out_features
    if "classes" in meta:
        classes = meta["classes"]
        if not isinstance(classes, list) or not all(
            isinstance(c, (numbers.Real, str)) for c in classes
        ):
            raise ValueError(
                f"{path}: meta['classes'] must be a list of numbers or strings, "
                f"got {type(classes).__name__}"
            )
        if len(classes) != n_outputs:
            raise ValueError(
                f"{path}: meta['classes'] has {len(classes)} classes, but the "
                f"network has {n_outputs} outputs"
            )
        if len(set(classes)) != len(classes):
            raise ValueError(f"{path}: meta['classes'] has duplicates")
    for key in ("y_mean", "y_scale"):
        if key in meta:
            _check_statistics(path, key, meta[key], n_outputs)
    n_features = meta.get("n_features_in")
    # The layer that reads the features (normalisations keep their width).
    first = next((m for m in module.modules() if _weighted(m)), None)
    if n_features is not None and isinstance(first, nn.Linear):
        if n_features != first.in_features:
            raise ValueError(
                f"{path}: meta['n_features_in'] is {n_features!r}, but the "
                f"network's first layer reads {first.in_features}"
            )
    names = meta.get("feature_names_in")
    if names is not None and (not isinstance(names, list) or len(names) != n_features):
        raise ValueError(
            f"{path}: meta['feature_names_in'] has "
            f"{len(names) if isinstance(names, list) else 'no list of'} names, "
            f"but n_features_in is {n_features!r}"
        )


def _check_statistics(path, key, values, n_outputs):
    """``y_mean`` / ``y_scale``: one finite number per output (a scale > 0)."""
    positive = key == "y_scale"
    if not isinstance(values, list) or not all(
        isinstance(v, numbers.Real)
        and not isinstance(v, bool)
        and np.isfinite(v)
        and (v > 0 or not positive)
        for v in values
    ):
        raise ValueError(
            f"{path}: meta[{key!r}] must hold finite numbers"
            + (" > 0" if positive else "")
            + ", one per output"
        )
    if len(values) != n_outputs:
        raise ValueError(
            f"{path}: meta[{key!r}] has {len(values)} values, but the network "
            f"has {n_outputs} outputs"
        )


def load_module(path):
    """The network saved by :func:`save_module`, rebuilt, in eval mode.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    torch.nn.Sequential
    """
    return load_checkpoint(path)["module"]


def _example_input(module, n_rows=2):
    """A zero input batch for tracing: the first layer fixes its width."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            n_in = layer.in_features
            break
        if _weighted(layer):
            raise ValueError(
                "cannot infer the input shape of a convolutional network; pass "
                "example_inputs"
            )
    else:
        raise ValueError("cannot infer the input shape; pass example_inputs")
    dtype = next(module.parameters()).dtype
    return torch.zeros(n_rows, n_in, dtype=dtype)


def _weighted(module):
    """Whether ``module`` is a layer with weights (a Linear or convolution)."""
    entry = layer_type(module)
    return entry is not None and entry.weighted


def _eval_copy(obj):
    """A float32, CPU, eval-mode copy of the network (the original untouched)."""
    return copy.deepcopy(_module_of(obj)).cpu().float().eval()


def to_torchscript(obj, method="trace", example_inputs=None):
    """TorchScript version of a network (``torch.jit.trace`` or ``script``).

    Parameters
    ----------
    obj : fitted estimator or torch.nn.Module
    method : {"trace", "script"}, default="trace"
    example_inputs : torch.Tensor, optional
        Input for tracing; default a zero float32 batch of the first linear
        layer's width.

    Returns
    -------
    torch.jit.ScriptModule
        Float32, on the CPU, eval mode. Save it with ``torch.jit.save``.

    Notes
    -----
    PyTorch deprecates TorchScript in favour of ``torch.export``; its
    functions emit a ``DeprecationWarning`` from torch 2.10 on.
    """
    module = _eval_copy(obj)
    with torch.no_grad():
        if method == "trace":
            example = (
                _example_input(module) if example_inputs is None else example_inputs
            )
            return torch.jit.trace(module, example)
        if method == "script":
            return torch.jit.script(module)
    raise ValueError(f"method must be 'trace' or 'script', got {method!r}")


def export_onnx(obj, path, example_inputs=None, opset_version=None, dynamo=False):
    """Export a network to an ONNX file with a dynamic batch dimension.

    Parameters
    ----------
    obj : fitted estimator or torch.nn.Module
    path : str or path-like
    example_inputs : torch.Tensor, optional
        Default a zero float32 batch of the first linear layer's width.
    opset_version : int, optional
        ONNX opset; default torch's.
    dynamo : bool, default=False
        False uses torch's TorchScript-based exporter, which needs only the
        ``onnx`` package; True the ``torch.export``-based one (needs
        ``onnxscript``; both are in the ``export`` extra).

    Returns
    -------
    str
        ``path``. The graph has one float32 input ``"X"`` of shape
        ``(n_samples, n_features)`` and one output ``"output"``: logits for a
        classifier, standardised targets for a regressor (see the module
        docstring for turning them into predictions).
    """
    module = _eval_copy(obj)
    example = _example_input(module) if example_inputs is None else example_inputs
    path = os.fspath(path)
    kwargs = {
        "input_names": ["X"],
        "output_names": ["output"],
        "opset_version": opset_version,
    }
    if dynamo:
        kwargs["dynamo"] = True
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("n_samples")},)
    else:
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kwargs["dynamo"] = False  # torch < 2.5 has only this exporter
        kwargs["dynamic_axes"] = {"X": {0: "n_samples"}, "output": {0: "n_samples"}}
    with torch.no_grad():
        torch.onnx.export(module, (example,), path, **kwargs)
    return path
