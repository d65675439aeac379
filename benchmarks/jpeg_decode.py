"""JPEG decoding per core: Pillow vs simplejpeg (the ``[jpeg]`` extra), side by side in one run,
through resnetlab's own ``decode_image`` (what the CIFAR folder loader and the ImageNet workers call).

    python benchmarks/jpeg_decode.py [--cifar ../shared/data/cifar10-jpeg] [--photos 200]

Two sets: CIFAR-10 JPEG files (32x32; skipped without the folder) and generated 500x375 photos
decoded for a 256 shorter side (the ImageNet test path: DCT-domain downscaling, Pillow's ``draft``).
One process, one core; every figure is the best of 3 passes over the same bytes held in memory.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib


def generated_photos(n: int) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        base = rng.integers(0, 255, (24, 32, 3)).astype(np.uint8)  # smooth, photo-like after upscaling
        image = Image.fromarray(base).resize((500, 375), Image.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def rate(blobs: list[bytes], draft_size: int | None, fast: bool) -> float:
    from resnetlab.data import images

    real = images.fast_jpeg_decoder
    if not fast:
        images.fast_jpeg_decoder = lambda: None
    try:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for blob in blobs:
                images.decode_image(blob, draft_size=draft_size)
            best = min(best, time.perf_counter() - start)
    finally:
        images.fast_jpeg_decoder = real
    return len(blobs) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpeg")
    parser.add_argument("--cifar-images", type=int, default=3000)
    parser.add_argument("--photos", type=int, default=200)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from resnetlab.data.images import fast_jpeg_decoder

    if fast_jpeg_decoder() is None:
        sys.exit("simplejpeg is not installed (pip install 'resnetlab[jpeg]'): nothing to compare")
    sets = []
    files = sorted((args.cifar / "train").rglob("*.jpg"))[: args.cifar_images] if args.cifar.is_dir() else []
    if files:
        sets.append((f"CIFAR-10 JPEG ({len(files)} of train), 32x32", [f.read_bytes() for f in files], None))
    sets.append((f"{args.photos} generated 500x375 photos, draft to 256", generated_photos(args.photos), 256))
    host = benchlib.host_info()
    print(f"host: {host['cpu']}, {host['cpus']} CPUs; load {benchlib.load_average()}; one core, best of 3 passes")
    print(f"{'data':<44} {'Pillow':>9} {'simplejpeg':>11} {'ratio':>6}   (images/s per core)")
    for name, blobs, draft in sets:
        slow, fast = rate(blobs, draft, fast=False), rate(blobs, draft, fast=True)
        print(f"{name:<44} {slow:9.0f} {fast:11.0f} {fast / slow:6.2f}")


if __name__ == "__main__":
    main()
