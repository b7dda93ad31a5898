"""torch: NumPy classes and ``fastopt.torch`` against torch.optim, lion-pytorch, torch.distributed.

Agreement is measured in float64 as ``max|fastopt - torch| / max|torch|`` per tensor, at most
1e-12 (torch.optim's for-loop implementation, ``foreach=False``, contracts multiply-adds into FMA
and its sqrt is not correctly rounded, so a few ulp of difference are expected, not bit
identity); the worst value per optimizer is added to the end-of-run summary. The NumPy classes run
twelve steps of every configuration of tests/specs.py. ``fastopt.torch``, the drop-in front end,
trains a small model beside torch.optim (lion-pytorch for Lion), once on the Cython backend, whose
steps after the first go through the multi-tensor gather (``Batch.gather_tensors``, one kernel
call per group), and once on the NumPy reference, which always takes the careful path (tensor by
tensor); float32 tensors step to the NumPy classes' bits; state dicts move both ways between torch
and fastopt; what torch users rely on (frozen parameters, replaced storage, kept gradients, mixed
dtypes, torch's signatures, defaults and messages) holds; a rejected step changes nothing, also
after ``optimizer.state`` is edited by hand (those marked ``hostile``). Under torch.distributed,
ZeroRedundancyOptimizer and DDP (two gloo processes on loopback running
examples/torch_distributed.py, the example users read) end bit-identical to single-process
training.
"""

import copy
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import relative_difference
from specs import SPECS, assert_bits_equal

torch = pytest.importorskip("torch")
import fastopt  # noqa: E402
import fastopt.torch as ft  # noqa: E402

try:
    import torch.distributed as dist  # noqa: E402
except ImportError:  # only the test under torch.distributed skips
    dist = None

STEPS = 30
TOLERANCE = 1e-12
FAST = "cython" in fastopt.available_backends() and ft._fast_path_available()
PATHS = [pytest.param("cython", id="fast", marks=pytest.mark.skipif(not FAST, reason="no fast path here")),
         pytest.param("reference", id="careful")]

# (optimizer, options): every option of each optimizer is switched on in at least one case.
CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-6)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.001, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.0001, alpha=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True, eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.5, amsgrad=True)),
    ("Adadelta", dict(lr=0.5)),
    ("Adadelta", dict(lr=1.0, rho=0.5, eps=1e-4, weight_decay=0.01, maximize=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, momentum_decay=0.01, eps=1e-6)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01)),  # rectified from step 6 on
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, eps=1e-6)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-4, 0.02), maximize=True)),
    ("ASGD", dict(lr=0.05, t0=2)),  # averaging from step 4 on
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.6, t0=0, weight_decay=0.1, maximize=True)),
    ("Adafactor", dict()),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-3, 1e-2), d=2.0, weight_decay=0.1, maximize=True)),
]
# One case per optimizer for the state-dict round trips (the fullest one).
ROUND_TRIPS = {name: options for name, options in CASES}


# ------------------------------------------------------------------------------------------------
# The NumPy classes against torch.optim: every configuration of tests/specs.py
# ------------------------------------------------------------------------------------------------
SPEC_STEPS = 12  # > 10, and enough to move every buffer well away from its initial value
SPEC_CASES = [(name, i) for name, spec in SPECS.items() if spec.in_torch for i in range(len(spec.torch_configs))]


@pytest.mark.parametrize("backend", ["reference", "numba", "cython"])
@pytest.mark.parametrize(("name", "config_index"), SPEC_CASES, ids=[f"{n}-{i}" for n, i in SPEC_CASES])
def test_numpy_optimizers_match_torch_optim(name, config_index, backend, measured):
    spec = SPECS[name]
    config = spec.torch_configs[config_index]
    rng = np.random.default_rng(20240611 + config_index)
    shapes = [(1031,), (7, 3), ()]  # odd sizes: torch's vector body and its scalar tail both run
    initial = [np.asarray(rng.standard_normal(shape)) for shape in shapes]
    # gradients whose scale varies by e^-3..e^2 across steps, as in semantics.md's check
    grads = [
        [np.asarray(rng.standard_normal(shape) * np.exp(rng.uniform(-3, 2))) for shape in shapes]
        for _ in range(SPEC_STEPS)
    ]

    ours = [p.copy() for p in initial]
    theirs = [torch.tensor(p, requires_grad=True) for p in initial]
    optimizer = spec.cls(ours, backend=backend, **config)
    torch_optimizer = getattr(torch.optim, name)(theirs, foreach=False, **spec.to_torch(config))
    for step_grads in grads:
        optimizer.step(step_grads)
        for tensor, grad in zip(theirs, step_grads):
            tensor.grad = torch.tensor(grad)
        torch_optimizer.step()

    worst = 0.0
    for index, (mine, tensor) in enumerate(zip(ours, theirs)):
        worst = max(worst, relative_difference(mine, tensor.detach().numpy()))
        torch_state = torch_optimizer.state[tensor]
        my_state = optimizer.state.get(index, {})
        assert set(my_state) == set(torch_state), f"state keys of params[{index}]"
        for key, value in torch_state.items():
            if key == "step":
                assert my_state[key] == int(value.item())
            else:
                worst = max(worst, relative_difference(my_state[key], value.numpy()))
    measured["torch_worst"][name] = max(measured["torch_worst"][name], worst)
    assert worst <= TOLERANCE, f"{name} {config}: relative difference {worst:.2e}"


def make_model(dtype=torch.float64) -> torch.nn.Module:
    """A small MLP with a LayerNorm: 2-d weights, biases, norm scales (11 tensors)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 24), torch.nn.LayerNorm(24), torch.nn.Tanh(),
        torch.nn.Linear(24, 24), torch.nn.Tanh(), torch.nn.Linear(24, 12), torch.nn.Tanh(), torch.nn.Linear(12, 1),
    ).to(dtype)


def data(dtype=torch.float64):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS, 16, 6, generator=generator, dtype=dtype)
    y = torch.randn(STEPS, 16, 1, generator=generator, dtype=dtype)
    return x, y


def train(model, optimizer, steps, start=0, scheduler=None, set_to_none=True):
    x, y = data(next(model.parameters()).dtype)
    for i in range(start, start + steps):
        def closure():
            optimizer.zero_grad(set_to_none=set_to_none)
            loss = torch.nn.functional.mse_loss(model(x[i]), y[i])
            loss.backward()
            return loss
        loss = optimizer.step(closure)
        assert loss is not None
        if scheduler is not None:
            scheduler.step()


def tensor_relative_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max|actual - expected| / max|expected|; infinite if either holds a NaN or an inf (a diverged
    run would otherwise compare as equal, because every comparison with NaN is false)."""
    actual, expected = torch.as_tensor(actual, dtype=torch.float64), torch.as_tensor(expected, dtype=torch.float64)
    if not (torch.isfinite(actual).all() and torch.isfinite(expected).all()):
        return float("inf")
    scale = expected.abs().max().item() if expected.numel() else 0.0
    diff = (actual - expected).abs().max().item() if expected.numel() else 0.0
    return diff / scale if scale > 0 else diff


