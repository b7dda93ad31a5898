"""``python -m fastopt bench``: it runs, reports every requested row, and its numbers add up.

Nothing here asserts a speed (a timed assertion on a shared 2-core machine is flaky); the tests
check that the command measures what it says, and that every derived number (GB/s, ratios,
pass/miss) is computed from the measured samples.
"""

import importlib.util
import json
import math
import statistics
import subprocess
import sys

import numpy as np
import pytest

import fastopt
from fastopt import cli
from fastopt.cli.bench import _size, dense_optimizers, report, timing
from fastopt.cli.bench import workloads as w

QUICK_SIZES = (1024, 4096)  # what --quick measures


def _torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One in-process quick run of Adam and RMSprop (shared by the tests that read it)."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    capture = pytest.MonkeyPatch()
    import io

    out = io.StringIO()
    capture.setattr(sys, "stdout", out)
    try:
        code = cli.main(["bench", "--quick", "-o", "adam,rmsprop", "--width", "220", "--json", str(path)])
    finally:
        capture.undo()
    return code, out.getvalue(), json.loads(path.read_text())


def test_quick_run_prints_every_requested_row(quick_run):
    code, out, document = quick_run
    assert code == 0
    backends = fastopt.available_backends()
    table_rows = [line for line in out.splitlines() if line.startswith("│")]
    ceiling_rows = [row for row in table_rows if "ceiling a += s*b" in row]
    assert len(ceiling_rows) == 2 * len(QUICK_SIZES)  # optimizers x sizes x threads
    for backend in backends:
        kernel_rows = [row for row in table_rows if f" {backend} " in row and "kernel" not in row and "opt.step" not in row
                       and "flat" not in row]
        assert len(kernel_rows) >= 2 * len(QUICK_SIZES), backend
    for name in ("Adam", "RMSprop"):
        assert f"│ {name} " in out
    for n in QUICK_SIZES:
        assert f" {n:,} " in out
    assert "Many small tensors: 20 parameters × 100 elements" in out
    assert "Targets (the project's issue)" in out
    assert "--quick" in out and "\x1b[" not in out

    # The JSON holds one record per optimizer x size x implementation, and the small scenario.
    records = document["results"]
    torch_impls = {"torch default", "torch foreach"} | ({"torch fused"} if _torch_available() else set())
    for name in ("Adam", "RMSprop"):
        for n in QUICK_SIZES:
            found = {(r["impl"], r["kind"]) for r in records if r["scenario"] == "single" and r["optimizer"] == name and r["n"] == n}
            expected = {("ceiling", "ceiling")} | {(b, k) for b in backends for k in ("kernel", "step")}
            if _torch_available():
                expected |= {(t, "torch") for t in torch_impls if not (name == "RMSprop" and t == "torch fused")}
            assert found == expected, (name, n)
        small = {(r["impl"], r["kind"]) for r in records if r["scenario"] == "small" and r["optimizer"] == name}
        assert {(b, "step flat") for b in backends} <= small
        assert {(b, "step separate") for b in backends} <= small
        assert {(b, "kernel one call") for b in backends} <= small
    if _torch_available():
        assert any("RMSprop fused" in note for note in document["notes"])  # torch has none: said so


@pytest.mark.skipif(not _torch_available(), reason="torch is not installed")
def test_quick_run_steps_the_torch_models(quick_run):
    """fastopt.torch against torch.optim on both models, gradients kept and new, and the targets
    7a-7c computed from those rows."""
    _, out, document = quick_run
    assert "Torch models: one optimizer.step()" in out
    rows = {(r["model"], r["gradients"], r["impl"]) for r in document["results"] if r["scenario"] == "torch-model"}
    assert rows == {(model, gradients, impl) for model in ("many-small", "few-large") for gradients in ("kept", "new")
                    for impl in ("torch foreach", "torch fused", "fastopt.torch")}
    targets = {t["id"]: t for t in document["targets"] if t["id"] in ("7a", "7b", "7c")}
    assert set(targets) == {"7a", "7b", "7c"} and all(t["passed"] is not None for t in targets.values())


