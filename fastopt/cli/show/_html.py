"""The web view: one self-contained page per optimizer (no CDN, no web fonts, works offline).

A page holds, from its optimizer folder's docstring, the numbered equations set as MathML (see
:mod:`fastopt.cli.show._mathml`; browsers render it natively), the prose, the symbol table and the
references; and the three kernels in three columns, highlighted with Pygments, lined up equation
by equation as in the terminal. Pointing at an equation or at a line's tag lights up every line
computing that equation in all three columns; clicking pins it. CSS and the few lines of
JavaScript are inline; without JavaScript the tags are plain links to the equations.
"""

from __future__ import annotations

import functools
import inspect
import re
from html import escape
from pathlib import Path

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES

from fastopt import __version__

from ._docstring import Block, Equation, MathDoc
from ._mathml import GREEK, MathSyntaxError, formula_to_mathml, identifier_to_mathml, is_symbol
from ._source import DESCRIPTION, CodeLine, Kernel, align
from .model import OPTIMIZERS, OptimizerView, load_view

PYGMENTS_STYLE = "default"
INDEX = "index.html"


def page_name(class_name: str) -> str:
    return f"{class_name.lower()}.html"


def write_pages(names: list[str], path: Path, single: bool) -> list[Path]:
    """Write the pages; ``path`` is a file (one optimizer) or a directory (``all``, with an index)."""
    views = [load_view(name) for name in names]
    if single:
        target = path / page_name(names[0]) if path.is_dir() else path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(optimizer_page(views[0], siblings=None), encoding="utf-8")
        return [target]
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for view in views:
        target = path / page_name(view.title)
        target.write_text(optimizer_page(view, siblings=[v.title for v in views]), encoding="utf-8")
        written.append(target)
    (path / INDEX).write_text(index_page(views), encoding="utf-8")
    return [*written, path / INDEX]


# --- pages -------------------------------------------------------------------------------------


def optimizer_page(view: OptimizerView, siblings: list[str] | None) -> str:
    """One optimizer; ``siblings`` (class names) adds navigation between pages written together."""
    links = {f"fastopt.{name.lower()}": page_name(name) for name in siblings or ()}
    links.update({f"fastopt.{name}": page_name(name) for name in siblings or ()})
    math = view.math
    nav = ""
    if siblings:
        items = "".join(
            f'<a href="{page_name(n)}"{" aria-current=page" if n == view.title else ""}>{escape(n)}</a>' for n in siblings
        )
        nav = f'<nav><a href="{INDEX}">fastopt</a> › {items}</nav>'
    summary = math.summary.split(":", 1)[1].strip() if math.summary.startswith(view.title + ":") else math.summary
    body = f"""
{nav}
<header>
  <h1>{escape(view.title)}</h1>
  <p class="summary">{inline(summary, links)}</p>
</header>
<section id="equations">
  <h2>The update</h2>
  <p>{inline(math.lead_in, links)}</p>
  {equations_table(math.equations, links)}
  {render_blocks(_section_blocks(math, ""), links)}
</section>
<section id="scalars">
  {_scalars_heading(view.scalars)}
  {scalars_block(view.scalars)}
</section>
<section id="code">
  <h2>Three implementations, line by line</h2>
  <p class="hint">The number in a line's margin is its equation tag (the <code># (k)</code> comment
  at the end of the line in the file). Rows are lined up so that the lines computing an equation
  start side by side. Point at an equation or a tag to light up its lines in all three columns;
  click to keep them lit. Where the window is too narrow for three columns, they scroll sideways.</p>
  {code_grid(view.kernels)}
</section>
{other_sections(math, links)}
<footer>Written by <code>python -m fastopt show {escape(view.name)} --html</code> (fastopt {escape(__version__)})
from <code>{escape(view.package.replace(".", "/"))}/__init__.py</code> (the maths) and
{", ".join(f"<code>{escape(k.path)}</code>" for k in view.kernels)}.</footer>
"""
    return _document(f"{view.title} · fastopt", body)


