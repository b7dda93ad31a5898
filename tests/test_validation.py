"""Every error message, replayed from tables; and a rejected call changes nothing."""

import copy
import re

import numpy as np
import pytest

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


def readonly(array):
    array.flags.writeable = False
    return array


BASE = np.zeros(10)
CONSTRUCTION_ERRORS = [
    (lambda: P.copy(), TypeError, "params must be a list of arrays or of dicts (parameter groups), not a single numpy.ndarray: wrap it as [array]"),
    (lambda: [], ValueError, "optimizer got an empty parameter list"),
    (lambda: 3.0, TypeError, "params must be a list of arrays or of dicts (parameter groups), got float"),
    (lambda: [[1.0, 2.0]], TypeError, "params[0] must be a numpy.ndarray of float32 or float64, got list"),
    (lambda: [np.zeros(3), 1.0], TypeError, "params[1] must be a numpy.ndarray of float32 or float64, got float"),
    (lambda: [np.zeros(3, np.int64)], TypeError, "params[0] has dtype int64; fastopt optimizes native float32 and float64 arrays"),
    (lambda: [np.zeros(3, bool)], TypeError, "params[0] has dtype bool; fastopt optimizes native float32 and float64 arrays"),
    (lambda: [np.zeros(3, np.complex128)], TypeError, "params[0] has dtype complex128; fastopt optimizes native float32 and float64 arrays"),
    (lambda: [np.zeros(3, np.float16)], TypeError, "params[0] has dtype float16; fastopt optimizes native float32 and float64 arrays"),
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
