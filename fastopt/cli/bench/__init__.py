"""``python -m fastopt bench``: how fast is each optimizer, here, against the limit and torch?

An optimizer step is a stream over a few arrays, so once they leave the caches its speed limit is
memory bandwidth. For each optimizer, backend, size and dtype this command measures, in one
process and in interleaved rounds:

* **the kernel alone** (``<optimizer>_update`` of each backend, on flat arrays) and **the public
  step** (``opt.step(grads)``, with its checks and scalar arithmetic);
* **the in-place update ceiling** ``a[i] += s * b[i]`` over the same N and dtype (read a, read b,
  write a: the cheapest optimizer-shaped stream), to which it reports the ratio of effective
  bandwidth (bytes the algorithm must move / time);
* **torch.optim** (for-loop default, ``foreach``, ``fused`` where torch has it) on tensors sharing
  the same memory, when torch is installed;
* **many small tensors** (200 × 1,000 by default): a list of arrays, the same arrays in one flat
  buffer (:func:`fastopt.flatten`), one kernel call over all of them, and torch on 200 tensors;
* **torch models** (when torch is installed): ``fastopt.torch.Adam`` against
  ``torch.optim.Adam`` (``foreach``, ``fused``) stepping a real model's parameter list, an MLP of
  200 small tensors and 4 large linear layers, with gradients kept between steps or new at every
  step (their assignment is not timed);

then prints a table per scenario and a table of the project's performance targets, each with
its measured value and pass/miss. How the timing is made trustworthy is explained in
:mod:`fastopt.cli.bench.timing`; what each number means in :mod:`fastopt.cli.bench.report`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time

import numpy as np

from fastopt._rounding import bfloat16, is_low_precision, state_dtype

DEFAULT_SIZES = "4096,262144,4194304,33554432"
QUICK = dict(sizes="1024,4096", samples=3, slow_samples=2, sample_ms=2.0, small="20x100")


def _size(text: str) -> int:
    """``4096``, ``256Ki``, ``4Mi``, ``32Mi`` (powers of two) or ``1k``, ``2M`` (of ten)."""
    factors = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10**3, "M": 10**6}
    for suffix, factor in factors.items():
        if text.endswith(suffix):
            return int(text[: -len(suffix)].replace("_", "")) * factor
    return int(text.replace("_", ""))


def dense_optimizers() -> list[str]:
    """The optimizers the bench's workloads fit: dense gradients (SparseAdam takes sparse rows;
    its benchmark is ``benchmarks/bench_torch.py``'s ``TimeSparseAdam``)."""
    from fastopt import OPTIMIZERS

    return [name for name, cls in OPTIMIZERS.items() if not cls.algorithm.sparse]


def closure_optimizers() -> list[str]:
    """The optimizers stepped with a closure (L-BFGS): timed as one ``step(closure)`` on a cheap
    quadratic (:func:`closure_group`), not with the kernel and ceiling rows."""
    from fastopt import CLOSURE_OPTIMIZERS

    return list(CLOSURE_OPTIMIZERS)


def _names(text: str, choices, what: str, all_of=None) -> list[str]:
    """The names in ``text`` (any case); ``all`` is every choice, or every one of ``all_of``."""
    by_lower = {c.lower(): c for c in choices}
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        if item.lower() == "all":
            out.extend(c for c in (all_of or choices) if c not in out)
            continue
        if item.lower() not in by_lower:
            raise argparse.ArgumentTypeError(f"unknown {what} {item!r}; choose from {', '.join(choices)}")
        out.append(by_lower[item.lower()])
    return out


