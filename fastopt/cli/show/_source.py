"""Read the three implementations of a kernel from the package's files, and line them up.

Every optimizer folder holds the same kernel, ``<name>_update``, three times: ``reference.py``
(NumPy), ``_numba.py`` and ``_cython.pyx``. Each line that computes an equation ends with its tag,
``# (3)``. The files are read as text with :mod:`importlib.resources` (the ``.pyx`` files are
package data), never imported: ``show`` works where Numba is missing or the Cython extension
failed to build, and ``inspect.getsource`` could not read a Cython function anyway.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from importlib import resources

from fastopt._backends import _MODULES  # backend -> module name in an optimizer folder

LANGUAGE = {"reference": "python", "numba": "python", "cython": "cython", "control": "python"}
"""The Pygments lexer for each backend's file."""

DESCRIPTION = {
    "scalars": "once per step, in float64, then rounded to the arrays' dtype: the same numbers for all three kernels",
    "control": "the control flow, written once for the three backends: it calls their kernels",
    "reference": "NumPy, whole-array expressions: the specification",
    "numba": "one element at a time, compiled by Numba",
    "cython": "the loop over pointers, compiled to C (the entry points follow it in the file)",
}

# A trailing comment that starts with equation tags: "# (3)", "# (4), (5)", "# (7) note".
_TAG_COMMENT = re.compile(r"\s+#\s*(?P<tags>\(\d+[a-z]?\)(?:\s*,?\s*\(\d+[a-z]?\))*)(?P<note>.*)$")
_TAG = re.compile(r"\((\d+[a-z]?)\)")


@dataclass(frozen=True)
class CodeLine:
    """One line of a kernel: its number in the file, the code without the tag comment, the tags."""

    number: int
    code: str
    tags: tuple[str, ...] = ()


@dataclass
class Kernel:
    """One backend's implementation of ``<name>_update``."""

    backend: str
    path: str  # inside the package, e.g. "fastopt/adam/_cython.pyx"
    language: str
    lines: list[CodeLine]
    file_text: str  # the whole file, for "show me everything"

    @property
    def tags(self) -> list[str]:
        return [tag for line in self.lines for tag in line.tags]


def file_name(backend: str) -> str:
    return _MODULES[backend] + (".pyx" if backend == "cython" else ".py")


def read_kernel(package: str, name: str, backend: str) -> Kernel:
    """The kernel ``<name>_update`` of ``backend`` in ``package`` (e.g. ``"fastopt.adam"``)."""
    filename = file_name(backend)
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    if backend == "cython" and f"_{name}_loop(" in text:
        # The Cython twin keeps its arithmetic in `cdef void _<name>_loop(...)` over pointers; the
        # entry points after it (threads, length checks, taking the arrays) are plumbing.
        first, last = _function_span(text, f"_{name}_loop", cython=True)
    else:
        first, last = _function_span(text, f"{name}_update", cython=backend == "cython")
    all_lines = text.splitlines()
    lines = [split_tags(number, all_lines[number - 1]) for number in range(first, last + 1)]
    path = "/".join([*package.split("."), filename])
    return Kernel(backend, path, LANGUAGE[backend], lines, text)


def read_function(package: str, function: str, backend: str) -> Kernel:
    """The function ``function`` of ``backend``'s file in ``package`` (a closure optimizer's
    kernels are several functions, not one ``<name>_update``)."""
    filename = file_name(backend)
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    first, last = _function_span(text, function, cython=backend == "cython")
    all_lines = text.splitlines()
    lines = [split_tags(number, all_lines[number - 1]) for number in range(first, last + 1)]
    return Kernel(backend, "/".join([*package.split("."), filename]), LANGUAGE[backend], lines, text)


def read_control(package: str, function: str) -> Kernel:
    """A closure optimizer's control flow: ``function`` of the folder's ``__init__.py``."""
    text = resources.files(package).joinpath("__init__.py").read_text(encoding="utf-8")
    first, last = _function_span(text, function, cython=False)
    all_lines = text.splitlines()
    lines = [split_tags(number, all_lines[number - 1]) for number in range(first, last + 1)]
    return Kernel("control", "/".join([*package.split("."), "__init__.py"]), "python", lines, text)


def read_scalars(algorithm) -> Kernel:
    """The method of ``algorithm`` (an optimizer's :class:`fastopt._engine.Algorithm`) that forms
    the kernel's scalars: ``step_scalars`` where some change from step to step (bias corrections,
    step sizes), else ``group_scalars`` (or SGD's ``scalars``). Read as text from its module's
    file, like the kernels, with its equation tags."""
    cls = type(algorithm)
    name = "step_scalars" if algorithm.step_dependent else ("scalars" if "scalars" in _defined(cls) else "group_scalars")
    owner = next(klass for klass in cls.__mro__ if name in vars(klass))
    package = owner.__module__  # e.g. "fastopt.adam" (AdamW's algorithm inherits Adam's)
    text = resources.files(package).joinpath("__init__.py").read_text(encoding="utf-8")
    first, last = _method_span(text, owner.__name__, name)
    all_lines = text.splitlines()
    lines = [split_tags(number, all_lines[number - 1]) for number in range(first, last + 1)]
    path = "/".join([*package.split("."), "__init__.py"])
    return Kernel("scalars", path, "python", lines, text)


