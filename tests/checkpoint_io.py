"""Checkpoints on disk, two ways, and the training runs the checkpoint tests replay.

* ``pickle``: ``pickle.dump((opt.state_dict(), params), file)``; nothing to convert.
* ``np.savez``: no pickle inside (``np.load(..., allow_pickle=False)`` loads it), so a checkpoint
  from an untrusted source cannot run code. The state dict is flattened: every array under
  ``state/<index>/<key>``, every step counter as a 0-d int64 array, the parameters under
  ``param/<index>`` and the hyperparameters as JSON (floats round-trip exactly through JSON; a
  function, ADOPT's ``clip_lambda``, as ``{"function": "module:name"}``, imported again on load).

Shared by tests/test_checkpoints.py and the script it runs in a new process,
tests/resume_checkpoints.py.
"""

import importlib
import json
import pickle

import numpy as np
from specs import SPECS  # tests/ is on sys.path: pytest's pythonpath, and the script's own folder

import fastopt

# (optimizer, options): every configuration of the table in tests/specs.py, which switches on
# every state buffer and option of each optimizer.
CONFIGS = [(name, dict(options)) for name, spec in SPECS.items() for options in spec.torch_configs]
STEPS, SAVED_AT = 7, 3
LARGE_STEP = 2**31 + 5  # past int32 and float32's 2**24; set before training in the "large" runs


def problem(config_index, save_backend_index):
    """Initial parameters (a float64 group and a float32 group) and every step's gradients."""
    rng = np.random.default_rng(1000 * config_index + save_backend_index)
    shapes = [((4, 3), np.float64), ((5,), np.float64), ((), np.float32), ((0, 2), np.float32), ((6,), np.float32)]
    params = [np.asarray(rng.standard_normal(shape), dtype) for shape, dtype in shapes]
    grads = []
    for step in range(STEPS):
        grads.append([
            None if (step == 4 and index == 1) else np.asarray(rng.standard_normal(shape), dtype)
            for index, (shape, dtype) in enumerate(shapes)
        ])
    return params, grads


def make_optimizer(name, options, params, backend, **overrides):
    lr = options.get("lr", fastopt.OPTIMIZERS[name]([np.zeros(1)], backend="reference").defaults["lr"])
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": lr * 0.5}]
    return fastopt.OPTIMIZERS[name](groups, backend=backend, **{**options, **overrides})


def train(opt, grads, first_step):
    """Steps ``first_step`` onwards; the learning rate of group 0 follows a schedule."""
    for step in range(first_step, len(grads)):
        if step == 5:
            opt.param_groups[0]["lr"] = opt.param_groups[0]["lr"] * 0.5  # a schedule after the resume
        opt.step(grads[step])


def jump_steps(opt):
    """Move every step counter to LARGE_STEP (in both the saved and the uninterrupted run)."""
    for entry in opt.state.values():
        if "step" in entry:
            entry["step"] = LARGE_STEP


# --------------------------------------------------------------------------------------------
def function_to_json(value):
    if callable(value) and hasattr(value, "__module__") and hasattr(value, "__qualname__"):
        return {"function": f"{value.__module__}:{value.__qualname__}"}
    raise TypeError(f"cannot save {value!r} as JSON")


def function_from_json(entry):
    if set(entry) == {"function"}:
        module, name = entry["function"].split(":")
        return getattr(importlib.import_module(module), name)
    return entry


def save_npz(path, state_dict, params):
    arrays = {f"param/{i}": p for i, p in enumerate(params)}
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            arrays[f"state/{index}/{key}"] = np.asarray(value, np.int64) if key == "step" else value
    arrays["param_groups"] = np.array(json.dumps(state_dict["param_groups"], default=function_to_json))
    np.savez(path, **arrays)


def load_npz(path):
    with np.load(path, allow_pickle=False) as data:
        params, state = {}, {}
        for name in data.files:
            kind, *rest = name.split("/")
            if kind == "param":
                params[int(rest[0])] = data[name]
            elif kind == "state":
                value = data[name]
                state.setdefault(int(rest[0]), {})[rest[1]] = int(value) if rest[1] == "step" else value
        groups = json.loads(str(data["param_groups"]), object_hook=function_from_json)
    return {"state": state, "param_groups": groups}, [params[i] for i in range(len(params))]


def save(path, state_dict, params):
    if str(path).endswith(".npz"):
        save_npz(path, state_dict, params)
    else:
        with open(path, "wb") as handle:
            pickle.dump((state_dict, params), handle)


def load(path):
    if str(path).endswith(".npz"):
        return load_npz(path)
    with open(path, "rb") as handle:
        return pickle.load(handle)
