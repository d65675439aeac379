"""Re-encoding a JPEG folder at a lower quality (the campaign's JPEG-penalty runs)."""

import json

import numpy as np
import pytest
from PIL import Image

from resnetlab.data.reencode import MARKER, reencode_folder


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
