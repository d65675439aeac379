"""Detection recipes: small TOML files parsed into one frozen, validated dataclass.

``load_recipe("voc-resnet101")`` reads ``resnetlab/recipes/detection/voc-resnet101.toml`` (or any
path ending in ``.toml``); ``overrides`` (``--set key=value``) apply on top. Unknown keys are
rejected by name, so a typo never silently trains the default.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .model import POOLERS

RECIPE_DIR = Path(__file__).resolve().parent.parent / "recipes" / "detection"
DATASETS = ("voc", "coco", "synthetic")
AUTOCAST = ("none", "bf16")


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
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # [0, 1] scale; a checkpoint's wins
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
    autocast: str = "none"
    seed: int = 0
    workers: int = 0
    log_every: int = 20
    checkpoint_every: int = 5000

    def __post_init__(self) -> None:
        defaults = {f.name: f.default for f in fields(self)}
        for f in fields(self):
            value, default = getattr(self, f.name), defaults[f.name]
            if isinstance(default, tuple):
                if not isinstance(value, (tuple, list)):
                    raise ValueError(f"{f.name} must be a list, got {value!r}")
                object.__setattr__(self, f.name, tuple(value))
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{f.name} must be true or false, got {value!r}")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{f.name} must be an integer, got {value!r}")
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{f.name} must be a number, got {value!r}")
                object.__setattr__(self, f.name, float(value))
            elif isinstance(default, str) and not isinstance(value, str):
                raise ValueError(f"{f.name} must be a string, got {value!r}")
        choices = {"dataset": DATASETS, "pooler": POOLERS, "autocast": AUTOCAST}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        positive = ("min_size", "max_size", "pool_size", "images_per_batch", "iterations", "rpn_batch_size",
                    "roi_batch_size", "synthetic_size", "synthetic_train", "synthetic_test", "log_every")
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
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


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {pair!r} is not KEY=VALUE")
        out[key.strip()] = _parse_value(value)
    return out


def config_from_dict(data: dict, source: str = "recipe") -> DetectionConfig:
    known = {f.name for f in fields(DetectionConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
    return DetectionConfig(**data)


def load_recipe(name: str, overrides: dict | None = None) -> DetectionConfig:
    """A recipe by name (see ``list_recipes()``) or path, with ``overrides`` applied on top."""
    path = Path(name) if name.endswith(".toml") else RECIPE_DIR / f"{name}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no detection recipe {name!r}; available: {', '.join(list_recipes())}")
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    data.setdefault("name", path.stem)
    data.update(overrides or {})
    return config_from_dict(data, source=str(path))


__all__ = ["DetectionConfig", "load_recipe", "list_recipes", "parse_overrides", "config_from_dict"]
