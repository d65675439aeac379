"""ImageNet-style folder layouts: which file has which label (PAPER.md sec. 3).

Supported layouts of a split directory (``root/train``, ``root/val``, ``root/test``):

- class folders: ``<split>/<wnid>/*.JPEG`` (the train split of ILSVRC, and any val re-sorted so);
- flat files plus a labels file: ``<split>/*.JPEG`` with either ``LOC_val_solution.csv``
  (Kaggle: ``ImageId,PredictionString`` whose first token is the wnid) or a two-column text file
  ``filename label`` where ``label`` is a wnid or a 0-based class index (Caffe's ``val.txt``).

Class order is the order of ``LOC_synset_mapping.txt`` when given (``n01440764 tench, Tinca
tinca``; sorted wnids, as every ImageNet checkpoint expects), else the sorted class-folder names of
the train split, else of the split itself. A flat file without a label, or a label that is not a
known class, raises ``ValueError`` naming the file: never a silent wrong label.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .images import is_image_file

MAPPING_FILE = "LOC_synset_mapping.txt"
# Labels files looked for (in the split directory, then in the dataset root) for a flat split.
LABEL_FILES = ("LOC_{split}_solution.csv", "{split}.txt", "{split}_labels.txt", "labels.txt")


@dataclass(frozen=True)
class ImageIndex:
    """One split: ``samples`` is ``((path, label), ...)``; ``wnids[label]`` is the folder/synset
    id and ``classes[label]`` its human-readable name (the wnid itself when no mapping is known)."""

    root: str
    split: str
    samples: tuple[tuple[str, int], ...]
    wnids: tuple[str, ...]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.wnids) != len(self.classes):
            raise ValueError(f"wnids ({len(self.wnids)}) and classes ({len(self.classes)}) differ in length")
        if len(set(self.wnids)) != len(self.wnids):
            raise ValueError("wnids must be unique")
        for path, label in self.samples:
            if not 0 <= label < len(self.wnids):
                raise ValueError(f"{path}: label {label} outside [0, {len(self.wnids)})")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def listing_key(self) -> str:
        """A digest of the file list, labels and file sizes: caches (the mean image) are keyed by
        it, so adding, removing or replacing a file invalidates them."""
        digest = hashlib.sha256()
        for path, label in self.samples:
            try:
                size = os.stat(path).st_size
            except OSError:
                size = -1
            digest.update(f"{os.path.relpath(path, self.root)}\t{label}\t{size}\n".encode())
        digest.update("\n".join(self.wnids).encode())
        return digest.hexdigest()[:16]

    def subset(self, indices: list[int]) -> ImageIndex:
        return ImageIndex(self.root, self.split, tuple(self.samples[i] for i in indices), self.wnids, self.classes)


def read_synset_mapping(path: str | Path) -> dict[str, str]:
    """``LOC_synset_mapping.txt`` lines ``n01440764 tench, Tinca tinca`` -> ordered {wnid: name}."""
    mapping: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, name = line.strip().partition(" ")
        if wnid in mapping:
            raise ValueError(f"{path}:{number}: wnid {wnid} listed twice")
        mapping[wnid] = name.strip() or wnid
    if not mapping:
        raise ValueError(f"{path}: empty synset mapping")
    return mapping


def read_labels_file(path: str | Path) -> dict[str, str]:
    """A labels file -> {file stem: label string} (a wnid, or a class index as text).

    ``*.csv``: Kaggle's ``ImageId,PredictionString`` (the first token of the prediction string is
    the wnid). Anything else: whitespace-separated ``filename label`` per line.
    """
    path = Path(path)
    labels: dict[str, str] = {}

    def put(name: str, label: str, where: str) -> None:
        stem = Path(name).stem
        if stem in labels and labels[stem] != label:
            raise ValueError(f"{where}: {name} has two labels ({labels[stem]} and {label})")
        labels[stem] = label

    if path.suffix.lower() == ".csv":
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
                raise ValueError(f"{path}: expected a header 'ImageId,PredictionString'")
            for number, row in enumerate(reader, 2):
                if not row:
                    continue
                tokens = row[1].split() if len(row) > 1 else []
                if not tokens:
                    raise ValueError(f"{path}:{number}: no label for {row[0]}")
                put(row[0], tokens[0], f"{path}:{number}")
    else:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{path}:{number}: expected 'filename label', got {line.strip()!r}")
            put(parts[0], parts[1], f"{path}:{number}")
    if not labels:
        raise ValueError(f"{path}: no labels")
    return labels


def _image_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and is_image_file(p))


def _class_dirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def _find_labels_file(split_dir: Path, split: str) -> Path | None:
    for folder in (split_dir, split_dir.parent):
        for pattern in LABEL_FILES:
            candidate = folder / pattern.format(split=split)
            if candidate.is_file():
                return candidate
    return None


def index_split(
    root: str | Path,
    split: str = "train",
    *,
    labels_file: str | Path | None = None,
    mapping_file: str | Path | None = None,
    wnids: tuple[str, ...] | None = None,
) -> ImageIndex:
    """Index ``root/split`` (or ``root`` itself when it has no ``split`` sub-directory).

    ``wnids`` fixes the class order (e.g. the train split's, so val labels line up with it);
    otherwise it comes from ``mapping_file`` (default: ``root/LOC_synset_mapping.txt`` if present),
    then from the train split's class folders, then from this split's.
    """
    root = Path(root)
    split_dir = root / split if (root / split).is_dir() else root
    if not split_dir.is_dir():
        raise FileNotFoundError(f"no dataset directory {split_dir}")
    base = split_dir.parent if split_dir != root else root

    if mapping_file is None and (base / MAPPING_FILE).is_file():
        mapping_file = base / MAPPING_FILE
    mapping = read_synset_mapping(mapping_file) if mapping_file is not None else None
    if wnids is None and mapping is not None:
        wnids = tuple(mapping)
    if wnids is None and split != "train" and (base / "train").is_dir() and split_dir != base / "train":
        train_classes = _class_dirs(base / "train")
        if train_classes:
            wnids = tuple(p.name for p in train_classes)

    class_dirs = _class_dirs(split_dir)
    samples: list[tuple[str, int]] = []
    if class_dirs and labels_file is None:
        if wnids is None:
            wnids = tuple(p.name for p in class_dirs)
        position = {w: i for i, w in enumerate(wnids)}
        for folder in class_dirs:
            if folder.name not in position:
                raise ValueError(f"{folder}: class folder {folder.name!r} is not a known class")
            samples.extend((str(p), position[folder.name]) for p in _image_files(folder))
    else:
        files = _image_files(split_dir)
        if not files:
            raise ValueError(f"{split_dir}: no class folders and no image files")
        labels_path = Path(labels_file) if labels_file is not None else _find_labels_file(split_dir, split)
        if labels_path is None:
            raise ValueError(
                f"{split_dir}: flat image folder without a labels file (give one, e.g. "
                f"LOC_{split}_solution.csv or a 'filename label' text file)"
            )
        labels = read_labels_file(labels_path)
        if wnids is None:
            named = sorted({v for v in labels.values() if not v.isdigit()})
            if not named:
                raise ValueError(f"{labels_path}: numeric labels need a class list (mapping file or train folders)")
            wnids = tuple(named)
        position = {w: i for i, w in enumerate(wnids)}
        for path in files:
            label = labels.get(path.stem)
            if label is None:
                raise ValueError(f"{path}: no label in {labels_path}")
            if label.isdigit():
                index = int(label)
                if index >= len(wnids):
                    raise ValueError(f"{path}: class index {index} outside [0, {len(wnids)}) in {labels_path}")
            elif label in position:
                index = position[label]
            else:
                raise ValueError(f"{path}: label {label!r} in {labels_path} is not a known class")
            samples.append((str(path), index))
    if not samples:
        raise ValueError(f"{split_dir}: no image files")
    classes = tuple(mapping.get(w, w) for w in wnids) if mapping is not None else tuple(wnids)
    return ImageIndex(str(base), split, tuple(samples), tuple(wnids), classes)


def is_image_folder(path: str | Path, split: str) -> bool:
    """Whether ``path`` looks like a folder dataset holding ``split`` (class folders or flat)."""
    path = Path(path)
    split_dir = path / split if (path / split).is_dir() else path
    if not split_dir.is_dir():
        return False
    if any(is_image_file(p) for p in split_dir.iterdir() if p.is_file()):
        return True
    for folder in _class_dirs(split_dir):
        return any(is_image_file(p) for p in folder.iterdir())
    return False
