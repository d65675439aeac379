"""Detection data: PASCAL VOC, COCO, and a built-in synthetic set; resizing and batching.

A sample is a ``Sample``: uint8 image ``[3, H, W]``, boxes ``[N, 4]`` (x1, y1, x2, y2, continuous
pixels), labels ``[N]`` in 1..C (0 is background), and ``ignore`` ``[N]``: VOC's ``difficult`` and
COCO's ``iscrowd`` objects, which are left out of training and neither help nor hurt evaluation.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ..data.images import decode_image

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
SYNTHETIC_CLASSES = ("circle", "square", "triangle")
CLASS_COLOURS = ((220, 50, 50), (50, 200, 60), (50, 90, 230))


@dataclass
class Sample:
    image: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    ignore: torch.Tensor
    image_id: int | str = 0
    areas: torch.Tensor | None = None  # COCO's annotated areas (segment area) for the size ranges
    scale: float = 1.0  # factor from the original image to this one


class VOCDetection:
    """One VOC root (``VOCdevkit/VOC2007``) and split (``ImageSets/Main/<split>.txt``)."""

    def __init__(self, root: str | Path, split: str, classes: tuple[str, ...] = VOC_CLASSES) -> None:
        self.root = Path(root)
        self.classes = tuple(classes)
        ids_file = self.root / "ImageSets" / "Main" / f"{split}.txt"
        if not ids_file.is_file():
            raise FileNotFoundError(f"no VOC split file {ids_file}")
        self.ids = [line.strip().split()[0] for line in ids_file.read_text().splitlines() if line.strip()]

    def __len__(self) -> int:
        return len(self.ids)

    def annotation(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        path = self.root / "Annotations" / f"{self.ids[index]}.xml"
        if not path.is_file():
            raise FileNotFoundError(f"no VOC annotation {path}")
        boxes, labels, difficult = [], [], []
        for obj in ET.parse(path).getroot().iter("object"):
            name = obj.findtext("name", "").strip()
            if name not in self.classes:
                raise ValueError(f"{path}: unknown class {name!r}; classes are {', '.join(self.classes)}")
            box = obj.find("bndbox")
            # VOC boxes are 1-based inclusive pixel indices: (xmin - 1, ymin - 1, xmax, ymax) is the
            # same region in continuous coordinates, so IoU equals VOC's "+1" IoU.
            x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((x1 - 1, y1 - 1, x2, y2))
            labels.append(self.classes.index(name) + 1)
            difficult.append(obj.findtext("difficult", "0").strip() == "1")
        return (
            torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.tensor(labels, dtype=torch.long),
            torch.tensor(difficult, dtype=torch.bool),
        )

    def __getitem__(self, index: int) -> Sample:
        boxes, labels, difficult = self.annotation(index)
        image = decode_image(self.root / "JPEGImages" / f"{self.ids[index]}.jpg")
        return Sample(image, boxes, labels, difficult, image_id=self.ids[index])


class COCODetection:
    """COCO ``instances_*.json`` + image folder; category ids map to labels 1..C in id order."""

    def __init__(self, image_dir: str | Path, annotation_file: str | Path) -> None:
        self.image_dir = Path(image_dir)
        annotation_file = Path(annotation_file)
        if not annotation_file.is_file():
            raise FileNotFoundError(f"no COCO annotation file {annotation_file}")
        data = json.loads(annotation_file.read_text())
        categories = sorted(data["categories"], key=lambda c: c["id"])
        self.category_ids = [c["id"] for c in categories]
        self.classes = tuple(c["name"] for c in categories)
        label_of = {cid: i + 1 for i, cid in enumerate(self.category_ids)}
        self.images = sorted(data["images"], key=lambda im: im["id"])
        self.anns: dict[int, list] = {im["id"]: [] for im in self.images}
        for ann in data.get("annotations", []):
            if ann["category_id"] not in label_of:
                raise ValueError(f"{annotation_file}: annotation {ann.get('id')} has unknown category_id")
            self.anns.setdefault(ann["image_id"], []).append(ann)
        self.label_of = label_of

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        info = self.images[index]
        boxes, labels, crowd, areas = [], [], [], []
        for ann in self.anns[info["id"]]:
            x, y, w, h = ann["bbox"]
            boxes.append((x, y, x + w, y + h))
            labels.append(self.label_of[ann["category_id"]])
            crowd.append(bool(ann.get("iscrowd", 0)))
            areas.append(float(ann.get("area", w * h)))
        image = decode_image(self.image_dir / info["file_name"])
        return Sample(
            image,
            torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.tensor(labels, dtype=torch.long),
            torch.tensor(crowd, dtype=torch.bool),
            image_id=info["id"],
            areas=torch.tensor(areas, dtype=torch.float32),
        )


class ConcatDetection:
    """Several sets as one, e.g. VOC "07+12" (2007 trainval + 2012 trainval)."""

    def __init__(self, parts: list) -> None:
        if not parts:
            raise ValueError("no datasets to join")
        self.parts = parts
        self.classes = parts[0].classes
        for part in parts[1:]:
            if part.classes != self.classes:
                raise ValueError("datasets to join must have the same classes")
        self.offsets = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> Sample:
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.parts[part][index - int(self.offsets[part])]


@dataclass(frozen=True)
class SyntheticDetection:
    """Coloured circles, squares and triangles on cluttered backgrounds, deterministic from ``seed``.

    Clutter (noise, thin lines and small blobs of random colours) makes the background non-trivial.
    Each class has a hue of its own (red circles, green squares, blue triangles, jittered), so a
    small network learns it in minutes; clutter of any colour keeps colour alone from sufficing.
    """

    size: int = 256
    length: int = 512
    seed: int = 0
    max_objects: int = 4
    min_side: int = 24
    max_side: int = 96
    classes: tuple[str, ...] = field(default=SYNTHETIC_CLASSES)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        s = self.size
        base = rng.integers(40, 216, size=3)
        noise = rng.normal(0, 18, size=(s, s, 3)) + base
        image = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(3, 9))):  # clutter: lines and small blobs
            colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
            x, y = rng.integers(0, s, size=2)
            if rng.random() < 0.5:
                dx, dy = rng.integers(-s // 2, s // 2, size=2)
                draw.line((int(x), int(y), int(x + dx), int(y + dy)), fill=colour, width=int(rng.integers(1, 4)))
            else:
                r = int(rng.integers(2, max(3, self.min_side // 3)))
                draw.ellipse((int(x) - r, int(y) - r, int(x) + r, int(y) + r), fill=colour)
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, self.max_objects + 1))):
            side = int(rng.integers(self.min_side, self.max_side + 1))
            x1, y1 = (int(v) for v in rng.integers(0, s - side, size=2))
            box = (x1, y1, x1 + side, y1 + side)
            if boxes and float(_iou_np(np.array([box]), np.array(boxes)).max()) > 0.3:
                continue  # keep objects mostly apart so each is identifiable
            label = int(rng.integers(1, len(self.classes) + 1))
            colour = tuple(
                int(c)
                for c in np.clip(np.array(CLASS_COLOURS[(label - 1) % 3]) + rng.integers(-40, 41, size=3), 0, 255)
            )
            if label == 1:
                draw.ellipse((x1, y1, x1 + side - 1, y1 + side - 1), fill=colour)
            elif label == 2:
                draw.rectangle((x1, y1, x1 + side - 1, y1 + side - 1), fill=colour)
            else:
                draw.polygon(((x1 + side / 2, y1), (x1, y1 + side - 1), (x1 + side - 1, y1 + side - 1)), fill=colour)
            boxes.append(box)
            labels.append(label)
        tensor = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()
        return Sample(
            tensor,
            torch.tensor(boxes, dtype=torch.float32),
            torch.tensor(labels, dtype=torch.long),
            torch.zeros(len(labels), dtype=torch.bool),
            image_id=index,
        )


def _iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def resize_scale(height: int, width: int, min_size: int, max_size: int) -> float:
    """Faster R-CNN's rescaling: shorter side to ``min_size`` unless the longer exceeds ``max_size``."""
    scale = min_size / min(height, width)
    if round(scale * max(height, width)) > max_size:
        scale = max_size / max(height, width)
    return scale


