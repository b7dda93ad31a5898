"""From timed contestants to numbers: per-record metrics, the targets, the tables, the JSON.

Every number shown is computed here from the samples of this run; nothing is typed in. The
definitions, used in the tables and in the JSON:

* ``median_s``: median seconds per call over the samples (``min_s``/``max_s`` their range).
* ``ns_per_element = median_s / n * 1e9``.
* ``gb_per_s = bytes_per_element * n / median_s / 1e9``, where ``bytes_per_element`` counts the
  arrays the algorithm must read and write (``fastopt.cli.bench.workloads.Traffic``), not what an
  implementation happens to move (temporaries of the NumPy reference are not counted).
* ``ratio_to_ceiling = gb_per_s / gb_per_s(ceiling)``: the ceiling measured in the same group,
  over the same N, dtype and thread count.
* ``speedup_vs_torch = median_s(torch baseline) / median_s``, both full steps: > 1 means faster
  than torch. The baseline is ``torch.optim(..., fused=True)`` where torch has it, otherwise the
  fastest torch variant measured (RMSprop has no fused implementation).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from .timing import Contestant


def record(contestant: Contestant, bytes_per_element: int, elements: int) -> dict:
    samples = contestant.seconds_per_call
    median = statistics.median(samples)
    return {
        **contestant.key,
        "elements": elements,
        "bytes_per_element": bytes_per_element,
        "calls_per_sample": contestant.calls_per_sample,
        "samples_s": samples,
        "median_s": median,
        "min_s": min(samples),
        "max_s": max(samples),
        "ns_per_element": median / elements * 1e9 if elements else None,
        "gb_per_s": bytes_per_element * elements / median / 1e9,
    }


def torch_baseline(records: list[dict]) -> dict | None:
    """torch's fused record if present, else its fastest one (records of one group and thread count)."""
    torch_records = [r for r in records if r["kind"] == "torch"]
    fused = [r for r in torch_records if r["impl"] == "torch fused"]
    if fused:
        return fused[0]
    return min(torch_records, key=lambda r: r["median_s"], default=None)


def add_ratios(records: list[dict]) -> None:
    """Fill ``ratio_to_ceiling``, ``speedup_vs_torch`` (and ``ratio_to_one_call`` for the
    many-small-tensor scenario) within each group and thread count."""
    by_group: dict[tuple, list[dict]] = {}
    for r in records:
        key = (r["scenario"], r["optimizer"], r["dtype"], r["elements"], r["threads"], r.get("model"), r.get("gradients"))
        by_group.setdefault(key, []).append(r)
    for group in by_group.values():
        ceiling = next((r for r in group if r["kind"] == "ceiling"), None)
        baseline = torch_baseline(group)
        for r in group:
            if ceiling is not None:
                r["ratio_to_ceiling"] = r["gb_per_s"] / ceiling["gb_per_s"]
            if baseline is not None and r["kind"] != "ceiling" and not r["kind"].startswith("kernel"):
                r["torch_baseline"] = baseline["impl"]
                r["speedup_vs_torch"] = baseline["median_s"] / r["median_s"]
            if r["scenario"] == "small" and r["kind"] != "torch":
                one_call = next(
                    (o for o in group if o["kind"] == "kernel one call" and o["impl"] == r["impl"]), None
                )
                if one_call is not None:
                    r["ratio_to_one_call"] = r["median_s"] / one_call["median_s"]


# --------------------------------------------------------------------------------------------
# Targets (the project's issue): thresholds are the specification, the values are measured
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    id: str
    text: str
    threshold: float
    at_least: bool  # measured >= threshold (else <=)
    measure: Callable[[list[dict], str], tuple[float, str] | None]  # (value, how) or None
    optimizers: tuple[str, ...] = ("Adam", "RMSprop")
    unit: str = "×"


def _fastest(records, **key):
    """The fastest fastopt backend's record matching ``key`` (None if nothing was measured)."""
    rows = [r for r in records if all(r.get(k) == v for k, v in key.items()) and not r["impl"].startswith(("torch", "ceiling"))]
    return min(rows, key=lambda r: r["median_s"], default=None)


SMALL_TARGET = dict(scenario="small", dtype="float32", threads=1, count=200, n=1000)
"""The many-small-tensors targets are stated for 200 parameters of 1,000 float32 elements."""


def _single(optimizer, n, kind, threads=1):
    return dict(scenario="single", optimizer=optimizer, dtype="float32", elements=n, kind=kind, threads=threads)


def _ceiling_ratio(n):
    def measure(records, optimizer):
        best = _fastest(records, **_single(optimizer, n, "kernel"))
        if best is None or "ratio_to_ceiling" not in best:
            return None
        return best["ratio_to_ceiling"], f"{best['impl']} kernel"
    return measure


