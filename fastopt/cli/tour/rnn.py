"""Experiment 5 - Why RMSprop suits recurrent networks: the adding problem.

Claim: in a recurrent network the gradient reaching each weight is a sum over time steps of
products of Jacobians, so its scale differs by orders of magnitude between weight matrices and
drifts during training (vanishing and exploding gradients). One global SGD learning rate is then
too large for some weights and too small for others; RMSprop divides each weight's step by its
own recent gradient RMS and trains the network where SGD, at its best learning rate, lags.

Set-up: the adding problem (Hochreiter & Schmidhuber 1997). Each input sequence has ``T`` steps of
``(value, marker)``, values uniform in [0, 1], exactly two markers (one in each half); the target
is the sum of the two marked values, read out after the last step. Always predicting the mean
(1.0) gives a mean squared error of 1/6 = 0.167, the baseline to beat. The model is a vanilla tanh
RNN, ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``, ``y = h_T w_o + b_o``, trained on fresh minibatches
with gradients from backpropagation through time (BPTT), written by hand below.
"""

from __future__ import annotations

import math

import numpy as np

import fastopt

from ._common import COLOURS, Config, Result, Table, Tick, Verdict, fmt, new_figure, save_figure

CLAIM = (
    "In a recurrent network the gradient's scale differs by orders of magnitude between weight "
    "matrices; RMSprop's per-parameter scaling trains a vanilla RNN on the adding problem to a much "
    "lower error than SGD at its best learning rate."
)
HIDDEN = 32
BATCH = 64
LR_GRID = (1e-3, 1e-2, 1e-1, 1.0)
BASELINE_MSE = 1.0 / 6.0  # variance of the sum of two uniform(0, 1) values

# The criterion, fixed before running.
ADVANTAGE = 2.0  # RMSprop's final test error must be at most 1/ADVANTAGE of SGD's ...
SOLVED = 0.5  # ... and below SOLVED x the baseline of always predicting the mean


def adding_problem(n: int, length: int, rng: np.random.Generator):
    """Inputs ``(n, length, 2)`` and targets ``(n,)`` of the adding problem."""
    values = rng.uniform(0.0, 1.0, (n, length))
    markers = np.zeros((n, length))
    half = length // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    targets = values[np.arange(n), first] + values[np.arange(n), second]
    return np.stack([values, markers], axis=2), targets


def init_rnn(rng: np.random.Generator, hidden: int = HIDDEN) -> list[np.ndarray]:
    """``[W_x, W_h, b, w_o, b_o]``; W_h starts as a scaled random orthogonal matrix."""
    q, _ = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    return [
        rng.normal(0.0, 0.5, (2, hidden)),  # W_x
        0.9 * q,  # W_h
        np.zeros(hidden),  # b
        rng.normal(0.0, 1.0 / math.sqrt(hidden), (hidden, 1)),  # w_o
        np.zeros(1),  # b_o
    ]


def rnn_loss_and_grads(params: list[np.ndarray], x: np.ndarray, y: np.ndarray):
    """Mean squared error of the RNN's final output, and its gradient by BPTT.

    Forward: ``h_0 = 0``; ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``; ``yhat = h_T w_o + b_o``.
    Backward: ``dyhat = 2 (yhat - y) / n``; ``dh_T = dyhat w_o^T``; then for t = T..1:
    ``da_t = dh_t * (1 - h_t^2)`` (through tanh), which adds ``x_t^T da_t`` to dW_x,
    ``h_{t-1}^T da_t`` to dW_h and ``sum(da_t)`` to db, and sends ``dh_{t-1} = da_t W_h^T`` back
    one step in time.
    """
    w_x, w_h, b, w_o, b_o = params
    n, length, _ = x.shape
    hs = [np.zeros((n, w_h.shape[0]))]
    for t in range(length):
        hs.append(np.tanh(x[:, t] @ w_x + hs[-1] @ w_h + b))
    prediction = (hs[-1] @ w_o)[:, 0] + b_o[0]
    error = prediction - y
    loss = float(np.mean(error * error))
    d_prediction = (2.0 / n) * error[:, None]
    grads = [np.zeros_like(w_x), np.zeros_like(w_h), np.zeros_like(b),
             hs[-1].T @ d_prediction, d_prediction.sum(axis=0)]
    dh = d_prediction @ w_o.T
    for t in range(length, 0, -1):
        da = dh * (1.0 - hs[t] * hs[t])
        grads[0] += x[:, t - 1].T @ da
        grads[1] += hs[t - 1].T @ da
        grads[2] += da.sum(axis=0)
        dh = da @ w_h.T
    return loss, grads


def train(name: str, lr: float, steps: int, length: int, seed: int, backend: str, evaluate_every: int):
    rng = np.random.default_rng(seed)
    params = init_rnn(np.random.default_rng(seed + 1))
    test_x, test_y = adding_problem(500, length, np.random.default_rng(seed + 2))
    if name == "SGD":
        opt = fastopt.SGD(params, lr=lr, backend=backend)
    else:
        opt = fastopt.RMSprop(params, lr=lr, rho=0.9, backend=backend)
    evaluated_at, test_mse = [], []
    for t in range(steps + 1):
        if t % evaluate_every == 0:
            loss = rnn_loss_and_grads(params, test_x, test_y)[0]
            evaluated_at.append(t)
            test_mse.append(loss if math.isfinite(loss) else math.inf)
            if not math.isfinite(loss) or loss > 1e3:
                break  # diverged; the remaining evaluations are not worth computing
        if t < steps:
            x, y = adding_problem(BATCH, length, rng)
            opt.step(rnn_loss_and_grads(params, x, y)[1])
    return np.array(evaluated_at), np.array(test_mse)


