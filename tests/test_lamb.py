"""LAMB (fastopt.lamb): against optax's ``lamb`` (jax with x64), the trust ratio's rules, its
three twins bit for bit on sizes across many 8-lane blocks, and fastopt.torch.LAMB.

The backends' bit-identity on random hyperparameters and values is Hypothesis's, in
test_agreement.py (LAMB is in tests/specs.py); here, the norms over long, odd-sized tensors.
"""

import numpy as np
import pytest

import fastopt

from .specs import DTYPES, FAST_BACKENDS, assert_bits_equal, assert_same_state

SHAPES = [(1031,), (7, 3), (), (64, 33)]
# (fastopt kwargs, optax.lamb kwargs)
OPTAX_CASES = [
    (dict(lr=1e-2), dict(learning_rate=1e-2)),
    (dict(lr=1e-2, weight_decay=0.01), dict(learning_rate=1e-2, weight_decay=0.01)),
    (dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-8, eps_root=1e-8, weight_decay=0.1),
     dict(learning_rate=1e-2, b1=0.8, b2=0.95, eps=1e-8, eps_root=1e-8, weight_decay=0.1)),
]
# float64: optax's norms (XLA's order) and its two roundings of the scaled update differ from
# fastopt's by rounding; measured 1.8e-14 relative per element. float32: relative to each
# tensor's largest element (an element near 0 after a cancellation differs relatively more).
F64_TOLERANCE = 1e-12
F32_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def optax():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)
    return optax


def problem(dtype, seed=1, steps=12):
    """Parameters of SHAPES (the 0-d one zero: its trust ratio is 1) and ``steps`` steps of
    gradients whose scale varies by e^-3..e^2."""
    rng = np.random.default_rng(seed)
    initial = [np.asarray(rng.standard_normal(shape)).astype(dtype) for shape in SHAPES]
    initial[2] = np.zeros((), dtype)
    grads = [[np.asarray(rng.standard_normal(shape) * np.exp(rng.uniform(-3, 2))).astype(dtype) for shape in SHAPES]
             for _ in range(steps)]
    return initial, grads


def run_optax(optax, kwargs, initial, grads):
    import jax.numpy as jnp

    transformation = optax.lamb(**kwargs)
    params = [jnp.asarray(p) for p in initial]
    state = transformation.init(params)
    for step_grads in grads:
        updates, state = transformation.update([jnp.asarray(g) for g in step_grads], state, params)
        params = optax.apply_updates(params, updates)
    return [np.asarray(p) for p in params]


def relative_difference(ours, theirs, dtype) -> float:
    """float64: the worst relative difference per element; float32: per tensor, relative to its
    largest element."""
    worst = 0.0
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        if a.size == 0:
            continue
        difference = np.abs(a.astype(np.float64) - b.astype(np.float64))
        if dtype == np.float64:
            worst = max(worst, float(np.max(difference / np.maximum(np.abs(b), np.finfo(dtype).tiny))))
        else:
            worst = max(worst, float(difference.max() / max(np.abs(b).max(), np.finfo(dtype).tiny)))
    return worst


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", OPTAX_CASES, ids=["defaults", "weight-decay", "all-options"])
def test_lamb_matches_optax_lamb(optax, case, backend, dtype, measured):
    kwargs, optax_kwargs = case
    initial, grads = problem(dtype)
    ours = [p.copy() for p in initial]
    opt = fastopt.LAMB(ours, backend=backend, **kwargs)
    for step_grads in grads:
        opt.step(step_grads)
    theirs = run_optax(optax, optax_kwargs, initial, grads)
    worst = relative_difference(ours, theirs, dtype)
    key = f"optax LAMB {np.dtype(dtype).name}"
    measured["conventions_worst"][key] = max(measured["conventions_worst"].get(key, 0.0), worst)
    assert worst <= (F64_TOLERANCE if dtype == np.float64 else F32_TOLERANCE), f"{kwargs}: {worst:.2e}"


