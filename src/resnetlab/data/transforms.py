"""A decoded image to the network's input, exactly as a checkpoint's ``Preprocess`` records it.

Geometry (resize, centre crop) happens on the PIL image with the rules of the evaluation code, so
``predict`` sees the pixels ``resnetlab evaluate`` sees: JPEG draft decoding and a PIL bilinear
resize of the shorter side as the data workers do (``data.imagenet_loader.load_resized``, sizes from
its ``scaled_size``), then the centre crop of ``evaluation.views.one_crop_views`` (offsets rounded
down). The pixel arithmetic (``/ 255``, minus the mean image, ``/ std``) is ``Preprocess.normalize``
itself, applied to the batch.

- ``resize="shorter_side"`` (ImageNet 1-crop test, Sec. 3.4): shorter side to ``resize_to``, then a
  centre crop of ``input_size`` x ``input_size``.
- ``resize="none"`` (CIFAR, Sec. 4.2: "the single view of the original 32x32 image"): an image of
  the native size is used as it is. An image of another size (a user's photo) is brought to
  ``input_size`` the same way as above with ``resize_to = input_size``: shorter side to
  ``input_size``, centre crop. This keeps the aspect ratio (no stretching) and is a plain resize
  for square images.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from .imagenet_loader import scaled_size
from .images import open_image, pil_to_tensor
from .preprocess import Preprocess


def shorter_side_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """(width, height) with the shorter side equal to ``shorter``, the longer one rounded half up:
    the evaluation workers' rule, so both agree to the pixel."""
    h, w = scaled_size(height, width, shorter)
    return w, h


def center_crop_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of a centred crop, offsets rounded down as in
    ``evaluation.views.one_crop_views``."""
    left, top = (width - size) // 2, (height - size) // 2
    return left, top, left + size, top + size


def resize_and_crop(image: Image.Image, shorter: int, crop: int) -> Image.Image:
    """Shorter side to ``shorter`` (at least ``crop``, so the crop always fits), centre crop."""
    shorter = max(shorter, crop)
    size = shorter_side_size(image.width, image.height, shorter)
    if size != image.size:
        image = image.resize(size, Image.BILINEAR)
    if image.size != (crop, crop):
        image = image.crop(center_crop_box(image.width, image.height, crop))
    return image


def prepare_image(image: Image.Image, preprocess: Preprocess) -> torch.Tensor:
    """An RGB PIL image to uint8 ``[3, input_size, input_size]`` under ``preprocess``'s geometry."""
    size = preprocess.input_size
    if preprocess.resize == "shorter_side":
        image = resize_and_crop(image, preprocess.resize_to, size)
    elif image.size != (size, size):
        image = resize_and_crop(image, size, size)
    return pil_to_tensor(image)


def prepare_tensor(image: torch.Tensor, preprocess: Preprocess) -> torch.Tensor:
    """A uint8 ``[3, H, W]`` tensor (e.g. from a dataset) through the same geometry."""
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a uint8 [3, H, W] image, got {image.dtype} {tuple(image.shape)}")
    size = preprocess.input_size
    if preprocess.resize == "none" and tuple(image.shape[1:]) == (size, size):
        return image
    return prepare_image(Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB"), preprocess)


def load_image(path: str | Path, preprocess: Preprocess) -> torch.Tensor:
    """Decode any image file and prepare it; unreadable files raise ``ImageDecodeError``.

    Large JPEGs are decoded at a reduced scale that keeps the shorter side at least the resize
    target (``open_image``'s draft mode), as the evaluation workers decode them.
    """
    target = preprocess.resize_to if preprocess.resize == "shorter_side" else preprocess.input_size
    return prepare_image(open_image(path, draft_size=max(target, preprocess.input_size)), preprocess)


__all__ = [
    "center_crop_box",
    "load_image",
    "prepare_image",
    "prepare_tensor",
    "resize_and_crop",
    "shorter_side_size",
]