def _thread_counts(text: str) -> list[int]:
    counts = [int(t) for t in text.split(",") if t.strip()]
    if not counts or min(counts) < 1:
        raise SystemExit(f"bench: --threads needs positive thread counts, got {text!r}")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fastopt import BACKENDS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  python -m fastopt bench                              # everything, a few minutes\n"
        "  python -m fastopt bench -o adam,rmsprop --threads 1,2 --json bench.json\n"
        "  python -m fastopt bench --sizes 4Ki,256Ki --backends numba,cython --no-torch\n"
    )
    parser.add_argument("-o", "--optimizers", default="all", metavar="LIST",
                        help=f"comma-separated, from {','.join(dense_optimizers() + closure_optimizers())} (default: all), "
                        "or Muon (2-D only, timed on the squarest matrix of each size: -n 65536 is 256 x 256)")
    parser.add_argument("-b", "--backends", default="all", metavar="LIST",
                        help=f"comma-separated, from {','.join(BACKENDS)} (default: all that load here)")
    parser.add_argument("-n", "--sizes", default=None, metavar="LIST",
                        help=f"elements per parameter, e.g. 4096,256Ki,4Mi,32Mi (default: {DEFAULT_SIZES})")
    parser.add_argument("-d", "--dtypes", default="float32", metavar="LIST",
                        help="float32,float64,float16,bfloat16 (default: float32); 16-bit parameters have float32 state; "
                        "master-bfloat16, master-float16: float32 master weights writing a 16-bit copy (copy_to)")
    parser.add_argument("-t", "--threads", default="1", metavar="LIST",
                        help="thread counts for fastopt, numba and torch, e.g. 1,2; several are interleaved (default: 1)")
    parser.add_argument("--small", default=None, metavar="COUNTxSIZE",
                        help="the many-small-tensors scenario, e.g. 200x1000 (the default), or 'none'")
    parser.add_argument("--small-optimizers", default="Adam,RMSprop", metavar="LIST",
                        help="optimizers for the many-small-tensors scenario (default: Adam,RMSprop)")
    parser.add_argument("--torch-models", default="many-small,few-large", metavar="LIST",
                        help="torch models stepped by fastopt.torch and torch.optim: many-small, few-large, "
                        "or 'none' (default: both; needs torch)")
    parser.add_argument("--reference-max-size", type=_size, default=4 << 20, metavar="N",
                        help="skip the NumPy reference above N elements, where one call takes seconds "
                        "(default: 4Mi; 0 skips it everywhere)")
    parser.add_argument("--samples", type=int, default=None, help="samples per contestant, median reported (default: 7)")
    parser.add_argument("--slow-samples", type=int, default=None,
                        help="samples for a contestant whose single call outlasts a sample (default: 3)")
    parser.add_argument("--sample-ms", type=float, default=None,
                        help="target duration of one sample, k calls back to back (default: 30)")
    parser.add_argument("--no-torch", action="store_true", help="do not compare with torch.optim even if installed")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: sizes {QUICK['sizes']}, {QUICK['samples']} samples of "
                        f"{QUICK['sample_ms']:g} ms, small {QUICK['small']} (numbers are not meaningful)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write every measurement as JSON to PATH ('-': to stdout, tables then go to stderr)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random data (default: 0)")
    parser.add_argument("--width", type=int, default=None, help="table width (default: the terminal's, 170 in a pipe)")


