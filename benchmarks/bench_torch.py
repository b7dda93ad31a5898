"""fastopt.torch against torch.optim on a real model's parameter list (needs torch; n/a without).

``TimeTorchModel.time_step`` times one ``optimizer.step()`` of Adam (lr 1e-4, torch's other
defaults, float32, one torch thread) over the parameters of:

* ``many-small``: an MLP of 100 ``Linear(32, 32)`` layers, 200 tensors of 1,024 and 32 elements
  (per-tensor overhead decides: the issue asks fastopt.torch for 5x torch's fused Adam here);
* ``few-large``: 4 ``Linear(1024, 1024)`` layers, 8 tensors, 4.2M elements (memory bandwidth
  decides: the issue asks for at least torch's fused speed).

with the gradients ``kept`` between steps (``zero_grad(set_to_none=False)``) or ``new`` at every
step (``zero_grad()``, torch's default: backward allocates new tensors). For ``new``, ``setup``
gives every parameter a new gradient tensor; the asv runner re-runs ``setup`` before every timed
call of a benchmark that has one, so that assignment is not timed. The same models are in
``python -m fastopt bench`` (``--torch-models``) and ``examples/torch_speed.py``.

The models are defined here, not imported from fastopt, so this file measures any commit; one
without ``fastopt.torch`` (or without torch installed; ``asv.conf.json`` lists torch in its matrix)
shows n/a.
"""

import functools

MODELS = ["many-small", "few-large"]  # append-only
IMPLEMENTATIONS = ["fastopt.torch", "torch fused", "torch foreach"]
GRADIENTS = ["kept", "new"]
SEED_MODEL, SEED_GRADIENTS = 20_261_201, 20_261_202  # append-only


class _Problem:
    """A model, its optimizer after two steps (state created), and two sets of gradients."""

    def __init__(self, model: str, implementation: str):
        try:
            import torch
        except ImportError as exc:
            raise NotImplementedError(f"torch is not installed: {exc}") from None
        torch.set_num_threads(1)
        torch.manual_seed(SEED_MODEL)
        if model == "many-small":
            layers = [torch.nn.Linear(32, 32) for _ in range(100)]
        else:
            layers = [torch.nn.Linear(1024, 1024) for _ in range(4)]
        self.params = list(torch.nn.Sequential(*layers).parameters())
        generator = torch.Generator().manual_seed(SEED_GRADIENTS)
        self.sets = [[torch.randn(p.shape, generator=generator) for p in self.params] for _ in range(2)]
        self.turn = 0
        self.new_gradients()
        if implementation == "fastopt.torch":
            try:
                import fastopt.torch
            except ImportError as exc:
                raise NotImplementedError(f"fastopt.torch is not available: {exc}") from None
            self.optimizer = fastopt.torch.Adam(self.params, lr=1e-4)
        else:
            variant = {"torch fused": dict(fused=True), "torch foreach": dict(foreach=True)}[implementation]
            self.optimizer = torch.optim.Adam(self.params, lr=1e-4, **variant)
        self.optimizer.step()
        self.optimizer.step()

    def new_gradients(self):
        """Other gradient tensors for every parameter (the two sets alternate)."""
        self.turn ^= 1
        for p, g in zip(self.params, self.sets[self.turn]):
            p.grad = g


@functools.lru_cache(maxsize=1)
def problem(model: str, implementation: str) -> _Problem:
    return _Problem(model, implementation)


class TimeTorchModel:
    """One ``optimizer.step()`` over a torch model's parameters."""

    params = [MODELS, IMPLEMENTATIONS, GRADIENTS]
    param_names = ["model", "implementation", "gradients"]
    repeat = (5, 50, 4.0)

    def setup(self, model, implementation, gradients):
        self.problem = problem(model, implementation)
        if gradients == "new":
            self.problem.new_gradients()

    def time_step(self, model, implementation, gradients):
        self.problem.optimizer.step()


