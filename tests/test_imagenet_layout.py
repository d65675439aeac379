"""ImageNet layouts, odd image modes and the unreadable-file policies (data/imagenet*.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlab.data.imagenet import index_split, is_image_folder, read_labels_file, read_synset_mapping
from resnetlab.data.imagenet_loader import Collate, DecodeConfig, EpochSampler, ImageLoader, load_resized, scaled_size
from resnetlab.data.images import ImageDecodeError

WNIDS = ("n01440764", "n01443537", "n01484850")
NAMES = ("tench, Tinca tinca", "goldfish, Carassius auratus", "great white shark")


def colour_jpeg(path: Path, value: int, size: tuple[int, int] = (40, 30)) -> None:
    """A flat-colour JPEG whose red channel encodes ``value`` (survives JPEG compression)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 128, 128)).save(path, quality=95)


def red_of(image: torch.Tensor) -> int:
    return int(image[0].float().mean().round())


def make_imagenet(root: Path, *, val_layout: str = "folders") -> dict[str, int]:
    """train/<wnid>/*.JPEG and val in class folders, or flat + LOC_val_solution.csv. Returns
    {file stem: label} for val; each file's red value is 60 * label + 20."""
    (root).mkdir(parents=True, exist_ok=True)
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} {n}\n" for w, n in zip(WNIDS, NAMES)))
    for label, wnid in enumerate(WNIDS):
        for i in range(2):
            colour_jpeg(root / "train" / wnid / f"{wnid}_{i}.JPEG", 60 * label + 20)
    truth = {}
    rows = ["ImageId,PredictionString"]
    for i, label in enumerate([2, 0, 1, 2]):
        stem = f"ILSVRC2012_val_{i + 1:08d}"
        truth[stem] = label
        if val_layout == "folders":
            colour_jpeg(root / "val" / WNIDS[label] / f"{stem}.JPEG", 60 * label + 20)
        else:
            colour_jpeg(root / "val" / f"{stem}.JPEG", 60 * label + 20)
            rows.append(f"{stem},{WNIDS[label]} 1 2 30 40 {WNIDS[label]} 3 4 10 20")
    if val_layout == "flat":
        (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    return truth


def check_labels_match_pixels(index) -> None:
    """Every file's decoded colour tells its true label: the index gave each file its own label."""
    loader = ImageLoader(index, DecodeConfig(), batch_size=3)
    seen = 0
    for batch in loader:
        for image, label in zip(batch.images, batch.labels.tolist()):
            assert abs(red_of(image) - (60 * label + 20)) <= 3
            seen += 1
    assert seen == len(index)


def test_class_folders_with_mapping_file(tmp_path: Path) -> None:
    make_imagenet(tmp_path)
    train = index_split(tmp_path, "train")
    assert train.wnids == WNIDS and train.classes == NAMES
    assert len(train) == 6 and sorted(train.labels) == [0, 0, 1, 1, 2, 2]
    val = index_split(tmp_path, "val")
    assert val.wnids == WNIDS and sorted(val.labels) == [0, 1, 2, 2]
    check_labels_match_pixels(val)
    assert is_image_folder(tmp_path, "val") and not is_image_folder(tmp_path, "test")


def test_val_folders_follow_train_class_order_without_mapping(tmp_path: Path) -> None:
    make_imagenet(tmp_path)
    (tmp_path / "LOC_synset_mapping.txt").unlink()
    # val lacks the first class entirely: its labels must still be the train split's positions.
    for f in (tmp_path / "val" / WNIDS[0]).iterdir():
        f.unlink()
    (tmp_path / "val" / WNIDS[0]).rmdir()
    val = index_split(tmp_path, "val")
    assert val.wnids == WNIDS and val.classes == WNIDS
    assert sorted(val.labels) == [1, 2, 2]
    check_labels_match_pixels(val)


def test_flat_val_with_loc_solution_csv(tmp_path: Path) -> None:
    truth = make_imagenet(tmp_path, val_layout="flat")
    val = index_split(tmp_path, "val")
    assert {Path(p).stem: y for p, y in val.samples} == truth
    assert val.classes == NAMES
    check_labels_match_pixels(val)


@pytest.mark.parametrize("numeric", [False, True])
def test_flat_val_with_two_column_labels_file(tmp_path: Path, numeric: bool) -> None:
    truth = make_imagenet(tmp_path, val_layout="flat")
    (tmp_path / "LOC_val_solution.csv").unlink()
    lines = [f"{stem}.JPEG {label if numeric else WNIDS[label]}" for stem, label in truth.items()]
    labels = tmp_path / "my_labels.txt"
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="without a labels file"):
        index_split(tmp_path, "val")
    val = index_split(tmp_path, "val", labels_file=labels)
    assert {Path(p).stem: y for p, y in val.samples} == truth
    check_labels_match_pixels(val)


