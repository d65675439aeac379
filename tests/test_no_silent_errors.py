"""Issue 12, "Hangs and silent wrong results": each test here failed on the code before its fix.

Distributed hangs are in test_distributed.py, unreadable images during ImageNet-pipeline
evaluation in test_imagenet_train.py, the plateau schedule and config bounds in
test_engine_parts.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import resnetlab
from resnetlab import _optional
from resnetlab.checkpoints.checkpoint import load_model, model_payload, save_checkpoint
from resnetlab.checkpoints.interop import strip_prefixes
from resnetlab.checkpoints.rundir import git_revision, project_checkout, provenance
from resnetlab.cli import main
from resnetlab.data import folder, load_dataset, load_image_folder
from resnetlab.data.images import decode_image
from resnetlab.data.preprocess import Preprocess
from resnetlab.detection.config import load_recipe as detection_recipe
from resnetlab.detection.datasets import batch_images
from resnetlab.detection.pipeline import Detector, build_detector, detector_payload, load_detector
from resnetlab.detection.train import train_detector
from resnetlab.engine.config import TrainConfig
from resnetlab.engine.steps import TrainingDiverged
from resnetlab.engine.train import train
from resnetlab.evaluation.counts import LOSS_NOT_MEASURED, rates
from resnetlab.inference import import_weights, load_any
from resnetlab.models import build_model, save_weights

ROOT = Path(__file__).resolve().parents[1]
BROKEN_JPEG = b"\xff\xd8\xff\xe0 not really a jpeg"


# --- evaluation: NaN loss, unreadable files ---------------------------------------------------


def test_a_nan_evaluation_loss_is_an_error_not_a_missing_value() -> None:
    with pytest.raises(FloatingPointError, match="nan"):
        rates(torch.tensor([10.0, 1.0, 0.0, float("nan")], dtype=torch.float64))
    with pytest.raises(FloatingPointError, match="inf"):
        rates(torch.tensor([10.0, 1.0, 0.0, float("inf")], dtype=torch.float64))
    assert rates(torch.tensor([10.0, 1.0, 0.0, LOSS_NOT_MEASURED], dtype=torch.float64))["loss"] is None
    assert rates(torch.tensor([10.0, 1.0, 0.0, 5.0], dtype=torch.float64))["loss"] == 0.5


def test_training_stops_when_the_validation_loss_is_nan(tmp_path, monkeypatch) -> None:
    import resnetlab.engine.train_data as engine_data

    exact = engine_data.error_counts

    def nan_loss(*args, **kwargs):
        totals = exact(*args, **kwargs)
        totals[3] = float("nan")
        return totals

    monkeypatch.setattr(engine_data, "error_counts", nan_loss)
    config = TrainConfig(
        model="cifar_resnet",
        model_options={"depth": 8},
        iterations=4,
        batch_size=32,
        milestones=(3,),
        val_size=64,
        log_every=2,
        eval_every=2,
        checkpoint_every=2,
        precision="fp32",
        device="cpu",
    )
    data = (load_dataset("synthetic:640", "train"), load_dataset("synthetic", "test").subset(torch.arange(100)))
    with pytest.raises(TrainingDiverged, match="val loss is nan at iteration 2"):
        train(config, tmp_path / "run", data=data, log=lambda line: None)
    assert not (tmp_path / "run" / "summary.json").exists()


def cifar_style_folder(root: Path, classes=("cat", "dog", "frog"), per_class: int = 4) -> list[tuple[Path, int]]:
    rng = np.random.default_rng(0)
    files = []
    for split, count in (("train", 1), ("test", per_class)):
        for label, name in enumerate(classes):
            for i in range(count):
                path = root / split / name / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
                if split == "test":
                    files.append((path, label))
    return files


@pytest.mark.parametrize("parallel", [False, True])
def test_image_folder_skips_every_unreadable_file_and_keeps_labels_aligned(tmp_path, monkeypatch, parallel) -> None:
    files = cifar_style_folder(tmp_path)
    broken = [tmp_path / "test" / "cat" / "0-broken.png", tmp_path / "test" / "frog" / "z-broken.png"]
    for path in broken:
        path.write_bytes(BROKEN_JPEG)
    if parallel:
        monkeypatch.setattr(folder, "MIN_PARALLEL_FILES", 1)
    with pytest.raises(ValueError, match="0-broken.png"):
        load_image_folder(tmp_path, "test", workers=2 if parallel else 1)
    skipped: list[tuple[str, str]] = []
    data = load_image_folder(tmp_path, "test", workers=2 if parallel else 1, on_error="skip", skipped=skipped)
    assert sorted(path for path, _ in skipped) == sorted(str(p) for p in broken)
    assert torch.equal(data.images, torch.stack([decode_image(p) for p, _ in files]))
    assert data.labels.tolist() == [label for _, label in files]


def test_eval_on_error_skip_on_a_cifar_style_folder_counts_every_skipped_file(tmp_path, capsys) -> None:
    """It used to stop at the first unreadable file even with --on-error skip."""
    classes = ("cat", "dog", "frog")
    files = cifar_style_folder(tmp_path / "cifar", classes)
    for name in ("dog", "frog"):
        (tmp_path / "cifar" / "test" / name / "broken.png").write_bytes(BROKEN_JPEG)
    torch.manual_seed(0)
    model = build_model("cifar_resnet", depth=8, num_classes=3)
    checkpoint = save_checkpoint(
        tmp_path / "c.pt", model_payload(model, "cifar_resnet", {"depth": 8, "num_classes": 3}, classes, Preprocess())
    )
    argv = ["eval", str(checkpoint), "--data", str(tmp_path / "cifar")]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "broken.png" in err and err.count("\n") == 1
    assert main(argv + ["--on-error", "skip", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 12 and result["skipped"] == 2
    loaded = load_model(checkpoint)
    images = torch.stack([decode_image(path) for path, _ in files])
    wrong = int((loaded.predict_logits(images).argmax(-1) != torch.tensor([y for _, y in files])).sum())
    assert result["top1_wrong"] == wrong


# --- detection ----------------------------------------------------------------------------------


def test_detection_backbone_from_torchvision_weights_computes_the_classifiers_features(tmp_path) -> None:
    """Bare weights used to run in the v1 layout (stride on the 1x1) with std (1, 1, 1)."""
    torch.manual_seed(0)
    source = build_model("resnet50", stride_on="3x3")  # torchvision's layout, stride placement
    for m in source.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    torch.save(source.state_dict(), tmp_path / "tv.pt")
    save_weights(source, tmp_path / "tv.safetensors")  # bare tensors, no resnetlab metadata
    import_weights(tmp_path / "tv.pt", "resnet50", tmp_path / "classifier.pt", stride_on="3x3")
    classifier = load_any(tmp_path / "classifier.pt")
    image = torch.randint(0, 256, (3, 64, 80), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = classifier.model.forward_features(classifier.preprocess.normalize(image[None]))
        for weights in ("tv.pt", "tv.safetensors"):
            config = detection_recipe(
                "synthetic-resnet18", {"backbone": "resnet50", "weights": str(tmp_path / weights)}
            )
            model, mean, std = build_detector(config, 3)
            batch, _ = batch_images([image], mean, std)  # 64x80: no padding
            torch.testing.assert_close(model.eval().backbone.forward_features(batch), expected)
    # The saved detector is rebuilt with the same stride placement.
    detector = Detector(model, config, ("a", "b", "c"), tuple(mean), tuple(std))
    save_checkpoint(tmp_path / "det.pt", detector_payload(detector))
    reloaded = load_detector(tmp_path / "det.pt")
    assert reloaded.model.backbone.layer2[0].conv2.stride == (2, 2) and reloaded.std == pytest.approx(std)
    torch.testing.assert_close(reloaded.model.backbone.forward_features(batch), expected)


def test_detection_backbone_from_a_classifier_of_another_width(tmp_path) -> None:
    source = build_model("resnet18", num_classes=10)
    save_checkpoint(
        tmp_path / "c10.pt",
        model_payload(source, "resnet18", {"num_classes": 10}, [str(i) for i in range(10)], Preprocess()),
    )
    model, _, _ = build_detector(detection_recipe("synthetic-resnet18", {"weights": str(tmp_path / "c10.pt")}), 3)
    assert torch.equal(model.backbone.layer4[0].conv1.weight, source.layer4[0].conv1.weight)


def test_detection_metrics_file_holds_whole_rows_of_this_run_only(tmp_path) -> None:
    """Rows were appended to whatever an earlier, killed attempt left, torn row included."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"iteration": 1, "loss": 2.0}\n{"iteration": 2, "lo')
    tiny = {
        "synthetic_size": 64,
        "min_size": 64,
        "max_size": 64,
        "synthetic_train": 4,
        "anchor_sizes": [16, 32],
        "rpn_pre_nms_train": 100,
        "rpn_post_nms_train": 30,
        "pool_size": 2,
        "roi_batch_size": 8,
        "images_per_batch": 1,
        "precision": "fp32",
        "log_every": 1,
        "iterations": 2,
    }
    train_detector(detection_recipe("synthetic-resnet18", tiny), None, run, log=lambda line: None, evaluate=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows] == [1, 2]


