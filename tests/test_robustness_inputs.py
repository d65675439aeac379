"""The standing robustness suite for bad input: every case gets its exit code, exactly one clear
stderr line without a traceback, and leaves every file that existed before it unchanged.

Exit codes: 1 for bad input a user can fix, 2 for usage errors (argparse). The data-loss cases
(``demo``/``export``/``weights``/``download``/``detect``/``plot`` onto existing files or folders)
would each have deleted or overwritten a user's file before the fix. All inputs are synthetic and
tiny; the commands run in-process through ``resnetlab.cli.main``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlab.checkpoints.checkpoint import model_payload, save_checkpoint
from resnetlab.cli import main
from resnetlab.data.cifar_archive import write_cifar_archive
from resnetlab.data.preprocess import Preprocess
from resnetlab.engine.config import load_recipe
from resnetlab.models import build_model

CLASSES = [f"c{i}" for i in range(10)]


# --------------------------------------------------------------------------- helpers


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (the "before" picture of a case)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def unchanged(before: dict[str, str], root: Path) -> bool:
    after = snapshot(root)
    return all(after.get(name) == digest for name, digest in before.items())


def fails_cleanly(capsys, argv: list[str], fragment: str, root: Path, code: int = 1) -> str:
    """Run ``argv``; assert its exit code, one stderr line naming ``fragment``, no traceback,
    and that no file under ``root`` that existed before was changed or removed."""
    before = snapshot(root)
    capsys.readouterr()
    if code == 2:  # argparse usage errors leave through SystemExit
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    else:
        assert main(argv) == code, capsys.readouterr().err
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    if code == 2:  # argparse puts its usage synopsis above the one error line
        lines = [line for line in lines if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0], err
    assert unchanged(before, root), f"{argv} changed a pre-existing file"
    return lines[0]


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    """train/demo install SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """An untrained depth-8 CIFAR ResNet checkpoint (loading, not accuracy, is under test)."""
    torch.manual_seed(0)
    model = build_model("cifar_resnet", depth=8)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    return save_checkpoint(path, model_payload(model, "cifar_resnet", {"depth": 8}, CLASSES, Preprocess()))


