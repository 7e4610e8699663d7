#!/usr/bin/env python3
"""PyTorch side of Benchmarks/engine-vs-pytorch.sh: the same reference CNN and protocol as
`naslab-bench engine` (conv3x3 1->16, ReLU, conv3x3 16->32, ReLU, padding 1, global average
pool, linear 32->10; random inputs; SGD lr 0.01 momentum 0.9; NCHW float32)."""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--size", type=int, default=28)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    x = torch.randn(a.batch, 1, a.size, a.size)
    y = torch.randint(0, 10, (a.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    for _ in range(a.warmup):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    train = a.steps * a.batch / (time.perf_counter() - t)
    model.eval()
    with torch.no_grad():
        for _ in range(a.warmup):
            model(x)
        t = time.perf_counter()
        for _ in range(a.steps):
            model(x)
        forward = a.steps * a.batch / (time.perf_counter() - t)
    print(f"pytorch {torch.__version__} threads: {torch.get_num_threads()}, batch: {a.batch}")
    print(f"pytorch train samples/s: {train:.1f}")
    print(f"pytorch forward samples/s: {forward:.1f}")


if __name__ == "__main__":
    main()
