"""Experiment 12 - Muon's Newton-Schulz squeezes a momentum matrix's singular values towards 1.

Claim: the momentum of a hidden layer's weight matrix is dominated by a few directions: its
singular values span orders of magnitude. Muon replaces it by an approximately semi-orthogonal
matrix: five Newton-Schulz steps of the odd polynomial ``a s + b s^3 + c s^5`` (torch's
coefficients 3.4445, -4.7750, 2.0315) after a division by the Frobenius norm. Every direction
whose singular value is at least 1/100 of the largest then ends in a narrow band around 1, so the
update moves the weights about as much along a weak direction as along the dominant one.

Set-up: a 2-64-64-1 tanh network on 512 two-moons points (noise 0.2), minibatches of 32, 200
steps; the 64 x 64 hidden matrix is trained by Muon (lr 0.02, torch's defaults otherwise), every
other parameter (vectors and the thin input and output matrices) by AdamW (lr 0.01), the split
torch's documentation recommends. The measured matrix is Muon's momentum buffer ``B`` after the
last step; its orthogonalised version is ``NS(B)``, computed by fastopt's Muon kernel itself (a
step with momentum 0, no decay and lr 1 from zero weights moves them by ``-NS(B)``).
"""

from __future__ import annotations

import numpy as np

import fastopt

from ._common import Config, Result, Table, Tick, Verdict, fmt, new_figure, save_figure
from .problems import mlp_init, mlp_loss, mlp_loss_and_grads, two_moons

CLAIM = (
    "A hidden weight matrix's momentum has singular values spanning orders of magnitude (largest over "
    "smallest at least 100); after Muon's five Newton-Schulz steps every direction at least 1/100 of the "
    "largest lies in [0.6, 1.25]."
)
SIZES = [2, 64, 64, 1]
BATCH = 32
MUON_LR, ADAMW_LR = 0.02, 0.01

# The criterion, fixed before running.
MIN_SPAN = 100.0  # the momentum's largest singular value / its smallest, at least
KEPT = 1e-2  # the directions judged: singular value at least this fraction of the largest
BAND = (0.6, 1.25)  # where every judged direction's singular value must end


def newton_schulz(matrix: np.ndarray, backend: str) -> np.ndarray:
    """``NS(matrix)`` as Muon computes it: one step from zero weights with momentum 0, no weight
    decay and lr 1 moves them by ``-NS(matrix)`` (a square matrix: the lr ratio is 1)."""
    weights = np.zeros_like(matrix)
    fastopt.Muon([weights], lr=1.0, momentum=0.0, nesterov=False, weight_decay=0.0, backend=backend).step([matrix])
    return -weights


def train(steps: int, x, y, seed: int, backend: str) -> dict:
    params = mlp_init(SIZES, np.random.default_rng(seed + 1))
    hidden = 2  # W1, b1, W2, b2, W3, b3: the 64 x 64 matrix
    muon = fastopt.Muon([params[hidden]], lr=MUON_LR, backend=backend)
    others = [p for k, p in enumerate(params) if k != hidden]
    adamw = fastopt.AdamW(others, lr=ADAMW_LR, backend=backend)
    batches = np.random.default_rng(seed + 100)
    losses = []
    for _ in range(steps):
        batch = batches.integers(0, len(y), BATCH)
        _, grads = mlp_loss_and_grads(params, x[batch], y[batch])
        muon.step([grads[hidden]])
        adamw.step([g for k, g in enumerate(grads) if k != hidden])
        losses.append(mlp_loss(params, x, y))
    return {"momentum": muon.state[0]["momentum_buffer"].copy(), "losses": np.array(losses)}


def verdict(span: float, judged_after: np.ndarray) -> Verdict:
    low, high = BAND
    inside = bool(judged_after.size) and bool(np.all((judged_after >= low) & (judged_after <= high)))
    return Verdict(
        span >= MIN_SPAN and inside,
        f"the momentum's singular values span at least {MIN_SPAN:g}x, and after Newton-Schulz every direction "
        f"at least {KEPT:g} of the largest lies in [{low:g}, {high:g}]",
        f"span {fmt(span)}x; judged directions after: "
        + (f"{fmt(float(judged_after.min()))} to {fmt(float(judged_after.max()))}" if judged_after.size else "none"),
    )


