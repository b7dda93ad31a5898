"""Hostile input the validation tables (test_validation.py) do not cover: an edited ``opt.state``,
hyperparameters that pass ``< inf`` but do not fit a float, float32 overflow of a cast
hyperparameter, masked arrays, a parameter that aliases optimizer state, and the compiled kernels
called directly (private modules, but importable).

Every rejected call must leave every parameter and every state entry exactly as it was; where a
bug would write out of bounds, the arrays are views into a larger buffer whose guard zone is
checked, so the test sees the write without corrupting the process.
"""

import copy
import importlib
import inspect
import re
import subprocess
import sys
import textwrap
from fractions import Fraction

import numpy as np
import pytest
from specs import DTYPES, SPECS, assert_bits_equal

import fastopt

backends = pytest.mark.parametrize("backend", fastopt.BACKENDS)
GUARD = -7.0  # the value every guard element holds


def guarded(n, spare=8, dtype=np.float64):
    """A length-``n`` view at the start of a buffer whose ``spare`` trailing elements hold GUARD."""
    buffer = np.full(n + spare, GUARD, dtype)
    buffer[:n] = 0.0
    return buffer[:n], buffer


def snapshot(opt):
    return [p.copy() for p in opt._params], copy.deepcopy(opt.state)


def assert_nothing_changed(opt, before):
    params, state = before
    for index, (now, then) in enumerate(zip(opt._params, params)):
        assert_bits_equal(now, then, f"params[{index}]")
    assert opt.state.keys() == state.keys()
    for index, entry in state.items():
        if not isinstance(entry, dict):
            assert repr(opt.state[index]) == repr(entry), f"state[{index}]"
            continue
        assert opt.state[index].keys() == entry.keys(), f"state[{index}] keys"
        for key, value in entry.items():
            now = opt.state[index][key]
            if isinstance(value, np.ndarray) and value.dtype in DTYPES:
                assert_bits_equal(now, value, f"state[{index}][{key!r}]")
            else:
                assert type(now) is type(value) and repr(now) == repr(value), f"state[{index}][{key!r}]"


# --------------------------------------------------------------------------------------------
# opt.state is public: an edited entry is checked before anything is updated
# --------------------------------------------------------------------------------------------
def _readonly(array):
    array.flags.writeable = False
    return array


SHORT_VIEW = {}  # the guarded buffers of the "shorter buffer" case, to check the guard zone


def _short_exp_avg(opt):
    view, buffer = guarded(2)
    SHORT_VIEW["buffer"] = buffer
    return view


# (label, edit of a two-parameter Adam after one step, exception, message). Each edit is on the
# *second* parameter, so that a check made during the update (not before it) would show up as a
# changed first parameter.
STATE_EDITS = [
    ("step is a string", lambda opt: opt.state[1].update(step="3"), ValueError, "opt.state[1]['step'] must be an int in [0, 2**62), got str '3'"),
    ("step is negative", lambda opt: opt.state[1].update(step=-1), ValueError, "opt.state[1]['step'] must be an int in [0, 2**62), got int -1"),
    ("step is a float", lambda opt: opt.state[1].update(step=1.0), ValueError, "opt.state[1]['step'] must be an int in [0, 2**62), got float 1.0"),
    ("step beyond 2**62", lambda opt: opt.state[1].update(step=2**70), ValueError, "opt.state[1]['step'] must be an int in [0, 2**62), got int 1180591620717411303424"),
    ("step removed", lambda opt: opt.state[1].pop("step"), ValueError, "opt.state[1] is missing ['step']"),
    ("buffer removed", lambda opt: opt.state[1].pop("exp_avg_sq"), ValueError, "opt.state[1] is missing ['exp_avg_sq']"),
    ("buffer shorter than its parameter", lambda opt: opt.state[1].update(exp_avg=_short_exp_avg(opt)), ValueError, "opt.state[1]['exp_avg'] has shape (2,) and dtype float64, but its parameter has shape (4,) and dtype float64"),
    ("buffer of another dtype", lambda opt: opt.state[1].update(exp_avg=np.zeros(4, np.float32)), ValueError, "opt.state[1]['exp_avg'] has shape (4,) and dtype float32, but its parameter has shape (4,) and dtype float64"),
    ("buffer not contiguous", lambda opt: opt.state[1].update(exp_avg=np.zeros(8)[::2]), ValueError, "opt.state[1]['exp_avg'] must be a C-contiguous, writeable, aligned array"),
    ("buffer read-only", lambda opt: opt.state[1].update(exp_avg=_readonly(np.zeros(4))), ValueError, "opt.state[1]['exp_avg'] must be a C-contiguous, writeable, aligned array"),
    ("buffer is a list", lambda opt: opt.state[1].update(exp_avg=[0.0] * 4), TypeError, "opt.state[1]['exp_avg'] must be a numpy.ndarray, got list"),
    ("buffer is its parameter", lambda opt: opt.state[1].update(exp_avg=opt._params[1]), ValueError, "opt.state[1]['exp_avg'] shares memory with its parameter"),
    ("buffer is another buffer", lambda opt: opt.state[1].update(exp_avg_sq=opt.state[1]["exp_avg"]), ValueError, "opt.state[1]['exp_avg_sq'] shares memory with opt.state[1]['exp_avg']"),
    ("buffer is another parameter", lambda opt: opt.state[1].update(exp_avg=opt._params[0][:4]), ValueError, "opt.state[1]['exp_avg'] shares memory with params[0]"),
    ("entry is not a dict", lambda opt: opt.state.update({1: [1, 2]}), TypeError, "opt.state[1] must be a dict, got list"),
    ("state is not a dict", lambda opt: setattr(opt, "state", None), TypeError, "opt.state must be a dict, got NoneType"),
]


