"""Detection recipes: small TOML files parsed into one frozen, validated dataclass.

``load_recipe("voc-resnet101")`` reads ``resnetlab/recipes/detection/voc-resnet101.toml`` (or any
path ending in ``.toml``); ``overrides`` (``--set key=value``) apply on top. The loader, the
override syntax and the field type checks are the ones training recipes use
(``engine/config_loader.py``); unknown keys are rejected by name, so a typo never silently trains
the default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..data.imagenet_stats import IMAGENET_MEAN
from ..engine.config import PRECISIONS, check_device_name
from ..engine.config_loader import (
    build_config,
    check_field_types,
    field_names,
    merge_overrides,
    read_toml,
    shipped_names,
)
from .model import POOLERS

RECIPE_FOLDER = "recipes/detection"
DATASETS = ("voc", "coco", "synthetic")
# Recipes and run directories written before detection shared the engine's ``precision`` key said
# ``autocast = "none" | "auto" | "bf16" | "fp16"``; they still load, read as the precision below
# ("none" was fp32). Only the reading is kept: nothing writes the old key.
LEGACY_AUTOCAST = {"none": "fp32", "auto": "auto", "bf16": "bf16", "fp16": "fp16"}


@dataclass(frozen=True)
class DetectionConfig:
    name: str = "custom"
    # data
    dataset: str = "synthetic"
    train_sets: tuple[str, ...] = ()  # VOC: "VOC2007/trainval"; COCO: "train2017" (under --data)
    test_set: str = ""
    synthetic_size: int = 256  # synthetic images are synthetic_size^2
    synthetic_train: int = 2000
    synthetic_test: int = 200
    min_size: int = 600  # shorter side (Sec. 4.3); capped so the longer side <= max_size
    max_size: int = 1000
    flip: bool = True
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN  # [0, 1] scale; a checkpoint's wins
    pixel_std: tuple[float, float, float] = (1.0, 1.0, 1.0)  # the paper subtracts the mean only
    # model
    backbone: str = "resnet101"
    weights: str = ""  # resnetlab checkpoint / run dir, or .pt / .safetensors; "" = random init
    freeze_at: int = 2  # conv1 and layer1 (conv2_x) stay fixed
    freeze_bn: bool = True
    anchor_sizes: tuple[float, ...] = (128.0, 256.0, 512.0)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_batch_size: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_nms_iou: float = 0.7
    rpn_pre_nms_train: int = 12000
    rpn_post_nms_train: int = 2000
    rpn_pre_nms_test: int = 6000
    rpn_post_nms_test: int = 300
    pooler: str = "roi_pool"
    pool_size: int = 14
    roi_batch_size: int = 128
    roi_positive_fraction: float = 0.25
    test_nms_iou: float = 0.3
    score_threshold: float = 0.05
    # optimisation (Faster R-CNN: SGD, momentum 0.9, weight decay 1e-4, step schedule)
    images_per_batch: int = 1
    iterations: int = 80000
    lr: float = 0.001
    lr_steps: tuple[int, ...] = (60000,)
    lr_gamma: float = 0.1
    warmup_iterations: int = 0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    # The engine's precisions (engine/precision.py): fp32 is the paper's arithmetic; "auto" is bf16
    # where the hardware computes it natively (fp16 with loss scaling on CUDA without bf16).
    precision: str = "fp32"
    device: str = "auto"  # "auto": CUDA if present, else CPU (as training's)
    seed: int = 0
    workers: int = 0
    log_every: int = 20
    checkpoint_every: int = 5000

    def __post_init__(self) -> None:
        check_field_types(self)
        choices = {"dataset": DATASETS, "pooler": POOLERS, "precision": PRECISIONS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        check_device_name(self.device)
        positive = (
            "min_size",
            "max_size",
            "pool_size",
            "images_per_batch",
            "iterations",
            "rpn_batch_size",
            "roi_batch_size",
            "synthetic_size",
            "synthetic_train",
            "synthetic_test",
            "log_every",
            "checkpoint_every",
        )
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in (
            "warmup_iterations",
            "workers",
            "seed",
            "rpn_pre_nms_train",
            "rpn_post_nms_train",
            "rpn_pre_nms_test",
            "rpn_post_nms_test",
        ):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if list(self.lr_steps) != sorted(self.lr_steps):
            raise ValueError(f"lr_steps must be increasing, got {list(self.lr_steps)}")
        for key in ("rpn_positive_fraction", "roi_positive_fraction"):
            if not 0 < getattr(self, key) <= 1:
                raise ValueError(f"{key} must be in (0, 1], got {getattr(self, key)}")
        if self.freeze_at not in (0, 1, 2):
            raise ValueError(f"freeze_at must be 0, 1 or 2, got {self.freeze_at}")
        if self.dataset != "synthetic" and not (self.train_sets and self.test_set):
            raise ValueError(f"dataset {self.dataset!r} needs train_sets and test_set")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


FIELD_NAMES = field_names(DetectionConfig)


def upgrade_legacy_keys(data: dict, source: str) -> dict:
    """``data`` with an ``autocast`` key of an older recipe or run read as ``precision``."""
    if "autocast" not in data:
        return data
    data = dict(data)
    value = data.pop("autocast")
    if "precision" in data:
        raise ValueError(f"{source}: give precision only (autocast is its former name), not both")
    if value not in LEGACY_AUTOCAST:
        raise ValueError(f"{source}: autocast (now precision) must be one of {tuple(LEGACY_AUTOCAST)}, got {value!r}")
    data["precision"] = LEGACY_AUTOCAST[value]
    return data


def list_recipes() -> list[str]:
    return shipped_names(RECIPE_FOLDER)


def parse_overrides(pairs: list[str]) -> dict:
    """``--set KEY=VALUE`` items as a dict of typed values (TOML; bare words are strings)."""
    return merge_overrides({}, pairs, FIELD_NAMES)


def config_from_dict(data: dict, source: str = "recipe") -> DetectionConfig:
    return build_config(DetectionConfig, upgrade_legacy_keys(data, source), source)


def apply_overrides(config: DetectionConfig, items: list[str]) -> DetectionConfig:
    """``config`` with the ``--set KEY=VALUE`` items applied in order."""
    return config_from_dict(merge_overrides(config.to_dict(), items, FIELD_NAMES), source="--set")


def load_recipe(name: str, overrides: dict | None = None) -> DetectionConfig:
    """A recipe by name (see ``list_recipes()``) or path, with ``overrides`` applied on top."""
    data, source, stem = read_toml(name, RECIPE_FOLDER, "detection recipe", not_found=FileNotFoundError)
    data.setdefault("name", stem)
    data.update(overrides or {})
    return config_from_dict(data, source=source)


__all__ = [
    "FIELD_NAMES",
    "DetectionConfig",
    "apply_overrides",
    "config_from_dict",
    "list_recipes",
    "load_recipe",
    "parse_overrides",
    "upgrade_legacy_keys",
]
