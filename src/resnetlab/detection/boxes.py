"""Box arithmetic for Faster R-CNN in plain PyTorch: the box-delta code, clipping, NMS; areas and
IoU come from ``evaluation/boxes.py``, which the detection metrics use too.

Boxes are ``[N, 4]`` tensors ``(x1, y1, x2, y2)`` in continuous pixel coordinates (a box covering
pixels 0..9 inclusive is ``(0, 0, 10, 10)``, width 10), so VOC's "+1" inclusive pixel boxes become
ours by subtracting 1 from ``xmin``/``ymin`` when read.

Every operation runs on CPU without torchvision. Where ``torchvision.ops`` imports (a GPU machine),
``nms`` uses it as a faster path, chosen automatically; ``impl="torch"`` forces the reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._optional import torchvision_ops
from ..evaluation.boxes import box_iou

IMPLS = ("auto", "torch", "torchvision")
# Box deltas are clamped before exp() so a wild regression cannot overflow (log(1000 / 16)).
BBOX_CLIP = math.log(1000.0 / 16)


def use_torchvision(impl: str) -> bool:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "torchvision" and torchvision_ops() is None:
        raise ValueError("impl='torchvision' requested but torchvision.ops is not installed or unusable")
    return impl == "torchvision" or (impl == "auto" and torchvision_ops() is not None)


def encode_boxes(
    reference: torch.Tensor, target: torch.Tensor, weights: tuple[float, float, float, float] = (1, 1, 1, 1)
) -> torch.Tensor:
    """R-CNN box deltas (Fast R-CNN Eq. in appendix C): ``(dx, dy, dw, dh)`` taking reference to target.

    ``weights`` scale the deltas, equivalent to py-faster-rcnn's target normalisation by
    (0.1, 0.1, 0.2, 0.2) when ``(10, 10, 5, 5)``.
    """
    wx, wy, ww, wh = weights
    rw, rh = reference[:, 2] - reference[:, 0], reference[:, 3] - reference[:, 1]
    rx, ry = reference[:, 0] + 0.5 * rw, reference[:, 1] + 0.5 * rh
    tw, th = target[:, 2] - target[:, 0], target[:, 3] - target[:, 1]
    tx, ty = target[:, 0] + 0.5 * tw, target[:, 1] + 0.5 * th
    return torch.stack(
        (wx * (tx - rx) / rw, wy * (ty - ry) / rh, ww * torch.log(tw / rw), wh * torch.log(th / rh)), dim=1
    )


def decode_boxes(
    reference: torch.Tensor, deltas: torch.Tensor, weights: tuple[float, float, float, float] = (1, 1, 1, 1)
) -> torch.Tensor:
    """Inverse of ``encode_boxes``; ``deltas`` may be ``[N, 4k]`` (k class-specific boxes)."""
    wx, wy, ww, wh = weights
    deltas = deltas.reshape(deltas.shape[0], -1, 4)
    reference = reference.to(deltas.dtype)
    rw, rh = reference[:, 2] - reference[:, 0], reference[:, 3] - reference[:, 1]
    rx, ry = reference[:, 0] + 0.5 * rw, reference[:, 1] + 0.5 * rh
    dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
    dw = (deltas[..., 2] / ww).clamp(max=BBOX_CLIP)
    dh = (deltas[..., 3] / wh).clamp(max=BBOX_CLIP)
    cx, cy = dx * rw[:, None] + rx[:, None], dy * rh[:, None] + ry[:, None]
    w, h = torch.exp(dw) * rw[:, None], torch.exp(dh) * rh[:, None]
    boxes = torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)
    return boxes.reshape(deltas.shape[0], -1)


def clip_boxes(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Clip ``[..., 4k]`` boxes to an image of ``(height, width)``."""
    height, width = image_size
    shape = boxes.shape
    boxes = boxes.reshape(-1, 4)
    x = boxes[:, 0::2].clamp(0, width)
    y = boxes[:, 1::2].clamp(0, height)
    return torch.stack((x[:, 0], y[:, 0], x[:, 1], y[:, 1]), dim=1).reshape(shape)


def remove_small_boxes(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Indices of boxes at least ``min_size`` wide and high."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.nonzero((w >= min_size) & (h >= min_size)).flatten()


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, block: int = 512) -> torch.Tensor:
    """Greedy NMS: indices of kept boxes, by decreasing score.

    Works in blocks of ``block`` boxes so memory stays O(kept x block) rather than O(N^2): a block is
    first suppressed by every box kept so far, then greedily within itself.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    sorted_boxes = boxes[order].float()
    kept: list[int] = []
    kept_boxes = sorted_boxes[:0]
    for start in range(0, len(order), block):
        chunk = sorted_boxes[start : start + block]
        alive = torch.ones(len(chunk), dtype=torch.bool, device=boxes.device)
        if len(kept_boxes):
            alive &= ~(box_iou(chunk, kept_boxes) > iou_threshold).any(dim=1)
        overlaps = (box_iou(chunk, chunk) > iou_threshold).cpu().numpy()
        alive_np = alive.cpu().numpy().copy()
        new: list[int] = []
        for i in range(len(chunk)):
            if alive_np[i]:
                new.append(i)
                alive_np[i + 1 :] &= ~overlaps[i, i + 1 :]
        kept.extend(start + i for i in new)
        kept_boxes = torch.cat((kept_boxes, chunk[new]))
    return order[torch.as_tensor(np.asarray(kept, dtype=np.int64), device=boxes.device)]


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, impl: str = "auto") -> torch.Tensor:
    """Greedy non-maximum suppression; torchvision's kernel where available (same result)."""
    if use_torchvision(impl):
        return torchvision_ops().nms(boxes.float(), scores.float(), iou_threshold)
    return nms_reference(boxes, scores, iou_threshold)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float, impl: str = "auto"
) -> torch.Tensor:
    """NMS within each group (class) independently: shift each group's boxes apart, then one NMS."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if use_torchvision(impl):
        return torchvision_ops().batched_nms(boxes.float(), scores.float(), groups, iou_threshold)
    offsets = groups.to(boxes.dtype) * (boxes.max() - boxes.min() + 1)
    return nms_reference(boxes + offsets[:, None], scores, iou_threshold)
