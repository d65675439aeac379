"""Region Proposal Network (Faster R-CNN, Ren et al. 2015) on the shared conv4_x map (Sec. 4.3)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .anchors import base_anchors, grid_anchors, label_anchors, sample_labels
from .boxes import batched_nms, clip_boxes, decode_boxes, encode_boxes, remove_small_boxes


@dataclass(frozen=True)
class RPNSettings:
    anchor_sizes: tuple[float, ...] = (128.0, 256.0, 512.0)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    stride: int = 16
    positive_iou: float = 0.7
    negative_iou: float = 0.3
    batch_size: int = 256  # anchors sampled per image
    positive_fraction: float = 0.5
    nms_iou: float = 0.7
    pre_nms_top_n: tuple[int, int] = (12000, 6000)  # (train, test)
    post_nms_top_n: tuple[int, int] = (2000, 300)
    min_size: float = 0.0
    straddle: float = 0.0  # anchors crossing the border by more than this are ignored in training


def smooth_l1(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Fast R-CNN's robust loss; ``beta = 1 / sigma^2`` (sigma 3 for the RPN, 1 for the head)."""
    ax = x.abs()
    return torch.where(ax < beta, 0.5 * ax * ax / beta, ax - 0.5 * beta)


class RPNHead(nn.Module):
    """3x3 conv sliding window, then sibling 1x1 convs: objectness (one logit) and 4 deltas per anchor."""

    def __init__(self, in_channels: int, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.objectness = nn.Conv2d(channels, num_anchors, 1)
        self.deltas = nn.Conv2d(channels, num_anchors * 4, 1)
        for layer in (self.conv, self.objectness, self.deltas):
            nn.init.normal_(layer.weight, std=0.01)  # Faster R-CNN Sec. 3.1.3: N(0, 0.01^2)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.conv(x))
        return self.objectness(x), self.deltas(x)


class RegionProposalNetwork(nn.Module):
    def __init__(self, in_channels: int, channels: int, settings: RPNSettings) -> None:
        super().__init__()
        self.settings = settings
        self.register_buffer("base", base_anchors(settings.anchor_sizes, settings.anchor_ratios), persistent=False)
        self.head = RPNHead(in_channels, channels, len(self.base))

    def forward(
        self,
        features: torch.Tensor,
        image_sizes: list[tuple[int, int]],
        targets: list[dict] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        s = self.settings
        logits, deltas = self.head(features)
        n, a = logits.shape[:2]
        # [N, A, H, W] -> [N, H*W*A] to match grid_anchors' (y, x, anchor) order.
        logits = logits.permute(0, 2, 3, 1).reshape(n, -1).float()
        deltas = deltas.reshape(n, a, 4, *deltas.shape[2:]).permute(0, 3, 4, 1, 2).reshape(n, -1, 4).float()
        anchors = grid_anchors(self.base, tuple(features.shape[2:]), s.stride).to(features.device)
        phase = 0 if self.training else 1
        proposals = []
        with torch.no_grad():
            for i, size in enumerate(image_sizes):
                scores = logits[i].detach()
                top = torch.topk(scores, min(s.pre_nms_top_n[phase], len(scores))).indices
                boxes = clip_boxes(decode_boxes(anchors[top], deltas[i, top].detach()), size)
                keep = remove_small_boxes(boxes, s.min_size)
                boxes, top = boxes[keep], top[keep]
                keep = batched_nms(boxes, scores[top], torch.zeros_like(top), s.nms_iou)
                proposals.append(boxes[keep[: s.post_nms_top_n[phase]]])
        losses: dict[str, torch.Tensor] = {}
        if targets is not None:
            losses = self.loss(anchors, logits, deltas, image_sizes, targets, generator)
        return proposals, losses

    def loss(self, anchors, logits, deltas, image_sizes, targets, generator) -> dict[str, torch.Tensor]:
        s = self.settings
        all_labels, all_targets = [], []
        for size, target in zip(image_sizes, targets):
            gt = target["boxes"]
            labels, matched = label_anchors(anchors, gt, s.positive_iou, s.negative_iou)
            height, width = size
            inside = (
                (anchors[:, 0] >= -s.straddle)
                & (anchors[:, 1] >= -s.straddle)
                & (anchors[:, 2] < width + s.straddle)
                & (anchors[:, 3] < height + s.straddle)
            )
            labels[~inside] = -1  # Sec. 3.1.3: cross-boundary anchors are ignored in training
            labels = sample_labels(labels, s.batch_size, s.positive_fraction, generator)
            all_labels.append(labels)
            all_targets.append(encode_boxes(anchors, gt[matched]) if len(gt) else torch.zeros_like(anchors))
        labels, box_targets = torch.stack(all_labels), torch.stack(all_targets)
        sampled = labels >= 0
        positive = labels == 1
        count = sampled.sum().clamp(min=1)
        objectness = (
            F.binary_cross_entropy_with_logits(logits[sampled], labels[sampled].float(), reduction="sum") / count
        )
        box = smooth_l1(deltas[positive] - box_targets[positive], beta=1 / 9).sum() / count
        return {"rpn_objectness": objectness, "rpn_box": box}
