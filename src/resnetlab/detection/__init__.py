"""Object detection as in Sec. 4.3 of the paper: Faster R-CNN with a ResNet "C4" backbone."""

from .boxes import batched_nms, box_iou, clip_boxes, decode_boxes, encode_boxes, nms
from .config import DetectionConfig, list_recipes, load_recipe
from .datasets import COCODetection, ConcatDetection, SyntheticDetection, VOCDetection
from .evaluate import COCOEvaluator, VOCEvaluator, voc_ap
from .model import FasterRCNN, HeadSettings
from .pipeline import Detector, build_dataset, build_detector, evaluate_detector, load_detector
from .roi import roi_align, roi_pool
from .rpn import RegionProposalNetwork, RPNSettings
from .train import train_detector

__all__ = [
    "batched_nms", "box_iou", "clip_boxes", "decode_boxes", "encode_boxes", "nms",
    "DetectionConfig", "list_recipes", "load_recipe",
    "COCODetection", "ConcatDetection", "SyntheticDetection", "VOCDetection",
    "COCOEvaluator", "VOCEvaluator", "voc_ap", "FasterRCNN", "HeadSettings",
    "Detector", "build_dataset", "build_detector", "evaluate_detector", "load_detector",
    "roi_align", "roi_pool", "RegionProposalNetwork", "RPNSettings", "train_detector",
]