def image_folder(root: Path, per_class: int = 2) -> Path:
    """A CIFAR-style JPEG folder: train/ and test/, three classes, 32x32 images."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("cat", "dog", "frog"):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return root


def cifar_archive(path: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (60, 3, 32, 32), generator=g, dtype=torch.uint8)
    return write_cifar_archive(path, images, torch.arange(60) % 10)


def cifar_folder(root: Path) -> Path:
    with tarfile.open(cifar_archive(root / "src.tar.gz"), "r:gz") as tar:
        tar.extractall(root, filter="data")
    (root / "src.tar.gz").unlink()
    return root


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


# --------------------------------------------------------------------------- recipes, keys and values


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--recipe", "nope"], "unknown recipe"),
        (["train", "--set", "lrr=1"], "unknown key"),
        (["train", "--set", "warmup_lr=true"], "warmup_lr"),  # bool is an int: was accepted as 1.0
        (["train", "--set", "batch_size=abc"], "batch_size"),
        (["train", "--set", "lr=-1"], "lr"),
        (["train", "--set", "milestones=[300,200]"], "milestones"),
        (["train", "--set", 'device="tpu"'], "device"),
        (["summary", "resnet20", "--input-size", "-1"], "--input-size"),  # was a traceback
        (["summary", "resnet20", "--input-size", "0"], "--input-size"),  # was 32x32 without a word
        (["summary", "vgg16", "--input-size", "16"], "between 32 and"),
        (["summary", "resnet21"], "unknown model"),
        (["summary", "resnet20", "-o", "depth=abc"], "depth"),
        (["summary", "resnet50", "-o", "colour=red"], "unknown option"),
        (["detect", "train", "--recipe", "nope"], "nope"),
        (["eval", "missing.pt", "--batch-size", "0"], "--batch-size"),
        (["reproduce", "table6", "--budget", "0", "--out", "res"], "budget"),
        (["reproduce", "table6", "--seeds", "0", "--out", "res"], "seeds"),
        (["download", "cifar10", "--timeout", "0", "--root", "d"], "timeout"),
        (["plot", "no-such-run", "--out", "c.png"], "no-such-run"),
    ],
)
def test_bad_values_are_one_line(tmp_path, capsys, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)  # default output folders (runs/...) land here if a case ever trains
    if argv[0] == "train":  # and such a run is short (warmup_lr=true trained before the fix)
        argv = [*argv, "--iterations", "1", "--data", "synthetic:64", "--cache-dir", str(tmp_path / "cache")]
    fails_cleanly(capsys, argv, fragment, tmp_path)


def test_invalid_recipe_and_class_files(tmp_path, capsys, ckpt):
    (tmp_path / "bad.toml").write_text("lr = [unclosed\n")
    fails_cleanly(capsys, ["train", "--recipe", str(tmp_path / "bad.toml")], "not valid TOML", tmp_path)
    (tmp_path / "binary.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    fails_cleanly(capsys, ["train", "--recipe", str(tmp_path / "binary.toml")], "binary.toml", tmp_path)
    fails_cleanly(
        capsys,
        [
            "weights",
            "import",
            str(ckpt),
            "--model",
            "resnet18",
            "--classes",
            str(tmp_path / "binary.toml"),
            "--out",
            str(tmp_path / "w.pt"),
        ],
        "binary.toml",
        tmp_path,
    )


def test_devices_this_machine_lacks(tmp_path, capsys, ckpt):
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    fails_cleanly(capsys, ["predict", str(ckpt), str(image), "--device", "gpu0"], "not a torch device", tmp_path)
    # cuda:99 is absent on any machine: "no CUDA device" here, "has N CUDA device(s)" on a GPU host.
    fails_cleanly(capsys, ["predict", str(ckpt), str(image), "--device", "cuda:99"], "--device cuda:99", tmp_path)
    fails_cleanly(
        capsys, ["eval", str(ckpt), "--data", "synthetic:16", "--device", "cuda:99"], "--device cuda:99", tmp_path
    )
    fails_cleanly(  # before anything is exported: no file, not even a temporary one
        capsys,
        ["export", str(ckpt), "--format", "torchscript", "--out", str(tmp_path / "m.ts"), "--device", "cuda:99"],
        "--device cuda:99",
        tmp_path,
    )
    assert not (tmp_path / "m.ts").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["summary", "resnet20", "--input-size", "big"],
        ["train", "--device", "tpu"],
        ["reproduce", "readme", "results"],  # the README to rewrite must be named: no ./README.md default
        ["export", "model.pt", "--out", "m.onnx"],  # --format is required
        ["demo", "--iterations", "0"],
        ["demo", "--iterations", "ten"],
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, argv):
    fails_cleanly(capsys, argv, "error:", tmp_path, code=2)


# --------------------------------------------------------------------------- outputs: never lose a file


def test_demo_refuses_a_folder_that_is_not_its_own_run(tmp_path, capsys):
    """Data loss before the fix: ``demo --out DIR`` deleted DIR with everything in it."""
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work\n")
    fails_cleanly(capsys, ["demo", "--out", str(mine)], "not a previous demo run", tmp_path)
    (tmp_path / "file").write_text("x")
    fails_cleanly(capsys, ["demo", "--out", str(tmp_path / "file")], "is a file", tmp_path)
    # A run directory of another recipe is not a demo run either.
    other = tmp_path / "run"
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.json").write_text(json.dumps(load_recipe("cifar10-resnet20").to_dict()))
    fails_cleanly(capsys, ["demo", "--out", str(other)], "not a previous demo run", tmp_path)


def test_demo_replaces_only_its_own_previous_run(tmp_path):
    from resnetlab.cli.train import prepare_demo_out

    run = tmp_path / "demo"
    (run / "checkpoints").mkdir(parents=True)
    (run / "tb").mkdir()
    (run / "config.json").write_text(json.dumps(load_recipe("demo").to_dict(), default=str))
    for name in (
        "meta.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "checkpoints/.last.pt.123.tmp",
        "tb/events.out.tfevents.1.host.1.0",
    ):
        (run / name).write_text("{}")
    prepare_demo_out(run)
    assert not run.exists()
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(load_recipe("demo").to_dict(), default=str))
    (run / "checkpoints" / "notes.txt").write_text("mine")  # one foreign file: refuse it all
    with pytest.raises(Exception, match="not a previous demo run"):
        prepare_demo_out(run)
    assert (run / "checkpoints" / "notes.txt").read_text() == "mine"


def test_demo_replaces_its_own_shortened_run_too(tmp_path):
    """A run of ``demo --iterations N`` is a demo run (its schedule is the demo's, scaled to N)."""
    from resnetlab.cli.train import demo_config, prepare_demo_out

    short = demo_config(20)
    assert (short.iterations, short.milestones, short.eval_every) == (20, (10, 15), 7)
    assert demo_config() == load_recipe("demo") and demo_config(load_recipe("demo").iterations) == demo_config()
    with pytest.raises(ValueError, match="--iterations must be a positive integer"):
        demo_config(0)
    run = tmp_path / "demo"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(short.to_dict(), default=str))
    prepare_demo_out(run)
    assert not run.exists()
    run.mkdir()  # 20 iterations with the full run's milestones: not a schedule the demo makes
    (run / "config.json").write_text(json.dumps(load_recipe("demo").replace(iterations=20).to_dict(), default=str))
    with pytest.raises(Exception, match="not a previous demo run"):
        prepare_demo_out(run)


