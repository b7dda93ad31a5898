"""Checkpoints: ``state_dict()`` and ``load_state_dict()``, resumed bit for bit, bad ones rejected.

In one process, every optimizer with every buffer switched on is saved under a backend and resumed
under the same or another one, and must end bit-identical to the uninterrupted run; the state dict
holds copies, in torch's layout, and NAdam's float32 ``mu_product`` survives it. On disk, every
configuration of tests/specs.py (two parameter groups of float64 and float32, a skipped gradient,
an lr schedule after the resume), saved with pickle and with ``np.savez`` (no pickle), is resumed
under every backend in a fresh Python process (tests/resume_checkpoints.py), once also from step
2**31 + 5, past float32's 2**24 (where torch's float32 step counter stops counting). A state dict
that does not fit is rejected with its message from a table and changes nothing; so are corrupted
checkpoints (marked ``hostile``), while non-finite values, which training can produce, are loaded
as they are.
"""

import copy
import json
import os
import pickle
import re
import subprocess
import sys

import checkpoint_io as io
import numpy as np
import pytest
from helpers import FULL_OPTIONS, assert_frozen, frozen, names, params_and_grads
from specs import DTYPES, SPECS, assert_bits_equal, assert_same_state

import fastopt

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------------------------
# In one process
# --------------------------------------------------------------------------------------------
def train(opt, grads):
    for step_grads in grads:
        opt.step(step_grads)


@names
@pytest.mark.parametrize(("save_backend", "load_backend"), [(b, b) for b in fastopt.BACKENDS] + [("numba", "cython"), ("cython", "reference")])
@pytest.mark.parametrize("dtype", DTYPES)
def test_checkpoint_resume_is_bit_identical(name, save_backend, load_backend, dtype):
    params, grads = params_and_grads(dtype, seed=11)
    cls, options = SPECS[name].cls, FULL_OPTIONS[name]

    uninterrupted = [p.copy() for p in params]
    train(cls(uninterrupted, backend=save_backend, **options), grads)

    first_half = [p.copy() for p in params]
    opt = cls(first_half, backend=save_backend, **options)
    train(opt, grads[:4])
    opt.param_groups[0]["lr"] = options["lr"]  # unchanged, but saved and restored like any setting
    saved = pickle.dumps((opt.state_dict(), first_half))

    checkpoint, restored_params = pickle.loads(saved)
    resumed = cls(restored_params, backend=load_backend, **{**options, "lr": 123.0})
    resumed.load_state_dict(checkpoint)
    assert resumed.param_groups[0]["lr"] == options["lr"]  # hyperparameters come from the checkpoint
    train(resumed, grads[4:])
    for a, b in zip(restored_params, uninterrupted):
        assert_bits_equal(a, b)


@names
def test_state_dict_holds_copies_in_torch_layout(name):
    params, grads = params_and_grads()
    opt = SPECS[name].cls([{"params": params[:1]}, {"params": params[1:]}], **FULL_OPTIONS[name])
    opt.step(grads[0])
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1, 2]]
    assert set(sd["param_groups"][0]) == set(opt.defaults) | {"params"}
    snapshot = pickle.dumps(sd)
    opt.step(grads[1])  # training on must not change the saved dict ...
    assert pickle.dumps(sd) == snapshot
    array_key = next(k for k, v in sd["state"][0].items() if isinstance(v, np.ndarray) and v.ndim)
    sd["state"][0][array_key][...] = 42.0  # ... and editing the dict must not change the optimizer
    assert not np.any(opt.state[0][array_key] == 42.0)
    opt.load_state_dict(sd)
    sd["state"][0][array_key][...] = -1.0  # the loaded arrays are copies too
    assert np.all(opt.state[0][array_key] == 42.0)


def test_nadam_mu_product_survives_a_checkpoint_exactly():
    rng = np.random.default_rng(0)
    p = rng.standard_normal(7)
    opt = fastopt.NAdam([p], lr=0.01)
    for _ in range(3):
        opt.step([rng.standard_normal(7)])
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    assert type(saved["state"][0]["mu_product"]) is np.float32
    restored = fastopt.NAdam([p.copy()])
    restored.load_state_dict(saved)
    assert_same_state(restored, opt)