# ------------------------------------------------------------------------------------------------
# SparseAdam: an embedding table and the rows one batch looks up (n/a before fastopt.torch.SparseAdam)
# ------------------------------------------------------------------------------------------------
SPARSE_CASES = [  # rows x width (float32), and the rows one gradient names; append-only
    "100000x64, 4096 lookups",  # an embedding table: about 4 % of its rows, with repeats
    "64x64, every row",  # 4,096 elements
    "4096x64, every row",  # 262,144
    "65536x64, every row",  # 4,194,304
]
SPARSE_IMPLEMENTATIONS = ["fastopt.torch", "torch"]


@functools.lru_cache(maxsize=1)
def sparse_problem(case: str, implementation: str):
    try:
        import torch
    except ImportError as exc:
        raise NotImplementedError(f"torch is not installed: {exc}") from None
    torch.set_num_threads(1)
    torch.manual_seed(SEED_MODEL)
    table, named = case.split(", ")
    rows, width = map(int, table.split("x"))
    embedding = torch.nn.Embedding(rows, width, sparse=True)
    if named == "every row":
        words = torch.arange(rows)
    else:
        generator = torch.Generator().manual_seed(SEED_GRADIENTS)
        words = torch.randint(0, rows, (int(named.split()[0]),), generator=generator)
    embedding(words).sum().backward()  # one sparse COO gradient, kept for every step
    if implementation == "fastopt.torch":
        try:
            from fastopt.torch import SparseAdam
        except ImportError as exc:
            raise NotImplementedError(f"fastopt.torch.SparseAdam is not available: {exc}") from None
    else:
        SparseAdam = torch.optim.SparseAdam
    optimizer = SparseAdam(embedding.parameters(), lr=1e-3)
    optimizer.step()  # the state exists
    return embedding, optimizer


class TimeSparseAdam:
    """One ``optimizer.step()`` of SparseAdam on a table's sparse gradient (coalescing its
    repeated rows included, as torch.optim.SparseAdam does it)."""

    params = [SPARSE_CASES, SPARSE_IMPLEMENTATIONS]
    param_names = ["case", "implementation"]
    repeat = (5, 50, 4.0)

    def setup(self, case, implementation):
        self.optimizer = sparse_problem(case, implementation)[1]

    def time_step(self, case, implementation):
        self.optimizer.step()


# ------------------------------------------------------------------------------------------------
# Adafactor: one matrix, its factored second moments (n/a before fastopt.torch.Adafactor)
# ------------------------------------------------------------------------------------------------
ADAFACTOR_SHAPES = ["64x64", "512x512", "2048x2048", "256x256", "1024x1024"]  # float32; append-only
ADAFACTOR_IMPLEMENTATIONS = ["fastopt.torch cython", "fastopt.torch numba", "torch"]


@functools.lru_cache(maxsize=1)
def adafactor_problem(shape: str, implementation: str):
    try:
        import torch
    except ImportError as exc:
        raise NotImplementedError(f"torch is not installed: {exc}") from None
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(SEED_MODEL)
    rows, cols = map(int, shape.split("x"))
    weight = torch.nn.Parameter(torch.randn(rows, cols, generator=generator))
    weight.grad = torch.randn(rows, cols, generator=generator)
    if implementation == "torch":
        optimizer = torch.optim.Adafactor([weight], lr=1e-2)
    else:
        try:
            from fastopt.torch import Adafactor
        except ImportError as exc:
            raise NotImplementedError(f"fastopt.torch.Adafactor is not available: {exc}") from None
        optimizer = Adafactor([weight], lr=1e-2, backend=implementation.split()[-1])
    optimizer.step()  # the state exists (and Numba has compiled)
    return weight, optimizer


class TimeAdafactor:
    """One ``optimizer.step()`` of Adafactor (torch's defaults but lr 1e-2) on one float32 matrix:
    its norms, row and column means and the update, one thread."""

    params = [ADAFACTOR_SHAPES, ADAFACTOR_IMPLEMENTATIONS]
    param_names = ["shape", "implementation"]
    repeat = (5, 50, 4.0)

    def setup(self, shape, implementation):
        self.optimizer = adafactor_problem(shape, implementation)[1]

    def time_step(self, shape, implementation):
        self.optimizer.step()