class Settings:
    """The parsed command line, with --quick and the defaults applied."""

    def __init__(self, args: argparse.Namespace) -> None:
        from fastopt import OPTIMIZERS, available_backends

        quick = QUICK if args.quick else {}
        from fastopt import MATRIX_OPTIMIZERS

        # Muon only when named: its matrix products take seconds at the default sizes
        chosen = _names(args.optimizers, dense_optimizers() + closure_optimizers() + list(MATRIX_OPTIMIZERS), "optimizer",
                        all_of=dense_optimizers() + closure_optimizers())
        self.optimizers = [name for name in chosen if name not in closure_optimizers()]
        self.closure_optimizers = [name for name in chosen if name in closure_optimizers()]
        self.backends = [b for b in _names(args.backends, list(available_backends()), "backend")]
        self.sizes = [_size(s) for s in (args.sizes or quick.get("sizes", DEFAULT_SIZES)).split(",") if s]
        self.dtypes = _names(args.dtypes, ["float32", "float64", "float16", "bfloat16", "master-float16", "master-bfloat16"],
                             "dtype", all_of=["float32", "float64"])
        if any(d.endswith("bfloat16") for d in self.dtypes) and bfloat16() is None:
            raise SystemExit("bench: bfloat16 needs ml_dtypes (`pip install ml_dtypes`)")
        self.threads = _thread_counts(args.threads)
        small = args.small or quick.get("small", "200x1000")
        self.small = None if small.lower() == "none" else tuple(int(x) for x in small.lower().split("x"))
        # the many-small-tensors scenario times element-wise kernels over one flat buffer too
        elementwise = [name for name in dense_optimizers() if not OPTIMIZERS[name].algorithm.whole_tensor]
        self.small_optimizers = [o for o in _names(args.small_optimizers, elementwise, "optimizer")]
        from .workloads import TORCH_MODELS

        models = getattr(args, "torch_models", "many-small,few-large") or "none"
        self.torch_models = [] if models.lower() == "none" else _names(models, list(TORCH_MODELS), "torch model")
        self.reference_max_size = args.reference_max_size
        self.samples = args.samples or quick.get("samples", 7)
        self.slow_samples = args.slow_samples or quick.get("slow_samples", 3)
        self.sample_seconds = (args.sample_ms or quick.get("sample_ms", 30.0)) / 1e3
        self.quick = args.quick
        self.use_torch = not args.no_torch
        self.seed = args.seed
        if not (self.optimizers or self.closure_optimizers) or not self.backends or not self.sizes or not self.dtypes or not self.threads:
            raise SystemExit("bench: nothing to measure (an empty list of optimizers, backends, sizes, dtypes or threads)")
        if min(self.sizes) < 1 or min(self.threads) < 1 or (self.small and (len(self.small) != 2 or min(self.small) < 1)):
            raise SystemExit("bench: sizes, thread counts and the small scenario's COUNTxSIZE must be positive")

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items()}


# --------------------------------------------------------------------------------------------
# Building the contestants of one group
# --------------------------------------------------------------------------------------------
def _dtype(name: str) -> np.dtype:
    """A dtype by name; bfloat16 is ml_dtypes'."""
    return bfloat16() if name == "bfloat16" else np.dtype(name)


