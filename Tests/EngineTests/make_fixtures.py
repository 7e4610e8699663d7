#!/usr/bin/env python3
"""Writes PyTorch reference fixtures for the Swift engine tests.

Run from the repository root with the project venv (torch 2.13 CPU):

    /work/venv/bin/python Tests/EngineTests/make_fixtures.py

Output: Tests/EngineTests/Fixtures/reference_network.json (committed; CI does not need torch).

The network mirrors `fixtureGraph()` in PyTorchFixtureTests.swift node by node, and tensors are
stored under the engine's names ("<node>/weight", "<node>/bias", "<node>/running_mean",
"<node>/running_var"). All values are float32 written with full precision.
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_num_threads(1)


class Reference(nn.Module):
    def __init__(self):
        super().__init__()
        # No bias before BN: its exact gradient is 0, and Adam would amplify float noise.
        self.conv1 = nn.Conv2d(3, 8, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=2, dilation=2, groups=2, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, stride=1, padding=1, groups=8, bias=True)
        self.pw = nn.Conv2d(8, 12, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(12, affine=False)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))                 # conv1, bn1, relu1
        x = F.hardswish(self.bn2(self.conv2(x)))            # conv2 (s2, d2, g2), bn2, hswish
        y = F.max_pool2d(x, 3, stride=2, padding=1)         # maxpool
        z = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)  # avgpool
        x = y + z                                           # add (two branches from one node: fan-out)
        x = F.relu6(self.dw(x))                             # dw (depthwise, bias), relu6
        x = torch.sigmoid(self.bn3(self.pw(x)))             # pw (1×1), bn3 (no affine), sigmoid
        x = x.mean(dim=(2, 3))                              # gap
        return self.fc(x)                                   # fc


NAMES = {  # PyTorch state-dict key -> engine name
    "conv1.weight": "conv1/weight",
    "bn1.weight": "bn1/weight", "bn1.bias": "bn1/bias",
    "bn1.running_mean": "bn1/running_mean", "bn1.running_var": "bn1/running_var",
    "conv2.weight": "conv2/weight",
    "bn2.weight": "bn2/weight", "bn2.bias": "bn2/bias",
    "bn2.running_mean": "bn2/running_mean", "bn2.running_var": "bn2/running_var",
    "dw.weight": "dw/weight", "dw.bias": "dw/bias",
    "pw.weight": "pw/weight",
    "bn3.running_mean": "bn3/running_mean", "bn3.running_var": "bn3/running_var",
    "fc.weight": "fc/weight", "fc.bias": "fc/bias",
}
LABEL_SMOOTHING = 0.1


def pack(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "values": [float(v) for v in t.reshape(-1).tolist()]}


def state(model):
    sd = model.state_dict()
    return {NAMES[k]: pack(v) for k, v in sd.items() if k in NAMES}


def gradients(model):
    return {NAMES[k]: pack(p.grad) for k, p in model.named_parameters()}


def main():
    base = Reference()
    # Non-trivial BN affine parameters and running statistics.
    with torch.no_grad():
        for bn in (base.bn1, base.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    initial = state(base)
    x = torch.randn(4, 3, 9, 9)
    labels = torch.tensor([0, 3, 4, 1])

    model = Reference()
    model.load_state_dict(base.state_dict())
    model.train()
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    loss = F.cross_entropy(logits, labels, label_smoothing=LABEL_SMOOTHING)
    loss.backward()
    out = {
        "label_smoothing": LABEL_SMOOTHING,
        "input": pack(x),
        "labels": labels.tolist(),
        "initial": initial,
        "logits": pack(logits),
        "loss": loss.item(),
        "input_gradient": pack(xg.grad),
        "gradients": gradients(model),
        "after_forward": state(model),
    }
    model.eval()
    with torch.no_grad():
        out["eval_logits"] = pack(model(x))

    def run(make_optimizer, steps=2):
        m = Reference()
        m.load_state_dict(base.state_dict())
        m.train()
        opt = make_optimizer(m.parameters())
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            l = F.cross_entropy(m(x), labels, label_smoothing=LABEL_SMOOTHING)
            l.backward()
            opt.step()
            losses.append(l.item())
        return {"losses": losses, "after": state(m)}

    out["sgd"] = {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01,
                  **run(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01))}
    out["adamw"] = {"learning_rate": 0.01, "weight_decay": 0.1,
                    **run(lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1))}

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "reference_network.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes), torch {torch.__version__}")


if __name__ == "__main__":
    main()