@pytest.mark.parametrize("value", [np.array(0.5, np.float32), 0.5, np.float64(0.25)])
def test_nadam_loads_torch_style_mu_product(value):
    opt = fastopt.NAdam([np.zeros(2)])
    opt.step([np.ones(2)])
    sd = opt.state_dict()
    sd["state"][0]["mu_product"] = value  # torch: a 0-d float32 tensor (.numpy() gives a 0-d array)
    opt.load_state_dict(sd)
    assert type(opt.state[0]["mu_product"]) is np.float32 and opt.state[0]["mu_product"] == value


# --------------------------------------------------------------------------------------------
# On disk, resumed in a new process
# --------------------------------------------------------------------------------------------
def test_checkpoints_resume_bit_identically_in_a_new_process_on_every_backend(tmp_path):
    jobs, expected = [], {}
    for config_index, (name, options) in enumerate(io.CONFIGS):
        for save_index, save_backend in enumerate(fastopt.BACKENDS):
            last_of_its_optimizer = config_index + 1 == len(io.CONFIGS) or io.CONFIGS[config_index + 1][0] != name
            for large in (False, True) if last_of_its_optimizer else (False,):
                params, grads = io.problem(config_index, save_index)

                uninterrupted = [p.copy() for p in params]
                opt = io.make_optimizer(name, options, uninterrupted, save_backend)
                if large:
                    opt.step(grads[0])
                    io.jump_steps(opt)
                    io.train(opt, grads, 1)
                else:
                    io.train(opt, grads, 0)
                uninterrupted_state = opt.state_dict()

                first_part = [p.copy() for p in params]
                opt = io.make_optimizer(name, options, first_part, save_backend)
                for step in range(io.SAVED_AT):
                    opt.step(grads[step])
                    if large and step == 0:
                        io.jump_steps(opt)
                label = f"{name}{config_index}-{save_backend}-{'large' if large else 'small'}"
                suffix = ".npz" if (config_index + save_index + large) % 2 else ".pkl"
                checkpoint = tmp_path / f"{label}{suffix}"
                io.save(checkpoint, opt.state_dict(), first_part)
                for load_backend in fastopt.BACKENDS:
                    out = tmp_path / f"{label}-to-{load_backend}.npz"
                    jobs.append(dict(checkpoint=str(checkpoint), config=config_index, save_backend=save_backend,
                                     load_backend=load_backend, out=str(out)))
                    expected[str(out)] = (uninterrupted, uninterrupted_state)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(jobs))
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "resume_checkpoints.py"), str(manifest)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resumed {len(jobs)} checkpoints" in result.stdout
    for job in jobs:
        state_dict, params = io.load_npz(job["out"])
        want_params, want_state = expected[job["out"]]
        what = f"{job['checkpoint']} resumed on {job['load_backend']}"
        for index, (got, want) in enumerate(zip(params, want_params)):
            assert_bits_equal(got, want, f"{what}: params[{index}]")
        assert state_dict["state"].keys() == want_state["state"].keys(), what
        for index, entry in want_state["state"].items():
            assert state_dict["state"][index].keys() == entry.keys(), what
            for key, value in entry.items():
                if key == "step":
                    assert state_dict["state"][index][key] == value, f"{what}: step"
                else:
                    assert_bits_equal(state_dict["state"][index][key], value, f"{what}: state[{index}][{key!r}]")
        as_saved = json.loads(json.dumps(want_state["param_groups"], default=io.function_to_json), object_hook=io.function_from_json)
        assert state_dict["param_groups"] == as_saved, what


def test_npz_checkpoints_hold_no_pickle(tmp_path):
    params = [np.ones(3)]
    opt = fastopt.Adam(params, amsgrad=True)
    opt.step([np.ones(3)])
    io.save_npz(tmp_path / "c.npz", opt.state_dict(), params)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:  # would raise on an object array
        assert all(data[name].dtype != object for name in data.files)
    loaded, _ = io.load_npz(tmp_path / "c.npz")
    fresh = fastopt.Adam([np.ones(3)])
    fresh.load_state_dict(loaded)
    assert fresh.state[0]["step"] == 1 and fresh.param_groups[0]["amsgrad"] is True


# --------------------------------------------------------------------------------------------
# State dicts that do not fit: rejected with their message, changing nothing
# --------------------------------------------------------------------------------------------
def trained_state_dict(cls, **kwargs):
    opt = cls([np.ones(3), np.ones(2)], **kwargs)
    opt.step([np.full(3, 0.5), np.full(2, 0.5)])
    return opt.state_dict()


