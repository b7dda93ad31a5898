"""The Cython entry points are generated from each loop's signature (fastopt/_native/generate.py).

A golden file pins what the template renders for a small loop (as bottleneck tests its own
templates): a change to the template shows up here as a diff to review, and the file is
regenerated with ``FASTOPT_UPDATE_GOLDEN=1 python -m pytest tests/test_generated_plumbing.py``.
"""

import os
import re
from pathlib import Path

import pytest

import fastopt
from fastopt._native import generate

GOLDEN = Path(__file__).parent / "golden" / "entries_example.pyx"
ROOT = Path(fastopt.__file__).parent

EXAMPLE = '''"""A loop with every kind of argument the generator knows."""

from cython cimport floating


cdef void _example_loop(Py_ssize_t n, floating* param, const floating* grad, floating* velocity,
                        floating* peak,  # only if track_peak
                        bint maximize, floating lr, int stride, bint track_peak) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        velocity[i] = grad[i]
        param[i] = param[i] - lr * velocity[i]
'''


def test_the_template_renders_the_golden_file():
    rendered = generate.module_source("tests/example/_cython.pyx", EXAMPLE)
    if os.environ.get("FASTOPT_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(rendered, encoding="utf-8")
    assert rendered == GOLDEN.read_text(encoding="utf-8")


def test_the_signature_is_read_as_written():
    loop = generate.parse_loop(EXAMPLE)
    assert loop.name == "example"
    assert [(a.name, a.const, a.condition) for a in loop.arrays] == [
        ("param", False, None), ("grad", True, None), ("velocity", False, None), ("peak", False, "track_peak"),
    ]
    assert [(s.name, s.type) for s in loop.scalars] == [
        ("maximize", "bint"), ("lr", "floating"), ("stride", "int"), ("track_peak", "bint"),
    ]


WHOLE = '''"""A whole-tensor loop: state arrays of their own lengths, param as rows x cols matrices."""

from cython cimport floating


cdef void _sketch_loop(Py_ssize_t n, floating* param, const floating* grad,
                       floating* row_sums,  # only if factored; length n // cols
                       floating* total,  # length 1
                       bint factored, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    pass
'''


def test_a_whole_tensor_loop_gets_its_own_length_checks_and_no_threads():
    loop = generate.parse_loop(WHOLE)
    assert [(a.name, a.condition, a.length) for a in loop.arrays] == [
        ("param", None, None), ("grad", None, None), ("row_sums", "factored", "n // cols"), ("total", None, "1"),
    ]
    assert loop.whole_tensor and loop.matrices
    rendered = generate.render_entries(loop, "x.pyx")
    assert '    require_matrices("sketch_update", n, rows, cols)\n' in rendered
    assert '    if factored:\n        require_size("sketch_update", "row_sums", row_sums_size, n // cols, "n // cols")\n' in rendered
    assert '    require_size("sketch_update", "total", total_size, 1, "1")\n' in rendered
    assert '    require_length("sketch_update", "grad", grad_size, n)\n' in rendered
    assert "_sketch_threads" not in rendered and "sketch_update_many" not in rendered
    assert not generate.parse_loop(EXAMPLE).whole_tensor


MARKED = '''"""A whole-tensor loop whose arrays all have param's length: marked by a comment."""

from cython cimport floating


cdef void _norms_loop(Py_ssize_t n, floating* param, const floating* grad,  # whole tensor
                      floating* moment,
                      floating* peak,  # only if track_peak
                      bint track_peak, double lr) noexcept nogil:
    pass
'''


def test_a_loop_marked_whole_tensor_runs_once_on_one_thread_with_param_length_checks():
    """LAMB's kind of loop: norms of the whole parameter, every array of param's length."""
    loop = generate.parse_loop(MARKED)
    assert [(a.name, a.condition, a.length) for a in loop.arrays] == [
        ("param", None, None), ("grad", None, None), ("moment", None, None), ("peak", "track_peak", None),
    ]
    assert loop.whole_tensor and not loop.matrices
    rendered = generate.render_entries(loop, "x.pyx")
    assert '    require_length("norms_update", "moment", moment_size, n)\n' in rendered
    assert '    if track_peak:\n        require_length("norms_update", "peak", peak_size, n)\n' in rendered
    assert "require_matrices" not in rendered.split("cdef int _norms_run", 1)[1]
    assert "_norms_threads" not in rendered and "norms_update_many" not in rendered
    assert "_norms_loop(n, param, grad, moment, peak, track_peak, lr)  # a whole tensor: one thread" in rendered
    # without the marker the same signature is element-wise: threads and a multi-tensor entry
    plain = generate.parse_loop(MARKED.replace("  # whole tensor", ""))
    assert not plain.whole_tensor and "norms_update_many" in generate.render_entries(plain, "x.pyx")


def test_an_optional_buffer_is_checked_only_when_its_condition_holds():
    rendered = generate.render_entries(generate.parse_loop(EXAMPLE), "x.pyx")
    assert '    require_length("example_update", "velocity", velocity_size, n)\n' in rendered
    assert '    if track_peak:\n        require_length("example_update", "peak", peak_size, n)\n' in rendered
    assert "offset(peak, start)" in rendered and "velocity + start" in rendered


@pytest.mark.parametrize(
    "signature, message",
    [
        ("cdef void _x_loop(floating* param, const floating* grad) noexcept nogil:", "first parameter must be 'Py_ssize_t n'"),
        ("cdef void _x_loop(Py_ssize_t n, const floating* grad, floating* param) noexcept nogil:", "must start with"),
        ("cdef void _x_loop(Py_ssize_t n, floating* param, floating* grad) noexcept nogil:", "must start with"),
        ("cdef void _x_loop(Py_ssize_t n, floating* param, const floating* grad, floating lr,\n"
         "                  floating* late) noexcept nogil:", "after a scalar"),
        ("cdef void _x_loop(Py_ssize_t n, floating* param, const floating* grad, object o) noexcept nogil:", "cannot read"),
        ("cdef void _x_loop(Py_ssize_t n, floating* param, const floating* grad,\n"
         "                  floating* a, floating* b,  # only if flag\n"
         "                  bint flag) noexcept nogil:", "alone on its line"),
        ("cdef void _x_loop(Py_ssize_t n, floating* param, const floating* grad, floating* a, floating* b,\n"
         "                  floating* c, floating* d) noexcept nogil:", "at most 3 state arrays"),
        ("cdef void _x_loop(Py_ssize_t n, floating* param, const floating* grad, int num_threads) noexcept nogil:", "not num_threads"),
        ("cdef void _x_loop(Py_ssize_t n, floating* param, const floating* grad)", "must end with"),
        ("def x_update(param, grad):\n    pass", "expected one"),
    ],
)
def test_a_signature_off_the_rules_is_refused_with_the_reason(signature, message):
    with pytest.raises(generate.SignatureError, match=re.escape(message)):
        generate.parse_loop(signature)


CHAINED = """
cdef void _chained_loop(Py_ssize_t n, floating* param, const floating* grad, floating* average,
                        floating lr) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p
    for i in range(n):
        param[i] = p = param[i] - lr * grad[i]                                   # (1)
        average[i] = p                                                           # (2)
"""


def test_the_bfloat16_loop_widens_each_load_and_rounds_each_store_once():
    """The one-pass bfloat16 loop is the hand-written loop with ``floating`` made ``float``, each
    load of param or grad widened, and the store rounded; a chained store keeps the float32 value
    for the rest of the iteration (as the float32 loop does) and rounds only its copy."""
    rewritten = generate.bfloat16_loop(generate.parse_loop(CHAINED))
    # (the equation tags stay aligned; the spaces before them are not the point here)
    assert [re.sub(r"(?<=\S) {2,}", " ", line) for line in rewritten.splitlines()[2:]] == [
        "    cdef Py_ssize_t i",
        "    cdef float p",
        "    for i in range(n):",
        "        p = widen_bfloat16(param[i]) - lr * widen_bfloat16(grad[i]) # (1)",
        "        param[i] = narrow_bfloat16(p)",
        "        average[i] = p # (2)",
    ]
    assert rewritten.startswith(
        "cdef void _chained_bfloat16_loop(Py_ssize_t n, uint16_t* param, const uint16_t* grad, float* average, float lr) noexcept nogil:"
    )


@pytest.mark.parametrize("line", ["q = param[i + 1]", "param[i] += grad[i]", "q = param[0]", "helper(param, i)"])
def test_a_loop_the_bfloat16_rewriting_cannot_follow_is_refused_with_the_line(line):
    source = CHAINED.replace("average[i] = p ", f"{line}\n        average[i] = p ")
    with pytest.raises(generate.SignatureError, match=re.escape(repr(line))):
        generate.bfloat16_loop(generate.parse_loop(source))


KERNEL_FOLDERS = sorted({cls.kernel for cls in fastopt.OPTIMIZERS.values()})


@pytest.mark.parametrize("folder", KERNEL_FOLDERS)
def test_each_cython_twin_holds_only_its_loop(folder):
    """A reader opening fastopt/<name>/_cython.pyx finds the loop first and nothing else: no entry
    point, no threads, no length checks (those are generated), and at most 70 lines (110 for a
    loop over whole tensors, which makes several passes: Adafactor's)."""
    source = (ROOT / folder / "_cython.pyx").read_text(encoding="utf-8")
    loop = generate.parse_loop(source, folder)
    assert loop.name == folder
    definitions = re.findall(r"^(?:cdef|cpdef|def)\s.*$", source, re.M)
    assert definitions == [line for line in definitions if line.startswith(f"cdef void _{folder}_loop(")]
    assert len(definitions) == 1
    assert len(source.splitlines()) <= (110 if loop.whole_tensor else 70)


def test_adamw_is_stepped_by_adams_kernel_not_a_copy_of_it():
    assert fastopt.AdamW.kernel == "adam"
    assert not (ROOT / "adamw" / "_cython.pyx").exists()
    assert not (ROOT / "adamw" / "reference.py").exists() and not (ROOT / "adamw" / "_numba.py").exists()