def single_tensor_group(name, dtype, n, settings, torch, rng):
    """One parameter of ``n`` elements: ceiling, each backend's kernel and opt.step, torch."""
    from functools import partial

    from . import workloads as w
    from .workloads import OPTIMIZERS
    from .timing import Contestant

    hp = w.hyperparameters(name)
    copy_dtype = _dtype(dtype.removeprefix("master-")) if dtype.startswith("master-") else None
    dtype = np.dtype(np.float32) if copy_dtype is not None else _dtype(dtype)  # master weights: float32
    param, grad = w.random_array(rng, n, dtype), w.random_array(rng, n, dtype)
    whole_tensor = OPTIMIZERS[name].algorithm.whole_tensor
    sixteen = is_low_precision(dtype)  # float16/bfloat16 parameters, float32 state: opt.step only
    if whole_tensor:  # Adafactor, LAMB, Muon: one matrix (Adafactor's factored statistics, Muon's products), stepped through opt.step only
        shape = w.matrix_shape(n)
        param, grad = param.reshape(shape), grad.reshape(shape)
        state = {}
    else:
        state = w.random_state(name, hp, n, dtype, rng)
    ceiling_dtype = state_dtype(dtype)  # the bandwidth ceiling is measured on float32 for 16-bit parameters
    a, b = w.random_array(rng, n, ceiling_dtype), w.random_array(rng, n, ceiling_dtype)
    ceiling_scale = a.dtype.type(1e-7)  # tiny, so a keeps its magnitude however often it runs

    calls = []  # (impl, kind, call, threads or None for "any": set before each sample)
    notes = []
    for backend in settings.backends:
        if backend == "reference" and n > settings.reference_max_size:
            notes.append(f"reference backend skipped above {settings.reference_max_size:,} elements (--reference-max-size)")
            continue
        for threads in settings.threads if not (whole_tensor or sixteen or copy_dtype) else ():  # a kernel takes its thread count
            args = w.positional(name, w.kernel_keywords(name, hp, param, grad, state, threads))
            calls.append((backend, "kernel", w.kernel_call(name, backend, args, threads), threads))
        optimizer = OPTIMIZERS[name]([param], backend=backend, **hp)  # its own state, as a user has
        if copy_dtype is not None:  # the step writes the 16-bit copy in the same pass
            copy = w.random_array(rng, n, copy_dtype).reshape(param.shape)
            calls.append((backend, "step", partial(optimizer.step, [grad], copy_to=[copy]), None))
        else:
            calls.append((backend, "step", partial(optimizer.step, [grad]), None))
    if whole_tensor:
        notes.append(f"{name}: one {param.shape[0]:,} x {param.shape[1]:,} matrix, timed through opt.step (its kernel "
                     "takes whole tensors, on one thread); bytes counted: " + w.optimizer_traffic(name, hp, dtype).describe())
    if sixteen:
        notes.append(f"{dtype.name} parameters and gradients with float32 state, timed through opt.step; the ceiling "
                     "is float32's; bytes counted: " + w.optimizer_traffic(name, hp, dtype).describe() +
                     "; torch.optim keeps its state in the parameters' dtype (fewer bytes)")
    if copy_dtype is not None:
        notes.append(f"float32 master weights with a {copy_dtype.name} copy written by the step (copy_to); torch: "
                     f"its float32 step, then copy_() into a {copy_dtype.name} tensor; bytes counted: "
                     + w.optimizer_traffic(name, hp, dtype).describe() + f", plus the copy ({copy_dtype.itemsize} bytes written)")
    if torch is not None and not hasattr(torch.optim, name):  # Lion: torch.optim has none
        notes.append(f"torch.optim has no {name}: no torch rows for it")
    elif torch is not None:
        for variant in w.torch_variants(name):
            setup = w.torch_optimizer(torch, name, hp, variant, [param], [grad])
            if setup.step is None:
                notes.append(f"torch.optim.{name} {variant}: {setup.error}")
            elif copy_dtype is not None:
                target = w.shared_tensor(torch, copy)
                calls.append((f"torch {variant} + copy", "torch", partial(_step_then_copy, setup, target), None))
            else:
                calls.append((f"torch {variant}", "torch", setup.step, None))
    contestants = []
    label = f"master-{copy_dtype.name}" if copy_dtype is not None else np.dtype(dtype).name
    base = dict(scenario="single", optimizer=name, dtype=label, n=n)
    for threads in settings.threads:
        ceiling = partial(w.ceiling_kernel(threads > 1), a, b, ceiling_scale)
        contestants.append(Contestant({**base, "threads": threads, "impl": "ceiling", "kind": "ceiling"}, ceiling, threads))
        for impl, kind, call, only in calls:
            if only in (None, threads):
                contestants.append(Contestant({**base, "threads": threads, "impl": impl, "kind": kind}, call, threads))
    traffic = w.optimizer_traffic(name, hp, dtype)
    copy_bytes = copy_dtype.itemsize if copy_dtype is not None else 0  # the copy, written

    def bytes_per_element(contestant):
        if contestant.key["kind"] == "ceiling":
            return w.ceiling_traffic(ceiling_dtype).bytes_per_element
        return traffic.bytes_per_element + copy_bytes

    return contestants, bytes_per_element, notes, traffic


def _step_then_copy(setup, target) -> None:
    """torch's way to the same result: the float32 step, then the rounded copy."""
    setup.step()
    target.copy_(setup.keep[0][0].detach())


LBFGS_BENCH = dict(lr=1, max_iter=20, history_size=10)
"""What a closure optimizer's bench step runs: 20 iterations of fixed steps, 10 pairs kept."""


