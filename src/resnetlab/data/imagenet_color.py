"""The colour statistics of ImageNet training (Sec. 3.4): the per-pixel mean image the paper
subtracts, and AlexNet's PCA of the RGB covariance whose eigenvectors the lighting noise follows;
the published AlexNet values by default, or estimated once from a sample of the training set."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoints.atomic import staged_output
from ..seeding import generator as seeded
from .datasets import default_cache_dir
from .imagenet import ImageIndex
from .imagenet_loader import DecodeConfig, ImageLoader
from .imagenet_stats import IMAGENET_MEAN

# AlexNet's eigen-decomposition of ImageNet's RGB pixel covariance (pixels on the [0, 1] scale), as
# published with fb.resnet.torch; columns of ALEXNET_EIGVEC are the eigenvectors.
ALEXNET_EIGVAL = (0.2175, 0.0188, 0.0045)
ALEXNET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


@dataclass(frozen=True)
class ColorStats:
    """Mean image ``[3, h, w]`` (or ``[3, 1, 1]``) on the [0, 1] scale and the RGB covariance's
    eigenvalues ``[3]`` and eigenvectors (columns of ``[3, 3]``) for the PCA colour noise."""

    mean_image: torch.Tensor = field(default_factory=lambda: torch.tensor(IMAGENET_MEAN).view(3, 1, 1))
    eigval: torch.Tensor = field(default_factory=lambda: torch.tensor(ALEXNET_EIGVAL))
    eigvec: torch.Tensor = field(default_factory=lambda: torch.tensor(ALEXNET_EIGVEC))

    def __post_init__(self) -> None:
        if self.mean_image.ndim != 3 or self.mean_image.shape[0] != 3:
            raise ValueError(f"mean_image must be [3, h, w], got {tuple(self.mean_image.shape)}")
        if tuple(self.eigval.shape) != (3,) or tuple(self.eigvec.shape) != (3, 3):
            raise ValueError("eigval must be [3] and eigvec [3, 3]")

    def to_dict(self) -> dict[str, torch.Tensor]:
        return {"mean_image": self.mean_image, "eigval": self.eigval, "eigvec": self.eigvec}


def estimate_color_stats(
    index: ImageIndex,
    *,
    sample_size: int = 1000,
    resize_to: int = 256,
    crop: int = 224,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    workers: int = 0,
) -> ColorStats:
    """The per-pixel mean image and RGB covariance eigen-decomposition of a random sample of the
    training set, each image seen as the test view (shorter side ``resize_to``, centre ``crop``).

    Computed once and cached in ``cache_dir`` under a name keyed by the dataset listing
    (``ImageIndex.listing_key``) and these arguments; unreadable files in the sample are skipped.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    n = min(sample_size, len(index))
    path = cache / f"color-stats-{index.listing_key()}-n{n}-seed{seed}-{resize_to}-{crop}.pt"
    if path.is_file():
        return ColorStats(**torch.load(path, map_location="cpu", weights_only=True))
    chosen = torch.randperm(len(index), generator=seeded(seed))[:n].sort().values
    loader = ImageLoader(
        index.subset(chosen.tolist()),
        DecodeConfig(resize_to, upscale=True, collate="list", on_error="skip"),
        batch_size=64,
        workers=workers,
    )
    total = torch.zeros(3, crop, crop, dtype=torch.float64)
    moment = torch.zeros(3, 3, dtype=torch.float64)
    count = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped files are rare here and do not bias the mean
        for batch in loader:
            for image in batch.images:
                x = center_crop(image, crop).double() / 255.0
                total += x
                pixels = x.reshape(3, -1)
                moment += pixels @ pixels.T
                count += 1
    if count == 0:
        raise ValueError(f"no readable image among the {n} sampled from {index.root}")
    mean_image = total / count
    pixels_per_image = crop * crop
    mean_rgb = mean_image.reshape(3, -1).mean(1)
    covariance = moment / (count * pixels_per_image) - torch.outer(mean_rgb, mean_rgb)
    eigval, eigvec = torch.linalg.eigh(covariance)  # ascending; AlexNet lists the largest first
    stats = ColorStats(mean_image.float(), eigval.flip(0).clamp(min=0).float(), eigvec.flip(1).float())
    with staged_output(path, overwrite=True, keep_suffix=False) as tmp:
        torch.save(stats.to_dict(), tmp)
    return stats


def center_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """Centre ``size x size`` of ``[..., H, W]`` (offsets rounded down, as PIL and torchvision)."""
    h, w = image.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot centre-crop {size}x{size} from a {h}x{w} image")
    top, left = (h - size) // 2, (w - size) // 2
    return image[..., top : top + size, left : left + size]