def _torch_speedup(n=None, kind="step", scenario="single"):
    def measure(records, optimizer):
        if scenario == "single":
            key = _single(optimizer, n, kind)
        else:
            key = dict(SMALL_TARGET, optimizer=optimizer, kind=kind)
        best = _fastest(records, **key)
        if best is None or "speedup_vs_torch" not in best:
            return None
        return best["speedup_vs_torch"], f"{best['impl']} vs {best['torch_baseline']}"
    return measure


def _kernel_microseconds(n):
    def measure(records, optimizer):
        best = _fastest(records, **_single(optimizer, n, "kernel"))
        return None if best is None else (best["median_s"] * 1e6, f"{best['impl']} kernel")
    return measure


def _flat_vs_one_call(records, optimizer):
    key = dict(SMALL_TARGET, optimizer=optimizer)
    flat = _fastest(records, **key, kind="step flat")
    one = _fastest(records, **key, kind="kernel one call")
    if flat is None or one is None:
        return None
    return flat["median_s"] / one["median_s"], f"{flat['impl']} flat step / {one['impl']} one call"


def _torch_model_speedup(model, gradients):
    """fastopt.torch's step against torch fused's on a torch model (1 thread)."""
    def measure(records, optimizer):
        row = next((r for r in records if r["scenario"] == "torch-model" and r["model"] == model
                    and r["gradients"] == gradients and r["impl"] == "fastopt.torch" and r["threads"] == 1
                    and r["optimizer"] == optimizer), None)
        if row is None or "speedup_vs_torch" not in row:
            return None
        return row["speedup_vs_torch"], f"fastopt.torch vs {row['torch_baseline']}"
    return measure


def _thread_speedup(n, threads=2):
    """The best same-backend speedup of the kernel from 1 to ``threads`` threads (compiled backends:
    the NumPy reference runs on one thread whatever it is told)."""
    def measure(records, optimizer):
        best = None
        for backend in ("numba", "cython"):
            one = _fastest(records, **_single(optimizer, n, "kernel", 1), impl=backend)
            more = _fastest(records, **_single(optimizer, n, "kernel", threads), impl=backend)
            if one is not None and more is not None:
                ratio = one["median_s"] / more["median_s"]
                if best is None or ratio > best[0]:
                    best = (ratio, f"{backend} kernel, {threads} thr vs 1 thr")
        return best
    return measure


