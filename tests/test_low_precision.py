"""float16 and bfloat16 parameters (fastopt._rounding): every optimizer's three twins give the
same bits, and those bits are the float32 step on the widened values rounded once; the state is
float32; what cannot be stepped in 16 bits is refused before anything changes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp
from specs import FAST_BACKENDS, SPECS, assert_bits_equal, assert_same_state
from strategies import array_shapes
from test_threads import two_threads  # noqa: F401  (the fixture: 2 threads above 1,000 elements)

import fastopt
from fastopt import _rounding

ml_dtypes = pytest.importorskip("ml_dtypes")

SIXTEEN = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}


def sixteen_bit_arrays(dtype, shape, any_value: bool):
    """Arrays of ``dtype`` drawn as their 16 bits: any value (NaN, inf, subnormal) or finite
    values of moderate size."""
    if any_value:
        return hynp.arrays(np.uint16, shape).map(lambda bits: bits.view(dtype))
    return hynp.arrays(np.float32, shape, elements=st.floats(-100, 100, width=32)).map(lambda a: a.astype(dtype))


def assert_same_bits(actual, expected, what):
    """16-bit arrays: identical bits, any NaN equal to any NaN."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    assert_bits_equal(actual.astype(np.float32), expected.astype(np.float32), what)


def run_sixteen(spec, backend, data, any_value):
    dtype = SIXTEEN[data.draw(st.sampled_from(sorted(SIXTEEN)), label="dtype")]
    options = data.draw(spec.options, label="options")
    shapes = data.draw(st.lists(array_shapes, min_size=1, max_size=3), label="shapes")
    initial = [data.draw(sixteen_bit_arrays(dtype, shape, any_value), label="param") for shape in shapes]
    reference_params, backend_params = [p.copy() for p in initial], [p.copy() for p in initial]
    reference = spec.cls(reference_params, backend="reference", **options)
    fast = spec.cls(backend_params, backend=backend, **options)
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        grads = [data.draw(sixteen_bit_arrays(dtype, p.shape, any_value), label="grad") for p in initial]
        with np.errstate(all="ignore"):
            reference.step(grads)
        fast.step(grads)
    for index, (actual, expected) in enumerate(zip(backend_params, reference_params)):
        assert_same_bits(actual, expected, f"params[{index}]")
    assert_same_state(fast, reference, backend)
    for entry in fast.state.values():  # the state is float32
        assert all(v.dtype == np.float32 for v in entry.values() if isinstance(v, np.ndarray))


SIXTEEN_SPECS = [name for name in SPECS if SPECS[name].cls.algorithm.low_precision]


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("name", SIXTEEN_SPECS)
@given(data=st.data())
def test_16_bit_parameters_are_bit_identical_across_backends(name, backend, data, measured):
    run_sixteen(SPECS[name], backend, data, any_value=False)
    measured["examples"][f"{name}-{backend} (16-bit finite)"] += 1


@pytest.mark.hostile
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("name", SIXTEEN_SPECS)
@given(data=st.data())
def test_16_bit_parameters_of_any_value_are_bit_identical_across_backends(name, backend, data, measured):
    run_sixteen(SPECS[name], backend, data, any_value=True)
    measured["examples"][f"{name}-{backend} (16-bit any)"] += 1


def test_every_optimizer_but_the_sparse_one_and_lbfgs_takes_16_bit_parameters():
    classes = {**fastopt.OPTIMIZERS, **fastopt.MATRIX_OPTIMIZERS}
    assert {name for name, cls in classes.items() if not cls.algorithm.low_precision} == {"SparseAdam"}
    assert set(SIXTEEN_SPECS) == set(SPECS)
    with pytest.raises(TypeError, match=r"params\[1\] has dtype bfloat16; LBFGS steps float32 and float64 arrays only"):
        fastopt.LBFGS([np.zeros(3, np.float32), np.zeros(3, ml_dtypes.bfloat16)])


