"""Conventions: fastopt's flags and ``convention=`` presets reproduce Keras 3's and optax's arithmetic.

Three kinds of check, all in float64 over ``STEPS`` steps of gradients whose scale varies by
e^-3..e^2 (as in test_torch.py), per tensor ``max|fastopt - other| / max|other|``:

* against **the formulas** of semantics.md (section 4, Keras 3; section 5, optax), transcribed
  below in plain NumPy, one function per optimizer, written from the document and not from
  fastopt's kernels (rounding order differs, so the tolerance is 1e-12);
* against **Keras 3** (torch backend) and **optax** (jax with x64) themselves, when installed
  (skipped otherwise, like the torch tests). ``.ci/run`` installs them and refuses to run the
  suite unless they import, so in CI these comparisons always run; only its second pass, against
  the AddressSanitizer build (whose virtualenv has no torch, Keras or jax), skips them.
  Keras stores the learning rate as a float32 variable and computes its decoupled decay factor
  ``1 - wd * lr`` in float32 (semantics.md section 4): the runs use ``lr = 2**-7`` and
  ``wd = 2**-4``, exact in float32, so that both sides use the same numbers;
* the preset mechanics: explicit arguments win, unknown or unavailable pairs raise, and the
  presets set the defaults of semantics.md section 1.

The worst relative difference per convention and optimizer is printed at the end of the run.
"""

import importlib
import math
import os
import warnings

import numpy as np
import pytest
from specs import DTYPES, FAST_BACKENDS, assert_bits_equal, assert_large_run_agrees

import fastopt

STEPS = 12
LR = 2.0**-7  # exact in float32: Keras keeps its learning rate in a float32 variable
WD = 2.0**-4  # LR * WD = 2**-11, so Keras's float32 decay factor 1 - WD * LR is exact too
SHAPES = [(1031,), (7, 3), ()]
TOLERANCE = 1e-12
# Keras's Nadam keeps its product of momentum factors in the variables' dtype (float64 here);
# fastopt keeps torch's float32 product (documented in fastopt.nadam).
NADAM_KERAS_TOLERANCE = 1e-6


def problem(seed=20240611):
    rng = np.random.default_rng(seed)
    initial = [np.asarray(rng.standard_normal(shape)) for shape in SHAPES]
    grads = [
        [np.asarray(rng.standard_normal(shape) * np.exp(rng.uniform(-3, 2))) for shape in SHAPES]
        for _ in range(STEPS)
    ]
    return initial, grads


def relative_difference(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    diff = np.max(np.abs(actual - expected)) if expected.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


def run_fastopt(name, kwargs, initial, grads, backend="reference"):
    params = [p.copy() for p in initial]
    opt = fastopt.OPTIMIZERS[name](params, backend=backend, **kwargs)
    for step_grads in grads:
        opt.step(step_grads)
    return params


def check(measured, what, name, ours, theirs, tolerance=TOLERANCE):
    worst = max(relative_difference(a, b) for a, b in zip(ours, theirs))
    key = f"{what}: {name}"
    measured["conventions_worst"][key] = max(measured["conventions_worst"].get(key, 0.0), worst)
    assert worst <= tolerance, f"{key}: relative difference {worst:.2e}"


# ------------------------------------------------------------------------------------------------
# semantics.md, section 4 (Keras 3) and section 5 (optax), transcribed in NumPy: one parameter
# array at a time, `grads` its gradients over the steps. Keras's weight decay is the base class's
# `w <- w - w * wd * lr`, applied before the update step.
# ------------------------------------------------------------------------------------------------
def keras_rmsprop(w, grads, lr, rho=0.9, eps=1e-7, momentum=0.0, centered=False, wd=0.0):
    v, a, mom = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        w = w * (1 - wd * lr)
        v = rho * v + (1 - rho) * g**2
        if centered:
            a = rho * a + (1 - rho) * g
            den = v - a**2 + eps
        else:
            den = v + eps
        inc = lr * g / np.sqrt(den)
        if momentum > 0:
            mom = momentum * mom + inc
            w = w - mom
        else:
            w = w - inc
    return w


def keras_adagrad(w, grads, lr, init=0.1, eps=1e-7, wd=0.0):
    acc = np.full_like(w, init)
    for g in grads:
        w = w * (1 - wd * lr)
        acc = acc + g**2
        w = w - lr * g / np.sqrt(acc + eps)
    return w


def keras_adam(w, grads, lr, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0):
    m, v, vhat = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        w = w * (1 - wd * lr)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g**2 - v) * (1 - b2)
        if amsgrad:
            vhat = np.maximum(vhat, v)
            w = w - m * alpha / (np.sqrt(vhat) + eps)
        else:
            w = w - m * alpha / (np.sqrt(v) + eps)
    return w


