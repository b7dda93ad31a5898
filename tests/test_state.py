"""``opt.state`` edited between steps: checked before anything is updated, or used as it is.

``opt.state`` is public. Each edit of a table (a step counter of the wrong type or range; a buffer
removed, shorter, of another dtype, strided, read-only, a list, or sharing memory with its
parameter, another buffer or another parameter; an entry, or the whole state, that is not a dict)
is made on the second of two parameters, after a step that on the Cython backend takes the
multi-tensor path; the next step must raise a message naming the entry and leave every parameter
and state entry as it was (the shortened buffer sits in a guarded buffer, where a write past its
end would show). NAdam's scalar ``mu_product`` is checked likewise. Edits that leave the state
valid (a fresh copy of a buffer, ``mu_product`` reset to 1, an entry set to ``None``) are used as
they are. All marked ``hostile``.
"""

import re

import numpy as np
import pytest
from helpers import GUARD, assert_nothing_changed, backends, guarded, readonly, snapshot
from specs import assert_bits_equal

import fastopt

pytestmark = pytest.mark.hostile

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
    ("buffer of its size but another shape", lambda opt: opt.state[1].update(exp_avg=np.zeros((2, 2))), ValueError, "opt.state[1]['exp_avg'] has shape (2, 2) and dtype float64, but its parameter has shape (4,) and dtype float64"),
    ("buffer of another dtype", lambda opt: opt.state[1].update(exp_avg=np.zeros(4, np.float32)), ValueError, "opt.state[1]['exp_avg'] has shape (4,) and dtype float32, but its parameter has shape (4,) and dtype float64"),
    ("buffer not contiguous", lambda opt: opt.state[1].update(exp_avg=np.zeros(8)[::2]), ValueError, "opt.state[1]['exp_avg'] must be a C-contiguous, writeable, aligned array"),
    ("buffer read-only", lambda opt: opt.state[1].update(exp_avg=readonly(np.zeros(4))), ValueError, "opt.state[1]['exp_avg'] must be a C-contiguous, writeable, aligned array"),
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


# --------------------------------------------------------------------------------------------
# NAdam's mu_product, a scalar entry
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# A reset
# --------------------------------------------------------------------------------------------
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
