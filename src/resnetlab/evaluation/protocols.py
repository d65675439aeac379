"""Which protocol a checkpoint is tested with, what to decode for it, and counting its errors
over batches (``evaluate_counts``); the views themselves are in ``views``.

Errors are counted as ``EvalCounts`` (each sample once, no padding), so shards of a distributed
evaluation can simply be summed; ``progress`` reports images done of the total for long runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..data.imagenet_loader import DecodeConfig
from ..data.preprocess import Preprocess
from ..progress import Progress
from .counts import EvalCounts, count_errors
from .protocol_names import MULTISCALE_SIZES, PROTOCOLS
from .views import Scorer, predict_probs


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


def evaluate_counts(
    scorers: Sequence[Scorer],
    batches: Iterable,
    protocol: str,
    *,
    scales: Sequence[int] = MULTISCALE_SIZES,
    progress: Progress | None = None,
) -> EvalCounts:
    """``(n, top1_wrong, top5_wrong)`` over ``batches`` of ``(images, labels)`` (or loader
    ``Batch``es). Sum the counts of several shards (all-reduce) before ``error_rates``.
    ``progress``: advanced by the images of each batch (a 10-crop ImageNet pass takes hours)."""
    total = EvalCounts(0, 0, 0)
    for batch in batches:
        images, labels = (batch.images, batch.labels) if hasattr(batch, "labels") else batch
        total = total + count_errors(predict_probs(scorers, images, protocol, scales=scales), labels)
        if progress is not None:
            progress.update(total.n, protocol)
    return total
