"""The v1/v1.5 trap: foreign bottleneck weights never load under a guessed stride placement.

torchvision's and timm's resnet50/101/152 are v1.5 (stride on the 3x3); ``build_model("resnet50")``
is the paper's v1 (stride on the 1x1). Both have the same keys and shapes, so a v1.5 state dict
loads with strict=True into v1 and gives other logits. The v1.5 reference here is our own
``build_model(name, stride_on="3x3")``, which ``test_weights_io`` checks equal to torchvision's
definition where torchvision imports (and the gated test at the end checks the trap against it).
"""

from __future__ import annotations

import pytest
import torch

from resnetlab._optional import torchvision_ops
from resnetlab.checkpoints.checkpoint import FORMAT, load_model, model_payload, save_checkpoint
from resnetlab.checkpoints.interop import StrideChoiceError, guess_architecture
from resnetlab.checkpoints.weights import imagenet_preprocess
from resnetlab.cli import main
from resnetlab.inference import export_weights, import_weights, load_any
from resnetlab.models import build_model
from resnetlab.models.registry import explicit_layout, is_bottleneck

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _randomise_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics, so that the two layouts' logits differ clearly."""
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def v15(tmp_path_factory):
    """A torchvision-equivalent (v1.5) resnet50 with 10 classes, its logits and foreign files."""
    torch.manual_seed(0)
    reference = _randomise_bn(build_model("resnet50", stride_on="3x3", num_classes=10))
    folder = tmp_path_factory.mktemp("v15")
    state = reference.state_dict()
    torch.save({f"module.{k}": v for k, v in state.items()}, folder / "tv.pth")  # DDP-style keys
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "tv.safetensors"))
    with torch.no_grad():
        logits = reference(X)
    return folder, logits


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(X)


def test_the_trap_exists_a_v15_state_dict_fits_v1_strictly(v15):
    folder, logits = v15
    v1 = build_model("resnet50", num_classes=10)
    saved = torch.load(folder / "tv.pth", weights_only=True)
    v1.load_state_dict({k.removeprefix("module."): v for k, v in saved.items()}, strict=True)
    assert not torch.allclose(_logits(v1), logits, atol=1e-3)  # silently different: what we guard against


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_build_model_with_a_foreign_bottleneck_file_needs_the_choice(v15, suffix):
    folder, logits = v15
    with pytest.raises(StrideChoiceError) as caught:
        build_model("resnet50", weights=folder / f"tv{suffix}")
    message = str(caught.value)
    assert "\n" not in message and 'stride_on="3x3" (torchvision/timm, v1.5)' in message
    assert 'stride_on="1x1" (paper v1)' in message
    # Told v1.5: equal to the reference; num_classes comes from fc.weight; str paths work too.
    chosen = build_model("resnet50", weights=str(folder / f"tv{suffix}"), stride_on="3x3")
    torch.testing.assert_close(_logits(chosen), logits, rtol=1e-5, atol=1e-5)
    assert chosen.layer2[0].conv2.stride == (2, 2) and chosen.layer2[0].conv1.stride == (1, 1)
    # Told v1: that is what the user asked for, and it is built so.
    v1 = build_model("resnet50", weights=folder / f"tv{suffix}", stride_on="1x1")
    assert v1.layer2[0].conv1.stride == (2, 2)


