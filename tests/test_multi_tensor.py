"""The multi-tensor path: taken when it can be, declined (changing nothing) when it cannot.

Many tensors in one call give the reference's bits, and counting the calls shows the path was
taken; steps whose counters or NAdam ``mu_product`` differ, or whose inputs are unusual, fall back
to the careful path and stay exact; a bad gradient in a later group changes no group. ``step()``
skips revalidating the groups only while they hold the very same objects. ``Batch.gather``
declines every row it cannot vouch for (no state, another dtype or shape, strided, read-only,
misaligned, a subclass, a buffer overlapping any array the batch writes: checked against a
pairwise comparison) and holds its arrays until released; ``Batch.gather_tensors`` does the same
for torch tensors, through DLPack.
"""

import copy

import numpy as np
import pytest
from helpers import NdarraySubclass
from specs import DTYPES, SPECS, assert_bits_equal, assert_same_state

import fastopt
from fastopt._native.batch import Batch
from fastopt._native.identity import groups_as_validated

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
    "Rprop": dict(lr=0.01, etas=(0.4, 1.3), step_sizes=(1e-4, 0.1), maximize=True),
    "ASGD": dict(lr=0.05, t0=0.0, weight_decay=0.01),
    "AdaBelief": dict(lr=0.01, amsgrad=True, weight_decay=0.01),
    "Adafactor": dict(lr=0.05, weight_decay=0.01),
    "ADOPT": dict(lr=0.01, weight_decay=0.01, maximize=True),
    "ScheduleFreeAdamW": dict(lr=0.01, warmup_steps=2, weight_decay=0.01),
    "LAMB": dict(lr=0.01, weight_decay=0.01, maximize=True),
}


class CountedKernels:
    """An optimizer's kernels, counting its multi-tensor calls (one per group and step)."""

    def __init__(self, kernels, calls):
        self.kernels, self.calls = kernels, calls
        self.single, self.parallel = kernels.single, kernels.parallel

    def step_batch(self, dtype, batch, *args):
        self.calls.append(batch.__class__.__name__)
        self.kernels.step_batch(dtype, batch, *args)


def count_batched_calls(opt):
    calls = []
    for plan in opt._plans:  # the groups' plans (their hyperparameters do not change below)
        plan.kernels = CountedKernels(plan.kernels, calls)
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
    # step falls back. SGD, Lion and ScheduleFreeAdamW keep no step counter per parameter (the
    # last keeps its counters in the group) and stay batched. Adafactor's and LAMB's kernels take
    # whole tensors (their norms): one call per parameter, never batched.
    expected = 0 if SPECS[name].cls.algorithm.whole_tensor else 2 * {"SGD": 5, "Adagrad": 4, "Lion": 5, "ScheduleFreeAdamW": 5}.get(name, 3)
    assert len(calls) == expected


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


def test_nadam_groups_with_diverging_mu_products_leave_the_multi_tensor_path_exactly():
    """Two parameters at the same step but with different mu_products (momentum_decay changed
    while each skipped a different step) cannot share scalars: the careful path steps them."""
    rng = np.random.default_rng(6)
    initial = [rng.standard_normal(40) for _ in range(3)]
    ref_params, fast_params = [p.copy() for p in initial], [p.copy() for p in initial]
    reference = fastopt.NAdam(ref_params, lr=0.01, backend="reference")
    fast = fastopt.NAdam(fast_params, lr=0.01, backend="cython")
    schedule = [(4e-3, None), (4e-3, 0), (0.5, 1), (0.5, None), (4e-3, None)]
    for psi, skipped in schedule:
        grads = [rng.standard_normal(40) for _ in range(3)]
        if skipped is not None:
            grads[skipped] = None
        for opt in (reference, fast):
            opt.param_groups[0]["momentum_decay"] = psi
            opt.step(grads)
    assert fast.state[0]["step"] == fast.state[1]["step"]
    assert fast.state[0]["mu_product"] != fast.state[1]["mu_product"]
    for a, b in zip(fast_params, ref_params):
        assert_bits_equal(a, b)
    assert_same_state(fast, reference)


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