def index_page(views: list[OptimizerView]) -> str:
    items = "".join(
        f'<li><a href="{page_name(v.title)}">{escape(v.title)}</a> '
        f"<span>{inline(v.math.summary.split(':', 1)[-1].strip(), {})}</span> "
        f'<span class="count">{len(v.math.equations)} equations</span></li>'
        for v in views
    )
    body = f"""
<header><h1>fastopt: the optimizers, equation by equation</h1>
<p class="summary">Each page shows an optimizer's numbered equations and its three implementations,
NumPy reference, Numba and Cython, side by side, each line tagged with the equation it computes.</p></header>
<ol class="index">{items}</ol>
<footer>Written by <code>python -m fastopt show all --html</code> (fastopt {escape(__version__)}).</footer>
"""
    return _document("fastopt: the optimizers", body)


def _document(title: str, body: str) -> str:
    style_defs = HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".hl")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>
{CSS}
{style_defs}
</style>
</head>
<body>
{body}
<script>
{SCRIPT}
</script>
</body>
</html>
"""


# --- equations ---------------------------------------------------------------------------------


def equations_table(equations: list[Equation], links: dict[str, str]) -> str:
    rows = []
    for equation in equations:
        for index, line in enumerate(equation.lines):
            tag = _tag_link(equation.tag) if index == 0 else ""
            row_id = f' id="eq-{equation.tag}"' if index == 0 else ""
            note = (
                _maths_or_text(line.note.lstrip("= "), prefix="<mo>=</mo>")
                if line.note.startswith("=")
                else note_html(line.note, links)
            )
            rows.append(
                f'<tr{row_id} data-eq="{equation.tag}" style="{_hue(equation.tag)}">'
                f'<th>{tag}</th><td class="formula" title="{escape(line.formula)}">{_maths_or_text(line.formula)}</td>'
                f'<td class="note">{note}</td></tr>'
            )
    return f'<div class="scroll-x"><table class="equations">{"".join(rows)}</table></div>'


def _maths_or_text(formula: str, prefix: str = "", display: bool = True) -> str:
    """MathML for a formula; if the notation is new to the parser, the text itself."""
    try:
        mathml = formula_to_mathml(formula, display=display)
    except MathSyntaxError:
        return f'<code class="unparsed">{escape(formula)}</code>'
    return mathml.replace("<mrow>", f"<mrow>{prefix}", 1) if prefix else mathml


_NOTE_TOKEN = re.compile(r"(?P<eqref>\((?P<tag>\d+[a-z]?)\))|(?P<op>!=|>=|<=)|(?P<word>[A-Za-z][A-Za-z0-9]*'?(?:_[A-Za-z0-9{}\-+]+)+|[A-Za-z]+)")


def note_html(note: str, links: dict[str, str]) -> str:
    """A note beside an equation: Greek names and subscripted symbols set as maths, ``(k)`` linked."""
    out, position = [], 0
    for match in _NOTE_TOKEN.finditer(note):
        out.append(escape(note[position : match.start()]))
        position = match.end()
        text = match[0]
        if match["eqref"]:
            out.append(_eq_ref(match["tag"]))
        elif match["op"]:
            out.append({"!=": "≠", ">=": "≥", "<=": "≤"}[text])
        elif _is_math_word(text):
            out.append(identifier_to_mathml(text))
        elif "_" in text:
            out.append(f"<code>{escape(text)}</code>")
        else:
            out.append(escape(text))
    out.append(escape(note[position:]))
    return "".join(out)


@functools.cache
def option_names() -> frozenset[str]:
    """Every keyword argument of every optimizer class (``eps_inside_sqrt``, ``eps_hat``, ...).

    These are names a reader types, so they are set as code: read as maths, ``eps_inside_sqrt``
    would become epsilon with the subscript "inside sqrt"."""
    return frozenset(name for cls in OPTIMIZERS.values() for name in inspect.signature(cls.__init__).parameters)


def _is_math_word(word: str) -> bool:
    """``lambda``, ``eps``, ``v_0``, ``G_0``: a Greek name, or one letter with a subscript; never an option name."""
    if word in option_names():
        return False
    base = word.split("_")[0]
    if "_" not in word:
        return word in GREEK
    return (base in GREEK or len(base) == 1) and _parses(word)


def _parses(word: str) -> bool:
    try:
        identifier_to_mathml(word)
    except MathSyntaxError:
        return False
    return True


def _tag_link(tag: str) -> str:
    return f'<a class="tag" href="#eq-{tag}" data-tag="{tag}">({escape(tag)})</a>'


def _eq_ref(tag: str) -> str:
    return f'<a class="eqref" href="#eq-{tag}" data-eq="{tag}">({escape(tag)})</a>'


def _hue(tag: str) -> str:
    """A colour per equation, the same in the equations and in the code margins."""
    digits = int("".join(ch for ch in tag if ch.isdigit()) or 0)
    return f"--hue: {(digits * 67 + 200) % 360}"


# --- code ----------------------------------------------------------------------------------------


def code_grid(kernels: list[Kernel]) -> str:
    """A CSS grid with a column per backend and a grid row per aligned group of lines."""
    highlighted = {k.backend: highlight_lines(k) for k in kernels}
    cells = [
        f'<div class="head"><span class="backend">{escape(k.backend)}</span> <code>{escape(k.path)}</code>'
        f"<br><span class=desc>{escape(DESCRIPTION[k.backend])}</span></div>"
        for k in kernels
    ]
    for row in align(kernels):
        parts = [(row.lead_in, "lead"), (row.tagged, "tagged")] if row.anchor else [(row.cells, "plain")]
        for group, kind in parts:
            if any(group):
                for kernel, lines in zip(kernels, group):
                    body = "".join(_code_line(line, highlighted[kernel.backend]) for line in lines)
                    cells.append(f'<div class="cell {kind}">{body}</div>')
    for kernel in kernels:
        whole = highlight(kernel.file_text, get_lexer_by_name(kernel.language), HtmlFormatter(cssclass="hl whole"))
        count = len(kernel.file_text.splitlines())
        cells.append(f"<details><summary>the whole file ({count} lines)</summary>{whole}</details>")
    # The grid scrolls sideways inside its own box when the window is narrower than three readable
    # columns (each at least ~44 characters), instead of squeezing the code to a few per line.
    return (f'<div class="scroll-x code-scroll"><div class="code-grid hl" style="--columns: {len(kernels)}">'
            f'{"".join(cells)}</div></div>')


def _scalars_heading(scalars: Kernel) -> str:
    if scalars.backend == "control":
        return """<h2>The control flow</h2>
  <p class="hint">The iterations, the history and the line search are scalar decisions, written
  once and shared by the three backends; every vector operation is a call to a kernel of the
  chosen backend. The tags are the equations' above.</p>"""
    return """<h2>The kernels' scalars</h2>
  <p class="hint">Bias corrections, step sizes and the like are numbers, not arrays: they are
  computed once per step, in float64, and rounded to the arrays' dtype before any kernel sees
  them (so the three kernels get the very same numbers and do no scalar arithmetic of their own).
  The tags are the equations' above.</p>"""


