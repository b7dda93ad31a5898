"""Experiment 6 - Adadelta has no learning rate, but eps is one.

Claim: Adadelta's step ``sqrt(u + eps) / sqrt(v + eps) * g`` is the ratio of the RMS of past
*steps* to the RMS of gradients, so it has the parameters' units and needs no learning rate
(lr = 1). It is often said to be "unit-free" for that reason. It is not: ``u`` (the mean of past
squared steps) starts at zero, so the first step is ``sqrt(eps) * g / sqrt((1 - rho) * g^2 + eps)``.
Where the gradient is large next to ``sqrt(eps / (1 - rho))`` that is ``sqrt(eps / (1 - rho))`` (0.003
with the defaults) in whatever units the weights are written in; where it is small (the weights
written as large numbers, so the gradients are small numbers) eps in the denominator takes over and
the step is about ``g`` itself, plain SGD with lr 1. Neither follows the weights' units. Each later step is the RMS of the
earlier ones times ``g / RMS[g]``: it drifts from that start, nothing rescales it to the weights'
units. The constant eps carries units, and sets Adadelta's step size as lr sets Adam's.

Set-up: a 2-16-1 tanh network on 256 two-moons points, full batch, the same initial weights, the
weights written in units ``s`` times smaller: ``w_s = s * w``, loss ``L(w_s / s)``, gradient
``dL/dw(w_s / s) / s``. A change of units changes nothing about the problem, so an optimizer that
is truly unit-free follows the same trajectory (in units of ``s``) and reaches the same loss at
every ``s``. The control shows the measurement can see that: Adam with its lr written in the
weights' units (``lr = 0.01 * s``) does. Adadelta (lr = 1, rho = 0.9, eps = 1e-6) and Adam with a
fixed lr = 0.01 are run at every ``s``; then Adadelta at ``s = 1`` across an eps sweep, each next to
Adam whose lr equals that eps's first step ``sqrt(eps / (1 - rho))``.
"""

from __future__ import annotations

import math

import numpy as np

import fastopt

from ._common import COLOURS, Config, Result, Table, Tick, Verdict, fmt, new_figure, save_figure
from .problems import mlp_init, mlp_loss_and_grads, two_moons

CLAIM = (
    "Adadelta needs no learning rate, but it is not unit-free: eps, not the weights' units, sets its "
    "first step. While the gradients are large next to eps (weights in units x0.01 to x1 here) that step "
    "is sqrt(eps/(1-rho)) long in whatever units the weights are written in; with the weights written as "
    "larger numbers (units x10, x100) the gradients shrink, eps in the denominator takes over and the step "
    "shrinks with them. "
    "Either way the same network trains differently in other units (a unit-free optimizer would not), "
    "and eps steers it as a learning rate does."
)
SCALES = (0.01, 0.1, 1.0, 10.0, 100.0)  # the weights written in units this many times smaller
EPSILONS = (1e-10, 1e-8, 1e-6, 1e-4, 1e-2)
RHO, EPS = 0.9, 1e-6  # Adadelta's defaults (torch's)
ADAM_LR = 0.01

# The criterion, fixed before running.
CONTROL_SPREAD = 1.01  # the control's losses after the run agree within this factor across units ...
UNITS_SPREAD = 3.0  # ... Adadelta's differ by at least this factor across units ...
EPS_SPREAD = 3.0  # ... and by at least this factor across the eps sweep ...
FIRST_STEP_TOLERANCE = 0.1  # ... and the first step is sqrt(eps/(1-rho)) within 10% at units <= x1, shorter above


def train(make_optimizer, scale: float, steps: int, x, y, seed: int, record_steps: bool = False) -> dict:
    """Full-batch training with the weights written in units ``scale`` times smaller.

    Returns the loss before each step and after the last and, if ``record_steps``, the step
    lengths in the written units: the median over weights of ``|w_t - w_{t-1}|`` per step.
    """
    params = [scale * p for p in mlp_init([2, 16, 1], np.random.default_rng(seed + 1))]
    opt = make_optimizer(params)
    losses, step_median = np.empty(steps + 1), np.empty(steps if record_steps else 0)
    for t in range(steps):
        losses[t], grads = mlp_loss_and_grads([p / scale for p in params], x, y)
        if record_steps:
            before = np.concatenate([p.ravel() for p in params])
        opt.step([g / scale for g in grads])
        if record_steps:
            step_median[t] = np.median(np.abs(np.concatenate([p.ravel() for p in params]) - before))
    losses[steps] = mlp_loss_and_grads([p / scale for p in params], x, y)[0]
    return {"loss": losses, "step": step_median}