def final_error(test_mse: np.ndarray, expected_points: int) -> float:
    """Mean test MSE over the last 3 evaluations (inf if the run diverged before the end)."""
    if len(test_mse) < expected_points:
        return math.inf
    return float(np.mean(test_mse[-3:]))


def gradient_scales(length: int, seed: int) -> list[float]:
    """RMS of each parameter array's gradient at initialisation, on one minibatch."""
    params = init_rnn(np.random.default_rng(seed + 1))
    x, y = adding_problem(BATCH, length, np.random.default_rng(seed + 3))
    grads = rnn_loss_and_grads(params, x, y)[1]
    return [float(np.sqrt(np.mean(g * g))) for g in grads]


def verdict(rmsprop_error: float, sgd_error: float) -> Verdict:
    supported = rmsprop_error <= sgd_error / ADVANTAGE and rmsprop_error < SOLVED * BASELINE_MSE
    return Verdict(
        supported,
        f"RMSprop's final test MSE (best lr) is at most 1/{ADVANTAGE:g} of SGD's (best lr) and below "
        f"{SOLVED:g} x the predict-the-mean baseline {BASELINE_MSE:.3f}",
        f"RMSprop {fmt(rmsprop_error)}, SGD {fmt(sgd_error)}, baseline {BASELINE_MSE:.3f}",
    )


def run(config: Config, tick: Tick) -> Result:
    length, steps = (8, 300) if config.quick else (20, 1200)
    evaluate_every = max(steps // 30, 1)
    expected_points = steps // evaluate_every + 1
    runs = {}
    total = 2 * len(LR_GRID)
    for i, (name, lr) in enumerate((n, lr) for n in ("SGD", "RMSprop") for lr in LR_GRID):
        tick(i / total, f"{name} lr={lr:g} on the adding problem (T={length})")
        runs[name, lr] = train(name, lr, steps, length, config.seed, config.backend, evaluate_every)
    best = {}
    for name in ("SGD", "RMSprop"):
        errors = {lr: final_error(runs[name, lr][1], expected_points) for lr in LR_GRID}
        lr = min(errors, key=errors.get)
        best[name] = (lr, errors[lr], errors)
    result_verdict = verdict(best["RMSprop"][1], best["SGD"][1])
    scales = gradient_scales(length, config.seed)
    spread = max(scales) / min(scales)
    rows = [[f"{lr:g}", fmt(best["SGD"][2][lr]), fmt(best["RMSprop"][2][lr])] for lr in LR_GRID]

    figure, (ax_curves, ax_scales) = new_figure(ncols=2, width=6.0)
    for name in ("SGD", "RMSprop"):
        for lr in LR_GRID:
            at, mse = runs[name, lr]
            is_best = lr == best[name][0]
            ax_curves.semilogy(at, mse, color=COLOURS[name], alpha=1.0 if is_best else 0.3,
                               lw=2.0 if is_best else 1.0,
                               label=f"{name}, lr {lr:g}" + (" (best)" if is_best else ""))
    ax_curves.axhline(BASELINE_MSE, color="k", ls=":", label="baseline: always predict 1.0")
    ax_curves.set(title=f"Adding problem, T={length}: test error during training",
                  xlabel=f"step (minibatches of {BATCH} sequences)", ylabel="test mean squared error [target units²]",
                  ylim=(1e-2, 3.0))
    ax_curves.legend(fontsize="x-small", ncols=2)
    names = ["W_x", "W_h", "b", "w_o", "b_o"]
    ax_scales.bar(names, scales, color=["#17becf", "#bcbd22", "#e377c2", "#8c564b", "#7f7f7f"],
                  label="RMS of the gradient at initialisation")
    ax_scales.set_yscale("log")
    ax_scales.set(title=f"Gradient scale per weight array: spread {spread:.0f}x",
                  xlabel="parameter array", ylabel="gradient RMS [loss units per weight unit]")
    ax_scales.legend(fontsize="small")
    for ax in (ax_curves, ax_scales):
        ax.grid(True, which="major", alpha=0.3)
    figure.suptitle(f"5. RMSprop vs SGD on a vanilla tanh RNN ({HIDDEN} units), backpropagation through time")
    path = save_figure(figure, config.out / "5_rnn.png")
    tick(1.0, "done")
    return Result(
        number=5,
        title="Why RMSprop suits recurrent networks",
        claim=CLAIM,
        summary=(
            f"final test MSE: RMSprop {fmt(best['RMSprop'][1])} (lr {best['RMSprop'][0]:g}), SGD "
            f"{fmt(best['SGD'][1])} (lr {best['SGD'][0]:g}), baseline {BASELINE_MSE:.3f}; gradient RMS "
            f"spread across weight arrays {spread:.0f}x"
        ),
        table=Table(["lr", "SGD: final test MSE", "RMSprop: final test MSE"], rows),
        verdict=result_verdict,
        figure=path,
        optimizers=["SGD", "RMSprop"],
        module=__name__,
        notes=[f"Sequence length {length}, {HIDDEN} hidden units, {steps} steps of {BATCH} fresh sequences, "
               f"test set of 500 sequences; final = mean of the last 3 of {expected_points} evaluations "
               "('inf' = diverged). Gradient RMS per array at initialisation: "
               + ", ".join(f"{n} {fmt(s)}" for n, s in zip(names, scales)) + "."],
        data={"rmsprop_error": best["RMSprop"][1], "sgd_error": best["SGD"][1], "gradient_spread": spread},
    )