def scalars_block(scalars: Kernel) -> str:
    """The method that forms the kernels' scalars, one column wide, tags in the margin."""
    highlighted = highlight_lines(scalars)
    head = (f'<div class="head"><span class="backend">{scalars.backend}</span> <code>{escape(scalars.path)}</code>'
            f'<br><span class=desc>{escape(DESCRIPTION[scalars.backend])}</span></div>')
    body = "".join(_code_line(line, highlighted) for line in scalars.lines)
    return (f'<div class="scroll-x code-scroll"><div class="code-grid hl" style="--columns: 1">'
            f'{head}<div class="cell plain">{body}</div></div></div>')


def _code_line(line: CodeLine, highlighted: dict[int, str]) -> str:
    indent = len(line.code) - len(line.code.lstrip(" "))
    if line.tags:
        tags = " ".join(line.tags)
        margin = "".join(_tag_link(t) for t in line.tags)
        attributes = f' data-eq="{tags}" style="{_hue(line.tags[0])}"'
    else:
        margin, attributes = "", ""
    return (
        f'<div class="line"{attributes}><span class="ln">{line.number}</span><span class="mg">{margin}</span>'
        f'<span class="src" style="--indent: {indent}">{highlighted.get(line.number, escape(line.code.strip()))}</span></div>'
    )


