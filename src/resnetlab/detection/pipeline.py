"""Building, loading, running and evaluating a detector from a ``DetectionConfig``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints.checkpoint import load_checkpoint, load_model, resolve_checkpoint
from ..checkpoints.interop import load_state_dict, read_state_dict, strip_prefixes
from ..data.imagenet_stats import IMAGENET_MEAN, IMAGENET_STD
from ..engine.precision import autocast_for
from ..evaluation.detection import COCOEvaluator, VOCEvaluator
from ..models import build_model, model_info
from ..progress import PLAIN_EVERY_SECONDS, Progress
from .config import DetectionConfig, config_from_dict
from .datasets import (
    COCODetection,
    ConcatDetection,
    Sample,
    SyntheticDetection,
    VOCDetection,
    batch_images,
    resize_sample,
)
from .model import FasterRCNN, HeadSettings
from .rpn import RPNSettings

CHECKPOINT_KIND = "faster_rcnn_c4"


def _backbone(
    config: DetectionConfig, options: dict | None = None
) -> tuple[torch.nn.Module, tuple | None, tuple | None, dict]:
    """The ResNet with its pre-trained weights, the pixel mean/std those weights expect (None:
    unknown, the recipe's apply) and the ``build_model`` options it was built with.

    ``options`` (a saved detector's) are used as they are. Otherwise they come with the weights:
    a resnetlab checkpoint or ``.safetensors`` file records them; a bare state dict cannot, and is
    read as what such files nearly always are, torchvision/timm weights: "v1.5" bottlenecks
    (stride on the 3x3, see ``checkpoints/interop.py``) trained on inputs normalised by the ImageNet
    mean and std. Without that std a frozen-BN backbone sees inputs ~4.4x too large.
    """
    if options is not None or not config.weights:
        return build_model(config.backbone, **(options or {})), None, None, dict(options or {})
    path = Path(config.weights)
    metadata = _resnetlab_metadata(path) if path.suffix == ".safetensors" else None
    if path.suffix == ".safetensors" or (path.suffix in (".pt", ".pth") and not _is_resnetlab(path)):
        if metadata is not None:
            name, options, preprocess = metadata
            _check_name(path, name, config.backbone)
            mean, std = _pixel_stats(preprocess)
        else:
            options = {"stride_on": "3x3"} if "stride_on" in model_info(config.backbone).options else {}
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        backbone = build_model(config.backbone, **options)
        report = load_state_dict(backbone, _trunk(read_state_dict(path)), strict=False, source=str(path))
    else:
        loaded = load_model(path)
        _check_name(path, loaded.name, config.backbone)
        options = {k: v for k, v in loaded.options.items() if k != "num_classes"}
        backbone = build_model(config.backbone, **options)
        report = load_state_dict(backbone, _trunk(loaded.model.state_dict()), strict=False, source=str(path))
        mean, std = _pixel_stats(loaded.preprocess)
    trunk_missing = [k for k in report.missing if not k.startswith("fc.")]
    if trunk_missing:
        raise ValueError(f"weights {path} do not fit {config.backbone}: {report.describe()}")
    return backbone, tuple(mean), tuple(std), options


def _trunk(state: dict) -> dict:
    """Without the classifier, which the detection heads replace: a classifier of another width
    (10 classes, not 1000) must not stop its trunk from being used."""
    return {k: v for k, v in strip_prefixes(state).items() if not k.startswith("fc.")}


def _check_name(path: Path, name: str, backbone: str) -> None:
    if name != backbone:
        raise ValueError(f"weights {path} are a {name}, but backbone is {backbone}")


def _pixel_stats(preprocess) -> tuple[tuple, tuple]:
    """Per-channel mean (of a per-pixel mean image, as the paper subtracts) and std."""
    mean = tuple(float(v) for v in preprocess.mean_image.float().mean(dim=(1, 2)))
    return mean, tuple(float(v) for v in preprocess.std)


def _resnetlab_metadata(path: Path) -> tuple[str, dict, object] | None:
    """``(name, options without num_classes, Preprocess)`` of a resnetlab ``.safetensors`` file."""
    import json

    from safetensors import safe_open

    from ..checkpoints.checkpoint import FORMAT
    from ..checkpoints.loading import preprocess_from_json

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != FORMAT or "arch" not in metadata or "preprocess" not in metadata:
            return None
        arch = json.loads(metadata["arch"])
        options = {k: v for k, v in dict(arch.get("options", {})).items() if k != "num_classes"}
        return str(arch["name"]), options, preprocess_from_json(metadata["preprocess"])
    except Exception as error:  # unreadable file or metadata: say which file
        raise ValueError(f"cannot read weights {path}: {error}") from None


def _is_resnetlab(path: Path) -> bool:
    try:
        load_checkpoint(path)
        return True
    except ValueError:
        return False


def build_detector(
    config: DetectionConfig, num_classes: int, backbone_options: dict | None = None
) -> tuple[FasterRCNN, tuple, tuple]:
    """The C4 Faster R-CNN of ``config`` and the pixel (mean, std) its input needs.

    ``backbone_options``: ``build_model`` options of a saved detector's backbone; by default
    they come with ``config.weights``. The model keeps them as ``backbone_options``.
    """
    backbone, mean, std, options = _backbone(config, backbone_options)
    rpn = RPNSettings(
        anchor_sizes=config.anchor_sizes,
        anchor_ratios=config.anchor_ratios,
        batch_size=config.rpn_batch_size,
        positive_fraction=config.rpn_positive_fraction,
        nms_iou=config.rpn_nms_iou,
        pre_nms_top_n=(config.rpn_pre_nms_train, config.rpn_pre_nms_test),
        post_nms_top_n=(config.rpn_post_nms_train, config.rpn_post_nms_test),
    )
    head = HeadSettings(
        pooler=config.pooler,
        pool_size=config.pool_size,
        batch_size=config.roi_batch_size,
        positive_fraction=config.roi_positive_fraction,
        nms_iou=config.test_nms_iou,
        score_threshold=config.score_threshold,
    )
    model = FasterRCNN(backbone, num_classes, rpn, head, freeze_at=config.freeze_at, freeze_bn=config.freeze_bn)
    model.backbone_options = options  # saved with the detector: stride_on changes what it computes
    return model, mean or config.pixel_mean, std or config.pixel_std


def build_dataset(config: DetectionConfig, data: str | Path | None, train: bool):
    """The training (``train=True``) or test set of ``config`` under the ``data`` folder."""
    if config.dataset == "synthetic":
        # A different seed for the test images: none of them is seen in training.
        seed = config.seed if train else config.seed + 1_000_003
        size = config.synthetic_size
        return SyntheticDetection(
            size,
            config.synthetic_train if train else config.synthetic_test,
            seed,
            min_side=max(4, round(size * 0.1)),
            max_side=max(8, round(size * 0.375)),
        )
    if data is None:
        raise ValueError(f"dataset {config.dataset!r} needs --data DIR")
    data = Path(data)
    names = config.train_sets if train else (config.test_set,)
    parts = []
    for name in names:
        if config.dataset == "voc":  # "VOC2007/trainval" -> VOCdevkit/VOC2007, split trainval
            root, _, split = name.rpartition("/")
            parts.append(VOCDetection(data / root, split))
        else:  # "train2017" -> train2017/ and annotations/instances_train2017.json
            parts.append(COCODetection(data / name, data / "annotations" / f"instances_{name}.json"))
    return parts[0] if len(parts) == 1 else ConcatDetection(parts)


@dataclass
class Detector:
    """A trained detector ready to run: the model, its classes and input settings."""

    model: FasterRCNN
    config: DetectionConfig
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    iteration: int = 0

    @torch.no_grad()
    def predict(self, images: list[torch.Tensor], precision: str = "fp32") -> list[dict[str, torch.Tensor]]:
        """uint8 ``[3, H, W]`` images of any size -> boxes (in their pixels), scores, labels;
        ``precision`` as ``engine.precision.autocast_for`` takes it (``fp32``, ``bf16``, ``fp16``)."""
        self.model.eval()
        samples = [
            resize_sample(
                Sample(im, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.bool)),
                self.config.min_size,
                self.config.max_size,
            )
            for im in images
        ]
        batch, sizes = batch_images([s.image for s in samples], self.mean, self.std)
        device = next(self.model.parameters()).device  # the model's device; results come back on the CPU
        with autocast_for(device, precision):
            outputs = self.model(batch.to(device), sizes)
        results = []
        for sample, out in zip(samples, outputs):
            boxes = out["boxes"].float().cpu() / sample.scale  # back to the original image's pixels
            results.append({"boxes": boxes, "scores": out["scores"].float().cpu(), "labels": out["labels"].cpu()})
        return results


def detector_payload(detector: Detector) -> dict:
    return {
        "kind": CHECKPOINT_KIND,
        "config": detector.config.to_dict(),
        "classes": list(detector.classes),
        "pixel_mean": list(detector.mean),
        "pixel_std": list(detector.std),
        "model": {k: v.detach().cpu() for k, v in detector.model.state_dict().items()},
        "backbone_options": dict(getattr(detector.model, "backbone_options", {})),
        "iteration": detector.iteration,
    }


def load_detector(path: str | Path, device: str | torch.device = "cpu") -> Detector:
    """Rebuild a detector from a checkpoint (or run directory) written by ``train_detector``, on
    ``device``."""
    path = resolve_checkpoint(path)
    payload = load_checkpoint(path)
    if payload.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path} is not a detection checkpoint (kind {CHECKPOINT_KIND})")
    config = config_from_dict({**payload["config"], "weights": ""}, source=str(path))
    # Detectors saved before backbone options were recorded were all built with the defaults.
    model, _, _ = build_detector(config, len(payload["classes"]), dict(payload.get("backbone_options", {})))
    load_state_dict(model, payload["model"], source=str(path))
    model.to(device).eval()
    return Detector(
        model,
        config,
        tuple(payload["classes"]),
        tuple(payload["pixel_mean"]),
        tuple(payload["pixel_std"]),
        int(payload.get("iteration", 0)),
    )


def evaluate_detector(
    detector: Detector,
    dataset,
    limit: int | None = None,
    precision: str = "fp32",
    *,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    progress_tty: bool | None = None,
) -> dict:
    """VOC mAP@0.5 (area and 11-point) and COCO AP on ``dataset`` (ground truth at original size).
    ``progress``: a bar on a terminal stderr, else a plain line every 30 s (to ``log``, default stderr)."""
    voc = VOCEvaluator(len(detector.classes))
    coco = COCOEvaluator(len(detector.classes))
    count = len(dataset) if limit is None else min(limit, len(dataset))
    with Progress(
        count, tty=progress_tty, log=log, desc="eval", unit="img", plain_every=PLAIN_EVERY_SECONDS, disable=not progress
    ) as bar:
        for index in range(count):
            sample = dataset[index]
            det = detector.predict([sample.image], precision=precision)[0]
            voc.add(sample.boxes, sample.labels, sample.ignore, det["boxes"], det["scores"], det["labels"])
            coco.add(
                sample.boxes,
                sample.labels,
                sample.ignore,
                det["boxes"],
                det["scores"],
                det["labels"],
                gt_areas=sample.areas,
            )
            bar.update(index + 1)
    v = voc.compute()
    return {"images": count, "mAP50": v["mAP"], "mAP50_07": v["mAP_07"], "ap50_per_class": v["ap"], **coco.compute()}
