"""Decoding image files of any mode into RGB uint8 tensors, with errors that name the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile

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


def open_image(source: str | Path | bytes, *, draft_size: int | None = None) -> Image.Image:
    """Open and fully decode an image as RGB.

    ``draft_size``: for JPEGs, let the decoder downscale by 1/2, 1/4 or 1/8 while keeping the
    shorter side >= ``draft_size`` (much faster for large photos that will be resized anyway).
    Truncated files raise ``ImageDecodeError`` instead of silently returning grey pixels.
    """
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as error:
        raise ImageDecodeError(name, error.strerror or str(error)) from None
    # Never accept a truncated file as a complete image (PIL's global default, but be explicit).
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with handle:
        try:
            image = Image.open(handle)
            if draft_size and image.format == "JPEG":
                w, h = image.size
                scale = min(w, h) / draft_size
                if scale >= 2:
                    image.draft("RGB", (max(1, int(w / scale)), max(1, int(h / scale))))
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
    return pil_to_tensor(open_image(source, draft_size=draft_size))
