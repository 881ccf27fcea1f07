"""Recording a forward pass, so that pulls re-run only what follows a unit.

:class:`Trace` keeps the input of every module of a flat ``nn.Sequential``;
:class:`GraphTrace` traces any other model with ``torch.fx`` and keeps every
intermediate value, re-running only the operations downstream of a
consumer. :func:`trace` picks the one that applies. Both guard against
modules that modify a recorded tensor in place.
"""

import operator
import weakref

import torch
import torch.fx
from torch import nn

from ._chain import flat_children

__all__ = ["Trace", "GraphTrace", "trace"]


class Trace:
    """Inputs of every module of a flat sequential forward pass, and its output.

    A module that writes into its input (``nn.ReLU(inplace=True)``, or one
    that modifies a view of an earlier value) would overwrite a recorded
    value, and pulls computed from it would be silently wrong. Every write is
    visible in the tensors' version counters: when one happened, the pass is
    run again with every module reading a copy of its input, so the recorded
    values are exactly what each module was given.

    Parameters
    ----------
    model : torch.nn.Sequential
    X : torch.Tensor
    """

    def __init__(self, model, X):
        self.names, self.modules = zip(*flat_children(model))
        # Inference tensors keep no version counter: always copy with them.
        inference = torch.is_inference_mode_enabled() or X.is_inference()
        if inference or self._record(X, copy_inputs=False):
            self._record(X, copy_inputs=True)

    def _record(self, X, copy_inputs):
        """Run the modules on ``X``, recording every module's input.

        Returns whether a module wrote into a recorded value (always False
        with ``copy_inputs``: each module then reads its own copy).
        """
        self.inputs, versions = [], []
        h = X
        for module in self.modules:
            self.inputs.append(h)
            if copy_inputs:
                h = module(h.clone())
            else:
                versions.append(h._version)
                h = module(h)
        self.output = h
        return any(v._version != n for v, n in zip(self.inputs, versions))

    def position(self, name):
        return self.names.index(name)


def trace(model, X):
    """Run ``model`` on ``X`` once and keep every intermediate value.

    Parameters
    ----------
    model : torch.nn.Module
    X : torch.Tensor
        The input batch.

    Returns
    -------
    Trace or GraphTrace or None
        A :class:`Trace` for an ``nn.Sequential``, a :class:`GraphTrace` for
        another model that ``torch.fx`` traces without in-place operations,
        and ``None`` otherwise (pulls then fall back to the naive loop).
    """
    if isinstance(model, nn.Sequential):
        return Trace(model, X)
    graph = _fx_graph(model)
    return None if graph is None else GraphTrace(model, graph, X)


#: Traced graphs per model, keyed by the model's parameter shapes (a pruned
#: copy is a new model; in-place shape changes retrace).
_GRAPHS = weakref.WeakKeyDictionary()

#: In-place functions: a graph using them may alias recorded values.
_IN_PLACE_FUNCTIONS = {
    operator.setitem,
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    operator.ior,
    operator.iand,
}


def _signature(model):
    return tuple((n, tuple(p.shape)) for n, p in model.named_parameters())


def _fx_graph(model):
    """``model``'s ``torch.fx`` graph, or None if untraceable or in-place."""
    signature = _signature(model)
    cached = _GRAPHS.get(model)
    if cached is not None and cached[0] == signature:
        return cached[1]
    try:
        graph = torch.fx.Tracer().trace(model)
    except Exception:  # any tracing failure: the naive path stays correct
        graph = None
    if graph is not None and any(_in_place(model, node) for node in graph.nodes):
        graph = None
    _GRAPHS[model] = (signature, graph)
    return graph


def _in_place(model, node):
    if node.op == "call_function":
        if node.target in _IN_PLACE_FUNCTIONS:
            return True
        # torch.relu_ and the like (operator.or_ and friends are not in place)
        name = getattr(node.target, "__name__", "")
        return name.endswith("_") and node.target is not getattr(operator, name, None)
    if node.op == "call_method":
        return node.target.endswith("_") or node.target.startswith("__i")
    if node.op == "call_module":
        return bool(getattr(model.get_submodule(node.target), "inplace", False))
    return False


def _run_node(model, node, load):
    """Value of one graph node, its arguments read with ``load``."""
    args = torch.fx.node.map_arg(node.args, load)
    kwargs = torch.fx.node.map_arg(node.kwargs, load)
    if node.op == "call_module":
        return model.get_submodule(node.target)(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        obj, *rest = args
        return getattr(obj, node.target)(*rest, **kwargs)
    if node.op == "get_attr":
        value = model
        for part in node.target.split("."):
            value = getattr(value, part)
        return value
    if node.op == "output":
        return args[0]
    raise ValueError(f"unexpected graph node {node.op}")


class GraphTrace:
    """Every intermediate value of a ``torch.fx``-traced forward pass.

    Parameters
    ----------
    model : torch.nn.Module
    graph : torch.fx.Graph
        ``model``'s traced graph.
    X : torch.Tensor
    """

    @torch.no_grad()
    def __init__(self, model, graph, X):
        self.model, self.graph = model, graph
        self.values = {}
        calls = {}
        for node in graph.nodes:
            if node.op == "placeholder":
                default = node.args[0] if node.args else None
                self.values[node] = X if not self.values else default
            else:
                self.values[node] = _run_node(model, node, self.values.__getitem__)
            if node.op == "call_module":
                calls.setdefault(node.target, []).append(node)
            if node.op == "output":
                self.output = self.values[node]
        # Modules called once: the only ones whose input one mask covers.
        self.calls = {
            name: nodes[0] for name, nodes in calls.items() if len(nodes) == 1
        }
        self._downstream = {}

    def downstream(self, node):
        """Nodes whose value depends on ``node`` (itself first), in order."""
        if node not in self._downstream:
            reached = {node}
            for other in self.graph.nodes:
                if other is not node and any(
                    a in reached for a in other.all_input_nodes
                ):
                    reached.add(other)
            self._downstream[node] = [n for n in self.graph.nodes if n in reached]
        return self._downstream[node]

    def run_from(self, node, value):
        """The model output when the module call ``node`` reads ``value``."""

        def call(load):
            args = (value, *torch.fx.node.map_arg(node.args[1:], load))
            kwargs = torch.fx.node.map_arg(node.kwargs, load)
            return self.model.get_submodule(node.target)(*args, **kwargs)

        return self._rerun(node, call)

    def run_after(self, node, value):
        """The model output when the module call ``node`` returns ``value``."""
        return self._rerun(node, lambda load: value)

    def _rerun(self, node, call):
        """Re-run ``node`` (its value: ``call(load)``) and what follows it."""
        new = {}

        def load(n):
            return new[n] if n in new else self.values[n]

        for n in self.downstream(node):
            new[n] = call(load) if n is node else _run_node(self.model, n, load)
            if n.op == "output":
                return new[n]
        return self.output  # the module does not reach the output
