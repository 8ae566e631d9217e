#!/usr/bin/python3
"""PyTorch DistributedDataParallel (gloo) on the workloads of bench/ddp.cpp, for bench/run:
mlp_big (1024-1024-1024-10 ReLU, f32, SGD 0.01, global batch 64: one step) and fashion (one
Fashion-MNIST epoch, 784-128-10 ReLU, Adam 1e-3, global batch 128, data loading not timed).

    bench/torch_ddp.py WORKLOAD [--processes 2] [--threads 1] [--steps 40]

Prints "result side=pytorch workload=... processes=N threads=T step_ms=..." (epoch time for fashion).
"""
import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import load_fashion  # noqa: E402 (bench/torch_train.py: the same data as bench_train)

FASHION = "/usr/share/datasets/fashion-mnist"


def run(rank, args):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(args.port)
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=args.processes)
    torch.manual_seed(1)
    world = args.processes
    if args.workload == "mlp_big":
        model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
        g = torch.Generator().manual_seed(1)
        x = torch.rand(64, 1024, generator=g)[rank * 64 // world:(rank + 1) * 64 // world]
        y = torch.randint(0, 10, (64,), generator=g)[rank * 64 // world:(rank + 1) * 64 // world]
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            loss_fn(ddp(x), y).backward()
            opt.step()

        for _ in range(5):
            step()
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        seconds = (time.perf_counter() - t0) / args.steps
    else:
        xs, ys = load_fashion(FASHION, True, torch.float32)
        model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.Adam(ddp.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        order = torch.randperm(len(xs), generator=torch.Generator().manual_seed(0))
        dist.barrier()
        t0 = time.perf_counter()
        for start in range(0, len(xs), 128):
            rows = order[start:start + 128]
            share = rows[rank * len(rows) // world:(rank + 1) * len(rows) // world]
            opt.zero_grad()
            loss_fn(ddp(xs[share]), ys[share]).backward()
            opt.step()
        seconds = time.perf_counter() - t0
    if rank == 0:
        print(f"result side=pytorch workload={args.workload} processes={world} threads={args.threads} "
              f"step_ms={seconds * 1e3:.4f}", flush=True)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["mlp_big", "fashion"])
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--port", type=int, default=29533)
    args = p.parse_args()
    mp.spawn(run, args=(args,), nprocs=args.processes, join=True)


if __name__ == "__main__":
    main()
