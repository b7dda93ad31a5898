"""How the benchmark times things so that a number means something.

* **k back-to-back calls per sample.** A 1 µs kernel cannot be timed call by call
  (``perf_counter`` and the loop cost tens of ns), so each sample times ``k`` calls with
  ``time.perf_counter`` and divides; ``k`` is calibrated per contestant so a sample lasts about
  ``sample_seconds`` (20-40 ms by default).
* **Interleaved samples.** The alternatives are sampled in rounds, A B C A B C ..., in one
  process, so slow drift (frequency, other tenants, page cache) hits all of them alike; ratios
  are taken between contestants of the same round set.
* **Medians, with min and max.** Of at least 7 samples by default. A contestant whose single call
  already lasts longer than a sample (the NumPy reference at 33M elements) takes fewer samples.
* **Warm.** Calibration runs every contestant first (JIT compilation, torch's lazy state, first
  touch of every page). Before each sample of a short call, one untimed call brings its data
  back into the caches that the previous contestant evicted.
* **Threads pinned** for fastopt, Numba and torch before every sample (:class:`ThreadControl`).
* **Load watched.** :class:`LoadMonitor` reads ``/proc/stat`` to tell how much CPU *other*
  processes used while we measured; on a 2-core machine one busy neighbour halves the memory
  bandwidth we see.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Contestant:
    """One thing being timed; ``call()`` does one step (or one ceiling pass)."""

    key: dict  # what it is: scenario, optimizer, dtype, n, threads, impl, kind ...
    call: Callable[[], object]
    threads: int = 1
    prepare: Callable[[], object] | None = None  # run before every call, outside the timing
    calls_per_sample: int = 1  # k, set by calibrate()
    max_samples: int = 7
    seconds_per_call: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds_per_call)


class ThreadControl:
    """Sets the number of threads for fastopt, Numba and torch; says how it did.

    * fastopt: ``fastopt.set_num_threads(n)`` if this version has it (a run-time knob). Otherwise
      the Cython kernels' OpenMP runtime reads ``OMP_NUM_THREADS`` when it is loaded, so
      :meth:`before_loading` sets it before any kernel is imported; that cannot change later.
    * Numba: ``numba.set_num_threads(n)`` (applies to parallel kernels, e.g. the ceiling's).
    * torch: ``torch.set_num_threads(n)``.
    """

    def __init__(self, counts: list[int]):
        self.counts = counts
        self.torch = None
        self.notes: list[str] = []
        import fastopt

        self._fastopt_knob = getattr(fastopt, "set_num_threads", None)
        self._current: int | None = None

    def before_loading(self) -> None:
        """Set ``OMP_NUM_THREADS`` if no compiled kernel is loaded yet and the user did not."""
        if self._fastopt_knob is not None:
            self.notes.append("fastopt: fastopt.set_num_threads before every sample (opt.step follows its size "
                              "policy), num_threads argument to the kernels")
            return
        loaded = [name for name in sys.modules if name.startswith("fastopt.") and "._cython" in name]
        wanted = str(min(self.counts))  # so that the 1-thread rows, the usual case, are right
        if "OMP_NUM_THREADS" in os.environ:
            self.notes.append(f"fastopt: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} (set by the caller)")
        elif loaded:
            self.notes.append("fastopt: kernels already loaded, OMP_NUM_THREADS not applied")
        else:
            os.environ["OMP_NUM_THREADS"] = wanted
            self.notes.append(f"fastopt: OMP_NUM_THREADS={wanted} before loading the Cython kernels")
        if len(self.counts) > 1:
            self.notes.append(
                "fastopt has no run-time thread knob (set_num_threads), so its kernels ran with the "
                "same thread count in every row; only the ceiling (numba prange) and torch follow the threads column"
            )

    def set(self, n: int) -> None:
        if n == self._current:
            return
        if self._fastopt_knob is not None:
            self._fastopt_knob(n)
        try:
            import numba

            numba.set_num_threads(n)
        except ImportError:
            pass
        if self.torch is not None:
            self.torch.set_num_threads(n)
        self._current = n


def calibrate(contestant: Contestant, control: ThreadControl, sample_seconds: float, samples: int, slow_samples: int) -> None:
    """Warm ``contestant`` up and choose ``k`` so that k calls last about ``sample_seconds``."""
    control.set(contestant.threads)
    # compile, allocate lazy state, touch pages: an optimizer's first step takes the per-parameter
    # path and its second the multi-tensor one, each compiled (or loaded) when first called
    _run(contestant.call, 3, contestant.prepare)
    one = _run(contestant.call, 1, contestant.prepare)
    if one >= sample_seconds:
        contestant.calls_per_sample = 1
        contestant.max_samples = min(samples, slow_samples)
        return
    k = max(1, int(sample_seconds / max(one, 1e-9) / 4))  # a short probe, then refine
    elapsed = _run(contestant.call, k, contestant.prepare)
    contestant.calls_per_sample = max(1, round(k * sample_seconds / elapsed))
    contestant.max_samples = samples


def _run(call: Callable[[], object], k: int, prepare: Callable[[], object] | None = None) -> float:
    """Seconds spent in k calls; with ``prepare``, it runs before each call, untimed (each call
    is then timed on its own)."""
    if prepare is None:
        start = time.perf_counter()
        for _ in range(k):
            call()
        return time.perf_counter() - start
    clock, spent = time.perf_counter, 0.0
    for _ in range(k):
        prepare()
        start = clock()
        call()
        spent += clock() - start
    return spent


def sample(contestant: Contestant, control: ThreadControl) -> None:
    """One timed sample: k back-to-back calls, after one untimed call when k > 1."""
    control.set(contestant.threads)
    k = contestant.calls_per_sample
    if k > 1:
        _run(contestant.call, 1, contestant.prepare)
    contestant.seconds_per_call.append(_run(contestant.call, k, contestant.prepare) / k)


def measure(contestants: list[Contestant], control: ThreadControl, samples: int, advance: Callable[[], None] | None = None) -> None:
    """Sample every contestant in interleaved rounds (A B C A B C ...)."""
    for round_index in range(samples):
        for contestant in contestants:
            if round_index < contestant.max_samples:
                sample(contestant, control)
            if advance is not None:
                advance()


# --------------------------------------------------------------------------------------------
# Machine load
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    machine_busy: float | None  # CPU-seconds all processes spent busy (None without /proc/stat)
    own: float  # CPU-seconds this process spent


def cpu_snapshot() -> CpuSnapshot:
    own = sum(os.times()[:2])
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return CpuSnapshot(time.monotonic(), None, own)
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    ticks = [int(x) for x in fields[:8]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return CpuSnapshot(time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), own)


def others_load(before: CpuSnapshot, after: CpuSnapshot) -> float | None:
    """Average number of cores *other* processes kept busy between two snapshots (steal, the
    time the hypervisor gave to other machines, counts as busy)."""
    if before.machine_busy is None or after.machine_busy is None or after.wall <= before.wall:
        return None
    others = (after.machine_busy - before.machine_busy) - (after.own - before.own)
    return max(0.0, others / (after.wall - before.wall))


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
