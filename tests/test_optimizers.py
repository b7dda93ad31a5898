"""Each optimizer's own arithmetic, checked against results known without another backend.

Hand-computed results per optimizer, on every backend and in both dtypes (scikit-learn's
"specific values" idea: exact where the arithmetic is exact, such as plain SGD, Adadelta with
rho = 1 or Lion's steps of exactly lr, within a tolerance elsewhere); the defaults each takes from
torch.optim or lion-pytorch; RAdam's rectification, a per-step branch; Rprop's step sizes on a parabola, where every
number is a power of two; and Lion, which torch.optim
does not have, against the formula of lion-pytorch (semantics.md section 6) and, when it is
installed, lion-pytorch itself.
"""

import numpy as np
import pytest
from helpers import relative_difference
from specs import DTYPES, SPECS, assert_bits_equal

import fastopt

BACKENDS = fastopt.BACKENDS


def every_backend_and_dtype(test):
    """Parametrize ``test`` over every backend and both dtypes."""
    return pytest.mark.parametrize("dtype", DTYPES)(pytest.mark.parametrize("backend", BACKENDS)(test))


# --------------------------------------------------------------------------------------------
# Hand-computed results
# --------------------------------------------------------------------------------------------
def vector(dtype, *values):
    return np.array(values, dtype=dtype)


@every_backend_and_dtype
def test_plain_sgd_is_p_minus_lr_g_exactly(backend, dtype):
    p = vector(dtype, 1.0, -2.0, 3.5, 0.0)
    g = vector(dtype, 0.1, 0.2, -0.3, 7.0)
    expected = p - dtype(0.05) * g
    fastopt.SGD([p], lr=0.05, backend=backend).step([g])
    assert_bits_equal(p, expected)


@every_backend_and_dtype
def test_sgd_first_momentum_step_ignores_dampening(backend, dtype):
    p = vector(dtype, 1.0, 1.0)
    g1, g2 = vector(dtype, 1.0, -2.0), vector(dtype, 0.5, 0.25)
    opt = fastopt.SGD([p], lr=0.1, momentum=0.9, dampening=0.5, backend=backend)
    opt.step([g1])
    assert_bits_equal(opt.state[0]["momentum_buffer"], g1)  # b_1 = d_1, no (1 - tau)
    opt.step([g2])
    expected = dtype(0.9) * g1 + dtype(0.5) * g2  # torch: [1, -2] then [1.4, -2.8] for g2 = g1
    assert_bits_equal(opt.state[0]["momentum_buffer"], expected)


@every_backend_and_dtype
def test_sgd_nesterov_first_step(backend, dtype):
    p = vector(dtype, 2.0, -1.0)
    g = vector(dtype, 0.5, 4.0)
    expected = p - dtype(0.1) * (g + dtype(0.9) * g)
    fastopt.SGD([p], lr=0.1, momentum=0.9, nesterov=True, backend=backend).step([g])
    assert_bits_equal(p, expected)


@every_backend_and_dtype
def test_sgd_maximize_still_decays_weights(backend, dtype):
    p = vector(dtype, 1.0)
    fastopt.SGD([p], lr=0.1, weight_decay=0.5, maximize=True, backend=backend).step([vector(dtype, 0.0)])
    assert p[0] == dtype(0.95)  # torch's documented example: p = 1, g = 0 -> 0.95


@every_backend_and_dtype
def test_adagrad_accumulator_after_t_constant_gradients(backend, dtype):
    p = vector(dtype, 0.0, 0.0, 0.0)
    g = vector(dtype, 0.5, -0.25, 2.0)  # powers of two: every sum below is exact
    opt = fastopt.Adagrad([p], initial_accumulator_value=0.125, backend=backend)
    for _ in range(6):
        opt.step([g])
    assert_bits_equal(opt.state[0]["sum"], dtype(0.125) + 6 * g * g)
    assert opt.state[0]["step"] == 6