def run(config: Config, tick: Tick) -> Result:
    steps = 100 if config.quick else 200
    backend, seed = config.backend, config.seed
    x, y = two_moons(512, np.random.default_rng(seed), noise=0.2)
    tick(0.1, "training with Muon and AdamW")
    trained = train(steps, x, y, seed, backend)
    momentum = trained["momentum"]
    tick(0.8, "Newton-Schulz")
    orthogonal = newton_schulz(momentum, backend)
    before = np.linalg.svd(momentum, compute_uv=False)
    # NS keeps the singular vectors: the k-th singular value after belongs to the k-th before
    # (p is increasing on [0, 1] up to its band, so the order can only change inside the band)
    u, _, vt = np.linalg.svd(momentum)
    after_by_direction = np.einsum("ik,ij,kj->k", u, orthogonal, vt)  # u_k^T NS(B) v_k
    after = np.linalg.svd(orthogonal, compute_uv=False)
    span = float(before[0] / before[-1]) if before[-1] > 0 else float("inf")
    judged = before >= KEPT * before[0]
    judged_after = after_by_direction[judged]
    low, high = BAND

    figure, (ax_values, ax_map) = new_figure(ncols=2, width=5.6, height=4.4)
    index = np.arange(1, before.size + 1)
    ax_values.semilogy(index, before / before[0], "o-", ms=3, color="#9467bd", label="momentum B (/ its largest)")
    ax_values.semilogy(index, after_by_direction, "o-", ms=3, color="#d62728", label="NS(B), same directions")
    ax_values.axhspan(low, high, color="#d62728", alpha=0.12, label=f"band [{low:g}, {high:g}]")
    ax_values.axhline(KEPT, color="grey", ls=":", lw=1, label=f"judged: at least {KEPT:g} of the largest")
    ax_values.set(title="Singular values, largest first", xlabel="direction k", ylabel="singular value [log scale]")
    grid = np.logspace(-4, 0, 200)
    ax_map.semilogx(before / np.sqrt(np.sum(before**2)), after_by_direction, "o", ms=4, color="#d62728",
                    label="this momentum's directions")
    ax_map.axhspan(low, high, color="#d62728", alpha=0.12)
    ax_map.set(title="What five steps do to a normalised singular value", xlabel="s / Frobenius norm [log scale]",
               ylabel="after Newton-Schulz", xlim=(grid[0], 1.0))
    for ax in (ax_values, ax_map):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(f"12. Muon: the 64 x 64 hidden matrix's momentum after {steps} steps, before and after Newton-Schulz")
    path = save_figure(figure, config.out / "12_muon_singular_values.png")
    tick(1.0, "done")
    quartiles = [0, before.size // 4, before.size // 2, 3 * before.size // 4, before.size - 1]
    rows = [[str(k + 1), fmt(float(before[k] / before[0])), fmt(float(after_by_direction[k])),
             "yes" if judged[k] else "no"] for k in quartiles]
    return Result(
        number=12,
        title="Muon squeezes the singular values",
        claim=CLAIM,
        summary=(
            f"momentum singular values span {fmt(span)}x ({int(judged.sum())} of {before.size} directions at least "
            f"{KEPT:g} of the largest); after Newton-Schulz those lie in {fmt(float(judged_after.min()))} to "
            f"{fmt(float(judged_after.max()))}; {int(np.sum(after_by_direction >= low))} of {before.size} directions end at "
            f"{low:g} or more, the weakest stay small (down to {fmt(float(after.min()))}); "
            f"final loss {fmt(float(trained['losses'][-1]))}"
        ),
        table=Table(["direction (largest first)", "B: s / s_max", "NS(B): s", "judged"], rows),
        verdict=verdict(span, judged_after),
        figure=path,
        optimizers=["Muon"],
        module=__name__,
        notes=[f"512 points, two-moons noise 0.2, minibatches of {BATCH}, {steps} steps, float64. Muon (lr {MUON_LR:g}, "
               f"momentum 0.95, Nesterov, weight decay 0.1, 5 steps) on the 64 x 64 matrix, AdamW (lr {ADAMW_LR:g}) on "
               "the rest.",
               "Newton-Schulz keeps the singular vectors and maps each singular value s (after the division by the "
               "Frobenius norm) through p(p(p(p(p(s))))), p(s) = a s + b s^3 + c s^5: a direction below about 1e-3 of "
               "the norm is multiplied by at most a^5 = 490 and stays small, which is why only directions at least "
               f"{KEPT:g} of the largest are judged. The 'same directions' values are u_k^T NS(B) v_k.",
               "On this problem the momentum is nearly low-rank (the network's input is 2-D): a handful of "
               "directions carry it, the rest are 1e-5 of the largest or less. Muon equalises the handful; it does "
               "not invent directions the gradients never had."],
        data={"span": span, "before": before, "after_by_direction": after_by_direction, "judged": judged},
    )
