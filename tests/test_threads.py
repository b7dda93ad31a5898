"""Threads: opt-in, size-gated, invisible in the results; the kernels release the GIL.

``fastopt.set_num_threads`` is validated and splits only arrays above its size threshold, and
threaded steps give the reference's bits. The kernels release the GIL while they run, proved
without timing on the per-array and on the Cython multi-tensor path: another Python thread sees
the parameter half-updated, which it never could if the kernel held the GIL (a loop compiled with
and without ``nogil`` is the probe's control). Optimizers stepped concurrently give the bits of
sequential runs: two optimizers in two threads, and every optimizer at once in four threads (many
small parameters plus a large one, with OpenMP threads inside each step). One optimizer stepped
from two threads at once is not supported: its state would race (docs/reliability.md).
"""

import threading

import numpy as np
import pytest
from specs import DTYPES, SPECS, assert_bits_equal, assert_same_state

import fastopt
from fastopt import _threads


@pytest.fixture
def two_threads():
    before = (_threads._num_threads, _threads._min_size)
    fastopt.set_num_threads(2, min_size=1000)
    yield
    _threads._num_threads, _threads._min_size = before


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_threaded_steps_equal_the_reference_bit_for_bit(name, backend, two_threads):
    rng = np.random.default_rng(2)
    options = dict(SPECS[name].torch_configs[-1])
    for dtype in DTYPES:
        # one parameter above the threshold (split across threads), one below (serial)
        initial = [rng.standard_normal(50_021).astype(dtype), rng.standard_normal(999).astype(dtype)]
        reference_params = [p.copy() for p in initial]
        threaded_params = [p.copy() for p in initial]
        reference = SPECS[name].cls(reference_params, backend="reference", **options)
        threaded = SPECS[name].cls(threaded_params, backend=backend, **options)
        for _ in range(5):
            grads = [rng.standard_normal(p.shape).astype(dtype) for p in initial]
            reference.step(grads)
            threaded.step(grads)
        for a, b in zip(threaded_params, reference_params):
            assert_bits_equal(a, b)
        assert_same_state(threaded, reference, backend)


def test_the_knob_is_validated_and_gates_by_size(two_threads):
    assert fastopt.get_num_threads() == 2
    assert _threads.threads_for(999) == 1 and _threads.threads_for(1000) == 2
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="num_threads must be a positive integer"):
            fastopt.set_num_threads(bad)
    with pytest.raises(ValueError, match="min_size must be a non-negative integer"):
        fastopt.set_num_threads(2, min_size=-5)
    fastopt.set_num_threads(1)
    assert _threads.threads_for(10**9) == 1  # one thread unless asked