def highlight_lines(kernel: Kernel) -> dict[int, str]:
    """Each line's code (tags removed, indentation dropped) as Pygments HTML, lexed as one function
    so that multi-line strings and signatures are coloured right."""
    code = "\n".join(line.code for line in kernel.lines)
    lines: list[list[str]] = [[]]
    for token_type, value in get_lexer_by_name(kernel.language).get_tokens(code):
        for index, piece in enumerate(value.split("\n")):
            if index:
                lines.append([])
            if not lines[-1]:
                piece = piece.lstrip(" ")  # the indentation is drawn with CSS, so wrapped lines keep it
            if piece:
                lines[-1].append(f'<span class="{_css_class(token_type)}">{escape(piece)}</span>')
    return {line.number: "".join(parts) for line, parts in zip(kernel.lines, lines)}


def _css_class(token_type) -> str:
    """Pygments' short class name for a token type (``Name.Builtin`` -> ``nb``), as HtmlFormatter uses."""
    while token_type not in STANDARD_TYPES:
        token_type = token_type.parent
    return STANDARD_TYPES[token_type]


# --- prose ---------------------------------------------------------------------------------------


def _section_blocks(math: MathDoc, title: str) -> list[Block]:
    section = math.section(title) if title else next((s for s in math.sections if not s.title), None)
    return section.blocks if section else []


def other_sections(math: MathDoc, links: dict[str, str]) -> str:
    parts = []
    for section in math.sections:
        if section.title:
            slug = re.sub(r"[^a-z0-9]+", "-", section.title.lower()).strip("-")
            parts.append(f'<section id="{slug}"><h2>{escape(section.title)}</h2>{render_blocks(section.blocks, links)}</section>')
    return "\n".join(parts)


def render_blocks(blocks: list[Block], links: dict[str, str]) -> str:
    html = []
    for block in blocks:
        if block.kind == "paragraph":
            html.append(f"<p>{inline(block.text, links)}</p>")
        elif block.kind == "bullets":
            html.append("<ul>" + "".join(f"<li>{inline(item, links)}</li>" for item in block.items) + "</ul>")
        elif block.kind == "table":
            html.append(_symbol_table(block.rows, links))
        elif block.kind == "references":
            items = "".join(
                f'<li id="ref-{escape(label)}"><span class="label">[{escape(label)}]</span> {inline(text, links)}</li>'
                for label, text in block.references
            )
            html.append(f'<ol class="references">{items}</ol>')
    return "\n".join(html)


def _symbol_table(rows: list[list[str]], links: dict[str, str]) -> str:
    header, *body = rows
    maths_column = next((i for i, name in enumerate(header) if name.lower() == "paper"), None)
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    lines = []
    for row in body:
        cells = []
        for index, cell in enumerate(row):
            content = _paper_symbol(cell) if index == maths_column else inline(cell, links)
            cells.append(f"<td>{content}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll-x"><table class="symbols"><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'


def _paper_symbol(cell: str) -> str:
    """The paper's symbol, e.g. ``beta_1`` or ``alpha (eta)``, set as maths word by word."""
    words = re.split(r"(\s+|[()])", cell)
    return "".join(identifier_to_mathml(w) if is_symbol(w.split("_")[0]) and _parses(w) else escape(w) for w in words)


_INLINE = re.compile(
    r"``(?P<literal>.+?)``"
    r"|:math:`(?P<math>[^`]+)`"
    r"|:(?:mod|class|func|meth|attr):`~?(?P<ref>[^`]+)`"
    r"|\*\*(?P<bold>[^*]+)\*\*"
    r"|\((?P<eq>\d+)\)"
    r"|(?P<arxiv>arXiv:(?P<arxiv_id>\d{4}\.\d{4,5}))"
)


def inline(text: str, links: dict[str, str]) -> str:
    """reStructuredText inline markup used by the docstrings, as HTML."""
    out, position = [], 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[position : match.start()]))
        position = match.end()
        if match["literal"] is not None:
            out.append(f"<code>{escape(match['literal'])}</code>")
        elif match["math"] is not None:
            try:
                out.append(formula_to_mathml(match["math"], display=False))
            except MathSyntaxError:
                out.append(f"<code>{escape(match['math'])}</code>")
        elif match["ref"] is not None:
            target = match["ref"]
            code = f"<code>{escape(target)}</code>"
            out.append(f'<a href="{links[target]}">{code}</a>' if target in links else code)
        elif match["bold"] is not None:
            out.append(f"<strong>{escape(match['bold'])}</strong>")
        elif match["eq"] is not None:
            out.append(_eq_ref(match["eq"]))
        else:
            out.append(f'<a href="https://arxiv.org/abs/{match["arxiv_id"]}">{escape(match["arxiv"])}</a>')
    out.append(escape(text[position:]))
    return "".join(out)


