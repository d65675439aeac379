"""Helpers of the robustness suite (``test_robustness_*.py``): the "fails cleanly" check (exit
code, one stderr line, no traceback, no pre-existing file changed), the fixtures, and tiny inputs.

A test module uses the fixtures by importing them (pytest finds fixtures in a module's namespace).
"""

from __future__ import annotations

import hashlib
import signal
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlab.checkpoints.checkpoint import model_payload, save_checkpoint
from resnetlab.cli import main
from resnetlab.data.cifar_archive import write_cifar_archive
from resnetlab.data.preprocess import Preprocess
from resnetlab.models import build_model

CLASSES = [f"c{i}" for i in range(10)]


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