def closure_group(name, dtype, n, settings, torch, rng):
    """One ``step(closure)`` of L-BFGS from the same start every time (the parameter and the state
    are reset before each call, untimed), on ``f(x) = sum(c x^2) / 2`` with ``c`` in [1, 1e3]:
    the closure costs two passes, the optimizer's 20 iterations the rest. fastopt's backends,
    fastopt.torch and torch.optim.LBFGS, one thread."""
    from functools import partial

    from fastopt import CLOSURE_OPTIMIZERS
    from .timing import Contestant

    start = rng.standard_normal(n).astype(dtype)
    curvature = np.exp(rng.uniform(0, np.log(1e3), n)).astype(dtype)
    calls, notes = [], []

    def numpy_setup(backend):
        param = start.copy()
        opt = CLOSURE_OPTIMIZERS[name]([param], backend=backend, **LBFGS_BENCH)

        def closure():
            grad = curvature * param
            return 0.5 * float(np.dot(grad, param)), [grad]

        def prepare():
            param[...] = start
            opt.state.clear()

        return partial(opt.step, closure), prepare

    for backend in settings.backends:
        if backend == "reference" and n > settings.reference_max_size:
            notes.append(f"reference backend skipped above {settings.reference_max_size:,} elements (--reference-max-size)")
            continue
        calls.append((backend, "step", *numpy_setup(backend)))
    if torch is not None:
        import fastopt.torch

        c = torch.from_numpy(curvature)
        for impl, cls in (("fastopt.torch", fastopt.torch.LBFGS), ("torch default", getattr(torch.optim, name))):
            x = torch.from_numpy(start.copy())
            opt = cls([x], **LBFGS_BENCH)

            def closure(x=x):
                x.grad = c * x
                return 0.5 * torch.dot(x.grad, x)

            def prepare(x=x, opt=opt):
                x.copy_(torch.from_numpy(start))
                opt.state.clear()

            calls.append((impl, "torch" if impl.startswith("torch") else "step", partial(opt.step, closure), prepare))
    base = dict(scenario="closure", optimizer=name, dtype=np.dtype(dtype).name, n=n)
    contestants = [Contestant({**base, "threads": threads, "impl": impl, "kind": kind}, call, threads, prepare=prepare)
                   for threads in settings.threads for impl, kind, call, prepare in calls]
    notes.append(f"{name}: one step(closure) of {LBFGS_BENCH} from the same start, on sum(c x^2)/2 with c in [1, 1e3] "
                 "(a closure of two passes); the state is cleared before each call, untimed")
    return contestants, (lambda contestant: 0), notes, None


def small_tensors_group(name, dtype, count, size, settings, torch, rng):
    """``count`` parameters of ``size`` elements: a list, one flat buffer, raw kernels, torch."""
    from functools import partial

    from fastopt import OPTIMIZERS, flatten
    from . import workloads as w
    from .timing import Contestant

    hp = w.hyperparameters(name)
    params = [w.random_array(rng, size, dtype) for _ in range(count)]
    grads = [w.random_array(rng, size, dtype) for _ in range(count)]
    flat = flatten(params)
    for view, g in zip(flat.grads, grads):
        view[...] = g
    total = count * size
    one_call_state = w.random_state(name, hp, total, dtype, rng)
    per_array_states = [w.random_state(name, hp, size, dtype, rng) for _ in params]

    def loop(call_list):
        for call in call_list:
            call()

    calls = []  # (impl, kind, call, threads or None for "any")
    for backend in settings.backends:
        separate = OPTIMIZERS[name](params, backend=backend, **hp)
        calls.append((backend, "step separate", partial(separate.step, grads), None))
        for threads in settings.threads:
            if backend != "reference":
                kernels = [
                    w.kernel_call(name, backend, w.positional(name, w.kernel_keywords(name, hp, p, g, s, threads)), threads)
                    for p, g, s in zip(params, grads, per_array_states)
                ]
                calls.append((backend, "kernel loop", partial(loop, kernels), threads))
            one_call = w.positional(name, w.kernel_keywords(name, hp, flat.param, flat.grad, one_call_state, threads))
            calls.append((backend, "kernel one call", w.kernel_call(name, backend, one_call, threads), threads))
        flat_optimizer = OPTIMIZERS[name]([flat.param], backend=backend, **hp)
        calls.append((backend, "step flat", partial(flat_optimizer.step, [flat.grad]), None))
    notes = []
    if torch is not None and not hasattr(torch.optim, name):  # Lion: torch.optim has none
        notes.append(f"torch.optim has no {name}: no torch rows for it")
    elif torch is not None:
        for variant in w.TORCH_VARIANTS:
            setup = w.torch_optimizer(torch, name, hp, variant, params, grads)
            if setup.step is None:
                notes.append(f"torch.optim.{name} {variant}: {setup.error}")
            else:
                calls.append((f"torch {variant}", "torch", setup.step, None))
    base = dict(scenario="small", optimizer=name, dtype=np.dtype(dtype).name, n=size, count=count)
    contestants = [
        Contestant({**base, "threads": threads, "impl": impl, "kind": kind}, call, threads)
        for threads in settings.threads
        for impl, kind, call, only in calls
        if only in (None, threads)
    ]
    traffic = w.optimizer_traffic(name, hp, dtype)
    return contestants, (lambda contestant: traffic.bytes_per_element), notes, traffic