def keras_adamax(w, grads, lr, b1=0.9, b2=0.999, eps=1e-7, wd=0.0):
    m, u = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        w = w * (1 - wd * lr)
        m = m + (g - m) * (1 - b1)
        u = np.maximum(b2 * u, np.abs(g))
        w = w - lr * m / ((1 - b1**t) * (u + eps))
    return w


def keras_nadam(w, grads, lr, b1=0.9, b2=0.999, eps=1e-7):
    m, v, u_product = np.zeros_like(w), np.zeros_like(w), 1.0
    for t, g in enumerate(grads, 1):
        u_t = b1 * (1 - 0.5 * 0.96**t)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = u_product * u_t
        m = m + (g - m) * (1 - b1)
        v = v + (g**2 - v) * (1 - b2)
        m_hat = u_t1 * m / (1 - u_product * u_t1) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


def keras_adadelta(w, grads, lr, rho=0.95, eps=1e-7, wd=0.0):
    a_g, a_x = np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        w = w * (1 - wd * lr)
        a_g = rho * a_g + (1 - rho) * g**2
        delta = -np.sqrt(a_x + eps) * g / np.sqrt(a_g + eps)
        a_x = rho * a_x + (1 - rho) * delta**2
        w = w + lr * delta
    return w


def keras_sgd(w, grads, lr, momentum=0.0, nesterov=False, wd=0.0):
    m = np.zeros_like(w)
    for g in grads:
        w = w * (1 - wd * lr)
        if momentum == 0:
            w = w - lr * g
            continue
        m = momentum * m - lr * g
        w = w + momentum * m - lr * g if nesterov else w + m
    return w


def optax_rmsprop(w, grads, lr, decay=0.9, eps=1e-8, momentum=None, centered=False):
    nu, mu, trace = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        nu = (1 - decay) * g**2 + decay * nu
        if centered:
            mu = (1 - decay) * g + decay * mu
            u = g / np.sqrt(nu - mu**2 + eps)
        else:
            u = g / np.sqrt(nu + eps)
        u = -lr * u
        if momentum is not None:
            trace = u + momentum * trace
            u = trace
        w = w + u
    return w


def optax_adagrad(w, grads, lr, init=0.1, eps=1e-7):
    s = np.full_like(w, init)
    for g in grads:
        s = g**2 + s
        u = np.where(s > 0, g / np.sqrt(s + eps), 0.0)
        w = w + -lr * u
    return w