# On the Cython backend the second step above is the multi-tensor path: Batch.gather must decline
# every one of these edits (so that the careful path reports it), including overlaps between the
# buffers of one parameter and with other parameters.
STATE_CASES = [
    pytest.param(backend, *case, id=f"{case[0]}-{backend}")
    for backend in fastopt.BACKENDS
    for case in STATE_EDITS
]


@pytest.mark.parametrize(("backend", "label", "edit", "error", "message"), STATE_CASES)
def test_an_edited_state_is_rejected_before_anything_is_updated(backend, label, edit, error, message):
    params = [np.linspace(-1, 1, 6), np.linspace(1, 2, 4)]
    opt = fastopt.Adam(params, lr=0.1, backend=backend)
    grads = [np.full(6, 0.5), np.full(4, 0.5)]
    opt.step(grads)
    opt.step(grads)  # on the Cython backend this step is the multi-tensor path
    SHORT_VIEW.clear()
    edit(opt)
    before = snapshot(opt) if isinstance(opt.state, dict) else ([p.copy() for p in params], None)
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        opt.step(grads)
    if before[1] is not None:
        assert_nothing_changed(opt, before)
    else:
        for now, then in zip(params, before[0]):
            assert_bits_equal(now, then)
    if SHORT_VIEW:
        assert np.all(SHORT_VIEW["buffer"][2:] == GUARD), "a kernel wrote past the end of a state buffer"


@backends
def test_a_replaced_state_buffer_of_the_right_kind_is_used(backend):
    """The check does not reject what it should accept: an equivalent fresh buffer continues the run."""
    rng = np.random.default_rng(1)
    initial = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(4)]
    kept, replaced = initial.copy(), initial.copy()
    a = fastopt.Adam([kept], lr=0.1, amsgrad=True, backend=backend)
    b = fastopt.Adam([replaced], lr=0.1, amsgrad=True, backend=backend)
    for step, grad in enumerate(grads):
        if step == 2:
            b.state[0]["exp_avg"] = b.state[0]["exp_avg"].copy()
            b.state[0]["step"] = int(np.int64(b.state[0]["step"]))
        a.step([grad])
        b.step([grad])
    assert_bits_equal(replaced, kept)


@pytest.mark.skipif("NAdam" not in fastopt.OPTIMIZERS, reason="no NAdam here")
@backends
@pytest.mark.parametrize(("value", "message"), [
    (np.array(0.5, np.float32), "opt.state[0]['mu_product'] must be a real number, got ndarray"),
    ("0.5", "opt.state[0]['mu_product'] must be a real number, got str"),
    (None, "opt.state[0] is missing ['mu_product']"),
    (float("inf"), "opt.state[0]['mu_product'] must be finite, got inf"),
])
def test_an_edited_nadam_mu_product_is_rejected_with_its_name(backend, value, message):
    """A scalar state entry (found from a fresh state, no per-class list needed)."""
    p = np.ones(3)
    opt = fastopt.OPTIMIZERS["NAdam"]([p], backend=backend)
    opt.step([np.ones(3)])
    opt.step([np.ones(3)])
    if value is None:
        del opt.state[0]["mu_product"]
    else:
        opt.state[0]["mu_product"] = value
    before = snapshot(opt)
    with pytest.raises((TypeError, ValueError), match=f"^{re.escape(message)}"):
        opt.step([np.ones(3)])
    assert_nothing_changed(opt, before)


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("value", [np.float32(1.5), 1e300, -0.25, np.float32(-0.0) - np.float32(1e-30)],
                         ids=["1.5", "1e300 (float32 overflow)", "-0.25", "just below 0"])