def edited(sd, edit):
    sd = copy.deepcopy(sd)
    edit(sd)
    return sd


ADAM_SD = trained_state_dict(fastopt.Adam)
LOAD_ERRORS = [
    (lambda: [1, 2], ValueError, "state_dict must be a dict with exactly the keys 'state' and 'param_groups'"),
    (lambda: edited(ADAM_SD, lambda sd: sd.pop("state")), ValueError, "state_dict must be a dict with exactly"),
    (lambda: edited(ADAM_SD, lambda sd: sd.update(state=[])), TypeError, "state_dict['param_groups'] must be a list and state_dict['state'] a dict"),
    (lambda: edited(ADAM_SD, lambda sd: sd["param_groups"].append(sd["param_groups"][0])), ValueError, "loaded state dict has a different number of parameter groups"),
    (lambda: edited(ADAM_SD, lambda sd: sd["param_groups"][0]["params"].pop()), ValueError, "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"),
    (lambda: trained_state_dict(fastopt.SGD, momentum=0.9), ValueError, "state_dict['param_groups'][0] does not hold Adam's hyperparameters (missing ['amsgrad', 'betas', 'eps'], unknown ['dampening', 'momentum', 'nesterov'])"),
    (lambda: trained_state_dict(fastopt.RMSprop), ValueError, "state_dict['param_groups'][0] does not hold Adam's hyperparameters"),
    (lambda: edited(ADAM_SD, lambda sd: sd["param_groups"][0].update(lr=-1.0)), ValueError, "Invalid learning rate: -1.0"),
    (lambda: edited(ADAM_SD, lambda sd: sd["param_groups"][0].update(params=[0, 0])), ValueError, "state_dict['param_groups'][0]['params'] must hold distinct integer indices"),
    (lambda: edited(ADAM_SD, lambda sd: sd["state"].update({7: {}})), ValueError, "state_dict['state'] has an entry for unknown parameter id 7"),
    (lambda: edited(ADAM_SD, lambda sd: sd["state"][1].pop("exp_avg")), ValueError, "state_dict['state'][1] does not hold Adam state (missing ['exp_avg'], unknown [])"),
    (lambda: edited(ADAM_SD, lambda sd: sd["state"][1].update(sum=np.zeros(2))), ValueError, "state_dict['state'][1] does not hold Adam state (missing [], unknown ['sum'])"),
    (lambda: edited(ADAM_SD, lambda sd: sd["state"][1].update(exp_avg=np.zeros(3))), ValueError, "state_dict['state'][1]['exp_avg'] has shape (3,) and dtype float64, but its parameter has shape (2,) and dtype float64"),
    (lambda: edited(ADAM_SD, lambda sd: sd["state"][1].update(exp_avg=np.zeros(2, np.float32))), ValueError, "state_dict['state'][1]['exp_avg'] has shape (2,) and dtype float32, but its parameter has shape (2,) and dtype float64"),
    (lambda: edited(ADAM_SD, lambda sd: sd["state"][1].update(exp_avg=[0.0, 0.0])), TypeError, "state_dict['state'][1]['exp_avg'] must be a numpy.ndarray, got list"),
    (lambda: edited(ADAM_SD, lambda sd: sd["state"][0].update(step=-1)), ValueError, "state_dict['state'][0]['step'] must be a non-negative integer, got -1"),
    (lambda: edited(ADAM_SD, lambda sd: sd["state"][0].update(step=1.5)), ValueError, "state_dict['state'][0]['step'] must be a non-negative integer, got 1.5"),
    (lambda: edited(ADAM_SD, lambda sd: sd["state"].update({0: None})), TypeError, "state_dict['state'][0] must be a dict"),
]


@pytest.mark.parametrize(("make_state_dict", "error", "message"), LOAD_ERRORS)
def test_bad_state_dicts_are_rejected_and_change_nothing(make_state_dict, error, message):
    params = [np.ones(3), np.ones(2)]
    opt = fastopt.Adam(params, lr=0.5, amsgrad=True)
    opt.step([np.full(3, 0.25), np.full(2, 0.25)])
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(error, match=f"^{re.escape(message)}"):
        opt.load_state_dict(make_state_dict())
    np.testing.assert_equal(opt.state_dict(), before)


