"""The command line, ``python -m fastopt [tour|show|demo|info|bench|conventions|dashboard] ...``: the apps
that teach and measure, kept apart from the library (``fastopt.Adam`` and the step engine never
import anything here).

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; modules keep heavy imports (rich, matplotlib, torch) inside ``run`` so that
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help); the first is what a bare `python -m fastopt` runs
COMMANDS = {
    "tour": ("fastopt.cli.tour", "experiments that show why each optimizer behaves as it does (the default)"),
    "show": ("fastopt.cli.show", "an optimizer's equations and its three implementations side by side"),
    "demo": ("fastopt.cli.demo", "train a small network with every optimizer and backend"),
    "info": ("fastopt.cli.info", "versions, backends and how the kernels were built"),
    "bench": ("fastopt.cli.bench", "time every optimizer and backend against the memory-bandwidth ceiling"),
    "conventions": ("fastopt.cli.conventions", "how far torch's, Keras's and optax's same-named optimizers drift apart"),
    "dashboard": ("fastopt.cli.dashboard", "run asv benchmarks on the installed build and serve the dashboard offline"),
}
DEFAULT_COMMAND = "tour"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastopt",
        description="fastopt: first-order optimizers written three ways (NumPy, Numba, Cython) "
        "that agree bit for bit.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command still being written
        command_parser = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = [DEFAULT_COMMAND, *argv]  # `python -m fastopt --quick` means the default command
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args)