# --------------------------------------------------------------------------------------------
# Batch.gather declines every row it cannot vouch for
# --------------------------------------------------------------------------------------------
def test_gather_declines_everything_it_cannot_vouch_for():
    def attempt(params, grads, states, slots=("exp_avg",), counters=("step",), typenum=12):
        return Batch().gather(params, grads, states, slots, counters, typenum)

    p, g = np.zeros(8), np.ones(8)
    state = {"step": 3, "exp_avg": np.zeros(8)}
    assert attempt([p], [g], [state]) == -1
    assert attempt([p], [None], [None]) == -1  # no gradient: nothing to check
    readonly = np.zeros(8)
    readonly.flags.writeable = False
    unaligned = np.frombuffer(np.zeros(8 * 8 + 1, np.uint8).data, np.float64, 8, offset=1)
    declined = {
        "no state yet": ([p], [g], [None]),
        "no step counter": ([p], [g], [{"exp_avg": np.zeros(8)}]),
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
        "a subclass": ([p], [g.view(NdarraySubclass)], [state]),
    }
    for reason, args in declined.items():
        assert attempt(*args) == 0, reason
    assert attempt([p, p.copy()], [g, g], [state, {"step": 3, "exp_avg": np.zeros(8)}]) == -1
    # the counters must agree, value and type: one set of kernel scalars serves every row
    assert attempt([p, p.copy()], [g, g], [state, {"step": 2, "exp_avg": np.zeros(8)}]) == 1
    assert attempt([p, p.copy()], [g, g], [state, {"step": 3.0, "exp_avg": np.zeros(8)}]) == 1
    nans = [{"step": 3, "mu_product": np.float32("nan"), "exp_avg": np.zeros(8)} for _ in range(2)]
    assert attempt([p, p.copy()], [g, g], nans, counters=("step", "mu_product")) == 1  # NaN equals nothing
    assert attempt([p, p.copy()], [g, g.astype(np.float32)], [state, dict(state)]) == 1


# --------------------------------------------------------------------------------------------
# Overlap between every array a batch writes, and the references it holds
# --------------------------------------------------------------------------------------------
def _adam_rows(count, size=8):
    params = [np.linspace(-1, 1, size) + k for k in range(count)]
    grads = [np.full(size, 0.5) for _ in range(count)]
    states = [{"step": 3, "exp_avg": np.zeros(size), "exp_avg_sq": np.ones(size)} for _ in range(count)]
    return params, grads, states


def _gather(batch, params, grads, states, slots=("exp_avg", "exp_avg_sq", None)):
    return batch.gather(params, grads, states, slots, ("step",), np.dtype(np.float64).num)


def test_gather_declines_buffers_that_share_memory_with_any_written_array():
    params, grads, states = _adam_rows(4)
    assert _gather(Batch(), params, grads, states) == -1
    frozen = [g if k != 2 else None for k, g in enumerate(grads)]
    edits = {
        "one buffer in two slots": lambda s, p: s[3].update(exp_avg_sq=s[3]["exp_avg"]),
        "a buffer overlapping another of its row": lambda s, p: s[3].update(
            exp_avg_sq=np.concatenate([s[3]["exp_avg"], np.zeros(4)])[4:]),
        "a buffer that is another parameter": lambda s, p: s[3].update(exp_avg=p[0]),
        "a buffer inside another parameter": lambda s, p: s[3].update(exp_avg=np.zeros(40)[3:11]),
        "another row's buffer": lambda s, p: s[3].update(exp_avg_sq=s[1]["exp_avg"]),
        "the end of another row's buffer": lambda s, p: s[3].update(exp_avg=np.concatenate([s[1]["exp_avg_sq"], np.zeros(8)])[4:12]),
    }
    for reason, edit in edits.items():
        params, grads, states = _adam_rows(4)
        if reason == "a buffer inside another parameter":
            big = np.zeros(40)
            params[1] = big[:20]
            states[3]["exp_avg"] = big[12:20]
        elif reason == "the end of another row's buffer":
            shared = np.zeros(12)
            states[1]["exp_avg_sq"] = shared[:8]
            states[3]["exp_avg"] = shared[4:12]
        elif reason == "a buffer overlapping another of its row":
            shared = np.zeros(12)
            states[3]["exp_avg"], states[3]["exp_avg_sq"] = shared[:8], shared[4:12]
        else:
            edit(states, params)
        found = _gather(Batch(), params, grads, states)
        assert found in (0, 1, 2, 3) and found != -1, reason
    # A parameter without a gradient is not written, but no buffer may overlap it either.
    params, grads, states = _adam_rows(4)
    states[3]["exp_avg"] = params[2]
    assert _gather(Batch(), params, frozen, states) == 2
    # Disjoint views of one buffer are fine.
    params, grads, states = _adam_rows(4)
    shared = np.zeros(64)
    for k in range(4):
        states[k]["exp_avg"], states[k]["exp_avg_sq"] = shared[16 * k : 16 * k + 8], shared[16 * k + 8 : 16 * k + 16]
    assert _gather(Batch(), params, grads, states) == -1


