"""Adadelta, Adamax, NAdam, RAdam and Lion: what the generic, SPECS-driven tests do not cover.

Their error messages (torch.optim's), NAdam's float32 ``mu_product`` through checkpoints and the
multi-tensor path, RAdam's per-step branch, and Lion, which torch.optim does not have, against the
formula of lion-pytorch (semantics.md section 6) and, when it is installed, lion-pytorch itself.
"""

import pickle
import re

import numpy as np
import pytest
from specs import SPECS, assert_bits_equal, assert_same_state

import fastopt

P = np.zeros(3)

HYPERPARAMETER_ERRORS = [
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
]


@pytest.mark.parametrize(("name", "kwargs", "error", "message"), HYPERPARAMETER_ERRORS)
def test_invalid_hyperparameters_are_rejected(name, kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        fastopt.OPTIMIZERS[name]([P.copy()], **kwargs)
    p = np.ones(3)
    opt = fastopt.OPTIMIZERS[name]([p])
    opt.param_groups[0].update(kwargs)  # set between steps: rejected before anything changes
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        opt.step([np.ones(3)])
    assert np.all(p == 1.0)


def test_defaults_are_torchs_and_lion_pytorchs():
    defaults = {name: fastopt.OPTIMIZERS[name]([np.zeros(1)]).defaults for name in ("Adadelta", "Adamax", "NAdam", "RAdam", "Lion")}
    assert defaults["Adadelta"] == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False,
                                        decoupled_weight_decay=False)
    assert defaults["Adamax"] == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False,
                                      eps_outside_max=False, decoupled_weight_decay=False)
    assert defaults["NAdam"] == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                                     decoupled_weight_decay=False, maximize=False)
    assert defaults["RAdam"] == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                     decoupled_weight_decay=False, maximize=False)
    assert defaults["Lion"] == dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False)


# --------------------------------------------------------------------------------------------
# RAdam: the branch is a per-step scalar
# --------------------------------------------------------------------------------------------
def test_radam_rectification_starts_at_step_six_for_beta2_0999():
    rho = [fastopt.RAdam.rectification(0.999, t)[0] for t in range(1, 8)]
    assert [r > 5 for r in rho] == [False] * 5 + [True] * 2
    rho_t, rect = fastopt.RAdam.rectification(0.999, 10**6)
    assert rho_t == pytest.approx(2 / (1 - 0.999) - 1) and rect == pytest.approx(1.0)  # r_t -> 1
    assert all(fastopt.RAdam.rectification(0.5, t)[0] <= 5 for t in range(1, 100))  # rho_inf = 3


# --------------------------------------------------------------------------------------------
# NAdam's mu_product: a float32 per parameter, through checkpoints and the multi-tensor path
# --------------------------------------------------------------------------------------------
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
# Lion: torch.optim has none; the formula of semantics.md section 6, and lion-pytorch
# --------------------------------------------------------------------------------------------
LION_STEPS = 12


def lion_problem(seed):
    rng = np.random.default_rng(seed)
    shapes = [(1031,), (7, 3), ()]
    initial = [np.asarray(rng.standard_normal(shape)) for shape in shapes]
    grads = [
        [np.asarray(rng.standard_normal(shape) * np.exp(rng.uniform(-3, 2))) for shape in shapes]
        for _ in range(LION_STEPS)
    ]
    return initial, grads


def relative_difference(actual, expected):
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    diff = np.max(np.abs(actual - expected)) if expected.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("config", SPECS["Lion"].torch_configs)
def test_lion_matches_the_formula_of_lion_pytorch(config, backend):
    """L1-L4 of semantics.md section 6, in float64, one line per formula."""
    initial, grads = lion_problem(1)
    lr, (beta1, beta2), wd = config.get("lr", 1e-4), config.get("betas", (0.9, 0.99)), config.get("weight_decay", 0.0)
    sign = -1.0 if config.get("maximize", False) else 1.0
    ours = [p.copy() for p in initial]
    opt = fastopt.Lion(ours, backend=backend, **config)
    theirs = [p.copy() for p in initial]
    exp_avg = [np.zeros_like(p) for p in initial]
    for step_grads in grads:
        opt.step(step_grads)
        for p, m, g in zip(theirs, exp_avg, step_grads):
            g = sign * g
            p *= 1.0 - lr * wd                                   # L1
            c = np.sign(beta1 * m + (1.0 - beta1) * g)           # L2
            p -= lr * c                                          # L3
            m[...] = beta2 * m + (1.0 - beta2) * g               # L4
    for index, (mine, expected) in enumerate(zip(ours, theirs)):
        assert relative_difference(mine, expected) <= 1e-12
        assert relative_difference(opt.state[index]["exp_avg"], exp_avg[index]) <= 1e-12


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("config", SPECS["Lion"].torch_configs)
def test_lion_matches_lion_pytorch(config, backend, measured):
    torch = pytest.importorskip("torch")
    lion_pytorch = pytest.importorskip("lion_pytorch")
    initial, grads = lion_problem(2)
    ours = [p.copy() for p in initial]
    opt = fastopt.Lion(ours, backend=backend, **config)
    theirs = [torch.tensor(p, requires_grad=True) for p in initial]
    kwargs = {key: value for key, value in config.items() if key != "maximize"}  # lion-pytorch has no maximize
    torch_optimizer = lion_pytorch.Lion(theirs, **kwargs)
    sign = -1.0 if config.get("maximize", False) else 1.0
    for step_grads in grads:
        opt.step(step_grads)
        for tensor, grad in zip(theirs, step_grads):
            tensor.grad = torch.tensor(sign * grad)
        torch_optimizer.step()
    worst = 0.0
    for index, (mine, tensor) in enumerate(zip(ours, theirs)):
        worst = max(worst, relative_difference(mine, tensor.detach().numpy()))
        torch_state = torch_optimizer.state[tensor]
        assert set(opt.state[index]) == set(torch_state) == {"exp_avg"}
        worst = max(worst, relative_difference(opt.state[index]["exp_avg"], torch_state["exp_avg"].numpy()))
    measured["torch_worst"]["Lion (lion-pytorch)"] = max(measured["torch_worst"]["Lion (lion-pytorch)"], worst)
    assert worst <= 1e-12, f"Lion {config}: relative difference {worst:.2e}"
