"""Small-image folders ``<root>/{train,test}/<class>/<image>`` decoded into ``ImageArrays``.

For folders of equal-sized small images (the CIFAR-10 JPEG copy: 60,000 files of 32x32) the whole
split is decoded once, in parallel, and cached as one ``.npz`` keyed by a hash of the folder's
listing, so later runs load it in a fraction of a second. Photos of varying size (ImageNet) are
not held in memory; they belong to the streaming ImageNet pipeline instead.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .arrays import ImageArrays
from .images import ImageDecodeError, decode_image, is_image_file

SPLITS = ("train", "test")
CACHE_VERSION = 1  # bump when the cache file's content changes
# Below this many files process start-up costs more than it saves.
MIN_PARALLEL_FILES = 2000


def list_classes(split_dir: Path) -> tuple[str, ...]:
    if not split_dir.is_dir():
        raise FileNotFoundError(f"no folder {split_dir} (expected <root>/<split>/<class>/<image>)")
    classes = tuple(sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith(".")))
    if not classes:
        raise ValueError(f"{split_dir} has no class subfolders (expected <root>/<split>/<class>/<image>)")
    return classes


def list_files(split_dir: Path, classes: tuple[str, ...]) -> list[tuple[str, int, int, int]]:
    """``(relative path, size, mtime_ns, label)`` for every image, in class then name order."""
    entries = []
    for label, name in enumerate(classes):
        found = []
        for entry in os.scandir(split_dir / name):
            if entry.is_file() and is_image_file(entry.name):
                st = entry.stat()
                found.append((f"{name}/{entry.name}", st.st_size, st.st_mtime_ns, label))
        entries.extend(sorted(found))
    return entries


def listing_key(root: Path, split: str, entries: list[tuple[str, int, int, int]]) -> str:
    """Hash of what decoding depends on: paths, sizes and mtimes (a changed file changes the key)."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}\n{root.resolve()}\n{split}\n".encode())
    for rel, size, mtime, label in entries:
        digest.update(f"{rel}\0{size}\0{mtime}\0{label}\n".encode())
    return digest.hexdigest()[:20]


def _decode_chunk(paths: list[str], on_error: str = "fail") -> tuple[np.ndarray | None, list[tuple[str, str]]]:
    """Decode a run of files into one ``[n, 3, H, W]`` array (raises on a size mismatch) and the
    ``(path, reason)`` of each unreadable file. Errors are returned, not raised, so that they
    cross back from a worker process intact; ``on_error="fail"`` stops at the first one."""
    arrays, errors = [], []
    for p in paths:
        try:
            arrays.append(decode_image(p).numpy())
        except ImageDecodeError as error:
            errors.append((error.path, error.reason))
            if on_error == "fail":
                break
    for path, array in zip(paths, arrays):
        if array.shape != arrays[0].shape:
            raise _size_error(paths[0], arrays[0].shape, path, array.shape)
    return (np.stack(arrays) if arrays else None), errors


def _size_error(path_a: str, shape_a: tuple, path_b: str, shape_b: tuple) -> ValueError:
    return ValueError(
        f"images differ in size ({path_a} is {shape_a[2]}x{shape_a[1]}, {path_b} is "
        f"{shape_b[2]}x{shape_b[1]}); load_image_folder holds equal-sized images in memory, "
        "use the ImageNet pipeline (resize + crop while streaming) for folders of photos"
    )


def _worker_init() -> None:
    # Forked workers must not start intra-op thread pools of their own (2 cores are shared).
    torch.set_num_threads(1)


