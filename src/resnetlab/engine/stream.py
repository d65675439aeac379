"""The ImageNet pipeline for the training loop (Sec. 3.4): JPEG folders decoded in worker
processes, uint8 all the way to the device, the paper's augmentation batched on the device.

Like ``DeviceBatches``, every random choice is a function of (seed, iteration): the epoch's order
comes from a generator seeded by (seed, epoch) and the augmentation from one seeded by (seed,
iteration). A resumed run (with any number of processes) positions the sampler at the right batch
instead of replaying the epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler

from ..data.imagenet import ImageIndex, index_split
from ..data.imagenet_augment import AUGMENT_PRESETS, AugmentingCollate, BatchAugment
from ..data.imagenet_color import ColorStats, estimate_color_stats
from ..data.imagenet_loader import Collate, FolderDataset
from ..data.imagenet_stats import IMAGENET_STD
from ..data.images import ImageDecodeError
from ..data.preprocess import Preprocess
from ..evaluation.counts import EvalCounts
from ..evaluation.protocols import decode_config_for, evaluate_counts
from ..seeding import AUGMENT_STREAM, EPOCH_STREAM, seeded_generator
from .config import TrainConfig
from .distributed import DistInfo
from .train_data import TrainData


class _PositionedSampler(Sampler[int]):
    """This process's share of each global batch of an epoch, from a chosen batch onwards."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world: int) -> None:
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.steps_per_epoch = n // batch_size
        self.epoch, self.start_step = 0, 0

    def position(self, epoch: int, step: int) -> None:
        self.epoch, self.start_step = epoch, step

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.n, generator=seeded_generator(self.seed, EPOCH_STREAM, self.epoch))
        share = self.batch_size // self.world
        for step in range(self.start_step, self.steps_per_epoch):
            batch = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield from batch[self.rank * share : (self.rank + 1) * share].tolist()

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * (self.batch_size // self.world)


class StreamBatches:
    """Iteration -> (augmented normalised images, labels) from a JPEG folder."""

    def __init__(
        self,
        index: ImageIndex,
        config: TrainConfig,
        augment: BatchAugment,
        *,
        device: torch.device,
        dist_info: DistInfo,
    ) -> None:
        if len(index) < config.batch_size:
            raise ValueError(f"batch_size {config.batch_size} exceeds the {len(index)} training images")
        if config.batch_size % dist_info.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} must be divisible by the {dist_info.world_size} processes"
            )
        self.config, self.augment, self.device = config, augment, device
        self.decode = augment.config.decode_config(config.on_error)
        self.sampler = _PositionedSampler(
            len(index), config.batch_size, config.seed, dist_info.rank, dist_info.world_size
        )
        self.steps_per_epoch = self.sampler.steps_per_epoch
        # Without an accelerator the main process is busy training: augment inside the decoding
        # workers instead, where it runs in parallel (measured faster on CPU hosts: see
        # benchmarks/RESULTS.md, "ImageNet pipeline"). The workers' generator is seeded by the
        # epoch and the batch's sample positions, so resume stays exact.
        self.in_workers = device.type == "cpu" and config.workers > 0
        self.worker_collate = AugmentingCollate(self.decode, augment, seed=config.seed) if self.in_workers else None
        self.loader = DataLoader(
            FolderDataset(index, self.decode),
            batch_size=config.batch_size // dist_info.world_size,
            sampler=self.sampler,
            num_workers=config.workers,
            collate_fn=self.worker_collate or Collate(self.decode),
            # Not persistent: a new epoch (or a resume) re-sends the sampler position and seed.
            pin_memory=device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if config.workers else None,
        )
        self._iterator: Iterator | None = None
        self._next = -1
        self.skipped: list[tuple[str, str]] = []

    def batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, step = divmod(iteration, self.steps_per_epoch)
        if iteration != self._next or step == 0:
            self.sampler.position(epoch, step)
            if self.worker_collate is not None:
                self.worker_collate.seed = self.config.seed * 1_000_003 + epoch
            self._iterator = iter(self.loader)
        self._next = iteration + 1
        batch = next(self._iterator)
        for path, reason in batch.errors:
            if self.config.on_error == "fail":
                raise ImageDecodeError(path, reason)
            self.skipped.append((path, reason))
        batch = batch.to(self.device)
        if self.in_workers:
            memory = torch.channels_last if self.config.channels_last else torch.contiguous_format
            return batch.images.contiguous(memory_format=memory), batch.labels
        # The whole batch shares one generator per iteration; each process draws for its share.
        images = self.augment(
            batch.images,
            batch.sizes,
            batch.transposed,
            seeded_generator(self.config.seed + 7919 * self.sampler.rank, AUGMENT_STREAM, iteration),
            channels_last=self.config.channels_last,
        )
        return images, batch.labels


