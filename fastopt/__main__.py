"""Command line: ``python -m fastopt [demo|info]``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastopt",
        description="fastopt: first-order optimizers written three ways (NumPy, Numba, Cython) that agree bit for bit.",
    )
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("demo", help="train a small network with every optimizer and backend (the default)")
    demo.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    demo.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    commands.add_parser("info", help="versions, backends and how the kernels were built")
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["demo", *argv]  # `python -m fastopt --steps 50` means the demo
    args = parser.parse_args(argv)

    if args.command == "demo":
        from ._demo import run_demo

        if args.steps < 1:
            parser.error("--steps must be at least 1")
        runs = run_demo(steps=args.steps, dtype_name=args.dtype)
        return 0 if runs else 1
    if args.command == "info":
        from ._info import print_info

        print_info()
        return 0
    return 2  # unreachable: argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