@every_backend_and_dtype
def test_adagrad_first_step_is_lr_times_sign(backend, dtype):
    p = vector(dtype, 0.0, 0.0)
    g = vector(dtype, 3.0, -0.01)
    fastopt.Adagrad([p], lr=0.1, eps=0.0, backend=backend).step([g])
    np.testing.assert_allclose(p, [-0.1, 0.1], rtol=1e-6)  # g / sqrt(g^2) = sign(g)


@every_backend_and_dtype
def test_rmsprop_first_step(backend, dtype):
    p = vector(dtype, 1.0, 1.0)
    g = vector(dtype, 2.0, -0.5)
    fastopt.RMSprop([p], lr=0.01, rho=0.9, eps=1e-8, backend=backend).step([g])
    expected = 1.0 - 0.01 * g / (np.sqrt(0.1) * np.abs(g) + 1e-8)  # v_1 = (1 - rho) g^2
    np.testing.assert_allclose(p, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


@every_backend_and_dtype
def test_adam_first_step_is_lr_g_over_abs_g(backend, dtype):
    p = vector(dtype, 0.0, 0.0, 0.0)
    g = vector(dtype, 3.0, -0.02, 1e-3)
    opt = fastopt.Adam([p], lr=0.1, eps=1e-8, backend=backend)
    opt.step([g])
    # m_hat = g and v_hat = g^2 at t = 1, so the step is -lr * g / (|g| + eps)
    expected = -0.1 * g.astype(np.float64) / (np.abs(g.astype(np.float64)) + 1e-8)
    np.testing.assert_allclose(p, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


@every_backend_and_dtype
def test_adamw_with_zero_gradient_shrinks_by_one_minus_lr_wd(backend, dtype):
    p = vector(dtype, 1.0, -3.0, 0.5)
    expected = p.copy()
    opt = fastopt.AdamW([p], lr=0.01, weight_decay=0.1, backend=backend)
    for _ in range(5):
        opt.step([np.zeros_like(p)])
        expected = expected * dtype(1 - 0.01 * 0.1)
    assert_bits_equal(p, expected)


@every_backend_and_dtype
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


@every_backend_and_dtype
def test_amsgrad_denominator_never_shrinks(backend, dtype):
    p = vector(dtype, 0.0)
    opt = fastopt.Adam([p], lr=0.1, amsgrad=True, backend=backend)
    opt.step([vector(dtype, 10.0)])
    peak = opt.state[0]["max_exp_avg_sq"].copy()
    for _ in range(5):
        opt.step([vector(dtype, 0.0)])
        assert opt.state[0]["max_exp_avg_sq"][0] == peak[0]  # v decays, its maximum stays
        assert opt.state[0]["exp_avg_sq"][0] < peak[0]


@every_backend_and_dtype
def test_adadelta_with_rho_one_is_plain_sgd(backend, dtype):
    # rho = 1: both means stay 0, so delta = sqrt(eps) / sqrt(eps) * d = d exactly
    p = vector(dtype, 1.0, -2.0, 3.5, 0.0)
    g = vector(dtype, 0.1, 0.2, -0.3, 7.0)
    expected = p - dtype(0.05) * g
    opt = fastopt.Adadelta([p], lr=0.05, rho=1.0, backend=backend)
    opt.step([g])
    assert_bits_equal(p, expected)
    assert not opt.state[0]["square_avg"].any() and not opt.state[0]["acc_delta"].any()


@every_backend_and_dtype
def test_adadelta_first_step_is_set_by_eps(backend, dtype):
    p = vector(dtype, 0.0, 0.0)
    g = vector(dtype, 3.0, -0.01)
    fastopt.Adadelta([p], backend=backend).step([g])  # lr = 1, rho = 0.9, eps = 1e-6
    g64 = g.astype(np.float64)
    expected = -np.sqrt(1e-6) / np.sqrt(0.1 * g64 * g64 + 1e-6) * g64
    np.testing.assert_allclose(p, expected, rtol=1e-5 if dtype == np.float32 else 1e-14)


@every_backend_and_dtype
def test_adamax_norm_under_constant_gradients_is_abs_g_plus_eps(backend, dtype):
    p = vector(dtype, 0.0, 0.0, 0.0)
    g = vector(dtype, 0.5, -0.25, 2.0)
    opt = fastopt.Adamax([p], eps=1e-8, backend=backend)
    for _ in range(6):
        opt.step([g])
        # u_1 = |g| + eps, then max(beta2 * u, |g| + eps) keeps |g| + eps
        assert_bits_equal(opt.state[0]["exp_inf"], np.abs(g) + dtype(1e-8))


@every_backend_and_dtype
def test_adamax_norm_forgets_a_spike_geometrically(backend, dtype):
    p = vector(dtype, 0.0)
    opt = fastopt.Adamax([p], betas=(0.9, 0.5), eps=0.0, backend=backend)
    opt.step([vector(dtype, 64.0)])
    for k in range(1, 6):
        opt.step([vector(dtype, 1.0)])
        assert opt.state[0]["exp_inf"][0] == 64.0 * 0.5**k  # exact: powers of two


@every_backend_and_dtype
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


@every_backend_and_dtype
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


@every_backend_and_dtype
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


@every_backend_and_dtype
def test_lion_sign_rule_for_zero_and_nan(backend, dtype):
    p = vector(dtype, 1.0, -0.0, 1.0, 1.0)
    g = vector(dtype, 0.0, -0.0, np.nan, -1.0)
    fastopt.Lion([p], lr=0.25, backend=backend).step([g])
    # sign(0) = 0: no movement, and -0.0 stays -0.0; sign(NaN) = NaN reaches the weight
    assert_bits_equal(p, vector(dtype, 1.0, -0.0, np.nan, 1.25))



@every_backend_and_dtype
def test_rprop_on_a_parabola_grows_halves_and_settles_exactly(backend, dtype):
    """f(w) = (w - 3)^2 from w = 0, lr = 0.5, etas = (0.5, 2): every step size is a power of two,
    so every number is exact. Steps 1-3 repeat the sign (0.5, 1, 2: the step doubles), step 4
    overshoots to 3.5 and flips it (halved to 1, no move, prev = 0), step 5 counts as neither
    (step size kept, w = 2.5), step 6 flips again (0.5, no move), step 7 lands on 3 and step 8,
    with g = 0, stays there (sign(0) = 0)."""
    w = vector(dtype, 0.0)
    opt = fastopt.Rprop([w], lr=0.5, etas=(0.5, 2.0), step_sizes=(1e-6, 50.0), backend=backend)
    path, sizes = [], []
    for _ in range(8):
        opt.step([2 * (w - dtype(3.0))])
        path.append(float(w[0]))
        sizes.append(float(opt.state[0]["step_size"][0]))
    assert path == [0.5, 1.5, 3.5, 3.5, 2.5, 2.5, 3.0, 3.0]
    assert sizes == [0.5, 1.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    assert opt.state[0]["prev"][0] == 0.0 and opt.state[0]["step"] == 8


@every_backend_and_dtype
def test_rprop_clamps_every_step_size_at_every_step(backend, dtype):
    """As torch: the bounds apply at the first step too, where the sign is neither repeated nor
    flipped (a starting lr above Delta_max steps by Delta_max); and the step sizes cap there."""
    w = vector(dtype, 0.0, 0.0)
    opt = fastopt.Rprop([w], lr=100.0, step_sizes=(1e-6, 50.0), backend=backend)
    opt.step([vector(dtype, 1.0, -1.0)])
    assert_bits_equal(w, vector(dtype, -50.0, 50.0))
    w2 = vector(dtype, 0.0)
    small = fastopt.Rprop([w2], lr=0.0, step_sizes=(0.25, 1.0), etas=(0.5, 8.0), backend=backend)
    for expected in (0.25, 1.0, 1.0):  # 0 -> 0.25 (the floor), x8 -> capped at 1, stays capped
        small.step([vector(dtype, 1.0)])
        assert small.state[0]["step_size"][0] == expected


@every_backend_and_dtype
def test_rprop_nan_and_infinite_gradients_follow_torch_sign(backend, dtype):
    """torch.sign(NaN) = 0: a NaN derivative moves nothing and keeps its step size; it is kept in
    prev, where next step its NaN product leaves the step size as it is again. An infinite
    derivative is a sign like any other."""
    w = vector(dtype, 1.0, 1.0, 1.0, -0.0)
    opt = fastopt.Rprop([w], lr=0.25, etas=(0.5, 2.0), backend=backend)
    opt.step([vector(dtype, np.nan, np.inf, -np.inf, 0.0)])
    assert_bits_equal(w, vector(dtype, 1.0, 0.75, 1.25, -0.0))
    assert_bits_equal(opt.state[0]["prev"], vector(dtype, np.nan, np.inf, -np.inf, 0.0))
    opt.step([vector(dtype, 1.0, 1.0, 1.0, 1.0)])
    # NaN * 1 is NaN: factor 1; inf * 1 > 0: doubled; -inf * 1 < 0: halved, no move
    assert_bits_equal(opt.state[0]["step_size"], vector(dtype, 0.25, 0.5, 0.125, 0.25))
    assert_bits_equal(w, vector(dtype, 0.75, 0.25, 1.25, -0.25))


@every_backend_and_dtype
def test_rprop_reads_lr_only_when_it_creates_the_step_sizes(backend, dtype):
    """Changing lr after the first step changes nothing (torch's rule); a parameter whose first
    step comes later starts from the lr of that moment."""
    a, b = vector(dtype, 0.0), vector(dtype, 0.0)
    opt = fastopt.Rprop([a, b], lr=0.5, etas=(0.5, 2.0), backend=backend)
    opt.step([vector(dtype, 1.0), None])
    opt.param_groups[0]["lr"] = 0.125
    opt.step([vector(dtype, 1.0), vector(dtype, 1.0)])
    assert a[0] == -1.5 and b[0] == -0.125

@every_backend_and_dtype
def test_asgd_average_is_the_mean_of_the_iterates_from_step_t0_plus_2(backend, dtype):
    # lambd = 0 keeps eta_t = lr, and a constant gradient makes theta_t = -lr * t exactly; with
    # t0 = 2, mu_t = 1 up to step 4 (ax is theta), then 1/2, 1/3, 1/4, 1/5 (a running mean)
    p = vector(dtype, 0.0, 0.0)
    opt = fastopt.ASGD([p], lr=0.5, lambd=0.0, t0=2, backend=backend)
    g = vector(dtype, 1.0, -2.0)
    for t in range(1, 9):
        opt.step([g])
        assert_bits_equal(p, dtype(-0.5 * t) * g, f"theta at t = {t}")
        if t <= 4:
            assert_bits_equal(opt.state[0]["ax"], p, f"ax at t = {t}")
    # the mean of theta_4 ... theta_8 = -0.5 * 6 * g (mu = 1/3 is rounded: close, not exact)
    np.testing.assert_allclose(opt.state[0]["ax"], -3.0 * g, rtol=1e-6)


@every_backend_and_dtype
def test_asgd_step_size_and_averaging_weight_follow_their_schedules(backend, dtype):
    lr, lambd, alpha, t0 = 0.1, 0.5, 0.75, 3.0
    p = vector(dtype, 1.0, -2.0)
    opt = fastopt.ASGD([p], lr=lr, lambd=lambd, alpha=alpha, t0=t0, backend=backend)
    eta = np.float32(lr)  # eta_1: the step size of the first step
    for t in range(1, 8):
        before = p.copy()
        opt.step([vector(dtype, 0.0, 0.0)])  # no gradient: the step only shrinks theta (3)
        assert_bits_equal(p, before * dtype(1.0 - lambd * float(eta)), f"t = {t}")
        state = opt.state[0]
        # eta_{t+1} (5) and mu_{t+1} (6), float32 as torch keeps them
        eta = np.float32(lr / (1 + lambd * lr * t) ** alpha)
        assert type(state["eta"]) is np.float32 and state["eta"] == eta
        assert type(state["mu"]) is np.float32 and state["mu"] == np.float32(1 / max(1, t - t0))


@every_backend_and_dtype
def test_adabelief_first_step_is_lr_over_beta1_whatever_the_gradient_scale(backend, dtype):
    # m_1 = (1 - beta1) g and the surprise r_1 = g - m_1 = beta1 g (the deviation from the NEW
    # mean), so s_1 / (1 - beta2) = beta1^2 g^2 and the step is lr * g / (beta1 |g|): 2 lr for
    # beta1 = 1/2, exactly (powers of two throughout). From the old mean (0) it would be lr.
    g = vector(dtype, 2.0**-20, -1.0, 2.0**20, -(2.0**-3))
    for beta2 in (0.5, 0.75):
        p = vector(dtype, 1.0, 1.0, 1.0, 1.0)
        opt = fastopt.AdaBelief([p], lr=2.0**-6, betas=(0.5, beta2), eps=0.0, eps_root=0.0, backend=backend)
        opt.step([g])
        assert_bits_equal(p, vector(dtype, 1.0, 1.0, 1.0, 1.0) - dtype(2.0**-5) * np.sign(g), f"beta2 = {beta2}")
        assert_bits_equal(opt.state[0]["exp_avg_var"], dtype(1 - beta2) * (dtype(0.5) * g) ** 2)


@every_backend_and_dtype
def test_adabelief_without_momentum_is_sgd_with_a_fixed_step(backend, dtype):
    # beta1 = 0: every gradient is its own mean, the surprise is 0 and s_t only accumulates
    # eps_root, s_t = eps_root (1 - beta2^t) / (1 - beta2): its bias-corrected value is
    # eps_root / (1 - beta2) at every step, so theta moves by lr g / (sqrt(eps_root / (1 - beta2)) + eps)
    eps_root, beta2, eps, lr = 2.0**-12, 0.75, 2.0**-10, 2.0**-4
    tolerance = 1e-6 if dtype == np.float32 else 1e-14
    p = vector(dtype, 0.5, -1.0, 3.0)
    opt = fastopt.AdaBelief([p], lr=lr, betas=(0.0, beta2), eps=eps, eps_root=eps_root, backend=backend)
    rng = np.random.default_rng(5)
    for t in range(1, 9):
        before, g = p.astype(np.float64), rng.standard_normal(3).astype(dtype)
        opt.step([g])
        step = lr * g.astype(np.float64) / ((eps_root / (1 - beta2)) ** 0.5 + eps)
        np.testing.assert_allclose(before - p, step, rtol=tolerance, atol=tolerance * np.abs(before).max())
        np.testing.assert_allclose(opt.state[0]["exp_avg_var"], np.full(3, eps_root * (1 - beta2**t) / (1 - beta2)),
                                   rtol=tolerance)


@every_backend_and_dtype
def test_adabelief_weight_decay_by_lr_or_fixed(backend, dtype):
    # a zero gradient leaves only the decay (2): 1 - lr * lambda per step, or with fixed_decay
    # (the authors' option) 1 - lambda whatever lr; as an L2 term it is a gradient instead
    for options, factor in ((dict(), 1 - 0.5 * 0.25), (dict(fixed_decay=True), 1 - 0.25)):
        p = vector(dtype, 1.0, -2.0)
        opt = fastopt.AdaBelief([p], lr=0.5, weight_decay=0.25, backend=backend, **options)
        expected = p.copy()
        for _ in range(4):
            opt.step([vector(dtype, 0.0, 0.0)])
            expected = expected * dtype(factor)
            assert_bits_equal(p, expected, str(options))
    p = vector(dtype, 1.0, -2.0)
    fastopt.AdaBelief([p], lr=2.0**-4, betas=(0.5, 0.5), eps=0.0, eps_root=0.0, weight_decay=0.25,
                      decoupled_weight_decay=False, fixed_decay=True, backend=backend).step([vector(dtype, 0.0, 0.0)])
    assert_bits_equal(p, vector(dtype, 1.0, -2.0) - dtype(2.0**-3) * np.sign(vector(dtype, 1.0, -2.0)))  # lr / beta1


@every_backend_and_dtype
def test_adabelief_zero_gradient_moves_nothing_and_keeps_eps_root(backend, dtype):
    # m stays 0, so the step is 0 exactly; s_t = beta2 s_{t-1} + eps_root, eps_root kept in the state
    p = vector(dtype, 1.0, -2.0)
    opt = fastopt.AdaBelief([p], lr=0.1, betas=(0.9, 0.5), eps_root=2.0**-10, backend=backend)
    s = dtype(0.0)
    for _ in range(5):
        opt.step([vector(dtype, 0.0, 0.0)])
        s = dtype(0.5) * s + dtype(2.0**-10)
        assert_bits_equal(p, vector(dtype, 1.0, -2.0))
        assert_bits_equal(opt.state[0]["exp_avg_var"], np.full(2, s, dtype))


@every_backend_and_dtype
def test_adopt_first_step_only_sets_the_second_moment(backend, dtype):
    # (3): v_1 = d_1^2 (with the L2 term of (2) in d_1, as the authors' package), theta and m
    # untouched, also for a NaN or infinite gradient and with decoupled decay (4) from step 2 only
    g = vector(dtype, 2.0**-20, -1.0, np.inf, np.nan)
    for options in (dict(), dict(weight_decay=0.5, decouple=True), dict(clip_lambda=None)):
        p = vector(dtype, 1.0, -2.0, 3.0, 4.0)
        opt = fastopt.ADOPT([p], lr=0.5, backend=backend, **options)
        opt.step([g])
        assert_bits_equal(p, vector(dtype, 1.0, -2.0, 3.0, 4.0), str(options))
        assert_bits_equal(opt.state[0]["exp_avg"], np.zeros(4, dtype), str(options))
        assert_bits_equal(opt.state[0]["exp_avg_sq"], g * g, str(options))
    p = vector(dtype, 1.0, -2.0)
    opt = fastopt.ADOPT([p], weight_decay=0.5, backend=backend)
    opt.step([vector(dtype, 1.0, 1.0)])
    assert_bits_equal(opt.state[0]["exp_avg_sq"], vector(dtype, 1.5**2, 0.0))


@every_backend_and_dtype
def test_adopt_second_step_is_clipped_at_one(backend, dtype):
    # step 2 normalises g_2 by |g_1| (5) and clips at clip_lambda(1) = 1 (6): m_2 = (1 - beta1) u_2,
    # theta moves by lr (1 - beta1) clip(g_2 / |g_1|, 1); powers of two throughout, so exact
    g1, g2 = vector(dtype, 4.0, -4.0, 2.0**-30, 1.0), vector(dtype, 2.0, 8.0, -1.0, 0.0)
    for clip_lambda, u in ((fastopt.adopt.quarter_power, vector(dtype, 0.5, 1.0, -1.0, 0.0)),
                           (None, vector(dtype, 0.5, 2.0, -(2.0**30), 0.0))):
        p = vector(dtype, 1.0, 1.0, 1.0, 1.0)
        opt = fastopt.ADOPT([p], lr=2.0**-4, betas=(0.5, 0.75), eps=2.0**-40, clip_lambda=clip_lambda, backend=backend)
        opt.step([g1])
        opt.step([g2])
        assert_bits_equal(opt.state[0]["exp_avg"], dtype(0.5) * u, str(clip_lambda))
        assert_bits_equal(p, vector(dtype, 1.0, 1.0, 1.0, 1.0) - dtype(2.0**-5) * u, str(clip_lambda))
        assert_bits_equal(opt.state[0]["exp_avg_sq"], dtype(0.75) * g1 * g1 + dtype(0.25) * (g2 * g2), str(clip_lambda))


def _adopt_paper(w, grads, lr, beta1, beta2, eps, clip_lambda, weight_decay=0.0, decouple=False):
    """The paper's Algorithm (clipped version, arXiv:2411.02853v3), transcribed in float64 without
    regard for rounding, with the authors' package's weight decay: a second oracle beside optax."""
    w = w.astype(np.float64).copy()
    m, v = np.zeros_like(w), None
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if weight_decay and not decouple:
            g = g + weight_decay * w
        if v is None:
            v = g**2
            continue
        if weight_decay and decouple:
            w = w - lr * weight_decay * w
        u = g / np.maximum(np.sqrt(v), eps)
        if clip_lambda is not None:
            u = np.clip(u, -clip_lambda(t - 1), clip_lambda(t - 1))
        m = beta1 * m + (1 - beta1) * u
        w = w - lr * m
        v = beta2 * v + (1 - beta2) * g**2
    return w


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("options", [dict(), dict(weight_decay=0.1), dict(weight_decay=0.1, decouple=True),
                                     dict(clip_lambda=None, betas=(0.5, 0.9))], ids=["defaults", "l2", "decouple", "no-clip"])
def test_adopt_matches_a_float64_transcription_of_the_paper(backend, options):
    rng = np.random.default_rng(24)
    w0 = rng.standard_normal(257)
    grads = [rng.standard_normal(257) * np.exp(rng.uniform(-3, 2)) for _ in range(25)]
    p = w0.copy()
    opt = fastopt.ADOPT([p], lr=0.01, backend=backend, **options)
    for g in grads:
        opt.step([g])
    merged = dict(dict(betas=(0.9, 0.9999), eps=1e-6, clip_lambda=fastopt.adopt.quarter_power), **options)
    expected = _adopt_paper(w0, grads, 0.01, *merged.pop("betas"), **merged)
    assert relative_difference(p, expected) <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_adopt_clip_lambda_must_return_a_nonnegative_number(backend):
    p = np.ones(3)
    for bad, message in ((lambda s: -1.0, r"Invalid clip_lambda value: clip_lambda\(1\) = -1.0"),
                         (lambda s: float("nan"), r"Invalid clip_lambda value: clip_lambda\(1\) = nan"),
                         (lambda s: "1", r"clip_lambda\(1\) must return a real number, got str '1'")):
        opt = fastopt.ADOPT([p], clip_lambda=bad, backend=backend)
        opt.step([np.ones(3)])  # the first step does not call it
        with pytest.raises(ValueError, match=message):
            opt.step([np.ones(3)])
        assert_bits_equal(p, np.ones(3))
        assert opt.state[0]["step"] == 1


# --------------------------------------------------------------------------------------------
# Defaults and RAdam's rectification
# --------------------------------------------------------------------------------------------
def test_defaults_are_torchs_and_lion_pytorchs():
    defaults = {name: fastopt.OPTIMIZERS[name]([np.zeros(1)]).defaults for name in ("Adadelta", "Adamax", "NAdam", "RAdam", "Lion", "Rprop")}
    assert defaults["Adadelta"] == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False,
                                        decoupled_weight_decay=False)
    assert defaults["Adamax"] == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False,
                                      eps_outside_max=False, decoupled_weight_decay=False)
    assert defaults["NAdam"] == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                                     decoupled_weight_decay=False, maximize=False)
    assert defaults["RAdam"] == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                     decoupled_weight_decay=False, maximize=False)
    assert defaults["Lion"] == dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False)
    assert defaults["Rprop"] == dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False)
    assert fastopt.ASGD([np.zeros(1)]).defaults == dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0,
                                                        maximize=False)
    # optax's adabelief and the authors' package (lr is the package's; optax has no default)
    assert fastopt.AdaBelief([np.zeros(1)]).defaults == dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0.0, amsgrad=False, maximize=False, eps_root=1e-16,
        decoupled_weight_decay=True, fixed_decay=False)
    # optax's contrib.adopt and the authors' torch-adopt (lr is the package's)
    assert fastopt.ADOPT([np.zeros(1)]).defaults == dict(
        lr=1e-3, betas=(0.9, 0.9999), eps=1e-6, clip_lambda=fastopt.adopt.quarter_power, weight_decay=0.0,
        decouple=False, maximize=False)


def test_radam_rectification_starts_at_step_six_for_beta2_0999():
    rho = [fastopt.RAdam.rectification(0.999, t)[0] for t in range(1, 8)]
    assert [r > 5 for r in rho] == [False] * 5 + [True] * 2
    rho_t, rect = fastopt.RAdam.rectification(0.999, 10**6)
    assert rho_t == pytest.approx(2 / (1 - 0.999) - 1) and rect == pytest.approx(1.0)  # r_t -> 1
    assert all(fastopt.RAdam.rectification(0.5, t)[0] <= 5 for t in range(1, 100))  # rho_inf = 3


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
