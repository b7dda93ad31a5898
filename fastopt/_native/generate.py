"""Generate each optimizer's Cython entry points from its loop's signature.

An optimizer's ``_cython.pyx`` holds one hand-written function, the loop a reader compares with
``reference.py`` and ``_numba.py``::

    cdef void _adam_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                         floating* exp_avg_sq,
                         floating* max_exp_avg_sq,  # only if amsgrad
                         bint maximize, floating weight_decay, ...) noexcept nogil:

Everything a caller needs around it is the same for every optimizer, so it is written once, in
the Tempita template ``entries.pyx.tp`` beside this file, and rendered from the signature when
the package is built (``setup.py``; nothing generated is committed):

* ``_<name>_threads``: the loop on one contiguous chunk per OpenMP thread;
* ``_<name>_run``: every array's length checked against ``param``'s, then the loop on one thread
  or several, with the GIL released;
* ``<name>_update``: NumPy arrays through NumPy's C API (``arrays.pxd``), anything else handed to
* ``<name>_update_buffers``: the same call on typed memoryviews (any float32/float64 buffer);
* ``<name>_update_many``: every row of a :class:`fastopt._native.batch.Batch`, a whole parameter
  group in one call;
* ``<name>_update_narrow``: a float16 or bfloat16 ``param`` and ``grad`` (as uint16) with float32
  state, each element computed in float32 and rounded once (``fastopt/_rounding``): for bfloat16,
  the loop itself rewritten by :func:`bfloat16_loop` (one pass); for float16, a block of
  ``fastopt._rounding.BLOCK`` elements at a time, widened, stepped by the float32 loop, rounded;
* ``<name>_update_copy``: float32 master weights stepped in place, each block rounded into their
  16-bit copy while it is in cache (``opt.step(grads, copy_to=...)``).

The signature is read as written: ``Py_ssize_t n`` first, then the arrays (``param``, ``const``
``grad``, then the state buffers, at most three), then the scalars (``floating``, ``bint``,
``int``, ``Py_ssize_t``, ``double``). A state buffer that only some options use says so in a
comment on its own line, ``# only if <condition on the scalars>``: it is then length-checked only
when the condition holds (an unused buffer may be empty).

A loop that needs a whole tensor at once (a norm, a row mean: Adafactor's) says so by giving a
state buffer another length than ``param``'s, ``# length <C expression of n and the scalars>``
(with a condition: ``# only if factored; length n // cols``). Such a loop runs once per call on
one thread: it gets no ``_threads``, ``_update_many``, ``_update_narrow`` or ``_update_copy`` (the
engine widens and rounds its whole tensors); if its scalars include
``Py_ssize_t rows, Py_ssize_t cols``, the entry first checks that ``param`` is a whole number of
``rows x cols`` matrices. A whole-tensor loop whose arrays all have ``param``'s length (a norm
of the whole parameter and nothing else: LAMB's trust ratio) says so with the comment
``# whole tensor`` anywhere on its signature's lines (the convention: on the line that opens it);
it is then the same single-threaded, per-parameter loop, with every array checked against
``param``'s length. The module that Cython compiles is a small file
that ``include``\\ s the hand-written one (so its line numbers stay those of the original) and
then carries the rendered entry points; see :func:`module_source`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE = Path(__file__).with_name("entries.pyx.tp")
MAX_STATE_ARRAYS = 3  # what arrays.pxd's plain_arrays takes after param and grad

_LOOP_START = re.compile(r"^cdef void _(?P<name>[a-z][a-z0-9_]*)_loop\(")
_CONDITION = re.compile(r"only if (?P<condition>[^;]+?)\s*(;|$)")
_LENGTH = re.compile(r"length (?P<length>[^;]+?)\s*(;|$)")
_WHOLE_TENSOR = re.compile(r"\bwhole tensor\b")
_ARRAY = re.compile(r"^(?P<const>const )?floating\*\s*(?P<name>\w+)$")
_SCALAR = re.compile(r"^(?P<type>floating|bint|int|Py_ssize_t|double)\s+(?P<name>\w+)$")
# the type a Python caller's scalar arrives as, in <name>_update (NumPy arrays' entry)
_PYTHON_TYPE = {"floating": "double", "bint": "bint", "int": "int", "Py_ssize_t": "Py_ssize_t", "double": "double"}


class SignatureError(ValueError):
    """The loop's signature does not follow the rules in this module's docstring."""


@dataclass(frozen=True)
class Array:
    name: str
    const: bool = False
    condition: str | None = None  # the buffer is used only if this holds
    length: str | None = None  # its length, if not param's (a whole-tensor loop's)

    @property
    def declaration(self) -> str:
        return f"{'const ' if self.const else ''}floating* {self.name}"


@dataclass(frozen=True)
class Scalar:
    name: str
    type: str  # as in the loop: floating, bint, int, Py_ssize_t or double

    @property
    def declaration(self) -> str:
        return f"{self.type} {self.name}"

    @property
    def python_declaration(self) -> str:
        return f"{_PYTHON_TYPE[self.type]} {self.name}"


@dataclass(frozen=True)
class Loop:
    """A hand-written loop's signature: what the template needs to know."""

    name: str  # "adam": the loop is _adam_loop, the kernels adam_update...
    arrays: tuple[Array, ...]  # param, grad, then the state buffers
    scalars: tuple[Scalar, ...]
    marked_whole: bool = False  # the signature says "# whole tensor" (all arrays of param's length)
    body: tuple[str, ...] = field(default=(), compare=False)  # the loop's lines after its signature

    @property
    def states(self) -> tuple[Array, ...]:
        return self.arrays[2:]

    @property
    def whole_tensor(self) -> bool:
        """Whether the loop takes a whole tensor at once (some array has another length, or the
        signature is marked ``# whole tensor``)."""
        return self.marked_whole or any(array.length is not None for array in self.arrays)

    @property
    def matrices(self) -> bool:
        """Whether it views param as ``rows x cols`` matrices (scalars ``rows`` and ``cols``)."""
        names = {scalar.name for scalar in self.scalars if scalar.type == "Py_ssize_t"}
        return self.whole_tensor and {"rows", "cols"} <= names