@pytest.mark.parametrize("dtype", sorted(SIXTEEN))
@pytest.mark.parametrize("name", list(SPECS) + ["Muon"])
def test_a_16_bit_step_is_the_float32_step_rounded_once(name, dtype):
    """The oracle of the contract, on the reference: at every step, the 16-bit parameter is the
    float32 optimizer's step from the widened parameter (with the same float32 state), rounded to
    nearest even; the state is that float32 optimizer's state, bit for bit."""
    dtype = SIXTEEN[dtype]
    options = dict(SPECS[name].torch_configs[-1]) if name in SPECS else dict(lr=0.02)
    cls = getattr(fastopt, name)
    rng = np.random.default_rng(5)
    shape = (6, 40)
    param16 = rng.standard_normal(shape).astype(dtype)
    param32, initial = param16.astype(np.float32), param16.copy()
    sixteen, single = cls([param16], backend="reference", **options), cls([param32], backend="reference", **options)
    for step in range(5):
        grad16 = (rng.standard_normal(shape) * 3).astype(dtype)
        param32[...] = param16.astype(np.float32)  # the float32 optimizer starts from the widened value
        sixteen.step([grad16])
        single.step([grad16.astype(np.float32)])
        assert_same_bits(param16, param32.astype(dtype), f"step {step}")
        assert_same_state(sixteen, single, f"step {step}")
    assert (param16 != initial).any(), "the parameter moved"


@pytest.mark.parametrize("dtype", sorted(SIXTEEN))
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop", "Adafactor"])
def test_large_16_bit_parameters_on_threads_are_bit_identical(name, backend, dtype, two_threads):
    """Several blocks per thread, and a last block cut short, on two threads."""
    dtype = SIXTEEN[dtype]
    rng = np.random.default_rng(7)
    shape = (3, 2 * _rounding.BLOCK + 5)  # 12,303 elements: two chunks of whole blocks, a short one
    initial = rng.standard_normal(shape).astype(dtype)
    options = dict(SPECS[name].torch_configs[-1])
    params = {b: initial.copy() for b in ("reference", backend)}
    opts = {b: SPECS[name].cls([params[b]], backend=b, **options) for b in params}
    for _ in range(3):
        grad = (rng.standard_normal(shape) * rng.choice([1e-3, 1.0, 1e3])).astype(dtype)
        for opt in opts.values():
            opt.step([grad])
    assert_same_bits(params[backend], params["reference"], "param")
    assert_same_state(opts[backend], opts["reference"], backend)


# ---- what is refused, and how --------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["reference", *FAST_BACKENDS])
def test_a_gradient_of_another_dtype_is_refused_and_nothing_changes(backend):
    param = np.ones(8, ml_dtypes.bfloat16)
    opt = fastopt.Adam([param], backend=backend, lr=0.1)
    for grad in (np.ones(8, np.float32), np.ones(8, np.float16)):
        with pytest.raises(TypeError, match=r"grads\[0\] has dtype .* but params\[0\] has dtype bfloat16"):
            opt.step([grad])
    assert opt.state == {} and (param == 1).all()


def test_the_sparse_optimizer_refuses_16_bit_parameters_naming_them():
    with pytest.raises(TypeError, match=r"params\[1\] has dtype float16; SparseAdam steps float32 and float64"):
        fastopt.SparseAdam([np.zeros(4, np.float32), np.zeros(4, np.float16)])


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.complex64])
def test_other_dtypes_are_still_refused(dtype):
    with pytest.raises(TypeError, match=r"params\[0\] has dtype .*; fastopt optimizes native float32 and float64 arrays, and float16 and bfloat16"):
        fastopt.Adam([np.zeros(4, dtype)])


def test_a_16_bit_state_entry_is_refused_float32_is_asked_for():
    param = np.ones(8, np.float16)
    opt = fastopt.Adam([param], lr=0.1)
    opt.step([np.ones(8, np.float16)])
    saved = opt.state_dict()
    assert saved["state"][0]["exp_avg"].dtype == np.float32
    saved["state"][0]["exp_avg"] = saved["state"][0]["exp_avg"].astype(np.float16)
    with pytest.raises(ValueError, match=r"\['exp_avg'\] has shape \(8,\) and dtype float16, but .* needs shape \(8,\) and dtype float32"):
        opt.load_state_dict(saved)
    opt.state[0]["exp_avg_sq"] = opt.state[0]["exp_avg_sq"].astype(np.float16)
    before = param.copy()
    with pytest.raises(ValueError, match=r"dtype float32"):
        opt.step([np.ones(8, np.float16)])
    assert_same_bits(param, before, "param unchanged")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_a_checkpoint_of_16_bit_parameters_resumes_bit_for_bit(backend):
    rng = np.random.default_rng(3)
    param = rng.standard_normal(300).astype(ml_dtypes.bfloat16)
    grads = [rng.standard_normal(300).astype(ml_dtypes.bfloat16) for _ in range(4)]
    straight = fastopt.AdamW([param.copy()], backend=backend, lr=0.01)
    for grad in grads:
        straight.step([grad])
    first = fastopt.AdamW([resumed := param.copy()], backend=backend, lr=0.01)
    for grad in grads[:2]:
        first.step([grad])
    second = fastopt.AdamW([resumed], backend=backend, lr=0.01)
    second.load_state_dict(first.state_dict())
    for grad in grads[2:]:
        second.step([grad])
    assert_same_bits(resumed, straight._params[0], "param")
    assert_same_state(second, straight, backend)


