#!/usr/bin/env python3
"""PyTorch side of Benchmarks/engine-suite.sh: builds the network of a NASLab graph JSON
(`naslab-bench suite --network NAME --graph-out FILE`) node by node out of torch modules, and
measures it with the same protocol as `naslab-bench suite`:

- train: samples/s of SGD steps (lr 0.01, momentum 0.9, cross-entropy) at the graph's batch,
  `--warmup` untimed steps first, then `--steps` steps or as many as fit in `--seconds` (default 5,
  at least 2);
- latency: median ms of `--repeats` batch-1 forward passes in eval mode under
  `torch.inference_mode()`, max(5, `--warmup`) untimed passes first.

Op semantics follow the engine (and its PyTorch fixtures, Tests/EngineTests/make_*fixtures.py):
images NCHW; text activations [N, D, L]; flat features [N, F]. Text inputs are K x 1 x L ids
(K > 1: EmbeddingBag mean per position, padding_idx 0); the benchmark's ids have no padding, so no
masks are needed (the engine's masks then keep every position).
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


class Node(nn.Module):
    def __init__(self, kind, attributes, in_shapes):
        super().__init__()
        self.kind = kind
        a = attributes
        c = in_shapes[0][0] if in_shapes else 0
        self.module = None
        if kind in ("conv2d", "conv1d"):
            cls = nn.Conv2d if kind == "conv2d" else nn.Conv1d
            self.module = cls(c, a["out"], a["kernel"], stride=a["stride"], padding=a["padding"],
                              dilation=a["dilation"], groups=a["groups"], bias=a["bias"])
        elif kind == "batchNorm":
            self.module = nn.BatchNorm2d(c, affine=a["affine"])
        elif kind == "activation":
            self.module = ACTIVATIONS[a["function"]]()
        elif kind == "linear":
            self.module = nn.Linear(in_shapes[0][0] * in_shapes[0][1] * in_shapes[0][2], a["out"], bias=a["bias"])
        elif kind == "maxPool":
            self.module = nn.MaxPool2d(a["kernel"], a["stride"], a["padding"])
        elif kind == "avgPool":
            self.module = nn.AvgPool2d(a["kernel"], a["stride"], a["padding"], count_include_pad=a["countIncludePadding"])
        elif kind == "dropout":
            self.module = nn.Dropout(a["rate"])
        elif kind == "embedding":
            self.bag = c > 1
            if self.bag:
                self.module = nn.EmbeddingBag(a["vocabulary"], a["dimension"], mode="mean", padding_idx=0)
            else:
                self.module = nn.Embedding(a["vocabulary"], a["dimension"], padding_idx=0)
            self.dimension = a["dimension"]
        elif kind == "layerNorm":
            self.module = nn.LayerNorm(c, elementwise_affine=a["affine"])
        elif kind == "selfAttention":
            self.module = nn.MultiheadAttention(c, a["heads"], batch_first=True)
        self.attributes = a

    def forward(self, xs):
        k, a = self.kind, self.attributes
        x = xs[0]
        if k in ("conv2d", "conv1d", "batchNorm", "activation", "maxPool", "avgPool", "dropout"):
            if k == "batchNorm" and x.dim() == 3:
                return self.module(x.unsqueeze(2)).squeeze(2)
            return self.module(x)
        if k == "linear":
            return self.module(x.reshape(x.shape[0], -1))
        if k == "globalAvgPool":
            return x.mean(dim=(2, 3))
        if k == "add":
            out = xs[0]
            for y in xs[1:]:
                out = out + y
            return out
        if k == "concat":
            return torch.cat(xs, dim=1)
        if k == "identity":
            return x
        if k == "flatten":
            return x.reshape(x.shape[0], -1)
        if k == "zero":
            s = a["stride"]
            return torch.zeros_like(x[:, :, ::s, ::s]) if x.dim() == 4 else torch.zeros_like(x[:, :, ::s])
        if k == "embedding":
            ids = x.long()                                   # [N, K, 1, L]
            n, bags, _, length = ids.shape
            if self.bag:
                flat = ids[:, :, 0, :].permute(0, 2, 1).reshape(n * length, bags)
                return self.module(flat).reshape(n, length, self.dimension).transpose(1, 2)
            return self.module(ids[:, 0, 0, :]).transpose(1, 2)      # [N, D, L]
        if k == "layerNorm":
            return self.module(x.transpose(1, 2)).transpose(1, 2)
        if k == "selfAttention":
            h = x.transpose(1, 2)
            out, _ = self.module(h, h, h, need_weights=False)
            return out.transpose(1, 2)
        if k == "sequenceMaxPool":
            return x.amax(dim=2)
        if k == "sequenceMeanPool":
            return x.mean(dim=2)
        raise ValueError(f"op {k} is not in the benchmark's translation")


class GraphNetwork(nn.Module):
    """The graph's nodes in topological order; node 0 is the input."""

    def __init__(self, inputs, modules):
        super().__init__()
        self.inputs = inputs
        self.nodes = nn.ModuleList(modules)

    def forward(self, x):
        values = [x]
        for inputs, node in zip(self.inputs[1:], self.nodes):
            values.append(node([values[i] for i in inputs]))
        return values[-1]


def build(graph):
    """Builds the network, giving each node its input shapes from a dry run in torch itself."""
    dims = graph["input_shape"]
    probe = torch.zeros(1, *dims) + (2 if graph["nodes"][1]["op"] == "embedding" else 0)
    values = [probe]
    modules = []
    for node in graph["nodes"][1:]:
        xs = [values[i] for i in node["inputs"]]
        shapes = [tuple(v.shape[1:]) + (1,) * (4 - v.dim()) for v in xs]
        module = Node(node["op"], node.get("attributes", {}), shapes)
        module.eval()
        with torch.no_grad():
            values.append(module(xs))
        modules.append(module)
    return GraphNetwork([n["inputs"] for n in graph["nodes"]], modules)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--graph", required=True)
    p.add_argument("--mode", choices=["train", "latency"], required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeats", type=int, default=30)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    spec = json.load(open(a.graph))
    graph, classes, batch = spec["graph"], spec["classes"], spec["train_batch"]
    model = build(graph)
    count = sum(p.numel() for p in model.parameters())
    if count != spec["parameters"]:
        raise SystemExit(f"translation of {spec['name']} has {count} parameters, NASLab's network {spec['parameters']}")
    dims = graph["input_shape"]
    vocabulary = spec.get("vocabulary")

    def inputs(n):
        if vocabulary:
            return torch.randint(2, vocabulary, (n, *dims)).float()
        return torch.randn(n, *dims)

    if a.mode == "train":
        warmup = 2 if a.warmup is None else a.warmup
        x, y = inputs(batch), torch.randint(0, classes, (batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        for _ in range(warmup):
            step()
        t = time.perf_counter()
        steps = 0
        while (steps < a.steps) if a.steps else (steps < 2 or time.perf_counter() - t < a.seconds):
            step()
            steps += 1
        print(f"pytorch {spec['name']} train threads {a.threads}: {steps * batch / (time.perf_counter() - t):.2f} samples/s")
    else:
        warmup = max(5, a.warmup or 5)
        x = inputs(1)
        model.eval()
        times = []
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            for _ in range(a.repeats):
                t = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t) * 1000)
        print(f"pytorch {spec['name']} latency threads {a.threads}: {statistics.median(times):.4f} ms")


if __name__ == "__main__":
    main()