def test_label_problems_name_the_file(tmp_path: Path) -> None:
    truth = make_imagenet(tmp_path, val_layout="flat")
    stems = list(truth)
    csv = tmp_path / "LOC_val_solution.csv"
    text = csv.read_text()
    csv.write_text("\n".join(line for line in text.splitlines() if not line.startswith(stems[1])) + "\n")
    with pytest.raises(ValueError, match=f"{stems[1]}.JPEG: no label"):
        index_split(tmp_path, "val")
    csv.write_text(text.replace(f"{stems[0]},{WNIDS[2]}", f"{stems[0]},n99999999"))
    with pytest.raises(ValueError, match=f"{stems[0]}.JPEG: label 'n99999999'.*not a known class"):
        index_split(tmp_path, "val")
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{stems[0]}.JPEG 7\n")
    with pytest.raises(ValueError, match="class index 7 outside"):
        index_split(tmp_path, "val", labels_file=bad)


def test_mapping_and_labels_file_parsers(tmp_path: Path) -> None:
    mapping = tmp_path / "m.txt"
    mapping.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish\n")
    assert read_synset_mapping(mapping) == {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish"}
    labels = tmp_path / "l.txt"
    labels.write_text("a.JPEG n1\nb.JPEG n2\na.JPEG n3\n")
    with pytest.raises(ValueError, match="two labels"):
        read_labels_file(labels)
    labels.write_text("a.JPEG n1 extra\n")
    with pytest.raises(ValueError, match=r"l.txt:1: expected 'filename label'"):
        read_labels_file(labels)


def test_listing_key_tracks_the_file_list(tmp_path: Path) -> None:
    make_imagenet(tmp_path)
    key = index_split(tmp_path, "train").listing_key()
    assert index_split(tmp_path, "train").listing_key() == key
    colour_jpeg(tmp_path / "train" / WNIDS[0] / "extra.JPEG", 5)
    assert index_split(tmp_path, "train").listing_key() != key


def odd_images(folder: Path) -> dict[str, tuple[int, int, int]]:
    """One file per awkward mode, with the RGB colour it must decode to."""
    folder.mkdir(parents=True)
    expected = {}
    Image.new("L", (20, 16), 100).save(folder / "grey.png")
    expected["grey"] = (100, 100, 100)
    Image.new("1", (20, 16), 1).save(folder / "bilevel.png")
    expected["bilevel"] = (255, 255, 255)
    Image.new("CMYK", (20, 16), (0, 0, 0, 0)).save(folder / "cmyk.jpg", quality=95)
    expected["cmyk"] = (255, 255, 255)
    palette = Image.new("P", (20, 16), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.save(folder / "palette.png")
    expected["palette"] = (10, 200, 30)
    Image.new("RGBA", (20, 16), (255, 0, 0, 0)).save(folder / "alpha.png")
    expected["alpha"] = (255, 255, 255)
    Image.new("LA", (20, 16), (50, 255)).save(folder / "grey_alpha.png")
    expected["grey_alpha"] = (50, 50, 50)
    sixteen = Image.fromarray(np.full((16, 20), 65535 // 2, dtype=np.uint16))
    sixteen.save(folder / "sixteen.png")
    expected["sixteen"] = (128, 128, 128)
    return expected


def test_every_image_mode_decodes_to_rgb(tmp_path: Path) -> None:
    expected = odd_images(tmp_path / "train" / "odd")
    index = index_split(tmp_path, "train")
    seen = {}
    for batch in ImageLoader(index, DecodeConfig(), batch_size=4):
        for image, path in zip(batch.images, [p for p, _ in index.samples][len(seen) :]):
            assert image.dtype == torch.uint8 and image.shape == (3, 16, 20)
            seen[Path(path).stem] = tuple(int(v) for v in image.float().mean((1, 2)).round())
    assert seen.keys() == expected.keys()
    for name, colour in expected.items():
        assert max(abs(a - b) for a, b in zip(seen[name], colour)) <= 2, (name, seen[name], colour)


def broken_folder(root: Path) -> tuple[Path, Path]:
    for label in range(2):
        for i in range(3):
            colour_jpeg(root / "train" / f"c{label}" / f"{i}.jpg", 60 * label + 20)
    good = (root / "train" / "c0" / "0.jpg").read_bytes()
    truncated = root / "train" / "c1" / "1_truncated.jpg"
    truncated.write_bytes(good[: len(good) // 2])
    garbage = root / "train" / "c0" / "9_garbage.jpg"
    garbage.write_bytes(b"this is not a jpeg")
    return truncated, garbage


def test_fail_policy_names_the_file(tmp_path: Path) -> None:
    _truncated, garbage = broken_folder(tmp_path)
    index = index_split(tmp_path, "train")
    with pytest.raises(ImageDecodeError, match=str(garbage)):
        list(ImageLoader(index, DecodeConfig(on_error="fail"), batch_size=16))


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_policy_counts_and_keeps_labels_right(tmp_path: Path, workers: int) -> None:
    truncated, garbage = broken_folder(tmp_path)
    index = index_split(tmp_path, "train")
    loader = ImageLoader(index, DecodeConfig(on_error="skip"), batch_size=3, workers=workers)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(loader)
    assert sorted(p for p, _ in loader.skipped) == sorted([str(truncated), str(garbage)])
    assert sum(len(b) for b in batches) == len(index) - 2
    assert sum("skipped unreadable image" in str(w.message) for w in caught) == 2
    for batch in batches:
        for image, label in zip(batch.images, batch.labels.tolist()):
            assert abs(red_of(image) - (60 * label + 20)) <= 3


def test_worker_resize_draft_and_canvas(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1000, 1600, 3), dtype=np.uint8)).save(big)
    image = load_resized(str(big), DecodeConfig(256, upscale=True))
    assert (image.height, image.width) == scaled_size(1000, 1600, 256) == (256, 410)
    # Aspect beyond max_aspect: the longer side is centre-cropped to 1.5 x shorter.
    image = load_resized(str(big), DecodeConfig(300, max_aspect=1.5))
    assert (image.height, image.width) == (300, 450)
    small = tmp_path / "small.jpg"
    Image.new("RGB", (100, 80)).save(small)
    assert load_resized(str(small), DecodeConfig(300)).size == (100, 80)  # never enlarged for training
    assert load_resized(str(small), DecodeConfig(160, upscale=True)).size == (200, 160)


def test_pad_collate_stores_portraits_transposed(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pixels = {
        "wide": rng.integers(0, 255, (30, 40, 3), dtype=np.uint8),
        "tall": rng.integers(0, 255, (40, 30, 3), dtype=np.uint8),
    }
    for name, array in pixels.items():
        (tmp_path / "train" / name).mkdir(parents=True)
        Image.fromarray(array).save(tmp_path / "train" / name / "x.png")
    index = index_split(tmp_path, "train")
    batch = next(iter(ImageLoader(index, DecodeConfig(32, max_aspect=1.5, collate="pad"), batch_size=2)))
    assert batch.images.shape == (2, 3, 30, 40) and batch.images.dtype == torch.uint8  # trimmed canvas
    assert batch.sizes.tolist() == [[40, 30], [30, 40]] and batch.transposed.tolist() == [True, False]
    tall = torch.from_numpy(pixels["tall"]).permute(2, 0, 1)
    wide = torch.from_numpy(pixels["wide"]).permute(2, 0, 1)
    assert torch.equal(batch.images[0, :, :30, :40].transpose(1, 2), tall)
    assert torch.equal(batch.images[1, :, :30, :40], wide)
    with pytest.raises(ValueError, match="does not fit the 32x48 canvas"):
        Collate(DecodeConfig(32, max_aspect=1.5, collate="pad"))([(torch.zeros(3, 33, 40, dtype=torch.uint8), 0, None)])


def test_sampler_shards_cover_everything_once_and_shuffle_is_seeded() -> None:
    shards = [list(EpochSampler(11, shuffle=True, seed=3, rank=r, world=3)) for r in range(3)]
    assert sorted(i for shard in shards for i in shard) == list(range(11))
    a, b = EpochSampler(11, shuffle=True, seed=3), EpochSampler(11, shuffle=True, seed=3)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b) and sorted(b) == list(range(11))
    with pytest.raises(ValueError, match="rank"):
        EpochSampler(5, shuffle=False, rank=2, world=2)


def test_decode_config_validation() -> None:
    with pytest.raises(ValueError, match="on_error"):
        DecodeConfig(on_error="ignore")
    with pytest.raises(ValueError, match="collate='pad' needs"):
        DecodeConfig(collate="pad")
    with pytest.raises(ValueError, match="max_aspect"):
        DecodeConfig(64, max_aspect=0.5)
