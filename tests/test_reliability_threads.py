"""Threads: the kernels release the GIL, and optimizers stepped concurrently give sequential bits.

test_threads.py runs two optimizers (Adam, RMSprop; one large parameter each) in two threads.
This adds: a proof, without timing, that the GIL is released *during* the loop (another Python
thread observes the parameter half-updated, which it could never do if the kernel held the
GIL), on the per-array and on the Cython multi-tensor path; and every optimizer at once, four
threads, many small parameters plus a large one, with OpenMP threads inside each step.

What is and is not thread-safe is in README "Reliability": different optimizers in different
threads, yes; one optimizer from two threads at once, no (its state would race).
"""

import threading

import numpy as np
import pytest
from specs import SPECS, assert_bits_equal

import fastopt
from fastopt import _threads

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


def train(name, backend, params, grads_per_step):
    opt = SPECS[name].cls(params, backend=backend, **SPECS[name].torch_configs[-1])
    for grads in grads_per_step:
        opt.step(grads)


@pytest.fixture
def inner_threads(request):
    """Cython: OpenMP threads inside each step as well (Numba's parallel twins are covered by
    test_threads.py; compiling them all again here would cost seconds)."""
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
