"""ImageNet training augmentation on whole uint8 batches on the device (PAPER.md sec. 3).

``"paper"`` (Sec. 3.4, following AlexNet [21] and VGG [41]): the shorter side is resized to a
random ``s`` in [256, 480] (scale augmentation), a random 224x224 crop is taken, flipped
horizontally with probability 1/2, the per-pixel mean image is subtracted and AlexNet's PCA colour
noise is added (``alpha ~ N(0, 0.1)`` per eigenvector of the RGB covariance).

``"inception"`` — a named deviation, the recipe of most later reimplementations (torchvision's
reference scripts, Szegedy et al. 2015): a random crop covering 8%..100% of the image area with
aspect ratio in [3/4, 4/3], resized to 224x224, flipped, then normalised by the usual per-channel
ImageNet mean and std. Not what the paper did; it trains ResNets about 1 point better.

Resize + crop is one bilinear resampling per image done by ``grid_sample`` on the whole batch:
output pixel ``i`` reads source coordinate ``y0 + (i + 0.5) * h_box / 224 - 0.5`` (clamped to the
image), exactly what ``F.interpolate`` to the scaled size followed by the crop computes. Unlike
PIL it does not low-pass before shrinking; the worker keeps the shorter side <= 480 so paper-mode
shrinking is at most 1.9x, where that matters little. All randomness comes from one
``torch.Generator``: the same seed gives the same batch.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..seeding import generator as seeded
from .imagenet_color import ColorStats
from .imagenet_loader import Batch, Collate, DecodeConfig, scaled_size
from .imagenet_stats import IMAGENET_STD

STYLES = ("paper", "inception")


@dataclass(frozen=True)
class AugmentConfig:
    """The training augmentation; defaults are the paper's. See ``AUGMENT_PRESETS``.

    ``decode_short_side``: the workers shrink the shorter side to at most this (``None``: the
    largest scale the augmentation asks for, so nothing is lost). ``max_aspect``: longer side
    kept around the centre, at most this times the shorter (fixed canvas; see ``imagenet_loader``).
    """

    style: str = "paper"
    crop: int = 224
    scale_range: tuple[int, int] = (256, 480)  # paper: shorter side, pixels
    area_range: tuple[float, float] = (0.08, 1.0)  # inception: fraction of the image area
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3)  # inception: crop width / height
    flip: bool = True
    lighting_std: float = 0.1  # AlexNet PCA noise; 0 disables it
    normalize_std: bool = False  # divide by IMAGENET_STD after the mean (inception)
    decode_short_side: int | None = None
    max_aspect: float = 1.5

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        lo, hi = self.scale_range
        if not self.crop <= lo <= hi:
            raise ValueError(f"scale_range must satisfy crop <= lo <= hi, got {self.scale_range} (crop {self.crop})")
        if not 0 < self.area_range[0] <= self.area_range[1] <= 1:
            raise ValueError(f"area_range must lie in (0, 1], got {self.area_range}")
        if not 0 < self.aspect_range[0] <= self.aspect_range[1]:
            raise ValueError(f"aspect_range must be positive and ordered, got {self.aspect_range}")
        if self.lighting_std < 0:
            raise ValueError(f"lighting_std must be >= 0, got {self.lighting_std}")
        if self.max_aspect < 1:
            raise ValueError(f"max_aspect must be >= 1, got {self.max_aspect}")

    @property
    def worker_short_side(self) -> int:
        if self.decode_short_side is not None:
            return self.decode_short_side
        return self.scale_range[1] if self.style == "paper" else 320

    def decode_config(self, on_error: str = "fail") -> DecodeConfig:
        return DecodeConfig(
            self.worker_short_side, upscale=False, max_aspect=self.max_aspect, collate="pad", on_error=on_error
        )


AUGMENT_PRESETS = {
    "paper": AugmentConfig(),
    "inception": AugmentConfig(style="inception", lighting_std=0.0, normalize_std=True),
}


@dataclass(frozen=True)
class CropParams:
    """Per image: box ``(y0, x0, h, w)`` in the image's own pixels, flip, and for the paper style
    the sampled shorter side ``scale`` (0 for inception)."""

    boxes: torch.Tensor
    flip: torch.Tensor
    scale: torch.Tensor


def _uniform(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device, dtype=torch.float64)


def paper_params(sizes: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> CropParams:
    """Shorter side ``s`` uniform on the integers of ``scale_range``; crop offset uniform on the
    integer positions of the ``s``-resized image."""
    device = sizes.device
    h, w = sizes[:, 0].double(), sizes[:, 1].double()
    n = len(sizes)
    lo, hi = config.scale_range
    scale = torch.randint(lo, hi + 1, (n,), generator=generator, device=device)
    short = torch.minimum(h, w)
    rh = torch.floor(h * scale / short + 0.5)  # == scaled_size(h, w, s)
    rw = torch.floor(w * scale / short + 0.5)
    oy = torch.floor(_uniform(n, generator, device) * (rh - config.crop + 1))
    ox = torch.floor(_uniform(n, generator, device) * (rw - config.crop + 1))
    boxes = torch.stack([oy * h / rh, ox * w / rw, config.crop * h / rh, config.crop * w / rw], 1)
    flip = _uniform(n, generator, device) < 0.5 if config.flip else torch.zeros(n, dtype=torch.bool, device=device)
    return CropParams(boxes, flip, scale)


def inception_params(
    sizes: torch.Tensor, config: AugmentConfig, generator: torch.Generator, attempts: int = 10
) -> CropParams:
    """torchvision's ``RandomResizedCrop.get_params``, vectorised: ten tries per image, the first
    box that fits wins, else the centre crop with the aspect clamped to the range."""
    device = sizes.device
    n = len(sizes)
    h, w = sizes[:, 0].double(), sizes[:, 1].double()
    area = (h * w)[:, None] * (
        config.area_range[0]
        + (config.area_range[1] - config.area_range[0])
        * torch.rand(n, attempts, generator=generator, device=device, dtype=torch.float64)
    )
    log_lo, log_hi = math.log(config.aspect_range[0]), math.log(config.aspect_range[1])
    ratio = torch.exp(
        log_lo + (log_hi - log_lo) * torch.rand(n, attempts, generator=generator, device=device, dtype=torch.float64)
    )
    cw = torch.floor(torch.sqrt(area * ratio) + 0.5)
    ch = torch.floor(torch.sqrt(area / ratio) + 0.5)
    fits = (cw > 0) & (ch > 0) & (cw <= w[:, None]) & (ch <= h[:, None])
    first = torch.where(fits.any(1), fits.double().argmax(1), torch.full((n,), -1, device=device))
    pick = first.clamp(min=0)[:, None]
    ch, cw = ch.gather(1, pick)[:, 0], cw.gather(1, pick)[:, 0]
    oy = torch.floor(_uniform(n, generator, device) * (h - ch + 1))
    ox = torch.floor(_uniform(n, generator, device) * (w - cw + 1))
    # Fallback (no try fitted): the whole image, trimmed to the nearest allowed aspect ratio.
    aspect = w / h
    fw = torch.where(
        aspect < config.aspect_range[0],
        w,
        torch.where(aspect > config.aspect_range[1], torch.floor(h * config.aspect_range[1] + 0.5), w),
    )
    fh = torch.where(aspect < config.aspect_range[0], torch.floor(w / config.aspect_range[0] + 0.5), h)
    failed = first < 0
    ch, cw = torch.where(failed, fh, ch), torch.where(failed, fw, cw)
    oy = torch.where(failed, torch.floor((h - fh) / 2), oy)
    ox = torch.where(failed, torch.floor((w - fw) / 2), ox)
    flip = _uniform(n, generator, device) < 0.5 if config.flip else torch.zeros(n, dtype=torch.bool, device=device)
    return CropParams(torch.stack([oy, ox, ch, cw], 1), flip, torch.zeros(n, dtype=torch.int64, device=device))


def crop_resize(
    canvas: torch.Tensor, sizes: torch.Tensor, transposed: torch.Tensor, boxes: torch.Tensor, out: int
) -> torch.Tensor:
    """Bilinear resample of each image's ``box`` to ``out x out``: float ``[N, 3, out, out]`` on
    the 0..255 scale, in each image's own orientation (transposed storage undone)."""
    n, _, canvas_h, canvas_w = canvas.shape
    device = canvas.device
    steps = (torch.arange(out, device=device, dtype=torch.float64) + 0.5) / out
    y = boxes[:, 0:1] + steps[None] * boxes[:, 2:3] - 0.5  # [N, out] source rows (own orientation)
    x = boxes[:, 1:2] + steps[None] * boxes[:, 3:4] - 0.5
    h, w = sizes[:, 0:1].double(), sizes[:, 1:2].double()
    # Clamped to the image, as F.interpolate does at its borders: the canvas padding is never read.
    y = torch.minimum(y.clamp(min=0), h - 1)
    x = torch.minimum(x.clamp(min=0), w - 1)
    t = transposed[:, None]
    rows, cols = torch.where(t, x, y), torch.where(t, y, x)  # stored orientation
    gy = (2 * rows + 1) / canvas_h - 1
    gx = (2 * cols + 1) / canvas_w - 1
    grid = torch.stack([gx[:, None, :].expand(n, out, out), gy[:, :, None].expand(n, out, out)], -1)
    result = F.grid_sample(canvas.float(), grid.float(), mode="bilinear", padding_mode="border", align_corners=False)
    return torch.where(transposed[:, None, None, None], result.transpose(-1, -2), result)