@pytest.mark.parametrize("backend", fastopt.BACKENDS)
def test_two_python_threads_stepping_two_optimizers_match_sequential_runs(backend):
    """Kernels release the GIL and share nothing between optimizers: running two at once changes no bit."""
    rng = np.random.default_rng(8)
    initial = [rng.standard_normal(200_000).astype(np.float32) for _ in range(2)]
    grads = [[rng.standard_normal(200_000).astype(np.float32)] for _ in range(10)]

    def train(params, cls):
        opt = cls([params], backend=backend, lr=1e-2)
        for g in grads:
            opt.step(g)

    sequential = [p.copy() for p in initial]
    train(sequential[0], fastopt.Adam)
    train(sequential[1], fastopt.RMSprop)
    concurrent = [p.copy() for p in initial]
    workers = [
        threading.Thread(target=train, args=(concurrent[0], fastopt.Adam)),
        threading.Thread(target=train, args=(concurrent[1], fastopt.RMSprop)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for a, b in zip(concurrent, sequential):
        assert_bits_equal(a, b)


# --------------------------------------------------------------------------------------------
# The GIL is released during the loop
# --------------------------------------------------------------------------------------------
N = 1 << 20  # 1Mi float64: a step takes about a millisecond


def observe_mid_step(step, param, steps=100, attempts=10):
    """Run ``step()`` ``steps`` times in a thread while this thread polls ``param``; True if it
    ever saw the first and last elements differ.

    The parameter and its gradient are uniform, so every element follows the same trajectory
    (the same operations on the same values): between steps all elements are equal, and they
    differ only while a kernel is half-way through the array. Seeing that needs this thread to
    run Python *during* a kernel call, which it cannot do if the kernel holds the GIL. Many
    steps per attempt, so the probe also works on a busy machine (it needs this thread to be
    scheduled during some kernel call, not during a particular one)."""
    for _ in range(attempts):
        seen = False

        def run():
            for _ in range(steps):
                step()

        worker = threading.Thread(target=run)
        worker.start()
        while worker.is_alive():
            first, last = param[0], param[-1]
            if first != last and np.isfinite(first) and np.isfinite(last):
                seen = True
                break
        worker.join()
        if seen:
            return True
    return False


@pytest.mark.parametrize("backend", ["numba", "cython"])
@pytest.mark.parametrize("name", list(SPECS))
def test_the_kernels_release_the_gil_while_they_run(name, backend):
    param = np.full(N, 0.5)
    others = [np.full(8, 0.5) for _ in range(3)]  # on Cython, steps after the first are multi-tensor
    opt = SPECS[name].cls([param, *others], backend=backend, lr=1e-6)
    grads = [np.full(N, 0.25), *[np.full(8, 0.25) for _ in others]]
    opt.step(grads)
    if name == "ADOPT":  # its first step only records the squared gradient
        opt.step(grads)
    assert param[0] == param[-1] != 0.5
    assert observe_mid_step(lambda: opt.step(grads), param), (
        f"{name}/{backend}: no other Python thread ran during a step: the GIL seems held"
    )


def test_the_gil_probe_tells_a_kernel_that_holds_the_gil_from_one_that_does_not():
    """The probe's control: the same loop compiled with and without ``nogil``."""
    import numba

    def descend(param, grad):
        for i in range(param.shape[0]):
            param[i] = param[i] - 1e-6 * grad[i]

    holds, releases = numba.njit(nogil=False)(descend), numba.njit(nogil=True)(descend)
    param, grad = np.full(N, 0.5), np.full(N, 0.25)
    holds(param, grad)
    releases(param, grad)
    assert not observe_mid_step(lambda: holds(param, grad), param, attempts=2)
    assert observe_mid_step(lambda: releases(param, grad), param)


# --------------------------------------------------------------------------------------------
# Every optimizer at once, in four threads
# --------------------------------------------------------------------------------------------
def train(name, backend, params, grads_per_step):
    opt = SPECS[name].cls(params, backend=backend, **SPECS[name].torch_configs[-1])
    for grads in grads_per_step:
        opt.step(grads)


@pytest.fixture
def inner_threads(request):
    """Cython: OpenMP threads inside each step as well (Numba's parallel twins are covered by
    test_threaded_steps_equal_the_reference_bit_for_bit; compiling them all again here would cost
    seconds)."""
    before = (_threads._num_threads, _threads._min_size)
    if request.node.callspec.params["backend"] == "cython":
        fastopt.set_num_threads(2, min_size=10_000)
    yield
    _threads._num_threads, _threads._min_size = before


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_every_optimizer_in_four_threads_matches_sequential_runs(backend, inner_threads):
    rng = np.random.default_rng(6)
    names = list(SPECS)
    shapes = [(40_000,)] + [(int(s),) for s in rng.integers(1, 200, 30)]
    dtype = np.float32
    problems = []
    for _ in names:
        initial = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
        grads = [[rng.standard_normal(shape).astype(dtype) for shape in shapes] for _ in range(6)]
        problems.append((initial, grads))

    sequential = []
    for name, (initial, grads) in zip(names, problems):
        params = [p.copy() for p in initial]
        train(name, backend, params, grads)
        sequential.append(params)

    concurrent = [[p.copy() for p in initial] for initial, _ in problems]
    errors = []

    def worker(indices):
        try:
            for i in indices:
                train(names[i], backend, concurrent[i], problems[i][1])
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(range(k, len(names), 4),)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for name, got, want in zip(names, concurrent, sequential):
        for index, (a, b) in enumerate(zip(got, want)):
            assert_bits_equal(a, b, f"{name} params[{index}]")
