"""Single-view evaluation (CIFAR protocol, Sec. 4.2): top-1/top-5 error and loss."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


def error_counts(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 1000,
    autocast: contextlib.AbstractContextManager | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """``[n, top1 wrong, top5 wrong, summed loss]`` as a float64 tensor on the images' device.

    Images must already be normalised. Counts (not rates) so that data-parallel shards can be
    summed exactly, each sample counted once.
    """
    was_training = model.training
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=images.device)
    k = None
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                x = images[start : start + batch_size]
                y = labels[start : start + batch_size]
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast or contextlib.nullcontext():
                    logits = model(x)
                logits = logits.float()
                k = min(5, logits.shape[1])
                top = logits.topk(k, dim=1).indices
                hit = top == y[:, None]
                totals[0] += y.shape[0]
                totals[1] += (~hit[:, 0]).sum()
                totals[2] += (~hit.any(1)).sum()
                totals[3] += F.cross_entropy(logits, y, reduction="sum")
    finally:
        model.train(was_training)
    return totals


def rates(totals: torch.Tensor) -> dict[str, float]:
    n, top1, top5, loss = (float(v) for v in totals.cpu())
    n = max(n, 1.0)
    # A NaN loss slot means the protocol does not measure loss (ImageNet crops): report None.
    return {"top1_error": 100.0 * top1 / n, "top5_error": 100.0 * top5 / n,
            "loss": None if loss != loss else loss / n, "n": int(n)}
