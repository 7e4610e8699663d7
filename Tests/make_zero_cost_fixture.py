"""Reference values for Tests/LabTests/ZeroCostProxiesTests.swift (PyTorch, Float64).

A tiny network conv3x3(1→3, no bias) → BatchNorm2d(3) → ReLU → global average pool → Linear(3→2)
with weights from fixed formulas, four 1×4×4 inputs, labels [0, 1, 1, 0]; the proxies as
zero-cost-nas / NASLib define them (training mode: batch statistics). Run:
    python3 Tests/make_zero_cost_fixture.py
and paste the printed numbers into the test.
"""
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def f32(values):
    return torch.tensor(np.array(values, dtype=np.float32).astype(np.float64))


def build():
    conv = nn.Conv2d(1, 3, 3, padding=1, bias=False)
    bn = nn.BatchNorm2d(3)
    fc = nn.Linear(3, 2)
    with torch.no_grad():
        conv.weight.copy_(f32([0.3 * math.sin(1.7 * i + 0.2) for i in range(27)]).reshape(3, 1, 3, 3))
        fc.weight.copy_(f32([0.5 * math.cos(0.9 * i) for i in range(6)]).reshape(2, 3))
        fc.bias.copy_(f32([0.1, -0.2]))
    return conv, bn, fc


def forward(conv, bn, fc, x, use_bn=True, codes=None):
    h = conv(x)
    if use_bn:
        h = bn(h)
    if codes is not None:
        codes.append((h > 0).double().reshape(h.shape[0], -1))
    h = F.relu(h)
    return fc(h.mean(dim=(2, 3)))


x = f32([math.sin(0.37 * (n * 16 + p)) + 0.1 * n for n in range(4) for p in range(16)]).reshape(4, 1, 4, 4)
y = torch.tensor([0, 1, 1, 0])

# naswot
conv, bn, fc = build()
codes = []
forward(conv, bn, fc, x, codes=codes)
c = codes[0]
K = c @ c.t() + (1 - c) @ (1 - c).t()
naswot = np.linalg.slogdet(K.numpy())[1]

# jacov
conv, bn, fc = build()
xg = x.clone().requires_grad_(True)
out = forward(conv, bn, fc, xg)
out.backward(torch.ones_like(out))
J = xg.grad.reshape(4, -1).numpy()
v, _ = np.linalg.eig(np.corrcoef(J))
jacov = -np.sum(np.log(v.real + 1e-5) + 1.0 / (v.real + 1e-5))

# snip and grad_norm
conv, bn, fc = build()
loss = F.cross_entropy(forward(conv, bn, fc, x), y)
loss.backward()
snip = sum((w * w.grad).abs().sum().item() for w in (conv.weight, fc.weight))
grad_norm = sum(w.grad.norm().item() for w in (conv.weight, fc.weight))

# synflow: batch norm off, absolute values, ones input of batch 1
conv, bn, fc = build()
with torch.no_grad():
    for p in list(conv.parameters()) + list(fc.parameters()):
        p.abs_()
out = forward(conv, bn, fc, torch.ones(1, 1, 4, 4), use_bn=False)
out.sum().backward()
synflow = math.log(sum((w * w.grad).abs().sum().item() for w in (conv.weight, fc.weight)))

for name, value in [("naswot", naswot), ("jacov", jacov), ("snip", snip), ("grad_norm", grad_norm), ("synflow", synflow)]:
    print(f"{name} = {value:.10f}")
