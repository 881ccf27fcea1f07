"""Sphinx configuration of the skbandit documentation.

Build (warnings are errors, the example gallery is executed)::

    pip install torch==2.13.0 && pip install -e ".[docs]"
    sphinx-build -W -b html docs docs/_build/html

Everything works offline: no intersphinx inventories are fetched and MathJax
is served from the build itself (``sphinx-mathjax-offline`` copies it into
``_static/mathjax``).
"""

import glob
import importlib.util
import os
import re
import sys
from datetime import date

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))
sys.path.insert(0, HERE)  # gallery_order

import skbandit  # noqa: E402

# -- project -------------------------------------------------------------------

project = "skbandit"
author = "skbandit developers"
copyright = f"{date.today().year}, {author}"
release = skbandit.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# MathJax from the build itself, so formulas render without a network.
if importlib.util.find_spec("sphinx-mathjax-offline") is not None:
    extensions.append("sphinx-mathjax-offline")

# Committed benchmark reports are markdown (docs/results/**/report.md).
if importlib.util.find_spec("myst_parser") is not None:
    extensions.append("myst_parser")
    source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
    myst_enable_extensions = ["dollarmath"]
    myst_heading_anchors = 3

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "README.md", "**/README.md"]
root_doc = "index"
default_role = "literal"
nitpicky = False
# Intersphinx is off (the build must work offline), so references into other
# projects cannot resolve; they render as plain code.
nitpick_ignore_regex = [(r"py:.*", r"(sklearn|numpy|torch|scipy|joblib|skorch)\..*")]

# -- autodoc / autosummary / numpydoc -----------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {}
autodoc_typehints = "none"
autodoc_member_order = "bysource"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

_PARENS = re.compile(r"\([^()]*\)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?![`\w])")


def _quote_shapes(app, what, name, obj, options, lines):
    """Quote fitted-attribute names in the ``shape (...)`` of docstrings.

    In reStructuredText a word ending with ``_`` is a hyperlink reference,
    so ``ndarray of shape (n_arms_,)`` fails the build. scikit-learn writes
    ``(`n_features_in_`,)`` instead; this hook does the same for docstrings
    that do not, and leaves everything else alone.
    """

    def quote(match):
        return _TRAILING_UNDERSCORE.sub(r"`\1`", match.group(0))

    lines[:] = [
        _PARENS.sub(quote, line) if "shape (" in line else line for line in lines
    ]


def setup(app):
    # Before numpydoc (priority 500) reformats the sections.
    app.connect("autodoc-process-docstring", _quote_shapes, priority=400)


# -- the example gallery -------------------------------------------------------

# The examples train tiny networks, for which one torch thread is fastest; a
# second thread only adds synchronisation, which is ruinous when the build
# shares its cores with other work. Users running the scripts are unaffected.
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a dependency
    pass

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "doc_module": ("skbandit",),
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    "show_memory": False,
    # No docs/sg_execution_times.rst (its table loads scripts from a CDN).
    "write_computation_times": False,
    "min_reported_time": 1,
    # An example that raises fails the build.
    "only_warn_on_example_error": False,
    "abort_on_example_error": False,
    "plot_gallery": "True",
}

# -- HTML ----------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skbandit {release}"
html_static_path = ["_static"]
html_css_files = ["skbandit.css"]
html_theme_options = {
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
# Single pages without sub-pages: no (empty) section navigation on the left.
html_sidebars = {
    page: []
    for page in (
        "index",
        "getting_started",
        "method",
        "user_guide",
        "benchmarks",
        "changelog",
    )
}
html_show_sourcelink = False

# -- committed benchmark results ----------------------------------------------

ROOT = os.path.abspath(os.path.join(HERE, ".."))


def _copy_if_changed(src, dst):
    """Copy ``src`` to ``dst`` unless identical (an unchanged page is not rebuilt)."""
    with open(src, "rb") as f:
        data = f.read()
    if os.path.exists(dst):
        with open(dst, "rb") as f:
            if f.read() == data:
                return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "wb") as f:
        f.write(data)


