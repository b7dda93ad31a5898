"""The NumPy API's contract: what ``step()`` does to the caller's arrays and to ``opt.state``.

Parameters are updated in place and keep their identity; state holds torch's keys in aligned
buffers; ``None`` gradients and parameters without one leave everything untouched; 0-d and empty
parameters step; param groups equal separate optimizers and can be added later; hyperparameters
edited between steps (a schedule, any other key, a list edited in place) take effect; optional
buffers can be switched on later. Then ``flatten()``'s buffers, the backends (availability,
"auto", a missing build, Numba without a writable cache) and ``repr``.
"""

import sys

import numpy as np
import pytest
from helpers import FULL_OPTIONS, backends, names, params_and_grads
from specs import DTYPES, SPECS, assert_bits_equal, assert_same_state

import fastopt
from fastopt import _backends

EXPECTED_STATE_KEYS = {
    "SGD": {"momentum_buffer"},
    "Adagrad": {"step", "sum"},
    "RMSprop": {"step", "square_avg", "momentum_buffer", "grad_avg"},
    "Adam": {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    "AdamW": {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    "Adadelta": {"step", "square_avg", "acc_delta"},
    "Adamax": {"step", "exp_avg", "exp_inf"},
    "ASGD": {"step", "eta", "mu", "ax"},
    "NAdam": {"step", "exp_avg", "exp_avg_sq", "mu_product"},
    "RAdam": {"step", "exp_avg", "exp_avg_sq"},
    "Lion": {"exp_avg"},
    "Rprop": {"step", "prev", "step_size"},
    "AdaBelief": {"step", "exp_avg", "exp_avg_var", "max_exp_avg_var"},
    "Adafactor": {"step", "row_var", "col_var", "variance"},
    "ADOPT": {"step", "exp_avg", "exp_avg_sq"},
    "ScheduleFreeAdamW": {"z", "exp_avg_sq"},
    "LAMB": {"step", "exp_avg", "exp_avg_sq"},
}

# State entries that are scalars, not buffers: NAdam's mu_product and ASGD's eta and mu are
# float32 even for float64 parameters, as in torch.
SCALAR_STATE_KEYS = {"NAdam": {"mu_product": np.float32}, "ASGD": {"eta": np.float32, "mu": np.float32}}


# --------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------
@names
@backends
def test_updates_the_callers_arrays_in_place(name, backend):
    params, grads = params_and_grads()
    before = [p.copy() for p in params]
    ids = [id(p) for p in params]
    opt = SPECS[name].cls(params, backend=backend, **FULL_OPTIONS[name])
    opt.step(grads[0])
    if name == "ADOPT":  # its first step only records the squared gradient (fastopt.adopt, (3))
        assert all(np.array_equal(p, b) for p, b in zip(params, before))
        opt.step(grads[1])
    assert [id(p) for p in opt.param_groups[0]["params"]] == ids
    assert all(not np.array_equal(p, b) for p, b in zip(params, before))


@names
@backends
def test_state_keys_and_aligned_buffers(name, backend):
    params, grads = params_and_grads(np.float32)
    opt = SPECS[name].cls(params, backend=backend, **FULL_OPTIONS[name])
    opt.step(grads[0])
    for index, param in enumerate(params):
        state = opt.state[index]
        algorithm = SPECS[name].cls.algorithm
        # the keys a parameter of this shape keeps (Adafactor: the factors of a matrix, or a variance)
        assert set(state) == {key for key in EXPECTED_STATE_KEYS[name]
                              if key not in algorithm.buffers or algorithm.buffer_shape(key, param.shape) is not None}
        for key, value in state.items():
            if key == "step":
                assert value == 1 and isinstance(value, int)
            elif key in SCALAR_STATE_KEYS.get(name, {}):
                assert type(value) is SCALAR_STATE_KEYS[name][key]
            else:
                assert value.shape == algorithm.buffer_shape(key, param.shape) and value.dtype == param.dtype
                assert value.ctypes.data % 64 == 0, f"{key} is not 64-byte aligned"


@backends
@pytest.mark.parametrize("dtype", DTYPES)
def test_read_only_and_non_contiguous_gradients_are_accepted(backend, dtype):
    rng = np.random.default_rng(3)
    p1 = rng.standard_normal(6).astype(dtype)
    p2 = p1.copy()
    wide = rng.standard_normal(12).astype(dtype)
    strided = wide[::2]  # non-contiguous view
    contiguous = strided.copy()
    contiguous.flags.writeable = False  # read-only
    fastopt.Adam([p1], lr=0.1, backend=backend).step([strided])
    fastopt.Adam([p2], lr=0.1, backend=backend).step([contiguous])
    assert_bits_equal(p1, p2)


@names
@backends
def test_none_gradient_leaves_parameter_and_state_untouched(name, backend):
    params, grads = params_and_grads()
    opt = SPECS[name].cls(params, backend=backend, **FULL_OPTIONS[name])
    opt.step(grads[0])
    frozen = params[1].copy()
    frozen_state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state[1].items()}
    opt.step([grads[1][0], None, grads[1][2]])
    assert_bits_equal(params[1], frozen)
    for key, value in frozen_state.items():
        if isinstance(value, np.ndarray):
            assert_bits_equal(opt.state[1][key], value)
        else:
            assert opt.state[1][key] == value


@backends
def test_parameter_without_gradient_gets_no_state(backend):
    params, grads = params_and_grads()
    opt = fastopt.Adam(params, backend=backend)
    opt.step([grads[0][0], None, None])
    assert set(opt.state) == {0}
    plain = fastopt.SGD(params, backend=backend)
    plain.step(grads[0])
    assert plain.state == {}  # like torch: SGD without momentum keeps no state


@names
@backends
def test_zero_dimensional_and_empty_parameters(name, backend):
    scalar, empty = np.array(1.5), np.zeros((0, 4))
    opt = SPECS[name].cls([scalar, empty], backend=backend, **FULL_OPTIONS[name])
    opt.step([np.array(0.5), np.zeros((0, 4))])
    if name == "ADOPT":  # its first step only records the squared gradient
        opt.step([np.array(0.5), np.zeros((0, 4))])
    assert scalar.shape == () and scalar != 1.5
    assert empty.shape == (0, 4)


@names
@backends
def test_param_groups_equal_separate_optimizers(name, backend):
    params, grads = params_and_grads(seed=5)
    together = [p.copy() for p in params]
    alone = [p.copy() for p in params]
    options = FULL_OPTIONS[name]
    override = {"lr": options["lr"] * 3, "weight_decay": 0.0}
    if name == "Rprop":  # no weight decay: its factors differ in the second group instead
        override = {"lr": options["lr"] * 3, "etas": (0.25, 1.5)}
    opt = SPECS[name].cls(
        [{"params": together[:2]}, {"params": together[2:], **override}], backend=backend, **options
    )
    first = SPECS[name].cls(alone[:2], backend=backend, **options)
    second = SPECS[name].cls(alone[2:], backend=backend, **{**options, **override})
    assert opt.param_groups[1]["lr"] == override["lr"] and opt.param_groups[0]["lr"] == options["lr"]
    for step_grads in grads[:4]:
        opt.step(step_grads)
        first.step(step_grads[:2])
        second.step(step_grads[2:])
    for a, b in zip(together, alone):
        assert_bits_equal(a, b)


@backends
@pytest.mark.parametrize("dtype", DTYPES)
def test_lr_changed_between_steps_takes_effect(backend, dtype):
    p = np.array([1.0, 2.0], dtype=dtype)
    g1, g2 = np.array([0.5, 0.25], dtype=dtype), np.array([-1.0, 4.0], dtype=dtype)
    opt = fastopt.SGD([p], lr=0.1, backend=backend)
    opt.step([g1])
    opt.param_groups[0]["lr"] = 0.01
    opt.step([g2])
    expected = np.array([1.0, 2.0], dtype=dtype) - dtype(0.1) * g1
    expected = expected - dtype(0.01) * g2
    assert_bits_equal(p, expected)


# Hyperparameter edits between steps: a step revalidates a group and recomputes its kernel
# scalars whenever any hyperparameter is another object than last time (kept scalars are reused
# only while every one is the same immutable object), or a mutable one (a list) is there at all.
EDITS = [
    ("lr, a new float", lambda g: g.update(lr=g["lr"] / 10)),
    ("lr, the same value as another object", lambda g: g.update(lr=float(str(g["lr"])))),
    ("weight_decay", lambda g: g.update(weight_decay=0.5)),
    ("betas as a list, edited in place", None),
    ("etas", lambda g: g.update(etas=(0.25, 3.0))),
    ("step_sizes", lambda g: g.update(step_sizes=(0.02, 0.03))),
]


def _applies(name: str, label: str) -> bool:
    key = label.split(" ")[0].rstrip(",")
    return key in fastopt.OPTIMIZERS[name]([np.ones(1)]).defaults


@backends
@pytest.mark.parametrize(("name", "label"), [(n, label) for n in SPECS for label, _ in EDITS if _applies(n, label)])
def test_every_hyperparameter_edit_between_steps_takes_effect(name, backend, label):
    """Compared with a fresh optimizer (nothing cached) that loads the first one's state dict
    with the edit already made, and takes the same next step."""
    edit = dict(EDITS)[label]
    options = dict(FULL_OPTIONS[name])
    rng = np.random.default_rng(3)
    param = rng.standard_normal(5).astype(np.float32)
    grads = [rng.standard_normal(5).astype(np.float32) for _ in range(3)]
    opt = fastopt.OPTIMIZERS[name]([param], backend=backend, **options)
    opt.step([grads[0]])
    group = opt.param_groups[0]
    if edit is None:  # betas as a list (accepted, like torch), stepped with, then edited in place
        group["betas"] = list(group["betas"])
        opt.step([grads[1]])
        group["betas"][0] = 0.5
    else:
        opt.step([grads[1]])
        edit(group)
    saved = opt.state_dict()
    if edit is None:
        saved["param_groups"][0]["betas"] = (0.5, group["betas"][1])
    twin_param = param.copy()
    twin = fastopt.OPTIMIZERS[name]([twin_param], backend=backend, **options)
    twin.load_state_dict(saved)
    assert {k: v for k, v in twin.param_groups[0].items() if k != "params"} == {
        k: (tuple(v) if k == "betas" else v) for k, v in group.items() if k != "params"
    }
    opt.step([grads[2]])
    twin.step([grads[2]])
    assert_bits_equal(param, twin_param)
    assert_same_state(opt, twin)


@backends
def test_a_list_of_betas_edited_in_place_to_an_invalid_value_is_rejected(backend):
    opt = fastopt.Adam([np.ones(3)], backend=backend)
    opt.param_groups[0]["betas"] = [0.9, 0.999]
    opt.step([np.ones(3)])
    opt.param_groups[0]["betas"][1] = 1.5
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.5"):
        opt.step([np.ones(3)])


@names
@backends
def test_adding_a_param_group_later(name, backend):
    params, grads = params_and_grads()
    opt = SPECS[name].cls(params[:2], backend=backend, **FULL_OPTIONS[name])
    opt.step(grads[0][:2])
    opt.add_param_group({"params": [params[2]], "lr": 0.5})
    opt.step(grads[1])
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["lr"] == 0.5
    assert 2 in opt.state


@backends
def test_optional_buffers_can_be_switched_on_later(backend):
    params, grads = params_and_grads()
    opt = fastopt.Adam(params, backend=backend)
    opt.step(grads[0])
    opt.param_groups[0]["amsgrad"] = True  # torch raises KeyError here; fastopt starts the buffer
    opt.step(grads[1])
    assert "max_exp_avg_sq" in opt.state[0]
    rms = fastopt.RMSprop(params, backend=backend)
    rms.step(grads[0])
    rms.param_groups[0].update(momentum=0.9, centered=True)
    rms.step(grads[1])
    assert {"momentum_buffer", "grad_avg"} <= set(rms.state[0])


def test_adagrad_state_is_created_in_the_constructor():
    p = np.zeros(3, np.float32)
    opt = fastopt.Adagrad([p], initial_accumulator_value=0.25)
    assert opt.state[0]["step"] == 0
    assert_bits_equal(opt.state[0]["sum"], np.full(3, 0.25, np.float32))


# --------------------------------------------------------------------------------------------
# flatten(): aligned buffers and their checks
# --------------------------------------------------------------------------------------------
def test_flat_buffers_are_aligned_and_validated():
    flat = fastopt.flatten([np.zeros(3, np.float32), np.ones((2, 2), np.float32)])
    assert flat.param.ctypes.data % 64 == 0 and flat.grad.ctypes.data % 64 == 0
    assert flat.param.tolist() == [0, 0, 0, 1, 1, 1, 1]
    with pytest.raises(TypeError, match=r"arrays\[1\] has dtype float64 but arrays\[0\] has dtype float32"):
        fastopt.flatten([np.zeros(3, np.float32), np.zeros(3)])
    with pytest.raises(ValueError, match="at least one array"):
        fastopt.flatten([])
    with pytest.raises(TypeError, match=r"arrays\[0\] must be a numpy.ndarray, got list"):
        fastopt.flatten([[1.0]])
    with pytest.raises(ValueError, match=r"expected an array of shape \(7,\), got \(3,\)"):
        flat.split(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="shares memory"):  # views and buffer cannot both be optimized
        fastopt.SGD([flat.param, flat.params[0]])


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------
def test_all_backends_available_and_auto_is_fastest():
    assert fastopt.available_backends() == ("reference", "numba", "cython")
    assert fastopt.SGD([np.zeros(1)]).backend == "cython"


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"backend must be one of 'auto', 'reference', 'numba', 'cython'; got 'gpu'"):
        fastopt.SGD([np.zeros(1)], backend="gpu")


