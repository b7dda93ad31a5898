"""The HTML report: one self-contained file (figures embedded as base64, styles inline).

Each experiment gets its claim, verdict (with the criterion and the numbers it compared), its
figure and table, and the code beside them: the reference kernel of each optimizer it uses (read
from ``fastopt/<name>/reference.py``) and the experiment's own module.
"""

from __future__ import annotations

import base64
import html
import importlib.resources
import importlib.util
from pathlib import Path

import fastopt

from ._common import Result

STYLE = """
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1500px;
       padding: 1.5em 2em; color: #222; line-height: 1.45; overflow-wrap: break-word; }
h1 { margin-bottom: 0.2em; } h2 { border-top: 2px solid #ddd; padding-top: 0.8em; margin-top: 1.6em; }
.claim { font-size: 1.08em; border-left: 4px solid #1f77b4; padding: 0.3em 0.9em; background: #f4f8fc; }
.verdict { padding: 0.5em 0.9em; border-radius: 4px; margin: 0.7em 0; }
.supported { background: #e7f5e9; border: 1px solid #7bc47f; }
.not-supported { background: #fdecea; border: 1px solid #e57373; }
.badge { font-weight: bold; text-transform: uppercase; letter-spacing: 0.03em; }
/* Table and code side by side only where both fit; each column scrolls inside itself, so a wide
   table can never slide under the code beside it. */
.grid { display: grid; grid-template-columns: minmax(0, 1fr); gap: 1.5em; align-items: start; }
@media (min-width: 1100px) { .grid { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } }
.grid > * { min-width: 0; }
.grid.wide { grid-template-columns: minmax(0, 1fr); }  /* a table of many columns gets the full width */
.table-wrap { overflow-x: auto; max-width: 100%; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child, table.text td { text-align: left; }
table.text { width: 100%; } table.text td { overflow-wrap: anywhere; min-width: 6em; }
.figure { margin: 0.8em 0; }
.notes { color: #555; font-size: 0.9em; }
pre { font-size: 0.8em; overflow-x: auto; white-space: pre; background: #f8f8f8; padding: 0.6em;
      border: 1px solid #e4e4e4; margin: 0.3em 0 1em; max-width: 100%; }
details { max-width: 100%; }
details summary { cursor: pointer; font-weight: 600; margin: 0.4em 0; }
code { background: #f2f2f2; padding: 0 0.25em; overflow-wrap: anywhere; }
pre code { overflow-wrap: normal; background: none; padding: 0; }
.interactive { margin: 1em 0; }
.interactive .controls { display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; align-items: center; margin: 0.5em 0; }
.interactive .controls label { white-space: nowrap; }
.interactive .controls > span { display: contents; }  /* the per-optimizer sliders wrap like the others */
.interactive .controls input[type=range] { width: 9em; vertical-align: middle; }
.interactive svg.plot { width: 100%; max-width: 560px; height: auto; border: 1px solid #eee; background: #fafafa; }
.interactive .playground { display: flex; flex-wrap: wrap; gap: 1em; }
.interactive .playground svg.plot { flex: 1 1 320px; }
.interactive .legend { display: flex; flex-wrap: wrap; gap: 0.3em 1em; font-size: 0.85em; margin: 0.3em 0 1em; }
.interactive .legend i { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em; vertical-align: -0.1em; }
@media (max-width: 700px) {
  body { padding: 0.8em 0.8em; }
  h1 { font-size: 1.5em; }
  table { font-size: 0.85em; }
}
"""


WIDE_TABLE = 5  # columns; a wider table is not put beside the code


def _highlight(source: str) -> str:
    """Python source as highlighted HTML with inline styles (pygments ships with rich)."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - rich depends on pygments
        return f"<pre>{html.escape(source)}</pre>"
    return highlight(source, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True, wrapcode=True))


def reference_source(optimizer: str) -> tuple[str, str]:
    """(relative path, source) of an optimizer's NumPy reference kernel."""
    folder = {**fastopt.OPTIMIZERS, **fastopt.MATRIX_OPTIMIZERS}[optimizer].kernel
    text = importlib.resources.files(f"fastopt.{folder}").joinpath("reference.py").read_text(encoding="utf-8")
    return f"fastopt/{folder}/reference.py", text


def module_source(module: str) -> tuple[str, str]:
    package, _, name = module.rpartition(".")
    text = importlib.resources.files(package).joinpath(f"{name}.py").read_text(encoding="utf-8")
    return module.replace(".", "/") + ".py", text


