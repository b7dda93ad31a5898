"""``python -m fastopt conventions``: how far the same-named optimizers of torch, Keras and optax drift apart.

One problem for every optimizer: least squares ``0.5 * mean((A w - b)^2)`` whose features span
four orders of magnitude (``A``'s columns are scaled from 1e-4 to 1), so some coordinates see
tiny gradients: that is where eps inside or outside a square root, epsilon hat and Adagrad's
starting accumulator change the step. Each optimizer runs ``--steps`` steps from the same start
with the same learning rate under each convention it offers (``convention="torch"``, ``"keras"``,
``"optax"``: that framework's arithmetic **and** its defaults for everything but the learning
rate, which a user porting a model carries over). The table gives the loss reached and the gap
``|w - w_torch| / |w_torch|`` to the torch run, after one step and at the end; a second table
repeats the runs with torch's hyperparameters and only the arithmetic flags switched, to show how
much of the drift is arithmetic and how much is defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastopt import OPTIMIZERS
from fastopt._engine.rows import every_row
from fastopt._optimizer import CONVENTIONS

# What a user sets, whatever the framework: every option whose arithmetic a convention changes is
# exercised (weight decay for decoupled decay, momentum for lr-scaled buffers, AMSGrad's maximum).
USER_OPTIONS = {
    "SGD": dict(momentum=0.9, weight_decay=1e-2),
    "Adagrad": dict(weight_decay=1e-2),
    "RMSprop": dict(momentum=0.9, weight_decay=1e-2),
    "Adam": dict(amsgrad=True, weight_decay=1e-2),
    "AdamW": dict(amsgrad=True),
    "Adadelta": dict(weight_decay=1e-2),
    "Adamax": dict(weight_decay=1e-2),
    "NAdam": dict(weight_decay=1e-2),
    "RAdam": dict(weight_decay=1e-2),
    "Lion": dict(),
    "Rprop": dict(etas=(0.4, 1.3)),
    "ASGD": dict(weight_decay=1e-2),
    "SparseAdam": dict(),
    "AdaBelief": dict(amsgrad=True, weight_decay=1e-2),
    "Adafactor": dict(weight_decay=1e-2),
    "ADOPT": dict(weight_decay=1e-2, decouple=True),
    "ScheduleFreeAdamW": dict(warmup_steps=5, weight_decay=1e-2),
    "LAMB": dict(weight_decay=1e-2),
}


@dataclass
class Run:
    optimizer: str
    convention: str
    loss: float
    first_gap: float  # relative parameter gap to the torch run after one step
    final_gap: float  # ... after the last step
    preset: dict


def make_problem(seed: int = 0, n_samples: int = 200, n_features: int = 20, dtype=np.float64):
    rng = np.random.default_rng(seed)
    scales = np.logspace(-4, 0, n_features)
    a = rng.standard_normal((n_samples, n_features)) * scales
    w_true = rng.standard_normal(n_features) / scales  # every feature matters
    b = a @ w_true + 0.01 * rng.standard_normal(n_samples)
    return a.astype(dtype), b.astype(dtype)


def _loss_and_grad(a, b, w):
    residual = a @ w - b
    return 0.5 * float(np.mean(residual * residual)), a.T @ residual / len(b)


def _train(name: str, kwargs: dict, a, b, steps: int, backend: str) -> tuple[list[np.ndarray], float]:
    w = np.zeros(a.shape[1], a.dtype)
    opt = OPTIMIZERS[name]([w], backend=backend, **kwargs)
    as_given = every_row if opt.algorithm.sparse else list  # SparseAdam: every row named
    trajectory = []
    for _ in range(steps):
        opt.step(as_given([_loss_and_grad(a, b, w)[1]]))
        trajectory.append(w.copy())
    return trajectory, _loss_and_grad(a, b, w)[0]


def _gap(w, reference) -> float:
    scale = float(np.linalg.norm(reference))
    return float(np.linalg.norm(w - reference)) / scale if scale > 0 else float(np.linalg.norm(w))


def drift(steps: int = 200, lr: float = 1e-2, seed: int = 0, dtype: str = "float64",
          backend: str = "auto", flags_only: bool = False) -> list[Run]:
    """Every optimizer under every convention it offers (torch first, the baseline).

    ``flags_only``: keep torch's hyperparameters and switch only the arithmetic flags of each
    preset (``flag_defaults`` keys), to separate arithmetic from defaults."""
    a, b = make_problem(seed, dtype=np.dtype(dtype))
    runs = []
    for name, cls in OPTIMIZERS.items():
        offered = [c for c in CONVENTIONS if c in cls.conventions]
        if not offered:
            continue
        baseline = None
        for convention in offered:
            preset = cls.preset(convention)
            if flags_only:
                kwargs = {**cls.preset(offered[0]), **{k: v for k, v in preset.items() if k in cls.flag_defaults}}
            else:
                kwargs = dict(preset)
            kwargs.update(USER_OPTIONS.get(name, {}), lr=lr)
            trajectory, loss = _train(name, kwargs, a, b, steps, backend)
            if baseline is None:
                baseline = trajectory
            runs.append(Run(name, convention, loss, _gap(trajectory[0], baseline[0]),
                            _gap(trajectory[-1], baseline[-1]), preset))
    return runs


def _describe(cls, preset: dict) -> list[str]:
    """The preset's arithmetic flags that are on, then the defaults it sets that the runs use."""
    flags = [key for key in cls.flag_defaults if preset.get(key) and not cls.flag_defaults[key]]
    overridden = {"lr", *USER_OPTIONS.get(cls.__name__, {})}
    values = [f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
              for key, value in preset.items() if key not in cls.flag_defaults and key not in overridden]
    return flags + values


