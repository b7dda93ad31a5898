"""L-BFGS: one ``step(closure)`` of ``fastopt.LBFGS`` (each backend) and of ``torch.optim.LBFGS``.

``TimeLBFGS.time_step`` times one step of 20 fixed-step iterations with 10 pairs of history
(lr 1, torch's other defaults) on ``f(x) = sum(c x^2) / 2``, ``c`` log-uniform in [1, 1e3], float32,
one thread: a closure of two passes, the optimizer's two-loop recursion and updates the rest. Every
timed call starts from the same point with an empty state (``number = 1``: asv runs ``setup``
before each sample). The same workload is ``python -m fastopt bench -o LBFGS``.

Defined here, not imported from fastopt's bench, so that this file measures any commit; one
without ``fastopt.LBFGS`` (or without torch, for the torch rows) shows n/a.
"""

import numpy as np

SIZES = [4096, 262_144]  # append-only
IMPLEMENTATIONS = ["reference", "numba", "cython", "torch.optim"]
OPTIONS = dict(lr=1, max_iter=20, history_size=10)
SEED = 20_261_205  # append-only


class TimeLBFGS:
    """One ``step(closure)`` from a fresh start (see the module docstring)."""

    params = [SIZES, IMPLEMENTATIONS]
    param_names = ["n", "implementation"]
    number = 1
    repeat = (5, 20, 10.0)

    def setup(self, n, implementation):
        rng = np.random.default_rng(SEED)
        start = rng.standard_normal(n).astype(np.float32)
        curvature = np.exp(rng.uniform(0, np.log(1e3), n)).astype(np.float32)
        if implementation == "torch.optim":
            try:
                import torch
            except ImportError as exc:
                raise NotImplementedError(f"torch is not installed: {exc}") from None
            torch.set_num_threads(1)
            x, c = torch.from_numpy(start), torch.from_numpy(curvature)
            self.optimizer = torch.optim.LBFGS([x], **OPTIONS)

            def closure():
                x.grad = c * x
                return 0.5 * torch.dot(x.grad, x)
        else:
            import fastopt

            if not hasattr(fastopt, "LBFGS"):
                raise NotImplementedError("this commit has no fastopt.LBFGS")
            fastopt.set_num_threads(1)
            x = start
            self.optimizer = fastopt.LBFGS([x], backend=implementation, **OPTIONS)

            def closure():
                grad = curvature * x
                return 0.5 * float(np.dot(grad, x)), [grad]

        self.closure = closure
        if implementation == "numba":  # compile outside the timing
            fastopt.LBFGS([np.ones(8, np.float32)], backend="numba", **OPTIONS).step(
                lambda: (1.0, [np.ones(8, np.float32)]))

    def time_step(self, n, implementation):
        self.optimizer.step(self.closure)
