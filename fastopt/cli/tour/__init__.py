"""``python -m fastopt tour``: experiments that each test one claim about an optimizer.

Each experiment is a module of this package with a ``run(config, tick) -> Result`` function; it
states a claim, measures numbers on a built-in synthetic problem (no downloads), decides a verdict
from those numbers with a criterion fixed in its source, and saves one PNG figure. The tour prints
the claims, numbers and verdicts, and writes ``report.html`` (figures, numbers and code side by
side) to ``--out``.

====  ===================  ===========================================================
 1    adagrad_stalls       Adagrad's effective learning rate decays to zero; RMSprop's does not
 2    lr_sweep             RMSprop's learning rate still has to be chosen
 3    rho_memory           RMSprop's rho is a memory of about 1/(1-rho) steps
 4    stepping_stones      SGD, momentum, Adagrad, RMSprop and Adam side by side; paths on 2-D surfaces
 5    rnn                  recurrence scales gradients with time; RMSprop vs SGD on a recurrent network
 6    adadelta_units       Adadelta needs no learning rate, but its eps is one: not unit-free
 7    radam_warmup         RAdam's rectification is a warm-up that tames Adam's first steps
 8    lion_sign            Lion moves every weight by exactly lr, so it needs a smaller lr
 9    backends             the three implementations give bit-identical trajectories (every optimizer)
10    adafactor_memory     Adafactor's factored state: a few percent of Adam's memory, about Adam's loss
11    schedule_free        Schedule-Free AdamW: a cosine schedule's final loss, with no schedule and no stopping time
12    muon_singular_values Muon's Newton-Schulz squeezes a momentum matrix's singular values into a band around 1
13    lbfgs_curvature      L-BFGS uses curvature: a fraction of Adam's gradient evaluations on an ill-conditioned problem
====  ===================  ===========================================================
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

EXPERIMENTS = {
    1: "adagrad_stalls",
    2: "lr_sweep",
    3: "rho_memory",
    4: "stepping_stones",
    5: "rnn",
    6: "adadelta_units",
    7: "radam_warmup",
    8: "lion_sign",
    9: "backends",
    10: "adafactor_memory",
    11: "schedule_free",
    12: "muon_singular_values",
    13: "lbfgs_curvature",
}
DEFAULT_OUT = "fastopt-tour"


def _experiment_numbers(text: str) -> list[int]:
    try:
        numbers = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--only takes numbers like 1,3 (got {text!r})") from None
    unknown = [n for n in numbers if n not in EXPERIMENTS]
    if unknown or not numbers:
        raise argparse.ArgumentTypeError(f"experiments are numbered 1-{len(EXPERIMENTS)} (got {text!r})")
    return numbers


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, default=Path(DEFAULT_OUT),
                        help=f"folder for report.html and the figures (default ./{DEFAULT_OUT})")
    parser.add_argument("--quick", action="store_true", help="small problems, a few seconds (for tests)")
    parser.add_argument("--only", type=_experiment_numbers, default=list(EXPERIMENTS), metavar="N[,N]",
                        help="run only these experiments, e.g. --only 1,3")
    parser.add_argument("--backend", choices=["auto", "reference", "numba", "cython"], default="auto",
                        help="backend of the optimizers in every experiment but 9 (9 uses every backend)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random problem (default 0)")


def run(args) -> int:
    run_tour(out=args.out, quick=args.quick, only=args.only, backend=args.backend, seed=args.seed)
    return 0  # a claim the numbers do not support is a finding, not a failure


def run_tour(out=DEFAULT_OUT, quick=False, only=None, backend="auto", seed=0, console=None):
    """Run the experiments, print the summary, write the report; return the list of results."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ._common import Config
    from .report import write_report

    console = console or Console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = Config(out=out, quick=quick, backend=backend, seed=seed)
    numbers = list(only or EXPERIMENTS)
    console.print(f"[bold]fastopt tour[/]: {len(numbers)} experiment(s){' (quick)' if quick else ''}, "
                  f"backend {backend}, seed {seed}, writing to {out}")
    results = []
    start = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        overall = progress.add_task("tour", total=len(numbers))
        for index, number in enumerate(numbers):
            module = importlib.import_module(f"{__name__}.{EXPERIMENTS[number]}")

            def tick(fraction: float, note: str = "", index=index, number=number) -> None:
                progress.update(overall, completed=index + min(max(fraction, 0.0), 1.0),
                                description=f"{number}/{len(EXPERIMENTS)} {note}")

            tick(0.0, "starting")
            began = time.perf_counter()
            result = module.run(config, tick)
            result.seconds = time.perf_counter() - began
            results.append(result)
            progress.update(overall, completed=index + 1)
    elapsed = time.perf_counter() - start
    settings = {"quick": str(quick), "backend": backend, "seed": str(seed),
                "experiments": ",".join(map(str, numbers))}
    report = write_report(results, out, settings)
    print_summary(results, console, elapsed, report)
    return results


def print_summary(results, console, elapsed: float, report: Path) -> None:
    from rich.markup import escape

    for result in results:
        colour = "green" if result.verdict.supported else "red"
        console.print(f"\n[bold]{result.number}. {escape(result.title)}[/]: "
                      f"[{colour}]{result.verdict.label.upper()}[/] ({result.seconds:.1f} s)")
        console.print(f"   claim:     {escape(result.claim)}", soft_wrap=False)
        console.print(f"   measured:  {escape(result.summary)}")
        console.print(f"   criterion: {escape(result.verdict.criterion)}")
    supported = sum(r.verdict.supported for r in results)
    console.print(f"\n[bold]{supported} of {len(results)} claims supported[/] by this run's numbers "
                  f"({elapsed:.1f} s). Report: {report}; figures: "
                  + ", ".join(Path(f).name for r in results for f in [r.figure, *(e for e, _ in r.extra_figures)]))