def decode_files(
    paths: list[str], workers: int, *, on_error: str = "fail", skipped: list[tuple[str, str]] | None = None
) -> np.ndarray:
    """Decode every file, in order, across ``workers`` processes; all must share one size.

    An unreadable file raises ``ImageDecodeError`` naming it (``on_error="fail"``), or is left out
    and its ``(path, reason)`` appended to ``skipped`` (``"skip"``): the rows are then the readable
    files, in order.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    if not paths:
        raise ValueError("no image files to decode")
    if workers <= 1 or len(paths) < MIN_PARALLEL_FILES:
        runs = [paths]
        results = [_decode_chunk(paths, on_error)]
    else:
        size = max(256, len(paths) // (workers * 8))
        runs = [paths[i : i + size] for i in range(0, len(paths), size)]
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
            results = list(pool.map(_decode_chunk, runs, [on_error] * len(runs)))
    errors = [e for _, chunk_errors in results for e in chunk_errors]
    if errors and on_error == "fail":
        raise ImageDecodeError(*errors[0])
    if skipped is not None:
        skipped.extend(errors)
    bad = {path for path, _ in errors}
    # Each decoded chunk with the first file it holds (for the size-mismatch message).
    chunks = [
        (chunk, next(p for p in run if p not in bad)) for run, (chunk, _) in zip(runs, results) if chunk is not None
    ]
    if not chunks:
        raise ValueError(f"none of the {len(paths)} image files could be read ({errors[0][0]}: {errors[0][1]})")
    first, first_path = chunks[0]
    for chunk, path in chunks:
        if chunk.shape[1:] != first.shape[1:]:
            raise _size_error(first_path, first.shape[1:], path, chunk.shape[1:])
    return np.concatenate([chunk for chunk, _ in chunks])


def _write_cache(path: Path, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> None:
    from ..checkpoints.atomic import staged_output

    with staged_output(path, overwrite=True) as tmp, open(tmp, "wb") as handle:  # a reader sees all or nothing
        np.savez(handle, images=images, labels=labels, classes=np.array(classes))


def _read_cache(path: Path) -> ImageArrays | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels, classes = z["images"], z["labels"], tuple(str(c) for c in z["classes"])
        return ImageArrays(torch.from_numpy(images), torch.from_numpy(labels), classes)
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: decode again and overwrite it


def load_image_folder(
    root: str | Path,
    split: str = "train",
    *,
    cache_dir: Path | None = None,
    workers: int = 2,
    on_error: str = "fail",
    skipped: list[tuple[str, str]] | None = None,
) -> ImageArrays:
    """Decode ``root/split/<class>/*`` into uint8 arrays; classes are the sorted folder names.

    ``cache_dir``: keep the decoded split there and reuse it while the folder is unchanged.
    ``workers``: decoding processes (1 = decode in this process).
    ``on_error``: an unreadable file raises ``ImageDecodeError`` naming it (``"fail"``), or is
    left out and its ``(path, reason)`` appended to ``skipped`` (``"skip"``), every one of them,
    not just the first.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    root = Path(root)
    split_dir = root / split
    classes = list_classes(split_dir)
    other = root / SPLITS[1 - SPLITS.index(split)]
    if other.is_dir() and list_classes(other) != classes:
        raise ValueError(f"{split_dir} and {other} have different class folders; they must agree")
    entries = list_files(split_dir, classes)
    if not entries:
        raise ValueError(f"{split_dir} holds no image files ({', '.join(classes[:3])}, ... are empty)")
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"{root.resolve().name}-{split}-{listing_key(root, split, entries)}.npz"
        if cache_path.is_file():
            cached = _read_cache(cache_path)
            if cached is not None:
                return cached
    paths = [str(split_dir / rel) for rel, *_ in entries]
    errors: list[tuple[str, str]] = []
    images = decode_files(paths, workers, on_error=on_error, skipped=errors)
    bad = {path for path, _ in errors}
    labels = np.array([e[3] for e, path in zip(entries, paths) if path not in bad], dtype=np.int64)
    if skipped is not None:
        skipped.extend(errors)
    # Not cached with files left out: the cache key is the listing, and a later "fail" run of the
    # same listing must still see (and name) the unreadable files.
    if cache_path is not None and not errors:
        _write_cache(cache_path, images, labels, classes)
    return ImageArrays(torch.from_numpy(images), torch.from_numpy(labels), classes)
