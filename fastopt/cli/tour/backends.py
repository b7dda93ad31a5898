"""Experiment 9 - Three implementations, one result.

Claim: every optimizer is written three times (NumPy reference, Numba loop, Cython loop) with the
same operations in the same order, so the same training run on each backend follows a
bit-identical trajectory; the backends differ only in how long they take.

Set-up: a 2-32-32-1 tanh network (about 1,200 weights) on two moons, in float32, trained for the
same number of full-batch steps with each of fastopt's optimizers on each available backend from the same
initial weights. After every step the parameters are compared with the reference backend's, bit
for bit (``np.array_equal``). Timing is the median time of one ``opt.step`` (the forward and backward passes are
the same NumPy code for all backends); a throw-away warm-up step first loads or compiles each
kernel, so JIT compilation is not timed.
"""

from __future__ import annotations

import time

import numpy as np

import fastopt
from fastopt._engine.rows import every_row

from ._common import Config, Result, Table, Tick, Verdict, fmt, new_figure, save_figure
from .problems import mlp_init, mlp_loss_and_grads, two_moons

CLAIM = (
    "For every one of fastopt's optimizers, the same training run on the reference, Numba and Cython "
    "backends gives bit-identical parameters at every step; only the time differs."
)
SETTINGS = {
    "SGD": dict(lr=0.1, momentum=0.9, nesterov=True),
    "Adagrad": dict(lr=0.05, lr_decay=1e-3, initial_accumulator_value=0.1),
    "RMSprop": dict(lr=0.003, momentum=0.5, centered=True),
    "Adam": dict(lr=0.003, amsgrad=True),
    "AdamW": dict(lr=0.003, weight_decay=0.01),
    "Adadelta": dict(lr=1.0, rho=0.9, weight_decay=1e-3),
    "Adamax": dict(lr=0.002, weight_decay=1e-3),
    "NAdam": dict(lr=0.002, decoupled_weight_decay=True, weight_decay=0.01),
    "RAdam": dict(lr=0.003, weight_decay=1e-3),  # rho_t passes 5 at step 6: both branches run
    "Lion": dict(lr=3e-4, weight_decay=0.1),
    "Rprop": dict(lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 1.0)),  # repeated and flipped signs
    "ASGD": dict(lr=0.1, lambd=1e-3, t0=5, weight_decay=1e-3),  # averaging from step 7 on
    "SparseAdam": dict(lr=0.003),
    "AdaBelief": dict(lr=0.003, amsgrad=True, weight_decay=1e-3),
    "Adafactor": dict(lr=0.01, weight_decay=1e-3),  # matrices factored, biases a full variance
    "ADOPT": dict(lr=0.003, weight_decay=1e-3, decouple=True),
    "ScheduleFreeAdamW": dict(lr=0.003, warmup_steps=5, weight_decay=1e-3, r=1.0),  # warmup, then the average
    "LAMB": dict(lr=0.003, weight_decay=1e-3, eps_root=1e-12),  # one trust ratio per weight matrix and bias
}
"""Every optimizer fastopt has (``fastopt.OPTIMIZERS``), each with options that exercise its less
common code paths; ``test_tour`` checks that no optimizer is left out."""
OPTIMIZER_COLOURS = {"Adam": "#9467bd", "SGD": "#2ca02c"}
BACKEND_COLOURS = {"reference": "#7f7f7f", "numba": "#1f77b4", "cython": "#ff7f0e"}


def train(name: str, backend: str, steps: int, x, y, seed: int):
    """Return (loss per step, parameters after each step, median seconds of one opt.step)."""
    params = mlp_init([2, 32, 32, 1], np.random.default_rng(seed + 1), dtype=np.float32)
    # SparseAdam takes sparse gradients: here every row is named (it steps as Adam, in torch's rounding)
    as_given = every_row if fastopt.OPTIMIZERS[name].algorithm.sparse else list
    warm_up = getattr(fastopt, name)([np.zeros(8, np.float32)], backend=backend, **SETTINGS[name])
    warm_up.step(as_given([np.ones(8, np.float32)]))  # loads (or JIT-compiles) the kernel outside the timing
    opt = getattr(fastopt, name)(params, backend=backend, **SETTINGS[name])
    losses, snapshots, seconds = [], [], []
    for _ in range(steps):
        loss, grads = mlp_loss_and_grads(params, x, y)
        grads = as_given(grads)
        losses.append(loss)
        start = time.perf_counter()
        opt.step(grads)
        seconds.append(time.perf_counter() - start)
        snapshots.append(np.concatenate([p.ravel() for p in params]))
    return np.array(losses), np.array(snapshots), float(np.median(seconds))  # median: robust to a busy machine


def first_difference(snapshots: np.ndarray, reference: np.ndarray) -> int | None:
    """The first step (1-based) whose parameters differ from the reference's in any bit, or None."""
    same = [np.array_equal(a, b, equal_nan=True) for a, b in zip(snapshots, reference)]
    return None if all(same) else same.index(False) + 1


