"""Read an optimizer folder's docstring: its numbered equations, prose sections, symbols, references.

The docstring of ``fastopt/<name>/__init__.py`` is the single source of truth for the maths; this
module only *parses* it, so ``show`` never holds a copy of an equation. The format it expects
(reStructuredText, as written in every optimizer folder)::

    One-line summary.

    The update, for step ... ::                 <- a paragraph ending in "::"

        (1)  d_t = -g_t if maximize else g_t          optional note, after 4+ spaces (or "  # ")
        (2)  ...
             a continuation line (no tag) belongs to the equation above

    Free paragraphs.

    Symbols                                      <- sections: a title underlined with - or =
    -------
    (a simple table, paragraphs, ``*`` bullets, or ``.. [1]`` references)

The docstring is read from the source file with :mod:`ast`, not from ``module.__doc__``, so it is
there even under ``python -OO``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from importlib import resources

# "(3)  m_t = beta1 * m_{t-1} + ..." : the tag, then the equation after two or more spaces
_EQUATION_LINE = re.compile(r"^\((?P<tag>\d+[a-z]?)\)\s{2,}(?P<rest>.*)$")
# The note after an equation: after "  # " if the docstring marks it so, else after a run of four
# or more spaces (formulas themselves contain runs of two or three, as in "(centered)  or  ...").
_NOTE_MARK = re.compile(r"\s{2,}#\s+")
_NOTE_SEPARATOR = re.compile(r"\s{4,}")
_UNDERLINE = re.compile(r"^(-{3,}|={3,}|~{3,})$")
_TABLE_BORDER = re.compile(r"^=+(\s+=+)+$")
_REFERENCE = re.compile(r"^\.\.\s+\[(?P<label>[^\]]+)\]\s+(?P<text>.*)$")


@dataclass
class EquationLine:
    """One line of a numbered equation: the maths, and the note printed beside it (may be empty)."""

    formula: str
    note: str = ""


@dataclass
class Equation:
    """A numbered equation, e.g. tag ``"3"``; ``lines`` has more than one entry for cases."""

    tag: str
    lines: list[EquationLine]
    source: list[str]  # the docstring lines, verbatim (for the terminal)


@dataclass
class Block:
    """A piece of prose: ``kind`` is ``"paragraph"``, ``"bullets"``, ``"table"`` or ``"references"``."""

    kind: str
    text: str = ""  # paragraph
    items: list[str] = field(default_factory=list)  # bullets
    rows: list[list[str]] = field(default_factory=list)  # table: the header row first
    references: list[tuple[str, str]] = field(default_factory=list)  # (label, text)


@dataclass
class Section:
    title: str  # "" for the prose between the equations and the first titled section
    blocks: list[Block]


@dataclass
class MathDoc:
    """The parsed docstring of one optimizer folder."""

    summary: str
    lead_in: str  # the paragraph that introduces the equations, without its "::"
    equations: list[Equation]
    sections: list[Section]

    def section(self, title: str) -> Section | None:
        return next((s for s in self.sections if s.title.lower() == title.lower()), None)


def read_docstring(package: str) -> str:
    """The module docstring of ``package`` (e.g. ``"fastopt.adam"``), read from its source file."""
    source = resources.files(package).joinpath("__init__.py").read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source), clean=True)
    if not docstring:
        raise LookupError(f"{package} has no module docstring")
    return docstring


def parse_math_doc(docstring: str) -> MathDoc:
    """Split a docstring into summary, the numbered equations and the titled sections."""
    paragraphs_before, equation_block, after = _split_at_literal_block(docstring.splitlines())
    if not equation_block:
        raise ValueError("no '::' block of numbered equations found in the docstring")
    summary = " ".join(paragraphs_before[0]) if paragraphs_before else ""
    lead_in = " ".join(paragraphs_before[-1]).removesuffix("::").rstrip() + ":" if len(paragraphs_before) > 1 else ""
    return MathDoc(summary, lead_in, parse_equations(equation_block), _parse_sections(after))


def parse_equations(block: list[str]) -> list[Equation]:
    """Parse the indented ``::`` block: a line starting ``(k)`` opens equation k, others continue it."""
    equations: list[Equation] = []
    for raw in block:
        line = raw.strip()
        if not line:
            continue
        match = _EQUATION_LINE.match(line)
        if match:
            equations.append(Equation(match["tag"], [_split_note(match["rest"])], [raw]))
        elif equations:
            equations[-1].lines.append(_split_note(line))
            equations[-1].source.append(raw)
        else:
            raise ValueError(f"equation block starts with an untagged line: {line!r}")
    return equations


def _split_note(text: str) -> EquationLine:
    separator = _NOTE_MARK if _NOTE_MARK.search(text) else _NOTE_SEPARATOR
    parts = separator.split(text.strip(), maxsplit=1)
    return EquationLine(parts[0], parts[1] if len(parts) > 1 else "")


def _split_at_literal_block(lines: list[str]) -> tuple[list[list[str]], list[str], list[str]]:
    """Paragraphs up to the one ending in ``::``, the indented block after it, and the rest."""
    paragraphs: list[list[str]] = [[]]
    for index, line in enumerate(lines):
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
        if line.rstrip().endswith("::"):
            block_start = index + 1
            block_end = block_start
            while block_end < len(lines) and (not lines[block_end].strip() or lines[block_end].startswith(" ")):
                block_end += 1
            return [p for p in paragraphs if p], lines[block_start:block_end], lines[block_end:]
    return [p for p in paragraphs if p], [], lines


def _parse_sections(lines: list[str]) -> list[Section]:
    sections = [Section("", [])]
    chunk: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        next_line = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if line.strip() and _UNDERLINE.match(next_line) and len(next_line) >= len(line.strip()):
            sections[-1].blocks.extend(_parse_blocks(chunk))
            chunk = []
            sections.append(Section(line.strip(), []))
            index += 2
            continue
        chunk.append(line)
        index += 1
    sections[-1].blocks.extend(_parse_blocks(chunk))
    return [s for s in sections if s.title or s.blocks]


def _parse_blocks(lines: list[str]) -> list[Block]:
    """Blank-line separated chunks, each a table, a bullet list, references or a paragraph."""
    blocks: list[Block] = []
    for chunk in _chunks(lines):
        first = chunk[0].strip()
        if _TABLE_BORDER.match(first):
            blocks.append(Block("table", rows=_parse_simple_table(chunk)))
        elif first.startswith(("* ", "- ")):
            blocks.append(Block("bullets", items=_join_items(chunk, lambda s: s.startswith(("* ", "- ")), 2)))
        elif _REFERENCE.match(first):
            items = _join_items(chunk, lambda s: bool(_REFERENCE.match(s)), 0)
            refs = [(m["label"], m["text"]) for m in map(_REFERENCE.match, items)]
            if blocks and blocks[-1].kind == "references":
                blocks[-1].references.extend(refs)
            else:
                blocks.append(Block("references", references=refs))
        else:
            blocks.append(Block("paragraph", text=" ".join(line.strip() for line in chunk)))
    return blocks


def _chunks(lines: list[str]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            chunks[-1].append(line)
        elif chunks[-1]:
            chunks.append([])
    return [c for c in chunks if c]


def _join_items(chunk: list[str], starts_item, prefix_length: int) -> list[str]:
    """Lines of a list: an item starts where ``starts_item`` holds; indented lines continue it."""
    items: list[str] = []
    for line in chunk:
        stripped = line.strip()
        if starts_item(stripped) or not items:
            items.append(stripped[prefix_length:])
        else:
            items[-1] += " " + stripped
    return items


def _parse_simple_table(chunk: list[str]) -> list[list[str]]:
    """A reST simple table. Cells are split at runs of two or more spaces (several docstrings have
    cells wider than their ``====`` column, so the column positions cannot be trusted)."""
    rows = [line.strip() for line in chunk if not _TABLE_BORDER.match(line.strip())]
    return [re.split(r"\s{2,}", row) for row in rows]