def test_demo_recognises_what_train_really_writes(tmp_path):
    """The demo's allow-list against a real (tiny) run directory, so the two cannot drift apart."""
    from resnetlab.cli.train import prepare_demo_out
    from resnetlab.data import load_dataset
    from resnetlab.engine.config import TrainConfig
    from resnetlab.engine.train import train

    data = load_dataset("synthetic:128", "train"), load_dataset("synthetic", "test").subset(torch.arange(64))
    config = TrainConfig(
        model="cifar_resnet",
        model_options={"depth": 8},
        iterations=2,
        batch_size=16,
        milestones=(1,),
        val_size=16,
        log_every=1,
        eval_every=2,
        checkpoint_every=1,
    )
    run = tmp_path / "demo"
    train(config, run, data=data, log=lambda line: None)
    with pytest.raises(Exception, match="not a previous demo run"):  # a run, but not of the demo recipe
        prepare_demo_out(run)
    (run / "config.json").write_text(json.dumps(load_recipe("demo").to_dict(), default=str))
    prepare_demo_out(run)
    assert not run.exists()


def test_train_refuses_foreign_files_and_unfinished_runs_without_resume(tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text('{"editor": "vim"}')
    (project / "metrics.jsonl").write_text('{"my": 1}\n')
    # --iterations 1: before the fix these trained (and overwrote config.json, deleted metrics.jsonl).
    quick = ["--data", "synthetic:64", "--iterations", "1", "--cache-dir", str(tmp_path / "cache")]
    fails_cleanly(capsys, ["train", "--out", str(project), *quick], "not from a resnetlab run", tmp_path)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "last.pt", {"iteration": 5})
    (run / "config.json").write_text(json.dumps(load_recipe("cifar10-resnet20").to_dict()))
    fails_cleanly(capsys, ["train", "--out", str(run), *quick], "pass --resume", tmp_path)


def test_export_never_overwrites_without_the_flag(tmp_path, capsys, ckpt):
    """Data loss before the fix: an existing --out file was overwritten without a word."""
    target = tmp_path / "model.ts"
    target.write_bytes(b"the user's own file")
    fails_cleanly(
        capsys, ["export", str(ckpt), "--format", "torchscript", "--out", str(target)], "--overwrite", tmp_path
    )
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    fails_cleanly(capsys, ["export", str(ckpt), "--format", "onnx", "--out", str(folder)], "is a folder", tmp_path)
    capsys.readouterr()
    assert main(["export", str(ckpt), "--format", "torchscript", "--out", str(target), "--overwrite"]) == 0
    assert target.read_bytes() != b"the user's own file" and torch.jit.load(str(target)) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.onnx", "model.ts"]  # no temporary left