def test_the_optax_convention_is_optax_defaults():
    opt = fastopt.LAMB([np.zeros(2)], betas=(0.5, 0.6), eps=1.0, eps_root=1.0, weight_decay=1.0, convention="optax")
    group = opt.param_groups[0]
    assert (group["betas"], group["eps"], group["eps_root"], group["weight_decay"]) == ((0.5, 0.6), 1.0, 1.0, 1.0)
    group = fastopt.LAMB([np.zeros(2)], convention="optax").param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["eps_root"], group["weight_decay"]) == (
        1e-3, (0.9, 0.999), 1e-6, 0.0, 0.0)


# --------------------------------------------------------------------------------------------
# The trust ratio
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_the_first_step_moves_each_tensor_by_lr_times_its_norm(backend):
    """At t = 1 with eps = 0, u = g / |g| element-wise: a nonzero tensor moves by exactly
    ``lr * ||theta||`` in norm, whatever its gradient's scale."""
    rng = np.random.default_rng(5)
    params = [rng.standard_normal(300), 1e-3 * rng.standard_normal((20, 20))]
    initial = [p.copy() for p in params]
    opt = fastopt.LAMB(params, lr=0.1, eps=0.0, backend=backend)
    opt.step([1e4 * rng.standard_normal(300), 1e-4 * rng.standard_normal((20, 20))])
    for p, p0 in zip(params, initial):
        assert np.linalg.norm(p - p0) == pytest.approx(0.1 * np.linalg.norm(p0), rel=1e-12)


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_a_zero_norm_makes_the_ratio_one(backend):
    """optax's rule: a zero parameter (or a zero update) takes the trust ratio 1, so a tensor
    initialised to zeros still learns (Adam's step, lr * sign(g) at t = 1 with eps = 0, to an ulp), and a
    zero gradient with zero moments leaves it as it is."""
    zeros, still = np.zeros(10), np.ones(10)
    # (eps = 0 only for the first: a zero gradient would make 0 / 0 of the second's update, in optax too)
    opt = fastopt.LAMB([{"params": [zeros], "eps": 0.0}, {"params": [still]}], lr=0.01, backend=backend)
    grad = np.linspace(-1, 1, 10)
    opt.step([grad, np.zeros(10)])
    np.testing.assert_allclose(zeros, -0.01 * np.sign(grad), rtol=1e-15)  # m_hat / sqrt(v_hat): 1 within an ulp
    np.testing.assert_array_equal(still, np.ones(10))


