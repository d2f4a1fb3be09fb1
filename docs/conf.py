"""Sphinx configuration of the probmix documentation.

Build (from the repository root; warnings are errors)::

    python -m pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The Markdown pages are MyST, the API reference is autodoc + numpydoc, and ``examples/`` is a
sphinx-gallery gallery whose scripts run during the build (their figures are part of the site).

Equations offline
-----------------
Every page must show typeset equations without network access: no CDN. Three ways were weighed:

* ``sphinx-mathjax-offline`` (PyPI, chosen): a pure-Python wheel holding MathJax 3.2.2. It sets
  ``mathjax_path`` to a local copy and copies MathJax into ``_build/html/_static/mathjax`` when
  the build finishes, so the built site is self-contained and works from ``file://``. It is
  installed by ``pip`` like every other docs dependency, needs no Node.js, LaTeX or browser at
  build time, and renders in the reader's browser exactly as the usual MathJax setup does
  (``sphinx.ext.mathjax``, MyST's ``dollarmath``/``amsmath``, sphinx-gallery's ``.. math::``).
  Its last release is old, but it is data plus ten lines of glue that use only stable Sphinx
  API (``build-finished``, ``copy_asset``, ``mathjax_path``); ``_check_offline``
  below fails the build if that glue ever stops working, so a silent fallback to a CDN cannot
  happen.
* ``sphinxcontrib-katex`` with server-side prerendering: needs Node.js and the ``katex`` npm
  package on the building machine, which pip cannot install.
* MathJax copied from the npm registry at build time: needs npm and a download step outside
  pip; the same files as the first option, with more moving parts.
"""

from __future__ import annotations

import importlib
import re
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Build from the checkout even when probmix is not installed (the gallery imports it too).
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

import probmix  # noqa: E402

# -- project ------------------------------------------------------------------------------------
project = "probmix"
author = "the probmix developers"
copyright = "the probmix developers"
release = probmix.__version__
version = release

# -- general ------------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from _static/mathjax: see the module docstring
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5"]
templates_path: list[str] = []
default_role = "py:obj"  # `name` in docstrings is a cross-reference, as in numpy's docs
pygments_style = "sphinx"
suppress_warnings: list[str] = []

# -- MyST (the Markdown pages) -------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # [text](#1-model-selection-bic-aic-and-icl) style links
myst_dmath_double_inline = True

# -- maths ---------------------------------------------------------------------------------------
mathjax3_config = {"tex": {"tags": "ams"}}

# -- autodoc + numpydoc --------------------------------------------------------------------------
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters/Returns sections carry the types
autodoc_class_signature = "mixed"
numpydoc_show_class_members = False  # autodoc's :members: lists them, once
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"probmix {release}"
html_static_path = ["_static"]
html_css_files = ["probmix.css"]
html_show_sourcelink = False
html_copy_source = False

# -- sphinx-gallery ------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # every plot_*.py runs during the build
    "within_subsection_order": "conf.ExampleOrder",
    # Named by string ("module.function"), so the configuration can be pickled and cached;
    # ``conf`` is this file, importable because DOCS is on sys.path.
    "image_scrapers": ("matplotlib", "conf.gif_scraper"),
    "reset_argv": "conf.example_argv",
    "abort_on_example_error": True,
    "doc_module": ("probmix",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"probmix": None},
    "show_memory": False,
    "min_reported_time": 1,
    "remove_config_comments": True,
    "download_all_examples": False,
    # The computation-times pages load jQuery and DataTables from CDNs: not in an offline site.
    "write_computation_times": False,
}


# -- gallery hooks -------------------------------------------------------------------------------
# Every example takes ``[output.png [animation.gif]]`` on its command line and writes its figure
# there (the test suite runs them the same way). During the build the outputs go to a scratch
# directory, not into examples/; the figures shown in the gallery are the ones sphinx-gallery
# scrapes from matplotlib, plus any GIF an example wrote, which :func:`gif_scraper` embeds.
_SCRATCH: list[Path] = []


def _scratch() -> Path:
    if not _SCRATCH:
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="probmix-gallery-")))
    return _SCRATCH[0]


class ExampleOrder:
    """The gallery's order: the iris tutorial, the theory in pictures, then the tools."""

    ORDER = ("plot_iris_tutorial.py", "plot_iris_em_animation.py", "plot_iris.py",
             "plot_em_bound.py", "plot_estep_family.py", "plot_pruning.py",
             "plot_model_selection.py", "plot_poisson_mixture.py", "plot_custom_family.py")

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __repr__(self) -> str:  # sphinx-gallery compares configurations by their repr
        return f"<ExampleOrder {self.ORDER}>"

    def __call__(self, filename: str) -> tuple[int, str]:
        name = Path(filename).name
        return (self.ORDER.index(name) if name in self.ORDER else len(self.ORDER), name)


def example_argv(gallery_conf: dict, script_vars: dict) -> list[str]:
    """``sys.argv[1:]`` of an example run by sphinx-gallery: its PNG and GIF paths."""
    stem = Path(script_vars["src_file"]).stem
    return [str(_scratch() / f"{stem}.png"), str(_scratch() / f"{stem}.gif")]


