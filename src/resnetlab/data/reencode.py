"""Copies of a JPEG image folder with information removed: the levers to measure what JPEG costs.

The campaign's data is CIFAR-10 re-encoded as JPEG (quality ~75, 4:2:0 chroma), which raises the
test error above the paper's. Its penalty cannot be measured against the clean images (not
available here), but it can be bracketed: train the same run on copies that lose more of the same
kind of information, see how the error grows, and read back towards no loss. JPEG loses two kinds:

- ``reencode_folder(src, dst, quality)``: each image decoded and encoded again by Pillow at
  ``quality`` with 4:2:0 chroma subsampling (the source's own): coarser quantisation.
- ``subsample_chroma_folder(src, dst, factor)``: colour at a coarser resolution, brightness kept.
  4:2:0 stores one colour sample per 2x2 pixels (16x16 for a 32x32 image); ``factor`` 4 keeps one
  per 4x4 (8x8). The copy is stored at quality 100 with no further subsampling (4:4:4), which adds
  about 0.5 RMS pixel units on its own, against the ~3.6 that halving CIFAR's colour resolution does.

Each mirrors ``src``'s ``SPLIT/CLASS/*.jpg`` tree into ``dst``, deterministically for a given
Pillow/libjpeg; ``dst/REENCODED.json`` records the source, what was done and the image count, and a
complete copy is reused, never rewritten.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

MARKER = "REENCODED.json"
SUFFIXES = (".jpg", ".jpeg", ".JPG", ".JPEG")
CHROMA_FACTORS = (4, 8, 16, 32)

# JFIF's RGB <-> YCbCr (ITU-R BT.601, full range), in floating point: Pillow's own conversion rounds
# each channel to 8 bits, which alone moves the pixels by ~1.5 RMS units.
_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_TO_RGB = np.linalg.inv(_TO_YCC)


def reencode_folder(src: str | Path, dst: str | Path, quality: int) -> Path:
    """Re-encode every JPEG of ``src`` into ``dst`` at ``quality`` (1..95); returns ``dst``."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer in 1..95, got {quality!r}")

    def save(image: Image.Image, out: Path) -> None:
        image.convert("RGB").save(out, "JPEG", quality=quality, subsampling=2)

    return _mirror(src, dst, {"quality": quality, "subsampling": "4:2:0"}, save)


def subsample_chroma(image: Image.Image, factor: int) -> Image.Image:
    """``image`` with its colour (Cb, Cr) averaged over ``factor`` x ``factor`` pixel blocks and
    interpolated back (bilinear, as a JPEG decoder's smooth upsampling does); brightness (Y) kept."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    ycc = rgb @ _TO_YCC.T
    height, width = rgb.shape[:2]
    small = (math.ceil(width / factor), math.ceil(height / factor))
    for channel in (1, 2):
        plane = Image.fromarray(ycc[..., channel].astype(np.float32), mode="F")
        plane = plane.resize(small, Image.Resampling.BOX).resize((width, height), Image.Resampling.BILINEAR)
        ycc[..., channel] = np.asarray(plane, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(ycc @ _TO_RGB.T), 0, 255).astype(np.uint8), mode="RGB")


def subsample_chroma_folder(src: str | Path, dst: str | Path, factor: int) -> Path:
    """Copy every JPEG of ``src`` into ``dst`` with colour kept at 1/``factor`` of the resolution
    per axis (4, 8, 16 or 32; the source's 4:2:0 is 2); returns ``dst``."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor not in CHROMA_FACTORS:
        raise ValueError(f"chroma factor must be one of {', '.join(map(str, CHROMA_FACTORS))}, got {factor!r}")

    def save(image: Image.Image, out: Path) -> None:
        subsample_chroma(image, factor).save(out, "JPEG", quality=100, subsampling=0)

    return _mirror(src, dst, {"chroma_factor": factor, "stored": "JPEG quality 100, 4:4:4"}, save)


def _mirror(src: str | Path, dst: str | Path, recipe: dict, save: Callable[[Image.Image, Path], None]) -> Path:
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"no image folder at {src}")
    files = sorted(p for p in src.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{src} holds no JPEG files to re-encode")
    wanted = {"source": str(src), **recipe, "images": len(files)}
    marker = dst / MARKER
    if marker.is_file():
        if json.loads(marker.read_text()) == wanted:
            return dst
        raise ValueError(f"{dst} holds another re-encoding ({marker.read_text().strip()}); choose another folder")
    if dst.exists() and any(dst.iterdir()):
        raise ValueError(f"{dst} exists and is not a re-encoded copy of {src}; choose another folder")
    # Written under a temporary name and renamed when complete: a kill leaves no half copy behind.
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for path in files:
        out = tmp / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            save(image, out)
    (tmp / MARKER).write_text(json.dumps(wanted, indent=2) + "\n")
    if dst.exists():
        dst.rmdir()  # empty (checked above)
    tmp.rename(dst)
    return dst