def worst_difference(model_a, model_b, optimizer_a=None, optimizer_b=None) -> float:
    worst = 0.0
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        worst = max(worst, tensor_relative_difference(pa.detach(), pb.detach()))
        if optimizer_a is not None:
            state_a, state_b = optimizer_a.state[pa], optimizer_b.state[pb]
            assert set(state_a) == set(state_b)
            for key, value in state_b.items():
                if key == "step":
                    assert float(state_a[key]) == float(value)
                else:
                    worst = max(worst, tensor_relative_difference(state_a[key], value))
    return worst


def groups(model, options, split):
    """All parameters in one group, or in two with different hyperparameters."""
    params = list(model.parameters())
    if not split:
        return params
    second = {"params": params[4:], "lr": options.get("lr", 0.01) * 0.5}
    if "weight_decay" in options:
        second["weight_decay"] = options["weight_decay"] * 2
    return [{"params": params[:4]}, second]


def careful_steps(optimizer) -> list:
    """Count the steps that took the careful path."""
    calls = []
    original = optimizer.check  # the careful path's checks, made once per careful step

    def counted(inputs, plans):
        calls.append(1)
        return original(inputs, plans)

    optimizer.check = counted
    return calls



# ------------------------------------------------------------------------------------------------
# Rprop: bit for bit with torch.optim.Rprop, in both dtypes, inf and NaN included
# ------------------------------------------------------------------------------------------------
RPROP_CONFIGS = [dict(), dict(lr=0.1, etas=(0.3, 1.7), step_sizes=(1e-3, 0.5), maximize=True),
                 dict(lr=100.0), dict(lr=0.0, step_sizes=(0.0, 1.0))]


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", RPROP_CONFIGS, ids=["defaults", "maximize", "lr-above-max", "lr-zero"])
def test_rprop_is_bit_identical_to_torch_optim(config, dtype, backend, measured):
    """Rprop rounds only ``Delta * f`` (once, as torch does) and ``theta - sign * Delta``, where
    torch's FMA cannot round differently (the product is exact): so fastopt gives torch's bits,
    in float32 too. 30 steps of gradients whose sign repeats and flips at random, of scales 1e-3
    to 1e3, with NaN, inf, signed zeros and subnormals every seventh step."""
    rng = np.random.default_rng(7)
    n = 1003  # torch's vector body and its scalar tail
    initial = rng.standard_normal(n).astype(dtype)
    ours, theirs = initial.copy(), torch.tensor(initial.copy(), requires_grad=True)
    optimizer = fastopt.Rprop([ours], backend=backend, **config)
    reference = torch.optim.Rprop([theirs], foreach=False, **config)
    tiny = np.finfo(dtype).smallest_subnormal
    for step in range(30):
        grad = (rng.standard_normal(n) * rng.choice([1e-3, 1.0, 1e3])).astype(dtype)
        if step % 7 == 3:
            grad[:20] = [np.nan, np.inf, -np.inf, 0.0, -0.0] * 4
            grad[20:40] = rng.choice([0.0, -0.0, tiny, -tiny], 20)
        optimizer.step([grad])
        theirs.grad = torch.tensor(grad)
        reference.step()
    torch_state = reference.state[theirs]
    worst = relative_difference(ours, theirs.detach().numpy())
    measured["torch_worst"][f"Rprop {np.dtype(dtype).name} (bit for bit)"] = max(
        measured["torch_worst"][f"Rprop {np.dtype(dtype).name} (bit for bit)"], 0.0 if np.isnan(worst) else worst)
    assert_bits_equal(ours, theirs.detach().numpy(), "param")
    for key in ("prev", "step_size"):
        assert_bits_equal(optimizer.state[0][key], torch_state[key].numpy(), key)
    assert optimizer.state[0]["step"] == int(torch_state["step"].item()) == 30


def test_rprop_float32_eta_minus_that_rounds_to_one_is_where_torch_differs():
    """The one documented difference (fastopt.rprop's docstring): torch finds the flips by
    comparing its multiplier with eta_minus in float32; an eta_minus that rounds to 1.0 there also
    matches the multiplier 1 of every element whose product is 0, the first step's included, so
    torch zeroes every such derivative and never moves a weight. fastopt zeroes exactly the flips."""
    etas = (1 - 1e-9, 1.2)
    ours = np.zeros(2, np.float32)
    theirs = torch.zeros(2, requires_grad=True)
    optimizer, reference = fastopt.Rprop([ours], etas=etas), torch.optim.Rprop([theirs], etas=etas, foreach=False)
    for _ in range(3):
        grad = np.array([1.0, -1.0], np.float32)
        optimizer.step([grad])
        theirs.grad = torch.tensor(grad)
        reference.step()
    sizes = [np.float32(0.01)]
    for _ in range(2):  # the sign repeats: the step size grows by eta_plus
        sizes.append(sizes[-1] * np.float32(1.2))
    expected = np.float32(0.0) - sizes[0] - sizes[1] - sizes[2]
    assert ours.tolist() == [expected, -expected]
    assert theirs.detach().tolist() == [0.0, 0.0]


# ------------------------------------------------------------------------------------------------
# Training runs
# ------------------------------------------------------------------------------------------------
def train_side_by_side(*runs, schedule):
    """STEPS training steps of each ``(model, optimizer)`` on the same data, interleaved; with
    ``schedule`` an exponential lr schedule changes lr every step (and so the scalars of every
    later step)."""
    schedulers = [torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95) if schedule else None for _, opt in runs]
    x, y = data()
    for i in range(STEPS):
        for (model, opt), sched in zip(runs, schedulers):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x[i]), y[i]).backward()
            opt.step()
            if sched is not None:
                sched.step()