def parse_loop(source: str, where: str = "<source>") -> Loop:
    """The signature of the one ``cdef void _<name>_loop(...) noexcept nogil`` in ``source``."""
    lines = source.splitlines()
    starts = [number for number, line in enumerate(lines) if _LOOP_START.match(line)]
    if len(starts) != 1:
        raise SignatureError(f"{where}: expected one 'cdef void _<name>_loop(' at the start of a line, found {len(starts)}")
    first = starts[0]
    name = _LOOP_START.match(lines[first]).group("name")
    # (code, condition, length) per line of the signature, up to the line that closes it
    pieces: list[tuple[str, str | None, str | None]] = []
    marked_whole = False
    for last, line in enumerate(lines[first:], first):
        code, _, comment = line.partition("#")
        if comment and _WHOLE_TENSOR.search(comment):
            marked_whole = True
            comment = _WHOLE_TENSOR.sub("", comment)
        condition = _CONDITION.search(comment) if comment else None
        length = _LENGTH.search(comment) if comment else None
        pieces.append((code, condition.group("condition") if condition else None, length.group("length") if length else None))
        if "noexcept nogil:" in code:
            break
    else:
        raise SignatureError(f"{where}: _{name}_loop's signature must end with ') noexcept nogil:'")
    # the parameter list: from after the first "(" to before the last ")"
    pieces[0] = (pieces[0][0].split("(", 1)[1], *pieces[0][1:])
    pieces[-1] = (pieces[-1][0].rsplit(")", 1)[0], *pieces[-1][1:])
    arrays: list[Array] = []
    scalars: list[Scalar] = []
    parameters: list[str] = []
    for code, condition, length in pieces:
        on_line = [part.strip() for part in code.split(",") if part.strip()]
        if (condition or length) is not None and (len(on_line) != 1 or not _ARRAY.match(on_line[0])):
            raise SignatureError(f"{where}: '# only if' and '# length' must follow a state array alone on its line")
        for part in on_line:
            parameters.append(part)
            if not arrays and not scalars and part == "Py_ssize_t n":
                continue
            match = _ARRAY.match(part)
            if match:
                if scalars:
                    raise SignatureError(f"{where}: array {match.group('name')!r} after a scalar; arrays come first")
                arrays.append(Array(match.group("name"), bool(match.group("const")), condition, length))
                continue
            match = _SCALAR.match(part)
            if match is None:
                raise SignatureError(f"{where}: cannot read the parameter {part!r} of _{name}_loop")
            scalars.append(Scalar(match.group("name"), match.group("type")))
    if not parameters or parameters[0] != "Py_ssize_t n":
        raise SignatureError(f"{where}: _{name}_loop's first parameter must be 'Py_ssize_t n'")
    if len(arrays) < 2 or arrays[0] != Array("param") or arrays[1] != Array("grad", const=True):
        raise SignatureError(f"{where}: _{name}_loop's arrays must start with 'floating* param, const floating* grad'")
    if any(array.const for array in arrays[2:]):
        raise SignatureError(f"{where}: state arrays are written, so they cannot be const")
    if len(arrays) - 2 > MAX_STATE_ARRAYS:
        raise SignatureError(f"{where}: at most {MAX_STATE_ARRAYS} state arrays (arrays.pxd's plain_arrays)")
    names = [array.name for array in arrays] + [scalar.name for scalar in scalars]
    if len(set(names)) != len(names) or "num_threads" in names or "min_size" in names or "batch" in names:
        raise SignatureError(f"{where}: parameter names must be distinct and not num_threads, min_size or batch")
    body = []
    for line in lines[last + 1:]:
        if line.strip() and not line[0].isspace():
            break  # the next top-level statement: the loop has ended
        body.append(line)
    while body and not body[-1].strip():
        body.pop()
    return Loop(name, tuple(arrays), tuple(scalars), marked_whole, tuple(body))


