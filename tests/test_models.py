"""Every registered network: builds, runs, trains, pickles, scripts; the paper's knobs behave."""

from __future__ import annotations

import io
import math
import re

import pytest
import torch

from resnetlab.models import ShortcutA, build_model, list_models, model_info
from resnetlab.models.blocks import BasicBlock, Bottleneck, Projection

ALL = [n for n in list_models() if n not in ("cifar_resnet", "cifar_plain")]
# Small inputs keep the sweep fast; global average pooling makes any size valid.
SWEEP_SIZE = {"imagenet": 64, "vgg": 32, "cifar": 32}


@pytest.mark.parametrize("name", ALL)
def test_registry_sweep(name: str) -> None:
    torch.manual_seed(0)
    info = model_info(name)
    model = build_model(name, num_classes=7)
    x = torch.randn(2, 3, SWEEP_SIZE[info.family], SWEEP_SIZE[info.family])
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad[:5]}"
    # The whole module pickles (option A is a module, not a lambda).
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    clone = torch.load(buffer, weights_only=False)
    model.eval(), clone.eval()
    torch.testing.assert_close(clone(x), model(x))


@pytest.mark.parametrize("name", ["resnet20", "plain20", "resnet50", "vgg16"])
def test_torchscript_matches_eager(name: str) -> None:
    model = build_model(name, num_classes=5).eval()
    x = torch.randn(1, 3, 32 if name.endswith("20") else 64, 32 if name.endswith("20") else 64)
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), model(x))


