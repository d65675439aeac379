"""Counting errors: ``EvalCounts``, the one record every evaluation produces.

Counts, not rates: each sample is counted once and never padded, so the shards of a distributed
evaluation (each process its share of the test set) are summed exactly, in any order, and only the
sum becomes a rate. On the device the same four numbers travel as a float64 tensor
``[n, top1 wrong, top5 wrong, summed loss]`` (``EvalCounts.as_tensor``), which one all-reduce sums
and which the training loop accumulates without a host sync.

The top-1/top-5 error and the single-view loss are the figures of Sec. 4.2 (CIFAR) and Tables 2-4.
"""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

# The loss slot of a protocol that does not measure loss (ImageNet crops). A summed cross-entropy
# is never negative, so -inf cannot be mistaken for a real value; NaN could, and a NaN loss means
# the model diverged. -inf also survives the all-reduce sum of data-parallel shards.
LOSS_NOT_MEASURED = float("-inf")


class EvalCounts(NamedTuple):
    n: int
    top1_wrong: int
    top5_wrong: int
    loss: float = LOSS_NOT_MEASURED  # summed cross-entropy, or LOSS_NOT_MEASURED

    def __add__(self, other: EvalCounts) -> EvalCounts:  # type: ignore[override]
        return EvalCounts(
            self.n + other.n,
            self.top1_wrong + other.top1_wrong,
            self.top5_wrong + other.top5_wrong,
            self.loss + other.loss,
        )

    def as_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The float64 form that ``all_reduce_sum`` adds up across processes."""
        return torch.tensor([self.n, self.top1_wrong, self.top5_wrong, self.loss], dtype=torch.float64, device=device)

    @classmethod
    def from_tensor(cls, totals: torch.Tensor) -> EvalCounts:
        n, top1, top5, loss = (float(v) for v in totals.cpu())
        return cls(int(n), int(top1), int(top5), loss)


def error_rates(counts: EvalCounts) -> tuple[float, float]:
    """Top-1 and top-5 error in percent."""
    if counts.n == 0:
        raise ValueError("no images were evaluated")
    return 100.0 * counts.top1_wrong / counts.n, 100.0 * counts.top5_wrong / counts.n


def rates(totals: torch.Tensor | EvalCounts) -> dict[str, float]:
    """Errors in percent and the mean loss (None when not measured) from counts (or their tensor).

    Raises ``FloatingPointError`` for a NaN or infinite loss: reporting it as "not measured"
    would hide a diverged model behind plausible-looking error rates.
    """
    values = totals.as_tensor() if isinstance(totals, EvalCounts) else totals
    n, top1, top5, loss = (float(v) for v in values.cpu())
    n = max(n, 1.0)
    if loss == LOSS_NOT_MEASURED:
        mean_loss = None
    elif not math.isfinite(loss):
        raise FloatingPointError(f"loss is {loss / n}")
    else:
        mean_loss = loss / n
    return {"top1_error": 100.0 * top1 / n, "top5_error": 100.0 * top5 / n, "loss": mean_loss, "n": int(n)}


def count_errors(probs: torch.Tensor, labels: torch.Tensor, k: int = 5) -> EvalCounts:
    """Top-1 and top-``k`` mistakes of scores ``[N, C]`` (no loss: protocols average softmaxes)."""
    labels = labels.to(probs.device)
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= probs.shape[-1]):
        raise ValueError(f"labels must lie in [0, {probs.shape[-1]}) (the model's classes)")
    top = probs.topk(min(k, probs.shape[-1]), dim=-1).indices
    top1_wrong = int((top[:, 0] != labels).sum())
    topk_wrong = int((~(top == labels[:, None]).any(-1)).sum())
    return EvalCounts(len(labels), top1_wrong, topk_wrong)


def error_counts(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 1000,
    autocast: contextlib.AbstractContextManager | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """The single view (CIFAR protocol, Sec. 4.2) of normalised images: ``EvalCounts`` with the
    loss measured, as its float64 tensor on the images' device (summed there, no host sync)."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=images.device)
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
                top = logits.topk(min(5, logits.shape[1]), dim=1).indices
                hit = top == y[:, None]
                totals[0] += y.shape[0]
                totals[1] += (~hit[:, 0]).sum()
                totals[2] += (~hit.any(1)).sum()
                totals[3] += F.cross_entropy(logits, y, reduction="sum")
    finally:
        model.train(was_training)
    return totals
