"""The imagenet pipeline in the training loop, on a generated JPEG folder (no ImageNet here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlab.checkpoints.checkpoint import load_checkpoint, load_model
from resnetlab.engine.config import TrainConfig, load_recipe
from resnetlab.engine.train import train


@pytest.fixture(scope="module")
def jpeg_tree(tmp_path_factory):
    """train/<wnid>/ and val/<wnid>/ of small JPEGs of assorted sizes and modes."""
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, count in (("train", 10), ("val", 3)):
        for c, wnid in enumerate(("n01440764", "n01443537", "n01484850")):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(count):
                h, w = int(rng.integers(40, 70)), int(rng.integers(40, 90))
                array = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
                array[..., c] += 150  # the class shows in one colour channel
                image = Image.fromarray(array)
                if i % 5 == 4:
                    image = image.convert("L")
                image.save(folder / f"{split}_{i}.JPEG", quality=90)
    return root


def tiny(root, **changes) -> TrainConfig:
    base = TrainConfig(
        model="resnet18",
        data=str(root),
        pipeline="imagenet",
        test_split="val",
        iterations=4,
        batch_size=6,
        milestones=(3,),
        val_size=0,
        crop_size=32,
        scale_range=(36, 48),
        test_resize=36,
        mean_sample=12,
        workers=0,
        log_every=2,
        eval_every=4,
        checkpoint_every=2,
        eval_batch_size=8,
    )
    return base.replace(**changes)


def test_imagenet_recipes_are_the_papers() -> None:
    for name in (
        "imagenet-resnet18",
        "imagenet-resnet34",
        "imagenet-resnet50",
        "imagenet-resnet101",
        "imagenet-resnet152",
        "imagenet-plain18",
        "imagenet-plain34",
    ):
        c = load_recipe(name)
        assert (c.batch_size, c.lr, c.momentum, c.weight_decay, c.iterations) == (256, 0.1, 0.9, 1e-4, 600_000)
        assert c.schedule == "plateau" and c.pipeline == "imagenet" and c.scale_range == (256, 480)
        assert c.crop_size == 224 and c.augmentation == "paper" and c.test_split == "val"


@pytest.mark.parametrize("workers", [0, 2])  # 2: decoding and augmentation in worker processes
def test_trains_evaluates_and_resumes_on_a_jpeg_folder(tmp_path, jpeg_tree, workers: int) -> None:
    config = tiny(jpeg_tree, workers=workers)
    result = train(config, tmp_path / "straight", log=lambda line: None)
    summary = result.summary
    assert summary["test_images"] == 9 and summary["iterations"] == 4
    assert 0.0 <= summary["test_top1_error"] <= 100.0
    loaded = load_model(tmp_path / "straight")
    assert loaded.preprocess.resize == "shorter_side" and loaded.preprocess.resize_to == 36
    assert loaded.preprocess.input_size == 32 and loaded.classes == ("n01440764", "n01443537", "n01484850")
    # Stop after 2 iterations and resume: same weights as the uninterrupted run.
    calls = iter(range(100))
    train(config, tmp_path / "resumed", should_stop=lambda: next(calls) == 1, log=lambda line: None)
    train(config, tmp_path / "resumed", resume=True, log=lambda line: None)
    a = load_checkpoint(tmp_path / "straight/checkpoints/last.pt")["model"]
    b = load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unreadable_training_image_fails_or_is_skipped(tmp_path, jpeg_tree) -> None:
    bad = jpeg_tree / "train" / "n01440764" / "broken.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    try:
        with pytest.raises(ValueError, match="broken.JPEG"):
            train(tiny(jpeg_tree, iterations=6), tmp_path / "fail", log=lambda line: None)
        result = train(tiny(jpeg_tree, iterations=6, on_error="skip"), tmp_path / "skip", log=lambda line: None)
        assert result.status == "completed"
        assert any("broken.JPEG" in line for line in result.summary["skipped_images"])
    finally:
        bad.unlink()


def test_unreadable_evaluation_image_fails_or_is_counted(tmp_path, jpeg_tree) -> None:
    """The evaluator used to drop unreadable files silently, so the reported error was computed
    on fewer images than the split holds without a word."""
    bad = jpeg_tree / "val" / "n01443537" / "broken.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    try:
        with pytest.raises(ValueError, match="broken.JPEG"):
            train(tiny(jpeg_tree), tmp_path / "fail", log=lambda line: None)
        result = train(tiny(jpeg_tree, on_error="skip"), tmp_path / "skip", log=lambda line: None)
        assert result.summary["test_images"] == 9  # 3 classes x 3 readable images
        assert [line.split(":")[0] for line in result.summary["skipped_eval_images"]] == [str(bad)]
        assert result.summary["test_loss"] is None  # 1-crop testing measures no loss: not an error
    finally:
        bad.unlink()