# --------------------------------------------------------------------------------------------
# Three twins, bit for bit, on sizes across many 8-lane blocks
# --------------------------------------------------------------------------------------------
# 256-element chunks in the compiled twins: sizes on both sides of their edges, many blocks of 8
LARGE_SHAPES = [(1,), (7,), (255,), (256,), (257,), (4099,), (67, 130), (2, 65, 129), (100_003,)]


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", ["finite", "extreme"])
def test_lamb_on_large_odd_sizes_is_bit_identical(backend, dtype, values):
    rng = np.random.default_rng(3)
    initial = [rng.standard_normal(shape).astype(dtype) for shape in LARGE_SHAPES]
    if values == "extreme":  # an inf and a NaN in one tensor, huge and subnormal values in others
        initial[6][5, 7], initial[6][60, 100] = np.inf, np.nan
        initial[5][::7] *= np.finfo(dtype).max / 4
        initial[8][::3] *= np.finfo(dtype).smallest_normal
    params = {name: [p.copy() for p in initial] for name in ("reference", backend)}
    optimizers = {name: fastopt.LAMB(params[name], lr=0.05, weight_decay=0.1, eps_root=1e-12, maximize=True,
                                     backend=name) for name in params}
    for step in range(4):
        grads = [rng.standard_normal(shape).astype(dtype) for shape in LARGE_SHAPES]
        if values == "extreme" and step == 2:
            grads[7][1, 3, 4] = -np.inf
            grads[4][:5] = np.finfo(dtype).smallest_subnormal
        for optimizer in optimizers.values():
            optimizer.step(grads)
    for a, b in zip(params[backend], params["reference"]):
        assert_bits_equal(a, b)
    assert_same_state(optimizers[backend], optimizers["reference"], "LAMB")


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-1.0), "Invalid learning rate: -1.0"),
        (dict(eps=-1e-6), "Invalid epsilon value: -1e-06"),
        (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
        (dict(eps_root=-1.0), "Invalid eps_root value: -1.0"),
        (dict(lr=float("nan")), "Invalid learning rate: nan"),
        (dict(eps_root=float("inf")), "Invalid eps_root value: inf"),
    ],
)
def test_bad_hyperparameters_raise_torch_style(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        fastopt.LAMB([np.zeros(3)], **kwargs)


# --------------------------------------------------------------------------------------------
# fastopt.torch.LAMB
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ft():
    pytest.importorskip("torch")
    import fastopt.torch

    return fastopt.torch


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_torch_lamb_float32_is_bit_identical_to_fastopt_on_numpy(ft, backend):
    import torch

    rng = np.random.default_rng(3)
    shapes = [(5, 7), (7,), (), (40_000,), (0,)]
    initial = [np.asarray(rng.standard_normal(s)).astype(np.float32) for s in shapes]
    tensors = [torch.tensor(a, requires_grad=True) for a in initial]
    arrays = [a.copy() for a in initial]
    options = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.1, eps_root=1e-9, maximize=True)
    optimizer = ft.LAMB(tensors, backend=backend, **options)
    numpy_optimizer = fastopt.LAMB(arrays, backend="reference", **options)
    for _ in range(6):
        grads = [np.asarray(rng.standard_normal(s)).astype(np.float32) for s in shapes]
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        optimizer.step()
        numpy_optimizer.step(grads)
    for index, (t, a) in enumerate(zip(tensors, arrays)):
        assert_bits_equal(t.detach().numpy(), a, f"param {index}")
        state = optimizer.state[t]
        assert set(state) == {"step", "exp_avg", "exp_avg_sq"}
        assert state["step"].item() == 6 and state["step"].dtype == torch.float64
        for key in ("exp_avg", "exp_avg_sq"):
            assert_bits_equal(state[key].numpy(), numpy_optimizer.state[index][key], f"{key} {index}")


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_torch_lamb_float64_matches_optax(ft, optax, backend, measured):
    import torch

    kwargs, optax_kwargs = OPTAX_CASES[-1]
    initial, grads = problem(np.float64)
    tensors = [torch.tensor(p, requires_grad=True) for p in initial]
    optimizer = ft.LAMB(tensors, backend=backend, **kwargs)
    for step_grads in grads:
        for t, g in zip(tensors, step_grads):
            t.grad = torch.tensor(g)
        optimizer.step()
    theirs = run_optax(optax, optax_kwargs, initial, grads)
    worst = relative_difference([t.detach().numpy() for t in tensors], theirs, np.float64)
    key = "optax LAMB float64 (fastopt.torch)"
    measured["conventions_worst"][key] = max(measured["conventions_worst"].get(key, 0.0), worst)
    assert worst <= F64_TOLERANCE


def test_torch_lamb_signature_defaults_and_checks(ft):
    import inspect

    import torch

    parameters = inspect.signature(ft.LAMB).parameters
    assert {name: parameters[name].default for name in ("lr", "betas", "eps", "weight_decay", "maximize")} == dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, maximize=False)
    p = torch.zeros(3, requires_grad=True)
    for kwargs, message in [(dict(lr=-1.0), "Invalid learning rate: -1.0"),
                            (dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
                            (dict(eps=-1.0), "Invalid epsilon value: -1.0"),
                            (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
                            (dict(eps_root=-1.0), "Invalid eps_root value: -1.0")]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            ft.LAMB([p], **kwargs)
    optimizer = ft.LAMB([p], lr=0.1)
    p.grad = torch.ones(3)
    optimizer.step()
    optimizer.param_groups[0]["lr"] = -1.0  # checked again when a hyperparameter changes
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        optimizer.step()
