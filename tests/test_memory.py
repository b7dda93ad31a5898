"""Memory: no growth over many steps, and no temporaries proportional to the parameters' size.

Growth: after a warm-up, 500 steps must not grow the memory Python and NumPy have allocated
(tracemalloc sees every NumPy array; a control with a deliberate leak shows the measurement sees
one), nor 10**5 steps that memory and the process's resident set size (marked ``heavy``, run with
``-m heavy``). Temporaries: one step over a 1Mi-element float64 parameter (8 MB) must allocate less
than 64 KiB at its peak on the fast backends, where the NumPy reference, which allocates
whole-array temporaries, is the control that shows the measurement sees them; Numba's own
allocator, which tracemalloc does not trace, is counted in a subprocess (``NUMBA_NRT_STATS=1``).
"""

import gc
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
from specs import SPECS

import fastopt

BIG = 1 << 20
SMALL_PEAK = 64 * 1024


def make(name, backend, sizes, dtype=np.float64):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(size).astype(dtype) for size in sizes]
    grads = [[rng.standard_normal(size).astype(dtype) for size in sizes] for _ in range(4)]
    opt = SPECS[name].cls(params, backend=backend, **SPECS[name].torch_configs[-1])
    return opt, grads


def traced_growth(opt, grads, steps):
    """Bytes still allocated after ``steps`` more steps, relative to after the warm-up."""
    for k in range(50):
        opt.step(grads[k % len(grads)])
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(steps):
            opt.step(grads[k % len(grads)])
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("name", list(SPECS))
def test_many_steps_do_not_grow_memory(name, backend):
    opt, grads = make(name, backend, [50, 7, 1, 0])
    growth = traced_growth(opt, grads, 500)
    assert growth < 4096, f"{growth} bytes more after 500 steps"


def test_the_growth_measurement_sees_a_leak():
    """Control: an optimizer that keeps one small array per step is caught."""
    opt, grads = make("Adam", "numba", [50])
    kept = []
    original = opt.step

    def leaky_step(step_grads):
        original(step_grads)
        kept.append(np.zeros(4))

    opt.step = leaky_step
    assert traced_growth(opt, grads, 500) > 4096


def step_peak(opt, grad):
    opt.step(grad)  # warm-up: state and caches exist, kernels compiled
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        opt.step(grad)
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", list(SPECS))
def test_fast_backends_allocate_no_temporaries_proportional_to_the_parameters(name):
    peaks = {}
    for backend in fastopt.BACKENDS:
        opt, grads = make(name, backend, [BIG, 1000, 3])
        peaks[backend] = step_peak(opt, grads[0])
    assert peaks["reference"] > BIG * 8, f"control: the reference's temporaries were not seen ({peaks})"
    for backend in ("numba", "cython"):
        assert peaks[backend] < SMALL_PEAK, f"{backend} allocated {peaks[backend]} bytes in a step"


def test_numba_kernels_make_no_allocation_of_their_own():
    """Numba wraps each array argument in a small header (one NRT allocation, freed on return);
    a temporary array inside a kernel would be one more. So: exactly one allocation per array
    argument, all freed, for a direct call of each kernel and for a step, which makes one
    multi-tensor call per group over three arrays (SparseAdam: one call per parameter, on its
    gathered rows) (the batch's pointer and size tables, and an
    empty array that names the dtype); the rows it steps are views made without allocating.
    Adafactor's twin (whole tensors) allocates its scratch buffer, one per call, and frees it."""
    code = textwrap.dedent(
        """
        import numpy as np
        from numba.core.runtime import rtsys
        import fastopt
        from fastopt._engine.rows import every_row
        rng = np.random.default_rng(0)
        for name, cls in fastopt.OPTIMIZERS.items():
            params = [rng.standard_normal(4096), rng.standard_normal(5)]
            opt = cls(params, backend="numba")
            grads = [rng.standard_normal(4096), rng.standard_normal(5)]
            given = every_row(grads) if cls.algorithm.sparse else grads  # SparseAdam: rows
            opt.step(given)
            opt.step(given)  # the multi-tensor path from the second step on (dense gradients)
            plan = opt._plans[0]
            state = opt.state.get(0, {})
            arrays = [params[0], grads[0], *(state[k] if k in state else np.empty(0) for k in plan.slots)]
            kernel = plan.kernels.single[params[0].dtype]
            scalars = (*plan.algorithm.shape_arguments(params[0].shape),
                       *plan.scalars(plan.algorithm.advance(plan.group, dict(state), ()), params[0].dtype))
            before = rtsys.get_allocation_stats()
            for _ in range(10):
                kernel(*[a.copy() for a in arrays], *scalars, 1)
            after = rtsys.get_allocation_stats()
            scratch = 10 if cls.algorithm.whole_tensor else 0  # its one buffer per call (a vector here)
            print(name, "kernel", after.alloc - before.alloc, after.free - before.free, 10 * len(arrays) + scratch)
            before = rtsys.get_allocation_stats()
            for _ in range(10):
                opt.step(given)
            after = rtsys.get_allocation_stats()
            # a sparse gradient's rows are stepped parameter by parameter: one call each; so is a
            # whole tensor (Adafactor's), whose Numba twin allocates one scratch buffer per call (no
            # stack arrays in Numba; its two vectors keep a full variance, no row of column sums)
            if cls.algorithm.sparse:
                headers = 10 * 2 * len(arrays)
            elif cls.algorithm.whole_tensor:
                headers = 10 * 2 * (len(arrays) + 1)
            else:
                headers = 10 * 3
            print(name, "step", after.alloc - before.alloc, after.free - before.free, headers)
        """
    )
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    counts = {tuple(line.split()[:2]): tuple(map(int, line.split()[2:])) for line in result.stdout.splitlines() if line.strip()}
    assert set(counts) == {(name, call) for name in fastopt.OPTIMIZERS for call in ("kernel", "step")}
    for (name, call), (allocated, freed, argument_headers) in counts.items():
        assert allocated == freed == argument_headers, f"{name} {call}: {allocated} allocations, {freed} frees, {argument_headers} expected"


def rss_bytes():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.heavy
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux /proc needed for RSS")
@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("name", list(SPECS))
def test_a_hundred_thousand_steps_grow_neither_traced_memory_nor_rss(name, backend):
    opt, grads = make(name, backend, [1000, 50, 7, 1])
    for k in range(2000):
        opt.step(grads[k % 4])
    gc.collect()
    rss_before = rss_bytes()
    growth = traced_growth(opt, grads, 10**5)
    gc.collect()
    rss_growth = rss_bytes() - rss_before
    assert growth < 4096, f"{growth} traced bytes more after 10**5 steps"
    assert rss_growth < 1 << 20, f"RSS grew by {rss_growth} bytes over 10**5 steps"
