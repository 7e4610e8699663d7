#!/usr/bin/env python3
"""Writes the reference values of the dense objectives for DenseObjectiveTests.swift.

Run from the repository root (torch 2.13 CPU, numpy):

    python3 Tests/EngineTests/make_dense_fixtures.py

Output: Tests/EngineTests/Fixtures/dense_objectives.json (committed; CI does not need torch).

- `pixel_cross_entropy`: `F.cross_entropy(logits, target, ignore_index=-100)` on N=2, K=4, 5x6
  logits with a few ignored pixels, and its gradient w.r.t. the logits (autograd).
- `gaussian_radius`: CenterNet's `gaussian_radius` (src/lib/utils/image.py, copied below, min
  overlap 0.7) on a grid of box sizes.
- `heatmap`: CenterNet's ctdet targets (src/lib/datasets/sample/ctdet.py): per box (in input
  pixels, divided by the stride) the radius of the ceiled size, `draw_umich_gaussian` at the
  truncated centre into the class's heatmap (overlaps keep the maximum), the size (w, h) and the
  sub-cell offset of the centre. Differences to ctdet kept out of the fixture on purpose: no
  affine augmentation and no clipping of the box to `output_size - 1` (NASLab's boxes have
  exclusive x2/y2 inside the image; the engine clamps the centre cell instead).
- `detection_loss`: CenterNet's `_neg_loss` (src/lib/models/losses.py; the prediction clamp to
  [1e-4, 1 - 1e-4] of `_sigmoid` is inactive here, |logit| <= 6) on random outputs, plus the L1
  terms of "Objects as Points" (Zhou et al. 2019, eq. 2 and 3): the L1 norm of the (w, h) and
  (dx, dy) errors at each object's cell summed and divided by the number of objects N. The
  official code's `RegL1Loss` divides the same sum by `mask.sum() + 1e-4` = 2N + 1e-4 (the mean
  over the two coordinates), i.e. half the paper's value; both are written (`*_code`). The total
  is `focal + 0.1 * size + 1 * offset` (the paper's) and its gradient w.r.t. the output comes
  from autograd in float64.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(4242)
torch.set_num_threads(1)


def write(name, content):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(content, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes), torch {torch.__version__}")


def pack(t):
    """float32 values, each written with the shortest decimal that reads back as the same float32."""
    t = torch.as_tensor(t).detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "values": [float(str(v)) for v in t.reshape(-1).numpy()]}


# MARK: - CenterNet's reference code (verbatim apart from formatting)


def gaussian_radius(det_size, min_overlap=0.7):
    height, width = det_size

    a1 = 1
    b1 = (height + width)
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    sq1 = np.sqrt(b1 ** 2 - 4 * a1 * c1)
    r1 = (b1 + sq1) / 2

    a2 = 4
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    sq2 = np.sqrt(b2 ** 2 - 4 * a2 * c2)
    r2 = (b2 + sq2) / 2

    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    sq3 = np.sqrt(b3 ** 2 - 4 * a3 * c3)
    r3 = (b3 + sq3) / 2
    return min(r1, r2, r3)


def gaussian2D(shape, sigma=1):
    m, n = [(ss - 1.) / 2. for ss in shape]
    y, x = np.ogrid[-m:m + 1, -n:n + 1]

    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h


def draw_umich_gaussian(heatmap, center, radius, k=1):
    diameter = 2 * radius + 1
    gaussian = gaussian2D((diameter, diameter), sigma=diameter / 6)

    x, y = int(center[0]), int(center[1])

    height, width = heatmap.shape[0:2]

    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)

    masked_heatmap = heatmap[y - top:y + bottom, x - left:x + right]
    masked_gaussian = gaussian[radius - top:radius + bottom, radius - left:radius + right]
    if min(masked_gaussian.shape) > 0 and min(masked_heatmap.shape) > 0:
        np.maximum(masked_heatmap, masked_gaussian * k, out=masked_heatmap)
    return heatmap


def _neg_loss(pred, gt):
    pos_inds = gt.eq(1).float()
    neg_inds = gt.lt(1).float()

    neg_weights = torch.pow(1 - gt, 4)

    loss = 0

    pos_loss = torch.log(pred) * torch.pow(1 - pred, 2) * pos_inds
    neg_loss = torch.log(1 - pred) * torch.pow(pred, 2) * neg_weights * neg_inds

    num_pos = pos_inds.float().sum()
    pos_loss = pos_loss.sum()
    neg_loss = neg_loss.sum()

    if num_pos == 0:
        loss = loss - neg_loss
    else:
        loss = loss - (pos_loss + neg_loss) / num_pos
    return loss


def ctdet_targets(boxes, count, classes, height, width, stride):
    """ctdet.py's target loop for boxes [image, class, x1, y1, x2, y2] in input pixels."""
    hm = np.zeros((count, classes, height, width), dtype=np.float32)
    objects = []  # [n, y, x, w, h, dx, dy] in output cells
    for image, cls, x1, y1, x2, y2 in boxes:
        bbox = np.array([x1, y1, x2, y2], dtype=np.float32) / np.float32(stride)
        h, w = bbox[3] - bbox[1], bbox[2] - bbox[0]
        if h > 0 and w > 0:
            radius = gaussian_radius((math.ceil(h), math.ceil(w)))
            radius = max(0, int(radius))
            ct = np.array([(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2], dtype=np.float32)
            ct_int = ct.astype(np.int32)
            draw_umich_gaussian(hm[int(image), int(cls)], ct_int, radius)
            reg = ct - ct_int
            objects.append([int(image), int(ct_int[1]), int(ct_int[0]), float(w), float(h), float(reg[0]), float(reg[1])])
    return hm, objects


# MARK: - Fixtures


def pixel_cross_entropy():
    n, k, h, w = 2, 4, 5, 6
    logits = (torch.randn(n, k, h, w) * 2).to(torch.float32)
    target = torch.randint(0, k, (n, h, w))
    for (s, y, x) in [(0, 0, 0), (0, 2, 3), (0, 4, 5), (1, 1, 1), (1, 3, 4), (1, 4, 0)]:
        target[s, y, x] = -100
    lg = logits.clone().requires_grad_(True)
    loss = F.cross_entropy(lg, target, ignore_index=-100)
    loss.backward()
    keep = target != -100
    correct = int(((logits.argmax(dim=1) == target) & keep).sum())
    return {"logits": pack(logits), "target": target.reshape(-1).tolist(), "loss": float(loss),
            "gradient": pack(lg.grad), "correct": correct, "counted": int(keep.sum())}


def radius_grid():
    sizes = [1, 2, 3, 4, 5, 7, 8, 11, 16, 23, 32, 64]
    return [[h, w, float(gaussian_radius((h, w)))] for h in sizes for w in sizes]


HEATMAP_BOXES = [  # 64x64 inputs, stride 4 -> 16x16, 3 classes
    [0, 0, 4, 6, 30, 22],           # large
    [0, 0, 10, 8, 34, 28],          # same class, overlapping the first: the maximum is kept
    [0, 1, 40.5, 3.25, 63.5, 17.75],  # fractional coordinates, near the right edge
    [0, 2, 0, 0, 6, 64],            # thin, on the left edge: the Gaussian is cut at the border
    [0, 2, 2, 2, 5, 4],             # tiny: radius 0, a single 1
    [1, 1, 20, 20, 44, 44],
    [1, 2, 10, 10, 10, 20],         # empty (width 0): no target
    [1, 0, 0, 58, 64, 64],          # flat, on the bottom edge: cut at the border
]


def heatmap():
    n, k, h, w, stride = 2, 3, 16, 16, 4
    hm, objects = ctdet_targets(HEATMAP_BOXES, n, k, h, w, stride)
    return {"count": n, "classes": k, "height": h, "width": w, "stride": stride, "boxes": HEATMAP_BOXES,
            "heatmap": pack(hm), "objects": objects}


LOSS_BOXES = [  # 32x32 inputs, stride 4 -> 8x8, 3 classes; distinct centre cells
    [0, 0, 2.5, 3, 14, 12],
    [0, 2, 16, 18, 31, 30.5],
    [0, 0, 20, 2, 28, 10],
    [1, 1, 4, 9, 26, 27],
]


def detection_loss():
    n, k, h, w, stride = 2, 3, 8, 8, 4
    hm, objects = ctdet_targets(LOSS_BOXES, n, k, h, w, stride)
    out = torch.empty(n, k + 4, h, w, dtype=torch.float32)
    out[:, :k] = (torch.randn(n, k, h, w) * 1.5 - 1.5).clamp(-6, 6)
    out[:, k:k + 2] = torch.randn(n, 2, h, w) * 1.5 + 3
    out[:, k + 2:] = torch.rand(n, 2, h, w)
    # Keep every regression output at an object cell at least 0.05 from its target (no L1 kink
    # within the finite-difference steps of the Swift test).
    for (s, y, x, bw, bh, dx, dy) in objects:
        for c, t in zip(range(k, k + 4), [bw, bh, dx, dy]):
            if abs(float(out[s, c, y, x]) - t) < 0.05:
                out[s, c, y, x] = t + 0.3
    z = out.to(torch.float64).requires_grad_(True)
    gt = torch.from_numpy(hm).to(torch.float64)
    pred = torch.clamp(torch.sigmoid(z[:, :k]), min=1e-4, max=1 - 1e-4)
    focal = _neg_loss(pred, gt)
    size_sum = z.new_zeros(())
    offset_sum = z.new_zeros(())
    for (s, y, x, bw, bh, dx, dy) in objects:
        size_sum = size_sum + (z[s, k, y, x] - bw).abs() + (z[s, k + 1, y, x] - bh).abs()
        offset_sum = offset_sum + (z[s, k + 2, y, x] - dx).abs() + (z[s, k + 3, y, x] - dy).abs()
    count = len(objects)
    size = size_sum / count
    offset = offset_sum / count
    total = focal + 0.1 * size + 1.0 * offset
    total.backward()
    return {"count": n, "classes": k, "height": h, "width": w, "stride": stride, "boxes": LOSS_BOXES,
            "output": pack(out), "objects": objects, "positives": int(gt.eq(1).sum()),
            "focal": float(focal), "size_l1": float(size), "offset_l1": float(offset),
            "size_l1_code": float(size_sum / (2 * count + 1e-4)), "offset_l1_code": float(offset_sum / (2 * count + 1e-4)),
            "loss": float(total), "gradient": pack(z.grad)}


def main():
    write("dense_objectives.json", {
        "pixel_cross_entropy": pixel_cross_entropy(),
        "gaussian_radius": radius_grid(),
        "heatmap": heatmap(),
        "detection_loss": detection_loss(),
    })


if __name__ == "__main__":
    main()