def torch_model_group(model, settings, torch):
    """One torch model: fastopt.torch.Adam and torch.optim.Adam (foreach, fused), gradients kept
    or new at every step; ``optimizer.step()`` alone is timed."""
    from . import workloads as w
    from .timing import Contestant

    contestants = []
    for gradients in w.GRADIENT_MODES:
        for impl in w.TORCH_MODEL_IMPLS:
            setup = w.torch_model_setup(torch, model, impl, gradients)
            key = dict(scenario="torch-model", optimizer="Adam", dtype="float32", model=model, gradients=gradients,
                       n=setup.elements, tensors=setup.tensors, impl=impl, kind="torch" if impl.startswith("torch") else "step")
            for threads in settings.threads:
                contestant = Contestant({**key, "threads": threads}, setup.step, threads, prepare=setup.prepare)
                contestant.keep = setup.keep  # the model and optimizer live as long as the contestant
                contestants.append(contestant)
    traffic = w.optimizer_traffic("Adam", w.hyperparameters("Adam"), np.float32)
    return contestants, (lambda contestant: traffic.bytes_per_element), [], traffic


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------
def _import_torch(settings):
    if not settings.use_torch:
        return None, "not compared (--no-torch)"
    try:
        import torch
    except ImportError as exc:
        return None, f"not installed ({exc}): torch columns are empty; pip install torch to compare"
    return torch, torch.__version__


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform()}