# --- interop, optional torchvision ----------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["module.", "_orig_mod.", "module._orig_mod.", "_orig_mod.module.", "module.module._orig_mod."]
)
def test_wrapper_prefixes_are_stripped_in_any_order(prefix) -> None:
    assert strip_prefixes({f"{prefix}layer1.0.conv1.weight": torch.zeros(1)}) == {
        "layer1.0.conv1.weight": torch.zeros(1)
    }


def test_a_broken_torchvision_is_reported_once_and_treated_as_absent(tmp_path, monkeypatch, caplog) -> None:
    fake = tmp_path / "site" / "torchvision"
    fake.mkdir(parents=True)
    # What a wheel built for another torch says on import.
    (fake / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    _optional.torchvision_ops.cache_clear()
    try:
        from resnetlab.detection.boxes import nms

        assert _optional.torchvision_ops() is None and _optional.torchvision_ops() is None
        boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
        assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]  # the plain-PyTorch path
        # One warning of the resnetlab logger (one stderr line where logging is not configured).
        warnings = [r for r in caplog.records if r.name.startswith("resnetlab") and r.levelname == "WARNING"]
        assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
        assert (
            "torchvision is installed but unusable" in warnings[0].getMessage()
            and "torchvision::nms" in warnings[0].getMessage()
        )
    finally:
        _optional.torchvision_ops.cache_clear()


# --- packaging and provenance -------------------------------------------------------------------


def test_requires_python_covers_tomllib() -> None:
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert spec.startswith(">=") and tuple(int(p) for p in spec[2:].split(".")) >= (3, 11)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_meta_records_the_package_version_and_only_this_projects_revision(tmp_path, monkeypatch) -> None:
    meta = provenance(torch.device("cpu"), "fp32")
    assert meta["resnetlab_version"] == resnetlab.__version__
    other = tmp_path / "user-repo"  # a user's repository with the package installed inside it
    package = other / ".venv" / "lib" / "site-packages" / "resnetlab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(other)]
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    assert project_checkout(package) is None
    monkeypatch.chdir(other)  # the current directory's repository is not consulted
    checkout = project_checkout()
    if checkout is not None:  # running from a checkout of this project, as in development
        assert checkout == ROOT and git_revision() == git_revision(ROOT)
    else:
        assert git_revision() == "unknown"
