"""Experiment 1 - Adagrad's fatal flaw: its learning rate only shrinks.

Claim: on a problem that needs sustained progress, Adagrad's accumulator ``G_t = sum g^2`` keeps
growing, so its effective per-parameter learning rate ``lr / (sqrt(G_t) + eps)`` decays toward
zero and it stalls; RMSprop's decaying average ``v_t`` forgets old gradients and keeps learning.

Set-up: a target that keeps moving. The loss at step ``t`` is ``0.5 * mean((w - c_t)^2)`` with
``c_t = c_0 + t * v``, each coordinate drifting at its own constant speed. Tracking it needs a step
of the same size forever. Adagrad and RMSprop start from ``w = 0`` with the same learning rate;
the effective learning rate is read from ``opt.state[0]["sum"]`` / ``["square_avg"]``.
"""

from __future__ import annotations

import numpy as np

import fastopt

from ._common import COLOURS, Config, Result, Table, Tick, Verdict, fmt, new_figure, save_figure

CLAIM = (
    "Adagrad's accumulated sum of squared gradients only grows, so its effective learning rate "
    "lr/(sqrt(G)+eps) decays toward zero and it falls behind a moving target; RMSprop's decaying "
    "average forgets, its effective learning rate stays put, and it keeps tracking."
)
DIM = 20
LR = 0.05
SPEED = 0.002  # mean distance the target moves per step, per coordinate

# The criterion, fixed before running: three thresholds on measured numbers.
# "Start" is step steps/10, once both have closed the initial gap and are tracking; a constant
# gradient scale alone would make Adagrad's ratio sqrt(1/10) = 0.32 by the end.
MAX_ADAGRAD_LR_RATIO = 0.5  # Adagrad's effective lr at the end / at the start must be below this ...
RMSPROP_LR_RATIO_RANGE = (0.5, 2.0)  # ... while RMSprop's stays within this range ...
MIN_LOSS_RATIO = 10.0  # ... and Adagrad's late loss must be this many times RMSprop's.


def track_moving_target(name: str, steps: int, seed: int, backend: str):
    """Run one optimizer on the drifting target; return per-step loss and median effective lr."""
    rng = np.random.default_rng(seed)
    start = rng.normal(0.0, 1.0, DIM)
    velocity = SPEED * rng.uniform(0.5, 1.5, DIM)
    w = np.zeros(DIM)
    if name == "Adagrad":
        opt, key = fastopt.Adagrad([w], lr=LR, backend=backend), "sum"
    else:
        opt, key = fastopt.RMSprop([w], lr=LR, rho=0.9, backend=backend), "square_avg"
    eps = opt.param_groups[0]["eps"]
    loss, effective_lr = np.empty(steps), np.empty(steps)
    for t in range(steps):
        residual = w - (start + t * velocity)
        loss[t] = 0.5 * np.mean(residual**2)
        opt.step([residual / DIM])
        effective_lr[t] = np.median(LR / (np.sqrt(opt.state[0][key]) + eps))
    return loss, effective_lr


def verdict(adagrad_lr_ratio: float, rmsprop_lr_ratio: float, loss_ratio: float) -> Verdict:
    supported = (
        adagrad_lr_ratio < MAX_ADAGRAD_LR_RATIO
        and RMSPROP_LR_RATIO_RANGE[0] < rmsprop_lr_ratio < RMSPROP_LR_RATIO_RANGE[1]
        and loss_ratio >= MIN_LOSS_RATIO
    )
    return Verdict(
        supported,
        f"Adagrad's effective lr at the end is < {MAX_ADAGRAD_LR_RATIO:g}x its value at 10% of the "
        f"steps, RMSprop's is between {RMSPROP_LR_RATIO_RANGE[0]:g}x and {RMSPROP_LR_RATIO_RANGE[1]:g}x, "
        f"and Adagrad's mean loss over the last 10% of steps is >= {MIN_LOSS_RATIO:g}x RMSprop's",
        f"Adagrad lr ratio {fmt(adagrad_lr_ratio)}, RMSprop lr ratio {fmt(rmsprop_lr_ratio)}, "
        f"loss ratio {fmt(loss_ratio)}",
    )