def _estimate_bytes(plan_item, settings) -> int:
    """Rough peak memory of one group (arrays of every contestant), to skip what cannot fit."""
    scenario, name, dtype, n = plan_item[:4]
    if scenario == "small":
        return 0
    itemsize = 4 if dtype.startswith("master-") else _dtype(dtype).itemsize
    if scenario == "closure":  # each contestant keeps its last step's history: 2 x 10 pairs and a few more
        return (len(settings.backends) + 2) * (2 * LBFGS_BENCH["history_size"] + 6) * n * itemsize
    arrays = 2 + 4 + 2 + 3 * (len(settings.backends) + 3)  # p, g, kernel state, ceiling, states
    return arrays * n * itemsize


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fastopt import __version__
    from . import report, timing

    control = timing.ThreadControl(_thread_counts(args.threads))
    control.before_loading()  # before any compiled kernel (or torch) is imported
    settings = Settings(args)
    to_stdout = args.json == "-"
    width = args.width or (int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS") else None)
    console = Console(stderr=to_stdout, width=width)
    if width is None and not console.is_terminal:
        console = Console(stderr=to_stdout, width=170)
    status = Console(stderr=True)

    torch, torch_note = _import_torch(settings)
    control.torch = torch
    try:
        import numba

        numba_version = numba.__version__
        if max(settings.threads) > numba.config.NUMBA_NUM_THREADS:
            raise SystemExit(f"bench: --threads {max(settings.threads)} exceeds numba's maximum here ({numba.config.NUMBA_NUM_THREADS})")
    except ImportError as exc:
        numba_version = f"not importable ({exc})"

    plan = [("single", name, dtype, n) for name in settings.optimizers for dtype in settings.dtypes for n in settings.sizes]
    wide = [dtype for dtype in settings.dtypes if dtype in ("float32", "float64")]  # L-BFGS and the flat buffers: not 16-bit
    plan += [("closure", name, dtype, n) for name in settings.closure_optimizers for dtype in wide for n in settings.sizes]
    if settings.small:
        count, size = settings.small
        plan += [("small", name, dtype, size, count) for name in settings.small_optimizers for dtype in wide]
    if torch is not None:
        plan += [("torch-model", "Adam", "float32", 0, model) for model in settings.torch_models]

    load_before = timing.load_average()
    rng = np.random.default_rng(settings.seed)
    records, notes, group_loads, traffic_lines = [], [], [], {}
    start_all = timing.cpu_snapshot()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=status, transient=True, disable=not status.is_terminal)
    with progress:
        overall = progress.add_task("groups", total=len(plan))
        current = progress.add_task("", total=1)
        for item in plan:
            scenario, name, dtype, n = item[:4]
            if scenario in ("single", "closure"):
                label = f"{name} {dtype} N={n:,}"
            elif scenario == "small":
                label = f"{name} {dtype} {item[4]}×{n:,}"
            else:
                label = f"torch model {item[4]}"
            available = _available_memory()
            if available is not None and _estimate_bytes(item, settings) > 0.7 * available:
                notes.append(f"skipped {label}: needs about {_estimate_bytes(item, settings) / 1e9:.1f} GB, {available / 1e9:.1f} GB available")
                progress.advance(overall)
                continue
            if not status.is_terminal:
                status.print(f"bench: measuring {label}", highlight=False)
            progress.update(current, description=f"{label}: warming up", completed=0)
            if scenario == "single":
                contestants, bytes_of, group_notes, traffic = single_tensor_group(name, dtype, n, settings, torch, rng)
            elif scenario == "closure":
                contestants, bytes_of, group_notes, traffic = closure_group(name, dtype, n, settings, torch, rng)
            elif scenario == "small":
                contestants, bytes_of, group_notes, traffic = small_tensors_group(name, dtype, item[4], n, settings, torch, rng)
            else:
                contestants, bytes_of, group_notes, traffic = torch_model_group(item[4], settings, torch)
            notes.extend(note for note in group_notes if note not in notes)
            if traffic is not None:
                traffic_lines[name] = f"{name}: {traffic.describe()} ({traffic.arrays} arrays)"
            before = timing.cpu_snapshot()
            for contestant in contestants:
                timing.calibrate(contestant, control, settings.sample_seconds, settings.samples, settings.slow_samples)
            progress.update(current, description=f"{label}: sampling", total=settings.samples * len(contestants), completed=0)
            timing.measure(contestants, control, settings.samples, advance=lambda: progress.advance(current))
            load = timing.others_load(before, timing.cpu_snapshot())
            group_loads.append({"group": label, "others_cpu": load})
            for contestant in contestants:
                elements = contestant.key["n"] * contestant.key.get("count", 1)
                records.append(report.record(contestant, bytes_of(contestant), elements))
            del contestants
            gc.collect()
            progress.advance(overall)
    others_overall = timing.others_load(start_all, timing.cpu_snapshot())
    report.add_ratios(records)
    targets = report.evaluate_targets(records, settings.optimizers)

    # ---- the report -------------------------------------------------------------------------
    from fastopt import _backends

    backends_text = ", ".join(settings.backends)
    if "cython" in settings.backends and hasattr(_backends, "cython_build"):
        backends_text = backends_text.replace("cython", f"cython ({_backends.cython_build()} build)")
    header = [
        f"fastopt {__version__} bench on {_machine()['cpu']} ({os.cpu_count()} logical CPUs), "
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba_version}, torch {torch_note}",
        f"backends: {backends_text}",
        f"threads {','.join(map(str, settings.threads))}: " + "; ".join(control.notes + ["numba.set_num_threads", "torch.set_num_threads" if torch else "no torch"]),
        f"timing: median of {settings.samples} interleaved samples of ~{settings.sample_seconds * 1e3:g} ms "
        f"(k calls back to back; {settings.slow_samples} samples when one call is longer), seed {settings.seed}",
    ]
    if settings.quick:
        header.append("[yellow]--quick: a smoke run; these numbers are not measurements[/yellow]")
    for line in header:
        console.print(line, highlight=False)
    single = [r for r in records if r["scenario"] == "single"]
    if single:
        console.print(report.single_table(
            records, settings.threads,
            "One parameter of N elements: kernel alone and opt.step (fastest kernel ◂)"))
        console.print(
            "ns/elem, GB/s and × ceiling are from the kernel time (torch: from step()). "
            "× torch = torch's step time / this step time, against torch fused where it exists, else torch's fastest.",
            highlight=False, style="dim",
        )
    if any(r["scenario"] == "closure" for r in records):
        console.print(report.closure_table(
            records, settings.threads, "Closure optimizers: one step(closure), 20 iterations (see the note)"))
        console.print("× torch = torch.optim's step time / this step time.", highlight=False, style="dim")
    small = [r for r in records if r["scenario"] == "small"]
    if small:
        count, size = settings.small
        console.print(report.small_table(
            records, settings.threads, f"Many small tensors: {count} parameters × {size:,} elements, one step over all"))
        console.print("× torch = torch's step time / this time (torch fused where it exists, else its fastest); "
                      "÷ one call = this time / one kernel call over all the elements (same backend).",
                      highlight=False, style="dim")
    models = [r for r in records if r["scenario"] == "torch-model"]
    if models:
        from .workloads import GRADIENT_MODES, TORCH_MODELS

        console.print(report.torch_models_table(
            records, settings.threads, "Torch models: one optimizer.step() over a model's parameters (Adam, float32)"))
        console.print("; ".join(f"{name}: {text}" for name, text in TORCH_MODELS.items()) + ". Gradients "
                      + "; ".join(f"{mode}: {text}" for mode, text in GRADIENT_MODES.items())
                      + ". × fused = torch fused's step time / this step time.", highlight=False, style="dim")
    console.print("GB/s counts the bytes the algorithm must move per element: " + "; ".join(traffic_lines.values())
                  + "; ceiling a += s*b: reads a, b; writes a.", highlight=False, style="dim")
    if settings.optimizers:  # the targets are the element-wise optimizers' (none is L-BFGS's)
        console.print(report.targets_table(targets, "Targets (the project's issue), computed from this run"))
    for note in notes:
        console.print(f"note: {note}", highlight=False, style="dim")
    busiest = max((g for g in group_loads if g["others_cpu"] is not None), key=lambda g: g["others_cpu"], default=None)
    load_text = (f"load average before the run {load_before:.2f}; " if load_before is not None else "")
    if others_overall is not None:
        load_text += f"other processes used {others_overall:.2f} cores on average while measuring"
        if busiest is not None:
            load_text += f" (most: {busiest['others_cpu']:.2f} during {busiest['group']})"
    busy = busiest is not None and busiest["others_cpu"] > 0.25
    if busy:
        console.print(f"[red]busy machine[/red]: {load_text}; rerun when it is quiet before trusting these numbers", highlight=False)
    else:
        console.print(load_text, highlight=False, style="dim")

    if args.json:
        document = {
            "fastopt": __version__,
            "arguments": {k: v for k, v in vars(args).items() if not callable(v)},
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": _machine(),
            "versions": {"numba": numba_version, "torch": torch_note},
            "backends": backends_text,
            "settings": settings.as_dict(),
            "threads": control.notes,
            "load": {"load_average_before": load_before, "others_cpu_overall": others_overall, "groups": group_loads, "busy": busy},
            "traffic": traffic_lines,
            "notes": notes,
            "results": records,
            "targets": targets,
        }
        text = json.dumps(document, indent=1)
        if to_stdout:
            sys.stdout.write(text + "\n")
        else:
            with open(args.json, "w") as out:
                out.write(text + "\n")
            console.print(f"wrote {args.json}", highlight=False)
    return 0
