#!/usr/bin/env python3
"""Writes PyTorch reference fixtures for the Swift engine tests.

Run from the repository root with the project venv (torch 2.13 CPU):

    /work/venv/bin/python Tests/EngineTests/make_fixtures.py

Output: Tests/EngineTests/Fixtures/reference_network.json and decoder_ops.json (committed; CI does
not need torch). `make_fixtures.py reference` or `make_fixtures.py decoder` writes only one of them.

The network mirrors `fixtureGraph()` in PyTorchFixtureTests.swift node by node, and tensors are
stored under the engine's names ("<node>/weight", "<node>/bias", "<node>/running_mean",
"<node>/running_var"). All values are float32 written with full precision.

decoder_ops.json (DecoderOpsTests.swift): the decoder ops `upsample` (F.interpolate, nearest and
bilinear with align_corners=False) and `convTranspose2d` (nn.ConvTranspose2d), each alone on a
random input with the gradient of sum(output * probe), and a small segmentation decoder
conv -> relu -> convTranspose2d -> upsample(bilinear) -> concat with upsampled skips -> conv with
a per-pixel cross-entropy loss. Every case carries its graph in NetworkGraph's JSON form.
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

    write("reference_network.json", out)


def write(name, content):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(content, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes), torch {torch.__version__}")


# MARK: - Decoder ops (upsample, convTranspose2d)


def conv_node(name, conv, inputs):
    return {"name": name, "op": "conv2d", "inputs": inputs, "attributes": {
        "out": conv.out_channels, "kernel": conv.kernel_size[0], "stride": conv.stride[0], "padding": conv.padding[0],
        "dilation": conv.dilation[0], "groups": conv.groups, "bias": conv.bias is not None}}


def conv_transpose_node(name, conv, inputs):
    return {"name": name, "op": "convTranspose2d", "inputs": inputs, "attributes": {
        "out": conv.out_channels, "kernel": conv.kernel_size[0], "stride": conv.stride[0], "padding": conv.padding[0],
        "output_padding": conv.output_padding[0], "bias": conv.bias is not None}}


def upsample_node(name, scale, mode, inputs):
    return {"name": name, "op": "upsample", "inputs": inputs, "attributes": {"scale": scale, "mode": mode}}


def graph_json(input_shape, nodes):
    return {"input_shape": list(input_shape), "nodes": [{"name": "input", "op": "input", "inputs": []}] + nodes}


def upsample(x, scale, mode):
    if mode == "nearest":
        return F.interpolate(x, scale_factor=scale, mode="nearest")
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def pack_short(t):
    """Like `pack`, each float32 written with the shortest decimal that reads back as the same float32."""
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "values": [float(str(v)) for v in t.reshape(-1).numpy()]}


def single_op_case(name, shape, batch, node, module=None, forward=None):
    """One op on a random input: output and the gradients of sum(output * probe)."""
    x = torch.randn(batch, *shape)
    if module is not None:
        with torch.no_grad():
            if module.bias is not None:
                module.bias.uniform_(-0.5, 0.5)
        forward = module
    xg = x.clone().requires_grad_(True)
    y = forward(xg)
    probe = torch.randn(y.shape)
    y.backward(probe)
    params = dict(module.named_parameters()) if module is not None else {}
    return {
        "name": name,
        "graph": graph_json(shape, [node]),
        "input": pack_short(x),
        "initial": {f"op/{k}": pack_short(v) for k, v in params.items()},
        "output": pack_short(y),
        "probe": pack_short(probe),
        "input_gradient": pack_short(xg.grad),
        "gradients": {f"op/{k}": pack_short(v.grad) for k, v in params.items()},
    }


class Decoder(nn.Module):
    """Mirrors `DecoderOpsTests.decoderGraph()` node by node."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 6, 3, stride=2, padding=1, bias=True)
        self.dec = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, bias=True)
        self.head = nn.Conv2d(13, 3, 3, padding=1, bias=True)

    def forward(self, x):
        e = F.relu(self.enc(x))                             # enc 6x3x3, relu
        d = self.dec(e)                                     # dec 4x6x6
        up = upsample(d, 2, "bilinear")                     # up 4x12x12
        skip = upsample(e, 4, "nearest")                    # skip 6x12x12
        skip_input = upsample(x, 2, "bilinear")             # skip_input 3x12x12
        cat = torch.cat([up, skip, skip_input], dim=1)      # cat 13x12x12
        return self.head(cat)                               # head 3x12x12 (per-pixel logits)

    def graph(self):
        return graph_json([3, 6, 6], [
            conv_node("enc", self.enc, [0]),
            {"name": "relu", "op": "activation", "inputs": [1], "attributes": {"function": "relu"}},
            conv_transpose_node("dec", self.dec, [2]),
            upsample_node("up", 2, "bilinear", [3]),
            upsample_node("skip", 4, "nearest", [2]),
            upsample_node("skip_input", 2, "bilinear", [0]),
            {"name": "cat", "op": "concat", "inputs": [4, 5, 6]},
            conv_node("head", self.head, [7]),
        ])


def decoder_fixture():
    torch.manual_seed(4321)
    cases = []
    for mode in ("nearest", "bilinear"):
        for scale, shape in ((2, (3, 4, 5)), (3, (2, 3, 4)), (1, (2, 3, 3))):
            cases.append(single_op_case(f"upsample {mode} x{scale}", shape, 2, upsample_node("op", scale, mode, [0]),
                                        forward=lambda x, s=scale, m=mode: upsample(x, s, m)))
    transposed = [  # (in, out, kernel, stride, padding, output_padding, bias, input H, W)
        (3, 4, 2, 2, 0, 0, False, 4, 5),
        (3, 2, 3, 2, 1, 1, True, 4, 5),
        (2, 3, 3, 1, 0, 0, True, 3, 3),
        (4, 3, 4, 2, 1, 0, True, 3, 4),
        (3, 2, 3, 3, 2, 2, True, 3, 3),
        (3, 5, 1, 1, 0, 0, False, 3, 4),
    ]
    for c, o, k, s, p, op, bias, h, w in transposed:
        m = nn.ConvTranspose2d(c, o, k, stride=s, padding=p, output_padding=op, bias=bias)
        cases.append(single_op_case(f"convTranspose2d {c}->{o} k{k} s{s} p{p} op{op} bias {bias}", (c, h, w), 3,
                                    conv_transpose_node("op", m, [0]), module=m))

    model = Decoder()
    with torch.no_grad():
        for m in (model.enc, model.dec, model.head):
            m.bias.uniform_(-0.3, 0.3)
    names = {k: k.replace(".", "/") for k, _ in model.named_parameters()}
    initial = {names[k]: pack_short(v) for k, v in model.named_parameters()}
    x = torch.randn(2, 3, 6, 6)
    labels = torch.randint(0, 3, (2, 12, 12))
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    network = {
        "graph": model.graph(),
        "input": pack_short(x),
        "labels": labels.reshape(-1).tolist(),
        "initial": initial,
        "output": pack_short(logits),
        "loss": loss.item(),
        "input_gradient": pack_short(xg.grad),
        "gradients": {names[k]: pack_short(v.grad) for k, v in model.named_parameters()},
    }
    write("decoder_ops.json", {"ops": cases, "network": network})


if __name__ == "__main__":
    import sys
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which not in ("all", "reference", "decoder"):
        sys.exit("usage: make_fixtures.py [all|reference|decoder]")
    if which in ("all", "reference"):
        main()
    if which in ("all", "decoder"):
        decoder_fixture()
