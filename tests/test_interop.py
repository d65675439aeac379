"""Weights in the torchvision/timm layout: import with a key report, export, stride placement."""

from __future__ import annotations

import pytest
import torch

from resnetlab.checkpoints.interop import WeightsMismatchError
from resnetlab.cli import main
from resnetlab.inference import export_weights, import_weights, load_any
from resnetlab.models import build_model


def torchvision_resnet_spec(depth: int, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's ``resnet{depth}().state_dict()``, written out from its layout
    (not from our model), so the test checks that the two layouts agree."""
    kind, counts = {18: ("basic", (2, 2, 2, 2)), 50: ("bottleneck", (3, 4, 6, 3))}[depth]
    spec: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            spec[f"{prefix}.{name}"] = (channels,)
        spec[f"{prefix}.num_batches_tracked"] = ()

    bn("bn1", 64)
    inplanes = 64
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), counts)):
        for index in range(count):
            p = f"layer{stage + 1}.{index}"
            stride = 2 if index == 0 and stage > 0 else 1
            if kind == "basic":
                out = width
                spec[f"{p}.conv1.weight"] = (width, inplanes, 3, 3)
                spec[f"{p}.conv2.weight"] = (width, width, 3, 3)
                bn(f"{p}.bn1", width)
                bn(f"{p}.bn2", width)
            else:
                out = 4 * width
                spec[f"{p}.conv1.weight"] = (width, inplanes, 1, 1)
                spec[f"{p}.conv2.weight"] = (width, width, 3, 3)
                spec[f"{p}.conv3.weight"] = (out, width, 1, 1)
                bn(f"{p}.bn1", width)
                bn(f"{p}.bn2", width)
                bn(f"{p}.bn3", out)
            if stride != 1 or inplanes != out:
                spec[f"{p}.downsample.0.weight"] = (out, inplanes, 1, 1)
                bn(f"{p}.downsample.1", out)
            inplanes = out
    spec["fc.weight"] = (num_classes, inplanes)
    spec["fc.bias"] = (num_classes,)
    return spec


def random_state(spec: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """A distinct value per key (cheap to make at ResNet-50 size), so a tensor loaded under the
    wrong name would show; variances stay positive."""
    return {
        k: torch.tensor(7, dtype=torch.int64)
        if k.endswith("num_batches_tracked")
        else torch.full(shape, 1.0 + i / 1000 if k.endswith("running_var") else (i + 1) / 10000)
        for i, (k, shape) in enumerate(spec.items())
    }


@pytest.mark.parametrize("depth", [18, 50])
def test_our_layout_is_torchvision_layout(depth):
    ours = {k: tuple(v.shape) for k, v in build_model(f"resnet{depth}").state_dict().items()}
    assert ours == torchvision_resnet_spec(depth)


def test_import_resnet50_from_ddp_safetensors(tmp_path):
    from safetensors.torch import save_file

    state = random_state(torchvision_resnet_spec(50, num_classes=10))
    save_file({f"module.{k}": v for k, v in state.items()}, str(tmp_path / "tv.safetensors"))
    result = import_weights(tmp_path / "tv.safetensors", "resnet50", tmp_path / "r50.pt", stride_on="3x3")
    assert result.report.ok and result.filled == ()
    loaded = load_any(tmp_path / "r50.pt")
    assert loaded.options == {"stride_on": "3x3", "num_classes": 10} and len(loaded.classes) == 10
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in state.items())
    # v1.5: the stride-2 of conv3_1 sits on the 3x3, not on the first 1x1.
    assert loaded.model.layer2[0].conv1.stride == (1, 1) and loaded.model.layer2[0].conv2.stride == (2, 2)
    p = loaded.preprocess
    assert (p.input_size, p.resize, p.resize_to, p.std) == (224, "shorter_side", 256, (0.229, 0.224, 0.225))
    assert torch.allclose(p.mean_image.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    v1 = import_weights(tmp_path / "tv.safetensors", "resnet50", tmp_path / "v1.pt", stride_on="1x1")
    assert v1.options == {"stride_on": "1x1", "num_classes": 10}


@pytest.fixture(scope="module")
def r18(tmp_path_factory):
    return random_state(torchvision_resnet_spec(18, num_classes=5))


def test_misshaped_and_extra_keys_are_reported(r18, tmp_path):
    bad = dict(r18)
    bad["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    bad["extra.weight"] = torch.zeros(3)
    del bad["fc.bias"]
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(WeightsMismatchError) as caught:
        import_weights(tmp_path / "bad.pt", "resnet18", tmp_path / "out.pt")
    message = str(caught.value)
    assert "missing keys (1): fc.bias" in message and "unexpected keys (1): extra.weight" in message
    assert "layer1.0.conv1.weight: checkpoint (64, 64, 1, 1) vs model (64, 64, 3, 3)" in message
    assert not (tmp_path / "out.pt").exists()
    # Non-strict accepts missing/unexpected keys, never mis-shaped ones.
    with pytest.raises(WeightsMismatchError, match="mis-shaped"):
        import_weights(tmp_path / "bad.pt", "resnet18", tmp_path / "out.pt", strict=False)
    bad["layer1.0.conv1.weight"] = r18["layer1.0.conv1.weight"]
    torch.save(bad, tmp_path / "partial.pt")
    result = import_weights(tmp_path / "partial.pt", "resnet18", tmp_path / "out.pt", strict=False)
    assert result.report.missing == ["fc.bias"] and result.report.unexpected == ["extra.weight"]


def test_missing_bn_counters_are_filled(r18, tmp_path):
    timm_like = {k: v for k, v in r18.items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": timm_like}, tmp_path / "timm.pth")
    result = import_weights(tmp_path / "timm.pth", "resnet18", tmp_path / "out.pt")
    assert result.report.ok and len(result.filled) == 20  # stem + 16 block BNs + 3 downsample BNs


def test_export_writes_torchvision_layout_and_round_trips(r18, tmp_path):
    torch.save(r18, tmp_path / "src.pt")
    import_weights(tmp_path / "src.pt", "resnet18", tmp_path / "ckpt.pt", classes=list("abcde"))
    pt = export_weights(tmp_path / "ckpt.pt", tmp_path / "w.pt")
    exported = torch.load(pt, weights_only=True)
    assert {k: tuple(v.shape) for k, v in exported.items()} == torchvision_resnet_spec(18, 5)
    assert all(torch.equal(exported[k], r18[k]) for k in r18)
    st = export_weights(tmp_path / "ckpt.pt", tmp_path / "w.safetensors")
    again = load_any(st)
    assert again.classes == tuple("abcde") and again.options == {"num_classes": 5}  # basic blocks: no stride choice
    assert all(torch.equal(again.model.state_dict()[k], v) for k, v in r18.items())


def test_cli_weights_import_and_export(r18, tmp_path, capsys):
    torch.save({f"module.{k}": v for k, v in r18.items()}, tmp_path / "ddp.pt")
    (tmp_path / "names.txt").write_text("cat\ndog\n\nbird\nfish\nfrog\n")
    assert (
        main(
            [
                "weights",
                "import",
                str(tmp_path / "ddp.pt"),
                "--model",
                "resnet18",
                "--classes",
                str(tmp_path / "names.txt"),
                "--out",
                str(tmp_path / "c.pt"),
            ]
        )
        == 0
    )
    assert "state dict fits exactly" in capsys.readouterr().out
    assert load_any(tmp_path / "c.pt").classes == ("cat", "dog", "bird", "fish", "frog")
    assert main(["weights", "export", str(tmp_path / "c.pt"), "--out", str(tmp_path / "w.safetensors")]) == 0
    assert (
        main(["weights", "import", str(tmp_path / "ddp.pt"), "--model", "resnet34", "--out", str(tmp_path / "x.pt")])
        == 1
    )
    err = capsys.readouterr().err
    assert "does not fit the model" in err and "missing keys" in err
    assert (
        main(["weights", "import", str(tmp_path / "ddp.pt"), "--model", "resnet20", "--out", str(tmp_path / "x.pt")])
        == 1
    )
    assert "CIFAR network" in capsys.readouterr().err
