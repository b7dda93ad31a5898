"""``python -m fastopt tour``: the experiments run end to end, and their verdicts can fail.

The quick tour runs once per test session (``quick_tour`` in conftest.py, shared with
test_responsive.py); the other tests check the pieces:
the RNN's backpropagation through time against finite differences, and each experiment's
verdict function on numbers constructed to refute its claim.
"""

import html
import math

import numpy as np
import pytest

from fastopt import cli
from fastopt.cli.tour import (
    EXPERIMENTS,
    adadelta_units,
    adafactor_memory,
    adagrad_stalls,
    backends,
    lbfgs_curvature,
    lion_sign,
    lr_sweep,
    radam_warmup,
    rho_memory,
    rnn,
    muon_singular_values,
    schedule_free,
    stepping_stones,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_quick_tour_writes_a_report_and_a_png_per_experiment(quick_tour):
    out, _, results = quick_tour
    assert sorted(results) == sorted(EXPERIMENTS)
    figures = [r.figure for r in results.values()] + [f for r in results.values() for f, _ in r.extra_figures]
    assert sorted(out.glob("*.png")) == sorted(figures)
    for figure in figures:
        data = figure.read_bytes()
        assert figure.parent == out and data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    report = (out / "report.html").read_text(encoding="utf-8")
    assert report.count("data:image/png;base64,") == len(figures)
    assert '<meta name="viewport"' in report
    assert len(report.encode()) < 5_000_000  # self-contained, and still a page a browser opens quickly
    assert "http://" not in report and "https://" not in report  # self-contained: no CDN, no links out
    for result in results.values():
        assert result.claim in html.unescape(report)
        assert result.verdict.label in report
    for kernel in ("rmsprop", "adagrad", "adam", "sgd", "adadelta", "radam", "lion"):  # reference kernels, as code
        assert f"fastopt/{kernel}/reference.py" in report and f"{kernel}_update" in report


def test_quick_tour_prints_claims_numbers_and_verdicts(quick_tour):
    _, printed, results = quick_tour
    for result in results.values():
        assert f"{result.number}. {result.title}" in printed
    assert printed.count("measured:") == len(EXPERIMENTS)
    supported = sum(r.verdict.supported for r in results.values())
    assert f"{supported} of {len(EXPERIMENTS)} claims supported" in printed


def test_quick_tour_numbers_are_in_range(quick_tour):
    _, _, results = quick_tour
    one = results[1].data
    assert one["adagrad_lr_ratio"] < 1.0  # Adagrad's effective lr at the end < at the start
    assert 0.5 < one["rmsprop_lr_ratio"] < 2.0
    assert one["late_loss"]["Adagrad"] > one["late_loss"]["RMSprop"]
    two = results[2].data
    assert two["late_losses"][0] > min(two["late_losses"])  # the smallest lr is not the best
    assert two["best"] in two["tied"]
    three = results[3].data
    for rho, steps in zip(three["rhos"], three["adapt_steps"]):
        assert 0.5 / (1 - rho) <= steps <= 2 / (1 - rho)
    four = results[4].data["steps"]
    assert all(four[p]["SGD"] > four[p]["SGD+momentum"] for p in four)
    five = results[5].data
    assert five["rmsprop_error"] < rnn.BASELINE_MSE
    assert five["growth"] > rnn.GROWTH > rnn.FLAT > five["stable_spread"]  # at init: no training involved
    six = results[6].data
    assert max(six["control_final"]) / min(six["control_final"]) < 1.01  # a unit-free control: same loss
    assert max(six["adadelta_final"]) / min(six["adadelta_final"]) > 2  # Adadelta: not unit-free
    assert six["first_step"][1.0] == pytest.approx(six["predicted_first_step"], rel=0.05)
    assert six["first_step"][0.01] == pytest.approx(six["first_step"][1.0], rel=0.05)  # same length in any units
    seven = results[7].data
    assert seven["adam_excess"] > 3 and seven["radam_band"] < seven["adam_excess"]
    assert seven["step_rms_first5"]["Adam"] > 5 * seven["step_rms_first5"]["RAdam"]
    assert seven["first_steps"]["Adam"] > 1 > seven["first_steps"]["RAdam"]
    assert max(seven["peaks"]["RAdam"]) <= max(seven["peaks"]["Adam"])
    assert 0 < seven["r_at"][6] < seven["r_at"][10] < 1
    eight = results[8].data
    assert eight["spike_fraction"] > 0.99 and eight["step_ratio"] > 1
    assert eight["best"]["Lion"] <= eight["best"]["Adam"]
    nine = results[9]
    assert nine.verdict.supported and all(v is None for v in nine.data["first_differences"].values())


def test_cli_options(tmp_path, capsys):
    assert cli.main(["tour", "--quick", "--only", "2", "--out", str(tmp_path), "--backend", "reference"]) == 0
    assert [p.name for p in tmp_path.glob("*.png")] == ["2_lr_sweep.png"]
    assert (tmp_path / "report.html").exists()
    assert "of 1 claims supported" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["tour", "--only", str(max(EXPERIMENTS) + 1)])