def test_failed_verification_keeps_the_existing_file(tmp_path, capsys, ckpt, monkeypatch):
    """Data loss before the fix: a failed check deleted --out, which may be the user's file."""
    import resnetlab.inference.verification as verification

    real_trace = verification.export_torchscript

    def export_wrong(loaded, path, **kw):  # the same net with one bias perturbed
        with torch.no_grad():
            loaded.model.fc.bias[0] += 5.0
        try:
            return real_trace(loaded, path, **kw)
        finally:
            with torch.no_grad():
                loaded.model.fc.bias[0] -= 5.0

    monkeypatch.setattr(verification, "export_torchscript", export_wrong)
    target = tmp_path / "model.ts"
    target.write_bytes(b"the user's own file")
    line = fails_cleanly(
        capsys,
        ["export", str(ckpt), "--format", "torchscript", "--out", str(target), "--overwrite"],
        "disagrees",
        tmp_path,
    )
    assert "FAILED" in line and target.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ts"]


def test_weights_export_and_import_never_overwrite_without_the_flag(tmp_path, capsys, ckpt):
    """Data loss before the fix: ``weights export --out`` overwrote an existing file."""
    target = tmp_path / "weights.pt"
    target.write_bytes(b"the user's own weights")
    fails_cleanly(capsys, ["weights", "export", str(ckpt), "--out", str(target)], "--overwrite", tmp_path)
    assert main(["weights", "export", str(ckpt), "--out", str(target), "--overwrite"]) == 0
    assert set(torch.load(target, weights_only=True)) == set(build_model("cifar_resnet", depth=8).state_dict())
    imagenet = tmp_path / "r18.pt"
    torch.save(build_model("resnet18").state_dict(), imagenet)
    mine = tmp_path / "converted.pt"
    mine.write_bytes(b"keep me")
    fails_cleanly(
        capsys, ["weights", "import", str(imagenet), "--model", "resnet18", "--out", str(mine)], "--overwrite", tmp_path
    )
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name]


def test_detect_predict_never_overwrites_inputs_or_outputs(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (48, 48), (200, 30, 30)).save(photos / "cat.png")
    fails_cleanly(
        capsys,
        ["detect", "predict", str(tmp_path / "no-run"), str(photos / "cat.png"), "--out", str(photos)],
        "is an input image",
        tmp_path,
    )
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "cat.json").write_text("mine")
    fails_cleanly(
        capsys,
        ["detect", "predict", str(tmp_path / "no-run"), str(photos / "cat.png"), "--out", str(tmp_path / "out")],
        "--overwrite",
        tmp_path,
    )
    other = tmp_path / "other"
    other.mkdir()
    Image.new("RGB", (48, 48)).save(other / "cat.png")
    fails_cleanly(
        capsys,
        [
            "detect",
            "predict",
            str(tmp_path / "no-run"),
            str(photos / "cat.png"),
            str(other / "cat.png"),
            "--out",
            str(tmp_path / "new"),
        ],
        "both write",
        tmp_path,
    )


def test_detect_train_refuses_a_folder_that_is_not_its_run(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.jsonl").write_text("my numbers\n")  # train_detector appends to this file
    fails_cleanly(capsys, ["detect", "train", "--out", str(mine), "--iterations", "1"], "not a detection run", tmp_path)


def test_detect_train_replaces_its_own_run_only_when_asked(tmp_path):
    from resnetlab.cli.detect import prepare_train_out
    from resnetlab.detection.config import load_recipe as detection_recipe

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(detection_recipe("synthetic-resnet18").to_dict()))
    (run / "metrics.jsonl").write_text("{}\n")
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    with pytest.raises(Exception, match="--overwrite"):
        prepare_train_out(run, overwrite=False)
    assert (run / "metrics.jsonl").exists()
    prepare_train_out(run, overwrite=True)
    assert not run.exists()


def _make_read_only(folder: Path):
    """Make ``folder`` unwritable even for root where possible (chattr +i on ext4 etc., else the
    mode bits); returns the undo function, or None where neither takes effect."""
    import shutil
    import subprocess

    attempts = []
    if shutil.which("chattr"):
        attempts.append((["chattr", "+i", str(folder)], ["chattr", "-i", str(folder)]))
    for make, undo in attempts:
        if subprocess.run(make, capture_output=True).returncode == 0:
            return lambda: subprocess.run(undo, capture_output=True)
    folder.chmod(0o555)
    return lambda: folder.chmod(0o755)


