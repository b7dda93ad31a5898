"""Screenshots of the tour report and a ``show`` page at 400, 800 and 1400 px, with headless Chromium.

    python docs/screenshots.py                      # quick tour + RMSprop page -> docs/_static/screenshots/
    python docs/screenshots.py --report DIR/report.html --out /tmp/shots

Writes ``report-<width>.png`` (the top of the report), ``report-experiment-<n>-<width>.png`` (an
experiment's section: 4 has the paths and the playground, 9 the widest table) and
``show-rmsprop-<width>.png`` (the equations and the start of the three columns). Each PNG is the
first ``height`` pixels of the page, or of the page scrolled to an anchor, in a window ``width`` px
wide. Prints each page's layout metrics (:func:`fastopt.cli._chromium.page_metrics`): whether
anything is wider than the window outside a horizontal scroller, and whether panels overlap.
Needs Chromium (``apt-get install chromium``). ``tests/test_responsive.py`` asserts the metrics.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from fastopt.cli import _chromium

WIDTHS = (400, 800, 1400)
HEIGHT = {400: 1600, 800: 1400, 1400: 1100}
SECTIONS = (4, 9)  # the experiments whose sections are photographed as well
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "_static" / "screenshots"


def quick_report(folder: Path) -> Path:
    from rich.console import Console

    from fastopt.cli.tour import run_tour

    run_tour(out=folder, quick=True, console=Console(file=io.StringIO()))
    return folder / "report.html"


def show_page(folder: Path, name: str = "RMSprop") -> Path:
    from fastopt.cli.show._html import write_pages

    return write_pages([name], folder / f"{name.lower()}.html", single=True)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="an existing report.html (default: run the quick tour)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for the PNGs (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if _chromium.find_chromium() is None:
        raise SystemExit("no Chromium on PATH: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="fastopt-screenshots-") as scratch:
        scratch = Path(scratch)
        report = args.report or quick_report(scratch / "tour")
        pages = {"report": report.resolve().as_uri(), "show-rmsprop": show_page(scratch).resolve().as_uri()}
        for width in WIDTHS:
            for name, url in pages.items():
                path = _chromium.screenshot(url, args.out / f"{name}-{width}.png", width, HEIGHT[width])
                print(f"{path}  {_chromium.page_metrics(url, width)}")
            for number in SECTIONS:
                url = f"{pages['report']}#experiment-{number}"
                print(_chromium.screenshot(url, args.out / f"report-experiment-{number}-{width}.png", width, HEIGHT[width]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