def test_an_out_of_range_nadam_mu_product_is_rejected_before_any_update(backend, value):
    """mu_product is a product of momentum factors, each in [0, 1): so in [0, 1]. Checked on
    every path (the Cython multi-tensor path too: the second step there is batched)."""
    params = [np.ones(3), np.ones(2)]
    opt = fastopt.OPTIMIZERS["NAdam"](params, backend=backend)
    opt.step([np.ones(3), np.ones(2)])
    opt.state[1]["mu_product"] = value
    opt.state[0]["mu_product"] = value  # both alike, as the multi-tensor path requires
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"^opt.state\[0\]\['mu_product'\] must be in \[0, 1\]"):
        opt.step([np.ones(3), np.ones(2)])
    assert_nothing_changed(opt, before)


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_a_nadam_mu_product_reset_to_1_is_accepted_on_every_path(backend):
    """Accepted: 1.0 is what a fresh state holds; a product reset to it only restarts the schedule's
    product (no division by zero: (8)-(9) divide by 1 minus the *advanced* product)."""
    results = []
    for batched_shape in [True, False]:
        params = [np.ones(3), np.ones(2)]
        opt = fastopt.OPTIMIZERS["NAdam"](params, backend=backend)
        opt.step([np.ones(3), np.ones(2)])
        opt.state[0]["mu_product"] = opt.state[1]["mu_product"] = np.float32(1.0) if batched_shape else 1.0
        opt.step([np.full(3, 0.5), np.full(2, 0.5)])
        results.append(([p.copy() for p in params], float(opt.state[1]["mu_product"])))
        assert all(np.isfinite(p).all() for p in params)
    for first, second in zip(results[0][0], results[1][0]):
        assert_bits_equal(first, second)  # the multi-tensor path (float32 entries) = the careful one
    assert results[0][1] == results[1][1]


def test_a_loaded_nadam_mu_product_out_of_range_is_rejected():
    opt = fastopt.OPTIMIZERS["NAdam"]([np.ones(3)])
    opt.step([np.ones(3)])
    saved = opt.state_dict()
    saved["state"][0]["mu_product"] = np.float32(2.0)
    with pytest.raises(ValueError, match=r"\['mu_product'\] must be in \[0, 1\]"):
        opt.load_state_dict(saved)


def test_a_state_entry_set_to_none_starts_that_parameter_afresh():
    """Accepted: ``opt.state[i] = None`` (or ``del``) is a reset, as if the parameter had never stepped."""
    p, q = np.ones(3), np.ones(3)
    reset, fresh = fastopt.Adam([p], lr=0.1), fastopt.Adam([q], lr=0.1)
    reset.step([np.full(3, 2.0)])
    p[:] = 1.0
    reset.state[0] = None
    reset.step([np.full(3, 0.5)])
    fresh.step([np.full(3, 0.5)])
    assert_bits_equal(p, q)
    assert reset.state[0]["step"] == 1


# --------------------------------------------------------------------------------------------
# Hyperparameters that pass "< inf" but are not floats, and casts that overflow float32
# --------------------------------------------------------------------------------------------
HUGE = [
    ("lr", 10**400, "lr is too large for a float64 (got a int)"),
    ("lr", Fraction(10**400, 3), "lr is too large for a float64 (got a Fraction)"),
    ("eps", 10**309, "eps is too large for a float64 (got a int)"),
    ("weight_decay", 10**400, "weight_decay is too large for a float64 (got a int)"),
]


@backends
@pytest.mark.parametrize(("key", "value", "message"), HUGE, ids=["lr=10**400", "lr=Fraction(10**400,3)", "eps=10**309", "weight_decay=10**400"])
def test_a_number_too_large_for_a_float_is_rejected_before_any_update(backend, key, value, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        fastopt.Adam([np.ones(2)], backend=backend, **{key: value})
    # Set between steps, in the second of two groups: the first group must not move either.
    params = [np.ones(3), np.ones(2)]
    opt = fastopt.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=0.1, backend=backend)
    opt.step([np.ones(3), np.ones(2)])
    opt.step([np.ones(3), np.ones(2)])
    opt.param_groups[1][key] = value
    before = snapshot(opt)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        opt.step([np.ones(3), np.ones(2)])
    assert_nothing_changed(opt, before)