def test_step_stored_as_float_or_zero_d_array_is_accepted():
    sd = copy.deepcopy(ADAM_SD)
    sd["state"][0]["step"] = np.array(1.0, np.float32)  # torch saves a 0-d float32 tensor
    sd["state"][1]["step"] = 1.0
    opt = fastopt.Adam([np.ones(3), np.ones(2)])
    opt.load_state_dict(sd)
    assert opt.state[0]["step"] == 1 and isinstance(opt.state[0]["step"], int)


@pytest.mark.parametrize("value", [0.1, np.zeros(2, np.float32), "0.5", True, float("nan")])
def test_nadam_rejects_a_mu_product_that_is_not_a_float32(value):
    opt = fastopt.NAdam([np.zeros(2)])
    opt.step([np.ones(2)])
    sd = opt.state_dict()
    before = opt.state_dict()
    sd["state"][0]["mu_product"] = value  # 0.1 is not exactly a float32
    with pytest.raises(ValueError, match=r"\['mu_product'\] must be a float32 scalar"):
        opt.load_state_dict(sd)
    del sd["state"][0]["mu_product"]
    with pytest.raises(ValueError, match=r"missing \['mu_product'\]"):
        opt.load_state_dict(sd)
    np.testing.assert_equal(opt.state_dict(), before)


# --------------------------------------------------------------------------------------------
# Another optimizer's state dict, and corrupted checkpoints
# --------------------------------------------------------------------------------------------
def trained(name, shapes=((3,), (2,)), dtype=np.float64, backend="auto"):
    params = [np.linspace(0.5, 1.5, int(np.prod(s))).reshape(s).astype(dtype) for s in shapes]
    opt = SPECS[name].cls(params, backend=backend, **SPECS[name].torch_configs[-1])
    opt.step([np.full(s, 0.25, dtype) for s in shapes])
    return opt


# Adam and AdamW keep the same hyperparameter names and state keys, so each loads the other's
# state dict (as in torch); their arithmetic differs only in where weight decay goes.
INTERCHANGEABLE = {("Adam", "AdamW"), ("AdamW", "Adam")}


# Every ordered pair of different optimizers (an optimizer's own state dict: the resume tests).
OTHER_PAIRS = [(saver, loader) for saver in SPECS for loader in SPECS if saver != loader]


@pytest.mark.parametrize(("saver", "loader"), OTHER_PAIRS, ids=[f"{s}-{l}" for s, l in OTHER_PAIRS])
def test_a_state_dict_of_another_optimizer_is_rejected(saver, loader):
    opt = trained(loader)
    before = frozen(opt)
    state_dict = trained(saver).state_dict()
    if (saver, loader) in INTERCHANGEABLE:
        opt.load_state_dict(state_dict)
        return
    with pytest.raises(ValueError, match=r"does not hold .*; was it saved from another optimizer\?$"):
        opt.load_state_dict(state_dict)
    assert_frozen(opt, before)


BAD_CHECKPOINTS = [
    ("shapes swapped", lambda name: trained(name, shapes=((2,), (3,))).state_dict(), ValueError, r"has shape \(2,\) and dtype float64, but its parameter has shape \(3,\)"),
    ("2-D instead of 1-D", lambda name: trained(name, shapes=((3, 1), (2,))).state_dict(), ValueError, r"has shape \(3, 1\) and dtype float64, but its parameter has shape \(3,\)|\['row_var'\]: a parameter of shape \(3,\) has no 'row_var'"),
    ("float32 instead of float64", lambda name: trained(name, dtype=np.float32).state_dict(), ValueError, r"dtype float32, but its parameter has shape \(3,\) and dtype float64"),
    ("one parameter more", lambda name: trained(name, shapes=((3,), (2,), (1,))).state_dict(), ValueError, r"^loaded state dict contains a parameter group that doesn't match the size"),
    ("hyperparameter missing", lambda name: _edit(name, lambda sd: sd["param_groups"][0].pop("lr")), ValueError, r"^state_dict\['param_groups'\]\[0\] does not hold \w+'s hyperparameters \(missing \['lr'\]"),
    ("step too large for a float", lambda name: _edit(name, lambda sd: _set_steps(sd, 10**400)), ValueError, r"\['step'\] must be a non-negative integer, got 1000"),
    ("step past 2**62", lambda name: _edit(name, lambda sd: _set_steps(sd, 2**62)), ValueError, r"\['step'\] must be a non-negative integer, got 4611686018427387904"),
    ("step a float16 fraction", lambda name: _edit(name, lambda sd: _set_steps(sd, np.float16(0.25))), ValueError, r"\['step'\] must be a non-negative integer, got np.float16\(0.25\)"),
    ("state array as a list", lambda name: _edit(name, lambda sd: _set_arrays(sd, lambda a: a.tolist())), TypeError, r"must be a numpy.ndarray, got list"),
    ("state array of objects", lambda name: _edit(name, lambda sd: _set_arrays(sd, lambda a: a.astype(object))), ValueError, r"dtype object, but its parameter"),
    ("lr is NaN", lambda name: _edit(name, lambda sd: sd["param_groups"][0].update(lr=float("nan"))), ValueError, r"^(Invalid learning rate|Learning rate should be >= 0 but is): nan$"),
    ("lr is a string", lambda name: _edit(name, lambda sd: sd["param_groups"][0].update(lr="0.1")), TypeError, r"^lr must be a real number, got str '0.1'$"),
    ("not a dict", lambda name: "checkpoint.pt", ValueError, r"^state_dict must be a dict"),
]