@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize("split", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_training_matches_torch_optim(name, options, split, backend, measured):
    ours, theirs = make_model(), make_model()
    optimizer = getattr(ft, name)(groups(ours, options, split), backend=backend, **options)
    reference = getattr(torch.optim, name)(groups(theirs, options, split), foreach=False, **options)
    careful = careful_steps(optimizer)
    train_side_by_side((ours, optimizer), (theirs, reference), schedule=split)
    worst = worst_difference(ours, theirs, optimizer, reference)
    measured["torch_worst"][f"torch.{name}"] = max(measured["torch_worst"][f"torch.{name}"], worst)
    assert worst <= TOLERANCE, f"{name} {options}: relative difference {worst:.2e}"
    moved = max(tensor_relative_difference(p.detach(), q.detach()) for p, q in zip(ours.parameters(), make_model().parameters()))
    assert moved > 1e-3, "the parameters barely moved: the comparison would prove nothing"
    # The fast path took every step but the first, which creates the state (Adagrad's exists from
    # the constructor on; SGD without momentum has none). Adafactor's kernel takes whole tensors:
    # every step is per parameter.
    first_steps = 0 if name == "Adagrad" or (name == "SGD" and not options.get("momentum")) else 1
    whole_tensor = optimizer._algorithm.whole_tensor
    assert len(careful) == (STEPS if backend == "reference" or whole_tensor else first_steps)


LION_CASES = [
    dict(lr=1e-3),
    dict(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1),
    dict(lr=1e-3, weight_decay=0.5, decoupled_weight_decay=True),
]


@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize("split", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("options", LION_CASES, ids=["defaults", "betas-wd", "decoupled"])
def test_lion_training_matches_lion_pytorch(options, split, backend, measured):
    lion_pytorch = pytest.importorskip("lion_pytorch")
    ours, theirs = make_model(), make_model()
    optimizer = ft.Lion(groups(ours, options, split), backend=backend, **options)
    reference = lion_pytorch.Lion(groups(theirs, options, split), **options)
    careful = careful_steps(optimizer)
    train_side_by_side((ours, optimizer), (theirs, reference), schedule=split)
    worst = worst_difference(ours, theirs, optimizer, reference)
    measured["torch_worst"]["torch.Lion (lion-pytorch)"] = max(measured["torch_worst"]["torch.Lion (lion-pytorch)"], worst)
    assert worst <= TOLERANCE, f"Lion {options}: relative difference {worst:.2e}"
    assert len(careful) == (STEPS if backend == "reference" else 1)


@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "Adamax", "NAdam", "RAdam", "Lion", "Rprop", "ASGD", "AdaBelief", "Adafactor", "ADOPT", "LAMB"])
def test_float32_is_bit_identical_to_fastopt_on_numpy(name, backend):
    """The adapter adds no arithmetic: float32 tensors step to the same bits as NumPy arrays
    stepped by the fastopt class itself (RMSprop's alpha is fastopt's rho)."""
    options = {"SGD": dict(lr=0.1, momentum=0.9), "Adagrad": {}, "RMSprop": dict(alpha=0.9, centered=True),
               "Adam": dict(amsgrad=True), "AdamW": {}, "Adadelta": dict(weight_decay=0.1),
               "Adamax": dict(weight_decay=0.1), "NAdam": dict(weight_decay=0.1, decoupled_weight_decay=True),
               "RAdam": dict(weight_decay=0.1), "Lion": dict(lr=1e-3, weight_decay=0.1),
               "Rprop": dict(etas=(0.4, 1.3), maximize=True), "ASGD": dict(lr=0.05, t0=2, weight_decay=0.1),
               "AdaBelief": dict(lr=0.01, amsgrad=True, weight_decay=0.1),
               "Adafactor": dict(lr=0.05, weight_decay=0.1, maximize=True),
               "ADOPT": dict(lr=0.01, weight_decay=0.1, decouple=True),
               "LAMB": dict(lr=0.01, weight_decay=0.1, eps_root=1e-9, maximize=True)}[name]
    rng = np.random.default_rng(3)
    shapes = [(5, 7), (7,), (), (40_000,), (0,)]
    initial = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    tensors = [torch.tensor(a) for a in initial]
    arrays = [a.copy() for a in initial]
    numpy_options = {("rho" if k == "alpha" else k): v for k, v in options.items()}
    if name == "RMSprop":
        numpy_options.setdefault("lr", 1e-2)  # torch's default, not fastopt's
    optimizer, numpy_optimizer = getattr(ft, name)(tensors, backend=backend, **options), getattr(fastopt, name)(arrays, **numpy_options)
    for _ in range(8):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        optimizer.step()
        numpy_optimizer.step(grads)
    for t, a in zip(tensors, arrays):
        np.testing.assert_array_equal(t.numpy(), a)


# The authors' AdaBelief (adabelief-pytorch), without its default rectification (fastopt refuses it)
ADABELIEF_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True),
    dict(lr=0.01, weight_decay=0.1, weight_decouple=False, eps=1e-8),
    dict(lr=0.01, weight_decay=0.01, fixed_decay=True, amsgrad=True),
]


def _adabelief_pytorch():
    """The authors' class; it prints a notice at construction, which is kept out of the output."""
    import contextlib
    import io

    reference_class = pytest.importorskip("adabelief_pytorch").AdaBelief

    def make(*args, **kwargs):
        with contextlib.redirect_stdout(io.StringIO()):
            return reference_class(*args, rectify=False, print_change_log=False, **kwargs)

    return make


@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize("split", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("options", ADABELIEF_CASES, ids=["defaults", "betas-wd-amsgrad", "l2", "fixed-decay"])
def test_adabelief_training_matches_the_authors_package(options, split, backend, measured):
    reference_class = _adabelief_pytorch()
    ours, theirs = make_model(), make_model()
    optimizer = ft.AdaBelief(groups(ours, options, split), backend=backend, **options)
    reference = reference_class(groups(theirs, options, split), **options)
    careful = careful_steps(optimizer)
    train_side_by_side((ours, optimizer), (theirs, reference), schedule=split)
    worst = worst_difference(ours, theirs, optimizer, reference)
    key = "torch.AdaBelief (adabelief-pytorch)"
    measured["torch_worst"][key] = max(measured["torch_worst"][key], worst)
    assert worst <= TOLERANCE, f"AdaBelief {options}: relative difference {worst:.2e}"
    moved = max(tensor_relative_difference(p.detach(), q.detach()) for p, q in zip(ours.parameters(), make_model().parameters()))
    assert moved > 1e-3, "the parameters barely moved: the comparison would prove nothing"
    assert len(careful) == (STEPS if backend == "reference" else 1)


def moved_to_the_other(reference_class, ours, options, direction):
    """15 steps with one of an authors' package's class and fastopt's, the state moved to the other,
    15 more; the worst relative difference from 30 steps of the package alone."""
    first, second = (reference_class, ours) if direction == "package-to-fastopt" else (ours, reference_class)
    model = make_model()
    optimizer = first(model.parameters(), **options)
    train(model, optimizer, STEPS // 2)
    continued = second(model.parameters(), **options)
    continued.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    train(model, continued, STEPS - STEPS // 2, start=STEPS // 2)
    uninterrupted = make_model()
    reference = reference_class(uninterrupted.parameters(), **options)
    train(uninterrupted, reference, STEPS)
    return worst_difference(model, uninterrupted, continued, reference)


@pytest.mark.parametrize("direction", ["package-to-fastopt", "fastopt-to-package"])
def test_adabelief_state_dict_moves_between_the_authors_package_and_fastopt(direction):
    """15 steps with one, the state moved to the other, 15 more: as 30 steps of the package (whose
    step counter is a Python int, fastopt's a float64 tensor; each loads the other's)."""
    reference_class = _adabelief_pytorch()
    options = ADABELIEF_CASES[1]
    assert moved_to_the_other(reference_class, ft.AdaBelief, options, direction) <= TOLERANCE


def test_adabelief_signature_is_the_authors_and_refuses_rectify():
    import inspect

    reference = pytest.importorskip("adabelief_pytorch").AdaBelief
    theirs = inspect.signature(reference).parameters
    ours = inspect.signature(ft.AdaBelief).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for name, parameter in theirs.items():  # the same defaults, but rectify's (True there)
        assert ours[name].default == (False if name == "rectify" else parameter.default), name
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"rectify=True \(RAdam's rectification"):
        ft.AdaBelief([p], rectify=True)
    with pytest.raises(TypeError, match="fixed_decay must be a bool, got NoneType None"):
        ft.AdaBelief([p], fixed_decay=None)
    with pytest.raises(TypeError, match="weight_decouple must be a bool, got int 1"):
        ft.AdaBelief([p], weight_decouple=1)
    with pytest.raises(ValueError, match="Invalid epsilon value: -1.0"):
        ft.AdaBelief([p], eps=-1.0)
    assert ft.AdaBelief([p], degenerated_to_sgd=False, print_change_log=False).defaults == dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0, amsgrad=False, maximize=False)


# The authors' ADOPT (torch-adopt, GitHub iShohei220/adopt): the package on PyPI named "adopt" is
# someone else's
def _clip_cube_root(step):
    return step ** (1 / 3)


ADOPT_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.1, decouple=True, eps=1e-8),
    # without clipping, maximize=True (gradient ascent on this model) amplifies ulp differences
    # past 1e-8 in 30 steps: each option is compared on its own
    dict(lr=0.01, clip_lambda=None),
    dict(lr=0.01, clip_lambda=_clip_cube_root, weight_decay=0.01, decouple=True, maximize=True),
]