def gif_scraper(block, block_vars: dict, gallery_conf: dict, **kwargs) -> str:
    """Embed the GIF animations an example code block saved (e.g. the EM animation).

    sphinx-gallery's matplotlib scraper captures open figures as PNG; an animation saved with
    ``PillowWriter`` is a file, so it is moved into the gallery's image folder here.
    """
    from sphinx_gallery.scrapers import figure_rst

    stem = Path(block_vars["src_file"]).stem
    images = []
    for gif, image_path in zip(sorted(_scratch().glob(f"{stem}*.gif")),
                               block_vars["image_path_iterator"]):
        target = Path(image_path).with_suffix(".gif")
        shutil.move(gif, target)
        images.append(target)
    return figure_rst(images, gallery_conf["src_dir"]) if images else ""


# -- docstrings owned elsewhere ------------------------------------------------------------------
# A docstring in a module this documentation does not own that breaks the -W build is fixed
# here at render time, narrowly (one object, one exact text), and reported so that the source
# gets fixed; the fix must then be removed from this table.
_DOCSTRING_FIXES: dict[str, list[tuple[str, str]]] = {}


def _fix_docstrings(app, what, name, obj, options, lines) -> None:
    key = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
    for old, new in _DOCSTRING_FIXES.get(key, ()):
        lines[:] = [line.replace(old, new) for line in lines]


# -- cross-references ----------------------------------------------------------------------------
# Each public object is documented once, in the public module that exports it (``probmix.em``
# for EMAlgorithm), but readers and docstrings also name it as ``probmix.EMAlgorithm`` or by
# its defining module (``probmix.em.algorithm.EMAlgorithm``). Those aliases resolve to the one
# documented entry.
PUBLIC_MODULES = ["probmix", "probmix.distributions", "probmix.em", "probmix.priors",
                  "probmix.init", "probmix.selection", "probmix.io", "probmix.plot",
                  "probmix.testing", "probmix.datasets", "probmix.exceptions"]
# Where an object exported by several public modules is documented (see docs/api/).
_DOCUMENTED_IN = {"GMM": "probmix", "MixtureModel": "probmix"}
_NARRATIVE_EXCLUDE = ("api/", "auto_examples/", "gen_modules/")


def _alias_table() -> dict[str, str]:
    """Every name under which a public object can be written -> its documented name."""
    documented: dict[int, str] = {}
    aliases: dict[str, str] = {}
    for module_name in PUBLIC_MODULES[::-1]:  # the most specific module wins
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not isinstance(obj, type) and not callable(obj):
                continue
            home = _DOCUMENTED_IN.get(name, module_name)
            documented.setdefault(id(obj), f"{home}.{name}")
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if id(obj) not in documented:
                continue
            target = documented[id(obj)]
            for alias in (f"{module_name}.{name}",
                          f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"):
                if alias != target:
                    aliases.setdefault(alias, target)
    return aliases


_ALIASES: dict[str, str] = {}


def _resolve_alias(app, env, node, contnode):
    """Resolve ``probmix.EMAlgorithm.fit`` as ``probmix.em.EMAlgorithm.fit``, and so on."""
    if node.get("refdomain") != "py":
        return None
    if not _ALIASES:
        _ALIASES.update(_alias_table())
    target = node["reftarget"]
    for alias in sorted(_ALIASES, key=len, reverse=True):
        if target == alias or target.startswith(alias + "."):
            new_target = _ALIASES[alias] + target[len(alias):]
            domain = env.domains["py"]
            result = domain.resolve_xref(env, node.get("refdoc", ""), app.builder,
                                         node["reftype"], new_target, node, contnode)
            if result is not None:
                # Every handler sees the event; this tells the strict check below.
                node["probmix_alias_resolved"] = True
            return result
    return None


def _strict_narrative_references(app, env, node, contnode):
    """In the chapters (not the API pages), an unresolved link to code is an error.

    Sphinx ignores unresolved Python references unless ``nitpicky`` is on, and nitpicky would
    also flag every ``ndarray of shape ...`` in the numpydoc sections. The chapters promise
    that every equation links the code computing it, so there a dead link fails the build.
    """
    if node.get("refdomain") != "py" or node.get("probmix_alias_resolved"):
        return None
    doc = node.get("refdoc", "")
    if doc.startswith(_NARRATIVE_EXCLUDE):
        return None
    from sphinx.util import logging

    logging.getLogger("probmix.docs").warning(
        "unresolved reference to %r (a chapter must link documented code)", node["reftarget"],
        location=node, type="probmix", subtype="xref")
    return None


# -- offline guard -------------------------------------------------------------------------------
_EXTERNAL_ASSET = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//", re.I)


def _check_offline(app, exception) -> None:
    """Fail the build if MathJax, or any script or stylesheet, would come from the network."""
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.errors import ExtensionError

    outdir = Path(app.outdir)
    script = outdir / "_static" / app.config.mathjax_path
    if "://" in app.config.mathjax_path or not script.is_file():
        raise ExtensionError(f"MathJax is not served from the build: mathjax_path="
                             f"{app.config.mathjax_path!r} (see docs/conf.py)")
    for page in outdir.rglob("*.html"):
        if _EXTERNAL_ASSET.search(page.read_text(encoding="utf-8")):
            raise ExtensionError(f"{page} loads a script or stylesheet from the network")


def setup(app):
    app.connect("autodoc-process-docstring", _fix_docstrings)
    app.connect("missing-reference", _resolve_alias, priority=400)
    app.connect("missing-reference", _strict_narrative_references, priority=900)
    # after sphinx-mathjax-offline has copied MathJax (default priority 500)
    app.connect("build-finished", _check_offline, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