# ---- float32 master weights and their 16-bit copy in one pass (the kernels; no API yet) ----------
@pytest.mark.parametrize("dtype", sorted(SIXTEEN))
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop"])
def test_master_weights_step_and_write_their_copy_in_one_pass(name, threads, dtype):
    """Each backend's ``step_copy``: the master weights get the float32 kernel's bits, the copy is
    their rounding, the same bits in the three backends."""
    from fastopt._engine.kernels import kernels_for
    from fastopt.cli.bench import workloads as w

    dtype = SIXTEEN[dtype]
    rng = np.random.default_rng(11)
    n = 2 * _rounding.BLOCK + 77
    hp = w.hyperparameters(name)
    start_param, grad = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    start_state = w.random_state(name, hp, n, np.float32, rng)
    results = {}
    for backend in ("reference", *FAST_BACKENDS):
        param, state = start_param.copy(), {k: v.copy() for k, v in start_state.items()}
        arguments = w.positional(name, w.kernel_keywords(name, hp, param, grad, state, threads))
        arrays = sum(isinstance(argument, np.ndarray) for argument in arguments)  # param, grad, the state slots
        buffers = arguments[2:arrays]
        scalars = arguments[arrays:-1]
        copy = np.empty(n, dtype)
        kernels_for(fastopt.OPTIMIZERS[name].kernel, backend, arrays).sixteen.step_copy(param, grad, buffers, scalars, copy, threads)
        results[backend] = (param, copy, buffers)
    expected_param = start_param.copy()
    expected_state = {k: v.copy() for k, v in start_state.items()}
    w.kernel_call(name, "reference", w.positional(name, w.kernel_keywords(name, hp, expected_param, grad, expected_state, 1)), 1)()
    for backend, (param, copy, buffers) in results.items():
        assert_bits_equal(param, expected_param, f"{backend} master")
        assert_same_bits(copy, expected_param.astype(dtype), f"{backend} copy")
        for buffer, reference_buffer in zip(buffers, results["reference"][2]):
            assert_bits_equal(buffer, reference_buffer, f"{backend} state")
    assert not np.array_equal(expected_param, start_param)


# ---- opt.step(grads, copy_to=...): float32 master weights and their 16-bit copy -----------------
@pytest.mark.parametrize("dtype", sorted(SIXTEEN))
@pytest.mark.parametrize("backend", ["reference", *FAST_BACKENDS])
@pytest.mark.parametrize("name", list(SPECS) + ["Muon", "SparseAdam"])
def test_copy_to_writes_the_rounded_master_weights_and_changes_nothing_else(name, backend, dtype):
    """The master weights and state get the bits of a step without ``copy_to``; the copy gets
    their rounding, for every optimizer (element-wise ones in one pass; whole-tensor and sparse
    ones after their step); a parameter without a gradient keeps its copy."""
    from fastopt._engine.rows import every_row

    dtype = SIXTEEN[dtype]
    cls = getattr(fastopt, name)
    options = dict(SPECS[name].torch_configs[-1]) if name in SPECS else dict(lr=0.02)
    rng = np.random.default_rng(9)
    shapes = [(6, 40), (7,)] if name != "Muon" else [(6, 40), (5, 3)]
    masters = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    plain = [m.copy() for m in masters]
    copies = [np.full(shape, 7, dtype) for shape in shapes]
    with_copy, without = cls(masters, backend=backend, **options), cls(plain, backend=backend, **options)
    for optimizer in (with_copy, without):
        if hasattr(optimizer, "train"):
            optimizer.train()
    for step in range(3):
        grads = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
        grads[1] = None if step == 0 else grads[1]  # the second parameter skips the first step
        if name == "SparseAdam":
            grads = every_row(grads)
        with_copy.step(grads, copy_to=copies)
        without.step(grads)
        if step == 0:
            assert (copies[1].astype(np.float32) == 7).all(), "a parameter without a gradient keeps its copy"
    for master, reference, copy in zip(masters, plain, copies):
        assert_bits_equal(master, reference, "master")
        assert_same_bits(copy, master.astype(dtype), "copy")
    assert_same_state(with_copy, without, name)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_copy_to_on_threads_is_the_one_thread_copy(backend, two_threads):
    rng = np.random.default_rng(2)
    n = 3 * _rounding.BLOCK + 11
    start = rng.standard_normal(n).astype(np.float32)
    grads = [rng.standard_normal(n).astype(np.float32) for _ in range(2)]
    results = []
    for threads in (1, 2):
        fastopt.set_num_threads(threads, min_size=1000)
        master, copy = start.copy(), np.empty(n, ml_dtypes.bfloat16)
        optimizer = fastopt.AdamW([master], backend=backend, lr=0.01)
        for grad in grads:
            optimizer.step([grad], copy_to=[copy])
        results.append((master, copy))
    assert_bits_equal(results[1][0], results[0][0], "master")
    assert_same_bits(results[1][1], results[0][1], "copy")