def test_rnn_bptt_matches_finite_differences():
    rng = np.random.default_rng(0)
    params = rnn.init_rnn(rng, hidden=5)
    x, y = rnn.adding_problem(4, 6, rng)
    _, grads = rnn.rnn_loss_and_grads(params, x, y)
    h = 1e-6
    for param, grad in zip(params, grads):
        numeric = np.empty_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + h
            up = rnn.rnn_loss_and_grads(params, x, y)[0]
            param[index] = saved - h
            down = rnn.rnn_loss_and_grads(params, x, y)[0]
            param[index] = saved
            numeric[index] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_mlp_backprop_matches_finite_differences():
    from fastopt.cli.tour.problems import mlp_init, mlp_loss_and_grads, two_moons

    rng = np.random.default_rng(1)
    params = mlp_init([2, 4, 3, 1], rng)
    x, y = two_moons(10, rng)
    _, grads = mlp_loss_and_grads(params, x, y)
    h = 1e-6
    for param, grad in zip(params, grads):
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + h
            up = mlp_loss_and_grads(params, x, y)[0]
            param[index] = saved - h
            down = mlp_loss_and_grads(params, x, y)[0]
            param[index] = saved
            assert grad[index] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)


# Each verdict on numbers that refute its claim (and, for contrast, numbers that support it).
def test_adagrad_verdict_can_fail():
    assert adagrad_stalls.verdict(0.03, 1.0, 1000.0).supported
    assert not adagrad_stalls.verdict(0.9, 1.0, 1000.0).supported  # Adagrad's rate did not decay
    assert not adagrad_stalls.verdict(0.03, 0.05, 1000.0).supported  # RMSprop's decayed too
    assert not adagrad_stalls.verdict(0.03, 1.0, 2.0).supported  # no real difference in loss


def test_lr_sweep_names_the_calmer_of_two_tied_runs_best():
    late = [0.7, 0.5, 0.3, 0.179, 0.179, 1.0, 12.0]  # seed 0: lr 0.01 and 0.1 tie, 0.1 oscillates
    climbs = [0, 0, 0, 0.12, 7.2, 61, 66]
    assert lr_sweep.best_index(late, climbs) == 3
    assert lr_sweep.tied_with_lowest(late) == [3, 4]
    assert lr_sweep.best_index([0.7, 0.5, 0.3, 0.2, 0.17, 1.0, 12.0], climbs) == 4  # 0.2 is 18% worse: no tie
    assert "best lr 0.01 " in lr_sweep.verdict(lr_sweep.LEARNING_RATES, late, 0.74, climbs).detail


def test_lr_sweep_verdict_can_fail():
    lrs = lr_sweep.LEARNING_RATES
    assert lr_sweep.verdict(lrs, [0.7, 0.5, 0.3, 0.2, 0.18, 1.0, 12.0], 0.74).supported
    assert not lr_sweep.verdict(lrs, [0.7, 0.5, 0.3, 0.2, 0.18, 0.17, 0.16], 0.74).supported  # highest is best
    assert not lr_sweep.verdict(lrs, [0.3, 0.5, 0.3, 0.2, 0.18, 1.0, 12.0], 0.74).supported  # low lr did not crawl
    assert not lr_sweep.verdict(lrs, [0.7, 0.5, 0.3, 0.2, 0.18, 0.2, 0.3], 0.74).supported  # high lr fine
    assert lr_sweep.verdict(lrs, [0.7, 0.5, 0.3, 0.2, 0.18, 1.0, math.nan], 0.74).supported  # NaN: diverged


