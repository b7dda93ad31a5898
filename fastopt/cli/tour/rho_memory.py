"""Experiment 3 - The decay rate is memory: RMSprop's rho sets how fast it adapts.

Claim: RMSprop's ``v_t = rho * v_{t-1} + (1 - rho) * g_t^2`` weighs a gradient seen ``k`` steps
ago by ``rho^k``, so after a sudden change in gradient scale it needs about ``1 / (1 - rho)``
steps to adapt (exactly ``-1 / ln(rho)`` for ``v`` to cover 63% = 1 - 1/e of the change). That is a
trade-off: a long memory (rho near 1) adapts slowly, so right after the gradients grow it takes
steps that are far too long; a short memory (small rho) adapts at once but its estimate of the
gradient scale, and therefore its step size, is noisy.

Set-up: ``DIM`` independent noisy quadratics, gradient ``g = a * (w + xi)`` with ``xi ~ N(0, 1)``;
the scale ``a`` jumps from 1 to ``JUMP`` at the middle of the run. RMSprop with the same lr for
each rho. We measure from ``opt.state[0]["square_avg"]``: the steps until its mean over
parameters covers 1 - 1/e of the jump, the mean step length (in units of lr) right after the jump,
and the noise of the per-parameter effective lr before the jump.
"""

from __future__ import annotations

import math

import numpy as np

import fastopt

from ._common import Config, Result, Table, Tick, Verdict, fmt, new_figure, save_figure

CLAIM = (
    "RMSprop's rho is its memory: after a sudden change in gradient scale it needs about 1/(1-rho) "
    "steps to adapt; a long memory adapts slowly (overlong steps right after the gradients grow), a "
    "short one adapts fast but its step size is noisy."
)
RHOS = (0.5, 0.9, 0.99, 0.999)
DIM = 1000
LR = 0.01
JUMP = 10.0  # the gradient scale multiplies by this at the middle of the run (v by JUMP^2)

# The criterion, fixed before running.
ADAPT_FACTOR = 2.0  # measured adaptation steps must lie within [1/2, 2] x 1/(1-rho), for every rho


