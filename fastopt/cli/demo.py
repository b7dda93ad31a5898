"""``python -m fastopt``: train one small network with every optimizer on every backend.

The problem is a 2-16-1 tanh network classifying two interleaved half-moons (a classic task
that a linear model cannot solve). The gradients are computed by hand with NumPy, so the only
thing that changes between rows of the table is the optimizer and its backend. The last column
checks the promise fastopt is built on: each backend ends with the reference's exact bits.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

from fastopt import OPTIMIZERS, available_backends
from fastopt._engine.rows import every_row

# Settings a practitioner would start from for this problem, per optimizer.
SETTINGS = {
    "SGD": dict(lr=0.1, momentum=0.9),
    "Adagrad": dict(lr=0.1),
    "RMSprop": dict(lr=0.01),
    "Adam": dict(lr=0.01),
    "AdamW": dict(lr=0.01, weight_decay=1e-2),
    "Adadelta": dict(lr=1.0),
    "Adamax": dict(lr=0.02),
    "NAdam": dict(lr=0.01),
    "RAdam": dict(lr=0.01),
    "Lion": dict(lr=1e-3),
    "Rprop": dict(lr=0.01),
    "ASGD": dict(lr=0.1),
    "SparseAdam": dict(lr=0.01),
    "AdaBelief": dict(lr=0.01),
    "Adafactor": dict(lr=0.01),
    "ADOPT": dict(lr=0.01),
    "ScheduleFreeAdamW": dict(lr=0.05, warmup_steps=20),  # Schedule-Free takes a larger lr than Adam
    "LAMB": dict(lr=0.01),
}


def two_moons(n_samples: int, dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    half = n_samples // 2
    angle = rng.uniform(0.0, np.pi, n_samples)
    upper = np.stack([np.cos(angle[:half]), np.sin(angle[:half])], axis=1)
    lower = np.stack([1.0 - np.cos(angle[half:]), 0.5 - np.sin(angle[half:])], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0.0, 0.1, (n_samples, 2))
    y = np.concatenate([np.zeros(half), np.ones(n_samples - half)])
    return x.astype(dtype), y.astype(dtype)


def init_network(dtype, hidden: int = 16, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((2, hidden)) / np.sqrt(2)).astype(dtype),  # W1
        np.zeros(hidden, dtype),  # b1
        (rng.standard_normal((hidden, 1)) / np.sqrt(hidden)).astype(dtype),  # W2
        np.zeros(1, dtype),  # b2
    ]


def loss_and_grads(params, x, y):
    """Mean binary cross-entropy of a 2-layer tanh network, and its gradient by backpropagation."""
    w1, b1, w2, b2 = params
    hidden = np.tanh(x @ w1 + b1)
    logit = (hidden @ w2)[:, 0] + b2[0]
    # log(1 + exp(-z)) written to stay finite for large |z|
    loss = np.mean(np.logaddexp(0.0, logit) - y * logit)
    dlogit = ((1.0 / (1.0 + np.exp(-logit))) - y)[:, None] / len(y)
    dhidden = (dlogit @ w2.T) * (1.0 - hidden * hidden)
    grads = [x.T @ dhidden, dhidden.sum(axis=0), hidden.T @ dlogit, dlogit.sum(axis=0)]
    accuracy = np.mean((logit > 0) == (y > 0.5))
    return float(loss), [g.astype(x.dtype) for g in grads], float(accuracy)


@dataclass
class Run:
    optimizer: str
    backend: str
    loss: float
    accuracy: float
    step_us: float
    params: list[np.ndarray]


def train(name: str, backend: str, steps: int, dtype) -> Run:
    x, y = two_moons(256, dtype)
    params = init_network(dtype)
    optimizer = OPTIMIZERS[name](params, backend=backend, **SETTINGS[name])
    as_given = every_row if optimizer.algorithm.sparse else list  # SparseAdam: every row named
    step_times = []
    for _ in range(steps):
        grads = as_given(loss_and_grads(params, x, y)[1])
        start = time.perf_counter()
        optimizer.step(grads)
        step_times.append(time.perf_counter() - start)
    if hasattr(optimizer, "eval"):  # Schedule-Free: evaluate x, the average (training steps sit at y)
        optimizer.eval()
    loss, _, accuracy = loss_and_grads(params, x, y)
    # the first steps include JIT compilation / cache loading: report the median
    return Run(name, backend, loss, accuracy, statistics.median(step_times) * 1e6, params)


def add_arguments(parser) -> None:
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")


def run(args) -> int:
    if args.steps < 1:
        raise SystemExit("--steps must be at least 1")
    return 0 if run_demo(steps=args.steps, dtype_name=args.dtype) else 1


def run_demo(steps: int = 300, dtype_name: str = "float32", console=None) -> list[Run]:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    dtype = np.dtype(dtype_name).type
    backends = available_backends()
    x, y = two_moons(256, dtype)
    initial_loss, _, initial_accuracy = loss_and_grads(init_network(dtype), x, y)
    console.print(
        f"[bold]fastopt demo[/]: a 2-16-1 tanh network on 256 two-moons points, {steps} full-batch "
        f"steps, {dtype_name}. Before training: loss {initial_loss:.4f}, accuracy {initial_accuracy:.1%}."
    )
    table = Table(title="every optimizer x every backend")
    for column, justify in [("optimizer", "left"), ("backend", "left"), ("final loss", "right"),
                            ("accuracy", "right"), ("µs / step", "right"), ("bits = reference", "center")]:
        # the optimizer's name whole (ScheduleFreeAdamW): the other columns' headers wrap instead
        table.add_column(column, justify=justify, no_wrap=column == "optimizer")
    runs = []
    with console.status("training ...") as status:
        for name in OPTIMIZERS:
            reference = None
            for backend in backends:
                status.update(f"training with {name} on {backend} ...")
                run = train(name, backend, steps, dtype)
                runs.append(run)
                if backend == "reference":
                    reference = run
                    same = "-"
                else:
                    identical = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(run.params, reference.params))
                    same = "[green]yes[/]" if identical else "[red]NO[/]"
                table.add_row(name, backend, f"{run.loss:.4f}", f"{run.accuracy:.1%}", f"{run.step_us:.1f}", same)
            table.add_section()
    console.print(table)
    console.print(
        "µs / step: median time of one opt.step() over the run. With 4 small arrays the time is the "
        "Python layer's (validation and one kernel call per array), not the arithmetic's."
    )
    return runs
