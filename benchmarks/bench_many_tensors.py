"""A model of many small tensors: where a step's time goes when arrays are small.

Real models have hundreds of small parameters (biases, norm scales). Stepping 200 arrays of 1,000
float32 moves only 200,000 elements, yet one ``opt.step`` pays per-array Python work 200 times
(checks, scalars, a kernel call). ``fastopt.flatten`` puts the same parameters in one buffer, so a
step is one check and one kernel call over 200,000 contiguous elements: the same bits, faster.

* ``TimeManyTensors.time_step``: ``opt.step(grads)`` over 200 separate arrays.
* ``TimeManyTensorsFlat.time_step``: the same model after ``fastopt.flatten``: one buffer, one
  call. "n/a" for commits before ``flatten`` existed.
"""

import functools

import fastopt

from .common import BACKENDS, OPTIMIZER_NAMES, SEED_GRAD, SEED_PARAM, make_optimizer, random_array

TENSORS, TENSOR_SIZE, TENSOR_DTYPE = 200, 1_000, "float32"  # append-only


def model_arrays(seed: int) -> list:
    """200 arrays of 1,000 float32, each with its own random values."""
    return [random_array(TENSOR_SIZE, TENSOR_DTYPE, seed + index) for index in range(TENSORS)]


@functools.lru_cache(maxsize=1)
def separate_problem(optimizer: str, backend: str):
    """``(optimizer, grads)`` over 200 separate arrays, after one warm-up step."""
    opt = make_optimizer(optimizer, backend, model_arrays(SEED_PARAM))
    grads = model_arrays(SEED_GRAD)
    opt.step(grads)  # compiles the kernel, creates the state
    return opt, grads


@functools.lru_cache(maxsize=1)
def flat_problem(optimizer: str, backend: str):
    """``(optimizer, grads)`` over the same model flattened into one buffer, after one warm-up step."""
    flatten = getattr(fastopt, "flatten", None)
    if flatten is None:
        raise NotImplementedError("fastopt.flatten does not exist in this version")
    flat = flatten(model_arrays(SEED_PARAM))
    for view, grad in zip(flat.grads, model_arrays(SEED_GRAD)):
        view[...] = grad  # where a model would write its gradients
    opt = make_optimizer(optimizer, backend, [flat.param])
    grads = [flat.grad]
    opt.step(grads)  # compiles the kernel, creates the state
    return opt, grads


class TimeManyTensors:
    """One ``step()`` over 200 parameters of 1,000 float32 each."""

    params = [OPTIMIZER_NAMES, BACKENDS]
    param_names = ["optimizer", "backend"]
    repeat = (5, 50, 2.0)

    def setup(self, optimizer, backend):
        self.opt, self.grads = separate_problem(optimizer, backend)

    def time_step(self, optimizer, backend):
        """200 arrays: 200 validations and 200 kernel calls."""
        self.opt.step(self.grads)


class TimeManyTensorsFlat:
    """The same 200 parameters after ``fastopt.flatten``: one buffer, one ``step()``."""

    params = [OPTIMIZER_NAMES, BACKENDS]
    param_names = ["optimizer", "backend"]
    repeat = (5, 50, 2.0)

    def setup(self, optimizer, backend):
        self.opt, self.grads = flat_problem(optimizer, backend)

    def time_step(self, optimizer, backend):
        """One buffer of 200,000 elements: one validation and one kernel call."""
        self.opt.step(self.grads)