def run_rho(rho: float, steps_per_phase: int, seed: int, backend: str) -> dict:
    rng = np.random.default_rng(seed)
    w = np.zeros(DIM)
    opt = fastopt.RMSprop([w], lr=LR, rho=rho, backend=backend)
    eps = opt.param_groups[0]["eps"]
    steps = 2 * steps_per_phase
    mean_square_avg = np.empty(steps)
    step_length = np.empty(steps)  # mean |w_t - w_{t-1}| over parameters, in units of lr
    loss = np.empty(steps)
    lr_noise_samples = []  # per-parameter effective lr over the window before the jump
    for t in range(steps):
        scale = 1.0 if t < steps_per_phase else JUMP
        loss[t] = 0.5 * scale * np.mean(w * w)
        before = w.copy()
        opt.step([scale * (w + rng.standard_normal(DIM))])
        square_avg = opt.state[0]["square_avg"]
        mean_square_avg[t] = np.mean(square_avg)
        step_length[t] = np.mean(np.abs(w - before)) / LR
        if steps_per_phase - 200 <= t < steps_per_phase:
            lr_noise_samples.append(LR / (np.sqrt(square_avg[:50]) + eps))
    samples = np.array(lr_noise_samples)  # (time, parameter)
    lr_noise = float(np.mean(samples.std(axis=0) / samples.mean(axis=0)))  # coefficient of variation

    jump = steps_per_phase
    old_level = np.mean(mean_square_avg[jump - 50:jump])
    new_level = np.mean(mean_square_avg[-max(steps_per_phase // 5, 50):])
    threshold = old_level + (1 - math.exp(-1)) * (new_level - old_level)
    reached = np.nonzero(mean_square_avg[jump:] >= threshold)[0]
    adapt_steps = int(reached[0]) + 1 if reached.size else math.inf
    return {
        "adapt_steps": adapt_steps,
        "peak_step": float(np.max(step_length[jump:jump + 20])),
        "steady_step": float(np.mean(step_length[-max(steps_per_phase // 5, 50):])),
        "lr_noise": lr_noise,
        "mean_square_avg": mean_square_avg,
        "step_length": step_length,
        "loss": loss,
    }


def verdict(rhos, adapt_steps, peak_steps, lr_noise) -> Verdict:
    predicted = [1 / (1 - rho) for rho in rhos]
    within = all(p / ADAPT_FACTOR <= a <= p * ADAPT_FACTOR for a, p in zip(adapt_steps, predicted))
    slower_overshoots_more = all(b > a for a, b in zip(peak_steps, peak_steps[1:]))
    longer_is_smoother = all(b < a for a, b in zip(lr_noise, lr_noise[1:]))
    return Verdict(
        within and slower_overshoots_more and longer_is_smoother,
        f"for every rho the steps to adapt lie within 1/{ADAPT_FACTOR:g}..{ADAPT_FACTOR:g} x 1/(1-rho); "
        "the peak step length after the jump increases with rho; the noise (coefficient of "
        "variation) of the effective lr before the jump decreases with rho",
        "adapt steps " + ", ".join(f"{a} (predicted {p:.0f})" for a, p in zip(adapt_steps, predicted))
        + "; peak step/lr " + ", ".join(fmt(p) for p in peak_steps)
        + "; lr noise " + ", ".join(fmt(n) for n in lr_noise),
    )


def run(config: Config, tick: Tick) -> Result:
    # quick: rho=0.999 would need thousands of steps to warm up and to adapt, so it is left out
    rhos = RHOS[:-1] if config.quick else RHOS
    steps_per_phase = 600 if config.quick else 5000
    runs = {}
    for i, rho in enumerate(rhos):
        tick(i / len(rhos), f"RMSprop with rho={rho:g}")
        runs[rho] = run_rho(rho, steps_per_phase, config.seed, config.backend)
    adapt = [runs[r]["adapt_steps"] for r in rhos]
    peaks = [runs[r]["peak_step"] for r in rhos]
    noise = [runs[r]["lr_noise"] for r in rhos]
    result_verdict = verdict(rhos, adapt, peaks, noise)
    rows = [[f"{rho:g}", f"{1 / (1 - rho):.0f}", f"{-1 / math.log(rho):.1f}", str(runs[rho]["adapt_steps"]),
             fmt(runs[rho]["peak_step"]), fmt(runs[rho]["steady_step"]), fmt(runs[rho]["lr_noise"])]
            for rho in rhos]

    figure, (ax_v, ax_step) = new_figure(ncols=2)
    colours = ["#ff7f0e", "#1f77b4", "#2ca02c", "#d62728"]
    since_jump = np.arange(1, steps_per_phase + 1)  # step k after the jump is index jump + k - 1
    for colour, rho in zip(colours, rhos):
        data = runs[rho]
        after = slice(steps_per_phase, 2 * steps_per_phase)
        ax_v.loglog(since_jump, data["mean_square_avg"][after], color=colour,
                    label=f"rho={rho:g}: {data['adapt_steps']} steps (1/(1-rho)={1 / (1 - rho):.0f})")
        ax_step.semilogx(since_jump, data["step_length"][after], color=colour, label=f"rho={rho:g}")
    before = np.mean([runs[r]["mean_square_avg"][steps_per_phase - 50:steps_per_phase] for r in rhos])
    ax_v.axhline(before, color="0.4", ls=":", label="level before the jump")
    ax_step.axhline(np.mean([runs[r]["step_length"][steps_per_phase - 50:steps_per_phase] for r in rhos]),
                    color="0.4", ls=":", label="level before the jump")
    for ax in (ax_v, ax_step):
        ax.grid(True, which="major", alpha=0.3)
    ax_v.set(title="Memory: square_avg after the gradient scale jumps",
             xlabel="steps since the gradients grew x%g" % JUMP, ylabel="mean square_avg v [grad units²]")
    ax_step.set(title="Stability: step length after the jump",
                xlabel="steps since the gradients grew x%g" % JUMP, ylabel="mean |Δw| / lr [dimensionless]")
    ax_v.legend(fontsize="small", title="steps to cover 63% of the jump")
    ax_step.legend(fontsize="small")
    figure.suptitle(f"3. RMSprop's rho is memory: {DIM} noisy quadratics, lr={LR:g}, "
                    f"gradient scale x{JUMP:g} after {steps_per_phase} steps")
    path = save_figure(figure, config.out / "3_rho_memory.png")
    tick(1.0, "done")
    return Result(
        number=3,
        title="The decay rate is memory",
        claim=CLAIM,
        summary="steps to adapt " + ", ".join(
            f"rho={rho:g}: {a} (~{1 / (1 - rho):.0f})" for rho, a in zip(rhos, adapt))
        + "; peak step/lr " + "/".join(fmt(p) for p in peaks)
        + "; lr noise " + "/".join(fmt(n) for n in noise),
        table=Table(["rho", "1/(1-rho)", "-1/ln(rho)", "measured steps to adapt",
                     "peak step after jump (x lr)", "steady step (x lr)", "effective-lr noise (CV)"], rows),
        verdict=result_verdict,
        figure=path,
        optimizers=["RMSprop"],
        module=__name__,
        notes=[f"Steps to adapt: after the jump, the first step at which the mean of square_avg has "
               f"covered 1 - 1/e of the way from its level before the jump to its level over the last "
               f"20% of the run. Effective-lr noise: over the 200 steps before the jump, std/mean of "
               f"lr/(sqrt(v)+eps) per parameter, averaged over 50 parameters. {steps_per_phase} steps "
               "per phase; with rho=0.999 the average needs ~1000 steps to warm up from v=0."],
        data={"rhos": rhos, "adapt_steps": adapt, "peak_steps": peaks, "lr_noise": noise},
    )