M = 1 << 20
TARGETS = (
    Target("1a", "N=33,554,432: fastest kernel vs in-place update ceiling", 0.9, True, _ceiling_ratio(32 * M)),
    Target("1b", "N=33,554,432: opt.step vs torch", 0.95, True, _torch_speedup(32 * M)),
    Target("2", "N=4,194,304: opt.step vs torch", 1.1, True, _torch_speedup(4 * M)),
    Target("3", "N=262,144: opt.step vs torch", 2.0, True, _torch_speedup(M // 4)),
    Target("4a", "N=4,096: µs per kernel call", 1.5, False, _kernel_microseconds(4096), unit=" µs"),
    Target("4b", "N=4,096: opt.step vs torch step()", 5.0, True, _torch_speedup(4096)),
    Target("5a", "200 × 1,000 elements: opt.step(list of 200 arrays) vs torch", 5.0, True, _torch_speedup(kind="step separate", scenario="small"), ("Adam",)),
    Target("5b", "200 × 1,000 elements: flat buffer opt.step vs torch", 10.0, True, _torch_speedup(kind="step flat", scenario="small"), ("Adam",)),
    Target("5c", "200 × 1,000 elements: flat opt.step / one kernel call over 200,000", 1.5, False, _flat_vs_one_call, ("Adam",)),
    Target("6", "N=262,144: 2 threads vs 1 thread (kernel)", 1.5, True, _thread_speedup(M // 4)),
    Target("7a", "torch model, 200 small tensors, gradients kept: fastopt.torch vs torch fused", 5.0, True,
           _torch_model_speedup("many-small", "kept"), ("Adam",)),
    Target("7b", "torch model, 200 small tensors, new gradients: fastopt.torch vs torch fused", 5.0, True,
           _torch_model_speedup("many-small", "new"), ("Adam",)),
    Target("7c", "torch model, 8 large tensors: fastopt.torch vs torch fused", 1.0, True,
           _torch_model_speedup("few-large", "kept"), ("Adam",)),
)
"""The issue's targets: float32, 1 thread unless said. "vs torch" is torch's time / fastopt's
(full steps), against torch.optim's fused implementation where it exists."""


def evaluate_targets(records: list[dict], optimizers: list[str]) -> list[dict]:
    results = []
    for target in TARGETS:
        for optimizer in target.optimizers:
            found = target.measure(records, optimizer) if optimizer in optimizers else None
            entry = {
                "id": target.id,
                "optimizer": optimizer,
                "target": target.text,
                "needed": f"{'≥' if target.at_least else '≤'} {target.threshold:g}{target.unit}",
                "threshold": target.threshold,
                "at_least": target.at_least,
                "measured": None,
                "how": "not measured in this run",
                "passed": None,
            }
            if found is not None:
                value, how = found
                entry.update(measured=value, how=how, unit=target.unit.strip(),
                             passed=value >= target.threshold if target.at_least else value <= target.threshold)
            results.append(entry)
    return results


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
def _us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.0f}" if us >= 1000 else f"{us:.3g}" if us < 10 else f"{us:.1f}"


def _range(r: dict) -> str:
    return f"{_us(r['median_s'])} [{_us(r['min_s'])}–{_us(r['max_s'])}]"


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def single_table(records: list[dict], threads: list[int], title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("optimizer")
    table.add_column("N", justify="right")
    table.add_column("dtype")
    if len(threads) > 1:
        table.add_column("thr", justify="right")
    table.add_column("implementation")
    table.add_column("kernel µs", justify="right")
    table.add_column("step µs \\[min–max]", justify="right")
    table.add_column("ns/elem", justify="right")
    table.add_column("GB/s", justify="right")
    table.add_column("× ceiling", justify="right")
    table.add_column("× torch", justify="right")

    order = {"ceiling": 0, "reference": 1, "numba": 2, "cython": 3, "torch default": 4, "torch foreach": 5, "torch fused": 6}
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r["scenario"] == "single":
            groups.setdefault((r["optimizer"], r["dtype"], r["elements"]), []).append(r)
    for group_index, ((optimizer, dtype, n), rows) in enumerate(groups.items()):
        first = True
        for thread_count in threads:
            by_impl: dict[str, dict[str, dict]] = {}
            for r in rows:
                if r["threads"] == thread_count:
                    by_impl.setdefault(r["impl"], {})[r["kind"]] = r
            fastest = min(
                (impl for impl in by_impl if impl in ("reference", "numba", "cython") and "kernel" in by_impl[impl]),
                key=lambda impl: by_impl[impl]["kernel"]["median_s"],
                default=None,
            )
            for impl in sorted(by_impl, key=lambda i: order.get(i, 9)):
                kinds = by_impl[impl]
                kernel = kinds.get("kernel") or kinds.get("ceiling")
                step = kinds.get("step") or kinds.get("torch")
                shown = kernel or step  # what ns/elem, GB/s and × ceiling are computed from
                label = impl if impl != "ceiling" else "ceiling a += s*b"
                if impl == fastest:
                    label = f"[bold]{label}[/bold] ◂"
                cells = [optimizer if first else "", f"{n:,}" if first else "", dtype if first else ""]
                if len(threads) > 1:
                    cells.append(str(thread_count))
                cells += [
                    label,
                    _us(kernel["median_s"]) if kernel else "",
                    _range(step) if step else "",
                    f"{shown['ns_per_element']:.3g}",
                    f"{shown['gb_per_s']:.1f}",
                    _x(shown.get("ratio_to_ceiling")),
                    _x(step.get("speedup_vs_torch")) if step else "",
                ]
                table.add_row(*cells)
                first = False
        table.rows[-1].end_section = group_index < len(groups) - 1
    return table


def closure_table(records: list[dict], threads: list[int], title: str):
    """The closure optimizers (L-BFGS): one ``step(closure)`` per row, fastopt's backends and torch."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in (("optimizer", "left"), ("N", "right"), ("dtype", "left"), ("thr", "right"),
                          ("implementation", "left"), ("µs per step \\[min–max]", "right"), ("ns/elem", "right"),
                          ("× torch", "right")):
        if name == "thr" and len(threads) < 2:
            continue
        table.add_column(name, justify=justify)
    order = {"reference": 0, "numba": 1, "cython": 2, "fastopt.torch": 3, "torch default": 4}
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r["scenario"] == "closure":
            groups.setdefault((r["optimizer"], r["dtype"], r["elements"], r["threads"]), []).append(r)
    for group_index, ((optimizer, dtype, n, thread_count), rows) in enumerate(groups.items()):
        for index, r in enumerate(sorted(rows, key=lambda r: order.get(r["impl"], 9))):
            cells = [optimizer if index == 0 else "", f"{n:,}" if index == 0 else "", dtype if index == 0 else ""]
            if len(threads) > 1:
                cells.append(str(thread_count))
            cells += [r["impl"], _range(r), f"{r['ns_per_element']:.3g}", _x(r.get("speedup_vs_torch"))]
            table.add_row(*cells)
        table.rows[-1].end_section = group_index < len(groups) - 1
    return table


SMALL_LABELS = {
    "step separate": "opt.step(list of {count} arrays)",
    "step flat": "flat buffer: opt.step([flat.grad])",
    "kernel loop": "{count} kernel calls, no checks",
    "kernel one call": "one kernel call over {total:,}",
}


def small_table(records: list[dict], threads: list[int], title: str):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in (("optimizer", "left"), ("dtype", "left"), ("thr", "right"), ("approach", "left"),
                          ("backend", "left"), ("µs per step \\[min–max]", "right"), ("GB/s", "right"),
                          ("× torch", "right"), ("÷ one call", "right")):
        if name == "thr" and len(threads) < 2:
            continue
        table.add_column(name, justify=justify)
    kind_order = {"torch": 0, "step separate": 1, "kernel loop": 2, "step flat": 3, "kernel one call": 4}
    impl_order = {"torch default": 0, "torch foreach": 1, "torch fused": 2, "reference": 3, "numba": 4, "cython": 5}
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r["scenario"] == "small":
            groups.setdefault((r["optimizer"], r["dtype"], r["threads"]), []).append(r)
    for group_index, ((optimizer, dtype, thread_count), rows) in enumerate(groups.items()):
        rows = sorted(rows, key=lambda r: (kind_order[r["kind"]], impl_order.get(r["impl"], 9)))
        for index, r in enumerate(rows):
            if r["kind"] == "torch":
                approach, backend = f"torch.optim, {r['count']} tensors", r["impl"].removeprefix("torch ")
            else:
                approach = escape(SMALL_LABELS[r["kind"]].format(count=r["count"], total=r["elements"]))
                backend = r["impl"]
            cells = [optimizer if index == 0 else "", dtype if index == 0 else ""]
            if len(threads) > 1:
                cells.append(str(thread_count))
            cells += [approach, backend, _range(r), f"{r['gb_per_s']:.1f}", _x(r.get("speedup_vs_torch")),
                      _x(r.get("ratio_to_one_call"))]
            table.add_row(*cells)
        table.rows[-1].end_section = group_index < len(groups) - 1
    return table


def targets_table(targets: list[dict], title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in (("#", "left"), ("optimizer", "left"), ("target (float32, 1 thread unless said)", "left"),
                          ("needed", "right"), ("measured", "right"), ("", "left"), ("from", "left")):
        table.add_column(name, justify=justify)
    for t in targets:
        if t["passed"] is None:
            verdict, measured = "[dim]n/a[/dim]", ""
        else:
            verdict = "[green]pass[/green]" if t["passed"] else "[red]MISS[/red]"
            measured = f"{t['measured']:.2f}{'×' if t['unit'] == '×' else ' ' + t['unit']}"
        table.add_row(t["id"], t["optimizer"], t["target"], t["needed"], measured, verdict, t["how"])
    return table


TORCH_MODEL_ORDER = {"torch foreach": 0, "torch fused": 1, "fastopt.torch": 2}


def torch_models_table(records: list[dict], threads: list[int], title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in (("model", "left"), ("tensors", "right"), ("elements", "right"), ("gradients", "left"),
                          ("thr", "right"), ("implementation", "left"), ("step µs \\[min–max]", "right"),
                          ("GB/s", "right"), ("× fused", "right")):
        if name == "thr" and len(threads) < 2:
            continue
        table.add_column(name, justify=justify)
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r["scenario"] == "torch-model":
            groups.setdefault((r["model"], r["gradients"], r["threads"]), []).append(r)
    for group_index, ((model, gradients, thread_count), rows) in enumerate(groups.items()):
        rows = sorted(rows, key=lambda r: TORCH_MODEL_ORDER.get(r["impl"], 9))
        for index, r in enumerate(rows):
            first = index == 0
            cells = [model if first else "", f"{r['tensors']}" if first else "", f"{r['elements']:,}" if first else "",
                     gradients if first else ""]
            if len(threads) > 1:
                cells.append(str(thread_count))
            label = f"[bold]{r['impl']}[/bold]" if r["impl"] == "fastopt.torch" else r["impl"]
            cells += [label, _range(r), f"{r['gb_per_s']:.1f}", _x(r.get("speedup_vs_torch"))]
            table.add_row(*cells)
        table.rows[-1].end_section = group_index < len(groups) - 1
    return table