# the bfloat16 loop's rewriting (see bfloat16_loop)
_LOAD = re.compile(r"\b(param|grad)\[i\]")
_STORE = re.compile(r"^(?P<indent>\s*)param\[i\] = (?:(?P<chained>[a-z_]\w*) = )?(?P<value>[^#]*?)(?P<comment>\s*#.*)?$")


def bfloat16_loop(loop: Loop) -> str:
    """The loop for bfloat16 ``param`` and ``grad`` (as uint16) with float32 state, rewritten from
    the hand-written loop so that each element is read, stepped and written in one pass:

    * ``floating`` becomes ``float``: the arithmetic is the float32 loop's, operation for operation;
    * each load ``param[i]`` or ``grad[i]`` is widened (exact);
    * the store ``param[i] = <value>`` rounds the value once; a chained store
      ``param[i] = p = <value>`` keeps ``p`` in float32, as the float32 loop does, and rounds its copy.

    An element-wise loop that touches ``param`` or ``grad`` any other way is refused (the rewriting
    would not be the same computation), with the line.

    bfloat16's conversions are a shift and a rounding add, which gcc vectorises inside any loop.
    float16's are longer, and gcc vectorises them only in loops of their own; its entry goes a
    block at a time instead (widened, stepped by the float32 loop, rounded: the same bits).
    """
    widen, narrow = "widen_bfloat16", "narrow_bfloat16"

    def aligned(code: str, comment: str, column: int) -> str:  # the equation tag kept in its column
        return f"{code:<{column}}{comment.lstrip()}" if comment else code

    lines: list[str] = []
    for line in loop.body:
        code, hash_, comment = line.partition("#")
        column = len(code) if hash_ else 0
        comment = hash_ + comment
        store = _STORE.match(line)
        if store is None:
            new_code = _LOAD.sub(rf"{widen}(\g<0>)", code.rstrip())
            lines.append(aligned(new_code, comment, max(column, len(new_code) + 2)) if code.strip() else line)
            continue
        indent, chained = store.group("indent"), store.group("chained")
        value = _LOAD.sub(rf"{widen}(\g<0>)", store.group("value"))
        if chained:
            new_code = f"{indent}{chained} = {value}"
            lines += [aligned(new_code, comment, max(column, len(new_code) + 2)), f"{indent}param[i] = {narrow}({chained})"]
        else:
            new_code = f"{indent}param[i] = {narrow}({value})"
            lines.append(aligned(new_code, comment, max(column, len(new_code) + 2)))

    def refuse(line: str) -> None:
        raise SignatureError(
            f"_{loop.name}_loop: its bfloat16 twin is rewritten from it, so it must read param[i] and "
            f"grad[i] and store 'param[i] = ...' (or 'param[i] = p = ...') only; cannot rewrite {line.strip()!r}"
        )

    for line in loop.body:  # param[i] is assigned only by the stores rewritten above
        if re.search(r"\bparam\[i\]\s*[-+*/%&|^]?=(?!=)", line.partition("#")[0]) and not _STORE.match(line):
            refuse(line)
    for line in lines:  # and every other use of param or grad is a widened load
        code = line.partition("#")[0]
        code = re.sub(rf"^\s*param\[i\] = {narrow}\(", "", code)
        if re.search(r"\b(param|grad)\b", re.sub(rf"{widen}\((param|grad)\[i\]\)", "", code)):
            refuse(line)
    body = re.sub(r"\bfloating\b", "float", "\n".join(lines))
    states = "".join(f", float* {array.name}" for array in loop.states)
    scalars = "".join(f", {scalar.declaration.replace('floating ', 'float ', 1)}" for scalar in loop.scalars)
    return (
        f"cdef void _{loop.name}_bfloat16_loop(Py_ssize_t n, uint16_t* param, const uint16_t* grad{states}{scalars}) noexcept nogil:\n"
        f"    # _{loop.name}_loop rewritten for bfloat16 param and grad (generate.bfloat16_loop)\n"
        f"{body}\n"
    )


