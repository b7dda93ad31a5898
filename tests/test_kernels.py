"""The Cython twin's two ways in, and the shortcuts ``step()`` takes before calling it.

``<name>_update`` takes plain NumPy arrays through NumPy's C API and hands anything else to
``<name>_update_buffers`` (typed memoryviews). Both must run the same loop on the same bits, the
fast way must really be taken for plain arrays, and whatever the fast way declines must still be
accepted or rejected exactly as the memoryviews decide.
"""

import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from specs import DTYPES, SPECS, assert_bits_equal

import fastopt
from fastopt import _backends
from fastopt._native.identity import groups_as_validated


def cython_module(name):
    return _backends._load_module(SPECS[name].cls.kernel, "cython")


def kernel_arguments(name, dtype, size=37, seed=0):
    """Arguments of ``<name>_update`` as ``opt.step`` makes them at step 3 (every state buffer
    created, the last torch configuration of the spec: the one with the most options on)."""
    rng = np.random.default_rng(seed)
    opt = SPECS[name].cls([rng.standard_normal(size).astype(dtype)], backend="reference", **SPECS[name].torch_configs[-1])
    for _ in range(2):
        opt.step([rng.standard_normal(size).astype(dtype)])
    group, state = opt.param_groups[0], opt.state.get(0, {})
    key = opt.algorithm.advance(group, dict(state), ())
    arrays = [state[slot].reshape(-1).copy() if slot else np.empty(0, dtype) for slot in opt.algorithm.slots(group)]
    param = opt._params[0].reshape(-1).copy()
    grad = rng.standard_normal(size).astype(dtype)
    return [param, grad, *arrays], list(opt.algorithm.scalars(group, key, np.dtype(dtype)))


def copies(arrays):
    return [a.copy() for a in arrays]


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


class Subclass(np.ndarray):
    pass


@pytest.mark.parametrize("name", ["Adam", "RMSprop", "SGD"])
def test_an_ndarray_subclass_and_a_read_only_gradient_are_accepted(name):
    module = cython_module(name)
    kernel = getattr(module, f"{SPECS[name].cls.kernel}_update")
    arrays, scalars = kernel_arguments(name, np.float32)
    expected = copies(arrays)
    kernel(*expected, *scalars, 1)

    subclassed = [a.copy().view(Subclass) for a in arrays]
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


# --------------------------------------------------------------------------------------------
# step()'s identity check of the groups
# --------------------------------------------------------------------------------------------
def test_groups_as_validated_trusts_only_the_very_same_objects():
    a, b = np.zeros(3), np.zeros(3)
    lr, betas = 0.1, (0.9, 0.999)
    members, keys, objects = [[a, b]], ("lr", "betas"), [(lr, betas)]

    def groups(**change):
        return [{"params": [a, b], "lr": lr, "betas": betas, **change}]

    assert groups_as_validated(groups(), members, keys, objects)
    assert not groups_as_validated(groups(params=[b, a]), members, keys, objects)
    assert not groups_as_validated(groups(params=[a]), members, keys, objects)
    assert not groups_as_validated(groups(params=(a, b)), members, keys, objects)
    assert not groups_as_validated(groups(lr=float("0.1")), members, keys, objects)  # equal, not the same
    assert not groups_as_validated(groups(betas=tuple([0.9, 0.999])), members, keys, objects)
    assert not groups_as_validated([{"params": [a, b], "lr": lr}], members, keys, objects)  # key missing
    assert not groups_as_validated(groups() * 2, members, keys, objects)
    assert not groups_as_validated(tuple(groups()), members, keys, objects)
    assert not groups_as_validated(groups(), members, keys, [None])  # a mutable value: never trusted


def test_a_step_after_an_edit_of_the_groups_still_checks_it():
    p = np.zeros(4, np.float32)
    opt = fastopt.Adam([p], backend="cython")
    opt.step([np.ones(4, np.float32)])
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.step([np.ones(4, np.float32)])
    opt.param_groups[0]["lr"] = 1e-3
    opt.param_groups[0]["params"][0] = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="changed after it was added"):
        opt.step([np.ones(4, np.float32)])


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
