"""Copies of a JPEG folder with information removed: re-encoded at a lower quality, or with
coarser colour (the campaign's JPEG-penalty and colour-resolution runs)."""

import json

import numpy as np
import pytest
from PIL import Image

from resnetlab.data.reencode import MARKER, reencode_folder, subsample_chroma, subsample_chroma_folder


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / "src" / split / cls).mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "src" / split / cls / f"{i:04d}.jpg", quality=75)
    return tmp_path / "src"


def test_reencoded_copy_mirrors_the_tree_at_the_lower_quality(folder, tmp_path):
    dst = reencode_folder(folder, tmp_path / "q30", 30)
    sources = sorted(p.relative_to(folder) for p in folder.rglob("*.jpg"))
    assert sorted(p.relative_to(dst) for p in dst.rglob("*.jpg")) == sources
    for rel in sources:
        before, after = Image.open(folder / rel), Image.open(dst / rel)
        assert after.size == before.size and after.mode == "RGB"
        assert (dst / rel).stat().st_size < (folder / rel).stat().st_size  # less information kept
    assert json.loads((dst / MARKER).read_text())["quality"] == 30
    again = reencode_folder(folder, tmp_path / "q30-again", 30)
    assert all((dst / rel).read_bytes() == (again / rel).read_bytes() for rel in sources)  # deterministic


def test_a_complete_copy_is_reused_and_another_is_refused(folder, tmp_path):
    dst = reencode_folder(folder, tmp_path / "q30", 30)
    stamp = {p: p.stat().st_mtime_ns for p in dst.rglob("*.jpg")}
    assert reencode_folder(folder, dst, 30) == dst
    assert stamp == {p: p.stat().st_mtime_ns for p in dst.rglob("*.jpg")}
    with pytest.raises(ValueError, match="holds another re-encoding"):
        reencode_folder(folder, dst, 50)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("user data")
    with pytest.raises(ValueError, match="is not a re-encoded copy"):
        reencode_folder(folder, tmp_path / "mine", 30)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "user data"
    with pytest.raises(ValueError, match="quality must be an integer in 1..95"):
        reencode_folder(folder, tmp_path / "x", 100)


# JFIF's RGB -> YCbCr (written out here, not taken from the module under test).
TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _ycc(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) @ TO_YCC.T


def test_coarser_colour_keeps_the_brightness_and_averages_the_colour_over_blocks():
    # Grey level 128 everywhere; the colour alternates every 2 columns between two hues of equal
    # brightness: detail that 4:2:0 keeps (one sample per 2x2) and a 4x4 average removes.
    ycc = np.zeros((32, 32, 3))
    ycc[..., 0] = 128
    ycc[..., 1] = np.where((np.arange(32) // 2) % 2 == 0, 40.0, -40.0)[None, :]
    image = Image.fromarray(np.clip(np.rint(ycc @ np.linalg.inv(TO_YCC).T), 0, 255).astype(np.uint8))
    before, after = _ycc(image), _ycc(subsample_chroma(image, 4))
    assert np.abs(after[..., 0] - before[..., 0]).max() < 1.0  # brightness kept (pixel rounding only)
    assert np.abs(before[..., 1]).min() > 39 and np.abs(after[..., 1]).max() < 1.0  # the stripes average out
    # Colour that is uniform over each 4x4 block's neighbourhood is left alone, and factor 1 would be a no-op.
    flat = Image.fromarray(np.full((32, 32, 3), (200, 60, 30), dtype=np.uint8))
    assert np.array_equal(np.asarray(subsample_chroma(flat, 4)), np.asarray(flat))
    assert np.array_equal(np.asarray(subsample_chroma(image, 1)), np.asarray(image))


def test_colour_copy_mirrors_the_tree_records_what_it_did_and_refuses_other_factors(folder, tmp_path):
    dst = subsample_chroma_folder(folder, tmp_path / "chroma4", 4)
    sources = sorted(p.relative_to(folder) for p in folder.rglob("*.jpg"))
    assert sorted(p.relative_to(dst) for p in dst.rglob("*.jpg")) == sources
    marker = json.loads((dst / MARKER).read_text())
    assert marker["chroma_factor"] == 4 and marker["images"] == len(sources)
    for rel in sources:
        with Image.open(folder / rel) as a, Image.open(dst / rel) as b:
            assert b.size == a.size
            y_a, y_b = _ycc(a.convert("RGB"))[..., 0], _ycc(b.convert("RGB"))[..., 0]
            assert np.sqrt(((y_a - y_b) ** 2).mean()) < 1.5  # brightness through JPEG at quality 100
    again = subsample_chroma_folder(folder, tmp_path / "chroma4-again", 4)
    assert all((dst / rel).read_bytes() == (again / rel).read_bytes() for rel in sources)  # deterministic
    assert subsample_chroma_folder(folder, dst, 4) == dst  # reused
    with pytest.raises(ValueError, match="holds another re-encoding"):
        subsample_chroma_folder(folder, dst, 8)
    for bad in (2, True, 4.0):
        with pytest.raises(ValueError, match="chroma factor must be one of 4, 8, 16, 32"):
            subsample_chroma_folder(folder, tmp_path / "x", bad)
