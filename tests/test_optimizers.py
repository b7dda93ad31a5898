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


def test_adadelta_with_rho_one_is_plain_sgd(backend, dtype):
    # rho = 1: both means stay 0, so delta = sqrt(eps) / sqrt(eps) * d = d exactly
    p = vector(dtype, 1.0, -2.0, 3.5, 0.0)
    g = vector(dtype, 0.1, 0.2, -0.3, 7.0)
    expected = p - dtype(0.05) * g
    opt = fastopt.Adadelta([p], lr=0.05, rho=1.0, backend=backend)
    opt.step([g])
    assert_bits_equal(p, expected)
    assert not opt.state[0]["square_avg"].any() and not opt.state[0]["acc_delta"].any()


def test_adadelta_first_step_is_set_by_eps(backend, dtype):
    p = vector(dtype, 0.0, 0.0)
    g = vector(dtype, 3.0, -0.01)
    fastopt.Adadelta([p], backend=backend).step([g])  # lr = 1, rho = 0.9, eps = 1e-6
    g64 = g.astype(np.float64)
    expected = -np.sqrt(1e-6) / np.sqrt(0.1 * g64 * g64 + 1e-6) * g64
    np.testing.assert_allclose(p, expected, rtol=1e-5 if dtype == np.float32 else 1e-14)


def test_adamax_norm_under_constant_gradients_is_abs_g_plus_eps(backend, dtype):
    p = vector(dtype, 0.0, 0.0, 0.0)
    g = vector(dtype, 0.5, -0.25, 2.0)
    opt = fastopt.Adamax([p], eps=1e-8, backend=backend)
    for _ in range(6):
        opt.step([g])
        # u_1 = |g| + eps, then max(beta2 * u, |g| + eps) keeps |g| + eps
        assert_bits_equal(opt.state[0]["exp_inf"], np.abs(g) + dtype(1e-8))


def test_adamax_norm_forgets_a_spike_geometrically(backend, dtype):
    p = vector(dtype, 0.0)
    opt = fastopt.Adamax([p], betas=(0.9, 0.5), eps=0.0, backend=backend)
    opt.step([vector(dtype, 64.0)])
    for k in range(1, 6):
        opt.step([vector(dtype, 1.0)])
        assert opt.state[0]["exp_inf"][0] == 64.0 * 0.5**k  # exact: powers of two


def test_nadam_mu_product_is_float32_as_in_torch(backend, dtype):
    p = vector(dtype, 0.0, 1.0)
    opt = fastopt.NAdam([p], backend=backend)
    for _ in range(5):
        opt.step([vector(dtype, 0.5, -0.5)])
    mu_product = opt.state[0]["mu_product"]
    assert type(mu_product) is np.float32
    # torch 2.13's value after 5 steps (semantics.md, section 3.8); a float64 product would
    # give 0.018498037624013104
    assert float(mu_product) == 0.01849803701043129


def test_radam_first_five_steps_are_momentum_steps(backend, dtype):
    # beta1 = 0.5 and a constant gradient: m_hat_t = g exactly, so the unrectified steps (t <= 5
    # for beta2 = 0.999) are exactly theta - t * lr * g; rectification starts at t = 6
    p = vector(dtype, 1.0, -2.0, 0.5)
    g = vector(dtype, 0.5, -0.25, 2.0)
    start = p.copy()
    opt = fastopt.RAdam([p], lr=0.125, betas=(0.5, 0.999), backend=backend)
    for t in range(1, 6):
        opt.step([g])
        assert_bits_equal(p, start - dtype(t * 0.125) * g, f"t = {t}")
    before = p.copy()
    opt.step([g])
    assert not np.array_equal(p, before - dtype(0.125) * g)  # t = 6: the adaptive, rectified step


def test_lion_step_is_exactly_plus_or_minus_lr(backend, dtype):
    rng = np.random.default_rng(3)
    lr = 2.0**-6
    p = (rng.integers(-64, 64, 50) * lr).astype(dtype)  # multiples of lr: every p -+ lr is exact
    opt = fastopt.Lion([p], lr=lr, backend=backend)
    for step in range(6):
        before = p.copy()
        g = rng.standard_normal(50).astype(dtype)
        opt.step([g])
        assert np.all(np.abs(p - before) == dtype(lr))
        if step == 0:  # m_0 = 0: the first direction is sign(g)
            assert_bits_equal(p, before - dtype(lr) * np.sign(g))


def test_lion_sign_rule_for_zero_and_nan(backend, dtype):
    p = vector(dtype, 1.0, -0.0, 1.0, 1.0)
    g = vector(dtype, 0.0, -0.0, np.nan, -1.0)
    fastopt.Lion([p], lr=0.25, backend=backend).step([g])
    # sign(0) = 0: no movement, and -0.0 stays -0.0; sign(NaN) = NaN reaches the weight
    assert_bits_equal(p, vector(dtype, 1.0, -0.0, np.nan, 1.25))
