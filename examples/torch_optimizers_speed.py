"""How fast are fastopt.torch's SparseAdam, AdaBelief, ADOPT and ScheduleFreeAdamW next to the implementations they replace?

``python -m fastopt bench`` compares dense steps with ``torch.optim``; four of fastopt's optimizers
need another counterpart:

* **SparseAdam** against ``torch.optim.SparseAdam``, on the sparse COO gradient of an
  ``nn.Embedding(sparse=True)``: tables of 64 x 64, 4,096 x 64 and 65,536 x 64 float32 (4,096,
  262,144 and 4,194,304 elements) whose gradient names every row, and a 100,000 x 64 table with
  4,096 lookups (repeated words included, as in a real batch);
* **AdaBelief** against the authors' ``adabelief_pytorch.AdaBelief`` (``rectify=False``, the
  arithmetic fastopt has), on one float32 tensor of 4,096, 262,144 and 4,194,304 elements;
* **ADOPT** against the authors' ``adopt.ADOPT`` (torch-adopt, its for-loop path,
  ``foreach=False``, and its default ``foreach=None``), on the same tensors, past the first step
  (which only records the squared gradient).
* **ScheduleFreeAdamW** against the authors' ``schedulefree.AdamWScheduleFree`` with its default
  ``foreach=True`` (torch's multi-tensor ops) and with ``foreach=False``, both in train mode, on
  the same tensors. The package divides ``p.grad`` in place at each step (fastopt leaves it), so
  its timed steps see the gradient it left; that costs it nothing and keeps the values O(1).

Each ``optimizer.step()`` is timed alone (gradients set once), one torch thread, fastopt on the
Cython and the Numba backend; medians of ``--samples`` samples, each the best of three repeats.
The ratio is the other implementation's time over fastopt's. The machine's load average is
printed first: on a busy machine the absolute times mean little, the ratios a little more.

    pip install -e ".[torch]" adabelief-pytorch==0.2.1 torch-adopt==0.1.0 schedulefree==1.4.1
    python examples/torch_optimizers_speed.py [--samples 7] [--only sparse_adam|adabelief|adopt|schedule_free]
"""

import argparse
import os
import statistics
import timeit
import warnings

import torch

import fastopt.torch as ft


def median_step_us(step, elements: int, samples: int) -> float:
    number = max(1, int(2e6 // elements))  # about 2M elements per repeat
    step(), step(), step()  # the state exists, the kernels are loaded
    return statistics.median(min(timeit.repeat(step, number=number, repeat=3)) / number for _ in range(samples)) * 1e6


def sparse_adam(rows: int, width: int, lookups: int | None, samples: int) -> None:
    times = {}
    for name in ("cython", "numba", "torch.optim"):
        torch.manual_seed(0)
        embedding = torch.nn.Embedding(rows, width, sparse=True)
        words = torch.arange(rows) if lookups is None else torch.randint(0, rows, (lookups,))
        embedding(words).sum().backward()
        parameters = embedding.parameters()
        optimizer = torch.optim.SparseAdam(parameters) if name == "torch.optim" else ft.SparseAdam(parameters, backend=name)
        times[name] = median_step_us(optimizer.step, rows * width if lookups is None else lookups * width, samples)
    named = "every row" if lookups is None else f"{lookups:,} lookups"
    report(f"SparseAdam {rows:,} x {width} ({named})", times, "torch.optim")


def adabelief(n: int, samples: int) -> None:
    from adabelief_pytorch import AdaBelief

    times = {}
    for name in ("cython", "numba", "adabelief-pytorch"):
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(n))
        p.grad = torch.randn(n)
        if name == "adabelief-pytorch":
            optimizer = AdaBelief([p], rectify=False, print_change_log=False)
        else:
            optimizer = ft.AdaBelief([p], backend=name)
        times[name] = median_step_us(optimizer.step, n, samples)
    report(f"AdaBelief {n:,} elements", times, "adabelief-pytorch")


def adopt(n: int, samples: int) -> None:
    from adopt import ADOPT

    times = {}
    for name in ("cython", "numba", "torch-adopt", "torch-adopt foreach=None"):
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(n))
        p.grad = torch.randn(n)
        if name.startswith("torch-adopt"):
            optimizer = ADOPT([p], foreach=None if name.endswith("None") else False)
        else:
            optimizer = ft.ADOPT([p], backend=name)
        times[name] = median_step_us(optimizer.step, n, samples)
    report(f"ADOPT {n:,} elements", times, "torch-adopt")


def schedule_free(n: int, samples: int) -> None:
    from schedulefree import AdamWScheduleFree

    times = {}
    for name in ("cython", "numba", "schedulefree (foreach)", "schedulefree (for-loop)"):
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(n))
        p.grad = torch.randn(n)
        if name.startswith("schedulefree"):
            optimizer = AdamWScheduleFree([p], foreach=name.endswith("(foreach)"))
        else:
            optimizer = ft.ScheduleFreeAdamW([p], backend=name)
        optimizer.train()
        times[name] = median_step_us(optimizer.step, n, samples)
    report(f"ScheduleFreeAdamW {n:,} elements", times, "schedulefree (foreach)")


def report(label: str, times: dict, other: str) -> None:
    ratios = ", ".join(f"{backend} {times[other] / times[backend]:.2f}x" for backend in ("cython", "numba"))
    microseconds = ", ".join(f"{name} {value:,.1f}" for name, value in times.items())
    print(f"{label:<42} µs: {microseconds}  | {other} / fastopt: {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--only", choices=("sparse_adam", "adabelief", "adopt", "schedule_free"), default=None,
                        help="one comparison only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # adabelief-pytorch's notices about its defaults
    print(f"load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}, one thread")
    if args.only in (None, "sparse_adam"):
        for rows in (64, 4096, 65536):
            sparse_adam(rows, 64, None, args.samples)
        sparse_adam(100_000, 64, 4096, args.samples)
    for name, run in (("adabelief", adabelief), ("adopt", adopt), ("schedule_free", schedule_free)):
        if args.only in (None, name):
            for n in (4096, 262_144, 4_194_304):
                run(n, args.samples)


if __name__ == "__main__":
    main()
