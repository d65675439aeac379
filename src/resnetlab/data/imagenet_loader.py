"""Decode image files in ``DataLoader`` worker processes and batch them as uint8.

Only what must happen per file happens in the workers: JPEG decode in draft mode (the decoder
downscales by 1/2, 1/4 or 1/8 while the shorter side stays >= ``short_side``), a PIL resize of the
shorter side down to ``short_side`` (never up unless ``upscale``: the device resamples anyway) and
a centre crop of the longer side to ``max_aspect``. Batches stay uint8 until they reach the device,
where cropping, scaling, flipping, colour noise and normalisation run on the whole batch at once
(``imagenet_augment``), so the CPU work per image is decode + one resize.

Training batches (``collate="pad"``) are a uint8 canvas ``[N, 3, S, L]`` of at most
``S = short_side`` by ``L = ceil(S * max_aspect)`` (trimmed to the batch's largest image): landscape
images sit top-left, portrait ones are stored transposed (flag ``transposed``) so that one canvas
shape fits both; ``sizes`` holds each image's true ``(h, w)``. Evaluation batches (``collate="list"``) keep each image's own size.

Unreadable or truncated files are reported by path: ``on_error="fail"`` raises
``ImageDecodeError`` in the main process, ``"skip"`` drops the file, counts it and warns.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from ..seeding import generator as seeded
from .imagenet import ImageIndex
from .images import ImageDecodeError, open_image, pil_to_tensor

ON_ERROR = ("skip", "fail")
COLLATES = ("pad", "list")


def scaled_size(h: int, w: int, short: int) -> tuple[int, int]:
    """``(h, w)`` with the shorter side made ``short`` and the aspect kept (half rounds up).
    Shared by the workers (PIL) and the test protocols (torch) so both agree to the pixel."""
    if h <= w:
        return short, max(1, math.floor(w * short / h + 0.5))
    return max(1, math.floor(h * short / w + 0.5)), short


@dataclass(frozen=True)
class DecodeConfig:
    """What a worker does to each file.

    ``short_side``: target of the shorter side (``None``: keep the decoded size). ``upscale``: also
    enlarge smaller images to it (test protocols need exactly 256; training does not, since the
    device rescales every image anyway). ``max_aspect``: centre-crop the longer side to at most
    ``short_side * max_aspect`` so a fixed canvas holds every image (wider images lose their edges;
    4:3, the common ImageNet shape, is kept whole by the default 1.5).
    """

    short_side: int | None = None
    upscale: bool = False
    max_aspect: float | None = None
    collate: str = "list"
    on_error: str = "fail"

    def __post_init__(self) -> None:
        if self.short_side is not None and self.short_side < 1:
            raise ValueError(f"short_side must be positive, got {self.short_side}")
        if self.max_aspect is not None and self.max_aspect < 1:
            raise ValueError(f"max_aspect must be >= 1, got {self.max_aspect}")
        if self.collate not in COLLATES:
            raise ValueError(f"collate must be one of {COLLATES}, got {self.collate!r}")
        if self.collate == "pad" and (self.short_side is None or self.max_aspect is None):
            raise ValueError("collate='pad' needs short_side and max_aspect (the canvas size)")
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")

    @property
    def canvas(self) -> tuple[int, int]:
        if self.short_side is None or self.max_aspect is None:
            raise ValueError("a canvas needs short_side and max_aspect")
        return self.short_side, math.ceil(self.short_side * self.max_aspect)


def load_resized(path: str, config: DecodeConfig) -> Image.Image:
    """Decode ``path`` (draft mode where allowed) and apply the worker resize of ``config``."""
    image = open_image(path, draft_size=config.short_side)
    w, h = image.size
    if config.short_side is not None and (
        min(h, w) > config.short_side or (config.upscale and min(h, w) < config.short_side)
    ):
        nh, nw = scaled_size(h, w, config.short_side)
        image = image.resize((nw, nh), Image.BILINEAR)
        w, h = nw, nh
    if config.max_aspect is not None:
        limit = math.floor(min(h, w) * config.max_aspect)
        if w > limit:
            left = (w - limit) // 2
            image = image.crop((left, 0, left + limit, h))
        elif h > limit:
            top = (h - limit) // 2
            image = image.crop((0, top, w, top + limit))
    return image


class FolderDataset(Dataset):
    """Items are ``(uint8 [3, H, W] or None, label, error or None)``; errors travel to the main
    process as text so the policy is applied there (a worker's exception would lose its type)."""

    def __init__(self, index: ImageIndex, config: DecodeConfig) -> None:
        self.index = index
        self.config = config

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int, tuple[str, str] | None, int]:
        path, label = self.index.samples[i]
        try:
            return pil_to_tensor(load_resized(path, self.config)), label, None, i
        except ImageDecodeError as error:
            return None, label, (error.path, error.reason), i


