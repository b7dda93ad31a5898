"""Experiment 10 - Adafactor trains like Adam on a sliver of Adam's memory.

Claim: for an ``m x n`` weight matrix Adam keeps ``2 m n`` numbers of state (its first and second
moments, one of each per weight); Adafactor keeps ``m + n`` (the mean squared gradient of each row
and of each column; their outer product, divided by their mean, estimates every weight's second
moment) and no first moment. On a network whose weights are mostly matrices its optimizer state is
then a few percent of Adam's, and it trains about as well: at the best learning rate of a small
grid, its loss is within 25% of Adam's at Adam's best.

Set-up: a 2-128-128-1 tanh network on 512 two-moons points (noise 0.2), minibatches of 32, the
same initial weights and minibatches for every run. Adam over lr 1e-3, 3e-3, 1e-2; Adafactor
(torch's defaults) over its relative step sizes 3e-3, 1e-2, 3e-2 (a step is lr times the weights'
root mean square). "State" is the bytes of every state array the optimizer holds after training,
measured; "loss" is the full-data loss averaged over the last 20% of the steps.
"""

from __future__ import annotations

import numpy as np

import fastopt

from ._common import COLOURS, Config, Result, Table, Tick, Verdict, fmt, new_figure, save_figure
from .problems import mlp_init, mlp_loss, mlp_loss_and_grads, two_moons

CLAIM = (
    "Adafactor keeps m + n numbers of second-moment state for an m x n matrix where Adam keeps 2mn "
    "(both moments): on a network of matrices its state is a few percent of Adam's, and at the best "
    "learning rate of a small grid it reaches a loss within 25% of Adam's."
)
SIZES = [2, 128, 128, 1]
GRIDS = {"Adam": (1e-3, 3e-3, 1e-2), "Adafactor": (3e-3, 1e-2, 3e-2)}
BATCH = 32

# The criterion, fixed before running.
MAX_STATE_RATIO = 0.05  # Adafactor's state bytes / Adam's, at most
MAX_LOSS_RATIO = 1.25  # Adafactor's best loss / Adam's best loss, at most


def state_bytes(opt) -> int:
    """Bytes of every state array the optimizer holds (counters are Python numbers)."""
    return sum(value.nbytes for state in opt.state.values() for value in state.values() if isinstance(value, np.ndarray))


def train(name: str, lr: float, steps: int, x, y, seed: int, backend: str) -> dict:
    params = mlp_init(SIZES, np.random.default_rng(seed + 1))
    opt = getattr(fastopt, name)(params, lr=lr, backend=backend)
    batches = np.random.default_rng(seed + 100)
    curve, late = [], []
    for t in range(steps):
        batch = batches.integers(0, len(y), BATCH)
        _, grads = mlp_loss_and_grads(params, x[batch], y[batch])
        opt.step(grads)
        loss = mlp_loss(params, x, y)
        curve.append(loss)
        if t >= steps - steps // 5:
            late.append(loss)
    finite = np.all(np.isfinite(late))
    return {"loss": float(np.mean(late)) if finite else float("inf"), "curve": np.array(curve),
            "state": state_bytes(opt), "weights": sum(p.size for p in params)}


def verdict(state_ratio: float, loss_ratio: float) -> Verdict:
    return Verdict(
        state_ratio <= MAX_STATE_RATIO and loss_ratio <= MAX_LOSS_RATIO,
        f"Adafactor's state is at most {MAX_STATE_RATIO:g}x Adam's, and its best loss at most {MAX_LOSS_RATIO:g}x "
        "Adam's best",
        f"state ratio {fmt(state_ratio)}; best-loss ratio {fmt(loss_ratio)}",
    )