def test_torch_export_runs() -> None:
    model = build_model("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


@pytest.mark.parametrize("size", [224, 256, 384, 480, 640, 33])
def test_any_input_size(size: int) -> None:
    model = build_model("resnet18", num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 3)


def test_option_a_is_identity_on_kept_channels_and_zero_elsewhere() -> None:
    shortcut = ShortcutA(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert torch.count_nonzero(y[:, 16:]) == 0
    assert sum(p.numel() for p in shortcut.parameters()) == 0
    # Same size: exactly the identity.
    same = ShortcutA(16, 16, stride=1)
    assert torch.equal(same(x), x)


def test_shortcut_options_place_projections_as_table3() -> None:
    def shortcuts(model):
        return [type(b.downsample).__name__ for stage in model.stages for b in stage]

    a = shortcuts(build_model("resnet34", shortcut="A"))
    b = shortcuts(build_model("resnet34", shortcut="B"))
    c = shortcuts(build_model("resnet34", shortcut="C"))
    # A: zero-padding only where dimensions increase (first block of stages 2-4).
    assert a.count("ShortcutA") == 3 and a.count("NoneType") == 13
    # B: projections only there; identity elsewhere.
    assert b.count("Projection") == 3 and b.count("NoneType") == 13
    # C: projections everywhere.
    assert c == ["Projection"] * 16
    # Plain nets have no shortcut at all.
    assert set(shortcuts(build_model("plain34"))) == {"NoneType"}


def test_cifar_nets_use_option_a_and_plain_has_same_parameters() -> None:
    res, plain = build_model("resnet56"), build_model("plain56")
    assert all(isinstance(b.downsample, (ShortcutA, type(None))) for s in res.stages for b in s)
    shapes = lambda m: [(n, tuple(p.shape)) for n, p in m.named_parameters()]
    assert shapes(res) == shapes(plain)


def test_v1_and_v15_differ_only_in_stride_placement() -> None:
    v1 = build_model("resnet50", stride_on="1x1")
    v15 = build_model("resnet50", stride_on="3x3")
    assert [(n, p.shape) for n, p in v1.state_dict().items()] == [(n, p.shape) for n, p in v15.state_dict().items()]
    for name in ("layer2", "layer3", "layer4"):
        a, b = getattr(v1, name)[0], getattr(v15, name)[0]
        assert (a.conv1.stride, a.conv2.stride) == ((2, 2), (1, 1))
        assert (b.conv1.stride, b.conv2.stride) == ((1, 1), (2, 2))
    strides = lambda m: [(n, mod.stride) for n, mod in m.named_modules() if isinstance(mod, torch.nn.Conv2d)]
    differing = [n for (n, s1), (_, s2) in zip(strides(v1), strides(v15)) if s1 != s2]
    assert differing == [f"layer{i}.0.conv{j}" for i in (2, 3, 4) for j in (1, 2)]
    v15.load_state_dict(v1.state_dict())  # the same weights fit both
    x = torch.randn(1, 3, 64, 64)
    v1.eval(), v15.eval()
    assert not torch.allclose(v1(x), v15(x))


def test_residual_block_adds_shortcut_and_plain_block_does_not() -> None:
    torch.manual_seed(0)
    block = BasicBlock(8, 8, shortcut="A").eval()
    plain = BasicBlock(8, 8, residual=False).eval()
    plain.load_state_dict(block.state_dict())
    x = torch.rand(1, 8, 5, 5)  # non-negative, as after a ReLU
    f = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
    torch.testing.assert_close(block(x), torch.relu(f + x))
    torch.testing.assert_close(plain(x), torch.relu(f))


def test_zero_init_last_bn_makes_blocks_identity() -> None:
    model = build_model("resnet50", zero_init_last_bn=True).eval()
    block = model.layer1[1]
    assert isinstance(block, Bottleneck) and torch.count_nonzero(block.bn3.weight) == 0
    x = torch.rand(1, 256, 8, 8)
    torch.testing.assert_close(block(x), x)
    assert torch.count_nonzero(build_model("resnet50").layer1[1].bn3.weight) == 256


def test_he_initialisation() -> None:
    torch.manual_seed(0)
    model = build_model("resnet50")
    conv = model.layer3[0].conv2  # 3x3, 256 -> 256
    fan_in = conv.in_channels * 9
    assert math.isclose(conv.weight.std().item(), math.sqrt(2 / fan_in), rel_tol=0.02)
    assert torch.equal(model.bn1.weight, torch.ones(64)) and torch.equal(model.bn1.bias, torch.zeros(64))
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_bn_follows_every_conv_before_relu() -> None:
    model = build_model("resnet18")
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    modules = dict(model.named_modules())
    for name in names:
        bn_name = name.replace("conv", "bn") if "downsample" not in name else name[:-1] + "1"
        assert isinstance(modules[bn_name], torch.nn.BatchNorm2d), name
    assert isinstance(model.layer2[0].downsample, Projection)


def test_response_layers_are_the_bns_after_3x3_convs() -> None:
    layers = build_model("resnet20").response_layers()
    assert len(layers) == 19  # the stem conv + 18 in the blocks: every 3x3 layer of the 20
    assert layers[0][0] == "bn1" and layers[1][0] == "layer1.0.bn1" and layers[-1][0] == "layer3.2.bn2"
    assert len(build_model("resnet50").response_layers()) == 16  # one 3x3 per bottleneck


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: build_model("resnet21"), "valid names"),
        (lambda: build_model("resnet20", stride="1x1"), "valid options"),
        (lambda: build_model("resnet50", shortcut="D"), "shortcut must be one of"),
        (lambda: build_model("resnet50", stride_on="2x2"), "stride_on must be one of"),
        (lambda: build_model("cifar_resnet", depth=21), "6n+2"),
        (lambda: build_model("cifar_resnet"), "depth=6n+2"),
        (lambda: build_model("resnet20", num_classes=0), "num_classes"),
        (lambda: build_model("plain20", zero_init_last_bn=True), "zero_init_last_bn"),
        (lambda: build_model("vgg16", dropout=1.5), "dropout"),
    ],
)
def test_bad_arguments_raise_helpful_value_errors(call, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        call()


def test_any_cifar_depth_by_builder_argument() -> None:
    model = build_model("cifar_resnet", depth=74)
    assert [len(s) for s in model.stages] == [12, 12, 12]
    with pytest.raises(ValueError, match="8, 14, 20"):
        build_model("cifar_plain", depth=30)
