"""Experiment 8 - Lion moves every weight by the same amount: lr.

Claim: Lion's update is ``-lr * sign(beta1 * m + (1 - beta1) * g)`` (plus the decoupled weight decay
``-lr * lambda * w``): each weight moves by exactly ``lr`` every step, whatever its gradient, so the
histogram of ``|Δw|`` is a single spike at ``lr``. Adam's step ``lr * m_hat / sqrt(v_hat)`` is
``lr`` only when the gradient is consistent; with noisy gradients ``|m_hat| / sqrt(v_hat)`` is well
below 1 (the running mean of a noisy gradient is small next to its RMS), so Adam's typical step
is a fraction of ``lr`` while Lion's is all of it. Far from a minimum, where the mean gradient
dominates its noise, Adam's step is close to ``lr`` too; near one, at the learning rates that train
well, the noise dominates. There, at the same lr, Lion's steps are several times
longer, and Lion needs a learning rate that many times smaller (the paper: 3-10x) and, to keep the
same decay per step ``lr * lambda``, a weight decay that many times larger.

Set-up: a 2-32-1 tanh network on 256 two-moons points (noise 0.2), minibatches of 16, the same
initial weights and minibatches for every run. Adam and Lion (default betas) each across a
learning-rate grid of half decades from 1e-4 to 1; "loss" is the full-data loss averaged over the
last 20% of the steps. The |Δw| of every weight at every step are recorded for Adam and for Lion
with weight decay at one learning rate.
"""

from __future__ import annotations

import numpy as np

import fastopt

from ._common import COLOURS, Config, Result, Table, Tick, Verdict, fmt, new_figure, save_figure
from .problems import mlp_init, mlp_loss, mlp_loss_and_grads, two_moons

CLAIM = (
    "Lion moves every weight by exactly lr each step (plus the decay lr*lambda*w), so its |Δw| histogram "
    "is a single spike, while Adam's steps spread below lr: where minibatch noise dominates the gradient, "
    "Adam's step is a fraction of lr. So at the learning rates that train well Lion's steps are 3-10x "
    "longer than Adam's at the same lr, and Lion's best learning rate is 3-10x smaller."
)
LR_GRID = tuple(10.0 ** (k / 2) for k in range(-8, 1))  # 1e-4, 3.2e-4, ..., 1
HISTOGRAM_LR = 0.01
WEIGHT_DECAY = 0.1  # Lion's, in the histogram run
BATCH = 16

# The criterion, fixed before running.
SPIKE_FRACTION = 0.99  # at least this fraction of Lion's |Δw + lr*lambda*w| equal lr (to 1e-9 relative) ...
RATIO_RANGE = (3.0, 10.0)  # ... Lion's RMS step / Adam's at Adam's best lr, and Adam's best lr / Lion's, in this range


def train(name: str, lr: float, steps: int, x, y, seed: int, backend: str, weight_decay: float = 0.0,
          record: bool = False) -> dict:
    params = mlp_init([2, 32, 1], np.random.default_rng(seed + 1))
    if name == "Lion":
        opt = fastopt.Lion(params, lr=lr, weight_decay=weight_decay, backend=backend)
    else:
        opt = fastopt.Adam(params, lr=lr, backend=backend)
    batches = np.random.default_rng(seed + 100)
    late, step_rms, changes, decays = [], np.empty(steps), [], []
    for t in range(steps):
        batch = batches.integers(0, len(y), BATCH)
        _, grads = mlp_loss_and_grads(params, x[batch], y[batch])
        before = np.concatenate([p.ravel() for p in params])
        opt.step(grads)
        change = np.concatenate([p.ravel() for p in params]) - before
        step_rms[t] = np.sqrt(np.mean(change * change))
        if record:
            changes.append(change)
            decays.append(lr * weight_decay * before)
        if t >= steps - steps // 5:
            late.append(mlp_loss(params, x, y))
    result = {"loss": float(np.mean(late)) if np.all(np.isfinite(late)) else float("inf"),
              "step_rms": float(np.mean(step_rms))}
    if record:
        result["changes"], result["decays"] = np.array(changes), np.array(decays)
    return result


