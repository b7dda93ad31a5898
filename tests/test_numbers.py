"""Extreme numbers: what happens is documented (docs/reliability.md), the same on every backend,
the same as torch.optim where torch is installed, and never a crash or a warning.

test_agreement.py checks with Hypothesis that every backend gives the reference's bits on arbitrary
floats (inf, NaN, subnormal); this file pins the behaviour: against torch.optim on hand-picked
extreme gradients and hyperparameters (lr 0, eps 0, betas 0, momentum 0.999), lr 0 leaving
parameters as they are, eps 0 giving NaN, subnormals that are not flushed to zero, the step
counter far past float32's 2**24, hyperparameters beyond float32's range that become inf without a
warning (marked ``hostile``), and a million steps (marked ``heavy``, run with ``-m heavy``).
"""

import numpy as np
import pytest
from helpers import FULL_OPTIONS, backends, names
from specs import DTYPES, SPECS, assert_bits_equal

import fastopt

TINY = 5e-324  # the smallest float64 subnormal

EXTREME = np.array([0.0, -0.0, 1e30, -1e30, 1e-30, -1e-30, TINY, -TINY, 2.2e-308, 1e300, -1e300,
                    np.inf, -np.inf, np.nan, 1.0, -0.5])

# Hyperparameters at their limits (fastopt keyword arguments; torch's names via the spec).
EXTREME_CONFIGS = [
    ("SGD", dict(lr=0.0)),
    ("SGD", dict(lr=0.1, momentum=0.999)),
    ("SGD", dict(lr=0.1, momentum=0.999, nesterov=True, weight_decay=0.5)),
    ("Adagrad", dict(lr=0.0)),
    ("Adagrad", dict(lr=0.1, eps=0.0)),
    ("Adagrad", dict(lr=0.1, lr_decay=1e6, initial_accumulator_value=0.0)),
    ("RMSprop", dict(lr=0.0)),
    ("RMSprop", dict(lr=0.01, eps=0.0, rho=0.0)),
    ("RMSprop", dict(lr=0.01, momentum=0.999, centered=True, rho=0.999)),
    ("Adam", dict(lr=0.0)),
    ("Adam", dict(lr=0.01, eps=0.0)),
    ("Adam", dict(lr=0.01, betas=(0.0, 0.0))),
    ("Adam", dict(lr=0.01, betas=(0.999, 0.999999), amsgrad=True)),
    ("AdamW", dict(lr=0.0, weight_decay=0.5)),
    ("AdamW", dict(lr=0.01, betas=(0.0, 0.0), eps=0.0, weight_decay=0.1)),
]

# Every other optimizer of the table (tests/specs.py), with its richest torch configuration.
EXTREME_CONFIGS += [
    (name, dict(spec.torch_configs[-1]))
    for name, spec in SPECS.items()
    if name not in {n for n, _ in EXTREME_CONFIGS} and spec.torch_configs
]


def run(name, options, backend, grads, initial):
    params = [initial.copy()]
    opt = SPECS[name].cls(params, backend=backend, **options)
    for grad in grads:
        opt.step([grad])
    return params[0]


def extreme_gradients(dtype):
    """Three steps: the extreme values, the same values shifted by one, then all zeros."""
    with np.errstate(over="ignore"):
        values = EXTREME.astype(dtype)
    return [values, np.roll(values, 1), np.zeros_like(values)]


