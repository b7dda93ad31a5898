"""``python -m fastopt info``: what is installed, which backends load, how kernels were built."""

from __future__ import annotations

import platform
import sys

import numpy as np

from fastopt import BACKENDS, __version__
from fastopt._backends import CYTHON_BUILDS, BackendUnavailable, cython_build, get_kernel


def backend_report() -> dict[str, str]:
    report = {}
    for backend in BACKENDS:
        try:
            get_kernel("sgd", backend)
        except BackendUnavailable as exc:
            report[backend] = f"unavailable: {exc}"
        else:
            report[backend] = "ok"
    return report


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    print_info()
    return 0


def print_info() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"fastopt {__version__}", show_header=False)
    table.add_row("python", f"{sys.version.split()[0]} ({platform.machine()})")
    table.add_row("numpy", np.__version__)
    try:
        import numba

        table.add_row("numba", f"{numba.__version__} (njit nogil=True, error_model='numpy', no fastmath)")
    except ImportError as exc:
        table.add_row("numba", f"not importable: {exc}")
    table.add_row("cython flags", "-O3 -fno-math-errno -ffp-contract=off (no -ffast-math)")
    try:
        build = cython_build()
        table.add_row("cython build in use", f"{build} ({CYTHON_BUILDS[build][1]})")
    except BackendUnavailable:
        table.add_row("cython build in use", "none loads")
    for backend, status in backend_report().items():
        table.add_row(f"backend {backend}", status)
    Console().print(table)
