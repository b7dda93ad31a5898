"""Validation: every error message, replayed from tables, and a rejected call changes nothing.

Tables of hyperparameters (torch.optim's messages where torch has one), of parameter lists and
groups, and of gradients: each rejected with its exact message before anything is updated,
hyperparameters both at construction and when set between steps. Then arguments no ordinary use
produces (marked ``hostile``): numbers too large for a float, values equal to a valid one but of
another type, masked arrays, and a parameter that aliases the optimizer's state.
"""

import copy
import re
from fractions import Fraction

import numpy as np
import pytest
from helpers import assert_nothing_changed, backends, readonly, snapshot

import fastopt

P = np.zeros(3)

# (optimizer, keyword arguments, exception, message) - torch.optim's messages where torch has one.
HYPERPARAMETER_ERRORS = [
    ("SGD", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    ("SGD", dict(lr=float("nan")), ValueError, "Invalid learning rate: nan"),
    ("SGD", dict(lr=float("inf")), ValueError, "Invalid learning rate: inf"),
    ("SGD", dict(lr="0.1"), TypeError, "lr must be a real number, got str '0.1'"),
    ("SGD", dict(lr=None), TypeError, "lr must be a real number, got NoneType None"),
    ("SGD", dict(momentum=-0.1), ValueError, "Invalid momentum value: -0.1"),
    ("SGD", dict(weight_decay=-0.001), ValueError, "Invalid weight_decay value: -0.001"),
    ("SGD", dict(dampening="x"), TypeError, "dampening must be a real number, got str 'x'"),
    ("SGD", dict(nesterov=True), ValueError, "Nesterov momentum requires a momentum and zero dampening"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "Nesterov momentum requires a momentum and zero dampening"),
    ("SGD", dict(nesterov="yes"), TypeError, "nesterov must be a bool, got str 'yes'"),
    ("SGD", dict(maximize=1), TypeError, "maximize must be a bool, got int 1"),
    ("Adagrad", dict(lr=-1e-2), ValueError, "Invalid learning rate: -0.01"),
    ("Adagrad", dict(lr_decay=-1.0), ValueError, "Invalid lr_decay value: -1.0"),
    ("Adagrad", dict(weight_decay=-1.0), ValueError, "Invalid weight_decay value: -1.0"),
    ("Adagrad", dict(initial_accumulator_value=-0.1), ValueError, "Invalid initial_accumulator_value value: -0.1"),
    ("Adagrad", dict(eps=-1.0), ValueError, "Invalid epsilon value: -1.0"),
    ("RMSprop", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    ("RMSprop", dict(eps=-1.0), ValueError, "Invalid epsilon value: -1.0"),
    ("RMSprop", dict(momentum=-0.5), ValueError, "Invalid momentum value: -0.5"),
    ("RMSprop", dict(weight_decay=-0.5), ValueError, "Invalid weight_decay value: -0.5"),
    ("RMSprop", dict(rho=1.0), ValueError, "Invalid rho value: 1.0"),
    ("RMSprop", dict(rho=-0.5), ValueError, "Invalid rho value: -0.5"),
    ("RMSprop", dict(rho=float("nan")), ValueError, "Invalid rho value: nan"),
    ("RMSprop", dict(centered=None), TypeError, "centered must be a bool, got NoneType None"),
    ("Adam", dict(lr=-0.001), ValueError, "Invalid learning rate: -0.001"),
    ("Adam", dict(eps=-1e-08), ValueError, "Invalid epsilon value: -1e-08"),
    ("Adam", dict(betas=(1.0, 0.999)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    ("Adam", dict(betas=(0.9, -0.1)), ValueError, "Invalid beta parameter at index 1: -0.1"),
    ("Adam", dict(betas=0.9), TypeError, "betas must be a pair (beta1, beta2), got 0.9"),
    ("Adam", dict(betas=(0.9, 0.99, 0.999)), TypeError, "betas must be a pair (beta1, beta2), got (0.9, 0.99, 0.999)"),
    ("Adam", dict(betas=(0.9, "0.999")), TypeError, "betas[1] must be a real number, got str '0.999'"),
    ("Adam", dict(weight_decay=-1.0), ValueError, "Invalid weight_decay value: -1.0"),
    ("Adam", dict(amsgrad=None), TypeError, "amsgrad must be a bool, got NoneType None"),
    ("AdamW", dict(betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    ("AdamW", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
]


@pytest.mark.parametrize(("name", "kwargs", "error", "message"), HYPERPARAMETER_ERRORS)
def test_invalid_hyperparameters_are_rejected(name, kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        fastopt.OPTIMIZERS[name]([P.copy()], **kwargs)


@pytest.mark.parametrize(("name", "kwargs", "error", "message"), HYPERPARAMETER_ERRORS)
def test_invalid_hyperparameters_set_between_steps_are_rejected_before_any_update(name, kwargs, error, message):
    p = np.ones(3)
    opt = fastopt.OPTIMIZERS[name]([p])
    opt.param_groups[0].update(kwargs)
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        opt.step([np.ones(3)])
    assert np.all(p == 1.0)


# Adadelta, Adamax, NAdam, RAdam, Lion, Rprop, ASGD, AdaBelief and ADOPT: each row checked at construction and set between
# Adadelta, Adamax, NAdam, RAdam, Lion, Rprop, ASGD, AdaBelief and ScheduleFreeAdamW: each row checked at construction and set between
# steps, in one test.
ERRORS_AT_CONSTRUCTION_AND_BETWEEN_STEPS = [
    ("Adadelta", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    ("Adadelta", dict(rho=1.5), ValueError, "Invalid rho value: 1.5"),
    ("Adadelta", dict(rho=-0.1), ValueError, "Invalid rho value: -0.1"),
    ("Adadelta", dict(rho=float("nan")), ValueError, "Invalid rho value: nan"),
    ("Adadelta", dict(rho="0.9"), TypeError, "rho must be a real number, got str '0.9'"),
    ("Adadelta", dict(eps=-1.0), ValueError, "Invalid epsilon value: -1.0"),
    ("Adadelta", dict(weight_decay=-0.5), ValueError, "Invalid weight_decay value: -0.5"),
    ("Adadelta", dict(maximize=1), TypeError, "maximize must be a bool, got int 1"),
    ("Adamax", dict(lr=-0.002), ValueError, "Invalid learning rate: -0.002"),
    ("Adamax", dict(eps=-1e-08), ValueError, "Invalid epsilon value: -1e-08"),
    ("Adamax", dict(betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    ("Adamax", dict(weight_decay=-1.0), ValueError, "Invalid weight_decay value: -1.0"),
    ("NAdam", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    ("NAdam", dict(betas=(1.0, 0.999)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    ("NAdam", dict(weight_decay=-1.0), ValueError, "Invalid weight_decay value: -1.0"),
    ("NAdam", dict(momentum_decay=-1.0), ValueError, "Invalid momentum_decay value: -1.0"),
    ("NAdam", dict(momentum_decay=float("inf")), ValueError, "Invalid momentum_decay value: inf"),
    ("NAdam", dict(decoupled_weight_decay=1), TypeError, "decoupled_weight_decay must be a bool, got int 1"),
    ("RAdam", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    ("RAdam", dict(eps=-1.0), ValueError, "Invalid epsilon value: -1.0"),
    ("RAdam", dict(betas=(-0.1, 0.999)), ValueError, "Invalid beta parameter at index 0: -0.1"),
    ("RAdam", dict(weight_decay=-1.0), ValueError, "Invalid weight_decay value: -1.0"),
    ("Lion", dict(lr=-1e-4), ValueError, "Invalid learning rate: -0.0001"),
    ("Lion", dict(betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    ("Lion", dict(betas=0.9), TypeError, "betas must be a pair (beta1, beta2), got 0.9"),
    ("Lion", dict(weight_decay=-0.1), ValueError, "Invalid weight_decay value: -0.1"),
    ("Rprop", dict(lr=-0.01), ValueError, "Invalid learning rate: -0.01"),
    ("Rprop", dict(lr=float("inf")), ValueError, "Invalid learning rate: inf"),
    ("Rprop", dict(etas=(1.0, 1.2)), ValueError, "Invalid eta values: 1.0, 1.2"),
    ("Rprop", dict(etas=(0.0, 1.2)), ValueError, "Invalid eta values: 0.0, 1.2"),
    ("Rprop", dict(etas=(0.5, 1.0)), ValueError, "Invalid eta values: 0.5, 1.0"),
    ("Rprop", dict(etas=(0.5, float("inf"))), ValueError, "Invalid eta values: 0.5, inf"),
    ("Rprop", dict(etas=(float("nan"), 1.2)), ValueError, "Invalid eta values: nan, 1.2"),
    ("Rprop", dict(etas=0.5), TypeError, "etas must be a pair (etaminus, etaplus), got 0.5"),
    ("Rprop", dict(etas=(0.5, "1.2")), TypeError, "etas[1] must be a real number, got str '1.2'"),
    ("Rprop", dict(step_sizes=(-1e-6, 50)), ValueError, "Invalid step_sizes values: -1e-06, 50"),
    ("Rprop", dict(step_sizes=(1.0, 0.5)), ValueError, "Invalid step_sizes values: 1.0, 0.5"),
    ("Rprop", dict(step_sizes=(1e-6, float("nan"))), ValueError, "Invalid step_sizes values: 1e-06, nan"),
    ("Rprop", dict(step_sizes=(float("inf"), float("inf"))), ValueError, "Invalid step_sizes values: inf, inf"),
    ("Rprop", dict(step_sizes=(1e-6, 50, 100)), TypeError,
     "step_sizes must be a pair (minimal, maximal step size), got (1e-06, 50, 100)"),
    ("Rprop", dict(maximize=1), TypeError, "maximize must be a bool, got int 1"),
    ("ASGD", dict(lr=-0.01), ValueError, "Invalid learning rate: -0.01"),
    ("ASGD", dict(weight_decay=-1.0), ValueError, "Invalid weight_decay value: -1.0"),
    ("ASGD", dict(lambd=-1e-4), ValueError, "Invalid lambd value: -0.0001"),
    ("ASGD", dict(lambd=float("inf")), ValueError, "Invalid lambd value: inf"),
    ("ASGD", dict(alpha=-0.75), ValueError, "Invalid alpha value: -0.75"),
    ("ASGD", dict(alpha="0.75"), TypeError, "alpha must be a real number, got str '0.75'"),
    ("ASGD", dict(t0=float("nan")), ValueError, "Invalid t0 value: nan"),
    ("ASGD", dict(t0=None), TypeError, "t0 must be a real number, got NoneType None"),
    ("ASGD", dict(maximize=1), TypeError, "maximize must be a bool, got int 1"),
    ("AdaBelief", dict(lr=-1e-3), ValueError, "Invalid learning rate: -0.001"),
    ("AdaBelief", dict(eps=-1e-16), ValueError, "Invalid epsilon value: -1e-16"),
    ("AdaBelief", dict(betas=(1.0, 0.999)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    ("AdaBelief", dict(betas=(0.9, float("nan"))), ValueError, "Invalid beta parameter at index 1: nan"),
    ("AdaBelief", dict(weight_decay=-0.1), ValueError, "Invalid weight_decay value: -0.1"),
    ("AdaBelief", dict(eps_root=-1e-16), ValueError, "Invalid eps_root value: -1e-16"),
    ("AdaBelief", dict(eps_root=float("inf")), ValueError, "Invalid eps_root value: inf"),
    ("AdaBelief", dict(eps_root="1e-16"), TypeError, "eps_root must be a real number, got str '1e-16'"),
    ("AdaBelief", dict(amsgrad=1), TypeError, "amsgrad must be a bool, got int 1"),
    ("AdaBelief", dict(decoupled_weight_decay=None), TypeError, "decoupled_weight_decay must be a bool, got NoneType None"),
    ("AdaBelief", dict(maximize=1), TypeError, "maximize must be a bool, got int 1"),
    ("AdaBelief", dict(fixed_decay="yes"), TypeError, "fixed_decay must be a bool, got str 'yes'"),
    ("ADOPT", dict(lr=-1e-3), ValueError, "Invalid learning rate: -0.001"),
    ("ADOPT", dict(eps=-1e-6), ValueError, "Invalid epsilon value: -1e-06"),
    ("ADOPT", dict(betas=(1.0, 0.9999)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    ("ADOPT", dict(betas=(0.9, float("nan"))), ValueError, "Invalid beta parameter at index 1: nan"),
    ("ADOPT", dict(weight_decay=-0.1), ValueError, "Invalid weight_decay value: -0.1"),
    ("ADOPT", dict(clip_lambda=0.25), TypeError, "clip_lambda must be None or a callable, got float 0.25"),
    ("ADOPT", dict(decouple=1), TypeError, "decouple must be a bool, got int 1"),
    ("ADOPT", dict(maximize=1), TypeError, "maximize must be a bool, got int 1"),
    ("ScheduleFreeAdamW", dict(lr=-1e-3), ValueError, "Invalid learning rate: -0.001"),
    ("ScheduleFreeAdamW", dict(eps=-1e-8), ValueError, "Invalid epsilon value: -1e-08"),
    ("ScheduleFreeAdamW", dict(betas=(1.0, 0.999)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    ("ScheduleFreeAdamW", dict(betas=(0.0, 0.999)), ValueError,
     "Invalid beta parameter at index 0: 0.0 (Schedule-Free needs beta1 > 0: eval() recovers x = (y - (1 - beta1) z) / beta1)"),
    ("ScheduleFreeAdamW", dict(betas=(0.9, float("nan"))), ValueError, "Invalid beta parameter at index 1: nan"),
    ("ScheduleFreeAdamW", dict(weight_decay=-0.1), ValueError, "Invalid weight_decay value: -0.1"),
    ("ScheduleFreeAdamW", dict(warmup_steps=-1), ValueError, "Invalid warmup_steps value: -1"),
    ("ScheduleFreeAdamW", dict(warmup_steps="10"), TypeError, "warmup_steps must be a real number, got str '10'"),
    ("ScheduleFreeAdamW", dict(r=float("inf")), ValueError, "Invalid r value: inf"),
    ("ScheduleFreeAdamW", dict(weight_lr_power=-2.0), ValueError, "Invalid weight_lr_power value: -2.0"),
    ("ScheduleFreeAdamW", dict(maximize=1), TypeError, "maximize must be a bool, got int 1"),
]


@pytest.mark.parametrize(("name", "kwargs", "error", "message"), ERRORS_AT_CONSTRUCTION_AND_BETWEEN_STEPS)
def test_invalid_hyperparameters_are_rejected_at_construction_and_between_steps(name, kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        fastopt.OPTIMIZERS[name]([P.copy()], **kwargs)
    p = np.ones(3)
    opt = fastopt.OPTIMIZERS[name]([p])
    opt.param_groups[0].update(kwargs)  # set between steps: rejected before anything changes
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        opt.step([np.ones(3)])
    assert np.all(p == 1.0)


BASE = np.zeros(10)
CONSTRUCTION_ERRORS = [
    (lambda: P.copy(), TypeError, "params must be a list of arrays or of dicts (parameter groups), not a single numpy.ndarray: wrap it as [array]"),
    (lambda: [], ValueError, "optimizer got an empty parameter list"),
    (lambda: 3.0, TypeError, "params must be a list of arrays or of dicts (parameter groups), got float"),
    (lambda: [[1.0, 2.0]], TypeError, "params[0] must be a numpy.ndarray of float32, float64, float16 or bfloat16, got list"),
    (lambda: [np.zeros(3), 1.0], TypeError, "params[1] must be a numpy.ndarray of float32, float64, float16 or bfloat16, got float"),
    (lambda: [np.zeros(3, np.int64)], TypeError, "params[0] has dtype int64; fastopt optimizes native float32 and float64 arrays"),
    (lambda: [np.zeros(3, bool)], TypeError, "params[0] has dtype bool; fastopt optimizes native float32 and float64 arrays"),
    (lambda: [np.zeros(3, np.complex128)], TypeError, "params[0] has dtype complex128; fastopt optimizes native float32 and float64 arrays"),
    (lambda: [np.zeros(3, ">f2")], TypeError, "params[0] has dtype >f2; fastopt optimizes native float32 and float64 arrays"),
    (lambda: [np.zeros(3, object)], TypeError, "params[0] has dtype object; fastopt optimizes native float32 and float64 arrays"),
    (lambda: [np.zeros(3, ">f8")], TypeError, "params[0] has dtype >f8; fastopt optimizes native float32 and float64 arrays"),
    (lambda: [np.zeros(10)[::2]], ValueError, "params[0] is not C-contiguous"),
    (lambda: [np.zeros((3, 4), order="F")], ValueError, "params[0] is not C-contiguous"),
    (lambda: [readonly(np.zeros(3))], ValueError, "params[0] is read-only; parameters are updated in place"),
    (lambda: [BASE, BASE], ValueError, "params[1] is the same array as params[0]; every parameter must own its memory"),
    (lambda: [BASE[:6], BASE[4:]], ValueError, "params[1] shares memory with params[0]; every parameter must own its memory"),
    (lambda: [{"params": [BASE]}, {"params": [BASE]}], ValueError, "params[1] is the same array as params[0]"),
    (lambda: [{"params": {1, 2}}], TypeError, "optimizer parameters need to be organized in ordered collections"),
    (lambda: [{"params": [np.zeros(2)]}, np.zeros(2)], TypeError, "param_group must be a dict, but got ndarray"),
    (lambda: [{"lr": 0.1}], ValueError, "param_group must have a 'params' entry"),
    (lambda: [{"params": [np.zeros(2)], "momentun": 0.9}], ValueError, "param_group has unknown hyperparameter(s) ['momentun']"),
]


@pytest.mark.parametrize(("make_params", "error", "message"), CONSTRUCTION_ERRORS)
def test_invalid_parameters_are_rejected(make_params, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}"):
        fastopt.SGD(make_params())


def test_rejected_parameter_group_leaves_optimizer_unchanged():
    a, b = np.zeros(3), np.zeros(3)
    opt = fastopt.Adam([a])
    with pytest.raises(ValueError, match="params"):
        opt.add_param_group({"params": [b, a]})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": [b]})  # b was not registered by the failed call
    assert len(opt.param_groups) == 2


STEP_ERRORS = [
    (lambda p: [np.ones(3)], ValueError, "step() expected 2 gradients (one per parameter, in param_groups order), got 1"),
    (lambda p: np.ones((2, 3)), TypeError, "grads must be a sequence (list or tuple) with one array or None per parameter, got ndarray"),
    (lambda p: (g for g in [np.ones(3), np.ones(4)]), TypeError, "grads must be a sequence"),
    (lambda p: [np.ones(3), [1.0] * 4], TypeError, "grads[1] must be a numpy.ndarray or None, got list"),
    (lambda p: [np.ones(3), np.ones(4, np.float32)], TypeError, "grads[1] has dtype float32 but params[1] has dtype float64"),
    (lambda p: [np.ones(3), np.ones(5)], ValueError, "grads[1] has shape (5,) but params[1] has shape (4,)"),
    (lambda p: [np.ones(3), np.ones((4, 1))], ValueError, "grads[1] has shape (4, 1) but params[1] has shape (4,)"),
    (lambda p: [np.ones(3), p[1]], ValueError, "grads[1] shares memory with params[1]; pass the gradient in its own array"),
]


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize(("make_grads", "error", "message"), STEP_ERRORS)
def test_invalid_gradients_change_nothing(backend, make_grads, error, message):
    params = [np.ones(3), np.ones(4)]
    opt = fastopt.Adam(params, backend=backend, amsgrad=True)
    opt.step([np.full(3, 0.5), np.full(4, 0.5)])
    before = copy.deepcopy((params, opt.state_dict()))
    with pytest.raises(error, match=f"^{re.escape(message)}"):
        opt.step(make_grads(params))
    after = (params, opt.state_dict())
    np.testing.assert_equal(after, before)  # no parameter, buffer or step counter moved


def test_params_list_changed_after_construction_is_rejected():
    a, b = np.zeros(3), np.zeros(3)
    opt = fastopt.SGD([a, b])
    opt.param_groups[0]["params"].append(np.zeros(3))
    with pytest.raises(ValueError, match=r"^param_groups\[0\]\['params'\] changed after it was added"):
        opt.step([np.ones(3)] * 3)
    opt.param_groups[0]["params"][:] = [b, a]
    with pytest.raises(ValueError, match=r"changed after it was added"):
        opt.step([np.ones(3)] * 2)
    opt.param_groups.append({"params": []})
    with pytest.raises(ValueError, match=r"^param_groups changed length"):
        opt.step([np.ones(3)] * 2)


# --------------------------------------------------------------------------------------------
# Hyperparameters that pass "< inf" but are not floats
# --------------------------------------------------------------------------------------------
HUGE = [
    ("lr", 10**400, "lr is too large for a float64 (got a int)"),
    ("lr", Fraction(10**400, 3), "lr is too large for a float64 (got a Fraction)"),
    ("eps", 10**309, "eps is too large for a float64 (got a int)"),
    ("weight_decay", 10**400, "weight_decay is too large for a float64 (got a int)"),
]


@pytest.mark.hostile
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


@pytest.mark.hostile
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


# --------------------------------------------------------------------------------------------
# Arrays the base checks let through
# --------------------------------------------------------------------------------------------
@pytest.mark.hostile
@backends
def test_masked_arrays_are_rejected_rather_than_their_masks_ignored(backend):
    with pytest.raises(TypeError, match=r"^params\[0\] is a numpy.ma.MaskedArray; fastopt would ignore its mask"):
        fastopt.SGD([np.ma.masked_array(np.ones(3), mask=[0, 1, 0])], backend=backend)
    p = np.ones(3)
    opt = fastopt.SGD([p], backend=backend)
    with pytest.raises(TypeError, match=r"^grads\[0\] is a numpy.ma.MaskedArray; fastopt would ignore its mask"):
        opt.step([np.ma.masked_array(np.ones(3), mask=[0, 1, 0])])
    assert np.all(p == 1.0)


@pytest.mark.hostile
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