@pytest.mark.filterwarnings("ignore:Use _accelerator_graph_capture_health_check:DeprecationWarning")  # torch-adopt on torch 2.13
@pytest.mark.filterwarnings("ignore:`torch._utils.is_compiling` is deprecated:UserWarning")
@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize("split", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("options", ADOPT_CASES, ids=["defaults", "betas-l2", "decouple", "no-clip", "clip-fn-maximize"])
def test_adopt_training_matches_the_authors_package(options, split, backend, measured):
    reference_class = pytest.importorskip("adopt").ADOPT
    ours, theirs = make_model(), make_model()
    optimizer = ft.ADOPT(groups(ours, options, split), backend=backend, **options)
    reference = reference_class(groups(theirs, options, split), foreach=False, **options)
    careful = careful_steps(optimizer)
    train_side_by_side((ours, optimizer), (theirs, reference), schedule=split)
    worst = worst_difference(ours, theirs, optimizer, reference)
    key = "torch.ADOPT (torch-adopt)"
    measured["torch_worst"][key] = max(measured["torch_worst"][key], worst)
    assert worst <= TOLERANCE, f"ADOPT {options}: relative difference {worst:.2e}"
    moved = max(tensor_relative_difference(p.detach(), q.detach()) for p, q in zip(ours.parameters(), make_model().parameters()))
    assert moved > 1e-3, "the parameters barely moved: the comparison would prove nothing"
    assert len(careful) == (STEPS if backend == "reference" else 1)


@pytest.mark.filterwarnings("ignore:Use _accelerator_graph_capture_health_check:DeprecationWarning")  # torch-adopt on torch 2.13
@pytest.mark.filterwarnings("ignore:`torch._utils.is_compiling` is deprecated:UserWarning")
@pytest.mark.parametrize("direction", ["package-to-fastopt", "fastopt-to-package"])
def test_adopt_state_dict_moves_between_the_authors_package_and_fastopt(direction):
    """15 steps with one, the state moved to the other, 15 more: as 30 steps of the package (whose
    step counter is a float32 tensor, fastopt's a float64 one; each loads the other's)."""
    reference_class = pytest.importorskip("adopt").ADOPT
    options = ADOPT_CASES[1]
    assert moved_to_the_other(reference_class, ft.ADOPT, options, direction) <= TOLERANCE


def test_adopt_signature_is_the_authors():
    import inspect
    import pickle

    reference = pytest.importorskip("adopt").ADOPT
    theirs = inspect.signature(reference).parameters
    ours = inspect.signature(ft.ADOPT).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for name, parameter in theirs.items():  # the same defaults; clip_lambda's computes the same values
        if name == "clip_lambda":
            assert [ours[name].default(s) for s in range(50)] == [parameter.default(float(s)) for s in range(50)]
        else:
            assert ours[name].default == parameter.default, name
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="clip_lambda must be None or a callable, got float 0.5"):
        ft.ADOPT([p], clip_lambda=0.5)
    with pytest.raises(TypeError, match="decouple must be a bool, got int 1"):
        ft.ADOPT([p], decouple=1)
    with pytest.raises(ValueError, match="Invalid epsilon value: -1.0"):
        ft.ADOPT([p], eps=-1.0)
    with pytest.raises(ValueError, match="capturable=True is not supported"):
        ft.ADOPT([p], capturable=True)
    optimizer = ft.ADOPT([p])
    assert optimizer.defaults == dict(lr=1e-3, betas=(0.9, 0.9999), eps=1e-6, weight_decay=0.0, decouple=False,
                                      maximize=False, foreach=None, capturable=False, differentiable=False, fused=None)
    assert pickle.loads(pickle.dumps(optimizer)).clip_lambda is fastopt.adopt.quarter_power


@pytest.mark.parametrize("backend", PATHS)
def test_adopt_clip_lambda_is_an_attribute_read_at_every_step(backend):
    """As in the package: assigning ``opt.clip_lambda`` changes the next step; a value that is not
    a real number >= 0 is a ValueError naming clip_lambda, and the step changes nothing."""
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = ft.ADOPT([p], lr=1.0, betas=(0.0, 0.5), backend=backend)
    for g in (1.0, 8.0):  # step 1 sets v = 1; step 2 normalises 8 by 1 and clips it at 1**0.25 = 1
        p.grad = torch.full((3,), g, dtype=torch.float64)
        optimizer.step()
    assert p.tolist() == [-1.0] * 3
    optimizer.clip_lambda = lambda step: 0.5
    optimizer.step()
    assert p.tolist() == [-1.5] * 3
    optimizer.clip_lambda = lambda step: -1.0
    with pytest.raises(ValueError, match=r"Invalid clip_lambda value: clip_lambda\(3\) = -1.0"):
        optimizer.step()
    assert p.tolist() == [-1.5] * 3 and float(optimizer.state[p]["step"]) == 3


# ------------------------------------------------------------------------------------------------
# State dicts, both directions
# ------------------------------------------------------------------------------------------------
def _reference_class(name):
    if name == "Lion":
        return pytest.importorskip("lion_pytorch").Lion
    return getattr(torch.optim, name)


