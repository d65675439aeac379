"""A built-in, procedural stand-in for CIFAR-10: ten shape families drawn on 32x32 RGB images.

It lets every command run (and every test exercise a real learning problem) without downloading
anything. Each class is a shape or texture family; what varies within a class is everything a
classifier must learn to ignore: position, scale, line width, stripe period and phase, the colours
of object and background, a low-frequency cluttered background, small distractor blobs, and
pixel noise. Colours are drawn independently of the class, so no pixel statistic gives the class
away; a linear classifier on pixels does poorly while a small ResNet learns it in minutes.

Shapes are left/right symmetric families (no "diagonal stripes at 45 vs 135 degrees"), so the
paper's horizontal-flip augmentation (Sec. 4.2) keeps every label valid.

Everything is generated with vectorised torch ops from an explicitly seeded ``torch.Generator``;
train and test use separate streams, so the test set does not change with ``n_train``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..seeding import generator as seeded
from .arrays import ImageArrays

CLASSES = (
    "hstripes",
    "vstripes",
    "disc",
    "ring",
    "plus",
    "cross",
    "checker",
    "square",
    "triangle",
    "dots",
)
SIZE = 32
DEFAULT_TRAIN = 20_000
DEFAULT_TEST = 4_000
NOISE_STD = 0.10  # per-pixel Gaussian noise, on the [0, 1] scale
CLUTTER = 0.35  # amplitude of the low-frequency background texture
DISTRACTORS = 4  # small blobs per image, mostly smaller than the smallest object
LINE_PROB = 0.5  # chance of one thin line of random colour and angle across the image
MAX_TILT = 0.35  # radians (20 degrees): enough to vary, too little to turn "+" into "x"


CHUNK = 512  # images rendered at a time: keeps the per-pixel temporaries in cache


# Bicubic interpolation is separable: upsampling a 4x4 grid is ``A.T @ grid @ A`` with these
# [4, 32] weights (several times faster than ``F.interpolate`` on many tiny images).
_UPSAMPLE = F.interpolate(torch.eye(4).view(4, 1, 1, 4), size=(1, SIZE), mode="bicubic", align_corners=False).view(
    4, SIZE
)


def _rand(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _soft(signed: torch.Tensor) -> torch.Tensor:
    """Anti-aliased inside-ness from a signed distance in pixels (positive inside)."""
    return torch.sigmoid(signed * 2.0)


def _draw_params(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Everything random about each image, drawn up front (``[n]`` or ``[n, k]`` tensors)."""
    # Per-channel contrast is random and sometimes small, so a few objects are hard to see.
    dark = torch.rand(n, 3, generator=g) * 0.5
    light = 0.5 + torch.rand(n, 3, generator=g) * 0.5
    swap = torch.rand(n, 1, generator=g) < 0.5  # object dark on light, or light on dark
    return {
        "radius": _rand(g, n, 4.5, 11.0),  # half the object's extent, pixels
        "cx": _rand(g, n, 9.0, 23.0),
        "cy": _rand(g, n, 9.0, 23.0),
        "width": _rand(g, n, 1.0, 2.6),  # stroke half-width of outlines
        "period": _rand(g, n, 3.5, 7.0),  # stripes, checks and dots
        "phase": _rand(g, n, 0.0, 2 * math.pi),
        "tilt": _rand(g, n, -MAX_TILT, MAX_TILT),
        "fg": torch.where(swap, dark, light),
        "bg": torch.where(swap, light, dark),
        "clutter": torch.randn(n, 3, 4, 4, generator=g) * CLUTTER / 2,
        "blob_x": torch.rand(n, DISTRACTORS, generator=g) * SIZE,
        "blob_y": torch.rand(n, DISTRACTORS, generator=g) * SIZE,
        "blob_sigma": 0.7 + 1.1 * torch.rand(n, DISTRACTORS, generator=g),
        "blob_colour": torch.rand(n, DISTRACTORS, 3, generator=g),
        "line_x": torch.rand(n, generator=g) * SIZE,
        "line_y": torch.rand(n, generator=g) * SIZE,
        "line_angle": torch.rand(n, generator=g) * math.pi,
        "line_width": 0.4 + 0.6 * torch.rand(n, generator=g),
        "line_on": (torch.rand(n, generator=g) < LINE_PROB).float(),
        "line_colour": torch.rand(n, 3, generator=g),
    }