def run(config: Config, tick: Tick) -> Result:
    steps = 1000 if config.quick else 6000
    early, late = steps // 10, steps - steps // 10
    curves = {}
    for i, name in enumerate(("Adagrad", "RMSprop")):
        tick(i / 2, f"{name} chasing a moving target")
        curves[name] = track_moving_target(name, steps, config.seed, config.backend)
    rows, ratios, late_loss = [], {}, {}
    for name, (loss, effective_lr) in curves.items():
        ratios[name] = effective_lr[-1] / effective_lr[early - 1]
        late_loss[name] = float(np.mean(loss[late:]))
        rows.append([name, fmt(effective_lr[early - 1]), fmt(effective_lr[-1]), fmt(ratios[name]),
                     fmt(late_loss[name])])
    loss_ratio = late_loss["Adagrad"] / late_loss["RMSprop"]
    result_verdict = verdict(ratios["Adagrad"], ratios["RMSprop"], loss_ratio)

    figure, (ax_lr, ax_loss) = new_figure(ncols=2)
    step_axis = np.arange(1, steps + 1)
    for name, (loss, effective_lr) in curves.items():
        ax_lr.loglog(step_axis, effective_lr, color=COLOURS[name], label=name)
        ax_loss.loglog(step_axis, loss, color=COLOURS[name], label=name)
    guide_steps = step_axis[early - 1:]
    ax_lr.loglog(guide_steps, effective_lr_guide(curves["Adagrad"][1], early, guide_steps), "k:",
                 label=f"1/sqrt(t) decay from step {early}")
    ax_lr.set(title="Effective learning rate lr/(sqrt(state)+eps)", xlabel="step",
              ylabel=f"effective lr, median of {DIM} params [param/grad units]")
    ax_loss.set(title="Distance to the moving target", xlabel="step",
                ylabel="loss 0.5 mean((w - c_t)²) [param units²]")
    ax_loss.axvspan(late, steps, color="0.9", label="last 10%: averaged")
    for ax in (ax_lr, ax_loss):
        ax.legend()
        ax.grid(True, which="major", alpha=0.3)
    figure.suptitle(f"1. Adagrad stalls, RMSprop keeps learning (target drifting ~{SPEED:g}/step, lr={LR:g})")
    path = save_figure(figure, config.out / "1_adagrad_stalls.png")
    tick(1.0, "done")
    return Result(
        number=1,
        title="Adagrad's fatal flaw",
        claim=CLAIM,
        summary=(
            f"effective lr end/start: Adagrad {fmt(ratios['Adagrad'])}, RMSprop {fmt(ratios['RMSprop'])}; "
            f"late loss Adagrad {fmt(late_loss['Adagrad'])} vs RMSprop {fmt(late_loss['RMSprop'])} "
            f"({fmt(loss_ratio)}x)"
        ),
        table=Table(["optimizer", f"effective lr at step {early}", f"effective lr at step {steps}",
                     "end / start", "mean loss, last 10% of steps"], rows),
        verdict=result_verdict,
        figure=path,
        optimizers=["Adagrad", "RMSprop"],
        module=__name__,
        notes=[f"{DIM} coordinates, each drifting at {SPEED:g} x U(0.5, 1.5) per step; lr={LR:g} for "
               f"both; RMSprop rho=0.9; {steps} steps."],
        data={"adagrad_lr_ratio": ratios["Adagrad"], "rmsprop_lr_ratio": ratios["RMSprop"],
              "loss_ratio": loss_ratio, "late_loss": late_loss},
    )


def effective_lr_guide(effective_lr: np.ndarray, early: int, step_axis: np.ndarray) -> np.ndarray:
    """The 1/sqrt(t) decay a constant gradient scale would give, anchored at step ``early``."""
    return effective_lr[early - 1] * np.sqrt(early / step_axis)