def test_json_numbers_are_consistent(quick_run):
    _, _, document = quick_run
    records = document["results"]
    assert records
    for r in records:
        samples = r["samples_s"]
        assert len(samples) >= 1 and all(s > 0 for s in samples)
        assert r["median_s"] == statistics.median(samples)
        assert r["min_s"] == min(samples) and r["max_s"] == max(samples)
        assert math.isclose(r["gb_per_s"], r["bytes_per_element"] * r["elements"] / r["median_s"] / 1e9, rel_tol=1e-12)
        assert math.isclose(r["ns_per_element"], r["median_s"] / r["elements"] * 1e9, rel_tol=1e-12)
        expected_bytes = {"Adam": 7, "RMSprop": 5}[r["optimizer"]] * 4 if r["kind"] != "ceiling" else 3 * 4
        assert r["bytes_per_element"] == expected_bytes

    def same_group(a, b):
        keys = ("scenario", "optimizer", "dtype", "elements", "threads")
        return all(a[k] == b[k] for k in keys) and all(a.get(k) == b.get(k) for k in ("model", "gradients"))

    for r in records:
        group = [o for o in records if same_group(o, r)]
        ceiling = [o for o in group if o["kind"] == "ceiling"]
        if ceiling:
            assert math.isclose(r["ratio_to_ceiling"], r["gb_per_s"] / ceiling[0]["gb_per_s"], rel_tol=1e-12)
        if "speedup_vs_torch" in r:
            baseline = next(o for o in group if o["impl"] == r["torch_baseline"])
            assert math.isclose(r["speedup_vs_torch"], baseline["median_s"] / r["median_s"], rel_tol=1e-12)
            torch_times = {o["impl"]: o["median_s"] for o in group if o["kind"] == "torch"}
            if "torch fused" in torch_times:
                assert r["torch_baseline"] == "torch fused"
            else:
                assert torch_times[r["torch_baseline"]] == min(torch_times.values())
        if "ratio_to_one_call" in r:
            one = next(o for o in group if o["kind"] == "kernel one call" and o["impl"] == r["impl"])
            assert math.isclose(r["ratio_to_one_call"], r["median_s"] / one["median_s"], rel_tol=1e-12)

    # The targets table is computed from the records, not typed in.
    by_id = {(t["id"], t["optimizer"]): t for t in document["targets"]}
    for (target_id, name), t in by_id.items():
        if t["passed"] is not None:
            assert t["passed"] == (t["measured"] >= t["threshold"] if t["at_least"] else t["measured"] <= t["threshold"])
    kernels_4096 = [r["median_s"] for r in records if r["scenario"] == "single" and r["optimizer"] == "Adam"
                    and r["n"] == 4096 and r["kind"] == "kernel" and r["threads"] == 1]
    assert math.isclose(by_id[("4a", "Adam")]["measured"], min(kernels_4096) * 1e6, rel_tol=1e-12)
    assert by_id[("1a", "Adam")]["passed"] is None  # 33.5M elements were not measured
    assert by_id[("5a", "Adam")]["passed"] is None  # the quick small scenario is not 200 x 1,000


