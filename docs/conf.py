"""Sphinx configuration of fastopt's documentation (build: see docs/developing.md, "These docs").

Why Sphinx, with MyST for the Markdown pages, rather than MkDocs: fastopt's docstrings are
already reStructuredText in the numpydoc layout (the maths of each optimizer is its module's
docstring, the parameters are its class's), and Sphinx renders them as they are (autodoc +
napoleon); ``sphinx-build -b doctest`` runs every example on these pages against the installed
fastopt, so the examples cannot go stale. The reference pages are reStructuredText (they are
autodoc directives over reStructuredText docstrings, whose footnotes MyST's ``eval-rst`` does not
resolve); the other pages are Markdown.

The build works offline: no intersphinx inventories, no assets from a CDN, no MathJax. The
docstrings write their equations as plain text in literal blocks; their few inline ``:math:``
roles are shown as text too (the ``plaintext`` math renderer below).

The html build also runs ``python -m fastopt tour --quick`` and ``python -m fastopt show all
--html`` and puts their pages into the site, under ``tour-report/`` and ``show/``, which the
tour, reading-the-code and reference pages link to (``_add_generated_pages``).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

from docutils import nodes

import fastopt

project = "fastopt"
author = "the fastopt developers"
copyright = "the fastopt developers"
release = version = fastopt.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_static"]  # _static: files copied as they are (screenshots and their README)

# Cross-references to Python objects are checked (one to a fastopt object that is not documented
# is an error), except the words of numpydoc type fields ("float, default 1e-3", "list of
# ndarray"), which napoleon turns into class references, and one method named without its class.
nitpicky = True
nitpick_ignore_regex = [("py:class", r"(?!fastopt\.).*")]
nitpick_ignore = [("py:meth", "add_param_group")]
# numpydoc "References" sections list works that the text need not cite.
suppress_warnings = ["ref.footnote"]

myst_heading_anchors = 3  # links such as design.md#bit-for-bit

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

doctest_global_setup = """
import numpy as np
import fastopt
"""

html_theme = "alabaster"  # ships with Sphinx: no theme to install, no web fonts
# wide enough for the docstrings' equation blocks (about 150 characters with their comments)
html_theme_options = {"page_width": "1320px", "body_max_width": "none", "sidebar_width": "230px"}
html_title = f"fastopt {release}"
html_math_renderer = "plaintext"
highlight_language = "text"  # the docstrings' literal blocks are equations, not Python


# --- inline maths as text ---------------------------------------------------------------------

# The TeX commands the docstrings' inline maths uses, shown as the characters they stand for.
_TEX = {r"\ge": "≥", r"\le": "≤", r"\ne": "≠", r"\cdot": "·", r"\infty": "∞"}


def _plain(tex: str) -> str:
    return re.sub(r"\\[a-zA-Z]+", lambda m: _TEX.get(m.group(0), m.group(0)), tex)


def _visit_math(self, node):
    self.body.append(self.starttag(node, "span", "", CLASS="math"))
    self.body.append(html.escape(_plain(node.astext())))
    self.body.append("</span>")
    raise nodes.SkipNode


def _visit_displaymath(self, node):
    self.body.append(self.starttag(node, "pre", "", CLASS="math"))
    self.body.append(html.escape(_plain(node.astext())))
    self.body.append("</pre>")
    raise nodes.SkipNode


# --- the optimizer classes' docstrings --------------------------------------------------------

_FIELD = re.compile(r"[A-Za-z_*][\w*]*(, [A-Za-z_*][\w*]*)*( : .*)?$")  # "name : type", "a, b"


def _notes_after_parameters(app, what, name, obj, options, lines):
    """Give a paragraph that follows a ``Parameters`` section unindented (the optimizer classes'
    "State per parameter: ..." line) a ``Notes`` heading, so that napoleon does not read it as one
    more parameter. Runs before napoleon; ``help()`` shows the docstrings unchanged."""
    try:
        start = lines.index("Parameters") + 2
    except ValueError:
        return
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line[:1].strip() and not lines[i - 1].strip() and not _FIELD.match(line):
            if i + 1 < len(lines) and set(lines[i + 1]) == {"-"}:  # the next section's heading
                return
            lines[i:i] = ["Notes", "-----"]
            return


# --- the pages the command line writes --------------------------------------------------------

GENERATED = {
    # folder in the site: (command, a file it must have written)
    "tour-report": (["tour", "--quick", "--out"], "report.html"),
    "show": (["show", "all", "--html"], "index.html"),
}


def _add_generated_pages(app, exception):
    """Run the tour (quick) and ``show all`` into the built site; a failure fails the build."""
    if exception is not None or app.builder.format != "html":
        return
    for folder, (command, expected) in GENERATED.items():
        out = Path(app.outdir) / folder
        shutil.rmtree(out, ignore_errors=True)
        run = subprocess.run(
            [sys.executable, "-m", "fastopt", *command, str(out)], capture_output=True, text=True
        )
        if run.returncode != 0 or not (out / expected).is_file():
            raise RuntimeError(
                f"python -m fastopt {' '.join(command)} {out} failed (exit {run.returncode}):\n"
                f"{run.stdout}\n{run.stderr}"
            )


def setup(app):
    app.connect("autodoc-process-docstring", _notes_after_parameters, priority=100)
    app.connect("build-finished", _add_generated_pages)
    app.add_html_math_renderer("plaintext", (_visit_math, None), (_visit_displaymath, None))
