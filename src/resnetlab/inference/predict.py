"""Top-k classification of image files with a trained model.

Files are decoded one batch at a time (memory stays bounded for large directories); a file that
cannot be read becomes a ``Prediction`` with ``error`` set and never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints.checkpoint import LoadedModel
from ..data.images import ImageDecodeError, is_image_file
from ..data.transforms import load_image


@dataclass(frozen=True)
class ClassScore:
    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one file, best first, or the reason it could not be classified."""

    path: str
    top: tuple[ClassScore, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "top": [{"index": s.index, "class": s.name, "probability": s.probability} for s in self.top],
            "error": self.error,
        }


def expand_paths(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, directories as their image files (recursively, sorted, hidden ones skipped).

    A named file is always attempted, whatever its suffix, so that a mistake is reported rather
    than silently skipped; inside a directory only image suffixes count.
    """
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = sorted(
                p
                for p in item.rglob("*")
                if p.is_file()
                and is_image_file(p)
                and not any(part.startswith(".") for part in p.relative_to(item).parts)
            )
            paths.extend(found)
        else:
            paths.append(item)  # a missing file gets its error entry from the decoder
    return paths


def _batches(paths: list[Path], batch_size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), batch_size):
        yield paths[start : start + batch_size]


def class_name(loaded: LoadedModel, index: int) -> str:
    return loaded.classes[index] if index < len(loaded.classes) else str(index)


def predict_tensor(loaded: LoadedModel, images: torch.Tensor, topk: int = 5) -> list[tuple[ClassScore, ...]]:
    """Prepared uint8 ``[N, 3, S, S]`` images to their top-k classes."""
    probabilities = torch.softmax(loaded.predict_logits(images).float(), dim=1).cpu()
    k = min(topk, probabilities.shape[1])
    values, indices = probabilities.topk(k, dim=1)
    return [
        tuple(ClassScore(int(i), class_name(loaded, int(i)), float(p)) for p, i in zip(row_p, row_i))
        for row_p, row_i in zip(values, indices)
    ]


def predict(loaded: LoadedModel, paths: Iterable[str | Path], topk: int = 5, batch_size: int = 64) -> list[Prediction]:
    """Classify image files (or directories of them) under the checkpoint's test preprocessing.

    Returns one ``Prediction`` per file in input order; ``topk`` is capped at the number of classes.
    """
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    results: list[Prediction] = []
    for chunk in _batches(expand_paths(paths), batch_size):
        images: list[torch.Tensor] = []
        slots: list[int] = []
        for path in chunk:
            try:
                images.append(load_image(path, loaded.preprocess))
            except ImageDecodeError as error:
                results.append(Prediction(str(path), error=error.reason))
                continue
            except (OSError, ValueError) as error:  # e.g. a directory or a FIFO passed as a file
                results.append(Prediction(str(path), error=str(error) or type(error).__name__))
                continue
            slots.append(len(results))
            results.append(Prediction(str(path)))
        if images:
            for slot, top in zip(slots, predict_tensor(loaded, torch.stack(images), topk)):
                results[slot] = Prediction(results[slot].path, top=top)
    return results
