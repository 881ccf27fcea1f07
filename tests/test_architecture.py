"""The package's shape: cheap imports, one registry of defaults, documented API.

- ``import skbandit.policies`` (numpy-only code) and the command line's
  ``--help`` must not load torch.
- Every signature that takes a pruning option defaults to the one registry,
  :data:`skbandit._options.DEFAULTS`.
- Every public function, class and estimator parameter is documented in its
  numpydoc ``Parameters`` section.
- No package's modules import each other in a circle (function-level imports
  included), and no module of ``skbandit/pruning/`` imports another's
  private (underscored) names.
"""

import ast
import dataclasses
import importlib
import inspect
import pathlib
import subprocess
import sys

import pytest
from numpydoc.docscrape import NumpyDocString

from skbandit._options import DEFAULTS, ESTIMATOR_POLICY, PruningDefaults

PUBLIC_PACKAGES = (
    "skbandit",
    "skbandit.policies",
    "skbandit.pruning",
    "skbandit.estimators",
    "skbandit.benchmarks",
    "skbandit.benchmarks.deep",
    "skbandit.export",
)


def _imported_after(code):
    """Top-level packages in ``sys.modules`` after running ``code`` afresh."""
    probe = f"{code}\nimport sys\nprint('MODULES', *sorted(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    modules = out[out.rindex("MODULES") :].split()[1:]
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize(
    "code",
    [
        "import skbandit.policies",
        "import skbandit",
        "import skbandit.benchmarks",
        "from skbandit.cli import main\nmain(['bench', '--help'])",
    ],
)
def test_light_imports_do_not_load_torch(code):
    loaded = _imported_after(code)
    assert not loaded & {"torch", "skorch"}, sorted(loaded & {"torch", "skorch"})


def test_policies_are_numpy_only():
    loaded = _imported_after("import skbandit.policies")
    assert not loaded & {"torch", "sklearn", "scipy", "pandas"}


def test_lazy_names_resolve_and_unknown_names_raise():
    import skbandit
    import skbandit.benchmarks

    assert skbandit.BanditPrunedMLPClassifier.__name__ == "BanditPrunedMLPClassifier"
    for name in skbandit.benchmarks.__all__:
        assert getattr(skbandit.benchmarks, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'bogus'"):
        skbandit.bogus  # noqa: B018


def _signatures_with_pruning_options():
    from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor
    from skbandit.benchmarks.deep import run_task
    from skbandit.pruning import BanditScorer, prune

    return {
        "BanditPrunedMLPClassifier": BanditPrunedMLPClassifier.__init__,
        "BanditPrunedMLPRegressor": BanditPrunedMLPRegressor.__init__,
        "prune": prune,
        "BanditScorer": BanditScorer.__init__,
        "run_task": run_task,
    }


# prune() and the scorer call the pull batch ``batch_size`` (the estimators'
# ``batch_size`` is the training batch).
_ALIASES = {"batch_size": "pull_batch_size"}
# A deep task fine-tunes by its own recipe unless told otherwise; the bare
# scorer is the paper's plain single-unit one, zero-filled (prune() passes
# the library defaults).
_OWN_DEFAULTS = {
    "run_task": {"fine_tune_epochs"},
    "BanditScorer": {"reward", "pull", "compensate"},
    # The estimators' policy is ESTIMATOR_POLICY, prune()'s is chosen per
    # model by default_policy (both checked below).
    # Their fine_tune_epochs is "auto": DEFAULTS' with a stochastic solver,
    # max_iter with L-BFGS (tests/test_mlp_dropin.py checks both).
    "BanditPrunedMLPClassifier": {"policy", "fine_tune_epochs"},
    "BanditPrunedMLPRegressor": {"policy", "fine_tune_epochs"},
    "prune": {"policy"},
}


@pytest.mark.parametrize("name", sorted(_signatures_with_pruning_options()))
def test_pruning_defaults_come_from_the_registry(name):
    signature = inspect.signature(_signatures_with_pruning_options()[name])
    options = set(PruningDefaults.__dataclass_fields__)
    checked = 0
    for parameter in signature.parameters.values():
        option = parameter.name
        if name in ("prune", "BanditScorer"):
            option = _ALIASES.get(option, option)
        if option in _OWN_DEFAULTS.get(name, ()):
            continue
        if option in options and parameter.default is not inspect.Parameter.empty:
            assert parameter.default == getattr(DEFAULTS, option), (name, option)
            checked += 1
    assert checked >= 3, name


@pytest.mark.parametrize(
    "name", ["BanditPrunedMLPClassifier", "BanditPrunedMLPRegressor"]
)
def test_estimator_policy_default_comes_from_the_registry(name):
    signature = inspect.signature(_signatures_with_pruning_options()[name])
    assert signature.parameters["policy"].default == ESTIMATOR_POLICY


def test_prune_policy_default_is_chosen_per_model():
    from torch import nn

    from skbandit._validation import OPTION_CONSTRAINTS
    from skbandit.pruning import default_policy, find_unit_groups, prune
    from skbandit.pruning._prune import _CONSTRAINTS

    assert inspect.signature(prune).parameters["policy"].default is None
    assert _CONSTRAINTS["policy"] == [*OPTION_CONSTRAINTS["policy"], None]
    mlp = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    conv = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 2, 3))
    assert default_policy(mlp, find_unit_groups(mlp), "lstsq") == ESTIMATOR_POLICY
    assert default_policy(conv, find_unit_groups(conv), "lstsq") == DEFAULTS.policy
    assert default_policy(mlp, find_unit_groups(mlp), "mean") == DEFAULTS.policy