def test_rho_verdict_can_fail():
    rhos = (0.5, 0.9, 0.99)
    assert rho_memory.verdict(rhos, [2, 10, 99], [1.3, 2.5, 5.0], [0.4, 0.15, 0.03]).supported
    assert not rho_memory.verdict(rhos, [2, 10, 400], [1.3, 2.5, 5.0], [0.4, 0.15, 0.03]).supported
    assert not rho_memory.verdict(rhos, [2, 10, 99], [1.3, 5.0, 2.5], [0.4, 0.15, 0.03]).supported
    assert not rho_memory.verdict(rhos, [2, 10, 99], [1.3, 2.5, 5.0], [0.4, 0.03, 0.15]).supported


def test_stepping_stones_verdict_can_fail():
    good = {"quadratic": {"SGD": 500, "SGD+momentum": 80, "Adagrad": 60, "RMSprop": 50, "Adam": 45}}
    assert stepping_stones.verdict(good).supported
    assert stepping_stones.verdict({"quadratic": {**good["quadratic"], "Adam": 95}}).supported  # 1.9x the fastest
    slow = {"quadratic": {**good["quadratic"], "Adam": 105}}  # 2.1x the fastest
    assert not stepping_stones.verdict(slow).supported
    assert not stepping_stones.verdict({"quadratic": {**good["quadratic"], "SGD": 80}}).supported  # SGD as fast
    never = {"quadratic": {**good["quadratic"], "Adam": math.inf}}
    assert not stepping_stones.verdict(never).supported


def test_rnn_verdict_can_fail():
    lrs = {"SGD": 0.1, "RMSprop": 0.001}
    assert rnn.verdict(500.0, 1.2, 0.05, 0.1, lrs).supported
    assert not rnn.verdict(500.0, 1.2, 0.08, 0.1, lrs).supported  # not 1.5x better than SGD
    assert not rnn.verdict(500.0, 1.2, 0.1, math.inf, lrs).supported  # SGD diverged, but RMSprop did not solve it
    assert not rnn.verdict(5.0, 1.2, 0.05, 0.1, lrs).supported  # no growth with the sequence length
    assert not rnn.verdict(500.0, 10.0, 0.05, 0.1, lrs).supported  # grows at gain 0.9 too: not the recurrence
    assert not rnn.verdict(500.0, 1.2, 0.05, 0.1, {**lrs, "RMSprop": rnn.LR_GRID[0]}).supported  # best on the edge
    assert not rnn.verdict(500.0, 1.2, 0.05, 0.1, {**lrs, "SGD": rnn.LR_GRID[-1]}).supported


def test_rnn_recurrent_gradient_explodes_with_length_only_above_gain_one():
    exploding = rnn.gradient_ratios(1.5, (10, 200), seed=0, n=32)
    stable = rnn.gradient_ratios(0.9, (10, 200), seed=0, n=32)
    assert rnn.growth(exploding) > 10 * rnn.growth(stable)
    assert exploding[200][3] == stable[200][3] == 1.0  # the readout w_o is the yardstick


def test_backends_verdict_can_fail():
    names = ["reference", "numba", "cython"]
    assert backends.verdict({("Adam", "numba"): None, ("Adam", "cython"): None}, names).supported
    assert not backends.verdict({("Adam", "numba"): None, ("Adam", "cython"): 7}, names).supported
    assert not backends.verdict({}, ["reference"]).supported  # nothing compared is not evidence


def test_backends_experiment_covers_every_optimizer():
    import fastopt

    assert list(backends.SETTINGS) == list(fastopt.OPTIMIZERS)


def test_backends_first_difference_finds_one_flipped_bit():
    reference = np.zeros((5, 3), np.float32)
    other = reference.copy()
    other[3, 1] = np.nextafter(np.float32(0), np.float32(1))
    assert backends.first_difference(reference, reference) is None
    assert backends.first_difference(other, reference) == 4


def test_adadelta_verdict_can_fail():
    first = {0.01: 0.00316, 0.1: 0.00316, 1.0: 0.00312, 10.0: 0.00166, 100.0: 1.95e-4}  # seed 0's
    units, eps = [0.01, 0.02, 0.27, 0.6, 0.9], [0.9, 0.6, 0.27, 0.1, 0.09]
    assert adadelta_units.verdict([0.26] * 5, units, eps, first).supported
    unit_free = [0.27, 0.27, 0.27, 0.27, 0.27]
    assert not adadelta_units.verdict([0.26] * 5, unit_free, eps, first).supported
    assert not adadelta_units.verdict([0.2, 0.26, 0.26, 0.26, 0.3], units, eps, first).supported  # control not unit-free
    assert not adadelta_units.verdict([0.26] * 5, units, [0.3, 0.28, 0.27, 0.26, 0.25], first).supported
    # a run that diverges at one scale only is a change with the units too; a diverging control is not unit-free
    assert adadelta_units.verdict([0.26] * 5, [0.27, math.nan, 0.27, 0.27, 0.27], eps, first).supported
    assert not adadelta_units.verdict([0.26, math.nan, 0.26, 0.26, 0.26], units, eps, first).supported
    # the first step: sqrt(eps/(1-rho)) at units <= x1, shorter above
    assert not adadelta_units.verdict([0.26] * 5, units, eps, {**first, 0.1: 0.0025}).supported
    assert not adadelta_units.verdict([0.26] * 5, units, eps, {**first, 100.0: 0.00316}).supported


