"""flatten(): one buffer for the whole model gives the same bits as stepping each array."""

import numpy as np
import pytest
from specs import DTYPES, SPECS, assert_bits_equal

import fastopt


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("backend", fastopt.BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_flat_buffer_steps_like_separate_arrays(name, backend, dtype):
    rng = np.random.default_rng(7)
    shapes = [(4, 3), (3,), (), (0,), (5, 1, 2)]
    separate = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]
    flat = fastopt.flatten(separate)
    for view, array in zip(flat.params, separate):
        assert_bits_equal(view, array)
        assert view.size == 0 or np.shares_memory(view, flat.param)
    options = dict(SPECS[name].torch_configs[-1])
    opt_separate = SPECS[name].cls(separate, backend=backend, **options)
    opt_flat = SPECS[name].cls([flat.param], backend=backend, **options)
    for _ in range(4):
        grads = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]
        for view, grad in zip(flat.grads, grads):
            view[...] = grad
        opt_separate.step(grads)
        opt_flat.step([flat.grad])
    for view, array in zip(flat.params, separate):
        assert_bits_equal(view, array)
    for key, value in opt_flat.state[0].items():
        if isinstance(value, np.ndarray):
            for index, part in enumerate(flat.split(value)):
                if part.size:
                    assert_bits_equal(part, opt_separate.state[index][key], key)


def test_flat_buffers_are_aligned_and_validated():
    flat = fastopt.flatten([np.zeros(3, np.float32), np.ones((2, 2), np.float32)])
    assert flat.param.ctypes.data % 64 == 0 and flat.grad.ctypes.data % 64 == 0
    assert flat.param.tolist() == [0, 0, 0, 1, 1, 1, 1]
    with pytest.raises(TypeError, match=r"arrays\[1\] has dtype float64 but arrays\[0\] has dtype float32"):
        fastopt.flatten([np.zeros(3, np.float32), np.zeros(3)])
    with pytest.raises(ValueError, match="at least one array"):
        fastopt.flatten([])
    with pytest.raises(TypeError, match=r"arrays\[0\] must be a numpy.ndarray, got list"):
        fastopt.flatten([[1.0]])
    with pytest.raises(ValueError, match=r"expected an array of shape \(7,\), got \(3,\)"):
        flat.split(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="shares memory"):  # views and buffer cannot both be optimized
        fastopt.SGD([flat.param, flat.params[0]])
