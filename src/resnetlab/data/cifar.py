"""Readers for the official CIFAR-10 / CIFAR-100 releases, both formats.

The releases (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html) store each image as
3072 bytes: the 1024 red, then 1024 green, then 1024 blue pixels of a 32x32 image in row-major
order, i.e. already the ``[3, 32, 32]`` layout of ``ImageArrays``.

* python: pickled dicts with ``data`` (uint8 ``[N, 3072]``) and ``labels`` (CIFAR-10) or
  ``fine_labels``/``coarse_labels`` (CIFAR-100); class names in ``batches.meta`` / ``meta``.
* binary: fixed-size records, ``<label byte> <3072 pixel bytes>`` (CIFAR-10) or
  ``<coarse byte> <fine byte> <3072 pixel bytes>`` (CIFAR-100); names in text files.

The paper's CIFAR experiments (Sec. 4.2) use CIFAR-10; CIFAR-100 readers use the 100 fine labels.
``cifar_archive.write_cifar_archive`` writes archives of this layout (the tests use it).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .arrays import ImageArrays

NAMES = ("cifar10", "cifar100")
FORMATS = ("python", "binary")
SPLITS = ("train", "test")
PIXELS = 3 * 32 * 32

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class Layout:
    """Where one release keeps its files, relative to its extracted folder."""

    name: str  # "cifar10" | "cifar100"
    fmt: str  # "python" | "binary"
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str

    @property
    def label_bytes(self) -> int:
        return 2 if self.name == "cifar100" else 1


LAYOUTS: dict[tuple[str, str], Layout] = {
    ("cifar10", "python"): Layout(
        "cifar10",
        "python",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
    ),
    ("cifar10", "binary"): Layout(
        "cifar10",
        "binary",
        "cifar-10-batches-bin",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        ("test_batch.bin",),
        "batches.meta.txt",
    ),
    ("cifar100", "python"): Layout("cifar100", "python", "cifar-100-python", ("train",), ("test",), "meta"),
    ("cifar100", "binary"): Layout(
        "cifar100", "binary", "cifar-100-binary", ("train.bin",), ("test.bin",), "fine_label_names.txt"
    ),
}


def _check(name: str, split: str | None = None, fmt: str | None = None) -> None:
    if name not in NAMES:
        raise ValueError(f"name must be one of {NAMES}, got {name!r}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")


def find_cifar_folder(root: str | Path, name: str = "cifar10") -> tuple[Path, Layout] | None:
    """The extracted release folder under ``root`` (``root`` itself or its child), or None.

    The python format is preferred when both are present (it is one read per batch).
    """
    _check(name)
    root = Path(root)
    for fmt in FORMATS:
        layout = LAYOUTS[(name, fmt)]
        for folder in (root, root / layout.folder):
            if (folder / layout.train_files[0]).is_file() or (folder / layout.test_files[0]).is_file():
                return folder, layout
    return None


class _CifarUnpickler(pickle.Unpickler):
    """Only what the official pickles contain: dicts, lists, bytes and numpy arrays.

    Unpickling is arbitrary code execution otherwise; a downloaded file must not get that.
    """

    ALLOWED = {  # noqa: RUF012 (read-only; pickle.Unpickler subclasses name it so)
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def _str(value: str | bytes) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _read_pickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"missing CIFAR file {path}")
    try:
        with open(path, "rb") as handle:
            # The releases were pickled by Python 2; latin1 maps its byte strings 1:1.
            obj = _CifarUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"{path}: not a valid CIFAR pickle ({error or type(error).__name__})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a valid CIFAR pickle (expected a dict, got {type(obj).__name__})")
    return {_str(k): v for k, v in obj.items()}


def _pickle_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_pickle(path)
    if "data" not in batch or label_key not in batch:
        raise ValueError(f"{path}: CIFAR batch lacks the keys 'data' and {label_key!r}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise ValueError(f"{path}: 'data' must be uint8 [N, {PIXELS}], got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    return data, labels


def _binary_batch(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"missing CIFAR file {path}")
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + PIXELS
    if raw.size == 0 or raw.size % record:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR records (truncated?)")
    rows = raw.reshape(-1, record)
    # CIFAR-100 records are <coarse><fine><pixels>; the fine label is the last label byte.
    return rows[:, label_bytes:], rows[:, label_bytes - 1].astype(np.int64)


def _class_names(folder: Path, layout: Layout) -> tuple[str, ...]:
    path = folder / layout.meta_file
    if layout.fmt == "binary":
        if not path.is_file():
            raise FileNotFoundError(f"missing CIFAR file {path}")
        names = [line.strip() for line in path.read_text(encoding="latin1").splitlines()]
        return tuple(n for n in names if n)
    meta = _read_pickle(path)
    key = "fine_label_names" if layout.name == "cifar100" else "label_names"
    if key not in meta:
        raise ValueError(f"{path}: CIFAR meta file lacks {key!r}")
    return tuple(_str(n) for n in meta[key])


def load_cifar(root: str | Path, split: str = "train", name: str = "cifar10") -> ImageArrays:
    """One split of CIFAR-10/100 from the extracted official release (python or binary format).

    ``root`` is the extracted folder (``cifar-10-batches-py`` ...) or the folder that holds it.
    """
    _check(name, split)
    found = find_cifar_folder(root, name)
    if found is None:
        looked = ", ".join(LAYOUTS[(name, f)].folder for f in FORMATS)
        raise FileNotFoundError(f"no {name} release in {root}: looked for {looked} (there or as {root} itself)")
    folder, layout = found
    files = layout.train_files if split == "train" else layout.test_files
    parts = []
    for file in files:
        if layout.fmt == "python":
            parts.append(_pickle_batch(folder / file, "fine_labels" if name == "cifar100" else "labels"))
        else:
            parts.append(_binary_batch(folder / file, layout.label_bytes))
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    classes = _class_names(folder, layout)
    if len(labels) and int(labels.max()) >= len(classes):
        raise ValueError(f"{folder}: label {int(labels.max())} but only {len(classes)} class names")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return ImageArrays(images, torch.from_numpy(labels), classes)
