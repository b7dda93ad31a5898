"""Experiment 2 - Adaptive, but you still steer: RMSprop's learning rate matters.

Claim: RMSprop divides each step by the gradient's recent RMS, so every step is roughly ``lr``
long whatever the gradient's scale. That removes the gradient's scale, not the need to choose
``lr``: too high and the steps are too long to settle (the loss oscillates or diverges), too low
and the run crawls.

Set-up: a 2-32-1 tanh network on 256 noisy two-moons points (classes overlap, so the best loss is
well above zero and huge weights are punished), full-batch RMSprop (rho=0.9) from the same
initial weights for each ``lr`` in a sweep over six decades. "Late loss" is the mean over the
last 10% of steps, so an oscillating run is not judged by a lucky last step.
"""

from __future__ import annotations

import numpy as np

import fastopt

from ._common import Config, Result, Table, Tick, Verdict, fmt, new_figure, save_figure
from .problems import mlp_init, mlp_loss_and_grads, two_moons

CLAIM = (
    "RMSprop still needs its learning rate chosen: across a sweep over several decades, the best "
    "lr is in the middle, too low an lr crawls and too high an lr oscillates or diverges."
)
LEARNING_RATES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)

# The criterion, fixed before running.
TIE = 1.05  # late losses within 5% of the lowest tie; among tied runs the calmest (least climb) is "best"
CRAWL_FRACTION = 0.1  # the smallest lr must achieve less than this fraction of the best loss drop
HIGH_LR_FACTOR = 2.0  # the largest lr's late loss must be at least this many times the best's


def train(lr: float, steps: int, x, y, seed: int, backend: str) -> np.ndarray:
    params = mlp_init([2, 32, 1], np.random.default_rng(seed + 1))
    opt = fastopt.RMSprop(params, lr=lr, rho=0.9, backend=backend)
    losses = np.empty(steps + 1)
    for t in range(steps):
        losses[t], grads = mlp_loss_and_grads(params, x, y)
        opt.step(grads)
    losses[steps], _ = mlp_loss_and_grads(params, x, y)
    return losses


