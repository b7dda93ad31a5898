"""Hand-computed results, per optimizer and backend (scikit-learn's "specific values" idea)."""

import numpy as np
import pytest
from specs import DTYPES, assert_bits_equal

import fastopt

BACKENDS = fastopt.BACKENDS

pytestmark = [pytest.mark.parametrize("backend", BACKENDS), pytest.mark.parametrize("dtype", DTYPES)]


def vector(dtype, *values):
    return np.array(values, dtype=dtype)


def test_plain_sgd_is_p_minus_lr_g_exactly(backend, dtype):
    p = vector(dtype, 1.0, -2.0, 3.5, 0.0)
    g = vector(dtype, 0.1, 0.2, -0.3, 7.0)
    expected = p - dtype(0.05) * g
    fastopt.SGD([p], lr=0.05, backend=backend).step([g])
    assert_bits_equal(p, expected)


def test_sgd_first_momentum_step_ignores_dampening(backend, dtype):
    p = vector(dtype, 1.0, 1.0)
    g1, g2 = vector(dtype, 1.0, -2.0), vector(dtype, 0.5, 0.25)
    opt = fastopt.SGD([p], lr=0.1, momentum=0.9, dampening=0.5, backend=backend)
    opt.step([g1])
    assert_bits_equal(opt.state[0]["momentum_buffer"], g1)  # b_1 = d_1, no (1 - tau)
    opt.step([g2])
    expected = dtype(0.9) * g1 + dtype(0.5) * g2  # torch: [1, -2] then [1.4, -2.8] for g2 = g1
    assert_bits_equal(opt.state[0]["momentum_buffer"], expected)


def test_sgd_nesterov_first_step(backend, dtype):
    p = vector(dtype, 2.0, -1.0)
    g = vector(dtype, 0.5, 4.0)
    expected = p - dtype(0.1) * (g + dtype(0.9) * g)
    fastopt.SGD([p], lr=0.1, momentum=0.9, nesterov=True, backend=backend).step([g])
    assert_bits_equal(p, expected)


def test_sgd_maximize_still_decays_weights(backend, dtype):
    p = vector(dtype, 1.0)
    fastopt.SGD([p], lr=0.1, weight_decay=0.5, maximize=True, backend=backend).step([vector(dtype, 0.0)])
    assert p[0] == dtype(0.95)  # torch's documented example: p = 1, g = 0 -> 0.95


def test_adagrad_accumulator_after_t_constant_gradients(backend, dtype):
    p = vector(dtype, 0.0, 0.0, 0.0)
    g = vector(dtype, 0.5, -0.25, 2.0)  # powers of two: every sum below is exact
    opt = fastopt.Adagrad([p], initial_accumulator_value=0.125, backend=backend)
    for _ in range(6):
        opt.step([g])
    assert_bits_equal(opt.state[0]["sum"], dtype(0.125) + 6 * g * g)
    assert opt.state[0]["step"] == 6


def test_adagrad_first_step_is_lr_times_sign(backend, dtype):
    p = vector(dtype, 0.0, 0.0)
    g = vector(dtype, 3.0, -0.01)
    fastopt.Adagrad([p], lr=0.1, eps=0.0, backend=backend).step([g])
    np.testing.assert_allclose(p, [-0.1, 0.1], rtol=1e-6)  # g / sqrt(g^2) = sign(g)


def test_rmsprop_first_step(backend, dtype):
    p = vector(dtype, 1.0, 1.0)
    g = vector(dtype, 2.0, -0.5)
    fastopt.RMSprop([p], lr=0.01, rho=0.9, eps=1e-8, backend=backend).step([g])
    expected = 1.0 - 0.01 * g / (np.sqrt(0.1) * np.abs(g) + 1e-8)  # v_1 = (1 - rho) g^2
    np.testing.assert_allclose(p, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_adam_first_step_is_lr_g_over_abs_g(backend, dtype):
    p = vector(dtype, 0.0, 0.0, 0.0)
    g = vector(dtype, 3.0, -0.02, 1e-3)
    opt = fastopt.Adam([p], lr=0.1, eps=1e-8, backend=backend)
    opt.step([g])
    # m_hat = g and v_hat = g^2 at t = 1, so the step is -lr * g / (|g| + eps)
    expected = -0.1 * g.astype(np.float64) / (np.abs(g.astype(np.float64)) + 1e-8)
    np.testing.assert_allclose(p, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_adamw_with_zero_gradient_shrinks_by_one_minus_lr_wd(backend, dtype):
    p = vector(dtype, 1.0, -3.0, 0.5)
    expected = p.copy()
    opt = fastopt.AdamW([p], lr=0.01, weight_decay=0.1, backend=backend)
    for _ in range(5):
        opt.step([np.zeros_like(p)])
        expected = expected * dtype(1 - 0.01 * 0.1)
    assert_bits_equal(p, expected)


def test_adamw_without_decay_is_adam(backend, dtype):
    rng = np.random.default_rng(1)
    p_adam = rng.standard_normal(33).astype(dtype)
    p_adamw = p_adam.copy()
    adam = fastopt.Adam([p_adam], lr=0.01, amsgrad=True, backend=backend)
    adamw = fastopt.AdamW([p_adamw], lr=0.01, weight_decay=0.0, amsgrad=True, backend=backend)
    for _ in range(5):
        g = rng.standard_normal(33).astype(dtype)
        adam.step([g])
        adamw.step([g])
    assert_bits_equal(p_adamw, p_adam)


def test_amsgrad_denominator_never_shrinks(backend, dtype):
    p = vector(dtype, 0.0)
    opt = fastopt.Adam([p], lr=0.1, amsgrad=True, backend=backend)
    opt.step([vector(dtype, 10.0)])
    peak = opt.state[0]["max_exp_avg_sq"].copy()
    for _ in range(5):
        opt.step([vector(dtype, 0.0)])
        assert opt.state[0]["max_exp_avg_sq"][0] == peak[0]  # v decays, its maximum stays
        assert opt.state[0]["exp_avg_sq"][0] < peak[0]
