"""What the training loop needs from a dataset, whatever its size: batches by iteration,
evaluators by split, the test-time preprocessing and the class names.

Two pipelines fill it: ``arrays`` (CIFAR-sized data held on the device, ``batches.DeviceBatches``)
and ``imagenet`` (JPEG folders decoded by DataLoader workers, ``stream``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from ..data.arrays import ImageArrays
from ..data.cifar_augment import mean_image
from ..data.preprocess import Preprocess
from ..evaluation.counts import error_counts
from .batches import DeviceBatches
from .config import TrainConfig
from .distributed import DistInfo

# (model, autocast) -> [n, top1 wrong, top5 wrong, summed loss] on this process's shard (float64)
Evaluator = Callable[[nn.Module, contextlib.AbstractContextManager], torch.Tensor]


class Batches(Protocol):
    steps_per_epoch: int

    def batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class TrainData:
    batches: Batches
    evaluators: dict[str, Evaluator]  # "val" (held out of train; absent when val_size == 0), "test"
    preprocess: Preprocess
    classes: tuple[str, ...]
    sizes: dict[str, int]  # images per split


def split_train_val(arrays: ImageArrays, val_size: int) -> tuple[ImageArrays, ImageArrays | None]:
    """The paper's held-out validation split (45k/5k on CIFAR-10), fixed by seed 0."""
    if val_size == 0:
        return arrays, None
    from ..data import train_val_split

    train_index, val_index = train_val_split(len(arrays), val_size, seed=0)
    return arrays.subset(train_index), arrays.subset(val_index)


def array_data(
    config: TrainConfig,
    arrays: tuple[ImageArrays, ImageArrays],
    *,
    device: torch.device,
    dist_info: DistInfo,
) -> TrainData:
    train_all, test = arrays
    train_set, val_set = split_train_val(train_all, config.val_size)
    size = train_set.images.shape[-1]
    # Per-pixel mean of the images we train on (Sec. 4.2); stored in every checkpoint.
    preprocess = Preprocess(input_size=size, resize="none", resize_to=size, mean_image=mean_image(train_set.images))
    batches = DeviceBatches(
        train_set,
        preprocess,
        batch_size=config.batch_size,
        seed=config.seed,
        device=device,
        augment=config.augment,
        pad=config.pad,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
    )

    def evaluator(split: ImageArrays) -> Evaluator:
        # Exact distributed evaluation: each process takes every world_size-th sample and the
        # counts are summed, so every sample is counted once whatever the dataset size.
        images = preprocess.normalize(split.images[dist_info.rank :: dist_info.world_size]).to(device)
        labels = split.labels[dist_info.rank :: dist_info.world_size].to(device)
        return lambda model, autocast: error_counts(
            model,
            images,
            labels,
            batch_size=config.eval_batch_size,
            autocast=autocast,
            channels_last=config.channels_last,
        )

    evaluators = {"test": evaluator(test)}
    if val_set is not None:
        evaluators = {"val": evaluator(val_set), **evaluators}
    sizes = {"train": len(train_set), "val": len(val_set) if val_set is not None else 0, "test": len(test)}
    return TrainData(batches, evaluators, preprocess, train_all.classes, sizes)


def load_arrays(config: TrainConfig, cache_dir: Path | None) -> tuple[ImageArrays, ImageArrays]:
    from ..data import load_dataset

    return (
        load_dataset(config.data, "train", cache_dir=cache_dir),
        load_dataset(config.data, config.test_split, cache_dir=cache_dir),
    )