def add_arguments(parser) -> None:
    parser.add_argument("--steps", type=int, default=200, help="steps per run (default 200)")
    parser.add_argument("--lr", type=float, default=1e-2, help="the learning rate every run uses (default 1e-2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the problem (default 0)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--backend", default="auto", help="fastopt backend (default auto)")
    parser.add_argument("--width", type=int, default=None, help="table width (default: the terminal's)")


def run(args) -> int:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    if args.steps < 1:
        raise SystemExit("conventions: --steps must be at least 1")
    console = Console(width=args.width) if args.width else Console()
    if not console.is_terminal and not args.width:
        console = Console(width=150)
    console.print(
        f"[bold]Same name, different arithmetic[/bold]: least squares over 20 features scaled 1e-4..1, "
        f"{args.steps} steps, lr={args.lr:g}, {args.dtype}, every run from w = 0; weight_decay=0.01 (not AdamW, "
        "not Lion, not Rprop), momentum=0.9 (SGD, RMSprop), amsgrad=True (Adam, AdamW).\n"
        "Gap = |w - w_torch| / |w_torch|, after step 1 and at the end (rounding alone gives ~1e-16)."
    )
    # Flag names are what a reader types: they are never cut. "what changes" is at least as wide as
    # the longest one and wraps between names; below 100 columns the table drops its vertical rules.
    narrow = console.width < 100
    for flags_only, title in ((False, "Each framework's arithmetic and defaults (convention=...), lr shared"),
                              (True, "torch's hyperparameters, only the arithmetic flags switched")):
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD,
                      padding=(0, 1) if not narrow else (0, 0, 0, 1), pad_edge=not narrow, show_edge=not narrow)
        for column, justify in (("optimizer", "left"), ("convention", "left"), ("loss", "right")):
            # below 100 columns a long name (ScheduleFreeAdamW) folds rather than squeeze the flags
            narrow_name = narrow and column == "optimizer"
            table.add_column(column, justify=justify, max_width=10 if narrow_name else None,
                             overflow="fold" if narrow_name else "ellipsis")
        for column in ("gap, step 1", "gap, end"):  # "baseline" or 1.5e-02: 8 wide, the header wraps
            table.add_column(column, justify="right", max_width=8 if narrow else None)
        table.add_column("what changes", justify="left", overflow="fold")
        previous = None
        rows = []
        for item in drift(args.steps, args.lr, args.seed, args.dtype, args.backend, flags_only):
            cls = OPTIMIZERS[item.optimizer]
            baseline = item.convention == next(c for c in CONVENTIONS if c in cls.conventions)
            changes = (_describe(cls, item.preset) if not flags_only else
                       [k for k in cls.flag_defaults if item.preset.get(k) and not cls.flag_defaults[k]] or ["(same arithmetic)"])
            rows.append((item, baseline, changes))
        base = "baseline" if narrow else "(baseline)"  # 8 characters fit the narrow gap columns
        # one flag or setting per line, the column as wide as the longest: a name is never cut
        table.columns[-1].min_width = max(len(change) for _, _, changes in rows for change in changes)
        for item, baseline, changes in rows:
            if previous is not None and previous != item.optimizer:
                table.add_section()
            table.add_row(
                item.optimizer if item.optimizer != previous else "",
                item.convention,
                f"{item.loss:.4g}",
                base if baseline else f"{item.first_gap:.1e}",
                base if baseline else f"{item.final_gap:.1e}",
                "\n".join(changes),
            )
            previous = item.optimizer
        console.print(table)
    console.print(
        "Not offered: RAdam for Keras (none there) and optax (eps on the corrected root), NAdam for optax "
        "(a different update), Lion for torch (not in torch.optim), Rprop for Keras (none there) and optax (a different "
        "update), ASGD for Keras and optax (neither has it), AdaBelief and ADOPT for torch and Keras (neither has them), ScheduleFreeAdamW "
        "for torch and Keras (neither has it). The flags and why they matter: "
        "help(fastopt.rmsprop), help(fastopt.adam), ... (\"Defaults and conventions\")."
    )
    return 0
