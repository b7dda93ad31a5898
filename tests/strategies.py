"""Hypothesis strategies beyond the optimizers' options (tests/specs.py): the arrays the
agreement tests draw, and the hostile scenarios of the fuzz test, whose arrays are views into one
byte buffer (the arena) between two guard zones.
"""

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp
from specs import SPECS

array_shapes = hynp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)


def finite_elements(dtype):
    # width matters: without it NumPy 2 silently rounds float64 draws into float32 arrays
    return st.floats(-1e3, 1e3, width=np.finfo(dtype).bits, allow_nan=False, allow_infinity=False)


def any_elements(dtype):
    """Anything a float can be: huge, tiny, subnormal, infinite, NaN."""
    return st.floats(width=np.finfo(dtype).bits)


# --------------------------------------------------------------------------------------------
# The fuzz test's scenarios (tests/test_fuzz.py)
# --------------------------------------------------------------------------------------------
ARENA_BYTES = 1024
GUARD_BYTES = 64
GUARD = 0xA5

HOSTILE_VALUES = [
    math.nan, math.inf, -math.inf, -1.0, -0.0, 0.0, 1.0, 1.5, 5e-324, 1e-300, 1e300, 10**400, 2**62,
    "0.1", None, True, False, np.float32(0.5), np.float16(0.25), np.int64(3), 1 + 0j, np.array(0.1),
    [0.9], (0.9, 0.999), (1.0, 0.5), (0.5,), (0.9, math.nan), (0.0, 0.0), (0.999, 0.999),
]

HOSTILE_DTYPES = ["f4", "f8", "f2", "i4", "?", "c16", ">f8", "<f4"]


@st.composite
def hostile_spec(draw, shape=None):
    """Anything: an arena view of any dtype, shape, layout, offset (so also misaligned or
    overlapping) and writeability, or a non-array stand-in."""
    kind = draw(st.sampled_from(["view"] * 8 + ["list", "float", "none", "object", "str", "int"]))
    if kind != "view":
        return (kind,)
    dtype = draw(st.sampled_from(HOSTILE_DTYPES + ["f4", "f8"] * 4))
    if shape is None or draw(st.integers(0, 4)) == 0:
        shape = draw(st.sampled_from([(), (0,), (1,), (3,), (5,), (2, 3), (0, 2), (4,)]))
    layout = draw(st.sampled_from(["C"] * 6 + ["strided", "F"]))
    offset = draw(st.integers(0, ARENA_BYTES // 8)) * draw(st.sampled_from([1, 4, 8, 8, 8]))
    readonly = draw(st.integers(0, 9)) == 0
    return ("view", offset, dtype, shape, layout, readonly)


@st.composite
def array_specs(draw, count, dtype, shapes=None, region=0):
    """``count`` arrays, each valid (its own aligned, contiguous, writeable memory in one half of
    the arena, of ``dtype`` and of ``shapes[i]`` if given) or, one time in five, hostile."""
    specs, cursor = [], region
    for i in range(count):
        shape = shapes[i] if shapes is not None and i < len(shapes) else None
        if draw(st.integers(0, 4)) == 0:
            specs.append(draw(hostile_spec(shape=shape)))
            continue
        if shape is None:
            shape = draw(st.sampled_from([(), (0,), (1,), (3,), (5,), (2, 3), (4,)]))
        itemsize = np.dtype(dtype).itemsize
        cursor += -cursor % itemsize
        specs.append(("view", cursor, dtype, shape, "C", False))
        cursor += int(np.prod(shape, dtype=np.int64)) * itemsize
    return specs


def shapes_of(specs):
    return [spec[3] if spec[0] == "view" else None for spec in specs]


def build(spec, arena):
    """The array (or stand-in) a spec describes, as a view of ``arena`` (None if it would not fit)."""
    kind = spec[0]
    if kind == "list":
        return [0.5, -0.5, 1.0]
    if kind == "float":
        return 0.5
    if kind == "none":
        return None
    if kind == "object":
        return np.array([0.5, 1.0, 2.0], dtype=object)
    if kind == "str":
        return "grad"
    if kind == "int":
        return 3
    _, offset, dtype, shape, layout, readonly = spec
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64))
    if layout == "strided" and len(shape) >= 1:
        strides = tuple(int(np.prod(shape[i + 1 :], dtype=np.int64)) * dtype.itemsize * 2 for i in range(len(shape)))
        span = 2 * size * dtype.itemsize
    elif layout == "F" and len(shape) >= 2:
        strides = tuple(int(np.prod(shape[:i], dtype=np.int64)) * dtype.itemsize for i in range(len(shape)))
        span = size * dtype.itemsize
    else:
        strides = None
        span = size * dtype.itemsize
    if offset + span > ARENA_BYTES:
        return None
    array = np.ndarray(shape, dtype, buffer=arena, offset=GUARD_BYTES + offset, strides=strides)
    if readonly:
        array.flags.writeable = False
    return array


def make_arena(seed):
    """Random float32-ish data between two guard zones; returned as a writeable uint8 buffer."""
    rng = np.random.default_rng(seed)
    arena = np.full(ARENA_BYTES + 2 * GUARD_BYTES, GUARD, dtype=np.uint8)
    arena[GUARD_BYTES:-GUARD_BYTES] = rng.standard_normal(ARENA_BYTES // 4).astype(np.float32).view(np.uint8)
    return arena


hyper_value = st.sampled_from(HOSTILE_VALUES)


@st.composite
def scenario(draw):
    name = draw(st.sampled_from(list(SPECS)))
    options = draw(SPECS[name].options)
    cls = SPECS[name].cls
    defaults = list(cls([np.zeros(1)], backend="reference").defaults)
    if draw(st.integers(0, 5)) == 0:  # one hostile constructor argument (a group's counters are not arguments)
        options[draw(st.sampled_from([key for key in defaults if key not in cls.group_counters]))] = draw(hyper_value)
    dtype = draw(st.sampled_from(["f4", "f8"]))
    params = draw(array_specs(draw(st.integers(0, 3)), dtype))
    actions = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["step"] * 5 + ["state"] * 2 + ["hyper", "load", "group", "list"]))
        if kind == "step":
            count = len(params) + draw(st.sampled_from([0] * 8 + [-1, 1]))
            actions.append(("step", draw(array_specs(max(count, 0), dtype, shapes_of(params), ARENA_BYTES // 2))))
        elif kind == "hyper":
            actions.append(("hyper", draw(st.sampled_from(defaults)), draw(hyper_value)))
        elif kind == "state":
            # NAdam's scalar mu_product is left to test_state.py: its range is NAdam's to check.
            key = draw(st.sampled_from(("step", *(k for k in SPECS[name].cls.state_keys if k != "mu_product"))))
            value = draw(st.one_of(
                st.tuples(st.just("array"), hostile_spec()),
                st.tuples(st.just("array"), hostile_spec(shape=params[0][3] if params and params[0][0] == "view" else None)),
                st.tuples(st.just("value"), hyper_value),
                st.just(("delete",)),
            ))
            actions.append(("state", draw(st.integers(0, max(len(params) - 1, 0))), key, value))
        elif kind == "load":
            edit = draw(st.sampled_from(["none", "drop_step", "step", "dtype", "shape", "hyper", "other_optimizer", "extra_key", "missing_group_key"]))
            actions.append(("load", edit, draw(hyper_value)))
        elif kind == "group":
            actions.append(("group", draw(st.lists(hostile_spec(), min_size=1, max_size=2))))
        else:
            actions.append(("list",))
    return name, options, params, actions, draw(st.integers(0, 2**32 - 1))
