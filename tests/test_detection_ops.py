"""Box ops, RoI pooling/align and anchors against hand-computed cases and brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from resnetlab._optional import torchvision_ops
from resnetlab.detection.anchors import base_anchors, grid_anchors, label_anchors, sample_labels
from resnetlab.detection.boxes import (
    batched_nms,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    nms,
    nms_reference,
    remove_small_boxes,
)
from resnetlab.detection.roi import roi_align, roi_align_reference, roi_pool, roi_pool_reference
from resnetlab.evaluation.boxes import box_ioa, box_iou


def random_boxes(n: int, size: float = 100.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 3 + 1
    return torch.cat((xy, xy + wh), 1)


def test_iou_hand_computed():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 5, 15, 15], [0, 0, 10, 10], [10, 10, 20, 20], [0, 0, 5, 10]])
    # overlaps 25, 100, 0 (touching), 50; unions 175, 100, 200, 100
    assert torch.allclose(box_iou(a, b), torch.tensor([[25 / 175, 1.0, 0.0, 0.5]]))
    assert torch.allclose(box_ioa(b, a), torch.tensor([[0.25], [1.0], [0.0], [1.0]]))


def test_encode_hand_computed_and_round_trip():
    ref = torch.tensor([[0.0, 0, 10, 20]])
    tgt = torch.tensor([[5.0, 0, 25, 20]])  # centre moves by 10 (one width), width doubles
    d = encode_boxes(ref, tgt)
    assert torch.allclose(d, torch.tensor([[1.0, 0.0, math.log(2), 0.0]]))
    assert torch.allclose(encode_boxes(ref, tgt, (10, 10, 5, 5)), torch.tensor([[10.0, 0, 5 * math.log(2), 0]]))
    refs, tgts = random_boxes(50, seed=1), random_boxes(50, seed=2)
    for w in ((1, 1, 1, 1), (10, 10, 5, 5)):
        assert torch.allclose(decode_boxes(refs, encode_boxes(refs, tgts, w), w), tgts, atol=1e-4)


def test_clip_and_small():
    boxes = torch.tensor([[-5.0, 2, 30, 50], [1, 1, 1.5, 9]])
    assert torch.equal(clip_boxes(boxes, (40, 20)), torch.tensor([[0.0, 2, 20, 40], [1, 1, 1.5, 9]]))
    assert remove_small_boxes(boxes, 1.0).tolist() == [0]


def brute_nms(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep: list[int] = []
    for i in order:
        if all(float(box_iou(boxes[i : i + 1], boxes[j : j + 1])) <= thr for j in keep):
            keep.append(i)
    return keep


def test_nms_hand_computed():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # box 3 (0.95) suppresses 0 (IoU .9) and 1 (IoU ~.65); box 2 is apart.
    assert nms(boxes, scores, 0.5, impl="torch").tolist() == [3, 2]
    assert nms(boxes, scores, 0.95, impl="torch").tolist() == [3, 0, 1, 2]


@pytest.mark.parametrize("block", [512, 7])  # 7: exercises suppression across blocks
def test_nms_matches_brute_force(block):
    boxes, scores = random_boxes(120, seed=3), torch.rand(120, generator=torch.Generator().manual_seed(4))
    for thr in (0.3, 0.5, 0.7):
        assert nms_reference(boxes, scores, thr, block=block).tolist() == brute_nms(boxes, scores, thr)


def test_batched_nms_is_per_class():
    boxes, scores = random_boxes(80, seed=5), torch.rand(80, generator=torch.Generator().manual_seed(6))
    classes = torch.arange(80) % 3
    kept = set(batched_nms(boxes, scores, classes, 0.4, impl="torch").tolist())
    expected = set()
    for c in range(3):
        idx = torch.nonzero(classes == c).flatten()
        expected |= {int(idx[i]) for i in brute_nms(boxes[idx], scores[idx], 0.4)}
    assert kept == expected


def brute_roi_pool(feat, rois, ph, pw, scale):
    _n, c, H, W = feat.shape
    out = torch.zeros(len(rois), c, ph, pw)
    for k, (b, *box) in enumerate(rois.tolist()):
        x1, y1, x2, y2 = (int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in np.float32(box) * np.float32(scale))
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bh, bw = np.float32(rh) / np.float32(ph), np.float32(rw) / np.float32(pw)
        for i in range(ph):
            for j in range(pw):
                hs = min(max(int(np.floor(np.float32(i) * bh)) + y1, 0), H)
                he = min(max(int(np.ceil(np.float32(i + 1) * bh)) + y1, 0), H)
                ws = min(max(int(np.floor(np.float32(j) * bw)) + x1, 0), W)
                we = min(max(int(np.ceil(np.float32(j + 1) * bw)) + x1, 0), W)
                if he > hs and we > ws:
                    out[k, :, i, j] = feat[int(b), :, hs:he, ws:we].amax(dim=(1, 2))
    return out


def test_roi_pool_hand_computed():
    feat = torch.arange(16.0).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0.0, 0, 0, 3, 3], [0, 2, 2, 3, 3], [0, 10, 10, 12, 12]])
    out = roi_pool_reference(feat, rois, 2)
    assert out[0, 0].tolist() == [[5.0, 7.0], [13.0, 15.0]]  # 2x2 bins of the whole 4x4 map
    assert out[1, 0].tolist() == [[10.0, 11.0], [14.0, 15.0]]  # a 2x2 RoI: one cell per bin
    assert out[2, 0].tolist() == [[0.0, 0.0], [0.0, 0.0]]  # entirely outside: empty bins give 0


def test_roi_pool_matches_brute_force_and_routes_gradient():
    g = torch.Generator().manual_seed(7)
    feat = torch.randn(2, 3, 9, 11, generator=g, requires_grad=True)
    boxes = random_boxes(40, size=170, seed=8) - 5  # some cross the border, some beyond
    rois = torch.cat((torch.randint(0, 2, (40, 1), generator=g).float(), boxes), 1)
    out = roi_pool_reference(feat, rois, (3, 4), 1 / 16)
    assert torch.equal(out, brute_roi_pool(feat.detach(), rois, 3, 4, 1 / 16))
    out.sum().backward()
    # Each non-empty bin sends its gradient to exactly one cell (its arg-max).
    assert feat.grad.sum().item() == pytest.approx(float((out != 0).sum()))


def bilinear(f, y, x):
    H, W = f.shape[-2:]
    if y < -1 or y > H or x < -1 or x > W:
        return torch.zeros(f.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = int(y), int(x)
    if yl >= H - 1:
        yh = yl = H - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= W - 1:
        xh = xl = W - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    return (
        (1 - ly) * (1 - lx) * f[:, yl, xl]
        + (1 - ly) * lx * f[:, yl, xh]
        + ly * (1 - lx) * f[:, yh, xl]
        + ly * lx * f[:, yh, xh]
    )


def brute_roi_align(feat, rois, ph, pw, scale, ratio, aligned):
    out = torch.zeros(len(rois), feat.shape[1], ph, pw, dtype=torch.float64)
    off = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        x1, y1, x2, y2 = x1 * scale - off, y1 * scale - off, x2 * scale - off, y2 * scale - off
        h, w = y2 - y1, x2 - x1
        if not aligned:
            h, w = max(h, 1.0), max(w, 1.0)
        gh = ratio if ratio > 0 else math.ceil(h / ph)
        gw = ratio if ratio > 0 else math.ceil(w / pw)
        for i in range(ph):
            for j in range(pw):
                acc = 0.0
                for iy in range(gh):
                    for ix in range(gw):
                        y = y1 + i * h / ph + (iy + 0.5) * h / ph / gh
                        x = x1 + j * w / pw + (ix + 0.5) * w / pw / gw
                        acc = acc + bilinear(feat[int(b)].double(), y, x)
                out[k, :, i, j] = acc / max(gh * gw, 1)
    return out


def test_roi_align_hand_computed():
    # On f(y, x) = x the bilinear average over a bin is the bin's mean x: exact, no rounding.
    feat = torch.arange(8.0).repeat(8, 1)[None, None]
    out = roi_align_reference(feat, torch.tensor([[0.0, 1, 1, 5, 5]]), 2, 1.0, 2, aligned=False)
    assert torch.allclose(out[0, 0], torch.tensor([[2.0, 4.0], [2.0, 4.0]]))
    out = roi_align_reference(feat, torch.tensor([[0.0, 1, 1, 5, 5]]), 2, 1.0, 2, aligned=True)
    assert torch.allclose(out[0, 0], torch.tensor([[1.5, 3.5], [1.5, 3.5]]))


@pytest.mark.parametrize("ratio,aligned", [(2, True), (2, False), (-1, False), (-1, True)])
def test_roi_align_matches_brute_force(ratio, aligned):
    g = torch.Generator().manual_seed(9)
    feat = torch.randn(2, 3, 7, 9, generator=g)
    boxes = random_boxes(12, size=140, seed=10) - 10
    rois = torch.cat((torch.randint(0, 2, (12, 1), generator=g).float(), boxes), 1)
    out = roi_align_reference(feat, rois, (3, 2), 1 / 16, ratio, aligned)
    assert torch.allclose(out.double(), brute_roi_align(feat, rois, 3, 2, 1 / 16, ratio, aligned), atol=1e-5)


def test_torchvision_agrees_where_available():
    ops = torchvision_ops()  # None when absent or installed but broken (the CPU machines here)
    if ops is None:
        pytest.skip("torchvision.ops not installed or unusable")
    g = torch.Generator().manual_seed(11)
    feat = torch.randn(2, 4, 12, 15, generator=g)
    boxes = random_boxes(60, size=220, seed=12) - 8
    rois = torch.cat((torch.randint(0, 2, (60, 1), generator=g).float(), boxes), 1)
    assert torch.equal(roi_pool(feat, rois, 7, 1 / 16, impl="torch"), ops.roi_pool(feat, rois, 7, 1 / 16))
    for ratio, aligned in ((2, True), (-1, False)):
        assert torch.allclose(
            roi_align(feat, rois, 7, 1 / 16, ratio, aligned, impl="torch"),
            ops.roi_align(feat, rois, 7, 1 / 16, ratio, aligned),
            atol=1e-5,
        )
    scores = torch.rand(60, generator=g)
    assert torch.equal(nms(boxes, scores, 0.5, impl="torch"), ops.nms(boxes, scores, 0.5))


def test_base_and_grid_anchors():
    base = base_anchors((16.0,), (0.5, 1.0, 2.0))
    w = 16 / math.sqrt(0.5)  # ratio = h / w at constant area 16^2
    assert torch.allclose(
        base, torch.tensor([[-w / 2, -w / 4, w / 2, w / 4], [-8, -8, 8, 8], [-w / 4, -w / 2, w / 4, w / 2]])
    )
    assert torch.allclose(
        base_anchors((128.0, 256.0, 512.0), (0.5, 1.0, 2.0)).shape[0] * torch.ones(1), torch.tensor([9.0])
    )
    grid = grid_anchors(base, (2, 3), 16)
    assert grid.shape == (2 * 3 * 3, 4)
    # (y, x, anchor) order: entry (y=1, x=2, a=1) is the 16x16 square centred on (40, 24).
    assert grid[(1 * 3 + 2) * 3 + 1].tolist() == [32.0, 16.0, 48.0, 32.0]


def test_label_and_sample_anchors():
    anchors = torch.tensor([[0.0, 0, 10, 10], [0, 0, 9, 10], [50, 50, 60, 60], [0, 0, 30, 30], [100, 100, 104, 104]])
    gt = torch.tensor([[0.0, 0, 10, 10], [98, 98, 110, 110]])
    labels, matched = label_anchors(anchors, gt, 0.7, 0.3)
    # IoUs with gt0: 1, .9, 0, .11; anchor 4 has IoU 16/144 with gt1 yet is gt1's best: positive.
    assert labels.tolist() == [1, 1, 0, 0, 1]
    assert matched[4].item() == 1
    labels = torch.tensor([1] * 10 + [0] * 30 + [-1] * 5)
    sampled = sample_labels(labels, 16, 0.5, torch.Generator().manual_seed(0))
    assert (sampled == 1).sum() == 8 and (sampled == 0).sum() == 8
    few = sample_labels(torch.tensor([1] * 2 + [0] * 30), 16, 0.5, torch.Generator().manual_seed(0))
    assert (few == 1).sum() == 2 and (few == 0).sum() == 14  # too few positives: filled with negatives
