"""The views of each testing protocol and the ensemble average (Sec. 3.4, Sec. 4.1, Tables 2-5).

- ``single``: the original view as it is (CIFAR, Sec. 4.2: "the single view of the original 32x32
  image").
- ``1crop``: shorter side resized to 256, the centre 224x224.
- ``10crop``: the four corners and the centre 224x224 of the 256-resized image and their horizontal
  flips; softmax scores averaged (the "standard 10-crop testing" of Tables 2 and 3, from AlexNet).
- ``multiscale``: fully-convolutional (Table 4, following [41, 13]): the shorter side resized to
  each of {224, 256, 384, 480, 640}; the fc layer applied as a 1x1 convolution to the last feature
  map; the score map averaged over positions; softmax averaged over scales and horizontal flips.
- Ensembles (Table 5): the softmax scores of several models averaged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..data.imagenet_loader import scaled_size
from ..data.preprocess import Preprocess
from .protocol_names import MULTISCALE_SIZES, PROTOCOLS


class Scorer(Protocol):
    """What a protocol needs of a model: the network and how to feed it (``LoadedModel`` fits)."""

    model: nn.Module
    preprocess: Preprocess


def resize_shorter(image: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[3, H, W]`` with the shorter side resized to ``size`` (bilinear, antialiased like
    PIL, rounded back to uint8 like a decoded image); unchanged if it already has that size."""
    h, w = image.shape[-2:]
    target = scaled_size(h, w, size)
    if target == (h, w):
        return image
    x = F.interpolate(image[None].float(), size=target, mode="bilinear", antialias=True, align_corners=False)
    return x[0].round().clamp(0, 255).to(torch.uint8)


def _crop(image: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    return image[..., top : top + size, left : left + size]


def one_crop_views(image: torch.Tensor, resize_to: int = 256, crop: int = 224) -> torch.Tensor:
    """``[1, 3, crop, crop]``: the centre of the ``resize_to``-resized image."""
    x = resize_shorter(image, resize_to)
    h, w = x.shape[-2:]
    return _crop(x, (h - crop) // 2, (w - crop) // 2, crop)[None]


def ten_crop_views(image: torch.Tensor, resize_to: int = 256, crop: int = 224) -> torch.Tensor:
    """``[10, 3, crop, crop]``: top-left, top-right, bottom-left, bottom-right, centre, then the
    same five of the horizontally flipped image (i.e. each crop mirrored)."""
    x = resize_shorter(image, resize_to)
    h, w = x.shape[-2:]
    if h < crop or w < crop:
        raise ValueError(f"cannot take {crop}x{crop} crops of a {h}x{w} image")
    corners = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop), ((h - crop) // 2, (w - crop) // 2)]
    five = torch.stack([_crop(x, top, left, crop) for top, left in corners])
    return torch.cat([five, five.flip(-1)])


def score_map(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class scores at every position of the last feature map: the fc layer as a 1x1 convolution
    (fully-convolutional form, Sec. 3.4). Its spatial mean is ``fc(avgpool(features))``."""
    if not hasattr(model, "forward_features") or not isinstance(getattr(model, "fc", None), nn.Linear):
        raise ValueError(f"{type(model).__name__} has no forward_features/fc: multiscale testing needs a ResNet")
    features = model.forward_features(x)
    fc: nn.Linear = model.fc  # type: ignore[assignment]
    return F.conv2d(features, fc.weight[:, :, None, None], fc.bias)


def _grouped(views: list[torch.Tensor], forward) -> list[torch.Tensor]:
    """Run ``forward`` on views stacked by shape (one call per distinct shape); results in order."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, v in enumerate(views):
        groups[tuple(v.shape)].append(i)
    out: list[torch.Tensor | None] = [None] * len(views)
    for indices in groups.values():
        result = forward(torch.stack([views[i] for i in indices]))
        for i, r in zip(indices, result):
            out[i] = r
    return out  # type: ignore[return-value]


def _model_probs(scorer: Scorer, images: list[torch.Tensor], protocol: str, scales: Sequence[int]) -> torch.Tensor:
    model, pre = scorer.model, scorer.preprocess
    device = next(model.parameters()).device
    images = [x.to(device) for x in images]

    def softmax_of(x: torch.Tensor) -> torch.Tensor:
        return F.softmax(model(pre.normalize(x)).float(), dim=-1)

    if protocol in ("single", "1crop", "10crop"):
        if protocol == "single":
            views = [x[None] for x in images]
        elif protocol == "1crop":
            views = [one_crop_views(x, pre.resize_to, pre.input_size) for x in images]
        else:
            views = [ten_crop_views(x, pre.resize_to, pre.input_size) for x in images]
        per_view = _grouped(views, lambda v: softmax_of(v.flatten(0, 1)).view(v.shape[0], v.shape[1], -1))
        return torch.stack([p.mean(0) for p in per_view])

    total = None
    for size in scales:
        resized = [resize_shorter(x, size) for x in images]

        def both_flips(v: torch.Tensor) -> torch.Tensor:
            batch = torch.cat([v, v.flip(-1)])
            logits = score_map(model, pre.normalize(batch)).mean((2, 3))
            probs = F.softmax(logits.float(), dim=-1)
            return probs[: len(v)] + probs[len(v) :]

        summed = torch.stack(_grouped(resized, both_flips))
        total = summed if total is None else total + summed
    return total / (2 * len(scales))


@torch.no_grad()
def predict_probs(
    scorers: Sequence[Scorer],
    images: torch.Tensor | Sequence[torch.Tensor],
    protocol: str,
    *,
    scales: Sequence[int] = MULTISCALE_SIZES,
) -> torch.Tensor:
    """Softmax scores ``[N, C]`` of uint8 images (a ``[N, 3, H, W]`` batch or a list of
    ``[3, H, W]`` of any sizes), averaged over the protocol's views and over ``scorers``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if not scorers:
        raise ValueError("at least one model is needed")
    images = list(images)
    if any(x.dtype != torch.uint8 or x.ndim != 3 for x in images):
        raise ValueError("images must be uint8 [3, H, W]")
    for scorer in scorers:
        scorer.model.eval()
    probs = [_model_probs(s, images, protocol, scales) for s in scorers]
    classes = {p.shape[-1] for p in probs}
    if len(classes) != 1:
        raise ValueError(f"an ensemble needs models with the same number of classes, got {sorted(classes)}")
    return torch.stack(probs).mean(0)


def views_per_image(protocol: str, scales: Sequence[int] = MULTISCALE_SIZES) -> int:
    return {"single": 1, "1crop": 1, "10crop": 10}.get(protocol, 2 * len(scales))
