"""``python -m fastopt show``: an optimizer's equations and its three implementations side by side.

::

    python -m fastopt show rmsprop                  # in the terminal (or a pipe: no colours)
    python -m fastopt show adam --width 200         # wider than the terminal, e.g. into a file
    python -m fastopt show adamw --html adamw.html  # one self-contained web page
    python -m fastopt show all --html pages/        # a page per optimizer, plus pages/index.html

The equations come from each optimizer folder's docstring and the code from its three files,
read as text (see :mod:`fastopt.cli.show._docstring` and :mod:`fastopt.cli.show._source`).

Layout of this package: ``model`` gathers what is shown, ``_docstring`` and ``_source`` read it,
``_terminal`` prints it with rich, ``_html`` and ``_mathml`` write the web pages.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .model import optimizer_names, resolve_name

ALL = "all"
PIPE_WIDTH = 160
"""Width used in a pipe when neither ``--width`` nor ``COLUMNS`` is given (rich would use 80)."""


def optimizer_argument(value: str) -> str:
    """argparse type: a class name in any case, or ``all``; the error lists the valid names."""
    if value.lower() == ALL:
        return ALL
    try:
        return resolve_name(value)
    except KeyError:
        valid = ", ".join(optimizer_names())
        raise argparse.ArgumentTypeError(f"unknown optimizer {value!r}; choose from {valid} (any case), or {ALL}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "optimizer", type=optimizer_argument, metavar="OPTIMIZER",
        help=f"one of {', '.join(optimizer_names())} (any case), or {ALL}",
    )
    parser.add_argument(
        "--html", metavar="PATH", type=Path,
        help="write a self-contained web page instead of printing: a FILE for one optimizer, "
        f"a DIRECTORY (one page each, plus index.html) for {ALL}",
    )
    parser.add_argument(
        "--width", type=int, metavar="N",
        help=f"characters per line (default: the terminal's, or $COLUMNS, or {PIPE_WIDTH} in a pipe); "
        "three columns need 120 or more",
    )


def run(args: argparse.Namespace) -> int:
    names = optimizer_names() if args.optimizer == ALL else [args.optimizer]
    if args.html is not None:
        from ._html import write_pages

        for path in write_pages(names, args.html, single=args.optimizer != ALL):
            print(f"wrote {path}")
        return 0

    from rich.console import Console

    from ._terminal import print_view
    from .model import load_view

    console = Console(width=_width(args.width), soft_wrap=False)
    for name in names:
        print_view(load_view(name), console)
        console.print()
    return 0


def _width(requested: int | None) -> int | None:
    """``--width``, else ``COLUMNS``, else the terminal's width; in a pipe, :data:`PIPE_WIDTH`."""
    if requested is not None:
        if requested < 40:
            raise SystemExit("python -m fastopt show: error: --width must be at least 40")
        return requested
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return None if sys.stdout.isatty() else PIPE_WIDTH
