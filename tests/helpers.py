"""What the test files share beyond the optimizer table (tests/specs.py): parametrize shorthands,
the options and problems the API and checkpoint tests step, guarded buffers that show a write out
of bounds, snapshots that show a rejected call changed nothing, and the relative difference the
comparisons with torch.optim and lion-pytorch measure.
"""

import copy

import numpy as np
import pytest
from specs import DTYPES, SPECS, assert_bits_equal

import fastopt

backends = pytest.mark.parametrize("backend", fastopt.BACKENDS)
names = pytest.mark.parametrize("name", list(SPECS))

# Options that switch on every buffer each optimizer can hold.
FULL_OPTIONS = {
    "SGD": dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "Adagrad": dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
    "RMSprop": dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01),
    "Adam": dict(lr=0.01, amsgrad=True, weight_decay=0.01),
    "AdamW": dict(lr=0.01, amsgrad=True, weight_decay=0.1),
    "Adadelta": dict(lr=0.5, weight_decay=0.01),
    "Adamax": dict(lr=0.01, weight_decay=0.01),
    "NAdam": dict(lr=0.01, weight_decay=0.01),
    "RAdam": dict(lr=0.01, weight_decay=0.01),
    "Lion": dict(lr=0.01, weight_decay=0.1),
    "Rprop": dict(lr=0.05, etas=(0.4, 1.3), step_sizes=(1e-4, 1.0)),
    "ASGD": dict(lr=0.05, t0=0.0, weight_decay=0.01),
    "AdaBelief": dict(lr=0.01, amsgrad=True, weight_decay=0.01),
    "Adafactor": dict(lr=0.05, weight_decay=0.01),
    "ADOPT": dict(lr=0.01, weight_decay=0.01, decouple=True),
    "ScheduleFreeAdamW": dict(lr=0.01, warmup_steps=2, weight_decay=0.01),
    "LAMB": dict(lr=0.01, weight_decay=0.01),
}


def params_and_grads(dtype=np.float64, seed=0, shapes=((5, 3), (7,), ())):
    """Parameters of ``shapes`` and ten steps of gradients for them, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    params = [np.asarray(rng.standard_normal(shape), dtype=dtype) for shape in shapes]
    grads = [[np.asarray(rng.standard_normal(shape), dtype=dtype) for shape in shapes] for _ in range(10)]
    return params, grads


def readonly(array):
    """``array``, made read-only."""
    array.flags.writeable = False
    return array


# --------------------------------------------------------------------------------------------
# Guarded buffers: a write past the end of an array shows in the guard zone
# --------------------------------------------------------------------------------------------
GUARD = -7.0  # the value every guard element holds


def guarded(n, spare=8, dtype=np.float64):
    """A length-``n`` view at the start of a buffer whose ``spare`` trailing elements hold GUARD."""
    buffer = np.full(n + spare, GUARD, dtype)
    buffer[:n] = 0.0
    return buffer[:n], buffer


# --------------------------------------------------------------------------------------------
# A rejected call changed nothing: two strengths of the check
# --------------------------------------------------------------------------------------------
def snapshot(opt):
    """Parameters and state, copied, for ``assert_nothing_changed``."""
    return [p.copy() for p in opt._params], copy.deepcopy(opt.state)


def assert_nothing_changed(opt, before):
    """Every parameter and state array bit for bit; every other state entry (a step counter,
    NAdam's mu_product, an entry that is not a dict) of the same type and repr."""
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


def frozen(opt):
    """Parameters, state and hyperparameters, copied, for ``assert_frozen``, which compares
    them with ``np.testing.assert_equal`` (values, not types; NaN equals NaN)."""
    return copy.deepcopy(([p.copy() for p in opt._params], opt.state, [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]))


def assert_frozen(opt, before):
    np.testing.assert_equal(frozen(opt), before)


# --------------------------------------------------------------------------------------------
# Comparisons with torch.optim and lion-pytorch
# --------------------------------------------------------------------------------------------
def relative_difference(actual, expected):
    """``max|actual - expected| / max|expected|`` (the absolute difference where expected is 0)."""
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    diff = np.max(np.abs(actual - expected)) if expected.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


# --------------------------------------------------------------------------------------------
# Arrays the kernels take and the gather declines
# --------------------------------------------------------------------------------------------
class NdarraySubclass(np.ndarray):
    """An ndarray subclass: the kernels accept it, the multi-tensor gather declines it."""
