"""The Cython multi-tensor path: taken when it can be, declined (changing nothing) when it cannot."""

import copy

import numpy as np
import pytest
from specs import DTYPES, SPECS, assert_bits_equal, assert_same_state

import fastopt
from fastopt._multi import Batch

FULL = {
    "SGD": dict(lr=0.05, momentum=0.9, weight_decay=0.01),
    "Adagrad": dict(lr=0.1, lr_decay=0.01),
    "RMSprop": dict(lr=0.01, momentum=0.9, centered=True),
    "Adam": dict(lr=0.01, amsgrad=True, weight_decay=0.01),
    "AdamW": dict(lr=0.01, weight_decay=0.1),
    "Adadelta": dict(lr=0.5, weight_decay=0.01),
    "Adamax": dict(lr=0.01, weight_decay=0.01),
    "NAdam": dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "RAdam": dict(lr=0.01, weight_decay=0.01, betas=(0.9, 0.99)),
    "Lion": dict(lr=0.01, weight_decay=0.1),
}


def count_batched_calls(opt):
    calls = []
    for dtype, kernel in list(opt._many_kernels.items()):
        def counted(*args, kernel=kernel):
            calls.append(args[0].__class__.__name__)
            kernel(*args)
        opt._many_kernels[dtype] = counted
    return calls


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_many_tensors_in_one_call_equal_the_reference(name, dtype):
    rng = np.random.default_rng(4)
    sizes = [int(s) for s in rng.integers(0, 300, 60)]
    initial = [rng.standard_normal(s).astype(dtype) for s in sizes]
    ref_params, fast_params = [p.copy() for p in initial], [p.copy() for p in initial]
    groups = lambda ps: [{"params": ps[:40]}, {"params": ps[40:], "lr": 0.02}]
    reference = SPECS[name].cls(groups(ref_params), backend="reference", **FULL[name])
    fast = SPECS[name].cls(groups(fast_params), backend="cython", **FULL[name])
    calls = count_batched_calls(fast)
    for step in range(6):
        grads = [rng.standard_normal(s).astype(dtype) for s in sizes]
        if step == 3:
            grads[5] = None  # a skipped parameter: its step counter falls behind the others'
        reference.step(grads)
        fast.step(grads)
    for a, b in zip(fast_params, ref_params):
        assert_bits_equal(a, b)
    assert_same_state(fast, reference, name)
    # Step 1 creates the state (careful path; Adagrad creates it in the constructor); then one
    # call per group and step; from step 5 on params[5] is a step behind the others, so the
    # step falls back. SGD and Lion keep no step counter and stay batched.
    assert len(calls) == 2 * {"SGD": 5, "Adagrad": 4, "Lion": 5}.get(name, 3)


def test_a_bad_gradient_in_a_later_group_changes_no_group():
    params = [np.ones(3), np.ones(4), np.ones(5)]
    opt = fastopt.Adam([{"params": params[:2]}, {"params": params[2:]}], backend="cython")
    good = [np.full(3, 0.5), np.full(4, 0.5), np.full(5, 0.5)]
    opt.step(good)
    opt.step(good)
    before = copy.deepcopy((params, opt.state_dict()))
    with pytest.raises(TypeError, match=r"grads\[2\] has dtype float32 but params\[2\] has dtype float64"):
        opt.step([good[0], good[1], np.full(5, 0.5, np.float32)])
    np.testing.assert_equal((params, opt.state_dict()), before)


def test_unusual_but_valid_inputs_fall_back_and_stay_exact():
    rng = np.random.default_rng(9)
    initial = [rng.standard_normal(50) for _ in range(3)]
    ref_params, fast_params = [p.copy() for p in initial], [p.copy() for p in initial]
    reference = fastopt.Adam(ref_params, backend="reference")
    fast = fastopt.Adam(fast_params, backend="cython")
    wide = rng.standard_normal(100)
    steps = [
        [rng.standard_normal(50) for _ in range(3)],
        [wide[::2], rng.standard_normal(50), rng.standard_normal(50)],  # non-contiguous gradient
        [rng.standard_normal(50) for _ in range(3)],
    ]
    for grads in steps:
        reference.step(grads)
        fast.step(grads)
    fast.state[1]["exp_avg"] = fast.state[1]["exp_avg"].copy()  # a replaced state array is followed
    reference.state[1]["exp_avg"] = reference.state[1]["exp_avg"].copy()
    grads = [rng.standard_normal(50) for _ in range(3)]
    reference.step(grads)
    fast.step(grads)
    for a, b in zip(fast_params, ref_params):
        assert_bits_equal(a, b)
    assert_same_state(fast, reference)


class Subclass(np.ndarray):
    pass


def test_gather_declines_everything_it_cannot_vouch_for():
    def attempt(params, grads, states, slots=("exp_avg",), previous=3, typenum=12):
        return Batch().gather(params, grads, states, slots, "step", previous, typenum)

    p, g = np.zeros(8), np.ones(8)
    state = {"step": 3, "exp_avg": np.zeros(8)}
    assert attempt([p], [g], [state]) == -1
    assert attempt([p], [None], [None]) == -1  # no gradient: nothing to check
    readonly = np.zeros(8)
    readonly.flags.writeable = False
    unaligned = np.frombuffer(np.zeros(8 * 8 + 1, np.uint8).data, np.float64, 8, offset=1)
    declined = {
        "no state yet": ([p], [g], [None]),
        "another step count": ([p], [g], [{**state, "step": 2}]),
        "missing buffer": ([p], [g], [{"step": 3}]),
        "buffer of another size": ([p], [g], [{**state, "exp_avg": np.zeros(7)}]),
        "gradient of another dtype": ([p], [g.astype(np.float32)], [state]),
        "gradient of another shape": ([p], [g.reshape(2, 4)], [state]),
        "non-contiguous gradient": ([p], [np.ones(16)[::2]], [state]),
        "gradient is the parameter": ([p], [p], [state]),
        "buffer is the gradient": ([p], [g], [{**state, "exp_avg": g}]),
        "read-only parameter": ([readonly], [g], [state]),
        "misaligned gradient": ([p], [unaligned], [state]),
        "not an ndarray": ([p], [list(g)], [state]),
        "byte-swapped gradient": ([p], [g.astype(">f8")], [state]),
        "a subclass": ([p], [g.view(Subclass)], [state]),
    }
    for reason, args in declined.items():
        assert attempt(*args) == 0, reason
    assert attempt([p, p.copy()], [g, g], [state, {"step": 3, "exp_avg": np.zeros(8)}]) == -1
    assert attempt([p, p.copy()], [g, g.astype(np.float32)], [state, dict(state)]) == 1