@pytest.mark.parametrize("seed", range(40))
def test_the_overlap_check_agrees_with_a_pairwise_comparison(seed):
    """Random layouts inside one buffer (some overlapping, some in order, some not), gathered by
    a fresh batch and again by the same batch (which then starts from the order it sorted)."""
    rng = np.random.default_rng(seed)
    count, size = int(rng.integers(1, 30)), 6
    memory = np.zeros(count * 3 * size + int(rng.integers(0, 20)))
    starts = rng.choice(len(memory) - size + 1, size=3 * count, replace=bool(rng.integers(0, 2)))
    if rng.integers(0, 2):
        starts = np.sort(starts)
    views = [memory[s : s + size] for s in starts]
    params = views[:count]
    grads = [np.ones(size) for _ in range(count)]
    states = [{"step": 3, "exp_avg": views[count + k], "exp_avg_sq": views[2 * count + k]} for k in range(count)]
    pairwise = any(
        abs(int(a) - int(b)) < size for i, a in enumerate(starts) for b in starts[i + 1 :]
    )
    batch = Batch()
    assert (_gather(batch, params, grads, states) != -1) == pairwise
    assert (_gather(batch, params, grads, states) != -1) == pairwise  # the remembered order
    rng.shuffle(params)  # another order of the same arrays
    assert (_gather(batch, params, grads, states) != -1) == pairwise


def test_a_batch_keeps_its_arrays_alive_until_released():
    import gc
    import weakref

    def build():
        params, grads, states = _adam_rows(3)
        batch = Batch()
        assert _gather(batch, params, grads, states) == -1
        return batch, [weakref.ref(a) for a in (*params, *grads, *(s["exp_avg"] for s in states))]

    batch, refs = build()  # every list and dict of the gather is gone
    gc.collect()
    assert all(r() is not None for r in refs)
    batch.release()
    gc.collect()
    assert all(r() is None for r in refs)
    batch, refs = build()
    del batch
    gc.collect()
    assert all(r() is None for r in refs)


def test_a_batch_releases_the_previous_arrays_when_gathered_again():
    import gc
    import weakref

    params, grads, states = _adam_rows(2)
    batch = Batch()
    assert _gather(batch, params, grads, states) == -1
    old = weakref.ref(grads[0])
    grads[0] = np.full(8, 0.25)
    assert _gather(batch, params, grads, states) == -1
    gc.collect()
    assert old() is None


# --------------------------------------------------------------------------------------------
# Batch.gather_tensors: the same checks for torch tensors, through DLPack
# --------------------------------------------------------------------------------------------
def _torch_rows(torch, count=3, size=8, dtype=None):
    dtype = dtype or torch.float64
    params = [torch.linspace(-1, 1, size, dtype=dtype).add(k).requires_grad_() for k in range(count)]
    for p in params:
        p.grad = torch.full((size,), 0.5, dtype=dtype)
    states = [{"step": torch.tensor(3.0, dtype=torch.float64), "exp_avg": torch.zeros(size, dtype=dtype),
               "exp_avg_sq": torch.ones(size, dtype=dtype)} for _ in range(count)]
    return params, states


def _gather_tensors(batch, params, states, slots=("exp_avg", "exp_avg_sq", None)):
    return batch.gather_tensors(params, states, slots, (("step", 64),))


@pytest.fixture
def torch_gather():
    torch = pytest.importorskip("torch")
    from fastopt._native import dlpack

    if not dlpack.use_dlpack_exchange_api(getattr(torch.Tensor, "__dlpack_c_exchange_api__", None), torch.Tensor):
        pytest.skip("this torch has no DLPack C exchange API")
    return torch