def spread(values) -> float:
    """max / min of positive numbers (inf if any is not finite)."""
    values = np.asarray(values, dtype=float)
    return float(values.max() / values.min()) if np.all(np.isfinite(values)) else math.inf


def verdict(control_losses, adadelta_losses, eps_losses, first_steps: dict[float, float]) -> Verdict:
    """``first_steps``: {units scale: Adadelta's first step, median |Δw| in the written units}."""
    control, units, eps = spread(control_losses), spread(adadelta_losses), spread(eps_losses)
    predicted = math.sqrt(EPS / (1 - RHO))
    as_predicted = all(abs(step / predicted - 1) <= FIRST_STEP_TOLERANCE
                       for scale, step in first_steps.items() if scale <= 1)
    shorter = all(step < (1 - FIRST_STEP_TOLERANCE) * predicted for scale, step in first_steps.items() if scale > 1)
    return Verdict(
        control <= CONTROL_SPREAD and units >= UNITS_SPREAD and eps >= EPS_SPREAD and as_predicted and shorter,
        f"the control (Adam, lr in the weights' units) ends at the same loss at every scale, within "
        f"{CONTROL_SPREAD:g}x (so the measurement can see a unit-free optimizer); Adadelta's loss after "
        f"the run differs by >= {UNITS_SPREAD:g}x across the scales, and by >= {EPS_SPREAD:g}x across "
        f"the eps sweep (max/min); its first step is sqrt(eps/(1-rho)) = {predicted:.3g} within "
        f"{FIRST_STEP_TOLERANCE:.0%} at units x1 and smaller, and more than {FIRST_STEP_TOLERANCE:.0%} "
        "shorter at larger units",
        f"loss spread across scales: control {fmt(control)}x, Adadelta {fmt(units)}x; "
        f"across eps: Adadelta {fmt(eps)}x; first step at units "
        + ", ".join(f"x{scale:g} {fmt(step)}" for scale, step in first_steps.items()),
    )