def test_radam_verdict_can_fail():
    calm = {"Adam": [1.1, 2.0, 1.0, 1.8], "RAdam": [1.0] * 4, "Adam+warm-up": [1.0] * 4}
    steps = {"Adam": 4.0, "RAdam": 0.4}
    assert radam_warmup.verdict(8.0, 1.5, steps, 50, calm).supported
    assert radam_warmup.verdict(8.0, 1.5, steps, 50, {**calm, "Adam": [1.0, 1.0, 1.3, 1.0]}).supported  # one spike
    assert not radam_warmup.verdict(2.0, 1.5, steps, 50, calm).supported  # Adam's psi not erratic
    assert not radam_warmup.verdict(8.0, 4.0, steps, 50, calm).supported  # r_t does not tame it
    assert not radam_warmup.verdict(8.0, 1.5, {"Adam": 1.2, "RAdam": 0.4}, 50, calm).supported  # no long first steps
    assert not radam_warmup.verdict(8.0, 1.5, {"Adam": 4.0, "RAdam": 1.5}, 50, calm).supported  # RAdam's are long
    assert not radam_warmup.verdict(8.0, 1.5, steps, 50, {**calm, "Adam": [1.0, 1.1, 1.0, 1.15]}).supported  # no spike
    assert not radam_warmup.verdict(8.0, 1.5, steps, 50, {**calm, "RAdam": [1.0, 1.0, 1.4, 1.0]}).supported
    assert not radam_warmup.verdict(8.0, 1.5, steps, 50, {**calm, "Adam+warm-up": [1.0, 1.2, 1.0, 1.0]}).supported


def test_lion_verdict_can_fail():
    assert lion_sign.verdict(1.0, 5.0, 10 ** 0.5).supported
    assert lion_sign.verdict(1.0, 5.0, 10.0).supported
    assert not lion_sign.verdict(0.5, 5.0, 10.0).supported  # steps not all lr long
    assert not lion_sign.verdict(1.0, 1.2, 10.0).supported  # steps no longer than Adam's
    assert not lion_sign.verdict(1.0, 5.0, 1.0).supported  # the same best lr
    assert not lion_sign.verdict(1.0, 5.0, 10 ** 1.5).supported  # 32x: outside 3-10x


def test_adafactor_verdict_can_fail():
    assert adafactor_memory.verdict(0.0227, 1.03).supported
    assert not adafactor_memory.verdict(0.5, 1.03).supported  # state not a few percent of Adam's
    assert not adafactor_memory.verdict(0.0227, 1.4).supported  # trains worse than Adam
    assert not adafactor_memory.verdict(0.0227, float("inf")).supported  # diverged


def test_schedule_free_verdict_can_fail():
    assert schedule_free.verdict(1.1, 0.7).supported
    assert not schedule_free.verdict(1.2, 0.7).supported  # ends worse than the cosine schedule
    assert not schedule_free.verdict(1.0, 1.05).supported  # no better halfway
    assert not schedule_free.verdict(float("nan"), 0.7).supported


def test_lbfgs_curvature_verdict_can_fail():
    grid = {1e-3: 6000, 1e-2: 1400, 0.1: 645, 1.0: None}
    assert lbfgs_curvature.verdict(159, grid, 20_000).supported  # 0.25x
    assert not lbfgs_curvature.verdict(400, grid, 20_000).supported  # 0.62x: not enough fewer
    assert not lbfgs_curvature.verdict(None, grid, 20_000).supported  # L-BFGS missed the target
    # Adam's best lr at the edge of the grid: not a fair comparison, whatever the ratio
    assert not lbfgs_curvature.verdict(10, {1e-3: 900, 1e-2: 700, 0.1: 500}, 20_000).supported
    assert not lbfgs_curvature.verdict(10, {1e-3: 500, 1e-2: 700, 0.1: 900}, 20_000).supported
    # a miss counts as the budget
    assert lbfgs_curvature.verdict(100, {1e-3: None, 1e-2: 1000, 0.1: None}, 20_000).supported


