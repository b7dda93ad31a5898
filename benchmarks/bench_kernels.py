"""Time one optimizer step on one array: the kernel alone, and through the public ``step()``.

One class per optimizer (``TimeAdam`` ...), each with two benchmarks over the same grid
(backend x size x dtype) and the same hyperparameters (``common.CASES``):

* ``time_kernel``: ``<name>_update(param, grad, state..., scalars...)`` called directly with every
  scalar precomputed: the arithmetic and memory traffic of the three twins, side by side. The
  kernel is the one fastopt runs for that backend (``fastopt._backends.get_kernel``).
* ``time_step``: ``opt.step([grad])``: the kernel plus what the public layer adds per call
  (validation of arrays and hyperparameters, bias corrections in float64, the state dict). The
  difference to ``time_kernel`` is that overhead; it matters at small sizes only.

Sizes run from 4,096 elements (in L1, call overhead dominates) to 33,554,432 (main memory,
bandwidth dominates). Compare backends at the same size and dtype; bytes moved per call are
``size * itemsize * arrays touched`` (e.g. Adam reads param, grad, exp_avg, exp_avg_sq and writes
three of them back).
"""

from .common import BACKENDS, DTYPES, SIZES, kernel_problem, step_problem


class _KernelAndStep:
    """Shared body of the per-optimizer classes (underscore: asv does not collect it)."""

    optimizer: str  # a key of common.CASES
    params = [BACKENDS, SIZES, DTYPES]
    param_names = ["backend", "size", "dtype"]
    # asv re-runs setup before every timed call (cheap here: the problem is cached), so each
    # sample is one call. At least 2 samples, at most 30, and no new sample after ~2 s: the NumPy
    # reference at 33.5M float64 takes about a second per call.
    repeat = (2, 30, 2.0)
    # One round (asv's default is 2, interleaved): there are 480 combinations, most of the cost
    # is starting a process and building arrays, and backends differ by factors, not percent.
    rounds = 1
    timeout = 300  # seconds per benchmark process; the largest setups allocate ~2 GB

    def setup(self, backend, size, dtype):
        self.kernel, self.arguments = kernel_problem(self.optimizer, backend, size, dtype)
        self.opt, self.grads = step_problem(self.optimizer, backend, size, dtype)

    def time_kernel(self, backend, size, dtype):
        """The kernel alone: flat arrays, scalars precomputed and cast, no checks."""
        self.kernel(*self.arguments)

    def time_step(self, backend, size, dtype):
        """The public ``step()``: validation, float64 scalars, the kernel."""
        self.opt.step(self.grads)


class TimeSGD(_KernelAndStep):
    """SGD with momentum 0.9: reads param, grad, momentum_buffer; writes param, momentum_buffer."""

    optimizer = "sgd"


class TimeAdagrad(_KernelAndStep):
    """Adagrad: reads param, grad, sum; writes param, sum."""

    optimizer = "adagrad"


class TimeRMSprop(_KernelAndStep):
    """RMSprop (plain): reads param, grad, square_avg; writes param, square_avg."""

    optimizer = "rmsprop"


class TimeAdam(_KernelAndStep):
    """Adam: reads param, grad, exp_avg, exp_avg_sq; writes param, exp_avg, exp_avg_sq."""

    optimizer = "adam"


class TimeAdamW(_KernelAndStep):
    """AdamW (decoupled weight decay 1e-2): the same traffic as Adam, one more multiply."""

    optimizer = "adamw"


class TimeAdadelta(_KernelAndStep):
    """Adadelta: reads param, grad, square_avg, acc_delta; writes param, square_avg, acc_delta."""

    optimizer = "adadelta"


class TimeAdamax(_KernelAndStep):
    """Adamax: reads param, grad, exp_avg, exp_inf; writes param, exp_avg, exp_inf."""

    optimizer = "adamax"


class TimeNAdam(_KernelAndStep):
    """NAdam: Adam's traffic, with Nesterov's look-ahead in the step."""

    optimizer = "nadam"


class TimeRAdam(_KernelAndStep):
    """RAdam at step 10 (rectified): Adam's traffic."""

    optimizer = "radam"


class TimeLion(_KernelAndStep):
    """Lion: reads param, grad, exp_avg; writes param, exp_avg."""

    optimizer = "lion"


class TimeRprop(_KernelAndStep):
    """Rprop: reads param, grad, prev, step_size; writes all four but grad."""

    optimizer = "rprop"


class TimeASGD(_KernelAndStep):
    """ASGD, averaging (t0 = 0): reads param, grad, ax; writes param, ax."""

    optimizer = "asgd"


class TimeAdaBelief(_KernelAndStep):
    """AdaBelief: Adam's traffic (reads param, grad, exp_avg, exp_avg_var; writes all but grad),
    with three divisions per element (optax's order)."""

    optimizer = "adabelief"


class TimeADOPT(_KernelAndStep):
    """ADOPT: Adam's traffic (reads param, grad, exp_avg, exp_avg_sq; writes all but grad), with
    one square root, one division and a clip per element."""

    optimizer = "adopt"
class TimeScheduleFreeAdamW(_KernelAndStep):
    """Schedule-Free AdamW (train mode): reads param (y), grad, z, exp_avg_sq; writes all but grad,
    with one division and one square root per element."""

    optimizer = "schedule_free_adamw"
