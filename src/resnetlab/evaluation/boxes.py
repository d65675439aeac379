"""Box overlaps, shared by the detection metrics (``evaluation/detection.py``) and the detector's
own matching of anchors and proposals to objects (``detection/``).

Boxes are ``[N, 4]`` tensors ``(x1, y1, x2, y2)`` in continuous pixel coordinates: a box covering
pixels 0..9 inclusive is ``(0, 0, 10, 10)``, width 10.
"""

from __future__ import annotations

import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[N, M]`` areas of pairwise intersections."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[N, M]`` intersection over union; 0 where both boxes are empty."""
    inter = box_intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def box_ioa(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[N, M]`` intersection over the area of ``a`` (COCO's overlap with crowd regions)."""
    inter = box_intersection(a, b)
    area = box_area(a)[:, None]
    return torch.where(area > 0, inter / area.clamp(min=1e-12), torch.zeros_like(inter))


__all__ = ["box_area", "box_intersection", "box_ioa", "box_iou"]
