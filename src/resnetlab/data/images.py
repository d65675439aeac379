"""Decoding image files of any mode into RGB uint8 tensors, with errors that name the file.

JPEGs decode through simplejpeg (libjpeg-turbo; the ``[jpeg]`` extra) when it is installed: about
10x faster than going through Pillow for CIFAR-sized images (measured: 37 vs 362 µs per image on a
loaded 2-core host), and bitwise the same pixels on the CIFAR-10 JPEG copy (both use libjpeg-turbo
with the accurate DCT and smooth chroma upsampling; tests/test_images.py compares them). Its
DCT-domain downscaling stands in for Pillow's ``draft``. Everything else, and every JPEG simplejpeg
refuses (CMYK, a damaged file: Pillow then says what is wrong), goes through Pillow.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile

JPEG_MAGIC = b"\xff\xd8\xff"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageDecodeError(ValueError):
    """An unreadable, truncated or non-image file."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparency is composited on white rather than dropped to black."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale the full range to 8 bits instead of clipping it.
        array = np.asarray(image, dtype=np.float64)
        # Mode "I" is also how 16-bit PNG/PGM files open in some Pillow versions: values that fit
        # 16 bits are read as 16-bit (a dark image stays dark); only wider ranges use their peak.
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() <= 65535 else float(array.max())
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def fast_jpeg_decoder():
    """The simplejpeg module, or None when the ``[jpeg]`` extra is not installed."""
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def _draft_target(width: int, height: int, draft_size: int | None) -> tuple[int, int] | None:
    """The size the JPEG decoder may downscale to: the shorter side kept >= ``draft_size``."""
    if not draft_size:
        return None
    scale = min(width, height) / draft_size
    if scale < 2:
        return None
    return max(1, int(width / scale)), max(1, int(height / scale))


def decode_jpeg_fast(data: bytes, *, draft_size: int | None = None) -> np.ndarray | None:
    """RGB ``[H, W, 3]`` uint8 through simplejpeg, or None where Pillow should decode instead."""
    decoder = fast_jpeg_decoder()
    if decoder is None or not data.startswith(JPEG_MAGIC):
        return None
    try:
        height, width, colorspace, _ = decoder.decode_jpeg_header(data)
        if colorspace not in ("YCbCr", "Gray"):
            return None  # CMYK/YCCK: Pillow's conversion (to_rgb)
        target = _draft_target(width, height, draft_size)
        sizes = {}
        if target is not None:
            # Pillow's draft reduces by the largest of 8, 4, 2 that keeps both sides >= the target;
            # asking libjpeg-turbo for at least that size selects the same factor (n/8 with n=8/s).
            ratio = min(width // target[0], height // target[1])
            s = next(f for f in (8, 4, 2, 1) if ratio >= f)
            sizes = {"min_width": -(-width // s), "min_height": -(-height // s)}
        return decoder.decode_jpeg(data, colorspace="RGB", **sizes)
    except ValueError:
        return None  # damaged or unusual: Pillow names the problem (or decodes what it can)


def _read_bytes(source: str | Path | bytes, name: str) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as error:
        raise ImageDecodeError(name, error.strerror or str(error)) from None


def open_image(source: str | Path | bytes, *, draft_size: int | None = None) -> Image.Image:
    """Open and fully decode an image as RGB.

    ``draft_size``: for JPEGs, let the decoder downscale by 1/2, 1/4 or 1/8 while keeping the
    shorter side >= ``draft_size`` (much faster for large photos that will be resized anyway).
    Truncated files raise ``ImageDecodeError`` instead of silently returning grey pixels.
    """
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    data = _read_bytes(source, name)
    fast = decode_jpeg_fast(data, draft_size=draft_size)
    if fast is not None:
        return Image.fromarray(fast, "RGB")
    return _pillow_rgb(data, name, draft_size)


def _pillow_rgb(data: bytes, name: str, draft_size: int | None) -> Image.Image:
    """The Pillow path of ``open_image``: every format, and the errors that name the problem."""
    # Never accept a truncated file as a complete image (PIL's global default, but be explicit).
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with io.BytesIO(data) as handle:
        try:
            image = Image.open(handle)
            target = _draft_target(*image.size, draft_size) if image.format == "JPEG" else None
            if target is not None:
                image.draft("RGB", target)
            image.load()
            return to_rgb(image)
        except Image.DecompressionBombError as error:
            raise ImageDecodeError(name, f"image too large: {error}") from None
        except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as error:
            reason = "not an image file" if isinstance(error, Image.UnidentifiedImageError) else str(error)
            raise ImageDecodeError(name, reason or type(error).__name__) from None


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image to uint8 ``[3, H, W]``."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def decode_image(source: str | Path | bytes, *, draft_size: int | None = None) -> torch.Tensor:
    """uint8 ``[3, H, W]``; JPEGs skip the PIL image when the fast decoder has them."""
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    data = _read_bytes(source, name)
    fast = decode_jpeg_fast(data, draft_size=draft_size)
    if fast is not None:
        return torch.from_numpy(fast).permute(2, 0, 1).contiguous()
    return pil_to_tensor(_pillow_rgb(data, name, draft_size))  # the bytes already read, not the file again
