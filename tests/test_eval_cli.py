"""``resnetlab eval`` end to end: checkpoints on disk, JPEG folders, every protocol, ensembles,
skipped files and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CIFAR10_JPEG
from PIL import Image

from resnetlab.checkpoints.checkpoint import load_model, model_payload, save_checkpoint
from resnetlab.cli import main
from resnetlab.data.imagenet import index_split
from resnetlab.data.images import decode_image
from resnetlab.data.preprocess import Preprocess
from resnetlab.evaluation.report import align_labels
from resnetlab.models import build_model

CIFAR_JPEG = CIFAR10_JPEG
WNIDS = ("n001", "n002", "n003")


def write_checkpoint(path: Path, classes, preprocess: Preprocess, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    options = {"depth": 8, "num_classes": len(classes)}
    model = build_model("cifar_resnet", **options)
    with torch.no_grad():  # spread the logits so the ranking is not a tie-break lottery
        model.fc.weight.mul_(20)
    return save_checkpoint(path, model_payload(model, "cifar_resnet", options, classes, preprocess))


def imagenet_preprocess() -> Preprocess:
    mean = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(3))
    return Preprocess(input_size=24, resize="shorter_side", resize_to=28, mean_image=mean)


def make_folder(root: Path, split: str, classes, per_class: int, sizes) -> list[tuple[Path, int]]:
    rng = np.random.default_rng(0)
    files = []
    for label, name in enumerate(classes):
        for i in range(per_class):
            h, w = sizes[(label + i) % len(sizes)]
            path = root / split / name / f"{i}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
            files.append((path, label))
    return files


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def one_crop_by_hand(checkpoint: Path, files) -> tuple[int, int]:
    """PIL resize of the shorter side to 28, centre 24x24, one forward per image."""
    loaded = load_model(checkpoint)
    top1 = top5 = 0
    for path, label in files:
        image = Image.open(path).convert("RGB")
        w, h = image.size
        nw, nh = (28, round(h * 28 / w)) if w <= h else (round(w * 28 / h), 28)
        image = image.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - 24) // 2, (nh - 24) // 2
        crop = torch.from_numpy(np.asarray(image.crop((left, top, left + 24, top + 24))).copy()).permute(2, 0, 1)
        ranking = loaded.predict_logits(crop[None])[0].argsort(descending=True).tolist()
        top1 += ranking[0] != label
        top5 += label not in ranking[:5]
    return top1, top5


def test_imagenet_style_checkpoint_every_protocol(tmp_path: Path, capsys) -> None:
    files = make_folder(tmp_path / "data", "val", WNIDS, 3, [(30, 40), (50, 36), (28, 28)])
    checkpoint = write_checkpoint(tmp_path / "a.pt", WNIDS, imagenet_preprocess())
    results = {}
    for protocol in ("1crop", "10crop", "multiscale"):
        results[protocol] = run_json(
            capsys,
            [
                "eval",
                str(checkpoint),
                "--data",
                str(tmp_path / "data"),
                "--protocol",
                protocol,
                "--scales",
                "24,28,40",
                "--batch-size",
                "4",
            ],
        )
        assert results[protocol]["images"] == 9 and results[protocol]["skipped"] == 0
        assert results[protocol]["split"] == "val" and results[protocol]["protocol"] == protocol
        assert results[protocol]["top5_error"] == 0.0  # three classes: always in the top 5
    top1_wrong, _ = one_crop_by_hand(checkpoint, files)
    assert results["1crop"]["top1_wrong"] == top1_wrong
    assert results["1crop"]["top1_error"] == pytest.approx(100 * top1_wrong / 9)
    # Default protocol of an ImageNet-style checkpoint: 10-crop (Tables 2-3).
    default = run_json(capsys, ["eval", str(checkpoint), "--data", str(tmp_path / "data")])
    assert default["protocol"] == "10crop" and default["top1_wrong"] == results["10crop"]["top1_wrong"]


def test_ensemble_and_text_output(tmp_path: Path, capsys) -> None:
    make_folder(tmp_path / "data", "val", WNIDS, 2, [(30, 40), (40, 30)])
    a = write_checkpoint(tmp_path / "a.pt", WNIDS, imagenet_preprocess(), seed=0)
    b = write_checkpoint(tmp_path / "b.pt", WNIDS, imagenet_preprocess(), seed=1)
    assert main(["eval", str(a), str(b), "--data", str(tmp_path / "data"), "--protocol", "1crop"]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2 models, protocol 1crop" in out
    assert "images         6 (0 skipped)" in out and "top-1 error" in out and "top-5 error    0.00%" in out


def test_cifar_checkpoint_single_view_on_a_cifar_folder(tmp_path: Path, capsys) -> None:
    classes = ("cat", "dog", "frog")
    make_folder(tmp_path / "cifar", "train", classes, 1, [(32, 32)])
    files = make_folder(tmp_path / "cifar", "test", classes, 4, [(32, 32)])
    checkpoint = write_checkpoint(tmp_path / "c.pt", classes, Preprocess())
    result = run_json(capsys, ["eval", str(checkpoint), "--data", str(tmp_path / "cifar")])
    assert result["protocol"] == "single" and result["split"] == "test" and result["images"] == 12
    loaded = load_model(checkpoint)
    images = torch.stack([decode_image(path) for path, _ in files])
    labels = torch.tensor([label for _, label in files])
    wrong = int((loaded.predict_logits(images).argmax(-1) != labels).sum())
    assert result["top1_wrong"] == wrong
    assert main(["eval", str(checkpoint), "--data", str(tmp_path / "cifar"), "--protocol", "10crop"]) == 1
    assert "single original view" in capsys.readouterr().err


def test_skipped_files_are_counted_and_fail_names_the_file(tmp_path: Path, capsys) -> None:
    make_folder(tmp_path / "data", "val", WNIDS, 2, [(30, 40)])
    broken = tmp_path / "data" / "val" / WNIDS[1] / "broken.JPEG"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    checkpoint = write_checkpoint(tmp_path / "a.pt", WNIDS, imagenet_preprocess())
    argv = ["eval", str(checkpoint), "--data", str(tmp_path / "data"), "--protocol", "1crop"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("resnetlab eval: error: ") and str(broken) in err and err.count("\n") == 1
    with pytest.warns(UserWarning, match="skipped unreadable image"):
        result = run_json(capsys, argv + ["--on-error", "skip"])
    assert result["images"] == 6 and result["skipped"] == 1


def test_user_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["eval", str(tmp_path / "missing.pt"), "--data", str(tmp_path)]) == 1
    assert "no checkpoint at" in capsys.readouterr().err
    make_folder(tmp_path / "data", "val", ("x1", "x2"), 1, [(30, 30)])
    checkpoint = write_checkpoint(tmp_path / "a.pt", WNIDS, imagenet_preprocess())
    assert main(["eval", str(checkpoint), "--data", str(tmp_path / "data")]) == 1
    assert "not the checkpoint's classes" in capsys.readouterr().err


def test_folder_labels_follow_the_checkpoint_class_order(tmp_path: Path) -> None:
    make_folder(tmp_path, "val", ("n2", "n1"), 1, [(30, 30)])
    index = index_split(tmp_path, "val")  # folder order: n1 -> 0, n2 -> 1
    aligned = align_labels(index, ("n2", "n3", "n1"))
    by_class = {Path(p).parent.name: y for p, y in aligned.samples}
    assert by_class == {"n1": 2, "n2": 0}
    assert align_labels(index, ()) is index


@pytest.mark.skipif(not CIFAR_JPEG.is_dir(), reason="shared CIFAR-10 JPEG folder not present")
def test_real_cifar_jpeg_folder(tmp_path: Path, capsys) -> None:
    classes = tuple(sorted(p.name for p in (CIFAR_JPEG / "test").iterdir() if p.is_dir()))
    # An ImageNet-style checkpoint exercises the streaming folder pipeline on real JPEGs.
    checkpoint = write_checkpoint(tmp_path / "a.pt", classes, imagenet_preprocess())
    result = run_json(
        capsys,
        [
            "eval",
            str(checkpoint),
            "--data",
            str(CIFAR_JPEG),
            "--split",
            "test",
            "--protocol",
            "10crop",
            "--limit",
            "40",
            "--workers",
            "2",
        ],
    )
    assert result["images"] == 40 and result["skipped"] == 0
    assert 0 <= result["top5_wrong"] <= result["top1_wrong"] <= 40


def test_eval_shows_images_done_of_the_total_on_stderr(tmp_path: Path, capsys) -> None:
    """Long evaluations say how far they are (``resnetlab.progress.Progress``): a bar on a terminal,
    plain lines otherwise, on stderr so that ``--json`` stays one line on stdout."""
    make_folder(tmp_path / "data", "val", WNIDS, 2, [(30, 40), (40, 30)])
    checkpoint = write_checkpoint(tmp_path / "a.pt", WNIDS, imagenet_preprocess())
    assert (
        main(
            [
                "eval",
                str(checkpoint),
                "--data",
                str(tmp_path / "data"),
                "--protocol",
                "1crop",
                "--batch-size",
                "4",
                "--json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"] == 6
    assert "eval 6/6 1crop" in captured.err  # the last line always comes, whatever the interval


def test_without_data_the_text_output_names_the_built_in_set(tmp_path: Path, capsys) -> None:
    """No ``--data``: the built-in synthetic set, named as such, never a ``None [test]`` placeholder
    (issue 15)."""
    from resnetlab.data.synthetic import CLASSES

    checkpoint = write_checkpoint(tmp_path / "c.pt", CLASSES, Preprocess())
    assert main(["eval", str(checkpoint), "--limit", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 model, protocol single, synthetic (built-in) [test]" in out
    assert "images         8 (0 skipped)" in out and "None" not in out
