"""16-bit parameters (float16, bfloat16) with float32 state, and float32 master weights that
write their 16-bit copy in the same step (``opt.step(grads, copy_to=...)``).

* ``TimeSixteenBit.time_step``: ``opt.step([grad])`` on one float16/bfloat16 parameter. Bytes a
  step must move per element (Adam): 2 + 2 read, 2 written for parameter and gradient, 8 + 8 for
  the two float32 moments: 22, against float32 Adam's 28.
* ``TimeMasterCopy.time_step``: ``opt.step([grad], copy_to=[copy])`` on float32 master weights
  with a bfloat16 copy: float32 Adam's 28 bytes plus 2 written.

"n/a" for commits before 16-bit parameters (or ``copy_to``) existed, and where ml_dtypes (for
bfloat16) is not installed.
"""

import functools

import numpy as np

from .common import BACKENDS, SEED_GRAD, SEED_PARAM, make_optimizer, random_array

SIZES = [4_096, 262_144, 4_194_304, 33_554_432]  # append-only
SIXTEEN_BIT = ["float16", "bfloat16"]
OPTIMIZERS = ["adam", "sgd"]


def sixteen_bit(name: str):
    if name == "float16":
        return np.dtype(np.float16)
    try:
        import ml_dtypes
    except ImportError:
        raise NotImplementedError("bfloat16 needs ml_dtypes") from None
    return np.dtype(ml_dtypes.bfloat16)


def as_dtype(array: np.ndarray, dtype) -> np.ndarray:
    out = np.empty(array.shape, dtype)
    out[...] = array
    return out


@functools.lru_cache(maxsize=1)
def sixteen_bit_problem(optimizer: str, backend: str, size: int, dtype: str):
    """``(optimizer, grads)`` for one 16-bit parameter, after one warm-up step."""
    param = as_dtype(random_array(size, "float32", SEED_PARAM), sixteen_bit(dtype))
    grads = [as_dtype(random_array(size, "float32", SEED_GRAD), param.dtype)]
    try:
        opt = make_optimizer(optimizer, backend, [param])
        opt.step(grads)
    except TypeError as exc:  # a commit before 16-bit parameters
        raise NotImplementedError(str(exc)) from None
    return opt, grads


@functools.lru_cache(maxsize=1)
def master_copy_problem(optimizer: str, backend: str, size: int):
    """``(optimizer, grads, copies)``: float32 master weights and their bfloat16 copy."""
    master = random_array(size, "float32", SEED_PARAM)
    grads = [random_array(size, "float32", SEED_GRAD)]
    copies = [np.empty(size, sixteen_bit("bfloat16"))]
    opt = make_optimizer(optimizer, backend, [master])
    try:
        opt.step(grads, copy_to=copies)
    except TypeError as exc:  # a commit before copy_to
        raise NotImplementedError(str(exc)) from None
    return opt, grads, copies


class TimeSixteenBit:
    params = [OPTIMIZERS, BACKENDS, SIZES, SIXTEEN_BIT]
    param_names = ["optimizer", "backend", "size", "dtype"]
    repeat = (2, 30, 2.0)
    rounds = 1
    timeout = 300

    def setup(self, optimizer, backend, size, dtype):
        if backend == "reference" and size > 4_194_304:
            raise NotImplementedError("the NumPy reference takes seconds here")
        self.opt, self.grads = sixteen_bit_problem(optimizer, backend, size, dtype)

    def time_step(self, optimizer, backend, size, dtype):
        """``opt.step`` on a 16-bit parameter, float32 state."""
        self.opt.step(self.grads)


class TimeMasterCopy:
    params = [OPTIMIZERS, BACKENDS, SIZES]
    param_names = ["optimizer", "backend", "size"]
    repeat = (2, 30, 2.0)
    rounds = 1
    timeout = 300

    def setup(self, optimizer, backend, size):
        if backend == "reference" and size > 4_194_304:
            raise NotImplementedError("the NumPy reference takes seconds here")
        self.opt, self.grads, self.copies = master_copy_problem(optimizer, backend, size)

    def time_step(self, optimizer, backend, size):
        """``opt.step(grads, copy_to=copies)``: float32 master weights, their bfloat16 copy."""
        self.opt.step(self.grads, copy_to=self.copies)
