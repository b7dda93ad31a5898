"""fastopt.torch across processes: ZeroRedundancyOptimizer (sharded state) and DDP.

Two ways to train one model on several processes, both with a fastopt optimizer:

* **ZeRO-1** (``torch.distributed.optim.ZeroRedundancyOptimizer``): every rank computes the full
  gradient (here: DDP averages it), but each rank keeps optimizer state for, and steps, only its
  own shard of the parameters, with ``optimizer_class=fastopt.torch.Adam``; ZeRO then broadcasts
  each shard's new values to the other ranks. Optimizer memory per rank shrinks by the rank count.
* **DDP alone**: every rank steps the full model with its own ``fastopt.torch.Adam``; DDP has
  averaged the gradients, so every rank computes the same update.

Both must end with the parameters of single-process training with the same optimizer, whose
gradient is the mean of the ranks' gradients summed as DDP sums them: bit for bit with 2 ranks,
to 1e-12 (relative) with more. The script checks it (exit status 1 if not)::

    python examples/torch_distributed.py                   # 2 processes on this machine (loopback)
    python examples/torch_distributed.py --world-size 3 --steps 50

Across machines, start the same worker with ``torchrun`` on every machine, which sets RANK,
WORLD_SIZE, MASTER_ADDR and MASTER_PORT (the script uses them when present)::

    # on machine 0 (reachable at 10.0.0.1) and on machine 1, with --node-rank 0 and 1:
    torchrun --nnodes 2 --nproc-per-node 1 --node-rank 0 --master-addr 10.0.0.1 \\
        --master-port 29500 examples/torch_distributed.py --torchrun

(the gloo backend runs over TCP on CPUs; GLOO_SOCKET_IFNAME picks the network interface). Run
this way, the check against single-process training happens on rank 0.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel

import fastopt.torch

TIMEOUT = timedelta(seconds=60)  # every collective gives up after this, instead of hanging
BATCH, FEATURES = 32, 8


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)  # the same initial parameters in every process
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
    ).double()


def batches(steps: int):
    """The full batches of every step (the same in every process)."""
    generator = torch.Generator().manual_seed(1)
    return [
        (torch.randn(BATCH, FEATURES, generator=generator, dtype=torch.float64),
         torch.randn(BATCH, 1, generator=generator, dtype=torch.float64))
        for _ in range(steps)
    ]


OPTIONS = dict(lr=0.01, weight_decay=0.01, amsgrad=True)


def train_single_process(steps: int, world_size: int) -> list[torch.Tensor]:
    """The reference: one process, fastopt.torch.Adam, and the full batch's gradient computed as
    DDP computes it (each slice's gradient divided by the rank count, then summed in rank order),
    so that the comparison isolates the optimizer."""
    model = make_model()
    optimizer = fastopt.torch.Adam(model.parameters(), **OPTIONS)
    share = BATCH // world_size
    for x, y in batches(steps):
        total = [torch.zeros_like(p) for p in model.parameters()]
        for rank in range(world_size):
            mine = slice(rank * share, (rank + 1) * share)
            model.zero_grad()
            torch.nn.functional.mse_loss(model(x[mine]), y[mine]).backward()
            for t, p in zip(total, model.parameters()):
                t += p.grad / world_size
        for t, p in zip(total, model.parameters()):
            p.grad = t
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def train_distributed(rank: int, world_size: int, steps: int, mode: str) -> list[torch.Tensor]:
    """This rank's part: its slice of each batch, DDP for the gradients, then the optimizer."""
    model = DistributedDataParallel(make_model())
    if mode == "zero":
        optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=fastopt.torch.Adam, **OPTIONS)
    else:
        optimizer = fastopt.torch.Adam(model.parameters(), **OPTIONS)
    share = BATCH // world_size
    for x, y in batches(steps):
        mine = slice(rank * share, (rank + 1) * share)
        optimizer.zero_grad()
        # mean over this rank's rows; DDP averages the ranks' gradients = the full batch's mean
        torch.nn.functional.mse_loss(model(x[mine]), y[mine]).backward()
        optimizer.step()
    if mode == "zero":
        owned = len(optimizer.optim.state)
        print(f"[rank {rank}] ZeRO: this rank holds optimizer state for {owned} of "
              f"{len(list(model.parameters()))} parameters", flush=True)
    return [p.detach().clone() for p in model.module.parameters()]


def worker(rank: int, world_size: int, steps: int, port: int, results) -> None:
    """One process of a loopback run (started by torch.multiprocessing.spawn)."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size, timeout=TIMEOUT)
    try:
        for mode in ("zero", "ddp"):
            params = train_distributed(rank, world_size, steps, mode)
            if rank == 0:  # as NumPy arrays: a tensor in a queue would live in this process's memory
                results.put((mode, [t.numpy() for t in params]))
    finally:
        dist.destroy_process_group()


def compare(mode: str, params: list[torch.Tensor], reference: list[torch.Tensor], world_size: int) -> bool:
    """Bit-identical with 2 ranks. With more, the order in which gloo sums the ranks' gradients is
    not ours to reproduce, so a few ulp of difference (relative 1e-12) are allowed."""
    worst = max(((p - r).abs().max() / r.abs().max()).item() for p, r in zip(params, reference))
    print(f"{mode}: max relative difference to single-process training {worst:.1e}")
    return worst == 0.0 if world_size == 2 else worst <= 1e-12


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description="fastopt.torch with ZeroRedundancyOptimizer and DDP")
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--torchrun", action="store_true", help="started by torchrun (reads RANK, WORLD_SIZE, ...)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.torchrun:
        dist.init_process_group("gloo", timeout=TIMEOUT)  # env:// from torchrun
        rank, world_size = dist.get_rank(), dist.get_world_size()
        try:
            outcome = {mode: train_distributed(rank, world_size, args.steps, mode) for mode in ("zero", "ddp")}
        finally:
            dist.destroy_process_group()
        if rank != 0:
            return 0
    else:
        world_size = args.world_size
        context = mp.get_context("spawn")
        results = context.SimpleQueue()
        mp.spawn(worker, args=(world_size, args.steps, free_loopback_port(), results),
                 nprocs=args.world_size, join=True)
        outcome = {mode: [torch.from_numpy(a) for a in arrays] for mode, arrays in (results.get() for _ in range(2))}

    reference = train_single_process(args.steps, world_size)
    ok = all([compare(mode, params, reference, world_size)
              for mode, params in outcome.items()])
    print("OK: the distributed runs match single-process training" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
