"""What every experiment returns, and the set-up they share (figures, progress, settings).

An experiment is a function ``run(config, tick) -> Result``. It measures numbers, decides a
verdict *from those numbers* with a criterion it states in words, draws one figure, and returns
all of it. ``tick(fraction, note)`` reports progress (``fraction`` from 0 to 1).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Tick = Callable[[float, str], None]


@dataclass(frozen=True)
class Config:
    """Settings shared by every experiment."""

    out: Path
    quick: bool = False  # smaller problems and fewer steps, for the tests
    backend: str = "auto"  # backend of every optimizer in every experiment but 9 (it uses all)
    seed: int = 0


@dataclass
class Verdict:
    supported: bool
    criterion: str  # the test applied to the numbers, in words, decided before looking
    detail: str  # the measured values the test compared

    @property
    def label(self) -> str:
        return "supported" if self.supported else "not supported"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Result:
    number: int
    title: str
    claim: str
    summary: str  # one line: the measured numbers behind the verdict
    table: Table
    verdict: Verdict
    figure: Path
    optimizers: list[str]  # whose reference kernels the report shows next to the figure
    module: str  # the experiment's module (its source is in the report too)
    notes: list[str] = field(default_factory=list)  # set-up facts worth reading with the numbers
    extra_figures: list[tuple[Path, str]] = field(default_factory=list)  # (PNG, caption) after the main figure
    interactive: str = ""  # an HTML fragment (inline SVG and script, no network) for the report
    seconds: float = 0.0
    data: dict = field(default_factory=dict)  # raw measurements, for the tests


# ------------------------------------------------------------------------------------------------
# Figures: matplotlib's object-oriented API with the Agg canvas (no pyplot, no GUI, no global state)
# ------------------------------------------------------------------------------------------------
def _ensure_writable_mplconfigdir() -> None:
    """matplotlib caches fonts under ~/.config/matplotlib; use a temporary folder if HOME is read-only."""
    if "MPLCONFIGDIR" in os.environ:
        return
    home = Path.home()
    config = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "matplotlib"
    probe = config if config.exists() else config.parent if config.parent.exists() else home
    if not os.access(probe, os.W_OK):
        os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="fastopt-matplotlib-")


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.0, height: float = 4.2):
    """A figure of ``nrows x ncols`` panels (each ``width x height`` inches) and its axes, flattened."""
    _ensure_writable_mplconfigdir()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    return figure, axes


def save_figure(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


# Colours per optimizer, the same in every figure.
COLOURS = {
    "SGD": "#7f7f7f",
    "SGD+momentum": "#2ca02c",
    "Adagrad": "#d62728",
    "RMSprop": "#1f77b4",
    "Adam": "#9467bd",
    "AdamW": "#8c564b",
    "Adadelta": "#e377c2",
    "RAdam": "#17becf",
    "Adam+warm-up": "#bcbd22",
    "Lion": "#ff7f0e",
    "Adamax": "#8c564b",
    "Adafactor": "#e6550d",
    "ScheduleFreeAdamW": "#31a354",
    "LBFGS": "#000000",
}


def fmt(value: float, digits: int = 3) -> str:
    """A number for tables: plain when moderate, scientific when tiny or huge, 'nan'/'inf' as is."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.{digits}g}"
    return f"{value:.{max(digits - 1, 1)}e}"
