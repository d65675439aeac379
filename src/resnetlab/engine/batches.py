"""Training batches from a dataset held on the device, reproducible from (seed, iteration).

The whole split is normalised, zero-padded and kept on the device once (45k CIFAR images: about
0.9 GB in float32), as airbench does; each iteration gathers and augments a batch in one call.
Every random choice is a pure function of the seed and the iteration number: the epoch's order
comes from a generator seeded by (seed, epoch), the augmentation from one seeded by (seed,
iteration). A resumed run therefore draws exactly the batches an uninterrupted run would, without
having to carry generator states across processes.
"""

from __future__ import annotations

import torch

from ..data.arrays import ImageArrays
from ..data.cifar_augment import pad_channels_last, random_crop_flip
from ..data.preprocess import Preprocess
from ..seeding import AUGMENT_STREAM, EPOCH_STREAM, seeded_generator


class DeviceBatches:
    """Iteration -> (augmented normalised images, labels), sharded by rank for data parallelism."""

    def __init__(
        self,
        arrays: ImageArrays,
        preprocess: Preprocess,
        *,
        batch_size: int,
        seed: int,
        device: torch.device,
        augment: bool = True,
        pad: int = 4,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(arrays) < batch_size:
            raise ValueError(f"batch_size {batch_size} exceeds the {len(arrays)} training images")
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} must be divisible by the {world_size} processes")
        self.size = tuple(arrays.images.shape[2:])
        self.images = pad_channels_last(preprocess.normalize(arrays.images), pad if augment else 0).to(device)
        self.labels = arrays.labels.to(device)
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.pad = pad
        self.rank = rank
        self.world_size = world_size
        # Drop the last partial batch of each epoch so every batch has the recipe's size.
        self.steps_per_epoch = len(arrays) // batch_size
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def order(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            self._order = torch.randperm(len(self), generator=seeded_generator(self.seed, EPOCH_STREAM, epoch))
            self._epoch = epoch
        return self._order

    def batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, step = divmod(iteration, self.steps_per_epoch)
        start = step * self.batch_size
        index = self.order(epoch)[start : start + self.batch_size]
        # Each process takes its contiguous share of the global batch; the augmentation draws for
        # the whole global batch so any world size sees the same augmented images.
        generator = seeded_generator(self.seed, AUGMENT_STREAM, iteration) if self.augment else None
        images = random_crop_flip(self.images, index, self.size, generator)
        share = self.batch_size // self.world_size
        part = slice(self.rank * share, (self.rank + 1) * share)
        return images[part], self.labels[index.to(self.labels.device)][part]
