"""The heart of fastopt: every backend leaves the reference's bits, in parameters and in state.

Hypothesis draws the optimizer's options, one to three parameters of random shapes (size 0 and 1,
odd sizes, 0-d to 3-d), a dtype, several steps with fresh gradients (some ``None``) and a learning
rate that changes between steps; the reference and the backend run on copies, and every array must
come out bit-identical (NaN-aware), on finite values and on any float (inf, NaN, subnormal). Around
that: large arrays (a vector body and an odd tail), every instruction-set build of the Cython
kernels, one flat buffer for a whole model against separate arrays, and the one positional
signature the three twins of each kernel share.
"""

import importlib
import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp
from specs import DTYPES, FAST_BACKENDS, SPECS, assert_bits_equal, assert_large_run_agrees, assert_same_state
from strategies import any_elements, array_shapes, finite_elements

import fastopt


def run_agreement(spec, backend, data, elements):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    options = data.draw(spec.options, label="options")
    param_shapes = data.draw(st.lists(array_shapes, min_size=1, max_size=3), label="shapes")
    initial = [data.draw(hynp.arrays(dtype, shape, elements=elements(dtype))) for shape in param_shapes]
    n_steps = data.draw(st.integers(1, 8), label="steps")

    reference_params = [p.copy() for p in initial]
    backend_params = [p.copy() for p in initial]
    reference = spec.cls(reference_params, backend="reference", **options)
    fast = spec.cls(backend_params, backend=backend, **options)
    for step in range(n_steps):
        grads = [
            None
            if data.draw(st.integers(0, 9), label="skip") == 0
            else data.draw(hynp.arrays(dtype, p.shape, elements=elements(dtype)))
            for p in initial
        ]
        lr_scale = data.draw(st.sampled_from([1.0, 1.0, 0.5, 2.0]), label="lr schedule")
        for opt in (reference, fast):
            opt.param_groups[0]["lr"] = options["lr"] * lr_scale
            opt.step(grads)
    for index, (actual, expected) in enumerate(zip(backend_params, reference_params)):
        assert_bits_equal(actual, expected, f"params[{index}]")
    assert_same_state(fast, reference, backend)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("name", SPECS)
@given(data=st.data())
def test_backend_matches_reference_bit_for_bit(name, backend, data, measured):
    run_agreement(SPECS[name], backend, data, finite_elements)
    measured["examples"][f"{name}-{backend} (finite)"] += 1


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("name", SPECS)
@given(data=st.data())
def test_backend_matches_reference_on_extreme_values(name, backend, data, measured):
    """Overflow, underflow, subnormals, inf and NaN propagate identically in every backend."""
    run_agreement(SPECS[name], backend, data, any_elements)
    measured["examples"][f"{name}-{backend} (extreme)"] += 1


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_arrays_agree(name, backend, dtype):
    """Hypothesis keeps arrays small; this covers a vector-sized body and an odd tail."""
    rng = np.random.default_rng(20261129)
    spec = SPECS[name]
    options = dict(spec.torch_configs[-1])
    assert_large_run_agrees(spec.cls, options, backend, dtype, rng, size=100_003, steps=7)


@pytest.mark.parametrize("build", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("name", SPECS)
def test_every_cython_instruction_set_build_agrees(name, build, monkeypatch):
    """setup.py compiles the Cython kernels for several instruction sets; all give the same bits."""
    from fastopt import _backends
    from fastopt._native import cpu as _cpu

    level = _backends.CYTHON_BUILDS[build][1]
    if not _cpu.supports(level):
        pytest.skip(f"this CPU cannot run the {build} build ({level})")  # the machine, not the build
    monkeypatch.setenv("FASTOPT_CYTHON_ISA", build)
    _backends._load_module.cache_clear()
    try:
        assert _backends.cython_build(SPECS[name].cls.kernel) == build
        for dtype in DTYPES:
            rng = np.random.default_rng(5)
            options = dict(SPECS[name].torch_configs[-1])
            initial = rng.standard_normal(4099).astype(dtype)  # a vector body and an odd tail
            reference_param, build_param = initial.copy(), initial.copy()
            reference = SPECS[name].cls([reference_param], backend="reference", **options)
            compiled = SPECS[name].cls([build_param], backend="cython", **options)
            for _ in range(6):
                grad = rng.standard_normal(initial.size).astype(dtype)
                reference.step([grad])
                compiled.step([grad])
            assert_bits_equal(build_param, reference_param, f"{build} param")
            assert_same_state(compiled, reference, build)
    finally:
        _backends._load_module.cache_clear()


# --------------------------------------------------------------------------------------------
# flatten(): one buffer for the whole model gives the same bits as stepping each array
# --------------------------------------------------------------------------------------------
# (element-wise optimizers only: Adafactor's norms and factors are a tensor's own, so a flat
# buffer is one vector to it)
@pytest.mark.parametrize("name", [name for name, spec in SPECS.items() if not spec.cls.algorithm.whole_tensor])
@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_flat_buffer_steps_like_separate_arrays(name, backend, dtype):
    rng = np.random.default_rng(7)
    shapes = [(4, 3), (3,), (), (0,), (5, 1, 2)]
    separate = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]
    flat = fastopt.flatten(separate)
    for view, array in zip(flat.params, separate):
        assert_bits_equal(view, array)
        assert view.size == 0 or np.shares_memory(view, flat.param)
    options = dict(SPECS[name].torch_configs[-1])
    opt_separate = SPECS[name].cls(separate, backend=backend, **options)
    opt_flat = SPECS[name].cls([flat.param], backend=backend, **options)
    for _ in range(4):
        grads = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]
        for view, grad in zip(flat.grads, grads):
            view[...] = grad
        opt_separate.step(grads)
        opt_flat.step([flat.grad])
    for view, array in zip(flat.params, separate):
        assert_bits_equal(view, array)
    for key, value in opt_flat.state[0].items():
        if isinstance(value, np.ndarray):
            for index, part in enumerate(flat.split(value)):
                if part.size:
                    assert_bits_equal(part, opt_separate.state[index][key], key)


# --------------------------------------------------------------------------------------------
# The three twins of a kernel have one name and one positional signature
# --------------------------------------------------------------------------------------------
NAMES = sorted({cls.kernel for cls in fastopt.OPTIMIZERS.values()})  # AdamW is stepped by Adam's kernel


@pytest.mark.parametrize("name", NAMES)
def test_three_kernels_share_one_signature(name):
    kernel = f"{name}_update"
    reference = getattr(importlib.import_module(f"fastopt.{name}.reference"), kernel)
    numba_twin = getattr(importlib.import_module(f"fastopt.{name}._numba"), kernel)
    cython_twin = getattr(importlib.import_module(f"fastopt.{name}._cython"), kernel)
    expected = list(inspect.signature(reference).parameters)
    assert list(inspect.signature(numba_twin.py_func).parameters) == expected
    assert list(inspect.signature(cython_twin).parameters) == expected
    assert expected[:2] == ["param", "grad"]
    for parameter in inspect.signature(reference).parameters.values():
        assert parameter.default is inspect.Parameter.empty  # positional, no defaults