@pytest.mark.parametrize(("name", "options"), EXTREME_CONFIGS, ids=[f"{n}-{o}" for n, o in EXTREME_CONFIGS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_gradients_and_hyperparameters_give_the_same_bits_on_every_backend(name, options, dtype):
    initial = np.linspace(-2, 2, EXTREME.size).astype(dtype)
    grads = extreme_gradients(dtype)
    reference = run(name, options, "reference", grads, initial)
    for backend in ("numba", "cython"):
        assert_bits_equal(run(name, options, backend, grads, initial), reference, backend)
    # Where the gradient was NaN, the parameter is NaN from then on (IEEE, as in torch); Rprop
    # steps by sign(NaN) = 0 instead (torch.sign's rule, as torch.optim.Rprop): never NaN.
    nan_grad = np.isnan(grads[0]) | np.isnan(grads[1])
    if name == "Rprop":
        assert not np.isnan(reference).any()
    else:
        assert np.isnan(reference[nan_grad]).all() or options.get("lr") == 0.0 and name == "SGD"


# The configurations of the optimizers torch.optim has (not Lion: see tests/specs.py).
TORCH_EXTREME_CONFIGS = [(name, options) for name, options in EXTREME_CONFIGS if SPECS[name].in_torch]


@pytest.mark.parametrize(("name", "options"), TORCH_EXTREME_CONFIGS, ids=[f"{n}-{o}" for n, o in TORCH_EXTREME_CONFIGS])
def test_extreme_values_behave_as_in_torch(name, options):
    """NaN and inf propagate as in torch.optim (float64, for-loop): the same NaN and inf
    positions, and finite values within 1e-12 (torch contracts into FMA; fastopt does not)."""
    torch = pytest.importorskip("torch")
    spec = SPECS[name]
    initial = np.linspace(-2, 2, EXTREME.size)
    grads = extreme_gradients(np.float64)
    ours = run(name, options, "reference", grads, initial)
    param = torch.nn.Parameter(torch.tensor(initial))
    opt = getattr(torch.optim, name)([param], foreach=False, **spec.to_torch(options))
    for grad in grads:
        param.grad = torch.tensor(grad)
        opt.step()
    theirs = param.detach().numpy()
    # The one documented difference: where a square overflows (|g| > 1e154), torch's fused
    # multiply-add keeps the exact product and can end on inf where fastopt, which never
    # contracts, gets inf - inf = NaN (RMSprop centered: v - g_avg**2). Elsewhere: identical.
    comparable = ~np.any([np.abs(g) > 1e154 for g in grads], axis=0)
    ours, theirs = ours[comparable], theirs[comparable]
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg="NaN positions")
    np.testing.assert_array_equal(ours[np.isinf(ours)], theirs[np.isinf(ours)], err_msg="inf")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0, equal_nan=True)


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_lr_zero_leaves_finite_parameters_exactly_unchanged(name, backend, dtype):
    rng = np.random.default_rng(0)
    initial = rng.standard_normal(33).astype(dtype)
    # Rprop's lr is only its first step size, clamped into step_sizes: a floor of 0 keeps it at 0
    options = {"SGD": dict(momentum=0.9, weight_decay=0.1), "RMSprop": dict(centered=True, momentum=0.5),
               "Rprop": dict(step_sizes=(0.0, 50.0))}.get(name, {})
    grads = [rng.standard_normal(33).astype(dtype) * 1e3 for _ in range(3)] + [np.zeros(33, dtype)]
    assert_bits_equal(run(name, {**options, "lr": 0.0}, backend, grads, initial), initial)


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_eps_zero_and_a_zero_gradient_give_nan_as_in_torch(backend):
    """Documented: Adam with eps=0 divides 0 by 0 where a gradient has always been 0."""
    p = run("Adam", dict(lr=0.1, eps=0.0), backend, [np.array([0.0, 1.0])], np.array([1.0, 1.0]))
    assert np.isnan(p[0]) and p[1] == 0.9


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_subnormals_are_computed_not_flushed_to_zero(backend, dtype):
    """No kernel may switch the CPU to flush-to-zero (as -ffast-math builds do when loaded)."""
    from fastopt import _backends
    from fastopt._native import cpu as _cpu

    for build, (_, level) in _backends.CYTHON_BUILDS.items():  # load every build this CPU runs
        if _cpu.supports(level):
            try:
                _backends._import_cython_build("sgd", build)
            except ImportError:  # not compiled here (FASTOPT_BASELINE_ONLY=1)
                assert build != "baseline"
    tiny = np.finfo(dtype).smallest_subnormal
    p = run("SGD", dict(lr=1.0), backend, [np.array([tiny, -3 * tiny], dtype)], np.zeros(2, dtype))
    assert_bits_equal(p, np.array([-tiny, 3 * tiny], dtype))
    assert np.array([tiny], dtype)[0] * dtype(1) == tiny  # NumPy's own arithmetic, after the loads


