"""The kernels and their entry points, called directly (private modules, but importable).

The Cython twin's two ways in: ``<name>_update`` takes plain NumPy arrays through NumPy's C API and
hands anything else to ``<name>_update_buffers`` (typed memoryviews); both must run the same loop
on the same bits, the fast way must really be taken for plain arrays, and whatever it declines
must be accepted or rejected as the memoryviews decide. Scalars reach the kernels rounded once,
as NumPy rounds them. Every kernel of every backend checks, before its loop, that each array it
touches has param's length (a short array, a length-1 gradient, a missing buffer: in a guarded
buffer or a subprocess, where a write out of bounds or a crash would show); a declined batch leaves
the multi-tensor kernel nothing to step; misaligned arrays step to the reference's bits. The calls
with unfit arrays are marked ``hostile``.
"""

import importlib
import inspect
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import GUARD, NdarraySubclass, backends, guarded
from hypothesis import given
from hypothesis import strategies as st
from specs import DTYPES, SPECS, assert_bits_equal

import fastopt
from fastopt import _backends


def cython_module(name):
    return _backends._load_module(SPECS[name].cls.kernel, "cython")


def kernel_arguments(name, dtype, size=37, seed=0):
    """Arguments of ``<name>_update`` as ``opt.step`` makes them at step 3 (every state buffer
    created, the last torch configuration of the spec: the one with the most options on); a
    whole-tensor kernel (Adafactor's) gets a 3 x ``size`` matrix and its shape arguments."""
    rng = np.random.default_rng(seed)
    shape = (3, size) if SPECS[name].cls.algorithm.whole_tensor else (size,)
    opt = SPECS[name].cls([rng.standard_normal(shape).astype(dtype)], backend="reference", **SPECS[name].torch_configs[-1])
    for _ in range(2):
        opt.step([rng.standard_normal(shape).astype(dtype)])
    group, state = opt.param_groups[0], opt.state.get(0, {})
    key = opt.algorithm.advance(group, dict(state), ())
    arrays = [state[slot].reshape(-1).copy() if slot in state else np.empty(0, dtype) for slot in opt.algorithm.slots(group)]
    param = opt._params[0].reshape(-1).copy()
    grad = rng.standard_normal(param.size).astype(dtype)
    return [param, grad, *arrays], [*opt.algorithm.shape_arguments(shape), *opt.algorithm.scalars(group, key, np.dtype(dtype))]


def copies(arrays):
    return [a.copy() for a in arrays]


# --------------------------------------------------------------------------------------------
# The Cython twin's two ways in
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", SPECS)
def test_plain_arrays_and_typed_memoryviews_give_the_same_bits(name, dtype, monkeypatch):
    module = cython_module(name)
    kernel_name = f"{SPECS[name].cls.kernel}_update"
    arrays, scalars = kernel_arguments(name, dtype)

    fast = copies(arrays)
    calls = []
    buffers = getattr(module, f"{kernel_name}_buffers")
    monkeypatch.setattr(module, f"{kernel_name}_buffers", lambda *args: calls.append(args) or buffers(*args))
    getattr(module, kernel_name)(*fast, *scalars, 1)
    assert calls == [], "plain NumPy arrays went through the typed memoryviews"

    # Python memoryviews over copies: not ndarrays, so handed on to the typed-memoryview entry
    through_views = copies(arrays)
    getattr(module, kernel_name)(*map(memoryview, through_views), *scalars, 1)
    assert len(calls) == 1

    direct = copies(arrays)
    buffers(*direct, *scalars, 1)
    for k, (a, b, c) in enumerate(zip(fast, through_views, direct)):
        assert_bits_equal(a, c, f"argument {k}, C API vs typed memoryviews")
        assert_bits_equal(b, c, f"argument {k}, handed on vs typed memoryviews")