class _Evaluator:
    """1-crop error on this process's shard (every world_size-th image): counts sum exactly.

    An unreadable image fails the evaluation (``on_error="fail"``), naming the file, or is
    skipped and listed in ``skipped`` (``"skip"``): an error rate must never be computed on
    fewer images than the split holds without saying so.
    """

    def __init__(
        self, index: ImageIndex, preprocess: Preprocess, config: TrainConfig, device: torch.device, dist_info: DistInfo
    ) -> None:
        self.shard = index.subset(range(dist_info.rank, len(index), dist_info.world_size))
        self.decode = decode_config_for("1crop", preprocess, config.on_error)
        self.preprocess, self.config, self.device = preprocess, config, device
        self.skipped: dict[str, str] = {}  # path -> reason, over every evaluation so far

    def _batches(self, loader: DataLoader):
        for batch in loader:
            for path, reason in batch.errors:
                if self.config.on_error == "fail":
                    raise ImageDecodeError(path, reason)
                self.skipped[path] = reason
            if len(batch):
                yield list(batch.images), batch.labels

    def __call__(self, model, autocast: contextlib.AbstractContextManager) -> torch.Tensor:
        loader = DataLoader(
            FolderDataset(self.shard, self.decode),
            batch_size=self.config.eval_batch_size,
            num_workers=self.config.workers,
            collate_fn=Collate(self.decode),
        )
        scorer = _Scorer(model, self.preprocess)
        was_training = model.training
        try:
            with autocast:
                counts: EvalCounts = evaluate_counts([scorer], self._batches(loader), "1crop")
        finally:
            model.train(was_training)
        return counts.as_tensor(self.device)  # the loss is not measured by the 1-crop protocol


class _Scorer:
    def __init__(self, model, preprocess: Preprocess) -> None:
        self.model, self.preprocess = model, preprocess


def imagenet_data(
    config: TrainConfig, *, device: torch.device, dist_info: DistInfo, cache_dir: Path | None
) -> TrainData:
    root = Path(config.data or "")
    if not (root / "train").is_dir():
        raise FileNotFoundError(f"the imagenet pipeline needs DATA/train/<class>/*.JPEG; no {root / 'train'}")
    train_all = index_split(root, "train")
    test = index_split(root, config.test_split, labels_file=config.val_labels, wnids=train_all.wnids)
    val = None
    if config.val_size:
        from ..data import train_val_split

        train_index, val_index = train_val_split(len(train_all), config.val_size, seed=0)
        train_set, val = train_all.subset(train_index.tolist()), train_all.subset(val_index.tolist())
    else:
        train_set = train_all
    preset = AUGMENT_PRESETS[config.augmentation]
    augment_config = dataclasses.replace(preset, crop=config.crop_size, scale_range=tuple(config.scale_range))
    if augment_config.style == "paper":
        # Per-pixel mean of the training images, estimated once from a sample and cached (Sec. 3.4).
        stats = estimate_color_stats(
            train_set,
            sample_size=config.mean_sample,
            resize_to=config.test_resize,
            crop=config.crop_size,
            cache_dir=cache_dir,
            workers=config.workers,
        )
        std = (1.0, 1.0, 1.0)
    else:
        stats, std = ColorStats(), IMAGENET_STD
    preprocess = Preprocess(
        input_size=config.crop_size,
        resize="shorter_side",
        resize_to=config.test_resize,
        mean_image=stats.mean_image,
        std=tuple(std),
    )
    batches = StreamBatches(train_set, config, BatchAugment(augment_config, stats), device=device, dist_info=dist_info)
    evaluators = {"test": _Evaluator(test, preprocess, config, device, dist_info)}
    if val is not None:
        evaluators = {"val": _Evaluator(val, preprocess, config, device, dist_info), **evaluators}
    sizes = {"train": len(train_set), "val": len(val) if val is not None else 0, "test": len(test)}
    return TrainData(batches, evaluators, preprocess, tuple(train_all.classes), sizes)
