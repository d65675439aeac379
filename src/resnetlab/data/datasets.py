"""One entry point from a dataset spec string to ``ImageArrays``, and the paper's val split.

Specs: ``None`` or ``"synthetic"`` (the built-in procedural set), ``"synthetic:N"`` (N training
images), or a directory, auto-detected as an official CIFAR-10/100 release (python or binary,
the extracted folder itself or its parent) or an image folder with ``train/`` and ``test/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..seeding import generator as seeded
from .arrays import ImageArrays
from .cifar import CIFAR10_CLASSES, LAYOUTS, NAMES, find_cifar_folder, load_cifar
from .folder import load_image_folder
from .synthetic import CLASSES as SYNTHETIC_CLASSES
from .synthetic import DEFAULT_TEST, DEFAULT_TRAIN, synthetic_split

SPLITS = ("train", "test")
_LOOKED_FOR = (
    "'synthetic', 'synthetic:N', or a directory holding an official CIFAR release ("
    + ", ".join(layout.folder for layout in LAYOUTS.values())
    + ", directly or one level down) or an image folder with train/<class>/ and test/<class>/"
)


@dataclass(frozen=True)
class DatasetSource:
    """What a spec resolved to: ``kind`` is "synthetic", "cifar10", "cifar100" or "folder"."""

    kind: str
    path: Path | None = None
    fmt: str = ""  # "python" | "binary" for CIFAR releases
    n_train: int = DEFAULT_TRAIN


def _parse_synthetic(spec: str) -> DatasetSource:
    _, _, count = spec.partition(":")
    if not count:
        return DatasetSource("synthetic")
    try:
        n = int(count)
    except ValueError:
        raise ValueError(f"dataset spec {spec!r}: N in 'synthetic:N' must be an integer") from None
    if n < 10:
        raise ValueError(f"dataset spec {spec!r}: N must be at least 10 (one image per class)")
    return DatasetSource("synthetic", n_train=n)


def _is_image_folder(path: Path) -> bool:
    return (path / "train").is_dir() and (path / "test").is_dir()


def default_cache_dir() -> Path:
    """Where decoded datasets and image statistics are cached: $RESNETLAB_CACHE or ~/.cache/resnetlab."""
    return Path(os.environ.get("RESNETLAB_CACHE", Path.home() / ".cache" / "resnetlab"))


def resolve_dataset(spec: str | Path | None) -> DatasetSource:
    """Decide what a spec names, without loading it."""
    if spec is None or str(spec) == "synthetic" or str(spec).startswith("synthetic:"):
        return _parse_synthetic(str(spec or "synthetic"))
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"dataset {str(spec)!r} does not exist; expected {_LOOKED_FOR}")
    if not path.is_dir():
        raise ValueError(f"dataset {str(spec)!r} is not a directory; expected {_LOOKED_FOR}")
    candidates = [path] + sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in candidates:
        for name in NAMES:
            found = find_cifar_folder(folder, name)
            if found is not None:
                return DatasetSource(name, found[0], found[1].fmt)
    for folder in candidates:
        if _is_image_folder(folder):
            return DatasetSource("folder", folder)
    raise ValueError(f"no dataset recognised in {path}; looked for {_LOOKED_FOR}")


def load_dataset(
    spec: str | Path | None,
    split: str,
    *,
    cache_dir: Path | None = None,
    seed: int = 0,
    on_error: str = "fail",
    skipped: list[tuple[str, str]] | None = None,
) -> ImageArrays:
    """Load one split (``"train"`` or ``"test"``) of the dataset a spec names.

    ``seed`` picks the synthetic set's images (keep the default 0 so runs share one dataset; it
    is not the training seed). ``cache_dir`` caches decoded image folders. ``on_error`` and
    ``skipped``: unreadable files of an image folder (see ``load_image_folder``).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    source = resolve_dataset(spec)
    if source.kind == "synthetic":
        return synthetic_split(split, source.n_train if split == "train" else DEFAULT_TEST, seed)
    if source.kind == "folder":
        return load_image_folder(source.path, split, cache_dir=cache_dir, on_error=on_error, skipped=skipped)
    return load_cifar(source.path, split, source.kind)


def describe_dataset(spec: str | Path | None) -> str:
    """One line for reports, e.g. ``"CIFAR-10 (JPEG folder /data/cifar10-jpeg)"``."""
    source = resolve_dataset(spec)
    if source.kind == "synthetic":
        return (
            f"synthetic ({len(SYNTHETIC_CLASSES)} procedural shape classes, 32x32, "
            f"{source.n_train} train / {DEFAULT_TEST} test)"
        )
    if source.kind in NAMES:
        title = "CIFAR-10" if source.kind == "cifar10" else "CIFAR-100"
        return f"{title} (official {source.fmt} release {source.path})"
    classes = tuple(
        sorted(p.name for p in (source.path / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    )
    if classes == tuple(sorted(CIFAR10_CLASSES)):
        return f"CIFAR-10 (JPEG folder {source.path})"
    return f"image folder {source.path} ({len(classes)} classes)"


def train_val_split(n: int, val_size: int = 5000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded, sorted ``(train_index, val_index)`` holding out ``val_size`` of ``n`` images.

    The paper picks its CIFAR schedule on a 45k/5k split of the training set (Sec. 4.2); model
    selection never looks at the test set. ``val_size`` is capped at 10% of ``n`` (rounded down)
    so small datasets keep 90% for training.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if val_size < 0:
        raise ValueError(f"val_size must be >= 0, got {val_size}")
    val_size = min(val_size, n // 10)
    order = torch.randperm(n, generator=seeded(seed))
    return order[val_size:].sort().values, order[:val_size].sort().values
