#!/usr/bin/env python3
"""Writes the PyTorch reference fixture for the text ops (TextOpsTests.swift).

Run from the repository root with torch 2.13 CPU (`pip install "torch==2.13.0+cpu"`):

    python3 Tests/EngineTests/make_text_fixtures.py

Output: Tests/EngineTests/Fixtures/text_network.json and embedding_bag.json (committed; CI does
not need torch).

The network mirrors `TextOpsTests.fixtureGraph()` node by node and uses every text op:
embedding (padding_idx 0) -> conv1d -> GELU -> grouped dilated conv1d -> LayerNorm ->
multi-head self-attention with a key padding mask + residual -> LayerNorm without affine ->
pointwise feed-forward (conv1d k=1, GELU, conv1d k=1) + residual -> strided depthwise conv1d ->
masked max and mean pooling, concatenated -> linear. Tensors are stored under the engine's names
("<node>/weight", "<node>/in_proj_weight", "<node>/out_proj/weight", ...); float32 values are
written with full precision.

Masks follow the engine: a sample's valid length is the index of its last non-zero id + 1 (at
least 1); after a strided convolution shortens L0 positions to L, min(L, ceil(valid * L / L0))
positions stay valid. Attention masks the keys at padded positions (key_padding_mask); the
poolings reduce over valid positions only.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(2024)
torch.set_num_threads(1)

VOCABULARY, DIMENSION, HEADS, LENGTH, CLASSES = 20, 8, 2, 10, 3


class TextReference(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCABULARY, DIMENSION, padding_idx=0)
        self.conv1 = nn.Conv1d(DIMENSION, DIMENSION, 3, padding=1)
        self.conv2 = nn.Conv1d(DIMENSION, DIMENSION, 3, padding=2, dilation=2, groups=2)
        self.ln1 = nn.LayerNorm(DIMENSION)
        self.attn = nn.MultiheadAttention(DIMENSION, HEADS, batch_first=True)
        self.ln2 = nn.LayerNorm(DIMENSION, elementwise_affine=False)
        self.ff1 = nn.Conv1d(DIMENSION, 2 * DIMENSION, 1)
        self.ff2 = nn.Conv1d(2 * DIMENSION, DIMENSION, 1)
        self.dw = nn.Conv1d(DIMENSION, DIMENSION, 3, stride=2, padding=1, groups=DIMENSION)
        self.fc = nn.Linear(2 * DIMENSION, CLASSES)

    def forward(self, ids):
        n, length = ids.shape
        nonzero = (ids != 0).to(torch.int64) * torch.arange(1, length + 1)
        valid = nonzero.max(dim=1).values.clamp(min=1)                      # [N]
        x = self.emb(ids).transpose(1, 2)                                   # emb: [N, D, L]
        x = F.gelu(self.conv1(x))                                           # conv1, gelu1
        x = self.conv2(x)                                                   # conv2
        h = self.ln1(x.transpose(1, 2))                                     # ln1: [N, L, D]
        padded = torch.arange(length)[None, :] >= valid[:, None]            # key padding mask
        a, _ = self.attn(h, h, h, key_padding_mask=padded, need_weights=False)   # attn
        r1 = h + a                                                          # res1
        z = self.ln2(r1).transpose(1, 2)                                    # ln2: [N, D, L]
        f = self.ff2(F.gelu(self.ff1(z)))                                   # ff1, gelu2, ff2
        r2 = r1.transpose(1, 2) + f                                         # res2
        y = self.dw(r2)                                                     # dw: [N, D, L']
        short = y.shape[2]
        v2 = torch.clamp(torch.div(valid * short + length - 1, length, rounding_mode="floor"), 1, short)
        keep = torch.arange(short)[None, None, :] < v2[:, None, None]      # [N, 1, L']
        mx = y.masked_fill(~keep, float("-inf")).amax(dim=2)                # maxpool
        mean = (y * keep).sum(dim=2) / v2[:, None].to(y.dtype)              # meanpool
        return self.fc(torch.cat([mx, mean], dim=1)), valid, v2            # cat, fc


NAMES = {  # PyTorch state-dict key -> engine name
    "emb.weight": "emb/weight",
    "conv1.weight": "conv1/weight", "conv1.bias": "conv1/bias",
    "conv2.weight": "conv2/weight", "conv2.bias": "conv2/bias",
    "ln1.weight": "ln1/weight", "ln1.bias": "ln1/bias",
    "attn.in_proj_weight": "attn/in_proj_weight", "attn.in_proj_bias": "attn/in_proj_bias",
    "attn.out_proj.weight": "attn/out_proj/weight", "attn.out_proj.bias": "attn/out_proj/bias",
    "ff1.weight": "ff1/weight", "ff1.bias": "ff1/bias",
    "ff2.weight": "ff2/weight", "ff2.bias": "ff2/bias",
    "dw.weight": "dw/weight", "dw.bias": "dw/bias",
    "fc.weight": "fc/weight", "fc.bias": "fc/bias",
}


def pack(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "values": [float(v) for v in t.reshape(-1).tolist()]}


def main():
    model = TextReference()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters and attention biases
        model.ln1.weight.uniform_(0.5, 1.5)
        model.ln1.bias.uniform_(-0.3, 0.3)
        model.attn.in_proj_bias.uniform_(-0.2, 0.2)
        model.attn.out_proj.bias.uniform_(-0.2, 0.2)
    parameters = {NAMES[k]: pack(v) for k, v in model.state_dict().items()}
    assert set(parameters) == set(NAMES.values())

    # Token sequences with different valid lengths (padding 0 at the end; 1 = unknown token).
    lengths = [10, 7, 3, 1]
    ids = torch.zeros(len(lengths), LENGTH, dtype=torch.int64)
    for n, v in enumerate(lengths):
        ids[n, :v] = torch.randint(2, VOCABULARY, (v,))
    ids[1, 2] = 1
    ids[2, 1] = 1
    labels = torch.tensor([0, 2, 1, 2])

    logits, valid, short_valid = model(ids)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out = {
        "vocabulary": VOCABULARY, "dimension": DIMENSION, "heads": HEADS, "length": LENGTH, "classes": CLASSES,
        "input": pack(ids.to(torch.float32).reshape(len(lengths), 1, 1, LENGTH)),
        "labels": labels.tolist(),
        "valid_lengths": valid.tolist(),
        "pooled_valid_lengths": short_valid.tolist(),
        "parameters": parameters,
        "parameter_count": sum(p.numel() for p in model.parameters()),
        "logits": pack(logits),
        "loss": loss.item(),
        "gradients": {NAMES[k]: pack(p.grad) for k, p in model.named_parameters()},
    }
    assert out["gradients"]["emb/weight"]["values"][:DIMENSION] == [0.0] * DIMENSION

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "text_network.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes), torch {torch.__version__}, loss {loss.item():.6f}")


# The subword embedding: K ids per position (slot-major [N, K, L] like the tokenizer writes them),
# averaged per position by nn.EmbeddingBag(mode="mean", padding_idx=0) — padding ids are left out of
# the mean, a bag of only padding is 0 — then masked mean pooling over the valid positions (slot 0's
# last non-zero id + 1) and a linear layer.
BAG_VOCABULARY, BAG_DIMENSION, BAG_SLOTS, BAG_LENGTH = 30, 6, 4, 7


class BagReference(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.EmbeddingBag(BAG_VOCABULARY, BAG_DIMENSION, mode="mean", padding_idx=0)
        self.fc = nn.Linear(BAG_DIMENSION, CLASSES)

    def forward(self, ids):
        n, k, length = ids.shape
        words = ids[:, 0, :]
        nonzero = (words != 0).to(torch.int64) * torch.arange(1, length + 1)
        valid = nonzero.max(dim=1).values.clamp(min=1)
        bags = ids.permute(0, 2, 1).reshape(n * length, k)                  # one bag per position
        x = self.emb(bags).reshape(n, length, BAG_DIMENSION)                # emb: [N, L, D]
        keep = torch.arange(length)[None, :, None] < valid[:, None, None]
        mean = (x * keep).sum(dim=1) / valid[:, None].to(x.dtype)          # pool
        return self.fc(mean), valid


def bag_fixture():
    torch.manual_seed(7)
    model = BagReference()
    lengths = [7, 4, 1]
    ids = torch.zeros(len(lengths), BAG_SLOTS, BAG_LENGTH, dtype=torch.int64)
    for n, v in enumerate(lengths):
        ids[n, 0, :v] = torch.randint(1, BAG_VOCABULARY, (v,))
        for l in range(v):                                                  # 0 to 3 subword ids, then padding
            used = int(torch.randint(0, BAG_SLOTS, (1,)))
            ids[n, 1:1 + used, l] = torch.randint(2, BAG_VOCABULARY, (used,))
    ids[1, 3, 2] = ids[1, 0, 2]                                             # a repeated id counts twice
    labels = torch.tensor([1, 0, 2])
    logits, valid = model(ids)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    names = {"emb.weight": "emb/weight", "fc.weight": "fc/weight", "fc.bias": "fc/bias"}
    out = {
        "vocabulary": BAG_VOCABULARY, "dimension": BAG_DIMENSION, "slots": BAG_SLOTS, "length": BAG_LENGTH,
        "classes": CLASSES,
        "input": pack(ids.to(torch.float32).reshape(len(lengths), BAG_SLOTS, 1, BAG_LENGTH)),
        "labels": labels.tolist(),
        "valid_lengths": valid.tolist(),
        "parameters": {names[k]: pack(v) for k, v in model.state_dict().items()},
        "logits": pack(logits),
        "loss": loss.item(),
        "gradients": {names[k]: pack(p.grad) for k, p in model.named_parameters()},
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "embedding_bag.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes), torch {torch.__version__}, loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
    bag_fixture()
