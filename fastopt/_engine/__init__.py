"""The step engine: what every optimizer and both front ends share.

A step flows through four stages, each in one module:

1. **groups -> validated plans** (:mod:`.plan`): a front end checks each parameter group's
   hyperparameters with the optimizer's :class:`~.algorithm.Algorithm` and keeps a
   :class:`~.plan.Plan` while they stay the same;
2. **per-step scalars** (:mod:`.algorithm`, cached in the plan): bias corrections, step sizes and
   ``1 - beta`` computed once per step in float64 and cast to the arrays' dtype;
3. **the kernels** (:mod:`.kernels`): one call per group on the fast path, one per parameter on
   the careful path (:mod:`.step`), with every check made before anything changes (a sparse
   gradient's rows are gathered, stepped and written back: :mod:`.rows`);
4. **state**: counters advanced by the algorithm, buffers created by the front end.

``fastopt.Optimizer`` (NumPy arrays, :mod:`fastopt._optimizer`) and the optimizers of
:mod:`fastopt.torch` (tensors) are two thin front ends over it.
"""

from .algorithm import Algorithm, cast_numbers, moment_scalars, weight_decay_scalars
from .kernels import Kernels, kernels_for
from .plan import Plan
from .step import EMPTY, Engine

__all__ = ["EMPTY", "Algorithm", "Engine", "Kernels", "Plan", "cast_numbers", "kernels_for", "moment_scalars", "weight_decay_scalars"]