def _defined(cls: type) -> set[str]:
    """Names defined by ``cls`` or a base other than the abstract Algorithm."""
    return {name for klass in cls.__mro__[:-2] for name in vars(klass)}


def _method_span(text: str, class_name: str, method: str) -> tuple[int, int]:
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    return item.lineno, item.end_lineno
    raise LookupError(f"no method {class_name}.{method}() in the file")


def split_tags(number: int, line: str) -> CodeLine:
    """Separate ``code  # (3)`` into the code and its tags; other comments stay in the code."""
    match = _TAG_COMMENT.search(line)
    if not match:
        return CodeLine(number, line.rstrip())
    code = line[: match.start()].rstrip()
    note = match["note"].strip(" ,;:-")
    if note:
        code += f"  # {note}"
    return CodeLine(number, code, tuple(_TAG.findall(match["tags"])))


def _function_span(text: str, function: str, cython: bool) -> tuple[int, int]:
    """First and last line (1-based) of a top-level function, decorators included."""
    if not cython:
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and node.name == function:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                return first, node.end_lineno
        raise LookupError(f"no function {function}() in the file")
    # Cython: no parser in the standard library. From "def name(" (or cdef/cpdef) to the line
    # before the next line that starts in column 0; decorators directly above belong to it.
    lines = text.splitlines()
    header = re.compile(rf"^(?:c?p?def)\s+(?:[\w\[\]:,* ]+\s+)?{re.escape(function)}\s*\(")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        raise LookupError(f"no function {function}() in the file")
    first = start
    while first > 0 and lines[first - 1].startswith("@"):
        first -= 1
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t" or _continues_header(lines, start, end)):
        end += 1
    while not lines[end - 1].strip():
        end -= 1
    return first + 1, end


def _continues_header(lines: list[str], start: int, index: int) -> bool:
    """True while ``index`` is still inside the (possibly multi-line) signature."""
    header = "\n".join(lines[start:index])
    return header.count("(") > header.count(")")


# --- lining the three columns up, equation by equation ---------------------------------------------


@dataclass
class Row:
    """Lines of each kernel that go side by side. ``anchor`` is the equation tag the row ends
    with (its lines are aligned at the bottom, on the tagged line), or ``None`` for the lines
    before the first equation and after the last (aligned at the top)."""

    anchor: str | None
    cells: list[list[CodeLine]]

    @property
    def lead_in(self) -> list[list[CodeLine]]:
        """Each cell without its tagged last line (an anchored row only)."""
        return [cell[:-1] for cell in self.cells]

    @property
    def tagged(self) -> list[list[CodeLine]]:
        """Each cell's tagged last line (an anchored row only)."""
        return [cell[-1:] for cell in self.cells]


def align(kernels: list[Kernel]) -> list[Row]:
    """Cut every kernel into the same rows, so that lines computing the same equation sit side by side.

    An *anchor* is the k-th line tagged (n) in a kernel. Anchors present in every kernel, in the
    same order, cut the kernels into rows: each row ends with one anchor line and holds the lines
    leading up to it (the ``if amsgrad:`` or the temporaries that set the equation up). Lines
    before the first tagged line form a first row (the signature), lines after the last anchor a
    final row. Nothing is reordered or dropped; a tag found in only some kernels simply stays
    inside a row.
    """
    anchors = [_anchors(kernel.lines) for kernel in kernels]
    common = []
    last_position = [-1] * len(kernels)
    for key in anchors[0]:
        positions = [column.get(key) for column in anchors]
        if all(p is not None and p > last for p, last in zip(positions, last_position)):
            common.append((key, positions))
            last_position = positions
    starts = [next((i for i, line in enumerate(k.lines) if line.tags), len(k.lines)) for k in kernels]
    if common:
        starts = [min(s, p) for s, p in zip(starts, common[0][1])]
    rows = [Row(None, [k.lines[:s] for k, s in zip(kernels, starts)])]
    previous = starts
    for (tag, _occurrence), positions in common:
        rows.append(Row(tag, [k.lines[a : b + 1] for k, a, b in zip(kernels, previous, positions)]))
        previous = [p + 1 for p in positions]
    rows.append(Row(None, [k.lines[a:] for k, a in zip(kernels, previous)]))
    return [row for row in rows if any(row.cells)]


def _anchors(lines: list[CodeLine]) -> dict[tuple[str, int], int]:
    """``{(tag, occurrence): line index}`` for the lines of one kernel, in order."""
    seen: dict[str, int] = {}
    anchors = {}
    for index, line in enumerate(lines):
        if line.tags:
            tag = line.tags[0]
            seen[tag] = seen.get(tag, 0) + 1
            anchors[(tag, seen[tag])] = index
    return anchors