def test_unavailable_backend_says_why(monkeypatch):
    for suffix in ("", "_avx2", "_avx512"):  # every instruction-set build fails to import
        monkeypatch.setitem(sys.modules, f"fastopt.sgd._cython{suffix}", None)
    _backends._load_module.cache_clear()
    try:
        with pytest.raises(fastopt.BackendUnavailable, match=r"backend 'cython' cannot be loaded here .*fastopt.sgd._cython: ImportError: no Cython build loads: avx512: .*baseline: .*rebuild"):
            fastopt.SGD([np.zeros(1)], backend="cython")
        assert "cython" not in fastopt.available_backends()
        assert fastopt.SGD([np.zeros(1)]).backend == "numba"  # auto falls back
    finally:
        _backends._load_module.cache_clear()


def test_numba_kernels_compile_without_a_writable_cache(monkeypatch):
    import numba

    from fastopt import _jit

    real_njit = numba.njit

    def njit_without_cache_locator(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit_without_cache_locator)

    def double(x):
        return 2 * x

    assert _jit.jit_kernel(double)(21) == 42


def test_repr_names_backend_and_hyperparameters():
    text = repr(fastopt.RMSprop([np.zeros(2)], backend="numba"))
    assert "RMSprop (backend='numba')" in text and "rho: 0.9" in text
