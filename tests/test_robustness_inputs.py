"""The standing robustness suite for bad input, part 1: data folders and images, and checkpoints. Every case gets its exit code, exactly one clear stderr line without a traceback, and
leaves every file that existed before it unchanged (``robustness.fails_cleanly``). Part 2
(``test_robustness_outputs.py``): outputs never lose a file; part 3 (``test_robustness_errors.py``):
recipes, values, devices, usage, missing extras and bugs.

Exit codes: 1 for bad input a user can fix, 2 for usage errors (argparse). All inputs are synthetic
and tiny; the commands run in-process through ``resnetlab.cli.main``.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile

import numpy as np
import torch
from PIL import Image
from robustness import (  # noqa: F401 (the fixtures are used by name)
    CLASSES,
    _restore_signal_handlers,
    cifar_archive,
    cifar_folder,
    ckpt,
    fails_cleanly,
    image_folder,
    snapshot,
    unchanged,
)

from resnetlab.checkpoints.checkpoint import save_checkpoint
from resnetlab.cli import main
from resnetlab.engine.config import load_recipe
from resnetlab.models import build_model

# --------------------------------------------------------------------------- data folders and images


def test_missing_empty_and_mislaid_data_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    mislaid = tmp_path / "mislaid"  # images at the top, no train/ and test/
    mislaid.mkdir()
    Image.new("RGB", (32, 32)).save(mislaid / "a.jpg")
    common = ["--iterations", "1", "--cache-dir", str(tmp_path / "cache")]
    fails_cleanly(
        capsys,
        ["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r1"), *common],
        "does not exist",
        tmp_path,
    )
    fails_cleanly(
        capsys,
        ["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r2"), *common],
        "no dataset recognised",
        tmp_path,
    )
    fails_cleanly(
        capsys,
        ["train", "--data", str(mislaid), "--out", str(tmp_path / "r3"), *common],
        "no dataset recognised",
        tmp_path,
    )


def test_eval_names_a_zero_byte_and_a_truncated_jpeg(tmp_path, capsys, ckpt):
    data = image_folder(tmp_path / "data")
    (data / "test" / "cat" / "empty.jpg").write_bytes(b"")
    fails_cleanly(capsys, ["eval", str(ckpt), "--data", str(data)], "empty.jpg", tmp_path)
    (data / "test" / "cat" / "empty.jpg").unlink()
    good = (data / "test" / "dog" / "0.jpg").read_bytes()
    (data / "test" / "dog" / "cut.jpg").write_bytes(good[: len(good) // 2])
    fails_cleanly(capsys, ["eval", str(ckpt), "--data", str(data)], "cut.jpg", tmp_path)


def test_predict_reads_cmyk_16bit_and_grayscale_and_reports_broken_files(tmp_path, capsys, ckpt):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).convert("CMYK").save(images / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 65536, (32, 32), dtype=np.uint16)).save(images / "deep.png")  # 16-bit grey
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8), "L").save(images / "grey.png")
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(["predict", str(ckpt), str(images), "--json", "--topk", "1"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert len(rows) == 3 and all(row["error"] is None and row["top"] for row in rows) and captured.err == ""
    assert unchanged(before, tmp_path)
    # Zero-byte and truncated JPEGs: each named on stdout, one summary line on stderr, exit 1.
    (images / "zero.jpg").write_bytes(b"")
    full = (images / "cmyk.jpg").read_bytes()
    (images / "half.jpg").write_bytes(full[: len(full) // 3])
    line = fails_cleanly(
        capsys,
        ["predict", str(ckpt), str(images / "zero.jpg"), str(images / "half.jpg")],
        "2 of 2 file(s) could not be classified",
        tmp_path,
    )
    assert line.startswith("resnetlab predict: ")
    (tmp_path / "no-images").mkdir()
    fails_cleanly(capsys, ["predict", str(ckpt), str(tmp_path / "no-images")], "no image files found", tmp_path)


def test_truncated_and_corrupted_cifar_batches(tmp_path, capsys, ckpt):
    root = cifar_folder(tmp_path / "cifar")
    batch = root / "cifar-10-batches-py" / "test_batch"
    payload = batch.read_bytes()
    batch.write_bytes(payload[: len(payload) // 2])
    fails_cleanly(capsys, ["eval", str(ckpt), "--data", str(root)], "test_batch", tmp_path)
    batch.write_bytes(b"garbage" * 100)
    fails_cleanly(capsys, ["eval", str(ckpt), "--data", str(root)], "not a valid CIFAR pickle", tmp_path)


def test_truncated_or_mismatched_cifar_archive_is_refused_and_kept(tmp_path, capsys):
    """Data loss before the fix: an archive with another md5 was deleted before the fetch."""
    root = tmp_path / "data"
    root.mkdir()
    archive = cifar_archive(tmp_path / "good.tar.gz").read_bytes()
    mine = root / "cifar-10-python.tar.gz"
    mine.write_bytes(archive[: len(archive) // 2])  # the user's own (here: truncated) copy
    offline = ["--url", "http://127.0.0.1:9/none", "--timeout", "1", "--quiet"]
    fails_cleanly(capsys, ["download", "cifar10", "--root", str(root), *offline], "move it away", tmp_path)
    assert mine.exists()
    # The same truncated file named by its own md5: extraction fails cleanly, the file stays.
    md5 = hashlib.md5(mine.read_bytes()).hexdigest()
    fails_cleanly(
        capsys,
        ["download", "cifar10", "--root", str(root), "--md5", md5, *offline],
        "corrupt or truncated archive",
        tmp_path,
    )
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]


def test_download_root_that_is_a_file(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    for root in ("notes.txt", "notes.txt/sub"):
        fails_cleanly(
            capsys,
            ["download", "cifar10", "--root", str(tmp_path / root), "--quiet"],
            "is a file, not a folder",
            tmp_path,
        )


# --------------------------------------------------------------------------- checkpoints


def test_files_that_are_not_checkpoints(tmp_path, capsys, ckpt):
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    (tmp_path / "text.pt").write_text("hello, not a checkpoint\n")
    (tmp_path / "number.pt").write_text("3\n")  # torch.load's answer was a bare KeyError number
    (tmp_path / "empty.pt").write_bytes(b"")
    cases = [
        ("text.pt", "not a PyTorch checkpoint"),
        ("number.pt", "not a PyTorch checkpoint"),
        ("empty.pt", "empty (0 bytes)"),
    ]
    for name, fragment in cases:
        fails_cleanly(capsys, ["predict", str(tmp_path / name), str(image)], fragment, tmp_path)
        fails_cleanly(capsys, ["eval", str(tmp_path / name), "--data", "synthetic:16"], fragment, tmp_path)
    fails_cleanly(capsys, ["detect", "eval", str(tmp_path / "number.pt")], "not a PyTorch checkpoint", tmp_path)
    run = tmp_path / "run"  # a run whose last checkpoint was replaced by text
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_text("3\n")
    fails_cleanly(
        capsys,
        ["train", "--out", str(run), "--resume", "--data", "synthetic:64", "--iterations", "1"],
        "not a PyTorch checkpoint",
        tmp_path,
    )


def test_truncated_and_corrupted_checkpoints(tmp_path, capsys, ckpt):
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    payload = ckpt.read_bytes()
    (tmp_path / "cut.pt").write_bytes(payload[: len(payload) // 2])
    fails_cleanly(capsys, ["predict", str(tmp_path / "cut.pt"), str(image)], "truncated or damaged", tmp_path)
    # Flipped bytes inside a tensor: torch.load would return wrong weights without a word.
    with zipfile.ZipFile(ckpt) as archive:
        entry = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size > 64)
    flipped = bytearray(payload)
    # The data starts after the local header, whose name and (alignment) extra field lengths
    # sit at bytes 26..29 of it.
    name_length, extra_length = struct.unpack("<HH", payload[entry.header_offset + 26 : entry.header_offset + 30])
    start = entry.header_offset + 30 + name_length + extra_length
    for i in range(start, start + 16):
        flipped[i] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(flipped))
    fails_cleanly(capsys, ["predict", str(tmp_path / "flipped.pt"), str(image)], "CRC", tmp_path)
    fails_cleanly(capsys, ["eval", str(tmp_path / "flipped.pt"), "--data", "synthetic:16"], "CRC", tmp_path)


def test_foreign_checkpoints(tmp_path, capsys, ckpt):
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    model = build_model("cifar_resnet", depth=8)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    torch.save(model, tmp_path / "pickled.pt")  # a whole pickled module: refused by weights_only
    fails_cleanly(capsys, ["predict", str(tmp_path / "bare.pt"), str(image)], "weights import", tmp_path)
    line = fails_cleanly(capsys, ["predict", str(tmp_path / "pickled.pt"), str(image)], "pickled", tmp_path)
    assert "weights_only" in line
    fails_cleanly(
        capsys,
        ["export", str(tmp_path / "missing.pt"), "--format", "torchscript", "--out", str(tmp_path / "m.ts")],
        "no checkpoint at",
        tmp_path,
    )


def test_checkpoint_of_another_architecture(tmp_path, capsys, ckpt):
    # CIFAR weights into an ImageNet ResNet-18.
    fails_cleanly(
        capsys,
        ["weights", "import", str(ckpt), "--model", "resnet18", "--out", str(tmp_path / "w.pt")],
        "resnet18",
        tmp_path,
    )
    assert not (tmp_path / "w.pt").exists()
    # A run of ResNet-32 resumed with the ResNet-20 recipe.
    run = tmp_path / "run"
    other = load_recipe("cifar10-resnet32")
    save_checkpoint(run / "checkpoints" / "last.pt", {"config": other.to_dict(), "iteration": 1})
    (run / "config.json").write_text(json.dumps(other.to_dict()))
    fails_cleanly(
        capsys,
        [
            "train",
            "--recipe",
            "cifar10-resnet20",
            "--out",
            str(run),
            "--resume",
            "--data",
            "synthetic:64",
            "--device",
            "cpu",
        ],
        "cannot resume",
        tmp_path,
    )