def test_read_only_output_folder(tmp_path, capsys, ckpt):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "keep.txt").write_text("x")
    undo = _make_read_only(locked)
    try:
        try:
            (locked / ".probe").write_text("")  # root ignores mode bits; chattr may be unavailable
        except PermissionError:
            pass
        else:
            (locked / ".probe").unlink()
            pytest.skip("cannot make a folder read-only for this user (root without chattr +i)")
        for argv in (
            ["export", str(ckpt), "--format", "torchscript", "--out", str(locked / "m.ts")],
            ["weights", "export", str(ckpt), "--out", str(locked / "w.pt")],
        ):
            fails_cleanly(capsys, argv, "Permission denied", tmp_path)
    finally:
        undo()


# --------------------------------------------------------------------------- errors and bugs


def test_missing_export_extra_names_it(tmp_path, capsys, ckpt, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the [export] extra were absent
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    line = fails_cleanly(
        capsys,
        ["export", str(ckpt), "--format", "onnx", "--exporter", "torchscript", "--out", str(tmp_path / "m.onnx")],
        "resnetlab[export]",
        tmp_path,
    )
    assert "onnxruntime" in line and not (tmp_path / "m.onnx").exists()


def test_missing_extra_deep_inside_a_library_names_it(tmp_path, capsys, monkeypatch):
    import resnetlab.cli.models as models

    def exporter_like(*args, **kwargs):  # torch.onnx wraps the ImportError in its own error
        try:
            raise ModuleNotFoundError("No module named 'onnx'", name="onnx")
        except ImportError as error:
            raise RuntimeError("Module onnx is not installed!") from error

    monkeypatch.setattr(models, "summary_row", exporter_like)
    fails_cleanly(capsys, ["summary", "resnet20"], "pip install 'resnetlab[export]'", tmp_path)
    monkeypatch.setattr(models, "summary_row", lambda *a, **k: __import__("no_such_module_xyz"))
    with pytest.raises(ModuleNotFoundError):  # not an optional extra: a broken install keeps its traceback
        main(["summary", "resnet20"])


def test_bugs_keep_their_traceback_and_debug_shows_every_one(tmp_path, capsys, monkeypatch):
    import resnetlab.cli.models as models

    def buggy(*args, **kwargs):
        raise KeyError("fc.weight")

    monkeypatch.setattr(models, "summary_row", buggy)
    with pytest.raises(KeyError):  # a bug is not reported as a user error
        main(["summary", "resnet20"])
    capsys.readouterr()
    for argv in (
        ["--debug", "summary", "resnet20", "--input-size", "0"],
        ["summary", "resnet20", "--input-size", "0", "--debug"],
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and err.strip().splitlines()[-1].startswith("resnetlab summary: error: --input-size")


def test_stale_checkpoint_temporaries_are_removed(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    import re
    import subprocess
    import sys

    from resnetlab.checkpoints.atomic import remove_stale_temporaries

    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    dead = child.pid  # a pid that no longer runs (reaped above)
    stale = [folder / f".last.pt.{dead}.tmp", folder / f".best.pt.{dead}.tmp"]
    live = folder / f".last.pt.{os.getppid()}.tmp"  # a live writer's file stays
    foreign = folder / f".notes.{dead}.tmp"  # not our naming: never touched
    for path in (*stale, live, foreign):
        path.write_bytes(b"partial")
    save_checkpoint(folder / "last.pt", {"iteration": 1})
    assert not any(p.exists() for p in stale) and live.exists() and foreign.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(["last.pt", live.name, foreign.name])
    assert remove_stale_temporaries(folder, re.compile(r"\.notes\.(?P<pid>\d+)\.tmp")) == [foreign]


def test_reproduce_readme_writes_only_the_named_file(tmp_path, capsys, monkeypatch):
    """Before the fix ``reproduce readme DIR`` rewrote ./README.md of the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# my project\n<!-- reproduce:begin -->\nmine\n<!-- reproduce:end -->\n")
    fails_cleanly(capsys, ["reproduce", "readme", str(tmp_path / "results")], "--readme", tmp_path, code=2)
    assert "mine" in (tmp_path / "README.md").read_text()


def test_in_process_cases_stay_quiet_on_stdout_for_errors(tmp_path, capsys):
    # One more guard on the contract: an error prints nothing on stdout.
    capsys.readouterr()
    assert main(["summary", "resnet20", "--input-size", "-5"]) == 1
    assert capsys.readouterr().out == ""
