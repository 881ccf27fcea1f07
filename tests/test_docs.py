"""The documentation's executable parts: doctests, example scripts, API pages.

- The ``Examples`` sections of the public modules run as doctests here
  (the same check as ``pytest --doctest-modules``, collected with the
  :mod:`doctest` module so it needs no pytest option).
- The gallery scripts under ``examples/`` are only compiled, never run: the
  documentation build (``sphinx-build -W -b html docs docs/_build/html``)
  executes them.
- Every public name has an entry in ``docs/api.rst``.
"""

import ast
import doctest
import importlib
import inspect
import io
import pkgutil
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
PACKAGES = (
    "skbandit.policies",
    "skbandit.pruning",
    "skbandit.estimators",
    "skbandit.benchmarks",
)
DOCUMENTED = (
    "skbandit",
    "skbandit.policies",
    "skbandit.pruning",
    "skbandit.benchmarks",
)


def _modules(package_name):
    package = importlib.import_module(package_name)
    names = [package_name]
    for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
        names.append(info.name)
    return sorted(names)


def _doctests(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, module_name) if t.examples]


MODULES = [name for package in PACKAGES for name in _modules(package)] + [
    "skbandit._options",
    "skbandit._lazy",
    "skbandit._cache",
]
# Only the modules that have doctests become test cases.
DOCTEST_MODULES = [name for name in MODULES if _doctests(name)]


@pytest.fixture
def one_torch_thread():
    """Run the doctests on one torch thread: the networks are tiny, and on a
    busy machine a second thread only adds synchronisation cost."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("module_name", DOCTEST_MODULES)
def test_doctests(module_name, one_torch_thread):
    tests = _doctests(module_name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    for test in tests:
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"doctest failures in {module_name}:\n{out.getvalue()}"


def test_doctests_are_collected():
    # Guard against a collection that silently finds nothing.
    n_examples = sum(len(t.examples) for m in MODULES for t in _doctests(m))
    assert n_examples >= 50, n_examples


def test_a_failing_doctest_is_reported():
    parser = doctest.DocTestParser()
    test = parser.get_doctest(">>> 1 + 1\n3\n", {}, "fake", "fake.py", 0)
    runner = doctest.DocTestRunner()
    runner.run(test, out=lambda text: None)
    assert runner.summarize(verbose=False).failed == 1


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_compiles(path):
    source = path.read_text(encoding="utf-8")
    compile(source, str(path), "exec")


def _title(docstring):
    """The sphinx-gallery title: ``(overline, title, underline)`` lines."""
    lines = [line.rstrip() for line in docstring.strip().splitlines()]
    if len(lines) >= 3 and set(lines[0]) == {"="}:
        return lines[0], lines[1].strip(), lines[2]
    return None, lines[0].strip() if lines else "", lines[1] if len(lines) > 1 else ""


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_has_gallery_header(path):
    assert path.name.startswith("plot_"), "gallery scripts are named plot_*.py"
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{path.name} needs a module docstring (the gallery header)"
    overline, title, underline = _title(docstring)
    assert title, f"{path.name}: the docstring must start with a title"
    assert re.fullmatch("=+", underline) and len(underline) >= len(title), (
        f"{path.name}: the title must be underlined with '=' at least as long "
        f"as the title"
    )
    if overline is not None:
        assert len(overline) >= len(title), f"{path.name}: overline too short"


def test_gallery_header_exists():
    header = ROOT / "examples" / "GALLERY_HEADER.rst"
    assert header.exists() or (ROOT / "examples" / "README.txt").exists()


def _public_names(module_name):
    module = importlib.import_module(module_name)
    return [name for name in module.__all__ if not name.startswith("__")]


@pytest.mark.parametrize("module_name", DOCUMENTED)
def test_every_public_name_is_in_the_api_reference(module_name):
    api = (ROOT / "docs" / "api.rst").read_text(encoding="utf-8")
    entries = set(re.findall(r"^\s{3}(\w+)\s*$", api, flags=re.M))
    entries |= set(re.findall(r"^\.\. data:: (\w+)", api, flags=re.M))
    missing = [n for n in _public_names(module_name) if n not in entries]
    assert not missing, f"add to docs/api.rst: {module_name}.{missing}"


# Public classes/functions whose docstring has no ``Examples`` section yet.
# Remove a name once its docstring has one; never add new public names here.
MISSING_EXAMPLES = {
    "skbandit.benchmarks.Method",
    "skbandit.benchmarks.Report",
    "skbandit.benchmarks.RunSummary",
    "skbandit.benchmarks.StoreError",
    "skbandit.benchmarks.integrity_check",
    "skbandit.benchmarks.run_benchmark",
    "skbandit.benchmarks.write_report",
    "skbandit.policies.BasePolicy",
    "skbandit.pruning.ActivationScorer",
    "skbandit.pruning.BanditScorer",
    "skbandit.pruning.LayerReport",
    "skbandit.pruning.MagnitudeScorer",
    "skbandit.pruning.PruningReport",
    "skbandit.pruning.RandomScorer",
    "skbandit.pruning.Scores",
    "skbandit.pruning.UnitGroup",
    "skbandit.pruning.evaluate_arms",
    "skbandit.pruning.evaluate_arms_naive",
    "skbandit.pruning.evaluate_loss",
    "skbandit.pruning.make_reward",
    "skbandit.pruning.make_scorer",
    "skbandit.pruning.removals_by_count",
    "skbandit.pruning.removals_for_params",
    "skbandit.pruning.remove_units",
    "skbandit.pruning.resolve_loss",
    "skbandit.pruning.sample_metric",
    "skbandit.pruning.trace",
    "skbandit.pruning.unit_means",
}


def test_public_docstrings_have_examples():
    missing = []
    for module_name in DOCUMENTED:
        module = importlib.import_module(module_name)
        for name in _public_names(module_name):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            qualified = f"{module_name}.{name}"
            if qualified in MISSING_EXAMPLES:
                continue
            if "Examples\n" not in (inspect.getdoc(obj) or ""):
                missing.append(qualified)
    assert not missing, f"public names without an Examples section: {missing}"