def optax_amsgrad(w, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    mu, nu, nu_max = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        mu = (1 - b1) * g + b1 * mu
        nu = (1 - b2) * g**2 + b2 * nu
        nu_max = np.maximum(nu_max, nu / (1 - b2**t))
        w = w + -lr * (mu / (1 - b1**t)) / (np.sqrt(nu_max) + eps)
    return w


def optax_adam(w, grads, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    mu, nu = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        mu = (1 - b1) * g + b1 * mu
        nu = (1 - b2) * g**2 + b2 * nu
        u = (mu / (1 - b1**t)) / (np.sqrt(nu / (1 - b2**t)) + eps) + wd * w
        w = w + -lr * u
    return w


def optax_adamax(w, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    mu, nu = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        mu = (1 - b1) * g + b1 * mu
        nu = np.maximum(np.abs(g) + eps, b2 * nu)
        w = w + -lr * (mu / (1 - b1**t)) / nu
    return w


# (label, fastopt optimizer, fastopt kwargs, formula, formula kwargs)
FORMULA_CASES = [
    ("keras", "RMSprop", dict(lr=LR), keras_rmsprop, dict(lr=LR)),
    ("keras", "RMSprop", dict(lr=LR, centered=True, momentum=0.9, weight_decay=WD), keras_rmsprop,
     dict(lr=LR, centered=True, momentum=0.9, wd=WD)),
    ("keras", "Adagrad", dict(lr=LR, weight_decay=WD), keras_adagrad, dict(lr=LR, wd=WD)),
    ("keras", "Adam", dict(lr=LR), keras_adam, dict(lr=LR)),
    ("keras", "Adam", dict(lr=LR, amsgrad=True, weight_decay=WD), keras_adam, dict(lr=LR, amsgrad=True, wd=WD)),
    ("keras", "AdamW", dict(lr=LR, weight_decay=WD), keras_adam, dict(lr=LR, wd=WD)),
    ("keras", "Adamax", dict(lr=LR, weight_decay=WD), keras_adamax, dict(lr=LR, wd=WD)),
    ("keras", "NAdam", dict(lr=LR), keras_nadam, dict(lr=LR)),
    ("keras", "Adadelta", dict(lr=LR, weight_decay=WD), keras_adadelta, dict(lr=LR, wd=WD)),
    ("keras", "SGD", dict(lr=LR, momentum=0.9, weight_decay=WD), keras_sgd, dict(lr=LR, momentum=0.9, wd=WD)),
    ("keras", "SGD", dict(lr=LR, momentum=0.9, nesterov=True), keras_sgd, dict(lr=LR, momentum=0.9, nesterov=True)),
    # Keras accepts nesterov=True at its default momentum 0, where it is a plain SGD step
    ("keras", "SGD", dict(lr=LR, nesterov=True), keras_sgd, dict(lr=LR, nesterov=True)),
    ("optax", "RMSprop", dict(lr=LR), optax_rmsprop, dict(lr=LR)),
    ("optax", "RMSprop", dict(lr=LR, centered=True, momentum=0.9), optax_rmsprop,
     dict(lr=LR, centered=True, momentum=0.9)),
    ("optax", "Adagrad", dict(lr=LR), optax_adagrad, dict(lr=LR)),
    ("optax", "Adam", dict(lr=LR), optax_adam, dict(lr=LR)),
    ("optax", "Adam", dict(lr=LR, amsgrad=True), optax_amsgrad, dict(lr=LR)),
    ("optax", "AdamW", dict(lr=LR), optax_adam, dict(lr=LR, wd=1e-4)),
    ("optax", "Adamax", dict(lr=LR), optax_adamax, dict(lr=LR)),
]


def _case_id(case):
    label, name, kwargs = case[:3]
    extras = ",".join(f"{k}={v}" for k, v in kwargs.items() if k != "lr")
    return f"{label}-{name}" + (f"-{extras}" if extras else "")


@pytest.mark.parametrize("backend", ["reference", *FAST_BACKENDS])
@pytest.mark.parametrize("case", FORMULA_CASES, ids=map(_case_id, FORMULA_CASES))
def test_preset_matches_the_formula(case, backend, measured):
    label, name, kwargs, formula, formula_kwargs = case
    initial, grads = problem()
    ours = run_fastopt(name, dict(kwargs, convention=label), initial, grads, backend)
    theirs = [formula(p.copy(), [g[i] for g in grads], **formula_kwargs) for i, p in enumerate(initial)]
    tolerance = NADAM_KERAS_TOLERANCE if (label, name) == ("keras", "NAdam") else TOLERANCE
    check(measured, f"{label} formula", _case_id(case)[len(label) + 1:], ours, theirs, tolerance)


def test_the_conventions_really_differ():
    """Each preset changes the numbers (a test that would pass with the flags ignored is no test)."""
    initial, grads = problem()
    for name in ("RMSprop", "Adagrad", "Adam", "Adamax"):
        torch_run = run_fastopt(name, dict(lr=LR, convention="torch"), initial, grads)
        keras_run = run_fastopt(name, dict(lr=LR, convention="keras"), initial, grads)
        # far beyond rounding (1e-16); eps placement matters little at these gradient scales for
        # Adam (~1e-6) and Adamax (~4e-8), much for RMSprop and Adagrad (~1e-2)
        assert relative_difference(keras_run[0], torch_run[0]) > 1e-9, name
    plain = run_fastopt("Adam", dict(lr=LR, amsgrad=True), initial, grads)
    optax_run = run_fastopt("Adam", dict(lr=LR, amsgrad=True, convention="optax"), initial, grads)
    assert relative_difference(optax_run[0], plain[0]) > 1e-6


# ------------------------------------------------------------------------------------------------
# The libraries themselves
# ------------------------------------------------------------------------------------------------
def require(module_name):
    """Import ``module_name``, or skip (.ci/run checks that it imports before running the suite)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module_name)
    except ImportError:
        pytest.skip(f"{module_name} is not installed")


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = require("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"these tests drive Keras through its torch backend, not {keras.backend.backend()}")
    return keras


def run_keras(keras, optimizer, initial, grads):
    import torch

    variables = [keras.Variable(p.copy(), dtype="float64") for p in initial]
    for step_grads in grads:
        with warnings.catch_warnings():  # Keras's Nadam calls np.array on a tensor (NumPy 2 warns)
            warnings.simplefilter("ignore", DeprecationWarning)
            optimizer.apply([torch.tensor(g) for g in step_grads], variables)
    return [v.value.detach().cpu().numpy().reshape(p.shape) for v, p in zip(variables, initial)]


# (fastopt optimizer, fastopt kwargs besides convention="keras", Keras class, Keras kwargs)
KERAS_CASES = [
    ("RMSprop", dict(lr=LR), "RMSprop", dict(learning_rate=LR)),
    ("RMSprop", dict(lr=LR, centered=True, momentum=0.9, weight_decay=WD), "RMSprop",
     dict(learning_rate=LR, centered=True, momentum=0.9, weight_decay=WD)),
    ("Adagrad", dict(lr=LR, weight_decay=WD), "Adagrad", dict(learning_rate=LR, weight_decay=WD)),
    ("Adam", dict(lr=LR), "Adam", dict(learning_rate=LR)),
    ("Adam", dict(lr=LR, amsgrad=True, weight_decay=WD), "Adam", dict(learning_rate=LR, amsgrad=True, weight_decay=WD)),
    ("AdamW", dict(lr=LR, weight_decay=WD), "AdamW", dict(learning_rate=LR, weight_decay=WD)),
    ("Adamax", dict(lr=LR, weight_decay=WD), "Adamax", dict(learning_rate=LR, weight_decay=WD)),
    ("NAdam", dict(lr=LR), "Nadam", dict(learning_rate=LR)),
    ("Adadelta", dict(lr=LR, weight_decay=WD), "Adadelta", dict(learning_rate=LR, weight_decay=WD)),
    ("SGD", dict(lr=LR, momentum=0.9, weight_decay=WD), "SGD", dict(learning_rate=LR, momentum=0.9, weight_decay=WD)),
    ("SGD", dict(lr=LR, momentum=0.9, nesterov=True), "SGD", dict(learning_rate=LR, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=LR, nesterov=True), "SGD", dict(learning_rate=LR, nesterov=True)),
    ("Lion", dict(lr=LR, weight_decay=WD), "Lion", dict(learning_rate=LR, weight_decay=WD)),
]


@pytest.mark.parametrize("case", KERAS_CASES, ids=[_case_id(("keras", *c[:2])) for c in KERAS_CASES])
def test_keras_preset_matches_keras(case, keras, measured):
    name, kwargs, keras_name, keras_kwargs = case
    initial, grads = problem()
    ours = run_fastopt(name, dict(kwargs, convention="keras"), initial, grads)
    theirs = run_keras(keras, getattr(keras.optimizers, keras_name)(**keras_kwargs), initial, grads)
    tolerance = NADAM_KERAS_TOLERANCE if name == "NAdam" else TOLERANCE
    check(measured, "keras 3", _case_id(("keras", name, kwargs))[6:], ours, theirs, tolerance)


@pytest.fixture(scope="module")
def optax():
    jax = require("jax")
    optax = require("optax")
    jax.config.update("jax_enable_x64", True)  # float64 arrays (jax defaults to float32)
    return optax


def run_optax(optax, transformation, initial, grads):
    import jax.numpy as jnp

    params = [jnp.asarray(p) for p in initial]
    state = transformation.init(params)
    for step_grads in grads:
        updates, state = transformation.update([jnp.asarray(g) for g in step_grads], state, params)
        params = optax.apply_updates(params, updates)
    return [np.asarray(p) for p in params]


# (fastopt optimizer, fastopt kwargs besides convention="optax", optax alias, its kwargs)
OPTAX_CASES = [
    ("RMSprop", dict(lr=LR), "rmsprop", dict(learning_rate=LR)),
    ("RMSprop", dict(lr=LR, centered=True, momentum=0.9), "rmsprop", dict(learning_rate=LR, centered=True, momentum=0.9)),
    ("Adagrad", dict(lr=LR), "adagrad", dict(learning_rate=LR)),
    ("Adam", dict(lr=LR), "adam", dict(learning_rate=LR)),
    ("Adam", dict(lr=LR, amsgrad=True), "amsgrad", dict(learning_rate=LR)),
    ("AdamW", dict(lr=LR), "adamw", dict(learning_rate=LR)),
    ("Adamax", dict(lr=LR), "adamax", dict(learning_rate=LR)),
    ("Adadelta", dict(lr=LR), "adadelta", dict(learning_rate=LR)),
    ("SGD", dict(lr=LR, momentum=0.9), "sgd", dict(learning_rate=LR, momentum=0.9)),
    ("SGD", dict(lr=LR, momentum=0.9, nesterov=True), "sgd", dict(learning_rate=LR, momentum=0.9, nesterov=True)),
    ("Lion", dict(lr=LR), "lion", dict(learning_rate=LR)),
    ("AdaBelief", dict(lr=LR), "adabelief", dict(learning_rate=LR)),
    ("AdaBelief", dict(lr=LR, betas=(0.8, 0.99), eps=1e-8, eps_root=0.0), "adabelief",
     dict(learning_rate=LR, b1=0.8, b2=0.99, eps=1e-8, eps_root=0.0)),
]


@pytest.mark.parametrize("case", OPTAX_CASES, ids=[_case_id(("optax", *c[:2])) for c in OPTAX_CASES])
def test_optax_preset_matches_optax(case, optax, measured):
    name, kwargs, alias, optax_kwargs = case
    initial, grads = problem()
    ours = run_fastopt(name, dict(kwargs, convention="optax"), initial, grads)
    theirs = run_optax(optax, getattr(optax, alias)(**optax_kwargs), initial, grads)
    check(measured, "optax", _case_id(("optax", name, kwargs))[6:], ours, theirs)


@pytest.mark.parametrize("backend", ["reference", *FAST_BACKENDS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adabelief_is_optax_adabelief_operation_for_operation(optax, backend, dtype, measured):
    """fastopt's AdaBelief does optax's operations in optax's order (fastopt.adabelief): while the
    bias corrections agree (optax's beta^t by repeated squaring, Python's pow: equal for
    t <= 3 at the default betas, not at 0.9^4), the float64 weights and both moments are optax's
    bits; then they stay within rounding (these 12 steps happen to end on optax's bits too). The
    parameters here are a list of arrays, for which XLA keeps optax's divisions (for a single
    array it multiplies by a reciprocal instead). In float32 XLA's compiled arithmetic differs from
    IEEE's step by step in an element or so per thousand, by an ulp."""
    import jax.numpy as jnp

    initial, grads = problem()
    initial = [p.astype(dtype) for p in initial]
    grads = [[g.astype(dtype) for g in step] for step in grads]
    params = [p.copy() for p in initial]
    opt = fastopt.AdaBelief(params, lr=LR, backend=backend)
    transformation = optax.adabelief(LR)
    theirs = [jnp.asarray(p) for p in initial]
    state = transformation.init(theirs)
    for t, step_grads in enumerate(grads, start=1):
        opt.step(step_grads)
        updates, state = transformation.update([jnp.asarray(g) for g in step_grads], state, theirs)
        theirs = optax.apply_updates(theirs, updates)
        if t <= 3 and dtype == np.float64:
            belief = state[0]
            for index, param in enumerate(params):
                assert_bits_equal(param, np.asarray(theirs[index]), f"t = {t}: params[{index}]")
                assert_bits_equal(opt.state[index]["exp_avg"], np.asarray(belief.mu[index]), f"t = {t}: mu[{index}]")
                assert_bits_equal(opt.state[index]["exp_avg_var"], np.asarray(belief.nu[index]), f"t = {t}: nu[{index}]")
    check(measured, "optax", f"AdaBelief {np.dtype(dtype).name} ({backend})", params, [np.asarray(t) for t in theirs],
          tolerance=TOLERANCE if dtype == np.float64 else 1e-6)


ADOPT_OPTAX_CASES = [  # (fastopt kwargs, optax.contrib.adopt kwargs)
    (dict(lr=LR), dict(learning_rate=LR)),
    (dict(lr=LR, betas=(0.8, 0.99), eps=1e-8), dict(learning_rate=LR, b1=0.8, b2=0.99, eps=1e-8)),
    (dict(lr=LR, clip_lambda=None), dict(learning_rate=LR, use_clipping=False)),
]


@pytest.mark.parametrize("backend", ["reference", *FAST_BACKENDS])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADOPT_OPTAX_CASES, ids=["defaults", "betas-eps", "no-clipping"])
def test_adopt_is_optax_adopt_operation_for_operation(optax, case, backend, dtype, measured):
    """fastopt's ADOPT does optax's operations in optax's order (fastopt.adopt): the first step
    only sets the second moment (optax's update with b1 = 1, b2 = 0 gives the same bits), then the
    normalised, clipped gradient enters the momentum. In float64 the weights and both moments are
    optax's bits at every step (the clipping values (t - 1)^(1/4) are the same doubles as XLA's);
    in float32 they have been too (0 difference), but XLA's compiled float32 arithmetic may differ
    by machine, so there the test allows 1e-6."""
    import jax.numpy as jnp

    kwargs, optax_kwargs = case
    initial, grads = problem()
    initial = [p.astype(dtype) for p in initial]
    grads = [[g.astype(dtype) for g in step] for step in grads]
    params = [p.copy() for p in initial]
    opt = fastopt.ADOPT(params, backend=backend, **kwargs)
    transformation = optax.contrib.adopt(**optax_kwargs)
    theirs = [jnp.asarray(p) for p in initial]
    state = transformation.init(theirs)
    for t, step_grads in enumerate(grads, start=1):
        opt.step(step_grads)
        updates, state = transformation.update([jnp.asarray(g) for g in step_grads], state, theirs)
        theirs = optax.apply_updates(theirs, updates)
        if dtype == np.float64:
            moments = state[0]
            for index, param in enumerate(params):
                assert_bits_equal(param, np.asarray(theirs[index]), f"t = {t}: params[{index}]")
                assert_bits_equal(opt.state[index]["exp_avg"], np.asarray(moments.mu[index]), f"t = {t}: mu[{index}]")
                assert_bits_equal(opt.state[index]["exp_avg_sq"], np.asarray(moments.nu[index]), f"t = {t}: nu[{index}]")
    check(measured, "optax", f"ADOPT {_case_id(('', 'ADOPT', kwargs))[1:]} {np.dtype(dtype).name} ({backend})", params,
          [np.asarray(t) for t in theirs], tolerance=TOLERANCE if dtype == np.float64 else 1e-6)


# ------------------------------------------------------------------------------------------------
# Backends agree bit for bit under every preset (Hypothesis draws the flags on small arrays in
# test_agreement.py; here, a vector-sized body and an odd tail)
# ------------------------------------------------------------------------------------------------
PRESET_CASES = [  # (SparseAdam's gradients are rows: tests/test_sparse.py runs its large arrays)
    (name, convention)
    for name, cls in fastopt.OPTIMIZERS.items()
    if not cls.algorithm.sparse
    for convention in cls.conventions
]


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize(("name", "convention"), PRESET_CASES, ids=[f"{n}-{c}" for n, c in PRESET_CASES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_presets_agree_bit_for_bit_on_large_arrays(name, convention, backend, dtype):
    rng = np.random.default_rng(11)
    cls = fastopt.OPTIMIZERS[name]
    options = dict(convention=convention)
    if "weight_decay" in cls.preset(convention) or name not in ("AdamW", "Rprop"):  # Rprop has none
        options["weight_decay"] = options.get("weight_decay", 0.05)
    if name in ("SGD", "RMSprop"):
        options["momentum"] = 0.9
    if name == "Adam" or name == "AdamW":
        options["amsgrad"] = True
    if name == "RMSprop":
        options["centered"] = True
    assert_large_run_agrees(cls, options, backend, dtype, rng, size=10_007, steps=6)


# ------------------------------------------------------------------------------------------------
# The preset mechanics
# ------------------------------------------------------------------------------------------------
def test_a_preset_sets_defaults_and_explicit_arguments_win():
    opt = fastopt.RMSprop([np.zeros(3)], convention="keras")
    group = opt.param_groups[0]
    assert (group["lr"], group["rho"], group["eps"]) == (1e-3, 0.9, 1e-7)
    assert group["eps_inside_sqrt"] and group["lr_in_momentum"] and group["decoupled_weight_decay"]
    opt = fastopt.RMSprop([np.zeros(3)], 0.5, convention="keras", eps=1e-3, eps_inside_sqrt=False)
    group = opt.param_groups[0]
    assert (group["lr"], group["eps"], group["eps_inside_sqrt"]) == (0.5, 1e-3, False)
    assert opt.convention == "keras" and "convention='keras'" in repr(opt)
    torch_like = fastopt.RMSprop([np.zeros(3)], convention="torch").param_groups[0]
    assert (torch_like["lr"], torch_like["rho"]) == (1e-2, 0.99)  # torch.optim.RMSprop's lr and alpha


# semantics.md section 1: the defaults each preset must set
SECTION_1 = {
    ("Adagrad", "keras"): dict(lr=1e-3, initial_accumulator_value=0.1, eps=1e-7),
    ("Adagrad", "optax"): dict(initial_accumulator_value=0.1, eps=1e-7),
    ("RMSprop", "keras"): dict(lr=1e-3, rho=0.9, eps=1e-7),
    ("RMSprop", "optax"): dict(rho=0.9, eps=1e-8),
    ("Adam", "keras"): dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7),
    ("AdamW", "keras"): dict(weight_decay=0.004, eps=1e-7),
    ("AdamW", "optax"): dict(weight_decay=1e-4, eps=1e-8),
    ("Adadelta", "keras"): dict(lr=1e-3, rho=0.95, eps=1e-7),
    ("Adamax", "keras"): dict(lr=1e-3, eps=1e-7),
    ("NAdam", "keras"): dict(lr=1e-3, eps=1e-7),
    ("SGD", "keras"): dict(lr=0.01),
    ("Lion", "keras"): dict(lr=1e-3),
    ("Lion", "optax"): dict(weight_decay=1e-3),
    ("AdaBelief", "optax"): dict(betas=(0.9, 0.999), eps=1e-16, eps_root=1e-16),
    ("ScheduleFreeAdamW", "optax"): dict(lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_lr_power=2.0),
}


@pytest.mark.parametrize(("name", "convention"), list(SECTION_1))
def test_presets_set_the_frameworks_defaults(name, convention):
    group = fastopt.OPTIMIZERS[name]([np.zeros(2)], convention=convention).param_groups[0]
    for key, value in SECTION_1[name, convention].items():
        assert group[key] == value, key


def test_unknown_and_unavailable_conventions_raise():
    with pytest.raises(ValueError, match=r"convention must be one of 'torch', 'keras', 'optax' or None, got 'tf'"):
        fastopt.Adam([np.zeros(2)], convention="tf")
    with pytest.raises(ValueError, match=r"RAdam has no 'keras' convention: Keras 3 has no RAdam\. Offered: 'torch'"):
        fastopt.RAdam([np.zeros(2)], convention="keras")
    with pytest.raises(ValueError, match=r"NAdam has no 'optax' convention: optax's nadam is adam\(nesterov=True\)"):
        fastopt.NAdam([np.zeros(2)], convention="optax")
    with pytest.raises(ValueError, match=r"Lion has no 'torch' convention"):
        fastopt.Lion([np.zeros(2)], convention="torch")
    with pytest.raises(ValueError, match=r"AdaBelief has no 'keras' convention: Keras 3 has no AdaBelief\. Offered: 'optax'"):
        fastopt.AdaBelief([np.zeros(2)], convention="keras")


def test_flags_are_validated():
    with pytest.raises(ValueError, match="eps_hat .* and amsgrad_corrected_max .* cannot both be set"):
        fastopt.Adam([np.zeros(2)], eps_hat=True, amsgrad_corrected_max=True)
    with pytest.raises(ValueError, match="AdamW's weight decay is always decoupled"):
        fastopt.AdamW([np.zeros(2)], decoupled_weight_decay=False)
    with pytest.raises(TypeError, match="eps_inside_sqrt"):
        fastopt.RMSprop([np.zeros(2)], eps_inside_sqrt="yes")
    opt = fastopt.Adagrad([np.zeros(2)])
    opt.param_groups[0]["eps_inside_sqrt"] = 1.5
    with pytest.raises(TypeError, match="eps_inside_sqrt"):
        opt.step([np.ones(2)])


def test_a_checkpoint_saved_before_the_flags_existed_loads_with_torch_arithmetic():
    params = [np.linspace(-1, 1, 5)]
    opt = fastopt.RMSprop(params, momentum=0.9)
    opt.step([np.ones(5)])
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        for flag in fastopt.RMSprop.flag_defaults:
            del group[flag]
    fresh = fastopt.RMSprop([params[0].copy()], momentum=0.9, convention="keras")
    fresh.load_state_dict(saved)
    assert {flag: fresh.param_groups[0][flag] for flag in fastopt.RMSprop.flag_defaults} == fastopt.RMSprop.flag_defaults


def test_adam_and_adamw_still_load_each_others_state_dicts():
    adam = fastopt.Adam([np.ones(3)], weight_decay=0.1)
    adam.step([np.ones(3)])
    adamw = fastopt.AdamW([np.ones(3)])
    adamw.load_state_dict(adam.state_dict())
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True
    adam2 = fastopt.Adam([np.ones(3)])
    adam2.load_state_dict(adamw.state_dict())
    assert adam2.param_groups[0]["decoupled_weight_decay"] is True  # now Adam decays as AdamW


def test_decoupled_adam_is_adamw_bit_for_bit():
    """The same arithmetic through two kernels: Adam's line (2) and AdamW's."""
    initial, grads = problem()
    for dtype in DTYPES:
        a = run_fastopt("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
                        [p.astype(dtype) for p in initial], [[g.astype(dtype) for g in s] for s in grads])
        w = run_fastopt("AdamW", dict(lr=0.01, weight_decay=0.1), [p.astype(dtype) for p in initial],
                        [[g.astype(dtype) for g in s] for s in grads])
        for x, y in zip(a, w):
            assert_bits_equal(x, y)


# ------------------------------------------------------------------------------------------------
# python -m fastopt conventions
# ------------------------------------------------------------------------------------------------
def test_the_conventions_page_shows_every_offered_pair(capsys):
    from fastopt import cli

    assert cli.main(["conventions", "--steps", "30", "--width", "200"]) == 0
    out = capsys.readouterr().out
    for name, cls in fastopt.OPTIMIZERS.items():
        assert f"│ {name} " in out
    assert out.count("(baseline)") == 2 * 2 * sum(1 for cls in fastopt.OPTIMIZERS.values() if cls.conventions)
    assert "eps_inside_sqrt" in out and "eps_hat" in out and "amsgrad_corrected_max" in out


def test_the_drift_is_arithmetic_where_the_flags_differ_and_zero_where_they_do_not():
    from fastopt.cli.conventions import drift

    runs = {(r.optimizer, r.convention): r for r in drift(steps=50, flags_only=True)}
    assert runs["RMSprop", "keras"].final_gap > 1e-3  # eps inside the root, lr-scaled momentum
    assert runs["Adam", "optax"].final_gap > 1e-3  # AMSGrad's maximum of the corrected v
    assert runs["Adagrad", "keras"].first_gap > 1e-4  # eps inside the root from the first step
    assert runs["SGD", "optax"].final_gap == 0.0 and runs["Adadelta", "optax"].final_gap == 0.0  # torch's arithmetic
    everything = {(r.optimizer, r.convention): r for r in drift(steps=50)}
    assert everything["Adagrad", "keras"].first_gap > 0.1  # initial accumulator 0.1 vs 0


def test_the_conventions_page_runs_in_a_pipe():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "fastopt", "conventions", "--steps", "5", "--dtype", "float32"],
                            capture_output=True, text=True, check=True, timeout=300)
    assert "Same name, different arithmetic" in result.stdout and "\x1b[" not in result.stdout


def test_nesterov_without_momentum_is_keras_only():
    """torch refuses SGD(nesterov=True) without momentum; Keras accepts it at its default momentum
    0 and steps plain SGD. fastopt follows each: the Keras preset accepts it (also set between
    steps), every other convention raises torch's message."""
    w = np.ones(3)
    keras_sgd_opt = fastopt.SGD([w], lr=0.1, nesterov=True, convention="keras")
    keras_sgd_opt.step([np.full(3, 0.5)])
    assert np.array_equal(w, np.full(3, 1.0 - 0.1 * 0.5))
    keras_sgd_opt.param_groups[0]["momentum"] = 0.9  # now a real Nesterov step, valid everywhere
    keras_sgd_opt.step([np.full(3, 0.5)])
    for convention in (None, "torch", "optax"):
        with pytest.raises(ValueError, match=r"^Nesterov momentum requires a momentum and zero dampening$"):
            fastopt.SGD([np.ones(3)], nesterov=True, convention=convention)
    with pytest.raises(ValueError, match=r"^Nesterov momentum requires a momentum and zero dampening$"):
        fastopt.SGD([np.ones(3)], nesterov=True, dampening=0.5, convention="keras")
