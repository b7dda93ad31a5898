"""How fast is ``fastopt.torch.Adam`` next to ``torch.optim.Adam(fused=True)`` on CPU?

Times ``optimizer.step()`` alone (gradients set once, outside the timing) on two float32 models:

* **many small tensors**: an MLP of 100 ``Linear(32, 32)`` layers, 200 tensors of 1,024 and 32
  elements (like the biases, norms and small projections that make up much of a real model);
* **few large tensors**: 4 ``Linear(1024, 1024)`` layers, 8 tensors, 4.2M elements.

The many-small model is timed twice: with the same gradient tensors at every step (as with
``zero_grad(set_to_none=False)``) and with new gradient tensors at every step (the default
``zero_grad()``, after which backward allocates new ones; here they are assigned before each
step, outside the timed region). fastopt reads the gradients where they are in both cases.

Each optimizer steps its own copy of the model; the two are timed in turns (A B A B ...),
``k`` steps per sample, and the medians of the samples are compared. One torch thread
(``torch.set_num_threads(1)``) and fastopt's default of one thread. The machine's load average is
printed first: on a busy machine the absolute times mean little, the ratio a little more.

    python examples/torch_speed.py [--samples 9]
"""

import argparse
import copy
import os
import statistics
import time

import torch

import fastopt.torch


def many_small() -> torch.nn.Module:
    return torch.nn.Sequential(*[torch.nn.Linear(32, 32) for _ in range(100)])


def few_large() -> torch.nn.Module:
    return torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(4)])


def prepared(model: torch.nn.Module, make_optimizer, fresh_gradients: bool):
    """A copy of ``model`` with random gradients, an optimizer that has taken two steps (state
    created), and a function ``run(k)`` that makes k steps and returns the seconds spent in
    ``optimizer.step()`` alone.

    ``fresh_gradients=False``: the same ``.grad`` tensors at every step, as with
    ``zero_grad(set_to_none=False)``. ``True``: other gradient tensors at every step (two sets,
    alternating), as after the default ``zero_grad()``, when backward allocates new ones; the
    assignments ``p.grad = g`` happen outside the timed region (backward would make them)."""
    model = copy.deepcopy(model)
    params = list(model.parameters())
    generator = torch.Generator().manual_seed(0)
    sets = [[torch.randn(p.shape, generator=generator) for p in params] for _ in range(2)]
    for p, g in zip(params, sets[0]):
        p.grad = g
    optimizer = make_optimizer(params)
    optimizer.step()
    optimizer.step()
    clock = time.perf_counter

    if not fresh_gradients:
        def run(k: int) -> float:
            start = clock()
            for _ in range(k):
                optimizer.step()
            return clock() - start
        return run

    turn = [0]

    def run(k: int) -> float:
        spent = 0.0
        for _ in range(k):
            turn[0] ^= 1
            for p, g in zip(params, sets[turn[0]]):
                p.grad = g
            start = clock()
            optimizer.step()
            spent += clock() - start
        return spent

    return run


def compare(model: torch.nn.Module, samples: int, fresh_gradients: bool) -> dict:
    contestants = {
        "torch.optim.Adam(fused=True)": prepared(model, lambda ps: torch.optim.Adam(ps, lr=1e-4, fused=True), fresh_gradients),
        "fastopt.torch.Adam": prepared(model, lambda ps: fastopt.torch.Adam(ps, lr=1e-4), fresh_gradients),
    }
    # calibrate k so that one sample of the slower one takes ~40 ms
    slowest = max(run(3) for run in contestants.values()) / 3
    k = max(1, int(0.04 / slowest))
    times = {name: [] for name in contestants}
    for _ in range(samples):
        for name, run in contestants.items():
            times[name].append(run(k) / k)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    cases = (
        ("many small, kept gradients", many_small, False),
        ("many small, new gradients", many_small, True),
        ("few large (8 tensors, 4.2M)", few_large, False),
    )
    for label, build, fresh_gradients in cases:
        torch.manual_seed(0)
        medians = compare(build(), args.samples, fresh_gradients)
        torch_time, fastopt_time = medians["torch.optim.Adam(fused=True)"], medians["fastopt.torch.Adam"]
        print(
            f"{label:<30} torch fused {torch_time * 1e6:9.1f} us   fastopt {fastopt_time * 1e6:9.1f} us   "
            f"speed-up {torch_time / fastopt_time:5.2f}x"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