def _copy_errors():
    shape = (4, 3)
    return {
        "not a list": (lambda m, g, s: np.zeros(shape, np.float16), TypeError, r"copy_to must be a list or tuple"),
        "one entry short": (lambda m, g, s: [], ValueError, r"copy_to has 0 entries for 1 parameters"),
        "float32 copy": (lambda m, g, s: [np.zeros(shape, np.float32)], TypeError, r"copy_to\[0\] has dtype float32; a copy is float16 or bfloat16"),
        "another shape": (lambda m, g, s: [np.zeros((3, 4), np.float16)], ValueError, r"copy_to\[0\] has shape \(3, 4\) but params\[0\] has shape \(4, 3\)"),
        "not contiguous": (lambda m, g, s: [np.zeros((3, 4), np.float16).T], ValueError, r"C-contiguous, writeable"),
        "read-only": (lambda m, g, s: [_read_only(np.zeros(shape, np.float16))], ValueError, r"C-contiguous, writeable"),
        "a view of the parameter": (lambda m, g, s: [_overlay(m)], ValueError, r"copy_to\[0\] shares memory with params\[0\]"),
        "a view of the gradient": (lambda m, g, s: [_overlay(g)], ValueError, r"copy_to\[0\] shares memory with grads\[0\]"),
        "a view of the state": (lambda m, g, s: [_overlay(s["exp_avg"])], ValueError, r"shares memory with opt.state\[0\]\['exp_avg'\]"),
        "a list, not an array": (lambda m, g, s: [[0.0] * 12], TypeError, r"copy_to\[0\] must be a numpy.ndarray or None, got list"),
    }


def _overlay(array):
    """A contiguous float16 array of shape (4, 3) over the first half of ``array``'s memory."""
    return array.reshape(-1).view(np.float16)[:12].reshape(4, 3)


def _read_only(array):
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("case", list(_copy_errors()))
def test_a_bad_copy_is_refused_naming_it_and_nothing_changes(case):
    make, error, message = _copy_errors()[case]
    master = np.ones((4, 3), np.float32)
    optimizer = fastopt.Adam([master], lr=0.1)
    grad = np.ones((4, 3), np.float32)
    optimizer.step([grad])
    before_master, before_state = master.copy(), {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in optimizer.state[0].items()}
    with pytest.raises(error, match=message):
        optimizer.step([grad], copy_to=make(master, grad, optimizer.state[0]))
    assert_bits_equal(master, before_master, "master")
    assert optimizer.state[0]["step"] == before_state["step"]
    assert_bits_equal(optimizer.state[0]["exp_avg"], before_state["exp_avg"], "exp_avg")


def test_master_weights_must_be_float32():
    master = np.ones(3, np.float64)
    with pytest.raises(TypeError, match=r"copy_to\[0\]: params\[0\] has dtype float64; master weights are float32"):
        fastopt.SGD([master], lr=0.1).step([np.ones(3)], copy_to=[np.zeros(3, np.float16)])
