"""Single-view evaluation (CIFAR protocol, Sec. 4.2): top-1/top-5 error and loss."""

from __future__ import annotations

import contextlib
import math

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


# The loss slot of a protocol that does not measure loss (ImageNet crops). A summed cross-entropy
# is never negative, so -inf cannot be mistaken for a real value; NaN could, and a NaN loss means
# the model diverged. -inf also survives the all-reduce sum of data-parallel shards.
LOSS_NOT_MEASURED = float("-inf")


def rates(totals: torch.Tensor) -> dict[str, float]:
    """Errors in percent and the mean loss (None when not measured) from ``error_counts`` totals.

    Raises ``FloatingPointError`` for a NaN or infinite loss: reporting it as "not measured"
    would hide a diverged model behind plausible-looking error rates.
    """
    n, top1, top5, loss = (float(v) for v in totals.cpu())
    n = max(n, 1.0)
    if loss == LOSS_NOT_MEASURED:
        mean_loss = None
    elif not math.isfinite(loss):
        raise FloatingPointError(f"loss is {loss / n}")
    else:
        mean_loss = loss / n
    return {"top1_error": 100.0 * top1 / n, "top5_error": 100.0 * top5 / n, "loss": mean_loss, "n": int(n)}