def lighting_noise(n: int, stats: ColorStats, std: float, generator: torch.Generator) -> torch.Tensor:
    """AlexNet PCA noise, ``[N, 3]`` on the [0, 1] scale: ``eigvec @ (alpha * eigval)`` with
    ``alpha ~ N(0, std)`` per image; its covariance is ``V diag((std * eigval)^2) V^T``."""
    device = generator.device
    alpha = torch.randn(n, 3, generator=generator, device=device) * std
    return (alpha * stats.eigval.to(device)) @ stats.eigvec.to(device).T


class BatchAugment:
    """``augment(batch, generator)`` -> normalised float ``[N, 3, crop, crop]`` on the batch's device."""

    def __init__(self, config: AugmentConfig, stats: ColorStats | None = None) -> None:
        self.config = config
        self.stats = stats if stats is not None else ColorStats()
        self.last_params: CropParams | None = None

    def sample(self, sizes: torch.Tensor, generator: torch.Generator) -> CropParams:
        if self.config.style == "paper":
            return paper_params(sizes, self.config, generator)
        return inception_params(sizes, self.config, generator)

    def __call__(
        self,
        canvas: torch.Tensor,
        sizes: torch.Tensor,
        transposed: torch.Tensor,
        generator: torch.Generator,
        *,
        channels_last: bool = False,
    ) -> torch.Tensor:
        if canvas.dtype != torch.uint8:
            raise ValueError(f"augment expects a uint8 canvas, got {canvas.dtype}")
        params = self.sample(sizes.to(generator.device), generator)
        self.last_params = params
        device = canvas.device
        x = crop_resize(canvas, sizes.to(device), transposed.to(device), params.boxes.to(device), self.config.crop)
        x = torch.where(params.flip.to(device)[:, None, None, None], x.flip(-1), x) / 255.0
        if self.config.lighting_std > 0:
            noise = lighting_noise(len(x), self.stats, self.config.lighting_std, generator).to(device)
            x = x + noise[:, :, None, None]
        mean = self.stats.mean_image.to(device, torch.float32)
        if mean.shape[1:] != (1, 1) and mean.shape[1:] != x.shape[2:]:
            mean = F.interpolate(mean[None], size=x.shape[2:], mode="bilinear", align_corners=False)[0]
        x = x - mean
        if self.config.normalize_std:
            x = x / torch.tensor(IMAGENET_STD, device=device).view(3, 1, 1)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class AugmentingCollate:
    """``Collate`` followed by ``BatchAugment`` inside each worker: for hosts without an
    accelerator, where augmenting in the main process would serialise it behind the decoders.
    Batches then carry normalised float images. Each batch's generator is seeded from ``seed`` and
    the dataset positions in it, so results do not depend on the number of workers."""

    def __init__(self, decode: DecodeConfig, augment: BatchAugment, seed: int = 0) -> None:
        self.collate = Collate(decode)
        self.augment = augment
        self.seed = seed

    def __call__(self, items: list) -> Batch:
        batch = self.collate(items)
        if not len(batch):
            return batch
        digest = hashlib.blake2b(repr((self.seed, batch.indices)).encode(), digest_size=8).digest()
        generator = seeded(int.from_bytes(digest, "little") >> 1)
        return replace(batch, images=self.augment(batch.images, batch.sizes, batch.transposed, generator))


def resized_reference(image: torch.Tensor, scale: int) -> torch.Tensor:
    """One image resized (bilinear, no antialias) so its shorter side is ``scale``: the reference
    that ``crop_resize`` in paper mode must match crop for crop (used by tests)."""
    h, w = image.shape[-2:]
    return F.interpolate(image[None].float(), size=scaled_size(h, w, scale), mode="bilinear", align_corners=False)[0]