STEPPED = [name for name, spec in SPECS.items() if spec.cls.step_key is not None]


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("name", STEPPED)
def test_the_step_counter_counts_exactly_past_float32s_limit(name, backend):
    """torch's float32 counter stops at 2**24; fastopt's is a Python int. At t = 2**24 + 1 the
    bias corrections (beta2 = 1 - 1e-9 makes them sensitive to t) use the exact t."""
    options = {"Adam": dict(betas=(0.9, 1 - 1e-9)), "AdamW": dict(betas=(0.9, 1 - 1e-9)),
               "Adagrad": dict(lr_decay=1e-3)}.get(name, {})
    results = {}
    for start in (2**24, 2**24 + 1, 2**53, 2**62 - 3):
        p = np.ones(4)
        opt = SPECS[name].cls([p], backend=backend, lr=0.1, **options)
        opt.step([np.full(4, 0.5)])
        opt.state[0]["step"] = start
        opt.step([np.full(4, 0.5)])
        opt.step([np.full(4, 0.25)])
        assert opt.state[0]["step"] == start + 2 and type(opt.state[0]["step"]) is int
        results[start] = p.copy()
        reference = np.ones(4)
        ref = SPECS[name].cls([reference], backend="reference", lr=0.1, **options)
        ref.step([np.full(4, 0.5)])
        ref.state[0]["step"] = start
        ref.step([np.full(4, 0.5)])
        ref.step([np.full(4, 0.25)])
        assert_bits_equal(p, reference, f"t={start}")
    if name in ("Adam", "AdamW", "Adagrad"):
        assert not np.array_equal(results[2**24], results[2**24 + 1]), "t was not used exactly"
    with pytest.raises(ValueError, match=r"is at the limit of 2\*\*62 steps"):
        opt.step([np.ones(4)])  # the counter is now 2**62 - 1: one more would leave the range


# --------------------------------------------------------------------------------------------
# Hyperparameters at the edges of float32 and float16
# --------------------------------------------------------------------------------------------
@pytest.mark.hostile
@names
@backends
def test_huge_hyperparameters_overflow_float32_scalars_quietly_and_alike(name, backend):
    """lr = 1e20 is beyond the size where float32 casts are known safe (the step then silences
    the overflow as IEEE says, no warning: tests turn warnings into errors), and every backend
    gives the same bits."""
    options = dict(FULL_OPTIONS[name], lr=1e20)
    if "weight_decay" in options:
        options["weight_decay"] = 1e20
    results = []
    for each in fastopt.BACKENDS:
        p = np.linspace(-1, 1, 5).astype(np.float32)
        opt = fastopt.OPTIMIZERS[name]([p], backend=each, **options)
        for _ in range(2):
            opt.step([np.linspace(1, -1, 5).astype(np.float32)])
        results.append(p)
    for other in results[1:]:
        assert_bits_equal(other, results[0])


@pytest.mark.hostile
@backends
def test_a_hyperparameter_beyond_float32_becomes_inf_silently_and_whole(backend):
    """lr=1e39 is a valid float64; cast for float32 arrays it is inf (IEEE, as torch's alpha cast).
    No RuntimeWarning (which ``-W error`` would turn into an exception half-way through a step)."""
    p64, p32 = np.ones(3), np.ones(3, np.float32)
    opt = fastopt.SGD([{"params": [p64], "lr": 0.5}, {"params": [p32]}], lr=1e39, backend=backend)
    opt.step([np.ones(3), np.ones(3, np.float32)])
    assert_bits_equal(p64, np.full(3, 0.5))
    assert_bits_equal(p32, np.full(3, -np.inf, np.float32))
    acc = fastopt.Adagrad([np.ones(2, np.float32)], initial_accumulator_value=1e300, backend=backend)
    assert np.all(acc.state[0]["sum"] == np.inf)


@backends
def test_a_float16_hyperparameter_steps_without_warnings(backend):
    """Found by the fuzz test: checking a float16 lr's magnitude against a Python float must not
    overflow float16 (warnings are errors here)."""
    p = np.ones(3, np.float32)
    opt = fastopt.Adam([p], lr=np.float16(0.25), backend=backend)
    opt.step([np.ones(3, np.float32)])
    opt.param_groups[0]["lr"] = np.float16(0.5)
    opt.step([np.ones(3, np.float32)])
    assert np.all(p < 1)


# --------------------------------------------------------------------------------------------
# A million steps
# --------------------------------------------------------------------------------------------
@pytest.mark.heavy
@pytest.mark.parametrize("name", list(SPECS))
def test_a_million_steps_agree_on_every_backend(name):
    steps = 10**6
    options = dict(SPECS[name].torch_configs[-1])
    finals = {}
    for backend in fastopt.BACKENDS:
        rng = np.random.default_rng(3)
        grads = rng.standard_normal((64, 8))  # cycled
        p = np.linspace(-1, 1, 8)
        opt = SPECS[name].cls([p], backend=backend, **options)
        for step in range(steps):
            opt.step([grads[step % 64]])
        if SPECS[name].cls.step_key is not None:
            assert opt.state[0]["step"] == steps
        assert np.isfinite(p).all()
        finals[backend] = p
    for backend in ("numba", "cython"):
        assert_bits_equal(finals[backend], finals["reference"], backend)
