"""Threads: opt-in, size-gated, and invisible in the results (the same bits on any thread count)."""

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