def run(config: Config, tick: Tick) -> Result:
    steps = 60 if config.quick else 200
    backend, seed = config.backend, config.seed
    x, y = two_moons(256, np.random.default_rng(seed), noise=0.1)

    def adadelta(eps=EPS):
        return lambda params: fastopt.Adadelta(params, lr=1.0, rho=RHO, eps=eps, backend=backend)

    def adam(lr):
        return lambda params: fastopt.Adam(params, lr=lr, backend=backend)

    runs: dict[tuple[str, float], dict] = {}
    total = 3 * len(SCALES) + 2 * len(EPSILONS)
    for i, scale in enumerate(SCALES):
        tick(3 * i / total, f"weights in units x{scale:g}")
        runs["Adadelta", scale] = train(adadelta(), scale, steps, x, y, seed, record_steps=True)
        runs["Adam", scale] = train(adam(ADAM_LR), scale, steps, x, y, seed)
        runs["control", scale] = train(adam(ADAM_LR * scale), scale, steps, x, y, seed)
    first_step = {eps: math.sqrt(eps / (1 - RHO)) for eps in EPSILONS}
    for i, eps in enumerate(EPSILONS):
        tick((3 * len(SCALES) + 2 * i) / total, f"Adadelta with eps={eps:g}")
        runs["eps", eps] = train(adadelta(eps), 1.0, steps, x, y, seed, record_steps=True)
        runs["Adam same first step", eps] = train(adam(first_step[eps]), 1.0, steps, x, y, seed)

    final = {key: float(r["loss"][-1]) for key, r in runs.items()}
    adadelta_final = [final["Adadelta", s] for s in SCALES]
    control_final = [final["control", s] for s in SCALES]
    eps_final = [final["eps", e] for e in EPSILONS]
    first_steps = {s: float(runs["Adadelta", s]["step"][0]) for s in SCALES}
    result_verdict = verdict(control_final, adadelta_final, eps_final, first_steps)
    initial = float(runs["Adadelta", 1.0]["loss"][0])
    rows = [[f"units x{s:g} (eps {EPS:g})", fmt(runs["Adadelta", s]["step"][0]),
             fmt(runs["Adadelta", s]["step"][0] / s), fmt(np.max(runs["Adadelta", s]["step"])),
             fmt(final["Adadelta", s]), fmt(final["Adam", s]), fmt(final["control", s])] for s in SCALES]
    rows += [[f"eps {e:g} (units x1)", fmt(runs["eps", e]["step"][0]), fmt(runs["eps", e]["step"][0]),
              fmt(np.max(runs["eps", e]["step"])), fmt(final["eps", e]),
              f"{fmt(final['Adam same first step', e])} (lr {fmt(first_step[e], 2)})", "-"] for e in EPSILONS]

    figure, (ax_loss, ax_step, ax_eps) = new_figure(ncols=3, width=5.4, height=4.4)
    colours = _viridis(len(SCALES))
    for colour, scale in zip(colours, SCALES):
        ax_loss.semilogy(runs["Adadelta", scale]["loss"], color=colour, label=f"Adadelta, units x{scale:g}")
        ax_loss.semilogy(runs["control", scale]["loss"], color="k", ls="--", lw=0.8,
                         label="Adam, lr = 0.01 x units (all five)" if scale == SCALES[0] else None)
        ax_step.loglog(np.arange(1, steps + 1), runs["Adadelta", scale]["step"], color=colour,
                       label=f"units x{scale:g}")
    ax_step.axhline(first_step[EPS], color="k", ls=":", label=f"sqrt(eps/(1-rho)) = {first_step[EPS]:.2g}")
    ax_loss.set(title="Same network, weights in other units", xlabel="step (full-batch updates)",
                ylabel="cross-entropy loss [nats]")
    ax_step.set(title="Adadelta's step, in the weights' written units", xlabel="step",
                ylabel="median |Δw| over weights [written units]")
    ax_eps.loglog([first_step[e] for e in EPSILONS], eps_final, "o-", color=COLOURS["Adadelta"],
                  label="Adadelta (lr=1), x = sqrt(eps/(1-rho))")
    ax_eps.loglog([first_step[e] for e in EPSILONS], [final["Adam same first step", e] for e in EPSILONS],
                  "s--", color=COLOURS["Adam"], label="Adam, x = lr")
    for e in EPSILONS:
        ax_eps.annotate(f"eps {e:g}", (first_step[e], final["eps", e]), textcoords="offset points",
                        xytext=(4, 4), fontsize="x-small")
    ax_eps.axhline(initial, color="0.5", ls="--", label=f"initial loss {initial:.3f}")
    ax_eps.set(title="eps is Adadelta's learning rate", xlabel="first step length [weight units]",
               ylabel=f"loss after {steps} steps [nats]")
    for ax in (ax_loss, ax_step, ax_eps):
        ax.minorticks_off()  # log axes over many decades: minor ticks cost more to draw than the data
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(f"6. Adadelta (lr=1, rho={RHO:g}): no learning rate, but eps sets its step; "
                    f"2-16-1 tanh net on two moons, {steps} steps")
    path = save_figure(figure, config.out / "6_adadelta_units.png")
    tick(1.0, "done")
    return Result(
        number=6,
        title="Adadelta's hidden learning rate",
        claim=CLAIM,
        summary=(
            f"loss after {steps} steps, weights in units x" + "/".join(f"{s:g}" for s in SCALES) + ": Adadelta "
            + "/".join(fmt(v) for v in adadelta_final) + ", control " + "/".join(fmt(v) for v in control_final)
            + f"; Adadelta's first step {fmt(runs['Adadelta', 1.0]['step'][0])} (sqrt(eps/(1-rho)) "
            f"{fmt(first_step[EPS])}); eps {EPSILONS[0]:g}..{EPSILONS[-1]:g}: loss "
            + "/".join(fmt(v) for v in eps_final)
        ),
        table=Table(["setting", "Adadelta: first step, median |Δw| [written units]",
                     "first step / units [original units]", "largest step of the run [written units]",
                     f"Adadelta: loss after {steps} steps",
                     f"Adam lr={ADAM_LR:g}: loss", "control, Adam lr=0.01 x units: loss"], rows),
        verdict=result_verdict,
        figure=path,
        optimizers=["Adadelta", "Adam"],
        module=__name__,
        notes=[f"256 points, two-moons noise 0.1, {steps} full-batch steps, the same initial weights for "
               f"every run (initial loss {initial:.3f}). 'Units x s': the weights written as s times their "
               "values (gradients divided by s), a change of units only. Adadelta: lr=1, rho=0.9, eps=1e-6 "
               "unless swept. In the eps rows, Adam's lr equals Adadelta's first step sqrt(eps/(1-rho)).",
               "eps has two jobs in two units: inside sqrt(u + eps) it is a squared weight, inside "
               "sqrt(v + eps) a squared gradient. With the weights in large units the gradients are small, "
               "v falls below eps and the denominator's eps takes over (the step becomes ~ g, plain SGD "
               "with lr ~ 1): no single constant can be right at every scale."],
        data={"scales": SCALES, "adadelta_final": adadelta_final, "adam_final": [final["Adam", s] for s in SCALES],
              "control_final": control_final, "epsilons": EPSILONS, "eps_final": eps_final,
              "first_step": first_steps,
              "predicted_first_step": first_step[EPS]},
    )


def _viridis(n: int):
    from matplotlib import colormaps

    return [colormaps["viridis"](i / max(n - 1, 1) * 0.9) for i in range(n)]
