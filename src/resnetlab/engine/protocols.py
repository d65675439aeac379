"""The paper's testing protocols (PAPER.md sec. 3, 5; Tables 2-5) on batches of decoded images.

- ``single``: the original view as it is (CIFAR, Sec. 4.2: "the single view of the original 32x32
  image"); every checkpoint whose ``Preprocess.resize`` is ``"none"`` is tested this way.
- ``1crop``: shorter side resized to 256, the centre 224x224.
- ``10crop``: the four corners and the centre 224x224 of the 256-resized image and their horizontal
  flips; softmax scores averaged (the "standard 10-crop testing" of Tables 2 and 3, from AlexNet).
- ``multiscale``: fully-convolutional (Table 4, following [41, 13]): the shorter side resized to
  each of {224, 256, 384, 480, 640}; the fc layer applied as a 1x1 convolution to the last feature
  map; the score map averaged over positions; softmax averaged over scales and horizontal flips.
- Ensembles (Table 5): the softmax scores of several models averaged.

Errors are counted with ``evaluate_counts`` -> ``(n, top1_wrong, top5_wrong)``: each sample once,
no padding, so shards of a distributed evaluation can simply be summed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.imagenet import ImageIndex, index_split, is_image_folder
from ..data.imagenet_loader import DecodeConfig, ImageLoader, scaled_size
from ..data.preprocess import Preprocess
from .protocol_names import MULTISCALE_SIZES, PROTOCOLS


class Scorer(Protocol):
    """What a protocol needs of a model: the network and how to feed it (``LoadedModel`` fits)."""

    model: nn.Module
    preprocess: Preprocess


class EvalCounts(NamedTuple):
    n: int
    top1_wrong: int
    top5_wrong: int

    def __add__(self, other: "EvalCounts") -> "EvalCounts":  # type: ignore[override]
        return EvalCounts(self.n + other.n, self.top1_wrong + other.top1_wrong, self.top5_wrong + other.top5_wrong)


def error_rates(counts: EvalCounts) -> tuple[float, float]:
    """Top-1 and top-5 error in percent."""
    if counts.n == 0:
        raise ValueError("no images were evaluated")
    return 100.0 * counts.top1_wrong / counts.n, 100.0 * counts.top5_wrong / counts.n


def resolve_protocol(requested: str | None, preprocess: Preprocess) -> str:
    """``None`` means the paper's protocol for the checkpoint: ``single`` for CIFAR, ``10crop``
    for ImageNet (the comparisons of Tables 2 and 3)."""
    if requested is not None and requested not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {requested!r}")
    if preprocess.resize == "none":
        if requested not in (None, "single"):
            raise ValueError(
                f"protocol {requested!r} needs an ImageNet-style checkpoint; this one is tested on the "
                "single original view (Preprocess.resize == 'none', paper Sec. 4.2)"
            )
        return "single"
    return requested or "10crop"


def decode_config_for(protocol: str, preprocess: Preprocess, on_error: str = "fail") -> DecodeConfig:
    """What the workers should decode to: exactly the 256-resized image for crop protocols
    (so the protocol's own resize is a no-op), at most the largest scale for ``multiscale``."""
    if protocol in ("1crop", "10crop"):
        return DecodeConfig(preprocess.resize_to, upscale=True, on_error=on_error)
    if protocol == "multiscale":
        return DecodeConfig(max(MULTISCALE_SIZES), upscale=False, on_error=on_error)
    return DecodeConfig(None, on_error=on_error)


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


def count_errors(probs: torch.Tensor, labels: torch.Tensor, k: int = 5) -> EvalCounts:
    labels = labels.to(probs.device)
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= probs.shape[-1]):
        raise ValueError(f"labels must lie in [0, {probs.shape[-1]}) (the model's classes)")
    top = probs.topk(min(k, probs.shape[-1]), dim=-1).indices
    top1_wrong = int((top[:, 0] != labels).sum())
    topk_wrong = int((~(top == labels[:, None]).any(-1)).sum())
    return EvalCounts(len(labels), top1_wrong, topk_wrong)


def evaluate_counts(
    scorers: Sequence[Scorer],
    batches: Iterable,
    protocol: str,
    *,
    scales: Sequence[int] = MULTISCALE_SIZES,
) -> EvalCounts:
    """``(n, top1_wrong, top5_wrong)`` over ``batches`` of ``(images, labels)`` (or loader
    ``Batch``es). Sum the counts of several shards (all-reduce) before ``error_rates``."""
    total = EvalCounts(0, 0, 0)
    for batch in batches:
        images, labels = (batch.images, batch.labels) if hasattr(batch, "labels") else batch
        total = total + count_errors(predict_probs(scorers, images, protocol, scales=scales), labels)
    return total


def views_per_image(protocol: str, scales: Sequence[int] = MULTISCALE_SIZES) -> int:
    return {"single": 1, "1crop": 1, "10crop": 10}.get(protocol, 2 * len(scales))


@dataclass(frozen=True)
class EvalReport:
    """The outcome of ``evaluate_checkpoints``: errors in percent, images counted and skipped."""

    checkpoints: tuple[str, ...]
    data: str
    split: str
    protocol: str
    counts: EvalCounts
    skipped: tuple[tuple[str, str], ...]

    @property
    def top1_error(self) -> float:
        return error_rates(self.counts)[0]

    @property
    def top5_error(self) -> float:
        return error_rates(self.counts)[1]

    def as_dict(self) -> dict:
        return {
            "checkpoints": list(self.checkpoints), "data": self.data, "split": self.split,
            "protocol": self.protocol, "images": self.counts.n, "skipped": len(self.skipped),
            "top1_error": self.top1_error, "top5_error": self.top5_error,
            "top1_wrong": self.counts.top1_wrong, "top5_wrong": self.counts.top5_wrong,
        }


