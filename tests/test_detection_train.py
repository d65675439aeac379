"""One training step of the C4 detector, backbone weight loading, and the CLI end to end (tiny)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from resnetlab.checkpoints.checkpoint import model_payload, save_checkpoint
from resnetlab.cli import main
from resnetlab.data.preprocess import Preprocess
from resnetlab.detection.config import load_recipe
from resnetlab.detection.datasets import SyntheticDetection, batch_images, resize_sample, training_targets
from resnetlab.detection.model import FasterRCNN, HeadSettings
from resnetlab.detection.pipeline import build_detector
from resnetlab.detection.rpn import RPNSettings
from resnetlab.detection.train import learning_rate, make_optimizer
from resnetlab.models import ResNet, ResNetConfig, build_model, save_weights


def tiny_detector(pooler: str = "roi_pool", freeze_bn: bool = True) -> FasterRCNN:
    torch.manual_seed(0)
    backbone = ResNet(
        ResNetConfig(block="basic", stage_depths=(1, 1, 1, 1), stage_widths=(8, 16, 32, 64), stem_width=8)
    )
    for m in backbone.modules():  # non-trivial "pre-trained" BN statistics to keep frozen
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    rpn = RPNSettings(anchor_sizes=(16.0, 32.0), pre_nms_top_n=(200, 100), post_nms_top_n=(50, 20), batch_size=64)
    return FasterRCNN(backbone, 3, rpn, HeadSettings(pooler=pooler, pool_size=4, batch_size=16), freeze_bn=freeze_bn)


def one_batch():
    ds = SyntheticDetection(size=64, length=2, seed=1, min_side=10, max_side=28)
    samples = [resize_sample(ds[i], 64, 64) for i in range(2)]
    images, sizes = batch_images([s.image for s in samples], (0.5, 0.5, 0.5), (1, 1, 1))
    return images, sizes, [training_targets(s) for s in samples]


@pytest.mark.parametrize("pooler", ["roi_pool", "roi_align"])
def test_training_step_updates_heads_and_keeps_frozen_parts(pooler):
    model = tiny_detector(pooler)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = make_optimizer(model, load_recipe("synthetic-resnet18", {"lr": 0.01}))
    images, sizes, targets = one_batch()
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        losses = model(images, sizes, targets, g)
        assert set(losses) == {"rpn_objectness", "rpn_box", "classifier", "box_regression"}
        loss = sum(losses.values())
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.state_dict()
    for key in (
        "backbone.layer2.0.conv1.weight",
        "backbone.layer4.0.conv2.weight",
        "rpn.head.conv.weight",
        "cls_score.weight",
        "bbox_pred.weight",
    ):
        assert not torch.equal(before[key], after[key]), key
    for key in ("backbone.conv1.weight", "backbone.layer1.0.conv1.weight"):  # freeze_at=2
        assert torch.equal(before[key], after[key]), key
    bn_keys = [
        k for k in after if any(s in k for s in ("bn", "downsample.1")) and not k.endswith("num_batches_tracked")
    ]
    assert len(bn_keys) > 20
    for key in bn_keys:  # statistics and affine parameters, everywhere in the backbone
        assert torch.equal(before[key], after[key]), key
    assert all(not m.training for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_unfrozen_bn_does_update_statistics():
    model = tiny_detector(freeze_bn=False)
    before = model.backbone.layer3[0].bn1.running_mean.clone()
    images, sizes, targets = one_batch()
    model(images, sizes, targets, torch.Generator().manual_seed(0))
    assert not torch.equal(before, model.backbone.layer3[0].bn1.running_mean)


def test_inference_returns_clipped_detections():
    model = tiny_detector().eval()
    images, sizes, _ = one_batch()
    out = model(images, sizes)
    assert len(out) == 2
    for det, (h, w) in zip(out, sizes):
        assert det["boxes"].shape[1] == 4 and len(det["boxes"]) == len(det["scores"]) == len(det["labels"])
        if len(det["boxes"]):
            assert det["boxes"][:, 2].max() <= w and det["boxes"][:, 3].max() <= h
            assert det["labels"].min() >= 1 and det["scores"].min() > 0.05


def test_learning_rate_steps_and_warmup():
    config = load_recipe("synthetic-resnet18", {"lr": 0.03, "lr_steps": [10, 20], "warmup_iterations": 4})
    assert learning_rate(config, 0) == pytest.approx(0.01)
    assert learning_rate(config, 2) == pytest.approx(0.03 * (1 / 3 * 0.5 + 0.5))
    assert learning_rate(config, 5) == pytest.approx(0.03)
    assert learning_rate(config, 10) == pytest.approx(0.003)
    assert learning_rate(config, 25) == pytest.approx(0.0003)


def test_backbone_weights_from_checkpoint_and_safetensors(tmp_path):
    source = build_model("resnet18")
    with torch.no_grad():
        source.layer3[0].conv1.weight.fill_(0.25)
    mean = torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1)
    save_checkpoint(tmp_path / "cls.pt", model_payload(source, "resnet18", {}, ["a"], Preprocess(mean_image=mean)))
    save_weights(source, tmp_path / "cls.safetensors")
    for path in (tmp_path / "cls.pt", tmp_path / "cls.safetensors"):
        config = load_recipe("synthetic-resnet18", {"weights": str(path)})
        model, pixel_mean, _ = build_detector(config, 3)
        assert torch.equal(model.backbone.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
        if path.suffix == ".pt":
            assert pixel_mean == pytest.approx((0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="resnet18"):
        build_detector(
            load_recipe("synthetic-resnet18", {"weights": str(tmp_path / "cls.pt"), "backbone": "resnet34"}), 3
        )


def test_cli_train_eval_predict(tmp_path, capsys):
    run = tmp_path / "run"
    tiny = [
        "synthetic_size=64",
        "min_size=64",
        "max_size=64",
        "synthetic_test=2",
        "anchor_sizes=[16,32]",
        "rpn_pre_nms_train=100",
        "rpn_post_nms_train=30",
        "rpn_pre_nms_test=100",
        "rpn_post_nms_test=10",
        "pool_size=2",
        "roi_batch_size=8",
        "images_per_batch=1",
        'precision="fp32"',
        "log_every=1",
    ]
    args = ["detect", "train", "--out", str(run), "--iterations", "2"] + [a for kv in tiny for a in ("--set", kv)]
    assert main(args) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows[:2]] == [1, 2] and "eval" in rows[-1]
    assert 0.0 <= rows[-1]["eval"]["mAP50"] <= 1.0
    assert json.loads((run / "config.json").read_text())["iterations"] == 2
    assert (run / "checkpoints" / "last.pt").is_file()
    capsys.readouterr()
    assert main(["detect", "eval", str(run), "--limit", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 1
    Image.new("RGB", (96, 48), (200, 30, 30)).save(tmp_path / "img.png")
    assert (
        main(
            [
                "detect",
                "predict",
                str(run),
                str(tmp_path / "img.png"),
                "--out",
                str(tmp_path / "pred"),
                "--threshold",
                "0",
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "pred" / "img.json").read_text())
    for det in result["detections"]:  # boxes are in the original 96x48 image's pixels
        assert 0 <= det["box"][0] <= det["box"][2] <= 96 and 0 <= det["box"][1] <= det["box"][3] <= 48
        assert det["label"] in ("circle", "square", "triangle")
    assert Image.open(tmp_path / "pred" / "img.png").size == (96, 48)
    assert main(["detect", "train", "--recipe", "voc-resnet101"]) == 1  # VOC needs --data: one-line error
    assert "give --data" in capsys.readouterr().err