def render_entries(loop: Loop, source_path: str) -> str:
    """The entry points of ``loop`` (Cython source), rendered from ``entries.pyx.tp``."""
    from Cython.Tempita import Template

    template = Template(TEMPLATE.read_text(encoding="utf-8"), name=TEMPLATE.name)
    return template.substitute(source_path=source_path, **_argument_lists(loop))


def _argument_lists(loop: Loop) -> dict[str, object]:
    """The loop's signature spelled out the ways the template needs it."""
    arrays, scalars, name = loop.arrays, loop.scalars, loop.name

    def joined(items) -> str:
        return ", ".join(items)

    def const(array: Array) -> str:
        return "const " if array.const else ""

    def chunk(array: Array) -> str:  # an unused buffer is NULL, and a chunk of it stays NULL
        return f"{array.name} + start" if array.condition is None else f"offset({array.name}, start)"

    def plain_call(c_type: str) -> str:  # _run on the pointers plain_arrays found
        sizes = joined(f"a.size[{k}]" for k in range(len(arrays)))
        pointers = joined(f"<{const(array)}{c_type}*> a.data[{k}]" for k, array in enumerate(arrays))
        return f"_{name}_run[{c_type}]({sizes}, {pointers}, {joined(s.name for s in scalars)}, num_threads)"

    return dict(
        name=name,
        whole_tensor=loop.whole_tensor,
        matrices=loop.matrices,
        checked_arrays=arrays[1:],  # every array but param is checked against param's length (or its own)
        array_declarations=joined(array.declaration for array in arrays),
        array_names=joined(array.name for array in arrays),
        scalar_declarations=joined(scalar.declaration for scalar in scalars),
        scalar_names=joined(scalar.name for scalar in scalars),
        size_declarations=joined(f"Py_ssize_t {array.name}_size" for array in arrays[1:]),
        chunk_names=joined(chunk(array) for array in arrays),
        python_arguments=joined([array.name for array in arrays] + [s.python_declaration for s in scalars]),
        plain_call_float=plain_call("float"),
        plain_call_double=plain_call("double"),
        buffer_declarations=joined(f"{const(array)}floating[::1] {array.name}" for array in arrays),
        buffer_sizes=joined(f"{array.name}.shape[0]" for array in arrays),
        buffer_pointers=joined(f"{'const_data' if array.const else 'data'}({array.name})" for array in arrays),
        row_pointers=joined(f"<{const(array)}floating*> row[{k}]" for k, array in enumerate(arrays)),
        size_names=joined(f"{array.name}_size" for array in arrays[1:]),
        # the 16-bit entries (fastopt/_rounding): float32 state and scalars, a block at a time
        float_state_declarations=joined(f"float* {array.name}" for array in loop.states),
        float_scalar_declarations=joined(scalar.declaration.replace("floating ", "float ", 1) for scalar in scalars),
        float_state_buffers=joined(f"float[::1] {array.name}" for array in loop.states),
        python_scalar_declarations=joined(s.python_declaration for s in scalars),
        state_sizes=joined(f"{array.name}.shape[0]" for array in loop.states),
        state_pointers=joined(f"data({array.name})" for array in loop.states),
        state_chunk_names=joined(chunk(array) for array in loop.states),
        state_names=joined(array.name for array in loop.states),
        bfloat16_loop="" if loop.whole_tensor else bfloat16_loop(loop),
    )


def module_source(source_path: str, source: str) -> str:
    """The module Cython compiles for one optimizer: the hand-written file (included, so that
    errors and annotations point at its own lines), then its generated entry points.
    ``source_path`` is the hand-written file relative to the project root (an include path)."""
    loop = parse_loop(source, source_path)
    docstring = _docstring(source)
    header = (
        f"# Generated from {source_path} by fastopt/_native/generate.py when the package is built:\n"
        "# do not edit (and do not commit); the hand-written loop is the included file.\n"
    )
    module_doc = f'"""{docstring}"""\n\n' if docstring else ""
    return header + module_doc + f'include "{source_path}"\n\n' + render_entries(loop, source_path)


def _docstring(source: str) -> str | None:
    """The hand-written file's docstring (an included file's docstring is not the module's)."""
    match = re.search(r'^"""(.*?)"""', source, re.S | re.M)
    return match.group(1) if match else None