def test_gather_tensors_accepts_a_fit_group_and_reads_the_counters(torch_gather):
    torch = torch_gather
    params, states = _torch_rows(torch)
    params[1].grad = None  # skipped: no counter read, none written
    states[1]["step"] = torch.tensor(9.0, dtype=torch.float64)
    batch = Batch()
    assert _gather_tensors(batch, params, states) == -1
    assert batch.counter_values == (3.0,) and batch.bits == 64
    batch.commit_counters((4.0,))
    assert [s["step"].item() for s in states] == [4.0, 9.0, 4.0]
    params, states = _torch_rows(torch, dtype=torch.float32)
    for p in params:
        p.grad = None
    assert _gather_tensors(batch, params, states) == -1 and batch.counter_values is None


def test_gather_tensors_declines_everything_it_cannot_vouch_for(torch_gather):
    torch = torch_gather
    edits = {
        "no state yet": lambda p, s: s.__setitem__(2, None),
        "another step count": lambda p, s: s[2]["step"].fill_(2.0),
        "a float32 step": lambda p, s: s[2].update(step=torch.tensor(3.0)),
        "a step of two elements": lambda p, s: s[2].update(step=torch.tensor([3.0, 3.0], dtype=torch.float64)),
        "missing buffer": lambda p, s: s[2].pop("exp_avg_sq"),
        "buffer of another size": lambda p, s: s[2].update(exp_avg=torch.zeros(7, dtype=torch.float64)),
        "buffer of another dtype": lambda p, s: s[2].update(exp_avg=torch.zeros(8)),
        "buffer not contiguous": lambda p, s: s[2].update(exp_avg=torch.zeros(16, dtype=torch.float64)[::2]),
        "buffer is not a tensor": lambda p, s: s[2].update(exp_avg=np.zeros(8)),
        "gradient of another dtype": lambda p, s: _set_grad_data(p[2], torch.zeros(8)),
        "gradient of another size": lambda p, s: _set_grad_data(p[2], torch.zeros(4, dtype=torch.float64)),
        "non-contiguous gradient": lambda p, s: setattr(p[2], "grad", torch.zeros(8, 2, dtype=torch.float64)[:, 0]),
        "gradient is the parameter": lambda p, s: setattr(p[2], "grad", p[2].detach()),
        "buffer is the gradient": lambda p, s: s[2].update(exp_avg=p[2].grad),
        "buffer is its parameter": lambda p, s: s[2].update(exp_avg=p[2].detach()),
        "buffer is another buffer": lambda p, s: s[2].update(exp_avg_sq=s[2]["exp_avg"]),
        "buffer is another parameter": lambda p, s: s[2].update(exp_avg=p[0].detach()),
        "one step counter for two rows": lambda p, s: s[2].update(step=s[0]["step"]),
        "state is not a dict": lambda p, s: s.__setitem__(2, [1]),
        "parameter on the meta device": lambda p, s: p.__setitem__(2, torch.zeros(8, device="meta", requires_grad=True)),
        "parameter is not a tensor": lambda p, s: p.__setitem__(2, np.zeros(8)),
        "float16 parameter": lambda p, s: p.__setitem__(2, _with_grad(torch, torch.zeros(8, dtype=torch.float16))),
    }
    for reason, edit in edits.items():
        params, states = _torch_rows(torch)
        edit(params, states)
        found = _gather_tensors(Batch(), params, states)
        assert found != -1, reason
        assert found in (0, 2), reason


def _with_grad(torch, tensor):
    tensor.requires_grad_()
    tensor.grad = torch.zeros_like(tensor)
    return tensor


def _set_grad_data(param, data):
    """A gradient whose dtype no longer matches its parameter (torch's setter refuses this;
    ``.data`` on the gradient itself does not)."""
    import torch

    param.grad = torch.zeros_like(param)
    param.grad.data = data


def test_gather_tensors_holds_the_gradients_until_released(torch_gather):
    import gc
    import weakref

    torch = torch_gather
    params, states = _torch_rows(torch)
    batch = Batch()
    assert _gather_tensors(batch, params, states) == -1
    refs = [weakref.ref(p.grad) for p in params]
    for p in params:
        p.grad = None  # zero_grad(set_to_none=True): the batch still holds them
    gc.collect()
    assert all(r() is not None for r in refs)
    batch.release()
    gc.collect()
    assert all(r() is None for r in refs)
