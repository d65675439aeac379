"""Faster R-CNN on a ResNet, the paper's "C4" layout (Sec. 4.3 and appendix A).

conv1..conv4_x (``conv1``..``layer3``) compute one stride-16 map shared by the RPN and the detector;
each region is RoI-pooled from it to 14x14 and then runs through conv5_x (``layer4``, stride 2 to
7x7), global average pooling, and sibling classifier / box-regressor layers, exactly where the
classification network had its pool and ``fc``. BN statistics are frozen (eval-mode BN, affine
parameters not trained) because detection mini-batches are too small to estimate them (appendix A).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..evaluation.boxes import box_iou
from .anchors import sample_labels
from .boxes import batched_nms, clip_boxes, decode_boxes, encode_boxes, remove_small_boxes
from .roi import roi_align, roi_pool
from .rpn import RegionProposalNetwork, RPNSettings, smooth_l1

POOLERS = ("roi_pool", "roi_align")
STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


@dataclass(frozen=True)
class HeadSettings:
    pooler: str = "roi_pool"  # Fast R-CNN max pooling (the paper); "roi_align" is the named option
    pool_size: int = 14  # conv5_1 has stride 2, so layer4 sees 14x14 and outputs 7x7
    sampling_ratio: int = 2  # RoIAlign samples per bin and axis
    batch_size: int = 128  # RoIs sampled per image (Fast R-CNN: 128 of a 2-image mini-batch of 64 each)
    positive_fraction: float = 0.25
    foreground_iou: float = 0.5
    background_iou: tuple[float, float] = (0.0, 0.5)
    box_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    score_threshold: float = 0.05
    nms_iou: float = 0.3  # py-faster-rcnn's test NMS
    detections_per_image: int = 100

    def __post_init__(self) -> None:
        if self.pooler not in POOLERS:
            raise ValueError(f"pooler must be one of {POOLERS}, got {self.pooler!r}")


def check_backbone(backbone: nn.Module) -> None:
    missing = [name for name in STAGES if not hasattr(backbone, name)]
    config = getattr(backbone, "config", None)
    if missing or config is None or getattr(config, "stem", None) != "imagenet" or len(config.stage_depths) != 4:
        raise ValueError(
            "the C4 detector needs an ImageNet-family ResNet (7x7/2 stem, max pool, layer1..layer4), "
            f"e.g. build_model('resnet101'); got {type(backbone).__name__}"
            + (f" without {', '.join(missing)}" if missing else "")
        )


class FasterRCNN(nn.Module):
    """``forward(images, image_sizes, targets)``: losses in training, detections in eval mode."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        rpn: RPNSettings = RPNSettings(),  # noqa: B008 (frozen dataclasses: immutable defaults)
        head: HeadSettings = HeadSettings(),
        freeze_at: int = 2,
        freeze_bn: bool = True,
    ) -> None:
        super().__init__()
        check_backbone(backbone)
        if freeze_at not in (0, 1, 2):
            raise ValueError(f"freeze_at must be 0 (nothing), 1 (conv1) or 2 (conv1 and layer1), got {freeze_at}")
        self.num_classes = num_classes  # foreground classes; label 0 is background
        self.head_settings = head
        self.freeze_bn = freeze_bn
        backbone.fc = nn.Identity()  # the classifier is replaced by the detection heads below
        self.backbone = backbone
        channels = backbone.layer3[-1].last_bn.num_features  # conv4_x width (1024 for ResNet-101)
        self.rpn = RegionProposalNetwork(channels, channels, rpn)
        self.cls_score = nn.Linear(backbone.num_features, num_classes + 1)
        self.bbox_pred = nn.Linear(backbone.num_features, 4 * (num_classes + 1))
        nn.init.normal_(self.cls_score.weight, std=0.01)  # Fast R-CNN's initialisation
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)
        frozen = [backbone.conv1, backbone.bn1] if freeze_at >= 1 else []
        frozen += [backbone.layer1] if freeze_at >= 2 else []
        for module in frozen:
            module.requires_grad_(False)
        if freeze_bn:
            for module in backbone.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> FasterRCNN:
        super().train(mode)
        if self.freeze_bn:  # eval-mode BN: use (and never update) the pre-trained statistics
            for module in self.backbone.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(images))))
        return b.layer3(b.layer2(b.layer1(x)))

    def region_head(self, features: torch.Tensor, rois: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """conv5_x + global pool + classifier / regressor for every RoI (the per-region part)."""
        h = self.head_settings
        if h.pooler == "roi_align":
            x = roi_align(features, rois, h.pool_size, 1 / 16, h.sampling_ratio, aligned=True)
        else:
            x = roi_pool(features, rois, h.pool_size, 1 / 16)
        x = torch.flatten(self.backbone.avgpool(self.backbone.layer4(x)), 1)
        return self.cls_score(x).float(), self.bbox_pred(x).float()

    def forward(
        self,
        images: torch.Tensor,
        image_sizes: list[tuple[int, int]],
        targets: list[dict] | None = None,
        generator: torch.Generator | None = None,
    ):
        features = self.features(images)
        if self.training:
            if targets is None:
                raise ValueError("training needs targets (boxes and labels per image)")
            proposals, losses = self.rpn(features, image_sizes, targets, generator)
            rois, labels, box_targets = self.sample_rois(proposals, targets, generator)
            scores, deltas = self.region_head(features, rois)
            losses.update(self.head_loss(scores, deltas, labels, box_targets))
            return losses
        proposals, _ = self.rpn(features, image_sizes)
        rois = _to_rois(proposals)
        scores, deltas = self.region_head(features, rois)
        return self.postprocess(rois, scores, deltas, image_sizes)

    @torch.no_grad()
    def sample_rois(self, proposals, targets, generator):
        """Fast R-CNN's mini-batch: 25% RoIs with IoU >= 0.5 (labelled), the rest background."""
        h = self.head_settings
        rois, labels, box_targets = [], [], []
        for index, (boxes, target) in enumerate(zip(proposals, targets)):
            gt, gt_labels = target["boxes"].to(boxes), target["labels"].to(boxes.device)
            boxes = torch.cat((boxes, gt))  # ground truth joins the proposals (py-faster-rcnn)
            if len(gt):
                iou = box_iou(boxes, gt)
                best, matched = iou.max(dim=1)
                label = gt_labels[matched].clone()
            else:
                best = torch.zeros(len(boxes), device=boxes.device)
                matched = torch.zeros(len(boxes), dtype=torch.long, device=boxes.device)
                label = torch.zeros(len(boxes), dtype=torch.long, device=boxes.device)
            fg = best >= h.foreground_iou
            bg = (best >= h.background_iou[0]) & (best < h.background_iou[1])
            flags = torch.full_like(label, -1)
            flags[bg], flags[fg] = 0, 1
            keep = torch.nonzero(sample_labels(flags, h.batch_size, h.positive_fraction, generator) >= 0).flatten()
            label = torch.where(fg[keep], label[keep], torch.zeros_like(label[keep]))
            boxes = boxes[keep]
            if len(gt):
                box_targets.append(encode_boxes(boxes, gt[matched[keep]], h.box_weights))
            else:
                box_targets.append(torch.zeros_like(boxes))
            rois.append(torch.cat((torch.full((len(boxes), 1), float(index), device=boxes.device), boxes), 1))
            labels.append(label)
        return torch.cat(rois), torch.cat(labels), torch.cat(box_targets)

    def head_loss(self, scores, deltas, labels, box_targets) -> dict[str, torch.Tensor]:
        classification = F.cross_entropy(scores, labels)
        fg = torch.nonzero(labels > 0).flatten()
        class_deltas = deltas.reshape(len(deltas), -1, 4)[fg, labels[fg]]
        box = smooth_l1(class_deltas - box_targets[fg], beta=1.0).sum() / max(len(labels), 1)
        return {"classifier": classification, "box_regression": box}

    @torch.no_grad()
    def postprocess(self, rois, scores, deltas, image_sizes) -> list[dict[str, torch.Tensor]]:
        """Per class: decode, clip, threshold, NMS; then keep the best ``detections_per_image``."""
        h = self.head_settings
        probs = F.softmax(scores, dim=1)
        boxes = decode_boxes(rois[:, 1:], deltas, h.box_weights).reshape(len(rois), -1, 4)
        results = []
        for index, size in enumerate(image_sizes):
            mine = rois[:, 0] == index
            b = clip_boxes(boxes[mine][:, 1:], size)  # drop the background column
            p = probs[mine][:, 1:]
            cls = torch.arange(1, self.num_classes + 1, device=b.device).expand_as(p)
            b, p, cls = b.reshape(-1, 4), p.reshape(-1), cls.reshape(-1)
            keep = torch.nonzero(p > h.score_threshold).flatten()
            b, p, cls = b[keep], p[keep], cls[keep]
            keep = remove_small_boxes(b, 1e-2)
            b, p, cls = b[keep], p[keep], cls[keep]
            keep = batched_nms(b, p, cls, h.nms_iou)[: h.detections_per_image]
            results.append({"boxes": b[keep], "scores": p[keep], "labels": cls[keep]})
        return results


def _to_rois(proposals: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [torch.cat((torch.full((len(p), 1), float(i), device=p.device), p), 1) for i, p in enumerate(proposals)]
    )


__all__ = ["FasterRCNN", "HeadSettings", "RPNSettings"]