def spike_fraction(changes: np.ndarray, decays: np.ndarray, lr: float) -> float:
    """Fraction of (step, weight) pairs whose change, the decay put back, is exactly ``lr`` long (to 1e-9)."""
    sign_step = np.abs(changes + decays)
    return float(np.mean(np.abs(sign_step / lr - 1.0) < 1e-9))


def verdict(fraction: float, step_ratio: float, lr_ratio: float) -> Verdict:
    low, high = RATIO_RANGE
    tolerance = 1e-9  # grid ratios are powers of sqrt(10), computed in floating point
    supported = (fraction >= SPIKE_FRACTION and low <= step_ratio <= high
                 and low * (1 - tolerance) <= lr_ratio <= high * (1 + tolerance))
    return Verdict(
        supported,
        f"at least {SPIKE_FRACTION:g} of Lion's steps (decay put back) are exactly lr long; at Adam's best lr, "
        f"Lion's RMS step is {low:g}-{high:g}x Adam's; Adam's best lr on the grid is {low:g}-{high:g}x Lion's",
        f"fraction exactly lr {fmt(fraction, 4)}; RMS step ratio {fmt(step_ratio)}; best lr Adam / Lion {fmt(lr_ratio)}",
    )


def run(config: Config, tick: Tick) -> Result:
    steps = 100 if config.quick else 300
    backend, seed = config.backend, config.seed
    x, y = two_moons(256, np.random.default_rng(seed), noise=0.2)
    names = ("Adam", "Lion")
    sweep = {}
    total = len(names) * len(LR_GRID) + 1
    for i, name in enumerate(names):
        for j, lr in enumerate(LR_GRID):
            tick((i * len(LR_GRID) + j) / total, f"{name} with lr={lr:.2g}")
            record = name == "Adam" and lr == HISTOGRAM_LR
            sweep[name, lr] = train(name, lr, steps, x, y, seed, backend, record=record)
    tick((total - 1) / total, f"Lion with weight decay {WEIGHT_DECAY:g}")
    lion_decay = train("Lion", HISTOGRAM_LR, steps, x, y, seed, backend, WEIGHT_DECAY, record=True)
    fraction = spike_fraction(lion_decay["changes"], lion_decay["decays"], HISTOGRAM_LR)

    best = {n: min(LR_GRID, key=lambda lr, n=n: sweep[n, lr]["loss"]) for n in names}
    step_ratio = sweep["Lion", best["Adam"]]["step_rms"] / sweep["Adam", best["Adam"]]["step_rms"]
    lr_ratio = best["Adam"] / best["Lion"]
    result_verdict = verdict(fraction, step_ratio, lr_ratio)
    adam_relative = np.abs(sweep["Adam", HISTOGRAM_LR]["changes"]).ravel() / HISTOGRAM_LR
    percentiles = np.percentile(adam_relative, [10, 50, 90])
    rows = [[f"{lr:.2g}"] + [f"{fmt(sweep[n, lr]['loss'])}{' (best)' if lr == best[n] else ''}" for n in names]
            + [fmt(sweep["Adam", lr]["step_rms"] / lr), fmt(sweep["Lion", lr]["step_rms"] / lr),
               fmt(sweep["Lion", lr]["step_rms"] / sweep["Adam", lr]["step_rms"])] for lr in LR_GRID]

    figure, (ax_hist, ax_steps, ax_sweep) = new_figure(ncols=3, width=5.4, height=4.4)
    bins = np.logspace(-5, 0.5, 80)
    lion_raw = np.abs(lion_decay["changes"]).ravel() / HISTOGRAM_LR
    lion_sign_step = np.abs(lion_decay["changes"] + lion_decay["decays"]).ravel() / HISTOGRAM_LR
    ax_hist.hist(np.maximum(adam_relative, bins[0]), bins=bins, color=COLOURS["Adam"], alpha=0.7, label="Adam")
    ax_hist.hist(np.maximum(lion_sign_step, bins[0]), bins=bins, color=COLOURS["Lion"], alpha=0.8,
                 label="Lion, decay lr·λ·w put back")
    ax_hist.hist(np.maximum(lion_raw, bins[0]), bins=bins, color="k", histtype="step", lw=0.8,
                 label=f"Lion as is (weight decay λ={WEIGHT_DECAY:g})")
    ax_hist.set_xscale("log")
    ax_hist.set_yscale("log")
    ax_hist.set(title=f"|Δw| of every weight at every step, lr={HISTOGRAM_LR:g}", xlabel="|Δw| / lr [dimensionless]",
                ylabel="count (steps x weights)")
    for name in names:
        ax_steps.loglog(LR_GRID, [sweep[name, lr]["step_rms"] for lr in LR_GRID], "o-", color=COLOURS[name],
                        label=name)
    ax_steps.loglog(LR_GRID, LR_GRID, "k:", label="RMS step = lr")
    ax_steps.set(title="Step length at the same lr", xlabel="learning rate lr [weight units]",
                 ylabel="RMS |Δw| per step, mean over steps [weight units]")
    for name in names:
        ax_sweep.loglog(LR_GRID, [sweep[name, lr]["loss"] for lr in LR_GRID], "o-", color=COLOURS[name],
                        label=f"{name}: best lr {best[name]:.2g}")
        ax_sweep.axvline(best[name], color=COLOURS[name], ls=":")
    ax_sweep.set(title="Learning-rate sweep", xlabel="learning rate lr [weight units]",
                 ylabel=f"full-data loss, mean of last 20% of {steps} steps [nats]")
    for ax in (ax_hist, ax_steps, ax_sweep):
        ax.minorticks_off()  # log axes over many decades: minor ticks cost more to draw than the data
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(f"8. Lion's uniform step: 2-32-1 tanh net, two moons, minibatches of {BATCH}, {steps} steps")
    path = save_figure(figure, config.out / "8_lion_sign.png")
    tick(1.0, "done")
    return Result(
        number=8,
        title="Lion's uniform step",
        claim=CLAIM,
        summary=(
            f"Lion |Δw| = lr exactly in {fmt(100 * fraction, 4)}% of steps x weights; Adam's |Δw|/lr 10th/50th/90th "
            f"percentile {'/'.join(fmt(p) for p in percentiles)}; at Adam's best lr {best['Adam']:.2g} Lion's RMS step is "
            f"{fmt(step_ratio)}x Adam's; best lr Adam {best['Adam']:.2g}, Lion {best['Lion']:.2g} ({fmt(lr_ratio)}x)"
        ),
        table=Table(["lr", "Adam: loss", "Lion: loss", "Adam: RMS step / lr", "Lion: RMS step / lr",
                     "Lion / Adam RMS step"], rows),
        verdict=result_verdict,
        figure=path,
        optimizers=["Lion", "Adam"],
        module=__name__,
        notes=[f"256 points, two-moons noise 0.2, minibatches of {BATCH}, {steps} steps, the same initial weights "
               "and minibatches for every run; betas: Adam (0.9, 0.999), Lion (0.9, 0.99); no weight decay in the "
               f"sweep. Histogram: lr={HISTOGRAM_LR:g}; Lion with decoupled weight decay {WEIGHT_DECAY:g}, whose "
               "per-step shrink lr*lambda*|w| widens the spike slightly; with it put back, the change is "
               "exactly lr.",
               "Weight decay: the decay per step is lr*lambda, so with a learning rate k times smaller, "
               "a weight decay k times larger keeps the same decay per step. That follows from the update "
               "and is not measured here."],
        data={"spike_fraction": fraction, "step_ratio": step_ratio, "lr_ratio": lr_ratio, "best": best,
              "adam_percentiles": percentiles.tolist(),
              "step_rms": {f"{n} {lr:.2g}": sweep[n, lr]["step_rms"] for n in names for lr in LR_GRID}},
    )
