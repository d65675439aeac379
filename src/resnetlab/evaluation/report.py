"""``evaluate_checkpoints``: what ``resnetlab eval`` runs (one checkpoint or an ensemble, any
protocol, an image folder or a CIFAR release), and the ``EvalReport`` it returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.imagenet import ImageIndex, index_split, is_image_folder
from ..data.imagenet_loader import ImageLoader
from ..progress import PLAIN_EVERY_SECONDS, Progress
from .counts import EvalCounts, error_rates
from .protocol_names import MULTISCALE_SIZES
from .protocols import decode_config_for, evaluate_counts, resolve_protocol


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
            "checkpoints": list(self.checkpoints),
            "data": self.data,
            "split": self.split,
            "protocol": self.protocol,
            "images": self.counts.n,
            "skipped": len(self.skipped),
            "top1_error": self.top1_error,
            "top5_error": self.top5_error,
            "top1_wrong": self.counts.top1_wrong,
            "top5_wrong": self.counts.top5_wrong,
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
    log: Callable[[str], None] | None = None,
    progress_tty: bool | None = False,
) -> EvalReport:
    """Load each checkpoint, run ``protocol`` over the split (softmax averaged over models when
    several are given) and count errors. ``data``: an image folder (ImageNet layouts, or CIFAR as
    JPEG folders) or anything ``resnetlab.data.load_dataset`` accepts (CIFAR pickle/binary).
    A checkpoint is a run directory, a ``.pt``/``.safetensors`` file or a shipped-weights name.
    ``log``: where progress lines go (images done of the total); None: no progress shown."""
    from ..checkpoints.loading import load_any

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
        loader = ImageLoader(
            index, config, batch_size=batch_size, workers=workers, pin_memory=str(device).startswith("cuda")
        )
        with _progress(len(index), log, progress_tty) as progress:
            counts = evaluate_counts(scorers, loader, protocol, scales=scales, progress=progress)
        skipped = tuple(loader.skipped)
    else:
        if load_dataset is None:
            raise ValueError(f"{data}: not an image folder, and resnetlab.data.datasets.load_dataset is unavailable")
        found: list[tuple[str, str]] = []  # unreadable files of a CIFAR-style image folder
        arrays = load_dataset(str(data) if data is not None else None, split, on_error=on_error, skipped=found)
        skipped = tuple(found)
        if classes and tuple(arrays.classes) != tuple(classes):
            raise ValueError(
                f"classes of {data} ({', '.join(arrays.classes[:3])}, ...) are not the checkpoint's classes"
            )
        if limit is not None and limit < len(arrays):
            arrays = arrays.subset(torch.arange(limit) * len(arrays) // limit)
        batches = (
            (arrays.images[i : i + batch_size], arrays.labels[i : i + batch_size])
            for i in range(0, len(arrays), batch_size)
        )
        with _progress(len(arrays), log, progress_tty) as progress:
            counts = evaluate_counts(scorers, batches, protocol, scales=scales, progress=progress)
    name = "synthetic (built-in)" if data is None else str(data)  # load_dataset(None): the built-in set
    return EvalReport(tuple(str(s.path) for s in scorers), name, split, protocol, counts, skipped)


def _progress(total: int, log: Callable[[str], None] | None, tty: bool | None) -> Progress:
    return Progress(
        total, tty=tty, log=log, desc="eval", unit="img", plain_every=PLAIN_EVERY_SECONDS, disable=log is None
    )


def _dataset_loader():
    try:
        from ..data.datasets import load_dataset
    except ImportError:  # the CIFAR loader is optional for ImageNet-only installs
        return None
    return load_dataset