def align_labels(index: ImageIndex, classes: Sequence[str]) -> ImageIndex:
    """Map the folder's labels onto the checkpoint's class order (by wnid or by name); refuse
    when a folder class is unknown to the model rather than score against a wrong label."""
    if not classes or tuple(classes) in (index.wnids, index.classes):
        return index
    position = {name: i for i, name in enumerate(classes)}
    for names in (index.wnids, index.classes):
        if all(n in position for n in names):
            remap = [position[n] for n in names]
            samples = tuple((path, remap[label]) for path, label in index.samples)
            wnids = tuple(classes)
            return ImageIndex(index.root, index.split, samples, wnids, wnids)
    missing = [n for n in index.wnids if n not in position][:3]
    raise ValueError(f"classes of {index.root} ({', '.join(missing)}, ...) are not the checkpoint's classes")


def evaluate_checkpoints(
    checkpoints: Sequence[str | Path],
    data: str | Path | None,
    *,
    split: str | None = None,
    protocol: str | None = None,
    batch_size: int = 64,
    workers: int = 0,
    on_error: str = "fail",
    scales: Sequence[int] = MULTISCALE_SIZES,
    limit: int | None = None,
    device: str | torch.device = "cpu",
) -> EvalReport:
    """Load each checkpoint, run ``protocol`` over the split (softmax averaged over models when
    several are given) and count errors. ``data``: an image folder (ImageNet layouts, or CIFAR as
    JPEG folders) or anything ``resnetlab.data.load_dataset`` accepts (CIFAR pickle/binary).
    A checkpoint is a run directory, a ``.pt``/``.safetensors`` file or a shipped-weights name."""
    from ..inference.loading import load_any

    if not checkpoints:
        raise ValueError("give at least one checkpoint")
    scorers = [load_any(path, device) for path in checkpoints]
    if len({s.preprocess.resize for s in scorers}) > 1:
        raise ValueError("cannot ensemble CIFAR-style (single view) and ImageNet-style checkpoints")
    protocol = resolve_protocol(protocol, scorers[0].preprocess)
    classes = scorers[0].classes
    if any(s.classes and classes and s.classes != classes for s in scorers):
        raise ValueError("the checkpoints of an ensemble must have the same classes")
    if data is not None and split is None:
        split = "val" if (Path(data) / "val").is_dir() else "test"
    split = split or "test"
    skipped: tuple[tuple[str, str], ...] = ()
    load_dataset = _dataset_loader()
    # CIFAR checkpoints: the project's loader reads every CIFAR format and caches decoded folders.
    cifar = scorers[0].preprocess.resize == "none"
    use_folder = data is not None and is_image_folder(data, split) and (not cifar or load_dataset is None)
    if use_folder:
        index = align_labels(index_split(data, split), classes)
        if limit is not None and limit < len(index):
            index = index.subset([i * len(index) // limit for i in range(limit)])
        resizes = {(s.preprocess.resize_to, s.preprocess.input_size) for s in scorers}
        config = decode_config_for(protocol if len(resizes) == 1 else "multiscale", scorers[0].preprocess, on_error)
        loader = ImageLoader(index, config, batch_size=batch_size, workers=workers, pin_memory=str(device).startswith("cuda"))
        counts = evaluate_counts(scorers, loader, protocol, scales=scales)
        skipped = tuple(loader.skipped)
    else:
        if load_dataset is None:
            raise ValueError(f"{data}: not an image folder, and resnetlab.data.datasets.load_dataset is unavailable")
        found: list[tuple[str, str]] = []  # unreadable files of a CIFAR-style image folder
        arrays = load_dataset(str(data) if data is not None else None, split, on_error=on_error, skipped=found)
        skipped = tuple(found)
        if classes and tuple(arrays.classes) != tuple(classes):
            raise ValueError(f"classes of {data} ({', '.join(arrays.classes[:3])}, ...) are not the checkpoint's classes")
        if limit is not None and limit < len(arrays):
            arrays = arrays.subset(torch.arange(limit) * len(arrays) // limit)
        batches = ((arrays.images[i : i + batch_size], arrays.labels[i : i + batch_size]) for i in range(0, len(arrays), batch_size))
        counts = evaluate_counts(scorers, batches, protocol, scales=scales)
    name = "synthetic (built-in)" if data is None else str(data)  # load_dataset(None): the built-in set
    return EvalReport(tuple(str(s.path) for s in scorers), name, split, protocol, counts, skipped)


def _dataset_loader():
    try:
        from ..data.datasets import load_dataset
    except ImportError:  # the CIFAR loader is optional for ImageNet-only installs
        return None
    return load_dataset


__all__ = [
    "PROTOCOLS", "MULTISCALE_SIZES", "EvalCounts", "Scorer", "count_errors", "decode_config_for",
    "error_rates", "evaluate_checkpoints", "evaluate_counts", "EvalReport", "one_crop_views", "predict_probs", "resize_shorter",
    "resolve_protocol", "score_map", "ten_crop_views", "views_per_image",
]