def test_subprocess_json_to_stdout_without_torch():
    result = subprocess.run(
        [sys.executable, "-m", "fastopt", "bench", "--quick", "-o", "sgd", "-n", "512", "--small", "none",
         "--no-torch", "--json", "-"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    document = json.loads(result.stdout)  # stdout holds the JSON only; the tables went to stderr
    assert "One parameter of N elements" in result.stderr and "not compared (--no-torch)" in result.stderr
    assert {r["impl"] for r in document["results"]} == {"ceiling", *fastopt.available_backends()}
    assert {r["optimizer"] for r in document["results"]} == {"SGD"}
    assert all(r["n"] == 512 for r in document["results"])
    assert document["settings"]["threads"] == [1]


def test_missing_torch_is_reported(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert cli.main(["bench", "--quick", "-o", "adagrad", "-b", "numba", "-n", "256", "--small", "none"]) == 0
    out = capsys.readouterr().out
    assert "torch not installed" in out
    assert "torch default" not in out


# --------------------------------------------------------------------------------------------
# The pieces
# --------------------------------------------------------------------------------------------
# the bench's workloads have dense gradients; a whole-tensor kernel (Adafactor's) is timed through opt.step
@pytest.mark.parametrize("name", [name for name in dense_optimizers() if not fastopt.OPTIMIZERS[name].algorithm.whole_tensor])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_arguments_are_what_the_optimizer_passes(name, dtype):
    """The benchmark calls each kernel with exactly the arguments the public step would."""
    rng = np.random.default_rng(1)
    hp = w.hyperparameters(name)
    param, grad = w.random_array(rng, 33, dtype), w.random_array(rng, 33, dtype)
    state = w.random_state(name, hp, 33, dtype, rng)
    expected = w.positional(name, w.kernel_keywords(name, hp, param, grad, state))

    optimizer = fastopt.OPTIMIZERS[name]([param.copy()], backend="reference", **hp)
    saved = optimizer.state_dict()
    # the counters after STEP - 1 steps, from the optimizer's own algorithm (NAdam's product of its
    # momentum schedule, ASGD's step size and averaging weight are computed, not made up)
    group, counters = optimizer.param_groups[0], optimizer.algorithm.initial_counters(optimizer.param_groups[0])
    for _ in range(w.STEP - 1):
        optimizer.algorithm.advance(group, counters, ())
    state = {**counters, **state}
    saved["state"] = {0: state}
    optimizer.load_state_dict(saved)
    seen = []

    class Recorder(dict):  # stands in for the optimizer's kernel(s), whatever the dtype
        def __missing__(self, dtype):
            return lambda *args: seen.append(args)

    class RecordingKernels:  # stands in for the kernels of the optimizer's one group
        single = Recorder()

    (plan,) = optimizer._plans
    plan.kernels = RecordingKernels()
    optimizer.step([grad])

    (passed,) = seen
    assert len(passed) == len(expected)
    for got, want in zip(passed, expected):
        assert type(got) is type(want)
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
        else:
            assert got == want


def test_traffic_counts_the_arrays_each_step_must_move():
    def arrays(name, **options):
        return w.optimizer_traffic(name, {**w.hyperparameters(name), **options}, np.float32).arrays

    assert arrays("Adam") == 7 and arrays("AdamW") == 7 and arrays("Adam", amsgrad=True) == 9
    assert arrays("RMSprop") == 5 and arrays("RMSprop", centered=True, momentum=0.9) == 9
    assert arrays("SGD") == 5 and arrays("SGD", momentum=0.0) == 3
    assert arrays("Adagrad") == 5
    assert w.ceiling_traffic(np.float64).bytes_per_element == 24


def test_ceiling_kernel_updates_in_place():
    a, b = np.ones(10, np.float32), np.arange(10, dtype=np.float32)
    w.ceiling_kernel(False)(a, b, np.float32(0.5))
    np.testing.assert_array_equal(a, 1 + 0.5 * np.arange(10, dtype=np.float32))


def test_sizes_and_load_helpers():
    assert [_size(s) for s in ("4096", "256Ki", "4Mi", "32Mi", "1k", "33_554_432")] == [
        4096, 262144, 4194304, 33554432, 1000, 33554432]
    before = timing.cpu_snapshot()
    sum(range(10**5))
    load = timing.others_load(before, timing.cpu_snapshot())
    assert load is None or load >= 0


def test_targets_pass_and_miss_follow_the_measurements():
    def rec(kind, impl, median, **extra):
        return dict(scenario="single", optimizer="Adam", dtype="float32", elements=4096, n=4096, threads=1,
                    kind=kind, impl=impl, median_s=median, gb_per_s=28 * 4096 / median / 1e9, **extra)

    records = [
        rec("ceiling", "ceiling", 1e-6),
        rec("kernel", "numba", 2e-6), rec("kernel", "cython", 1.2e-6),
        rec("step", "numba", 3e-6), rec("step", "cython", 2.5e-6),
        rec("torch", "torch fused", 10e-6), rec("torch", "torch default", 9e-6),
    ]
    report.add_ratios(records)
    targets = {(t["id"], t["optimizer"]): t for t in report.evaluate_targets(records, ["Adam"])}
    assert targets[("4a", "Adam")]["measured"] == pytest.approx(1.2) and targets[("4a", "Adam")]["passed"]
    assert targets[("4a", "Adam")]["how"] == "cython kernel"
    # fused is the baseline even though default was faster here; 10 / 2.5 = 4 < 5: a miss
    assert targets[("4b", "Adam")]["measured"] == pytest.approx(4.0) and targets[("4b", "Adam")]["passed"] is False
    assert targets[("4b", "Adam")]["how"] == "cython vs torch fused"
    assert targets[("1a", "Adam")]["passed"] is None
    assert ("4a", "RMSprop") in targets and targets[("4a", "RMSprop")]["passed"] is None


@pytest.mark.skipif(not _torch_available(), reason="torch is not installed")
def test_an_optimizer_torch_lacks_is_benchmarked_without_torch_rows(tmp_path, capsys):
    """``python -m fastopt bench`` runs every optimizer by default; torch.optim has no Lion, which
    once ended the whole run with an AttributeError."""
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "-o", "lion,sgd", "--small", "none", "--torch-models", "none",
                          "--json", str(path)]) == 0
    document = json.loads(path.read_text())
    impls = {(r["optimizer"], r["impl"]) for r in document["results"] if r["scenario"] == "single"}
    assert ("Lion", "cython") in impls and not any(o == "Lion" and i.startswith("torch") for o, i in impls)
    assert ("SGD", "torch default") in impls
    assert "torch.optim has no Lion: no torch rows for it" in document["notes"]


def test_16_bit_and_master_weight_rows_count_their_own_bytes(capsys):
    """-d bfloat16: opt.step on 16-bit parameters with float32 state (22 bytes per element for
    Adam), beside a float32 ceiling; -d master-bfloat16: float32 master weights writing a copy
    (28 + 2 bytes); torch on the same tensors, or its float32 step followed by a copy."""
    pytest.importorskip("ml_dtypes")
    from fastopt import cli

    assert cli.main(["bench", "-o", "Adam", "-d", "bfloat16,master-bfloat16", "-n", "4096", "--quick",
                     "--torch-models", "none", "--small", "none", "--json", "-"]) == 0
    records = json.loads(capsys.readouterr().out)["results"]
    by_dtype = {}
    for r in records:
        by_dtype.setdefault(r["dtype"], []).append(r)
    assert set(by_dtype) == {"bfloat16", "master-bfloat16"}
    for dtype, expected in (("bfloat16", 22), ("master-bfloat16", 30)):
        rows = by_dtype[dtype]
        assert {r["impl"] for r in rows} >= {"ceiling", "numba", "cython", "reference"}
        assert all(r["bytes_per_element"] == (12 if r["kind"] == "ceiling" else expected) for r in rows)
        assert not any(r["kind"] == "kernel" for r in rows)  # opt.step only
        if importlib.util.find_spec("torch") is not None:
            assert any(r["kind"] == "torch" for r in rows)
