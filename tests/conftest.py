"""Test configuration: Hypothesis profiles, the heavy tests' selection, a summary of what was measured.

Profiles (``HYPOTHESIS_PROFILE``; ``ci`` is the default when ``CI`` is set, ``dev`` otherwise):
``dev`` 100 examples per property, ``ci`` 200 and derandomized, ``thorough`` 2000.
"""

import os
import re
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, settings

import fastopt

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Filled by the tests, printed at the end of the run (so CI logs show what was measured).
MEASURED = {"examples": defaultdict(int), "torch_worst": defaultdict(float), "conventions_worst": {}, "tour_seeds": {}}


@pytest.fixture(scope="session")
def measured():
    return MEASURED


@pytest.fixture(scope="session")
def quick_tour(tmp_path_factory):
    """The quick tour, run once per session through run_tour: (output folder, printed text, {number: result})."""
    import io

    from rich.console import Console

    from fastopt.cli.tour import run_tour

    out = tmp_path_factory.mktemp("tour")
    stream = io.StringIO()
    results = run_tour(out=out, quick=True, console=Console(file=stream, width=120))
    return out, stream.getvalue(), {r.number: r for r in results}


def pytest_collection_modifyitems(config, items):
    """Leave out the tests marked ``heavy`` (minutes each) unless the ``-m`` expression names
    them (``-m heavy``). Not an ``addopts = -m "not heavy"``: a command-line ``-m`` replaces that
    one, so ``-m "not slow"`` (CI's sanitizer pass) would bring them back."""
    if re.search(r"\bheavy\b", config.option.markexpr or ""):
        return
    heavy = [item for item in items if item.get_closest_marker("heavy")]
    if heavy:
        config.hook.pytest_deselected(items=heavy)
        items[:] = [item for item in items if not item.get_closest_marker("heavy")]


def pytest_report_header(config):
    return f"fastopt {fastopt.__version__} from {os.path.dirname(fastopt.__file__)}; backends available: {fastopt.available_backends()}"


def pytest_terminal_summary(terminalreporter):
    seeds = MEASURED["tour_seeds"]
    if seeds:
        terminalreporter.section("tour: seeds (of 0-9) whose numbers support each experiment's claim")
        for number in sorted(seeds):
            terminalreporter.write_line(f"experiment {number}: {seeds[number]} of 10")
    examples = MEASURED["examples"]
    if examples:
        terminalreporter.section("backend agreement (Hypothesis examples, all bit-identical)")
        for key in sorted(examples):
            terminalreporter.write_line(f"{key:<40} {examples[key]:>6} examples")
        terminalreporter.write_line(f"{'total':<40} {sum(examples.values()):>6} examples")
    worst = MEASURED["torch_worst"]
    if worst:
        terminalreporter.section("agreement with torch.optim (float64, max|diff| / max|torch| per tensor)")
        for name in sorted(worst):
            terminalreporter.write_line(f"{name:<10} worst relative difference {worst[name]:.2e}")
    conventions = MEASURED["conventions_worst"]
    if conventions:
        terminalreporter.section("conventions: fastopt's presets against Keras 3, optax and their formulas (float64)")
        for key in sorted(conventions):
            terminalreporter.write_line(f"{key:<60} worst relative difference {conventions[key]:.2e}")
