"""Image folders ``{train,test}/<class>/<image>``: decoding, class order, errors, the decode cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CIFAR10_JPEG
from PIL import Image

import resnetlab.data.folder as folder
from resnetlab.data import describe_dataset, load_dataset, load_image_folder
from resnetlab.data.images import ImageDecodeError, decode_image

REAL = CIFAR10_JPEG
CLASSES = ("bee", "ant", "cat")  # deliberately unsorted: labels follow sorted names


def make_folder(root: Path, per_class: int = 3, size: int = 8) -> dict[str, list[np.ndarray]]:
    """Lossless PNGs with known pixels; returns the pixels per (split, class) in file order."""
    rng = np.random.default_rng(0)
    pixels: dict[str, list[np.ndarray]] = {}
    for split in ("train", "test"):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                array = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(array).save(root / split / name / f"{i:03d}.png")
                pixels.setdefault(f"{split}/{name}", []).append(array)
    return pixels


def test_decodes_every_file_with_sorted_class_labels(tmp_path: Path) -> None:
    pixels = make_folder(tmp_path)
    (tmp_path / "train" / "ant" / "notes.txt").write_text("not an image")  # ignored
    data = load_image_folder(tmp_path, "train", workers=1)
    assert data.classes == ("ant", "bee", "cat")
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    expected = np.stack([a for name in data.classes for a in pixels[f"train/{name}"]]).transpose(0, 3, 1, 2)
    assert torch.equal(data.images, torch.from_numpy(expected))


def test_parallel_decode_matches_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_folder(tmp_path, per_class=4)
    serial = load_image_folder(tmp_path, "test", workers=1)
    monkeypatch.setattr(folder, "MIN_PARALLEL_FILES", 0)
    parallel = load_image_folder(tmp_path, "test", workers=2)
    assert torch.equal(serial.images, parallel.images) and torch.equal(serial.labels, parallel.labels)


def test_cache_is_reused_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_folder(tmp_path / "data")
    cache = tmp_path / "cache"
    first = load_image_folder(tmp_path / "data", "train", cache_dir=cache, workers=1)
    assert len(list(cache.glob("data-train-*.npz"))) == 1 and not list(cache.glob("*.tmp"))

    def fail(*args: object, **kw: object) -> None:
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(folder, "decode_image", fail)
    second = load_image_folder(tmp_path / "data", "train", cache_dir=cache, workers=1)
    assert torch.equal(first.images, second.images) and first.classes == second.classes
    # Any change to the listing (here a new file) must miss the cache and decode again.
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "data" / "train" / "ant" / "new.png")
    with pytest.raises(AssertionError, match="decoded although"):
        load_image_folder(tmp_path / "data", "train", cache_dir=cache, workers=1)
    monkeypatch.setattr(folder, "decode_image", decode_image)
    third = load_image_folder(tmp_path / "data", "train", cache_dir=cache, workers=1)
    assert len(third) == 10 and third.images[3, :, 0, 0].tolist() == [1, 2, 3]  # ant/new.png sorts last in ant


def test_rewritten_file_changes_the_key(tmp_path: Path) -> None:
    make_folder(tmp_path)
    entries = folder.list_files(tmp_path / "train", ("ant", "bee", "cat"))
    key = folder.listing_key(tmp_path, "train", entries)
    target = tmp_path / "train" / "bee" / "001.png"
    os.utime(target, ns=(0, 1_000_000_000))
    changed = folder.list_files(tmp_path / "train", ("ant", "bee", "cat"))
    assert folder.listing_key(tmp_path, "train", changed) != key
    assert folder.listing_key(tmp_path, "test", entries) != key


def test_mismatched_sizes_point_to_imagenet_pipeline(tmp_path: Path) -> None:
    make_folder(tmp_path)
    Image.new("RGB", (9, 8)).save(tmp_path / "train" / "cat" / "wide.png")
    with pytest.raises(ValueError, match=r"differ in size .*wide.png is 9x8.*ImageNet pipeline"):
        load_image_folder(tmp_path, "train", workers=1)


def test_train_and_test_classes_must_agree(tmp_path: Path) -> None:
    make_folder(tmp_path)
    (tmp_path / "test" / "dog").mkdir()
    with pytest.raises(ValueError, match="different class folders"):
        load_image_folder(tmp_path, "train", workers=1)


def test_bad_image_names_the_file(tmp_path: Path) -> None:
    make_folder(tmp_path)
    (tmp_path / "test" / "bee" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        load_image_folder(tmp_path, "test", workers=1)


def test_missing_split_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="<root>/<split>/<class>/<image>"):
        load_image_folder(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        load_image_folder(tmp_path, "val")
    with pytest.raises(ValueError, match="workers"):
        load_image_folder(tmp_path, "train", workers=0)


def test_load_dataset_detects_image_folder(tmp_path: Path) -> None:
    make_folder(tmp_path / "shapes")
    test = load_dataset(tmp_path / "shapes", "test")
    assert len(test) == 9 and test.classes == ("ant", "bee", "cat")
    assert describe_dataset(str(tmp_path / "shapes")) == f"image folder {tmp_path / 'shapes'} (3 classes)"


@pytest.mark.skipif(not REAL.is_dir(), reason="the CIFAR-10 JPEG copy is not on this machine")
def test_real_cifar10_jpeg_folder() -> None:
    classes = folder.list_classes(REAL / "test")
    assert classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    images = folder.decode_files([str(REAL / "test" / c / "0000.jpg") for c in classes[:3]], workers=1)
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8
    assert describe_dataset(str(REAL)) == f"CIFAR-10 (JPEG folder {REAL})"