def _table(headers: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (f"<div class='table-wrap'><table class='{css}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")


def write_show_pages(optimizers: list[str], out: Path) -> dict[str, str]:
    """Pages of ``python -m fastopt show`` (equations and the three implementations side by side)
    for these optimizers, in ``out/show/``; returns {optimizer: relative link}, or {} if unavailable."""
    if importlib.util.find_spec("fastopt.cli.show") is None:
        return {}
    try:
        from fastopt.cli.show._html import page_name, write_pages

        write_pages(sorted(set(optimizers)), out / "show", single=False)
        return {name: f"show/{page_name(name)}" for name in optimizers}
    except Exception:  # another command's internals: the report must not depend on them
        return {}


def _section(result: Result, show_pages: dict[str, str]) -> str:
    verdict = result.verdict
    css = "supported" if verdict.supported else "not-supported"
    image = _base64(result.figure)
    code = []
    for i, name in enumerate(result.optimizers):
        path, source = reference_source(name)
        code.append(f"<details{' open' if i == 0 else ''}><summary>{html.escape(name)}: the reference kernel "
                    f"(<code>{path}</code>)</summary>{_highlight(source)}</details>")
    if show_pages:
        links = ", ".join(f"<a href='{show_pages[n]}'>{html.escape(n)}</a>" for n in result.optimizers)
        code.append(f"<p class='notes'>Each kernel's equations and its three implementations (NumPy, "
                    f"Numba, Cython) side by side, from <code>python -m fastopt show</code>: {links}.</p>")
    path, source = module_source(result.module)
    code.append(f"<details><summary>The experiment (<code>{path}</code>)</summary>{_highlight(source)}</details>")
    notes = "".join(f"<p class='notes'>{html.escape(n)}</p>" for n in result.notes)
    extra = "".join(
        f"<div class='figure'><a href='{html.escape(Path(figure).name)}' title='the figure file, full size'>"
        f"<img src='data:image/png;base64,{_base64(figure)}' alt='{html.escape(caption)}'></a>"
        f"<p class='notes'>{html.escape(caption)} (figure file <code>{html.escape(Path(figure).name)}</code>)</p></div>"
        for figure, caption in result.extra_figures)
    return f"""
<section id="experiment-{result.number}">
<h2>{result.number}. {html.escape(result.title)}</h2>
<p class="claim"><b>Claim.</b> {html.escape(result.claim)}</p>
<div class="verdict {css}"><span class="badge">{verdict.label}</span> by this run's numbers.
<br><b>Criterion:</b> {html.escape(verdict.criterion)}.<br><b>Measured:</b> {html.escape(verdict.detail)}.</div>
<div class="figure"><a href="{html.escape(Path(result.figure).name)}" title="the figure file, full size"><img src="data:image/png;base64,{image}" alt="Figure for experiment {result.number}: {html.escape(result.title)}"></a>
<p class="notes">Figure file: <code>{html.escape(Path(result.figure).name)}</code> ({result.seconds:.1f} s to run)</p></div>
{extra}{result.interactive}
<div class="grid{' wide' if len(result.table.headers) > WIDE_TABLE else ''}">
<div>{_table(result.table.headers, result.table.rows)}{notes}</div>
<div>{''.join(code)}</div>
</div>
</section>"""


def _base64(path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def write_report(results: list[Result], out: Path, settings: dict[str, str]) -> Path:
    show_pages = write_show_pages([n for r in results for n in r.optimizers], out)
    supported = sum(r.verdict.supported for r in results)
    overview = _table(
        ["experiment", "verdict", "measured"],
        [[f"{r.number}. {r.title}", r.verdict.label, r.summary] for r in results],
        css="text",
    )
    settings_text = ", ".join(f"{k} {v}" for k, v in settings.items())
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastopt tour</title><style>{STYLE}</style></head>
<body>
<h1>fastopt tour: why each optimizer behaves as it does</h1>
<p>{len(results)} experiment{"s" if len(results) != 1 else ""} on built-in synthetic problems. Each states a claim, measures numbers in this run,
and applies a criterion written before the run to decide whether the numbers support the claim.
<b>{supported} of {len(results)}</b> claims were supported this time. Every claim is also checked at
seeds 0 to 9 by <code>tests/test_tour_seeds.py</code>, which fails unless all ten seeds support it;
claims that held at fewer seeds in an earlier version were narrowed to what the evidence supports,
and their notes say how.</p>
<p class="notes">Run with: {html.escape(settings_text)}. fastopt {fastopt.__version__}; backends available:
{html.escape(", ".join(fastopt.available_backends()))}. Every number below was computed in this run.</p>
{overview}
{''.join(_section(r, show_pages) for r in results)}
</body></html>
"""
    path = out / "report.html"
    path.write_text(document, encoding="utf-8")
    return path