def _mask(name: str, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Coverage in [0, 1], ``[n, H, W]``, of one class's shape for the images described by ``p``."""
    n = len(p["radius"])
    coords = torch.arange(SIZE, dtype=torch.float32) + 0.5
    view = lambda key: p[key].view(n, 1, 1)
    rad, w, period, phase, tilt = view("radius"), view("width"), view("period"), view("phase"), view("tilt")
    dx, dy = coords.view(1, 1, SIZE) - view("cx"), coords.view(1, SIZE, 1) - view("cy")
    # (u, v): the object's own axes, tilted slightly; v points down as image rows do.
    cos, sin = torch.cos(tilt), torch.sin(tilt)
    u, v = dx * cos + dy * sin, dy * cos - dx * sin
    if name in ("hstripes", "vstripes"):
        along = v if name == "hstripes" else u
        return _soft(3.0 * torch.sin(2 * math.pi * along / period + phase)) * _soft(rad - torch.hypot(u, v))
    if name == "disc":
        return _soft(rad - torch.hypot(u, v))
    if name == "ring":
        return _soft(w - (torch.hypot(u, v) - rad + w).abs())
    if name == "plus":
        return _soft(w - torch.minimum(u.abs(), v.abs())) * _soft(rad - torch.maximum(u.abs(), v.abs()))
    if name == "cross":
        diagonal = torch.minimum((u + v).abs(), (u - v).abs()) / math.sqrt(2)
        return _soft(w - diagonal) * _soft(rad - torch.hypot(u, v))
    if name == "checker":
        k = 1.6 * math.pi / period
        return _soft(4.0 * torch.sin(k * u) * torch.sin(k * v)) * _soft(rad - torch.maximum(u.abs(), v.abs()))
    if name == "square":
        return _soft(w - (torch.maximum(u.abs(), v.abs()) - rad + w).abs())
    if name == "triangle":
        # Apex up at v = -0.9 rad, base at v = +0.9 rad, sides at 30 degrees from vertical.
        top, slope = -0.9 * rad, math.tan(math.pi / 6)
        sides = ((v - top) * slope - u.abs()) * math.cos(math.pi / 6)
        return _soft(torch.minimum(sides, 0.9 * rad - v))
    if name == "dots":
        spacing = 1.3 * period
        pu = torch.remainder(u + phase, spacing) - spacing / 2
        pv = torch.remainder(v + phase, spacing) - spacing / 2
        return _soft(0.4 * period - torch.hypot(pu, pv)) * _soft(rad - torch.maximum(u.abs(), v.abs()))
    raise ValueError(f"unknown synthetic class {name!r}")


def _render(labels: torch.Tensor, p: dict[str, torch.Tensor], g: torch.Generator) -> torch.Tensor:
    """Composite background, object, distractors and noise; float ``[n, 3, H, W]`` in [0, 1]."""
    n = len(labels)
    masks = torch.empty(n, SIZE, SIZE)
    for c, name in enumerate(CLASSES):
        index = (labels == c).nonzero().flatten()
        if len(index):
            masks[index] = _mask(name, {k: t[index] for k, t in p.items()})
    masks = masks.unsqueeze(1)
    texture = _UPSAMPLE.T @ p["clutter"] @ _UPSAMPLE  # bicubic 4x4 -> 32x32, as two matmuls
    image = (p["bg"].view(n, 3, 1, 1) + texture) * (1 - masks) + p["fg"].view(n, 3, 1, 1) * masks
    coords = torch.arange(SIZE, dtype=torch.float32) + 0.5
    for b in range(DISTRACTORS):
        # Separable Gaussian blobs smaller than any object: clutter a classifier must ignore.
        s2 = 2 * p["blob_sigma"][:, b].view(n, 1) ** 2
        gx = torch.exp(-((coords - p["blob_x"][:, b].view(n, 1)) ** 2) / s2)
        gy = torch.exp(-((coords - p["blob_y"][:, b].view(n, 1)) ** 2) / s2)
        blob = gy.view(n, 1, SIZE, 1) * gx.view(n, 1, 1, SIZE)
        image = torch.lerp(image, p["blob_colour"][:, b].view(n, 3, 1, 1), blob)
    # A thin line crossing everything: it looks like a stroke of "+", "x" or stripes, so the
    # network has to use the object's whole shape rather than one edge.
    dx = coords.view(1, 1, SIZE) - p["line_x"].view(n, 1, 1)
    dy = coords.view(1, SIZE, 1) - p["line_y"].view(n, 1, 1)
    angle = p["line_angle"].view(n, 1, 1)
    line = _soft(p["line_width"].view(n, 1, 1) - (dx * torch.sin(angle) - dy * torch.cos(angle)).abs())
    line = (line * p["line_on"].view(n, 1, 1)).unsqueeze(1)
    image = torch.lerp(image, p["line_colour"].view(n, 3, 1, 1), line)
    image += NOISE_STD * torch.randn(image.shape, generator=g)
    return image


def generate(n: int, g: torch.Generator) -> ImageArrays:
    """``n`` images with exactly balanced labels (when ``n`` is a multiple of 10), shuffled."""
    if n < 0:
        raise ValueError(f"the number of images must be >= 0, got {n}")
    labels = (torch.arange(n) % len(CLASSES))[torch.randperm(n, generator=g)]
    params = _draw_params(n, g)
    images = torch.empty(n, 3, SIZE, SIZE, dtype=torch.uint8)
    # Cache-sized chunks of small element-wise ops: intra-op threads cost more than they give
    # (8x slower with 2 threads on a busy 2-core machine), so render on one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for start in range(0, n, CHUNK):
            part = slice(start, start + CHUNK)
            image = _render(labels[part], {k: t[part] for k, t in params.items()}, g)
            images[part] = image.mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    finally:
        torch.set_num_threads(threads)
    return ImageArrays(images, labels, CLASSES)


def synthetic_split(split: str, n: int, seed: int = 0) -> ImageArrays:
    """One split; train and test draw from separate streams of the same seed."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    g = seeded(2 * seed + (split == "test"))
    return generate(n, g)


def synthetic_cifar(
    seed: int = 0,
    n_train: int = DEFAULT_TRAIN,
    n_test: int = DEFAULT_TEST,
) -> tuple[ImageArrays, ImageArrays]:
    """The built-in dataset: ``(train, test)``, 10 classes of 32x32 RGB images."""
    return synthetic_split("train", n_train, seed), synthetic_split("test", n_test, seed)