def climb(losses: np.ndarray) -> float:
    """How much the loss went *up* over the second half (sum of its rises), relative to its mean.

    A curve that only descends scores 0; one that bounces scores the height of all its bounces.
    """
    second_half = losses[len(losses) // 2:]
    return float(np.sum(np.maximum(np.diff(second_half), 0.0)) / np.mean(second_half))


def behaviour(losses: np.ndarray, late_loss: float, best_drop: float) -> str:
    """A word for what a run did, from its loss curve."""
    if not np.isfinite(late_loss) or late_loss > losses[0]:
        return "diverged"
    if climb(losses) > 0.5:
        return "oscillates"
    if losses[0] - late_loss < 0.5 * best_drop:
        return "crawls"
    return "converges"


def tied_with_lowest(late_losses) -> list[int]:
    """Indices of the runs whose late loss is within :data:`TIE` of the lowest (NaN/inf never tie)."""
    late = np.asarray(late_losses, dtype=float)
    finite = np.where(np.isfinite(late), late, np.inf)
    return [i for i, value in enumerate(finite) if value <= TIE * finite.min()]


def best_index(late_losses, climbs=None) -> int:
    """The best run: the lowest late loss, and among runs tied with it the calmest one.

    A run that reaches the same late loss while bouncing (large climb) is not better than one
    that settles there; naming it "best" would recommend an lr that oscillates.
    """
    tied = tied_with_lowest(late_losses)
    climbs = np.zeros(len(late_losses)) if climbs is None else np.asarray(climbs, dtype=float)
    return min(tied, key=lambda i: (climbs[i], late_losses[i]))


def verdict(learning_rates, late_losses, initial_loss: float, climbs=None) -> Verdict:
    late = np.asarray(late_losses, dtype=float)
    finite = np.where(np.isfinite(late), late, np.inf)
    best = best_index(finite, climbs)
    tied = tied_with_lowest(finite)
    best_drop = initial_loss - finite[best]
    low_drop = initial_loss - finite[0]
    interior = all(0 < i < len(late) - 1 for i in tied)
    crawls = best_drop > 0 and low_drop < CRAWL_FRACTION * best_drop
    too_high = not np.isfinite(late[-1]) or late[-1] >= HIGH_LR_FACTOR * finite[best]
    return Verdict(
        interior and crawls and too_high,
        f"every lr whose late loss is within {TIE - 1:.0%} of the lowest is an interior lr of the sweep; the "
        f"smallest lr achieves < {CRAWL_FRACTION:g} of the best lr's loss drop; the largest lr's late loss is "
        f">= {HIGH_LR_FACTOR:g}x the best",
        f"best lr {learning_rates[best]:g} (late loss {fmt(finite[best])}; within {TIE - 1:.0%}: "
        f"{', '.join(f'{learning_rates[i]:g}' for i in tied)}); smallest lr drop "
        f"{fmt(low_drop)} vs best {fmt(best_drop)}; largest lr late loss {fmt(late[-1])}",
    )


def run(config: Config, tick: Tick) -> Result:
    steps = 100 if config.quick else 400
    x, y = two_moons(256, np.random.default_rng(config.seed), noise=0.3)
    curves = {}
    for i, lr in enumerate(LEARNING_RATES):
        tick(i / len(LEARNING_RATES), f"RMSprop with lr={lr:g}")
        curves[lr] = train(lr, steps, x, y, config.seed, config.backend)
    initial = float(curves[LEARNING_RATES[0]][0])
    late = [float(np.mean(c[-max(steps // 10, 1):])) for c in curves.values()]
    climbs = [climb(c) for c in curves.values()]
    result_verdict = verdict(LEARNING_RATES, late, initial, climbs)
    best = best_index(np.where(np.isfinite(late), late, np.inf), climbs)
    tied = tied_with_lowest(late)
    best_drop = initial - late[best]
    rows = []
    for i, ((lr, losses), late_loss) in enumerate(zip(curves.items(), late)):
        mark = " (best)" if i == best else f" (within {TIE - 1:.0%} of the best)" if i in tied else ""
        rows.append([f"{lr:g}", fmt(late_loss) + mark, fmt(float(np.min(losses))), fmt(climbs[i]),
                     behaviour(losses, late_loss, best_drop)])

    figure, (ax_curves, ax_final) = new_figure(ncols=2)
    colours = _viridis(len(LEARNING_RATES))
    for colour, (lr, losses) in zip(colours, curves.items()):
        ax_curves.semilogy(np.arange(steps + 1), losses, color=colour, label=f"lr = {lr:g}")
    ax_curves.set(title="Training loss per learning rate", xlabel="step (full-batch updates)",
                  ylabel="cross-entropy loss [nats]")
    ax_curves.legend(ncols=2, fontsize="small")
    ax_final.loglog(LEARNING_RATES, late, "o-", color="#1f77b4", label="late loss (mean of last 10%)")
    ax_final.axhline(initial, color="0.5", ls="--", label=f"initial loss {initial:.3f}")
    ax_final.set(title="Late loss against learning rate", xlabel="learning rate lr [param/grad-RMS units]",
                 ylabel="cross-entropy loss [nats]")
    ax_final.legend()
    for ax in (ax_curves, ax_final):
        ax.grid(True, which="major", alpha=0.3)
    figure.suptitle(f"2. RMSprop (rho=0.9) learning-rate sweep: 2-32-1 tanh net on noisy two moons, {steps} steps")
    path = save_figure(figure, config.out / "2_lr_sweep.png")
    tick(1.0, "done")
    return Result(
        number=2,
        title="Adaptive, but you still steer",
        claim=CLAIM,
        summary=(
            f"late loss: lr={LEARNING_RATES[0]:g} {fmt(late[0])}, best lr={LEARNING_RATES[best]:g} "
            f"{fmt(late[best])} (within {TIE - 1:.0%}: {', '.join(f'{LEARNING_RATES[i]:g}' for i in tied)}), "
            f"lr={LEARNING_RATES[-1]:g} {fmt(late[-1])} (initial {fmt(initial)})"
        ),
        table=Table(["lr", "late loss", "lowest loss", "climb in 2nd half (x mean loss)", "behaviour"], rows),
        verdict=result_verdict,
        figure=path,
        optimizers=["RMSprop"],
        module=__name__,
        notes=[f"256 points, two-moons noise 0.3, {steps} full-batch steps, same initial weights for every lr. "
               "Climb: the sum of the loss's increases over the 2nd half, divided by its mean there. "
               "Behaviour: 'diverged' if the late loss exceeds the initial loss, 'oscillates' if the "
               "climb exceeds 0.5, 'crawls' if it achieved less than half the best run's loss drop. "
               f"Best: the lowest late loss; runs within {TIE - 1:.0%} of it tie, and of those the one with "
               "the least climb is named best (a run that reaches the same loss while bouncing is not better)."],
        data={"learning_rates": LEARNING_RATES, "late_losses": late, "initial_loss": initial, "climbs": climbs,
              "best": LEARNING_RATES[best], "tied": [LEARNING_RATES[i] for i in tied]},
    )


def _viridis(n: int):
    from matplotlib import colormaps

    return [colormaps["viridis"](i / max(n - 1, 1) * 0.9) for i in range(n)]
