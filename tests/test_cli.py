"""The command line: the demo trains every optimizer on every backend; info reports the build."""

import subprocess
import sys

from fastopt import OPTIMIZERS, available_backends, cli


def test_demo_trains_every_optimizer_on_every_backend_identically(capsys):
    assert cli.main(["demo", "--steps", "40"]) == 0
    out = capsys.readouterr().out
    for name in OPTIMIZERS:
        assert name in out
    rows = [line for line in out.splitlines() if any(f" {b} " in line for b in ("numba", "cython"))]
    assert len(rows) == len(OPTIMIZERS) * 2
    assert all("yes" in row for row in rows), rows
    assert "NO" not in out


def test_demo_learns_the_task():
    from fastopt.cli.demo import train

    run = train("Adam", "cython", steps=300, dtype="float32")
    assert run.loss < 0.2 and run.accuracy > 0.9  # a linear model cannot get past ~88 %


def test_info_lists_backends(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for backend in available_backends():
        assert f"backend {backend}" in out


def test_module_entry_point_runs_in_a_pipe():
    result = subprocess.run(
        [sys.executable, "-m", "fastopt", "demo", "--steps", "5", "--dtype", "float64"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    assert "fastopt demo" in result.stdout and "\x1b[" not in result.stdout  # no colour codes in a pipe
