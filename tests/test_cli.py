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


def test_conventions_at_80_columns_never_cut_a_flag_name(capsys):
    from fastopt import OPTIMIZERS

    assert cli.main(["conventions", "--width", "80", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80
    assert "…" not in out
    words = set(out.split())
    flags = {flag for cls in OPTIMIZERS.values() for flag in cls.flag_defaults}
    shown = {flag for flag in flags if flag in out}
    assert {"eps_inside_sqrt", "lr_in_momentum", "eps_hat", "decoupled_weight_decay"} <= shown
    assert all(flag in words for flag in shown)  # each on a line of its own, whole
    assert "initial_accumulator_value=0.1" in words