@pytest.mark.parametrize("name", ["Adam", "RMSprop", "SGD"])
def test_an_ndarray_subclass_and_a_read_only_gradient_are_accepted(name):
    module = cython_module(name)
    kernel = getattr(module, f"{SPECS[name].cls.kernel}_update")
    arrays, scalars = kernel_arguments(name, np.float32)
    expected = copies(arrays)
    kernel(*expected, *scalars, 1)

    subclassed = [a.copy().view(NdarraySubclass) for a in arrays]
    kernel(*subclassed, *scalars, 1)
    read_only_grad = copies(arrays)
    read_only_grad[1].flags.writeable = False
    kernel(*read_only_grad, *scalars, 1)
    for got in (subclassed, read_only_grad):
        for k, (a, b) in enumerate(zip(got, expected)):
            assert_bits_equal(np.asarray(a), b, f"argument {k}")


def misfits(arrays):
    """(label, arguments) pairs that neither way may accept."""
    param, grad, *state = arrays
    other = np.float64 if param.dtype == np.float32 else np.float32
    read_only = param.copy()
    read_only.flags.writeable = False
    strided = np.repeat(param, 2)[::2]
    swapped = param.astype(param.dtype.newbyteorder())
    cases = [
        ("param of another dtype", [param.astype(other), grad, *state]),
        ("gradient of another dtype", [param, grad.astype(other), *state]),
        ("integer param", [param.astype(np.int64), grad, *state]),
        ("read-only param", [read_only, grad, *state]),
        ("strided param", [strided, grad, *state]),
        ("byte-swapped param", [swapped, grad, *state]),
        ("2-d param", [param.reshape(1, -1), grad, *state]),
        ("a list", [list(param), grad, *state]),
    ]
    if state:
        read_only_state = state[0].copy()
        read_only_state.flags.writeable = False
        cases.append(("read-only state", [param, grad, read_only_state, *state[1:]]))
    return cases


@pytest.mark.hostile
@pytest.mark.parametrize("name", SPECS)
def test_arrays_that_do_not_fit_are_rejected_and_nothing_changes(name):
    module = cython_module(name)
    kernel = getattr(module, f"{SPECS[name].cls.kernel}_update")
    arrays, scalars = kernel_arguments(name, np.float32)
    for label, arguments in misfits(arrays):
        before = [np.array(a, copy=True) for a in arguments]
        with pytest.raises((ValueError, TypeError)):
            kernel(*arguments, *scalars, 1)
        for k, (a, b) in enumerate(zip(arguments, before)):
            assert np.array_equal(np.asarray(a), b, equal_nan=True), f"{label}: argument {k} changed"


float64_values = st.one_of(
    st.floats(-3.4e38, 3.4e38, allow_nan=False),
    st.floats(-1e-37, 1e-37),  # float32's subnormals and its smallest normals
    # float32 values plus half an ulp: the ties that round-to-nearest-even decides
    st.floats(1e-30, 1e30).map(lambda x: float(np.float32(x)) + float(np.spacing(np.float32(x))) / 2),
)


@given(value=float64_values)
def test_a_float64_scalar_is_rounded_to_float32_as_numpy_rounds_it(value):
    """``step()`` hands the Cython kernels Python floats for the per-step scalars (see
    ``Optimizer._split_scalars``) and the C API entry takes every scalar as a C double: the C
    conversion to ``float`` must give np.float32's bits. Plain SGD with lr = value, p = -0.0 and
    g = -1 stores ``-0.0 - lr * -1``, which is exactly lr as the kernel received it (signed zeros
    included)."""
    module = cython_module("SGD")
    args = (False, 0.0, 1.0, 0.0, True, 1.0, False, value, 1)  # maximize .. lr, num_threads
    expected = np.array([np.float32(value)])
    for entry in (module.sgd_update, module.sgd_update_buffers):
        param = np.full(1, -0.0, np.float32)
        entry(param, np.full(1, -1.0, np.float32), np.empty(0, np.float32), *args)
        assert_bits_equal(param, expected, f"{entry.__name__}({value!r})")


def test_the_cython_module_is_the_one_the_backend_loads():
    for name in SPECS:
        module = cython_module(name)
        assert importlib.import_module(module.__name__) is module


