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
    for line in equation_lines(view.math.equations, console.width):
        console.print(line, no_wrap=True, overflow="ignore")  # equation_lines already fits them to the width
    console.print()
    console.print(_header(view.scalars))
    console.print(_lines(view.scalars, view.scalars.lines, _highlight(view.scalars)))
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


TAG_WIDTH = 7  # "  (12) ": the margin every formula starts after
NOTE_MIN_WIDTH = 24  # a note narrower than this goes under its formula instead of beside it


def equation_lines(equations, width: int) -> list[Text]:
    """The numbered equations as lines of at most ``width`` characters, tags in a margin.

    Formulas start in one column and notes (``# ...``) in another, as in the docstring. When a
    note does not fit beside its formula it is folded inside its own column; when even that column
    would be narrower than NOTE_MIN_WIDTH it goes on the lines under the formula, indented. A
    formula too long for the line folds under itself. Nothing ever wraps back to column 0.
    """
    formula_width = max((len(line.formula) for eq in equations for line in eq.lines), default=0)
    note_column = TAG_WIDTH + formula_width + 2
    beside = width - note_column - 2 >= NOTE_MIN_WIDTH  # "# " then the note
    lines = []
    for equation in equations:
        for index, line in enumerate(equation.lines):
            tag = f"({equation.tag})" if index == 0 else ""
            margin = Text(f"  {tag:<{TAG_WIDTH - 3}} ")
            if tag:
                margin.stylize(tag_style(equation.tag), 2, 2 + len(tag))
            formula = _fold(line.formula, width - TAG_WIDTH)
            note = ("" if line.note.startswith("=") else "# ") + line.note if line.note else ""
            if note and beside and len(formula) == 1:
                pieces = _fold(note, width - note_column)
                lines.append(margin + Text(formula[0].ljust(note_column - TAG_WIDTH)) + Text(pieces[0], style="dim"))
                lines += [Text(" " * note_column) + Text(piece, style="dim") for piece in pieces[1:]]
                continue
            lines.append(margin + Text(formula[0]))
            lines += [Text(" " * (TAG_WIDTH + 2)) + Text(piece) for piece in formula[1:]]
            if note:
                lines += [Text(" " * (TAG_WIDTH + 2)) + Text(piece, style="dim")
                          for piece in _fold(note, width - TAG_WIDTH - 2)]
    return lines


def _fold(text: str, width: int) -> list[str]:
    """``text`` in pieces of at most ``width`` characters, broken at spaces where possible."""
    import textwrap

    return textwrap.wrap(text, max(width, 8), break_long_words=True, break_on_hyphens=False) or [""]


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
