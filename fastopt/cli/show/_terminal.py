"""The terminal view: the numbered equations, then the three kernels side by side, with rich.

Layout (see tooling.md, pitfalls P12-P13): one ``Table.grid(expand=True)`` with a ``ratio=1``
column per backend; each row of the grid is one :class:`~fastopt.cli.show._source.Row`, so the lines
that compute equation (3) start on the same screen line in all three columns. A line's tag is
taken out of its trailing comment and printed in a margin, in the same colour as the equation.
"""

from __future__ import annotations

from rich.align import Align
from rich.console import Console, Group
from rich.padding import Padding
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from ._source import DESCRIPTION, CodeLine, Kernel, align
from .model import OptimizerView

THEME = "ansi_dark"  # terminal's own colours: readable on dark and light backgrounds
TAG_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta", "bright_green")
SIDE_BY_SIDE_MIN_WIDTH = 120
"""Below this many columns three kernels do not fit next to each other: print them one after another."""


def tag_style(tag: str) -> str:
    digits = "".join(ch for ch in tag if ch.isdigit()) or "0"
    return f"bold {TAG_COLOURS[int(digits) % len(TAG_COLOURS)]}"


def print_view(view: OptimizerView, console: Console) -> None:
    console.print(Rule(Text(f"{view.title}  ({view.package})", style="bold")))
    console.print(Text(view.math.summary.removeprefix(f"{view.title}: "), style="italic"), justify="center")
    console.print()
    console.print(Text(f"Equations, from the docstring of {view.package}:", style="bold"))
    for equation in view.math.equations:
        for index, line in enumerate(equation.source):
            text = line.strip() if index == 0 else "     " + line.strip()
            rendered = Text("  " + text)
            if index == 0:
                rendered.stylize(tag_style(equation.tag), 2, 2 + len(equation.tag) + 2)
            console.print(rendered, overflow="fold")
    console.print()
    if console.width >= SIDE_BY_SIDE_MIN_WIDTH:
        console.print(side_by_side(view.kernels))
    else:
        for kernel in view.kernels:
            console.print(_header(kernel))
            console.print(_lines(kernel, kernel.lines, _highlight(kernel)))
            console.print()
        console.print(
            Text(f"(three columns need {SIDE_BY_SIDE_MIN_WIDTH}+ characters: widen the terminal or pass --width 180)",
                 style="dim")
        )
    console.print(
        Text("The margin shows each line's equation tag (its `# (k)` comment in the file); lines with the "
             "same tag compute the same equation in the same order, which is why the results agree bit for bit.",
             style="dim")
    )


def side_by_side(kernels: list[Kernel]) -> Table:
    grid = Table.grid(expand=True, padding=(0, 1))
    for _ in kernels:
        grid.add_column(ratio=1)
    highlighted = {k.backend: _highlight(k) for k in kernels}
    grid.add_row(*(_header(k) for k in kernels))
    for row in align(kernels):
        # A row is [lines leading up to equation k] + [the line tagged k]: the lead-in is pushed
        # down onto the tagged line, and the tagged lines start on the same screen line.
        parts = [(row.lead_in, "bottom"), (row.tagged, "top")] if row.anchor else [(row.cells, "top")]
        for cells, vertical in parts:
            if any(cells):
                grid.add_row(*(
                    Align(_lines(kernel, cell, highlighted[kernel.backend]), vertical=vertical)
                    for kernel, cell in zip(kernels, cells)
                ))
    return grid


def _header(kernel: Kernel) -> Group:
    title = Text.assemble((kernel.backend, "bold"), "  ", (kernel.path, "dim"))
    return Group(title, Text(DESCRIPTION[kernel.backend], style="italic dim"), Rule(style="dim"))


def _highlight(kernel: Kernel) -> dict[int, Text]:
    """Each line of the kernel (tags removed), highlighted with the whole function as context."""
    code = "\n".join(line.code for line in kernel.lines)
    text = Syntax(code, kernel.language, theme=THEME, background_color="default").highlight(code)
    pieces = text.split("\n", allow_blank=True)
    return {line.number: piece for line, piece in zip(kernel.lines, pieces)}


def _lines(kernel: Kernel, lines: list[CodeLine], highlighted: dict[int, Text]) -> Table:
    """Line number, tag margin and code; long lines wrap under the code, not under the margin."""
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", style="dim", no_wrap=True, min_width=3)
    table.add_column(no_wrap=True, min_width=3)
    table.add_column(ratio=1, overflow="fold")
    for line in lines:
        tags = Text(",".join(f"({t})" for t in line.tags), style=tag_style(line.tags[0]) if line.tags else "")
        code = highlighted.get(line.number, Text(line.code))
        indent = len(line.code) - len(line.code.lstrip(" "))
        # the indentation as padding, so a wrapped line continues under its code, not at the margin
        table.add_row(str(line.number), tags, Padding(code[indent:], (0, 0, 0, indent)))
    return table