def resize_sample(sample: Sample, min_size: int, max_size: int, flip: bool = False) -> Sample:
    _, h, w = sample.image.shape
    scale = resize_scale(h, w, min_size, max_size)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    image = (
        F.interpolate(sample.image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=scale < 1)[
            0
        ]
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
    )
    sy, sx = size[0] / h, size[1] / w
    boxes = sample.boxes * torch.tensor([sx, sy, sx, sy])
    if flip:  # horizontal flip, the only augmentation of Fast/Faster R-CNN
        image = image.flip(-1)
        boxes = torch.stack((size[1] - boxes[:, 2], boxes[:, 1], size[1] - boxes[:, 0], boxes[:, 3]), 1)
    return Sample(image, boxes, sample.labels, sample.ignore, sample.image_id, sample.areas, scale * sample.scale)


def batch_images(
    images: list[torch.Tensor], mean: tuple[float, ...], std: tuple[float, ...], divisor: int = 16
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Normalise uint8 images and zero-pad them (after normalisation) to one ``[N, 3, H, W]`` batch."""
    sizes = [(int(im.shape[1]), int(im.shape[2])) for im in images]
    height = math.ceil(max(s[0] for s in sizes) / divisor) * divisor
    width = math.ceil(max(s[1] for s in sizes) / divisor) * divisor
    batch = torch.zeros(len(images), 3, height, width)
    m = torch.tensor(mean).view(3, 1, 1)
    d = torch.tensor(std).view(3, 1, 1)
    for i, im in enumerate(images):
        batch[i, :, : im.shape[1], : im.shape[2]] = (im.float() / 255.0 - m) / d
    return batch, sizes


def training_targets(sample: Sample) -> dict[str, torch.Tensor]:
    """Boxes and labels to learn from: ignored (difficult / crowd) objects are left out."""
    keep = ~sample.ignore
    return {"boxes": sample.boxes[keep], "labels": sample.labels[keep]}