# ------------------------------------------------------------------------------------------------
# LAMB: one matrix, its trust ratio (n/a before fastopt.torch.LAMB; torch.optim has no LAMB)
# ------------------------------------------------------------------------------------------------
LAMB_SHAPES = ["64x64", "512x512", "2048x2048"]  # float32; append-only
LAMB_IMPLEMENTATIONS = ["fastopt.torch cython", "fastopt.torch numba"]


@functools.lru_cache(maxsize=1)
def lamb_problem(shape: str, implementation: str):
    try:
        import torch
    except ImportError as exc:
        raise NotImplementedError(f"torch is not installed: {exc}") from None
    try:
        from fastopt.torch import LAMB
    except ImportError as exc:
        raise NotImplementedError(f"fastopt.torch.LAMB is not available: {exc}") from None
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(SEED_MODEL)
    rows, cols = map(int, shape.split("x"))
    weight = torch.nn.Parameter(torch.randn(rows, cols, generator=generator))
    weight.grad = torch.randn(rows, cols, generator=generator)
    optimizer = LAMB([weight], lr=1e-3, weight_decay=0.01, backend=implementation.split()[-1])
    optimizer.step()  # the state exists (and Numba has compiled)
    return weight, optimizer


class TimeLAMB:
    """One ``optimizer.step()`` of LAMB (optax's defaults, lr 1e-3, weight decay 0.01) on one
    float32 matrix: its moments, its two norms and the update, one thread."""

    params = [LAMB_SHAPES, LAMB_IMPLEMENTATIONS]
    param_names = ["shape", "implementation"]
    repeat = (5, 50, 4.0)

    def setup(self, shape, implementation):
        self.optimizer = lamb_problem(shape, implementation)[1]

    def time_step(self, shape, implementation):
        self.optimizer.step()


# ------------------------------------------------------------------------------------------------
# Muon: one matrix, Newton-Schulz (n/a before fastopt.torch.Muon)
# ------------------------------------------------------------------------------------------------
MUON_SHAPES = ["256x256", "1024x1024"]  # float32; append-only
MUON_IMPLEMENTATIONS = ["torch.optim bf16", "torch.optim no-bf16", "fastopt.torch cython", "fastopt.torch numba"]


@functools.lru_cache(maxsize=1)
def muon_problem(shape: str, implementation: str):
    try:
        import torch
    except ImportError as exc:
        raise NotImplementedError(f"torch is not installed: {exc}") from None
    if not hasattr(torch.optim, "Muon"):
        raise NotImplementedError("this torch has no torch.optim.Muon")
    try:
        from fastopt.cli.bench.workloads import _muon_step_in_dtype
        from fastopt.torch import Muon
    except ImportError as exc:
        raise NotImplementedError(f"fastopt.torch.Muon is not available: {exc}") from None
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(SEED_MODEL)
    rows, cols = map(int, shape.split("x"))
    weight = torch.nn.Parameter(torch.randn(rows, cols, generator=generator))
    weight.grad = torch.randn(rows, cols, generator=generator)
    if implementation.startswith("torch.optim"):
        optimizer = torch.optim.Muon([weight], lr=0.02)
        step = _muon_step_in_dtype(torch, optimizer) if implementation.endswith("no-bf16") else optimizer.step
    else:
        optimizer = Muon([weight], lr=0.02, backend=implementation.split()[-1])
        step = optimizer.step
    step()  # the state exists (and Numba has compiled)
    return weight, step


class TimeMuon:
    """One ``step()`` of Muon (torch's defaults, lr 0.02) on one float32 matrix, one thread:
    torch.optim.Muon as shipped (Newton-Schulz in bfloat16) and with its bfloat16 cast removed
    (float32, fastopt's arithmetic), fastopt.torch.Muon's Cython and Numba kernels."""

    params = [MUON_SHAPES, MUON_IMPLEMENTATIONS]
    param_names = ["shape", "implementation"]
    repeat = (3, 10, 10.0)
    timeout = 300

    def setup(self, shape, implementation):
        self.step = muon_problem(shape, implementation)[1]

    def time_step(self, shape, implementation):
        self.step()