@backends
@pytest.mark.parametrize(("key", "value", "message"), [
    ("lr", 1 + 0j, "lr must be a real number, got complex (1+0j)"),
    ("lr", True, "lr must be a real number, got bool True"),
    ("betas", (0.9 + 0j, 0.999), "betas[0] must be a real number, got complex (0.9+0j)"),
])
def test_a_value_equal_to_the_validated_one_but_of_another_type_is_checked(backend, key, value, message):
    """``1 + 0j == 1.0``: a changed hyperparameter is re-validated even when it compares equal."""
    params = [np.ones(3), np.ones(2)]
    opt = fastopt.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=1.0, backend=backend)
    opt.step([np.ones(3), np.ones(2)])
    opt.param_groups[1][key] = value
    before = snapshot(opt)
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        opt.step([np.ones(3), np.ones(2)])
    assert_nothing_changed(opt, before)


@backends
def test_a_hyperparameter_beyond_float32_becomes_inf_silently_and_whole(backend):
    """lr=1e39 is a valid float64; cast for float32 arrays it is inf (IEEE, as torch's alpha cast).
    No RuntimeWarning (which ``-W error`` would turn into an exception half-way through a step)."""
    p64, p32 = np.ones(3), np.ones(3, np.float32)
    opt = fastopt.SGD([{"params": [p64], "lr": 0.5}, {"params": [p32]}], lr=1e39, backend=backend)
    opt.step([np.ones(3), np.ones(3, np.float32)])
    assert_bits_equal(p64, np.full(3, 0.5))
    assert_bits_equal(p32, np.full(3, -np.inf, np.float32))
    acc = fastopt.Adagrad([np.ones(2, np.float32)], initial_accumulator_value=1e300, backend=backend)
    assert np.all(acc.state[0]["sum"] == np.inf)


# --------------------------------------------------------------------------------------------
# Arrays the base checks let through
# --------------------------------------------------------------------------------------------
@backends
def test_masked_arrays_are_rejected_rather_than_their_masks_ignored(backend):
    with pytest.raises(TypeError, match=r"^params\[0\] is a numpy.ma.MaskedArray; fastopt would ignore its mask"):
        fastopt.SGD([np.ma.masked_array(np.ones(3), mask=[0, 1, 0])], backend=backend)
    p = np.ones(3)
    opt = fastopt.SGD([p], backend=backend)
    with pytest.raises(TypeError, match=r"^grads\[0\] is a numpy.ma.MaskedArray; fastopt would ignore its mask"):
        opt.step([np.ma.masked_array(np.ones(3), mask=[0, 1, 0])])
    assert np.all(p == 1.0)


@backends
def test_a_parameter_that_aliases_another_parameters_state_is_rejected(backend):
    p = np.ones(4)
    opt = fastopt.Adam([p], backend=backend)
    opt.step([np.ones(4)])
    with pytest.raises(ValueError, match=r"^params\[1\] shares memory with the optimizer's state 'exp_avg(_sq)?' of params\[0\]"):
        opt.add_param_group({"params": [opt.state[0]["exp_avg"][1:3]]})
    with pytest.raises(ValueError, match=r"^params\[1\] shares memory with the optimizer's state 'exp_avg_sq' of params\[0\]"):
        opt.add_param_group({"params": [opt.state[0]["exp_avg_sq"]]})
    assert len(opt.param_groups) == 1


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


# --------------------------------------------------------------------------------------------
# The kernels, called directly. They are private (fastopt.<name>.reference/_numba/_cython) but
# importable. Each checks, before its loop, that every array it touches has param's length; the
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
    slots = [slot for slot in opt.algorithm.slots(group) if slot is not None]
    state = opt.state.get(0, {})
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
        kernel(param, grad, *all_buffers, *scalars, 1)
    finally:
        assert np.all(buffer[4:] == GUARD), "out-of-bounds write"
        assert np.all(param == 1.0), "param changed by a rejected call"
    return label


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
    label = "grad" if short == "grad" else next((arguments[2 + k] for k, s in enumerate(slots) if s), None)
    with pytest.raises(ValueError, match=rf"^{kernel}: {label} has 4 elements, but param has 8$"):
        direct_kernel_call(name, backend, short)


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_the_reference_does_not_broadcast_a_length_1_gradient(backend):
    from fastopt import _backends

    p = np.ones(8)
    kernel = _backends.get_kernel("sgd", backend)
    with pytest.raises(ValueError, match="^sgd_update: grad has 1 elements, but param has 8$"):
        kernel(p, np.ones(1), np.empty(0), False, 0.0, 1.0, 0.0, True, 1.0, False, 0.1, 1)
    assert np.all(p == 1.0)


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
    assert result.returncode == 0, f"exit code {{result.returncode}}: {{result.stderr[-2000:]}}"
    assert result.stdout.strip() == "ValueError: adam_update: max_exp_avg_sq has 0 elements, but param has 65536"


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