# --- style and behaviour -----------------------------------------------------------------------

CSS = """
:root { --ink: #1d232b; --muted: #5c6673; --rule: #d9dee5; --paper: #ffffff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1800px; padding: 1.2rem 2rem 3rem; color: var(--ink); background: var(--paper);
       font: 16px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
nav { font-size: 0.95rem; margin-bottom: 0.6rem; }
nav a { margin-right: 0.8rem; color: #0b5cad; text-decoration: none; }
nav a[aria-current] { font-weight: 700; color: var(--ink); }
h1 { margin: 0.2rem 0 0; font-size: 2rem; }
h2 { font-size: 1.3rem; border-bottom: 1px solid var(--rule); padding-bottom: 0.2rem; margin-top: 2rem; }
.summary { font-size: 1.15rem; color: var(--muted); margin-top: 0.2rem; }
p, li { max-width: 70rem; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.88em; }
math { font-family: math, "STIX Two Math", "Latin Modern Math", "Cambria Math", "DejaVu Serif", serif; font-size: 1.12em; }
a { color: #0b5cad; }

table.equations { border-collapse: collapse; margin: 0.6rem 0 1rem; }
table.equations tr { border-radius: 6px; }
table.equations th { width: 3.2rem; text-align: right; padding: 0.35rem 0.9rem 0.35rem 0.2rem; vertical-align: middle; }
table.equations td { padding: 0.35rem 0.8rem; vertical-align: middle; }
table.equations td.formula math { display: block; text-align: left; font-size: 1.3em; }
table.equations td.note { color: var(--muted); font-size: 0.95rem; }
table.equations td.note math { font-size: 1.05em; }
table.equations td.note math[display="block"] { display: inline math; }  /* full-size fractions, in the line */
table.equations tr.lit, table.equations tr:target { background: hsl(var(--hue) 85% 93%); }

a.tag { display: inline-block; min-width: 2.4em; padding: 0 0.25em; border-radius: 4px; text-align: center;
        font: 600 0.85rem/1.35 "DejaVu Sans Mono", monospace; text-decoration: none;
        color: hsl(var(--hue) 70% 30%); background: hsl(var(--hue) 70% 92%); border: 1px solid hsl(var(--hue) 50% 75%); }
a.eqref { color: inherit; text-decoration: underline dotted; }
.hint { color: var(--muted); font-size: 0.95rem; }

.scroll-x { overflow-x: auto; max-width: 100%; }
.code-scroll { border-bottom: 1px solid var(--rule); padding-bottom: 0.4rem; }
.code-grid { display: grid; grid-template-columns: repeat(var(--columns), minmax(24rem, 1fr)); column-gap: 1.2rem;
             background: var(--paper); }
.code-grid .head { padding: 0.5rem 0.6rem; border-bottom: 2px solid var(--rule); background: var(--panel);
                   border-radius: 6px 6px 0 0; }
.code-grid .head .backend { font-weight: 700; font-size: 1.05rem; margin-right: 0.4rem; }
.code-grid .head code { color: var(--muted); }
.code-grid .head .desc { color: var(--muted); font-size: 0.88rem; }
.code-grid .cell { background: var(--panel); padding: 0 0.4rem; }
.code-grid .cell.lead { align-self: end; }
.code-grid .cell.tagged, .code-grid .cell.plain { align-self: start; }
.code-grid .cell:empty { background: var(--panel); }
.line { display: grid; grid-template-columns: 2.6ch 3.6em minmax(0, 1fr); column-gap: 0.5ch; border-radius: 4px;
        font: 13px/1.55 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.line .ln { color: #9aa4af; text-align: right; user-select: none; }
.line .mg a.tag { font-size: 0.72rem; min-width: 2.2em; }
.line .src { white-space: pre-wrap; overflow-wrap: break-word; padding-left: min(calc(var(--indent) * 1ch), 30%); }
/* (indentation is exact in wide columns; in narrow ones deep signature indents are capped) */
.line.lit { background: hsl(var(--hue) 85% 90%); box-shadow: inset 3px 0 0 hsl(var(--hue) 60% 45%); }
.code-grid details { margin-top: 0.6rem; font-size: 0.9rem; }
.code-grid details summary { cursor: pointer; color: var(--muted); }
.code-grid details pre { font: 12px/1.45 "DejaVu Sans Mono", monospace; white-space: pre; overflow-x: auto;
                         background: var(--panel); padding: 0.5rem; border-radius: 4px; }
.code-grid .hl, .code-grid .whole { background: transparent; }

table.symbols { border-collapse: collapse; font-size: 0.95rem; }
table.symbols th, table.symbols td { border-bottom: 1px solid var(--rule); padding: 0.3rem 0.9rem 0.3rem 0; text-align: left; }
table.symbols th { color: var(--muted); font-weight: 600; }
ol.references { list-style: none; padding-left: 0; }
ol.references li { margin: 0.3rem 0; padding-left: 2.5rem; text-indent: -2.5rem; }
ol.references .label { display: inline-block; width: 2.5rem; text-indent: 0; color: var(--muted); }
ol.index li { margin: 0.5rem 0; font-size: 1.1rem; }
ol.index li a { font-weight: 700; margin-right: 0.5rem; }
ol.index .count { color: var(--muted); font-size: 0.9rem; margin-left: 0.4rem; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: 0.85rem; border-top: 1px solid var(--rule); padding-top: 0.6rem; }
footer code { overflow-wrap: anywhere; }
@media (max-width: 700px) {
  body { padding: 0.8rem 0.8rem 2rem; }
  h1 { font-size: 1.6rem; }
  table.equations td.formula math { font-size: 1.1em; }
  table.equations td { padding: 0.3rem 0.4rem; }
  /* the note goes under its formula instead of beside it */
  table.equations tr { display: grid; grid-template-columns: 2.8rem minmax(0, 1fr); }
  table.equations th { width: auto; padding-right: 0.4rem; }
  table.equations td.note { grid-column: 2; padding-top: 0; }
  .code-grid { grid-template-columns: repeat(var(--columns), minmax(20rem, 1fr)); }
}
"""

SCRIPT = """
// Light up every element tagged with an equation (its row in the equations, its lines in the code).
(function () {
  const pinned = new Set();
  const paint = (tag, on) =>
    document.querySelectorAll('[data-eq~="' + tag + '"]').forEach((el) => el.classList.toggle("lit", on));
  document.querySelectorAll("[data-eq]").forEach((el) => {
    const tags = el.dataset.eq.split(" ");
    el.addEventListener("mouseenter", () => tags.forEach((t) => paint(t, true)));
    el.addEventListener("mouseleave", () => tags.forEach((t) => paint(t, pinned.has(t))));
  });
  document.querySelectorAll("a.tag").forEach((a) =>
    a.addEventListener("click", (event) => {
      event.preventDefault();
      const tag = a.dataset.tag;
      if (pinned.has(tag)) pinned.delete(tag); else pinned.add(tag);
      paint(tag, pinned.has(tag));
    })
  );
  const fromHash = location.hash.match(/^#eq-(.+)$/);
  if (fromHash) { pinned.add(fromHash[1]); paint(fromHash[1], true); }
})();
"""