def run(config: Config, tick: Tick) -> Result:
    steps = 150 if config.quick else 250
    backend, seed = config.backend, config.seed
    x, y = two_moons(512, np.random.default_rng(seed), noise=0.2)
    runs = {}
    total = sum(len(grid) for grid in GRIDS.values())
    for name, grid in GRIDS.items():
        for lr in grid:
            tick(len(runs) / total, f"{name} with lr={lr:g}")
            runs[name, lr] = train(name, lr, steps, x, y, seed, backend)
    best = {name: min(grid, key=lambda lr, name=name: runs[name, lr]["loss"]) for name, grid in GRIDS.items()}
    state = {name: runs[name, best[name]]["state"] for name in GRIDS}
    state_ratio = state["Adafactor"] / state["Adam"]
    loss_ratio = runs["Adafactor", best["Adafactor"]]["loss"] / runs["Adam", best["Adam"]]["loss"]
    weights = runs["Adam", best["Adam"]]["weights"]
    rows = [[name, f"{lr:g}", fmt(runs[name, lr]["loss"]) + (" (best)" if lr == best[name] else ""),
             f"{runs[name, lr]['state']:,}"] for name, grid in GRIDS.items() for lr in grid]

    figure, (ax_bytes, ax_curves) = new_figure(ncols=2, width=5.6, height=4.4)
    layers = [(fan_in, fan_out) for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:])]
    labels = [f"W{k + 1} {m}x{n}" for k, (m, n) in enumerate(layers)] + ["biases"]
    itemsize = np.dtype(np.float64).itemsize
    adam_bytes = [2 * m * n * itemsize for m, n in layers] + [2 * sum(SIZES[1:]) * itemsize]
    adafactor_bytes = [(m + n) * itemsize for m, n in layers] + [sum(SIZES[1:]) * itemsize]
    positions = np.arange(len(labels))
    ax_bytes.bar(positions - 0.2, adam_bytes, width=0.4, color=COLOURS["Adam"], label=f"Adam: {state['Adam']:,} B")
    ax_bytes.bar(positions + 0.2, adafactor_bytes, width=0.4, color=COLOURS["Adafactor"],
                 label=f"Adafactor: {state['Adafactor']:,} B")
    ax_bytes.set_yscale("log")
    ax_bytes.set_xticks(positions, labels)
    ax_bytes.set(title="Optimizer state per parameter (float64)", ylabel="bytes [log scale]")
    for name in GRIDS:
        ax_curves.plot(runs[name, best[name]]["curve"], color=COLOURS[name], label=f"{name}, lr={best[name]:g} (best)")
    ax_curves.set_yscale("log")
    ax_curves.set(title="Full-data loss at each one's best learning rate", xlabel="step",
                  ylabel="binary cross-entropy [nats, log scale]")
    for ax in (ax_bytes, ax_curves):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(f"10. Adafactor's factored state: 2-128-128-1 tanh net, two moons, minibatches of {BATCH}, {steps} steps")
    path = save_figure(figure, config.out / "10_adafactor_memory.png")
    tick(1.0, "done")
    return Result(
        number=10,
        title="Adafactor's factored state",
        claim=CLAIM,
        summary=(
            f"state after training: Adam {state['Adam']:,} B, Adafactor {state['Adafactor']:,} B ({fmt(100 * state_ratio)}%) "
            f"for {weights:,} weights; best loss Adam {fmt(runs['Adam', best['Adam']]['loss'])} (lr {best['Adam']:g}), "
            f"Adafactor {fmt(runs['Adafactor', best['Adafactor']]['loss'])} (lr {best['Adafactor']:g}): {fmt(loss_ratio)}x"
        ),
        table=Table(["optimizer", "lr", "loss", "state bytes"], rows),
        verdict=verdict(state_ratio, loss_ratio),
        figure=path,
        optimizers=["Adafactor", "Adam"],
        module=__name__,
        notes=[f"512 points, two-moons noise 0.2, minibatches of {BATCH}, {steps} steps, float64, the same initial "
               "weights and minibatches for every run. Adafactor with torch's defaults (beta2_decay -0.8, eps "
               "(None, 1e-3), d 1, no first moment); its lr is a relative step size (times the weights' RMS), so "
               "its grid is not Adam's.",
               "The biases are vectors: Adafactor keeps a full second moment for them (as torch), Adam both "
               "moments. The bars are computed from the shapes; the totals in the legend are measured."],
        data={"state": state, "state_ratio": state_ratio, "loss_ratio": loss_ratio, "best": best,
              "losses": {f"{n} {lr:g}": runs[n, lr]["loss"] for n, lr in runs}},
    )
