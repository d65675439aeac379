"""Batch norm over groups of a batch: the statistics the paper's multi-GPU training computed.

Sec. 4.2 trains the CIFAR nets "with a mini-batch size of 128 on two GPUs": batch norm of that era
(Caffe, Torch) normalised each GPU's 64 images with their own mean and variance, and the running
statistics kept for testing were one GPU's. One process training the whole batch of 128 computes
them over all 128 instead: a smaller group gives noisier statistics, which act as a regulariser
(Hoffer et al. 2017 call the same thing "ghost batch norm"). ``bn_batch_size = 64`` restores the
paper's grouping in one process; the weights it trains are an ordinary ``BatchNorm2d``'s, and
evaluation (running statistics) is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GroupedBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` that, in training, normalises each ``group_size`` consecutive images of the
    batch with their own statistics. The running statistics follow the first group only: what a
    data-parallel run keeps (DistributedDataParallel broadcasts rank 0's buffers at every step), so
    one process with ``group_size = 64`` trains exactly as two 64-image processes do."""

    def __init__(self, num_features: int, group_size: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= self.group_size:
            return super().forward(x)
        first, *rest = x.split(self.group_size)
        # The first group updates the running statistics (as rank 0 does); the others are
        # normalised by their own batch statistics and leave the buffers alone.
        outputs = [super().forward(first)]
        outputs += [F.batch_norm(g, None, None, self.weight, self.bias, True, 0.0, self.eps) for g in rest]
        return torch.cat(outputs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, group_size={self.group_size}"


def group_batch_norm(model: nn.Module, group_size: int) -> nn.Module:
    """``model`` with every ``BatchNorm2d`` made a :class:`GroupedBatchNorm2d` of ``group_size``
    images, in place. Parameters and buffers are the same tensors (an optimiser built before keeps
    working, and the state dict keeps its keys, so checkpoints load into a plain model)."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"bn_batch_size must be an integer of at least 2, got {group_size!r}")
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                setattr(parent, name, _grouped(child, group_size))
    return model


def _grouped(bn: nn.BatchNorm2d, group_size: int) -> GroupedBatchNorm2d:
    if not (bn.affine and bn.track_running_stats):
        raise ValueError("bn_batch_size needs batch norms with affine parameters and running statistics")
    grouped = GroupedBatchNorm2d(bn.num_features, group_size, eps=bn.eps, momentum=bn.momentum, device="meta")
    grouped.weight, grouped.bias = bn.weight, bn.bias
    grouped.running_mean, grouped.running_var = bn.running_mean, bn.running_var
    grouped.num_batches_tracked = bn.num_batches_tracked
    grouped.train(bn.training)
    return grouped