@dataclass(frozen=True)
class Batch:
    """``images``: uint8 canvas ``[N, 3, S, L]`` (pad) or a list of ``[3, H, W]`` (list);
    ``sizes``: ``[N, 2]`` true ``(h, w)`` in the image's own orientation; ``transposed``: ``[N]``
    bool (pad only); ``labels``: int64 ``[N]``; ``errors``: ``(path, reason)`` of dropped files."""

    images: torch.Tensor | list[torch.Tensor]
    sizes: torch.Tensor
    transposed: torch.Tensor
    labels: torch.Tensor
    errors: tuple[tuple[str, str], ...] = ()
    indices: tuple[int, ...] = ()  # positions in the ImageIndex of the images kept

    def __len__(self) -> int:
        return len(self.labels)

    def pin_memory(self) -> Batch:
        """Called by ``DataLoader(pin_memory=True)`` so host-to-device copies can overlap."""
        images = [x.pin_memory() for x in self.images] if isinstance(self.images, list) else self.images.pin_memory()
        return replace(
            self,
            images=images,
            sizes=self.sizes.pin_memory(),
            transposed=self.transposed.pin_memory(),
            labels=self.labels.pin_memory(),
        )

    def to(self, device: torch.device | str, non_blocking: bool = True) -> Batch:
        images = (
            [x.to(device, non_blocking=non_blocking) for x in self.images]
            if isinstance(self.images, list)
            else self.images.to(device, non_blocking=non_blocking)
        )
        return replace(
            self,
            images=images,
            sizes=self.sizes.to(device),
            transposed=self.transposed.to(device),
            labels=self.labels.to(device),
        )


class Collate:
    """Picklable collate function (workers may be spawned)."""

    def __init__(self, config: DecodeConfig) -> None:
        self.config = config

    def __call__(self, items: list) -> Batch:
        good = [(x, y) for x, y, e, *_ in items if e is None]
        errors = tuple(e for _, _, e, *_ in items if e is not None)
        indices = tuple(int(item[3]) for item in items if item[2] is None and len(item) > 3)
        images = [x for x, _ in good]
        labels = torch.tensor([y for _, y in good], dtype=torch.int64)
        sizes = torch.tensor([tuple(x.shape[1:]) for x in images], dtype=torch.int64).view(-1, 2)
        transposed = sizes[:, 0] > sizes[:, 1]
        if self.config.collate == "list":
            return Batch(images, sizes, torch.zeros_like(transposed), labels, errors, indices)
        short, long = self.config.canvas
        stored = [x.transpose(1, 2) if t else x for x, t in zip(images, transposed.tolist())]
        for x, size in zip(stored, sizes.tolist()):
            if x.shape[1] > short or x.shape[2] > long:
                raise ValueError(f"image of {tuple(size)} does not fit the {short}x{long} canvas (resize it first)")
        # Trimmed to the batch's largest image: less to copy between processes and to the device.
        short = max((x.shape[1] for x in stored), default=1)
        long = max((x.shape[2] for x in stored), default=1)
        canvas = torch.zeros(len(images), 3, short, long, dtype=torch.uint8)
        for n, x in enumerate(stored):
            canvas[n, :, : x.shape[1], : x.shape[2]] = x
        return Batch(canvas, sizes, transposed, labels, errors, indices)


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch (``set_epoch``), or the plain order; optionally one shard
    ``rank`` of ``world`` (every sample in exactly one shard, no padding: exact evaluation)."""

    def __init__(self, n: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank must lie in [0, world={world}), got {rank}")
        self.n, self.shuffle, self.seed, self.rank, self.world = n, shuffle, seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = seeded(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=generator).tolist()
        else:
            order = list(range(self.n))
        return iter(order[self.rank :: self.world])

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


class ImageLoader:
    """Iterates ``Batch``es of an ``ImageIndex``, applying the ``on_error`` policy.

    ``skipped`` lists every ``(path, reason)`` dropped so far (policy ``"skip"``). ``collate``
    replaces the default ``Collate(config)`` (e.g. ``imagenet_augment.AugmentingCollate``).
    """

    def __init__(
        self,
        index: ImageIndex,
        config: DecodeConfig,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        workers: int = 0,
        drop_last: bool = False,
        pin_memory: bool = False,
        collate: Callable[[list], Batch] | None = None,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.index, self.config = index, config
        self.sampler = EpochSampler(len(index), shuffle=shuffle, seed=seed, rank=rank, world=world)
        self.skipped: list[tuple[str, str]] = []
        self.loader = DataLoader(
            FolderDataset(index, config),
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=workers,
            collate_fn=collate if collate is not None else Collate(config),
            drop_last=drop_last,
            pin_memory=pin_memory,
            persistent_workers=workers > 0,
        )

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for batch in self.loader:
            for path, reason in batch.errors:
                if self.config.on_error == "fail":
                    raise ImageDecodeError(path, reason)
                self.skipped.append((path, reason))
                warnings.warn(f"skipped unreadable image {path}: {reason}", stacklevel=2)
            if len(batch):
                yield batch