def verdict(first_differences: dict[tuple[str, str], int | None], backends: list[str]) -> Verdict:
    differing = {key: step for key, step in first_differences.items() if step is not None}
    compared = len(first_differences)
    supported = not differing and compared > 0 and len(backends) > 1
    detail = (f"{compared} (optimizer, backend) runs compared with the reference at every step; "
              + ("all bit-identical" if not differing else
                 "differ: " + ", ".join(f"{o} on {b} from step {s}" for (o, b), s in differing.items())))
    if len(backends) < 2:
        detail += "; only the reference backend is available here, nothing to compare"
    return Verdict(
        supported,
        "every optimizer's parameters on every compiled backend equal the reference's bit for bit "
        "after every step (and at least one compiled backend is available)",
        detail,
    )


def run(config: Config, tick: Tick) -> Result:
    steps = 10 if config.quick else 100
    backends = list(fastopt.available_backends())
    x, y = two_moons(256, np.random.default_rng(config.seed), noise=0.1, dtype=np.float32)
    runs, first_differences = {}, {}
    total = len(SETTINGS) * len(backends)
    for i, name in enumerate(SETTINGS):
        for j, backend in enumerate(backends):
            tick((i * len(backends) + j) / total, f"{name} on {backend}")
            runs[name, backend] = train(name, backend, steps, x, y, config.seed)
            if backend != "reference":
                first_differences[name, backend] = first_difference(
                    runs[name, backend][1], runs[name, "reference"][1])
    result_verdict = verdict(first_differences, backends)
    n_params = runs[next(iter(runs))][1].shape[1]
    rows = []
    for name in SETTINGS:
        row = [name]
        for backend in backends:
            losses, _, seconds = runs[name, backend]
            same = "-" if backend == "reference" else (
                "yes" if first_differences[name, backend] is None else f"NO (step {first_differences[name, backend]})")
            row += [f"{seconds * 1e6:.0f}", same]
        row.append(fmt(runs[name, backends[0]][0][-1]))
        rows.append(row)
    headers = ["optimizer"]
    for backend in backends:
        headers += [f"{backend}: µs/step", f"{backend}: bits = reference"]
    headers.append("final loss")

    figure, (ax_loss, ax_time) = new_figure(ncols=2)
    styles = {"reference": dict(lw=6, alpha=0.3), "numba": dict(lw=2.5, ls="--"), "cython": dict(lw=1, ls=":")}
    for name in ("Adam", "SGD"):
        for backend in backends:
            ax_loss.semilogy(np.arange(1, steps + 1), runs[name, backend][0], color=OPTIMIZER_COLOURS[name],
                             label=f"{name} on {backend}", **styles[backend])
    ax_loss.set(title="The same run on each backend: curves coincide", xlabel="step (full-batch updates)",
                ylabel="cross-entropy loss [nats]")
    ax_loss.legend(fontsize="small")
    width = 0.8 / len(backends)
    positions = np.arange(len(SETTINGS))
    for k, backend in enumerate(backends):
        per_step = [runs[name, backend][2] * 1e6 for name in SETTINGS]
        ax_time.bar(positions + (k - (len(backends) - 1) / 2) * width, per_step, width,
                    color=BACKEND_COLOURS[backend], label=backend)
    ax_time.set_xticks(positions, list(SETTINGS))
    ax_time.tick_params(axis="x", labelrotation=45)
    ax_time.set(title=f"Time of one opt.step ({n_params} float32 weights in 6 arrays)",
                xlabel="optimizer", ylabel="median time of one opt.step [µs]")
    ax_time.set_ylim(top=1.3 * max(runs[name, b][2] * 1e6 for name in SETTINGS for b in backends))
    ax_time.legend(title="backend", ncols=len(backends), loc="upper center")  # above the bars, not over them
    for ax in (ax_loss, ax_time):
        ax.grid(True, which="major", alpha=0.3)
    figure.suptitle("9. Three implementations, one result: "
                    + ("bit-identical on every backend" if result_verdict.supported else "trajectories compared bit for bit"))
    path = save_figure(figure, config.out / "9_backends.png")
    tick(1.0, "done")
    reference_us = {name: runs[name, "reference"][2] * 1e6 for name in SETTINGS}
    fastest = {name: min(runs[name, b][2] for b in backends) * 1e6 for name in SETTINGS}
    return Result(
        number=9,
        title="Three implementations, one result",
        claim=CLAIM,
        summary=(
            f"{len(first_differences)} runs x {steps} steps compared bit for bit: "
            + ("all identical" if not [v for v in first_differences.values() if v] else "DIFFERENCES")
            + "; µs/step " + ", ".join(
                f"{b} {np.median([runs[n, b][2] for n in SETTINGS]) * 1e6:.0f}" for b in backends)
            + " (median over optimizers)"
        ),
        table=Table(headers, rows),
        verdict=result_verdict,
        figure=path,
        optimizers=list(SETTINGS),
        module=__name__,
        notes=[f"Backends available here: {', '.join(backends)}. {steps} steps, float32, {n_params} weights. "
               "Options chosen to exercise the less common code paths: " + "; ".join(
                   f"{n} {', '.join(f'{k}={v}' for k, v in s.items())}" for n, s in SETTINGS.items()) + "."],
        data={"first_differences": first_differences, "backends": backends,
              "reference_us": reference_us, "fastest_us": fastest},
    )
