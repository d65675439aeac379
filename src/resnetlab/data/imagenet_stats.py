"""The ImageNet per-channel pixel mean and standard deviation, on the [0, 1] scale, defined once.

The paper subtracts a per-pixel mean image (Sec. 3.4, following AlexNet); these channel statistics
are the ones torchvision and timm weights were trained with (mean and std normalisation), used by
the "inception" augmentation, by weights imported in that layout and by detection backbones.
"""

from __future__ import annotations

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
