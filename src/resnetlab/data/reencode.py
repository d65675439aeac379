"""A JPEG image folder re-encoded at a lower quality: the lever to measure what JPEG costs.

The campaign's data is CIFAR-10 re-encoded as JPEG (quality ~75, 4:2:0 chroma), which raises the
test error above the paper's. Its penalty cannot be measured against the clean images (not
available here), but it can be bracketed: train the same run on copies re-encoded again at lower
qualities, see how the error grows as information is removed, and extrapolate back to no loss.

``reencode_folder(src, dst, quality)`` mirrors ``src``'s ``SPLIT/CLASS/*.jpg`` tree into ``dst``,
each image decoded and encoded again by Pillow at ``quality`` with 4:2:0 chroma subsampling (the
source's own). The result is deterministic for a given Pillow/libjpeg, and ``dst/REENCODED.json``
records the source, the quality and the image count; a complete copy is reused, never rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from PIL import Image

MARKER = "REENCODED.json"
SUFFIXES = (".jpg", ".jpeg", ".JPG", ".JPEG")


def reencode_folder(src: str | Path, dst: str | Path, quality: int) -> Path:
    """Re-encode every JPEG of ``src`` into ``dst`` at ``quality`` (1..95); returns ``dst``."""
    src, dst = Path(src), Path(dst)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer in 1..95, got {quality!r}")
    if not src.is_dir():
        raise FileNotFoundError(f"no image folder at {src}")
    files = sorted(p for p in src.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{src} holds no JPEG files to re-encode")
    wanted = {"source": str(src), "quality": quality, "subsampling": "4:2:0", "images": len(files)}
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
            image.convert("RGB").save(out, "JPEG", quality=quality, subsampling=2)
    (tmp / MARKER).write_text(json.dumps(wanted, indent=2) + "\n")
    if dst.exists():
        dst.rmdir()  # empty (checked above)
    tmp.rename(dst)
    return dst