def test_build_model_missing_file_and_basic_nets(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights file"):
        build_model("resnet50", weights=tmp_path / "absent.pt", stride_on="3x3")
    torch.manual_seed(0)
    r18 = _randomise_bn(build_model("resnet18", num_classes=4))
    torch.save(r18.state_dict(), tmp_path / "r18.pt")
    # Basic blocks have no 1x1 to move the stride to: no choice needed.
    torch.testing.assert_close(_logits(build_model("resnet18", weights=tmp_path / "r18.pt")), _logits(r18))
    assert not is_bottleneck("resnet18") and not is_bottleneck("resnet20") and is_bottleneck("plain101")


def test_import_requires_the_choice_and_records_it(v15, tmp_path):
    folder, logits = v15
    with pytest.raises(
        StrideChoiceError, match=r"choose --stride-on 3x3 \(torchvision/timm, v1\.5\) or --stride-on 1x1 \(paper v1\)"
    ):
        import_weights(folder / "tv.pth", "resnet50", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    import_weights(folder / "tv.pth", "resnet50", tmp_path / "v15.pt", stride_on="3x3")
    loaded = load_any(tmp_path / "v15.pt")
    assert loaded.options["stride_on"] == "3x3"
    torch.testing.assert_close(_logits(loaded.model), logits, rtol=1e-5, atol=1e-5)
    # Our own files record their layout: build_model and a re-import follow it without being told...
    torch.testing.assert_close(
        _logits(build_model("resnet50", weights=tmp_path / "v15.pt")), logits, rtol=1e-5, atol=1e-5
    )
    st = export_weights(tmp_path / "v15.pt", tmp_path / "v15.safetensors")
    torch.testing.assert_close(_logits(build_model("resnet50", weights=st)), logits, rtol=1e-5, atol=1e-5)
    again = import_weights(st, "resnet50", tmp_path / "again.pt")
    assert again.options["stride_on"] == "3x3"
    # ...and refuse a contradicting choice.
    with pytest.raises(ValueError, match="records stride_on='3x3'"):
        build_model("resnet50", weights=tmp_path / "v15.pt", stride_on="1x1")
    with pytest.raises(ValueError, match="built with stride_on=3x3; drop --stride-on 1x1"):
        import_weights(st, "resnet50", tmp_path / "bad.pt", stride_on="1x1")
    with pytest.raises(ValueError, match="holds resnet50 weights, not resnet101"):
        build_model("resnet101", weights=tmp_path / "v15.pt")


def test_cli_weights_import_stops_with_one_line_then_builds_v15(v15, tmp_path, capsys):
    folder, logits = v15
    out = tmp_path / "c.pt"
    assert main(["weights", "import", str(folder / "tv.pth"), "--model", "resnet50", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--stride-on 3x3 (torchvision/timm, v1.5)" in err
    assert "--stride-on 1x1 (paper v1)" in err and not out.exists()
    assert (
        main(
            [
                "weights",
                "import",
                str(folder / "tv.pth"),
                "--model",
                "resnet50",
                "--stride-on",
                "3x3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    torch.testing.assert_close(_logits(load_any(out).model), logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_eval_and_predict_on_a_foreign_file_say_what_to_run(v15, tmp_path, capsys, suffix):
    folder, _ = v15
    path = folder / f"tv{suffix}"
    with pytest.raises(ValueError) as caught:
        load_any(path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"resnetlab weights import {path} --model resnet50 --stride-on 3x3" in message
    assert "(torchvision/timm, v1.5) or `--stride-on 1x1` (paper v1)" in message
    for command in (["predict", str(path), str(tmp_path)], ["eval", str(path)]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert "--stride-on 3x3" in err and "--stride-on 1x1" in err


def test_foreign_basic_net_message_needs_no_stride(tmp_path):
    torch.save(build_model("resnet34").state_dict(), tmp_path / "r34.pt")
    with pytest.raises(ValueError, match=r"weights import .*r34.pt --model resnet34 --out CKPT") as caught:
        load_any(tmp_path / "r34.pt")
    assert "stride" not in str(caught.value)
    assert guess_architecture(build_model("plain50").state_dict()) == "plain50"
    assert guess_architecture(build_model("resnet152").state_dict()) == "resnet152"
    assert guess_architecture(build_model("resnet20").state_dict()) is None


def test_own_files_record_the_default_layout_explicitly(tmp_path):
    model = build_model("resnet50", num_classes=3)
    payload = model_payload(model, "resnet50", {"num_classes": 3}, "abc", imagenet_preprocess())
    assert payload["arch"]["options"] == {"num_classes": 3, "stride_on": "1x1"}
    assert model_payload(build_model("resnet18"), "resnet18", {}, [], imagenet_preprocess())["arch"]["options"] == {}
    assert explicit_layout("resnet20", {"depth": 20}) == {"depth": 20}
    # A file written before stride_on was recorded (options {}) was built v1, and loads as v1.
    old = {
        **model_payload(model, "resnet50", {}, "abc", imagenet_preprocess()),
        "arch": {"name": "resnet50", "options": {"num_classes": 3}},
    }
    save_checkpoint(tmp_path / "old.pt", old)
    assert torch.load(tmp_path / "old.pt", weights_only=True)["format"] == FORMAT
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.options == {"num_classes": 3, "stride_on": "1x1"}
    assert loaded.model.layer2[0].conv1.stride == (2, 2)
    st = export_weights(tmp_path / "old.pt", tmp_path / "old.safetensors")
    from safetensors import safe_open

    with safe_open(str(st), framework="pt") as handle:
        assert '"stride_on": "1x1"' in handle.metadata()["arch"]
    assert build_model("resnet50", weights=st).layer2[0].conv1.stride == (2, 2)


@pytest.mark.parametrize("name", ["resnet50", "resnet18"])
def test_torchvision_weights_through_build_model(name, tmp_path):
    """Against torchvision's own definition, where it imports (skipped where absent or broken)."""
    if torchvision_ops() is None:
        pytest.skip("torchvision not installed or unusable")
    import torchvision.models as models

    torch.manual_seed(0)
    reference = _randomise_bn(getattr(models, name)(weights=None))
    torch.save(reference.state_dict(), tmp_path / "tv.pth")
    with torch.no_grad():
        expected = reference(X)
    if is_bottleneck(name):
        with pytest.raises(StrideChoiceError):
            build_model(name, weights=tmp_path / "tv.pth")
        v1 = build_model(name, weights=tmp_path / "tv.pth", stride_on="1x1")
        assert not torch.allclose(_logits(v1), expected, atol=1e-3)
        ours = build_model(name, weights=tmp_path / "tv.pth", stride_on="3x3")
    else:
        ours = build_model(name, weights=tmp_path / "tv.pth")
    torch.testing.assert_close(_logits(ours), expected, rtol=1e-5, atol=1e-5)
