"""Object detection as in Sec. 4.3 of the paper: Faster R-CNN with a ResNet "C4" backbone."""

from ..evaluation.boxes import box_iou
from ..evaluation.detection import COCOEvaluator, VOCEvaluator, voc_ap
from .boxes import batched_nms, clip_boxes, decode_boxes, encode_boxes, nms
from .config import DetectionConfig, list_recipes, load_recipe
from .datasets import COCODetection, ConcatDetection, SyntheticDetection, VOCDetection
from .model import FasterRCNN, HeadSettings
from .pipeline import Detector, build_dataset, build_detector, evaluate_detector, load_detector
from .roi import roi_align, roi_pool
from .rpn import RegionProposalNetwork, RPNSettings
from .train import train_detector

__all__ = [
    "COCODetection",
    "COCOEvaluator",
    "ConcatDetection",
    "DetectionConfig",
    "Detector",
    "FasterRCNN",
    "HeadSettings",
    "RPNSettings",
    "RegionProposalNetwork",
    "SyntheticDetection",
    "VOCDetection",
    "VOCEvaluator",
    "batched_nms",
    "box_iou",
    "build_dataset",
    "build_detector",
    "clip_boxes",
    "decode_boxes",
    "encode_boxes",
    "evaluate_detector",
    "list_recipes",
    "load_detector",
    "load_recipe",
    "nms",
    "roi_align",
    "roi_pool",
    "train_detector",
    "voc_ap",
]
