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
import sys
from datetime import date

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))

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
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/README.md"]
root_doc = "index"
default_role = "literal"
nitpicky = False

# -- autodoc / autosummary / numpydoc -----------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
autodoc_member_order = "bysource"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- the example gallery -------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skbandit",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skbandit": None},
    "remove_config_comments": True,
    "show_memory": False,
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
html_theme_options = {
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False

# -- committed benchmark results ----------------------------------------------


def _write_results_include():
    """Write ``generated/benchmark_results.inc`` for ``benchmarks.rst``.

    It is a toctree of every ``docs/results/**/*.md`` when such files exist
    (and myst-parser can read them), otherwise a note that none are committed.
    """
    reports = sorted(
        os.path.relpath(path, HERE)[: -len(".md")].replace(os.sep, "/")
        for path in glob.glob(os.path.join(HERE, "results", "**", "*.md"), recursive=True)
    )
    os.makedirs(os.path.join(HERE, "generated"), exist_ok=True)
    if reports and "myst_parser" in extensions:
        lines = [".. toctree::", "   :maxdepth: 1", ""]
        lines += [f"   {name}" for name in reports]
    elif reports:
        lines = [
            ".. note::",
            "",
            "   Result files are committed under ``docs/results/`` but",
            "   ``myst-parser`` is not installed, so they are not rendered",
            '   here. Install the ``docs`` extra (``pip install -e ".[docs]"``).',
        ]
    else:
        lines = [
            ".. note::",
            "",
            "   No benchmark results are committed in this version of the",
            "   documentation yet. Regenerate them with the commands below; the",
            "   reports written under ``docs/results/`` appear on this page.",
        ]
    path = os.path.join(HERE, "generated", "benchmark_results.inc")
    text = "\n".join(lines) + "\n"
    old = open(path).read() if os.path.exists(path) else None
    if text != old:  # keep the mtime, so an unchanged page is not rebuilt
        with open(path, "w") as f:
            f.write(text)


_write_results_include()