@pytest.mark.parametrize("direction", ["torch-to-fastopt", "fastopt-to-torch"])
@pytest.mark.parametrize("name", [*ROUND_TRIPS, "Lion"])
def test_state_dict_moves_between_torch_and_fastopt(name, direction, measured):
    """Train 15 steps with one library, move model and optimizer state to the other, train 15 more;
    compare with 30 steps made by torch.optim (lion-pytorch for Lion) alone: uninterrupted, or,
    when torch resumes, saved and reloaded by torch at step 15 too (torch's load_state_dict casts
    NAdam's float32 mu_product to a float64 parameter's dtype, which changes its later steps
    slightly; fastopt keeps it float32, as an uninterrupted torch run does)."""
    options = LION_CASES[1] if name == "Lion" else ROUND_TRIPS[name]
    reference_class = _reference_class(name)
    kwargs = (lambda cls: {}) if name == "Lion" else (lambda cls: dict(foreach=False) if cls is reference_class else {})
    first, second = (reference_class, getattr(ft, name)) if direction == "torch-to-fastopt" else (getattr(ft, name), reference_class)

    def run(first_class, second_class):
        model = make_model()
        optimizer = first_class(model.parameters(), **kwargs(first_class), **options)
        train(model, optimizer, STEPS // 2)
        saved_model, saved = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
        resumed = make_model()
        resumed.load_state_dict(saved_model)
        continued = second_class(resumed.parameters(), **kwargs(second_class), **options)
        continued.load_state_dict(saved)
        train(resumed, continued, STEPS - STEPS // 2, start=STEPS // 2)
        return resumed, continued

    resumed, continued = run(first, second)
    if direction == "fastopt-to-torch":  # torch's own checkpoint, loaded by torch
        uninterrupted, reference = run(reference_class, reference_class)
    else:
        uninterrupted = make_model()
        reference = reference_class(uninterrupted.parameters(), **kwargs(reference_class), **options)
        train(uninterrupted, reference, STEPS)
    worst = worst_difference(resumed, uninterrupted, continued, reference)
    assert worst <= TOLERANCE, f"{direction} {name}: relative difference {worst:.2e}"
    if second is not reference_class and name not in ("SGD", "Lion"):
        assert all(s["step"].dtype == torch.float64 and s["step"].dim() == 0 for s in continued.state.values())
    if second is not reference_class and name == "NAdam":
        assert all(s["mu_product"].dtype == torch.float32 for s in continued.state.values())


def test_step_is_float64_and_counts_past_float32s_limit():
    """torch's float32 step stops at 2**24; fastopt's float64 step keeps counting, and
    torch.optim.Adam (for-loop) loads it and carries on from it."""
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = ft.Adam([p])
    p.grad = torch.ones(3, dtype=torch.float64)
    optimizer.step()
    optimizer.state[p]["step"].fill_(2.0**24)
    optimizer.step()  # the fast path reads the counter where it is
    assert optimizer.state[p]["step"].item() == 2.0**24 + 1
    reference = torch.optim.Adam([p], foreach=False)
    reference.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    reference.step()
    assert reference.state[p]["step"].item() == 2.0**24 + 2


def test_pickle_round_trip_of_state_dict(tmp_path):
    model = make_model()
    optimizer = ft.Adam(model.parameters(), lr=0.01)
    train(model, optimizer, 3)
    torch.save(optimizer.state_dict(), tmp_path / "opt.pt")
    restored = ft.Adam(model.parameters(), lr=0.01)
    restored.load_state_dict(torch.load(tmp_path / "opt.pt"))
    for p in model.parameters():
        for key, value in optimizer.state[p].items():
            assert torch.equal(restored.state[p][key], value)


def test_a_deep_copied_optimizer_steps_on_its_own():
    model = make_model()
    optimizer = ft.Adam(model.parameters(), lr=0.01)
    train(model, optimizer, 2)
    twin_model = copy.deepcopy(model)
    twin = ft.Adam(twin_model.parameters(), lr=0.01)
    twin.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    clone = copy.deepcopy(optimizer)  # torch pickles only defaults, state and groups
    assert clone.backend == optimizer.backend
    train(model, optimizer, 3, start=2)
    train(twin_model, twin, 3, start=2)
    assert worst_difference(model, twin_model, optimizer, twin) == 0.0


# ------------------------------------------------------------------------------------------------
# Behaviour torch users rely on, on both paths
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", PATHS)
def test_parameters_without_gradient_are_skipped(backend):
    model = make_model()
    frozen = model[0].weight
    before = frozen.detach().clone()
    optimizer = ft.Adam(model.parameters(), lr=0.1, backend=backend)
    x, y = data()
    for i in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x[i]), y[i]).backward()
        frozen.grad = None
        optimizer.step()
    assert torch.equal(frozen.detach(), before)
    assert frozen not in optimizer.state or not optimizer.state[frozen]
    assert all(float(optimizer.state[p]["step"]) == 3 for p in model.parameters() if p is not frozen)
    # It gets a gradient again: its first step (the careful path), then the fast path again.
    careful = careful_steps(optimizer)
    train(model, optimizer, 2, start=3)
    assert float(optimizer.state[frozen]["step"]) == 2
    assert len(careful) == 2  # the group's counters differ now: one call each, every step


@pytest.mark.parametrize("backend", PATHS)
def test_replaced_parameter_storage_is_noticed(backend):
    """``p.data = ...`` (e.g. a reload) must be stepped where the parameter now lives."""
    ours, theirs = make_model(), make_model()
    optimizer = ft.SGD(ours.parameters(), lr=0.1, momentum=0.9, backend=backend)
    reference = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, foreach=False)
    train(ours, optimizer, 2)
    train(theirs, reference, 2)
    for p in ours.parameters():
        p.data = p.data.clone()  # new memory, same values
    train(ours, optimizer, 3, start=2)
    train(theirs, reference, 3, start=2)
    assert worst_difference(ours, theirs) <= TOLERANCE


@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize("set_to_none", [True, False], ids=["new-gradients", "kept-gradients"])
def test_parameters_and_gradients_stay_where_they_are(backend, set_to_none):
    """No tensor is moved or copied: parameters keep their storage (and their data_ptr), gradients
    kept between steps stay the very same tensors, and training still matches torch.optim."""
    ours, theirs = make_model(), make_model()
    pointers = [p.data_ptr() for p in ours.parameters()]
    optimizer = ft.Adam(ours.parameters(), lr=0.01, backend=backend)
    reference = torch.optim.Adam(theirs.parameters(), lr=0.01, foreach=False)
    train(ours, optimizer, 3, set_to_none=set_to_none)
    grads = [p.grad for p in ours.parameters()]
    train(ours, optimizer, STEPS - 3, start=3, set_to_none=set_to_none)
    train(theirs, reference, STEPS, set_to_none=set_to_none)
    assert [p.data_ptr() for p in ours.parameters()] == pointers
    assert all(p.is_contiguous() for p in ours.parameters())
    assert all((p.grad is g) == (not set_to_none) for p, g in zip(ours.parameters(), grads))
    assert worst_difference(ours, theirs, optimizer, reference) <= TOLERANCE


