"""Anchors of Faster R-CNN (Ren et al., Sec. 3.1.1): k = scales x aspect ratios at every map cell."""

from __future__ import annotations

import math

import torch

from ..evaluation.boxes import box_iou


def base_anchors(sizes: tuple[float, ...], ratios: tuple[float, ...]) -> torch.Tensor:
    """``[len(ratios) * len(sizes), 4]`` anchors centred on (0, 0), ratio-major.

    ``size`` is the square root of the area (128, 256, 512 in the paper) and ``ratio`` is height /
    width (0.5, 1, 2), so every ratio keeps the area ``size ** 2``.
    """
    anchors = []
    for ratio in ratios:
        for size in sizes:
            w, h = size / math.sqrt(ratio), size * math.sqrt(ratio)
            anchors.append((-w / 2, -h / 2, w / 2, h / 2))
    return torch.tensor(anchors, dtype=torch.float32)


def grid_anchors(base: torch.Tensor, feature_size: tuple[int, int], stride: int) -> torch.Tensor:
    """All anchors of a ``(height, width)`` map, ``[H * W * A, 4]`` in (y, x, anchor) order.

    Cell (y, x) covers image pixels ``[x * stride, (x + 1) * stride)``; anchors sit on its centre.
    """
    height, width = feature_size
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    shifts = torch.stack((cx, cy, cx, cy), dim=-1).reshape(-1, 1, 4)
    return (shifts + base.to(shifts.device)[None]).reshape(-1, 4)


def label_anchors(
    anchors: torch.Tensor,
    gt_boxes: torch.Tensor,
    positive_iou: float,
    negative_iou: float,
    allow_low_quality: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per anchor: label 1 (object), 0 (background) or -1 (ignored), and the index of its best gt.

    Faster R-CNN Sec. 3.1.2: IoU >= 0.7 with any gt is positive, < 0.3 with all is negative, and for
    each gt the anchor(s) with the highest IoU are positive too, so every object gets an anchor.
    """
    labels = torch.full((len(anchors),), -1, dtype=torch.long, device=anchors.device)
    if len(gt_boxes) == 0:
        labels.fill_(0)
        return labels, torch.zeros(len(anchors), dtype=torch.long, device=anchors.device)
    iou = box_iou(anchors, gt_boxes)  # [A, G]
    best_iou, best_gt = iou.max(dim=1)
    labels[best_iou < negative_iou] = 0
    labels[best_iou >= positive_iou] = 1
    if allow_low_quality:
        per_gt = iou.max(dim=0).values
        is_best = (iou == per_gt[None]) & (per_gt[None] > 0)
        anchor_idx, gt_idx = torch.nonzero(is_best, as_tuple=True)
        labels[anchor_idx] = 1
        best_gt[anchor_idx] = gt_idx
    return labels, best_gt


def sample_labels(labels: torch.Tensor, batch_size: int, positive_fraction: float, generator=None) -> torch.Tensor:
    """Subsample to ``batch_size`` with at most ``positive_fraction`` positives; others become -1.

    When there are too few positives the batch is filled with negatives (Sec. 3.1.3: "256 anchors
    ... positive and negative anchors have a ratio of up to 1:1").
    """
    labels = labels.clone()
    positives = torch.nonzero(labels == 1).flatten()
    negatives = torch.nonzero(labels == 0).flatten()
    num_pos = min(len(positives), int(batch_size * positive_fraction))
    num_neg = min(len(negatives), batch_size - num_pos)
    for index, keep in ((positives, num_pos), (negatives, num_neg)):
        order = torch.randperm(len(index), generator=generator)
        labels[index[order[keep:].to(index.device)]] = -1
    return labels