def _edit(name, edit):
    state_dict = copy.deepcopy(trained(name).state_dict())
    edit(state_dict)
    return state_dict


def _set_steps(state_dict, value):
    for entry in state_dict["state"].values():
        if "step" in entry:
            entry["step"] = value
    if not any("step" in entry for entry in state_dict["state"].values()):
        state_dict["state"][0]["step"] = value  # SGD keeps none: an unknown key, also rejected


def _set_arrays(state_dict, convert):
    entry = state_dict["state"][1]
    key = next(k for k, v in entry.items() if isinstance(v, np.ndarray) and v.ndim)  # a buffer, not a counter
    entry[key] = convert(entry[key])


@pytest.mark.hostile
@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize(("label", "make", "error", "pattern"), BAD_CHECKPOINTS, ids=[c[0] for c in BAD_CHECKPOINTS])
def test_a_bad_checkpoint_is_rejected_and_changes_nothing(name, label, make, error, pattern):
    if SPECS[name].cls.step_key is None and label.startswith("step"):
        pattern = rf"does not hold {name} state \(missing \[\], unknown \['step'\]\)"
    opt = trained(name)
    before = frozen(opt)
    with pytest.raises(error, match=pattern):
        opt.load_state_dict(make(name))
    assert_frozen(opt, before)


@pytest.mark.hostile
def test_a_loaded_nadam_mu_product_out_of_range_is_rejected():
    opt = fastopt.OPTIMIZERS["NAdam"]([np.ones(3)])
    opt.step([np.ones(3)])
    saved = opt.state_dict()
    saved["state"][0]["mu_product"] = np.float32(2.0)
    with pytest.raises(ValueError, match=r"\['mu_product'\] must be in \[0, 1\]"):
        opt.load_state_dict(saved)


@pytest.mark.hostile
def test_a_rejected_checkpoint_leaves_the_optimizer_usable_and_exact():
    """After a failed load, training continues exactly as if the load had not been tried."""
    a, b = trained("Adam", backend="cython"), trained("Adam", backend="numba")
    with pytest.raises(ValueError):
        a.load_state_dict(trained("Adam", dtype=np.float32).state_dict())
    for _ in range(3):
        a.step([np.full(3, 0.5), np.full(2, -0.5)])
        b.step([np.full(3, 0.5), np.full(2, -0.5)])
    for p, q in zip(a._params, b._params):
        assert_bits_equal(p, q)


@pytest.mark.hostile
def test_non_finite_values_in_a_checkpoint_are_loaded_as_they_are():
    """Accepted: state values are data, not validated (NaN in exp_avg is what training produced);
    they propagate as in torch, identically on every backend."""
    results = []
    for backend in fastopt.BACKENDS:
        opt = trained("Adam", backend=backend)
        state_dict = opt.state_dict()
        state_dict["state"][0]["exp_avg"][1] = np.nan
        state_dict["state"][0]["exp_avg_sq"][2] = np.inf
        opt.load_state_dict(state_dict)
        opt.step([np.full(3, 0.5), np.full(2, 0.5)])
        results.append(opt._params[0].copy())
    assert np.isnan(results[0][1])  # m = NaN: the element becomes NaN
    assert np.isfinite(results[0][2])  # v = inf: the denominator is inf, the update 0
    for other in results[1:]:
        assert_bits_equal(other, results[0])
