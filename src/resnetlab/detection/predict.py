"""``resnetlab detect predict``'s outputs: per image, ``<stem>.json`` (boxes in the image's own
pixels, scores, class names) and ``<stem>.png`` (the image with its boxes drawn), written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from ..checkpoints.atomic import refuse_existing, staged_output
from ..data.images import decode_image
from .pipeline import Detector


def prediction_outputs(images: list[str], out: Path, overwrite: bool) -> list[tuple[Path, Path]]:
    """``<stem>.json`` and ``<stem>.png`` per image, checked before any work: two images with one
    stem, an output that is an input image, or (without ``overwrite``) an existing file are refused."""
    outputs, seen = [], {}
    inputs = {Path(p).resolve() for p in images}
    for path in images:
        stem = Path(path).stem
        if stem in seen:
            raise ValueError(f"{seen[stem]} and {path} would both write {out / stem}.json; predict them separately")
        seen[stem] = path
        pair = (out / f"{stem}.json", out / f"{stem}.png")
        for target in pair:
            if target.resolve() in inputs:
                raise ValueError(f"{target} is an input image and would be overwritten; choose another --out")
            refuse_existing(target, overwrite)
        outputs.append(pair)
    return outputs


def detection_rows(detection: dict, classes: tuple[str, ...], threshold: float) -> list[dict]:
    """The detections scoring at least ``threshold`` as JSON rows (box, score, class name)."""
    keep = detection["scores"] >= threshold
    return [
        {"box": [round(v, 2) for v in box], "score": round(score, 4), "label": classes[label - 1]}
        for box, score, label in zip(
            detection["boxes"][keep].tolist(), detection["scores"][keep].tolist(), detection["labels"][keep].tolist()
        )
    ]


def save_detections(
    detector: Detector,
    image_path: str | Path,
    json_path: Path,
    png_path: Path,
    threshold: float = 0.5,
    overwrite: bool = False,
) -> int:
    """Detect the objects of one image file and write both outputs; returns how many were kept."""
    image = decode_image(image_path)
    det = detector.predict([image])[0]
    rows = detection_rows(det, detector.classes, threshold)
    with staged_output(json_path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps({"image": str(image_path), "detections": rows}, indent=2) + "\n")
    with staged_output(png_path, overwrite=overwrite) as tmp:
        draw_detections(image, det, detector.classes, threshold).save(tmp)
    return len(rows)


def draw_detections(
    image: torch.Tensor, detection: dict, classes: tuple[str, ...], threshold: float = 0.5
) -> Image.Image:
    """The image with every box scoring at least ``threshold``, labelled with class and score."""
    picture = Image.fromarray(image.permute(1, 2, 0).numpy())
    draw = ImageDraw.Draw(picture)
    for box, score, label in zip(
        detection["boxes"].tolist(), detection["scores"].tolist(), detection["labels"].tolist()
    ):
        if score < threshold:
            continue
        colour = ((label * 97) % 256, (label * 57 + 80) % 256, (label * 151 + 160) % 256)
        draw.rectangle(box, outline=colour, width=2)
        draw.text((box[0] + 2, box[1] + 1), f"{classes[label - 1]} {score:.2f}", fill=colour)
    return picture
