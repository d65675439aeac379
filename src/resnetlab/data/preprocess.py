"""Test-time preprocessing, recorded in every checkpoint so a loaded model needs no flags.

The paper subtracts the per-pixel mean of the training images and does not divide by a standard
deviation (Sec. 3.4, 4.2); ``std`` exists for the common mean/std deviation and weights from
elsewhere. Pixels are scaled to [0, 1] before the mean is subtracted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

RESIZE_MODES = ("none", "shorter_side")


@dataclass(frozen=True)
class Preprocess:
    """How a raw image becomes the network's input.

    ``resize``: "none" keeps the image as it is (CIFAR, 32x32), "shorter_side" resizes the shorter
    side to ``resize_to`` then centre-crops ``input_size`` (the ImageNet 1-crop protocol).
    ``mean_image`` is ``[3, h, w]`` (per-pixel mean, resized to the input when sizes differ) or
    ``[3, 1, 1]`` (per-channel); both on the [0, 1] scale.
    """

    input_size: int = 32
    resize: str = "none"
    resize_to: int = 32
    mean_image: torch.Tensor = field(default_factory=lambda: torch.zeros(3, 1, 1))
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.mean_image.ndim != 3 or self.mean_image.shape[0] != 3:
            raise ValueError(f"mean_image must be [3, h, w], got {tuple(self.mean_image.shape)}")
        if len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"std must be three positive numbers, got {self.std!r}")

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or [0, 1] float) ``[N, 3, H, W]`` to the network's float input."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        mean = self.mean_image.to(x.device, torch.float32)
        if mean.shape[1:] != (1, 1) and mean.shape[1:] != x.shape[2:]:
            # Fully convolutional testing at other scales: stretch the mean image to the input.
            mean = F.interpolate(mean[None], size=x.shape[2:], mode="bilinear", align_corners=False)[0]
        std = torch.tensor(self.std, device=x.device).view(3, 1, 1)
        return (x - mean) / std

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean_image"] = self.mean_image.detach().cpu().float()
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        d = dict(d)
        d["std"] = tuple(d.get("std", (1.0, 1.0, 1.0)))
        d["mean_image"] = torch.as_tensor(d.get("mean_image", torch.zeros(3, 1, 1))).float()
        unknown = set(d) - {"input_size", "resize", "resize_to", "mean_image", "std"}
        if unknown:
            raise ValueError(f"unknown preprocess key(s): {', '.join(sorted(unknown))}")
        return cls(**d)