@pytest.mark.parametrize("backend", PATHS)
def test_non_contiguous_gradient_is_read_through_a_copy(backend):
    """A transposed gradient gives the same bits as its contiguous copy (element order kept)."""
    p = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
    q = p.detach().clone().requires_grad_()
    grad = torch.arange(12, dtype=torch.float64).reshape(4, 3).t()
    companions = [torch.zeros(2, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    optimizer = ft.SGD([p, *companions], lr=0.1, momentum=0.5, backend=backend)
    twin = ft.SGD([q], lr=0.1, momentum=0.5, backend=backend)
    for _ in range(3):
        p.grad, q.grad = grad, grad.contiguous()
        for c in companions:
            c.grad = torch.ones(2, dtype=torch.float64)
        optimizer.step()
        twin.step()
    assert torch.equal(p.detach(), q.detach())
    assert not torch.equal(p.detach(), torch.ones(3, 4, dtype=torch.float64))


@pytest.mark.parametrize("backend", PATHS)
def test_float32_and_float64_parameters_in_one_group(backend):
    """A group of mixed dtypes steps tensor by tensor (one batch holds one dtype)."""
    a32, a64 = torch.ones(5, dtype=torch.float32, requires_grad=True), torch.ones(5, dtype=torch.float64, requires_grad=True)
    b32, b64 = torch.ones(5, dtype=torch.float32), torch.ones(5, dtype=torch.float64)
    optimizer = ft.Adam([a32, a64], lr=0.1, backend=backend)
    reference32, reference64 = fastopt.Adam([b32.numpy()], lr=0.1), fastopt.Adam([b64.numpy()], lr=0.1)
    for step in range(4):
        a32.grad, a64.grad = torch.full((5,), 0.5 + step, dtype=torch.float32), torch.full((5,), 0.5 + step, dtype=torch.float64)
        optimizer.step()
        reference32.step([a32.grad.numpy()])
        reference64.step([a64.grad.numpy()])
    assert torch.equal(a32.detach(), b32) and torch.equal(a64.detach(), b64)


def test_importing_fastopt_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, fastopt; fastopt.Adam; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_the_removed_pack_small_tensors_is_refused():
    """Deprecated since fastopt.torch steps every tensor where it is; now an unknown argument."""
    p = torch.zeros(3, requires_grad=True)
    with pytest.raises(TypeError, match="pack_small_tensors"):
        ft.Adam([p], pack_small_tensors=True)


def test_lion_signature_is_lion_pytorchs():
    import inspect

    lion_pytorch = pytest.importorskip("lion_pytorch")
    ours = inspect.signature(ft.Lion).parameters
    theirs = inspect.signature(lion_pytorch.Lion).parameters
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name
    assert list(ours)[: len(theirs)] == list(theirs)
    with pytest.raises(ValueError, match="use_triton=True is not supported"):
        ft.Lion([torch.zeros(2, requires_grad=True)], use_triton=True)


@pytest.mark.parametrize("name", ["Adadelta", "Adamax", "NAdam", "RAdam", "Rprop", "ASGD"])
def test_signatures_and_defaults_are_torchs(name):
    import inspect

    ours = inspect.signature(getattr(ft, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    for key, parameter in theirs.items():
        assert key in ours, key
        assert ours[key].default == parameter.default, key
        assert ours[key].kind == parameter.kind, key
    p = [torch.zeros(2, requires_grad=True)]
    assert ft.__dict__[name](p).defaults == {k: v for k, v in getattr(torch.optim, name)(p).defaults.items()}


# ------------------------------------------------------------------------------------------------
# Validation: torch's messages, and a rejected step changes nothing
# ------------------------------------------------------------------------------------------------
def test_hyperparameter_errors_use_torchs_messages():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        ft.Adam(p, lr=-1.0)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        ft.AdamW(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid alpha value: -0.5"):
        ft.RMSprop(p, alpha=-0.5)
    ft.RMSprop(p, alpha=1.5)  # torch has no upper bound (fastopt.RMSprop wants rho < 1)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        ft.SGD(p, nesterov=True)
    with pytest.raises(ValueError, match="Invalid initial_accumulator_value value: -1"):
        ft.Adagrad(p, initial_accumulator_value=-1.0)
    with pytest.raises(ValueError, match="capturable=True is not supported"):
        ft.Adam(p, capturable=True)
    with pytest.raises(ValueError, match="Invalid rho value: 1.5"):
        ft.Adadelta(p, rho=1.5)
    ft.Adadelta(p, rho=1.0)  # as torch
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        ft.Adamax(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid momentum_decay value: -1.0"):
        ft.NAdam(p, momentum_decay=-1.0)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: -0.1"):
        ft.RAdam(p, betas=(-0.1, 0.999))
    with pytest.raises(ValueError, match="Invalid weight_decay value: -0.1"):
        ft.Lion(p, weight_decay=-0.1)
    with pytest.raises(ValueError, match="differentiable=True is not supported"):
        ft.NAdam(p, differentiable=True)
    with pytest.raises(ValueError, match="Invalid eta values: 0.5, 0.9"):
        ft.Rprop(p, etas=(0.5, 0.9))
    with pytest.raises(ValueError, match="Invalid step_sizes values: 0.1, 0.01"):
        ft.Rprop(p, step_sizes=(0.1, 0.01))  # torch does not check these
    with pytest.raises(ValueError, match="capturable=True is not supported"):
        ft.Rprop(p, capturable=True)
    ft.Rprop(p, foreach=True)  # stored, as in torch; fastopt's path steps it


@pytest.mark.parametrize("backend", PATHS)
def test_a_rejected_step_changes_nothing(backend):
    """A bad lr set by hand in the second group is found before the first group is updated."""
    a, b = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    optimizer = ft.Adam([{"params": [a]}, {"params": [b]}], lr=0.1, backend=backend)
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    optimizer.step()
    before = (a.detach().clone(), copy.deepcopy(optimizer.state_dict()))
    optimizer.param_groups[1]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        optimizer.step()
    assert torch.equal(a.detach(), before[0])
    assert torch.equal(optimizer.state[a]["exp_avg"], before[1]["state"][0]["exp_avg"])
    assert optimizer.state[a]["step"].item() == 1


# Task: the cached re-validation compares types, not only values.
TYPE_EDITS = [
    ("Adam", "maximize", 0, TypeError, "maximize must be a bool, got int 0"),
    ("Adam", "amsgrad", 0, TypeError, "amsgrad must be a bool, got int 0"),
    ("Adam", "lr", "0.1", TypeError, "lr must be a real number, got str '0.1'"),
    ("Adam", "betas", [0.9, "0.999"], TypeError, "betas[1] must be a real number, got str '0.999'"),
    ("Adam", "eps", 1e-8 + 0j, TypeError, "eps must be a real number, got complex"),
    ("SGD", "nesterov", 0, TypeError, "nesterov must be a bool, got int 0"),
    ("RMSprop", "centered", 0, TypeError, "centered must be a bool, got int 0"),
    ("NAdam", "decoupled_weight_decay", 0, TypeError, "decoupled_weight_decay must be a bool, got int 0"),
    ("RAdam", "maximize", 0.0, TypeError, "maximize must be a bool, got float 0.0"),
    ("Lion", "maximize", 0, TypeError, "maximize must be a bool, got int 0"),
    ("Adam", "foreach", 0, TypeError, "foreach must be a bool, got int 0"),
]


@pytest.mark.hostile
@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize(("name", "key", "value", "error", "message"), TYPE_EDITS,
                         ids=[f"{n}-{k}-{type(v).__name__}" for n, k, v, *_ in TYPE_EDITS])
def test_a_hyperparameter_of_another_type_is_validated_again(name, key, value, error, message, backend):
    """``0 == False`` and ``1e-8 + 0j == 1e-8``: a cache comparing values only would let these
    through after the first step; the re-validation compares types too, and the step is rejected
    before anything changes."""
    p = torch.ones(4, dtype=torch.float64, requires_grad=True)
    optimizer = getattr(ft, name)([p], backend=backend, **({"lr": 0.01} if name != "Lion" else {}))
    for _ in range(2):
        p.grad = torch.full((4,), 0.5, dtype=torch.float64)
        optimizer.step()
    before = (p.detach().clone(), copy.deepcopy(optimizer.state_dict()["state"]))
    optimizer.param_groups[0][key] = value
    with pytest.raises(error, match=re.escape(message)):
        optimizer.step()
    assert torch.equal(p.detach(), before[0])
    for k, v in before[1].get(0, {}).items():
        assert torch.equal(optimizer.state[p][k], v), k


@pytest.mark.parametrize("backend", PATHS)
def test_a_tensor_lr_changed_in_place_is_validated_again(backend):
    p = torch.ones(3, requires_grad=True)
    lr = torch.tensor(0.1)
    optimizer = ft.Adam([p], lr=lr, backend=backend)
    p.grad = torch.ones(3)
    optimizer.step()
    lr.fill_(-1.0)
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        optimizer.step()


@pytest.mark.hostile
@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "Adamax", "NAdam", "RAdam", "Lion", "Rprop", "ASGD", "AdaBelief", "Adafactor", "ADOPT", "LAMB"])
def test_a_huge_hyperparameter_overflows_float32_silently(name, backend):
    """Valid hyperparameters beyond float32's range become inf in float32's arithmetic (IEEE), as
    they do in the NumPy core: no RuntimeWarning (tests run with warnings as errors), no partial
    step."""
    p = torch.ones(3, dtype=torch.float32, requires_grad=True)
    key = {"RMSprop": "lr", "Adadelta": "lr"}.get(name, "lr")
    huge, small = 1e39, 0.01
    if name == "Rprop":  # its lr is read at the first step only: the bound of its step sizes instead
        key, huge, small = "step_sizes", (1e-6, 1e39), (1e-6, 50)
    optimizer = getattr(ft, name)([p], backend=backend)
    for _ in range(3):
        p.grad = torch.full((3,), 0.5)
        optimizer.param_groups[0][key] = huge if _ else small
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            optimizer.step()


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: torch.zeros(3, dtype=torch.int32), TypeError, "int32; fastopt.torch steps float32, float64, float16, bfloat16, complex64 and complex128"),
        (lambda: torch.zeros(3, dtype=torch.float8_e4m3fn), TypeError, "float8_e4m3fn"),
        (lambda: torch.zeros(3, dtype=torch.int8), TypeError, "int8"),
        (lambda: torch.zeros(4, 6)[:, ::2].requires_grad_(), ValueError, "not contiguous, nor a dense tensor in permuted order"),
    ],
    ids=["int32", "float8", "int8", "non-contiguous"],  # meta: tests/test_torch_low_precision.py
)
def test_unsupported_parameters_are_rejected(make, error, message):
    with pytest.raises(error, match=message):
        ft.Adam([make()])


@pytest.mark.parametrize("backend", PATHS)
def test_sparse_gradients_are_rejected_before_any_update(backend):
    embedding = torch.nn.Embedding(10, 4, sparse=True).double()
    dense = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    optimizer = ft.Adam([dense, embedding.weight], lr=0.1, backend=backend)  # SGD and Adagrad take them
    before = embedding.weight.detach().clone()
    (embedding(torch.tensor([1, 2])).sum() + dense.sum()).backward()
    with pytest.raises(RuntimeError, match="Adam does not support sparse gradients"):
        optimizer.step()
    assert torch.equal(dense.detach(), torch.ones(4, dtype=torch.float64))
    assert torch.equal(embedding.weight.detach(), before)


def _two_parameter_adam(backend):
    a = torch.linspace(-1, 1, 6, dtype=torch.float64).requires_grad_()
    b = torch.linspace(1, 2, 4, dtype=torch.float64).requires_grad_()
    optimizer = ft.Adam([a, b], lr=0.1, backend=backend)
    for _ in range(2):  # the second step is the fast path on the Cython backend
        a.grad, b.grad = torch.full((6,), 0.5, dtype=torch.float64), torch.full((4,), 0.5, dtype=torch.float64)
        optimizer.step()
    return optimizer, a, b


# (label, edit of optimizer.state[b] after two steps, exception, message); each edit is on the second
# parameter, so that a check made during the update would show up as a changed first parameter.
STATE_EDITS = [
    ("buffer of another dtype", lambda s, a, b: s[b].update(exp_avg=torch.zeros(4)), ValueError,
     "['exp_avg'] must be a contiguous CPU tensor of its parameter's dtype and size"),
    ("buffer shorter than its parameter", lambda s, a, b: s[b].update(exp_avg=torch.zeros(2, dtype=torch.float64)), ValueError,
     "['exp_avg'] must be a contiguous CPU tensor of its parameter's dtype and size"),
    ("buffer not contiguous", lambda s, a, b: s[b].update(exp_avg=torch.zeros(8, dtype=torch.float64)[::2]), ValueError,
     "['exp_avg'] must be a contiguous CPU tensor of its parameter's dtype and size"),
    ("buffer is a list", lambda s, a, b: s[b].update(exp_avg=[0.0] * 4), TypeError, "['exp_avg'] must be a torch.Tensor, got list"),
    ("buffer is its parameter", lambda s, a, b: s[b].update(exp_avg=b.detach()), ValueError, "['exp_avg'] shares memory with its parameter"),
    ("buffer is another buffer", lambda s, a, b: s[b].update(exp_avg_sq=s[b]["exp_avg"]), ValueError,
     "['exp_avg_sq'] shares memory with optimizer.state"),
    ("buffer is another parameter", lambda s, a, b: s[b].update(exp_avg=a.detach()[:4]), ValueError,
     "['exp_avg'] shares memory with param_groups[0]['params'][0]"),
    ("buffer is another parameter's buffer", lambda s, a, b: s[b].update(exp_avg=s[a]["exp_avg"][:4]), ValueError,
     "['exp_avg'] shares memory with optimizer.state[param_groups[0]['params'][0]]['exp_avg']"),
    ("step is a string", lambda s, a, b: s[b].update(step="3"), ValueError, "['step'] must be a finite non-negative number, got '3'"),
    ("step is NaN", lambda s, a, b: s[b].update(step=torch.tensor(float("nan"), dtype=torch.float64)), ValueError,
     "['step'] must be a finite non-negative number, got nan"),
    ("entry is not a dict", lambda s, a, b: s.update({b: [1, 2]}), TypeError, "must be a dict, got list"),
]


@pytest.mark.hostile
@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize(("label", "edit", "error", "message"), STATE_EDITS, ids=[e[0] for e in STATE_EDITS])
def test_an_edited_state_is_rejected_before_anything_is_updated(label, edit, error, message, backend):
    optimizer, a, b = _two_parameter_adam(backend)
    edit(optimizer.state, a, b)
    before = [a.detach().clone(), b.detach().clone(), optimizer.state[a]["exp_avg"].clone()]
    a.grad, b.grad = torch.full((6,), 0.5, dtype=torch.float64), torch.full((4,), 0.5, dtype=torch.float64)
    with pytest.raises(error) as caught:
        optimizer.step()
    assert message in str(caught.value)
    assert torch.equal(a.detach(), before[0]) and torch.equal(b.detach(), before[1])
    assert torch.equal(optimizer.state[a]["exp_avg"], before[2]) and optimizer.state[a]["step"].item() == 2


@pytest.mark.hostile
@pytest.mark.parametrize("backend", PATHS)
def test_a_replaced_state_tensor_of_the_right_kind_is_used(backend):
    optimizer, a, b = _two_parameter_adam(backend)
    reference = fastopt.Adam([a.detach().clone().numpy(), b.detach().clone().numpy()], lr=0.1)
    reference.load_state_dict({"state": {i: {k: (v.numpy().copy() if k != "step" else int(v.item())) for k, v in optimizer.state[p].items()}
                                         for i, p in enumerate((a, b))},
                               "param_groups": [{**{k: v for k, v in reference.param_groups[0].items() if k != "params"}, "params": [0, 1]}]})
    replacement = optimizer.state[b]["exp_avg"].clone() + 1.0  # a new tensor, new values
    optimizer.state[b]["exp_avg"] = replacement
    reference.state[1]["exp_avg"] = reference.state[1]["exp_avg"] + 1.0
    for _ in range(2):
        a.grad, b.grad = torch.full((6,), 0.25, dtype=torch.float64), torch.full((4,), 0.25, dtype=torch.float64)
        optimizer.step()
        reference.step([a.grad.numpy(), b.grad.numpy()])
    np.testing.assert_array_equal(a.detach().numpy(), reference._params[0])
    np.testing.assert_array_equal(b.detach().numpy(), reference._params[1])
    np.testing.assert_array_equal(optimizer.state[a]["exp_avg"].numpy(), reference.state[0]["exp_avg"])
    assert optimizer.state[b]["exp_avg"] is replacement  # used where it is, not copied
    np.testing.assert_array_equal(replacement.numpy(), reference.state[1]["exp_avg"])


@pytest.mark.parametrize("backend", PATHS)
def test_the_state_fastopt_creates_lives_in_its_own_memory(backend):
    """State tensors fastopt makes are views of NumPy arrays it owns (so the fast path checks them
    without calling torch): in-place changes are seen, a storage swapped in place is not (the
    step keeps writing fastopt's memory), and a loaded state dict is copied in."""
    optimizer, a, b = _two_parameter_adam(backend)
    twin, ta, tb = _two_parameter_adam(backend)
    optimizer.state[a]["exp_avg"].mul_(0.5)  # in place: seen
    twin.state[ta]["exp_avg"].mul_(0.5)
    swapped = optimizer.state[b]["exp_avg"]
    swapped.data = torch.zeros(4, dtype=torch.float64)  # not followed: the step keeps its memory
    for _ in range(2):
        for p in (a, b, ta, tb):
            p.grad = torch.full(p.shape, 0.25, dtype=torch.float64)
        optimizer.step()
        twin.step()
    assert torch.equal(a.detach(), ta.detach()) and torch.equal(b.detach(), tb.detach())
    assert torch.equal(swapped, torch.zeros(4, dtype=torch.float64))
    saved = copy.deepcopy(optimizer.state_dict())
    optimizer.load_state_dict(saved)
    assert all(optimizer.state[p][key] is not saved["state"][i][key] for i, p in enumerate((a, b)) for key in saved["state"][i])
    assert all(torch.equal(optimizer.state[p][key], saved["state"][i][key]) for i, p in enumerate((a, b)) for key in saved["state"][i])


@pytest.mark.parametrize("backend", PATHS)
def test_steps_that_differ_between_parameters_are_stepped_one_by_one(backend):
    """Counters set apart by hand (one batch needs one step number): exact, on the careful path."""
    optimizer, a, b = _two_parameter_adam(backend)
    optimizer.state[b]["step"].fill_(7.0)
    reference = [fastopt.Adam([a.detach().clone().numpy()], lr=0.1), fastopt.Adam([b.detach().clone().numpy()], lr=0.1)]
    for ref, p in zip(reference, (a, b)):
        ref.state[0] = {k: (v.numpy().copy() if k != "step" else int(v.item())) for k, v in optimizer.state[p].items()}
    a.grad, b.grad = torch.full((6,), 0.25, dtype=torch.float64), torch.full((4,), 0.25, dtype=torch.float64)
    optimizer.step()
    for ref, p in zip(reference, (a, b)):
        ref.step([p.grad.numpy()])
        np.testing.assert_array_equal(p.detach().numpy(), ref._params[0])
    assert optimizer.state[a]["step"].item() == 3 and optimizer.state[b]["step"].item() == 8


@pytest.mark.hostile
@pytest.mark.parametrize("backend", PATHS)
def test_a_parameter_resized_under_its_state_is_rejected(backend):
    """``p.data = `` a tensor of another size leaves the state of the old size: refused, with
    nothing changed (torch.optim would fail inside its arithmetic)."""
    optimizer, a, b = _two_parameter_adam(backend)
    before = a.detach().clone()
    b.data = torch.zeros(5, dtype=torch.float64)
    a.grad, b.grad = torch.full((6,), 0.5, dtype=torch.float64), torch.full((5,), 0.5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"\['exp_avg'\] must be a contiguous CPU tensor of its parameter's dtype and size"):
        optimizer.step()
    assert torch.equal(a.detach(), before) and optimizer.state[a]["step"].item() == 2


# ------------------------------------------------------------------------------------------------
# Under torch.distributed: ZeroRedundancyOptimizer and DDP, 2 processes on loopback
# ------------------------------------------------------------------------------------------------
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "torch_distributed.py"
TIMEOUT_SECONDS = 180  # two processes start torch on a busy 2-core machine: ~15 s normally


@pytest.mark.skipif(dist is None or not dist.is_available() or not dist.is_gloo_available(),
                    reason="torch built without torch.distributed or gloo")
@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/ is not shipped with the package")
def test_zero_and_ddp_match_single_process_training():
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--world-size", "2", "--steps", "30"],
        capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=environment,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "zero: max relative difference to single-process training 0.0e+00" in output, output
    assert "ddp: max relative difference to single-process training 0.0e+00" in output, output
    # Each rank really holds only its shard of the state. The two processes share one output
    # pipe, so their lines can interleave: match the messages, not lines.
    shards = re.findall(r"\[rank (\d)\] ZeRO: this rank holds optimizer state for (\d+) of 6 parameters", output)
    assert sorted(rank for rank, _ in shards) == ["0", "1"], output
    assert all(0 < int(owned) < 6 for _, owned in shards), output
    assert sum(int(owned) for _, owned in shards) == 6, output