def test_lbfgs_curvature_problem_gradient_matches_finite_differences():
    loss_and_grad, hessian = lbfgs_curvature.logistic_problem(0)
    w = np.random.default_rng(1).standard_normal(lbfgs_curvature.DIMENSIONS) * 0.1
    _, grad = loss_and_grad(w)
    h = 1e-6
    numeric = np.array([(loss_and_grad(w + h * e)[0] - loss_and_grad(w - h * e)[0]) / (2 * h)
                        for e in np.eye(lbfgs_curvature.DIMENSIONS)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    eigenvalues = np.linalg.eigvalsh(hessian(w))
    assert 1e3 <= eigenvalues[-1] / eigenvalues[0] <= 1e5  # ill-conditioned, as the chapter says


def test_schedule_free_evaluates_the_average_and_cosine_decays_to_zero():
    x, y = two_moons_for_tests()
    cosine = schedule_free.train("AdamW", "cosine", 0.1, 40, x, y, seed=0, backend="reference")
    assert cosine["lr"][0] == 0.1 and 0 < cosine["lr"][-1] < 1e-3 and cosine["lr"][20] == pytest.approx(0.05)
    free = schedule_free.train("ScheduleFreeAdamW", "constant", 0.1, 40, x, y, seed=0, backend="reference")
    assert np.all(free["lr"] == 0.1) and list(free["steps"]) == list(range(5, 41, 5))
    assert np.all(np.isfinite(free["loss"])) and free["loss"][-1] < free["loss"][0]


def test_lion_spike_fraction_puts_the_decay_back():
    lr, decay = 0.01, 0.1
    w = np.array([0.5, -2.0, 3.0, 0.0])
    step = np.array([1.0, -1.0, 1.0, 0.0])  # a zero sign argument does not move the weight
    after = w * (1 - lr * decay) - lr * step
    changes, decays = (after - w)[None, :], (lr * decay * w)[None, :]
    assert lion_sign.spike_fraction(changes, decays, lr) == 0.75
    assert lion_sign.spike_fraction(changes, np.zeros_like(decays), lr) < 0.75  # the decay widens the spike


def test_radam_psi_spread_starts_erratic_and_r_t_tames_it():
    adam, radam = radam_warmup.psi_spread(200, seed=0, backend="reference")
    assert adam[0] > 10 * adam[-1]  # at t=1, v_hat = g^2: psi = 1/|g| is huge for small gradients
    assert np.all(np.isnan(radam[:5])) and np.all(np.isfinite(radam[5:]))  # no adaptive step while rho_t <= 5
    assert np.max(radam[5:]) / np.min(radam[5:]) < adam[5] / adam[-1]


def two_moons_for_tests():
    from fastopt.cli.tour.problems import two_moons

    return two_moons(64, np.random.default_rng(3), noise=0.2)


def test_mlp_loss_matches_the_loss_with_gradients():
    from fastopt.cli.tour.problems import mlp_init, mlp_loss, mlp_loss_and_grads, two_moons

    rng = np.random.default_rng(2)
    params = mlp_init([2, 8, 4, 1], rng)
    x, y = two_moons(20, rng)
    assert mlp_loss(params, x, y) == mlp_loss_and_grads(params, x, y)[0]


def test_muon_verdict_can_fail():
    assert muon_singular_values.verdict(5e8, np.array([0.68, 0.94, 1.2])).supported
    assert not muon_singular_values.verdict(50.0, np.array([0.68, 0.94])).supported  # no span to squeeze
    assert not muon_singular_values.verdict(5e8, np.array([0.4, 0.94])).supported  # a direction left below the band
    assert not muon_singular_values.verdict(5e8, np.array([0.7, 1.3])).supported  # one pushed above it
    assert not muon_singular_values.verdict(5e8, np.array([])).supported  # nothing judged
    assert not muon_singular_values.verdict(5e8, np.array([0.7, np.nan])).supported


def test_muon_newton_schulz_is_the_kernels():
    """The chapter's NS(B) is one fastopt.Muon step's update: orthogonal columns map to singular
    values p^5(s / norm), the same for every direction of equal size."""
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 6)))
    after = np.linalg.svd(muon_singular_values.newton_schulz(q, "reference"), compute_uv=False)
    assert np.ptp(after) < 1e-12 and 0.6 <= after[0] <= 1.25