@pytest.mark.parametrize("name", ["Adam", "NAdam", "RAdam", "Adagrad", "Adamax"])
def test_a_learning_rate_wider_than_a_double_is_rounded_once(name):
    """The step's scalars reach the Cython kernels as Python floats only when they are Python
    floats: a longdouble learning rate just above a float32 tie would be rounded twice on its way
    through a C double (to the tie, then to even) and once by np.float32."""
    lr = np.longdouble(1) + np.longdouble(2.0**-24) + np.longdouble(2.0**-60)
    assert np.float32(lr) != np.float32(float(lr))  # the case this test is about
    results = []
    for backend in ("reference", "cython"):
        p = np.full(8, 3.0, np.float32)
        opt = SPECS[name].cls([p], backend=backend, lr=lr)
        for step in range(3):
            opt.step([np.full(8, 0.5 + step, np.float32)])
        results.append(p)
    assert_bits_equal(results[1], results[0], f"{name} cython vs reference, lr={lr!r}")


# --------------------------------------------------------------------------------------------
# Every kernel checks, before its loop, that every array it touches has param's length; the
# compiled loops then run without bounds checks.
# --------------------------------------------------------------------------------------------
def direct_kernel_call(name, backend, short):
    """Call ``<name>_update`` of ``backend`` on length-8 arrays, with the array ``short``
    ("grad" or "state") a length-4 view at the start of a guarded buffer. Returns the label of
    the short array, the parameter and the guarded buffer (for the caller to check)."""
    from fastopt import _backends

    opt = SPECS[name].cls([np.ones(8)], backend="reference", **SPECS[name].torch_configs[-1])
    opt.step([np.ones(8)])  # creates every state buffer
    group = opt.param_groups[0]
    state = opt.state.get(0, {})
    slots = [slot for slot in opt.algorithm.slots(group) if slot is not None and slot in state]
    if short == "state" and not slots:
        pytest.skip(f"{name} with these options keeps no state buffer")
    scalars = opt.algorithm.scalars(group, opt.algorithm.advance(group, dict(state), ()), np.dtype(np.float64))
    buffers = {slot: state[slot].reshape(-1).copy() for slot in slots}
    view, buffer = guarded(4)
    view[:] = 0.5
    grad = np.full(8, 0.5)
    if short == "grad":
        grad, label = view, "grad"
    else:
        label = slots[0]
        buffers[label] = view
    param = np.ones(8)
    kernel = _backends.get_kernel(SPECS[name].cls.kernel, backend)
    all_buffers = [buffers.get(slot, np.empty(0)) if slot else np.empty(0) for slot in opt.algorithm.slots(group)]
    try:
        kernel(param, grad, *all_buffers, *opt.algorithm.shape_arguments((8,)), *scalars, 1)
    finally:
        assert np.all(buffer[4:] == GUARD), "out-of-bounds write"
        assert np.all(param == 1.0), "param changed by a rejected call"
    return label


@pytest.mark.hostile
@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("short", ["grad", "state"])
def test_a_kernel_called_with_a_short_array_raises_naming_it(name, backend, short):
    """Nothing written (param, and the guard zone past the short array), and the array named."""
    kernel = f"{SPECS[name].cls.kernel}_update"
    opt = SPECS[name].cls([np.ones(8)], backend="reference", **SPECS[name].torch_configs[-1])
    slots = opt.algorithm.slots(opt.param_groups[0])
    arguments = list(inspect.signature(getattr(importlib.import_module(f"fastopt.{opt.kernel}.reference"), kernel)).parameters)
    # the kernel names the array by its argument (Adagrad's state "sum" is its state_sum)
    # (a state array a parameter of 8 elements keeps: not Adafactor's factors of a matrix)
    label = "grad" if short == "grad" else next((arguments[2 + k] for k, s in enumerate(slots)
                                                 if s and opt.algorithm.buffer_shape(s, (8,)) is not None), None)
    with pytest.raises(ValueError, match=rf"^{kernel}: {label} has 4 elements, but param has 8$"):
        direct_kernel_call(name, backend, short)