def _benchmark_reports():
    """Documents of the committed benchmark reports, without ``.md``.

    Reports written into ``docs/results/`` are used in place; those under
    ``benchmarks/results/<suite>/`` (outside the Sphinx source folder) are
    copied, with their figures, to ``docs/generated/results/<suite>/``.
    """
    reports = []
    pattern = os.path.join(HERE, "results", "**", "*.md")
    for path in sorted(glob.glob(pattern, recursive=True)):
        if os.path.basename(path) != "README.md":
            reports.append(os.path.relpath(path, HERE)[: -len(".md")])
    pattern = os.path.join(ROOT, "benchmarks", "results", "*", "*.md")
    folders = sorted({os.path.dirname(p) for p in glob.glob(pattern)}, key=_run_order)
    for folder in folders:
        target = os.path.join(HERE, "generated", "results", os.path.basename(folder))
        for name in os.listdir(folder):
            if name.endswith((".md", ".png", ".svg")):
                _copy_if_changed(os.path.join(folder, name), os.path.join(target, name))
        # The report first, then any other page of the run (e.g. summary.md).
        pages = sorted(n[:-3] for n in os.listdir(folder) if n.endswith(".md"))
        for page in sorted(pages, key=lambda n: n != "report"):
            path = os.path.relpath(os.path.join(target, page), HERE)
            reports.append(f"{_page_title(os.path.basename(folder), page)} <{path}>")
    return [name.replace(os.sep, "/") for name in reports]


#: Toctree titles of the committed runs: one name per run, so that reports
#: of the same suite stay apart.
_RUN_TITLES = {
    "heldout": "Held-out check of the defaults",
    "tabular": "Tabular classification",
    "regression": "Tabular regression",
    "deep": "Deep tasks",
    "compensation-tabular": "Without fine-tuning, per compensation: tabular",
    "compensation-regression": "Without fine-tuning, per compensation: regression",
    "compensation-deep": "Without fine-tuning, per compensation: deep tasks",
    "pulls-tabular": "Company, single and set pulls: tabular",
    "bandit": "Does the bandit earn its place?",
    "size": "Finding the size: prune_ratio='auto' against a grid",
    "deep-seeds": "Deep tasks over three seeds: greedy OBS against the bandit",
    "lm": "Decoder language models: heads and MLP channels",
    "conv-default": "prune()'s default on convolutions: tuning split",
}
_PAGE_TITLES = {
    "report": "",
    "summary": "summary",
    "tuning": "choice of the defaults",
    "heldout": "held-out split",
    "fresh": "datasets in no suite",
}


def _run_order(folder):
    """Runs in :data:`_RUN_TITLES` order (headline suites first), others after."""
    run = os.path.basename(folder)
    runs = list(_RUN_TITLES)
    return (runs.index(run) if run in runs else len(runs), run)


def _page_title(run, page):
    title = _RUN_TITLES.get(run, run)
    detail = _PAGE_TITLES.get(page, page)
    return f"{title}: {detail}" if detail else title


def _write_results_include():
    """Write ``generated/benchmark_results.inc`` for ``benchmarks.rst``.

    A toctree of every committed report (see :func:`_benchmark_reports`) when
    there are any and myst-parser can read them, otherwise a note.
    """
    reports = _benchmark_reports()
    if reports and "myst_parser" in extensions:
        lines = [".. toctree::", "   :maxdepth: 1", ""]
        lines += [f"   {name}" for name in reports]
    elif reports:
        lines = [
            ".. note::",
            "",
            "   Benchmark reports are committed but ``myst-parser`` is not",
            "   installed, so they are not rendered here. Install the ``docs``",
            '   extra (``pip install -e ".[docs]"``).',
        ]
    else:
        lines = [
            ".. note::",
            "",
            "   No benchmark results are committed in this version of the",
            "   documentation yet. Regenerate them with the commands above; the",
            "   reports appear on this page.",
        ]
    os.makedirs(os.path.join(HERE, "generated"), exist_ok=True)
    path = os.path.join(HERE, "generated", "benchmark_results.inc")
    text = "\n".join(lines) + "\n"
    old = open(path).read() if os.path.exists(path) else None
    if text != old:  # keep the mtime, so an unchanged page is not rebuilt
        with open(path, "w") as f:
            f.write(text)


_write_results_include()