def _public_objects():
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{package}.{name}", obj


def _undocumented(obj):
    """Parameters of ``obj``'s signature missing from its numpydoc docstring."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return []
    wanted = [
        p.name
        for p in parameters.values()
        if p.name not in ("self", "cls")
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    documented = set()
    # A dataclass's fields are its constructor's parameters.
    sections = ("Parameters", "Other Parameters")
    if dataclasses.is_dataclass(obj):
        sections += ("Attributes",)
    for section in sections:
        for item in NumpyDocString(inspect.getdoc(obj) or "")[section]:
            documented.update(n.strip() for n in item.name.split(","))
    return [name for name in wanted if name not in documented]


@pytest.mark.parametrize(
    "qualname, obj", sorted(_public_objects(), key=lambda item: item[0])
)
def test_public_parameters_are_documented(qualname, obj):
    if inspect.isclass(obj) and obj.__init__ is object.__init__:
        pytest.skip("no constructor parameters")
    assert not _undocumented(obj), f"{qualname} does not document {_undocumented(obj)}"


def test_estimator_docs_list_every_parameter_with_its_default():
    from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor

    for cls in (BanditPrunedMLPClassifier, BanditPrunedMLPRegressor):
        doc = NumpyDocString(inspect.getdoc(cls))
        types = {item.name: item.type for item in doc["Parameters"]}
        assert set(types) == set(cls().get_params()), cls.__name__
        assert f"default={DEFAULTS.budget}" in types["budget"]
        assert f'default="{ESTIMATOR_POLICY}"' in types["policy"]


# -- the import graph -----------------------------------------------------------

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[1] / "skbandit"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    """``{qualified name: path}`` of every module of skbandit."""
    return {_module_name(p): p for p in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _imports(name, path, modules):
    """``(imported module, imported name or None)`` of every skbandit import
    of one module, at any depth (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:  # ``from . import _module``
                    yield submodule, None
                else:
                    yield target, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None


def _package_of(name, modules):
    return name if modules[name].name == "__init__.py" else name.rpartition(".")[0]


def _cycle(graph):
    """One cycle of ``graph`` (``{node: set of nodes}``) as a list, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _package_graphs():
    """Per package, the import graph of its modules (``__init__`` aside: it
    re-exports the package's names and is imported by none of them)."""
    modules = _modules()
    graphs = {}
    for name, path in modules.items():
        if path.name == "__init__.py":
            continue
        package = _package_of(name, modules)
        graph = graphs.setdefault(package, {})
        graph.setdefault(name, set())
        for target, _ in _imports(name, path, modules):
            if target in modules and target != name:
                if modules[target].name != "__init__.py":
                    if _package_of(target, modules) == package:
                        graph[name].add(target)
    return graphs


def test_the_import_graph_reader_sees_function_level_imports():
    modules = _modules()
    graph = _package_graphs()["skbandit.pruning"]
    assert "skbandit.pruning._units" in graph["skbandit.pruning._discovery"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    # ``from ._version import __version__`` inside a function counts
    cli = set(_imports("skbandit.cli", modules["skbandit.cli"], modules))
    assert ("skbandit._version", "__version__") in cli


@pytest.mark.parametrize("package", sorted(_package_graphs()))
def test_no_import_cycle_inside_a_package(package):
    cycle = _cycle(_package_graphs()[package])
    assert cycle is None, " -> ".join(cycle)


def test_pruning_modules_use_no_private_name_of_another():
    """Inside ``skbandit/pruning/`` a module imports another's public names
    only; variation between group kinds goes through the unit-group protocol
    (``_group.py``), not through private helpers."""
    modules = _modules()
    offences = []
    for name, path in modules.items():
        if not name.startswith("skbandit.pruning"):
            continue
        for target, imported in _imports(name, path, modules):
            if not target.startswith("skbandit.pruning") or imported is None:
                continue
            if imported.startswith("_") and not imported.startswith("__"):
                offences.append(f"{name} imports {target}.{imported}")
    assert not offences, offences


# -- one validation of the pruning options --------------------------------------


def _option_tables():
    """``{caller: (its constraints, its names of the options)}``."""
    from skbandit import BanditPrunedMLPClassifier, BanditPrunedMLPRegressor
    from skbandit.pruning import BanditScorer, prune, remove_units

    alias = {"pull_batch_size": "batch_size"}
    return {
        "BanditPrunedMLPClassifier": (
            BanditPrunedMLPClassifier._parameter_constraints,
            {},
        ),
        "BanditPrunedMLPRegressor": (
            BanditPrunedMLPRegressor._parameter_constraints,
            {},
        ),
        "prune": (prune._skl_parameter_constraints, alias),
        "BanditScorer": (BanditScorer._parameter_constraints, alias),
        "remove_units": (remove_units._skl_parameter_constraints, {}),
    }


# Where a caller accepts more or less than the shared constraint: the
# estimators' prune_ratio="auto" (the accuracy path) and fine_tune_epochs="auto"
# (L-BFGS: max_iter), the scorer's bandit-only
# policies.
_OWN_CONSTRAINTS = {
    "BanditPrunedMLPClassifier": {"prune_ratio", "fine_tune_epochs"},
    "BanditPrunedMLPRegressor": {"prune_ratio", "fine_tune_epochs"},
    "BanditScorer": {"policy"},
    # The table's policies and None (chosen per model).
    "prune": {"policy"},
}


@pytest.mark.parametrize("caller", sorted(_option_tables()))
def test_option_constraints_come_from_one_table(caller):
    from skbandit._validation import OPTION_CONSTRAINTS

    table, alias = _option_tables()[caller]
    checked = 0
    for option, constraints in OPTION_CONSTRAINTS.items():
        name = alias.get(option, option)
        if name not in table:
            continue
        checked += 1
        if option in _OWN_CONSTRAINTS.get(caller, ()):
            continue
        # The same constraint objects, not copies that could drift apart.
        assert table[name] == constraints, (caller, option)
    assert checked >= 1, caller
    assert set(OPTION_CONSTRAINTS) == set(PruningDefaults.__dataclass_fields__)


def test_prune_and_the_estimators_give_the_same_option_error():
    import torch
    from torch import nn

    from skbandit import BanditPrunedMLPClassifier
    from skbandit.pruning import prune

    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    X, y = torch.randn(8, 3), torch.arange(8) % 2
    messages = []
    for call in (
        lambda: prune(net, X, y, budget=1e-3),
        lambda: BanditPrunedMLPClassifier(budget=1e-3).fit(X.numpy(), y.numpy()),
    ):
        with pytest.raises(ValueError) as error:
            call()
        messages.append(str(error.value).split(" of ", 1)[1].split(" ", 1)[1])
    assert messages[0] == messages[1]
    assert "removed in index order" in messages[0]