@pytest.mark.hostile
@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_the_reference_does_not_broadcast_a_length_1_gradient(backend):
    from fastopt import _backends

    p = np.ones(8)
    kernel = _backends.get_kernel("sgd", backend)
    with pytest.raises(ValueError, match="^sgd_update: grad has 1 elements, but param has 8$"):
        kernel(p, np.ones(1), np.empty(0), False, 0.0, 1.0, 0.0, True, 1.0, False, 0.1, 1)
    assert np.all(p == 1.0)


@pytest.mark.hostile
@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_a_kernel_called_with_a_missing_buffer_raises_instead_of_crashing(backend):
    """In a subprocess, since before the check the Cython kernel died of SIGSEGV (amsgrad set, its
    buffer empty: a NULL pointer)."""
    code = textwrap.dedent(
        f"""
        import numpy as np
        from fastopt import _backends
        kernel = _backends.get_kernel("adam", "{backend}")
        n = 1 << 16
        empty = np.empty(0)
        try:
            kernel(np.ones(n), np.ones(n), np.zeros(n), np.zeros(n), empty, False, 0.0, 1.0,
                   0.9, 0.1, 0.999, 0.001, True, False, 1.0, 1e-8, 0.001, 1)
        except ValueError as exc:
            print("ValueError:", exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit code {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.strip() == "ValueError: adam_update: max_exp_avg_sq has 0 elements, but param has 65536"


@pytest.mark.hostile
def test_a_declined_batch_is_empty_for_the_many_kernel():
    """fastopt._native.batch.Batch is importable: gather() that declines (returns k >= 0) must not leave
    a batch whose rows k.. hold uninitialised pointers for <name>_update_many. In a subprocess:
    before gather kept a declined batch empty, the call read whatever malloc left there."""
    code = textwrap.dedent(
        """
        import numpy as np
        from fastopt import _backends
        from fastopt._native.batch import Batch
        many = _backends.get_kernel("sgd", "cython", many=True)
        params = [np.ones(1000) for _ in range(64)]
        grads = [np.ones(1000) for _ in range(63)] + [np.ones(1000, np.float32)]  # the last is declined
        batch = Batch()
        declined_at = batch.gather(params, grads, [None] * 64, (None,), (), np.dtype(np.float64).num)
        assert declined_at == 63, declined_at
        many["double"](batch, False, 0.0, 1.0, 0.0, True, 1.0, False, 0.5, 1, 1 << 30)
        changed = sum(int(np.any(p != 1.0)) for p in params)
        print("parameters changed by a declined batch:", changed)
        assert changed == 0
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit code {result.returncode}: {result.stdout}{result.stderr[-500:]}"


# --------------------------------------------------------------------------------------------
# Misaligned arrays
# --------------------------------------------------------------------------------------------
@pytest.mark.hostile
@backends
@pytest.mark.parametrize("dtype", DTYPES)
def test_misaligned_parameters_and_gradients_work_and_agree(backend, dtype):
    """Accepted: a C-contiguous array that is not aligned to its itemsize (np.frombuffer at an odd
    offset). x86-64 loads it fine and every backend gives the reference's bits."""
    itemsize = np.dtype(dtype).itemsize
    raw_p, raw_g = bytearray(itemsize * 9 + 1), bytearray(itemsize * 9 + 3)
    p = np.frombuffer(raw_p, dtype, 9, offset=1)
    g = np.frombuffer(raw_g, dtype, 9, offset=3)
    p[:] = np.linspace(-1, 1, 9)
    g[:] = np.linspace(2, -2, 9)
    assert not p.flags.aligned and not g.flags.aligned
    expected = p.copy()
    ref = fastopt.Adam([expected], lr=0.1, backend="reference")
    opt = fastopt.Adam([p], lr=0.1, backend=backend)
    for _ in range(3):
        ref.step([g.copy()])
        opt.step([g])
    assert_bits_equal(p, expected)
