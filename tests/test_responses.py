"""Fig. 7 layer responses: hook stds against a hand computation, streaming merge, checkpoint path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnetlab.analysis.responses import RunningMoments, layer_response_stds, plot_responses, run_response_stds
from resnetlab.checkpoints.checkpoint import model_payload, save_checkpoint
from resnetlab.data.preprocess import Preprocess
from resnetlab.models import build_model


def tiny_model(residual: bool = True) -> nn.Module:
    """A depth-8 CIFAR net whose BN layers hold non-trivial running statistics and affine terms."""
    torch.manual_seed(0)
    model = build_model("resnet20" if residual else "plain20", depth=8)
    g = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(0.3 * torch.randn(c, generator=g))
            module.running_var.copy_(0.5 + torch.rand(c, generator=g))
            module.weight.data.copy_(0.5 + torch.rand(c, generator=g))
            module.bias.data.copy_(0.2 * torch.randn(c, generator=g))
    return model.eval()


def bn_by_hand(y: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    return (y - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps) * bn.weight.view(
        shape
    ) + bn.bias.view(shape)


def images(n: int = 23) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(2))


def test_first_layers_match_a_hand_computation():
    model, x = tiny_model(), images()
    stds = layer_response_stds(model, x, batch_size=5)  # uneven batches: 5+5+5+5+3
    with torch.no_grad():
        # Stem: 3x3 conv -> BN (the response) -> ReLU.
        r0 = bn_by_hand(F.conv2d(x, model.conv1.weight, padding=1), model.bn1)
        block = model.layer1[0]
        # First block: conv -> BN (response) -> ReLU -> conv -> BN (response, before the addition).
        r1 = bn_by_hand(F.conv2d(F.relu(r0), block.conv1.weight, padding=1), block.bn1)
        r2 = bn_by_hand(F.conv2d(F.relu(r1), block.conv2.weight, padding=1), block.bn2)
    for name, r in (("bn1", r0), ("layer1.0.bn1", r1), ("layer1.0.bn2", r2)):
        expected = r.double().std(unbiased=False).item()
        assert stds[name] == pytest.approx(expected, rel=1e-5), name
    # The addition comes after the measured point: the block's output has another spread.
    with torch.no_grad():
        block_out = F.relu(r2 + F.relu(r0))
    assert block_out.std().item() != pytest.approx(stds["layer1.0.bn2"], rel=1e-2)


@pytest.mark.parametrize("residual", [True, False])
def test_every_layer_matches_the_stored_outputs(residual):
    model, x = tiny_model(residual), images()
    stds = layer_response_stds(model, x, batch_size=4)
    outputs: dict[str, list[torch.Tensor]] = {}
    handles = [
        bn.register_forward_hook(lambda m, i, o, name=name: outputs.setdefault(name, []).append(o.clone()))
        for name, bn in model.response_layers()
    ]
    with torch.no_grad():
        model(x)  # one batch: nothing to merge
    for h in handles:
        h.remove()
    assert list(stds) == [name for name, _ in model.response_layers()]
    assert len(stds) == 7  # stem + 3 stages x 1 block x 2 convs
    for name, (out,) in outputs.items():
        assert stds[name] == pytest.approx(out.double().std(unbiased=False).item(), rel=1e-6)
    assert model.training is False


def test_running_moments_merge_equals_one_pass():
    values = torch.randn(1000, generator=torch.Generator().manual_seed(3)) * 3 + 7
    m = RunningMoments()
    for chunk in (values[:1], values[1:400], values[400:401], values[401:]):
        m.add(chunk)
    assert m.n == 1000
    assert m.mean == pytest.approx(values.double().mean().item(), rel=1e-12)
    assert m.std == pytest.approx(values.double().std(unbiased=False).item(), rel=1e-12)
    assert math.isnan(RunningMoments().std)


def test_run_response_stds_uses_the_final_checkpoint(tmp_path):
    model = tiny_model()
    mean = torch.full((3, 1, 1), 0.5)
    preprocess = Preprocess(input_size=16, resize="none", resize_to=16, mean_image=mean)
    save_checkpoint(
        tmp_path / "checkpoints" / "last.pt",
        model_payload(model, "resnet20", {"depth": 8}, [str(i) for i in range(10)], preprocess, 8),
    )
    raw = torch.randint(0, 256, (9, 3, 16, 16), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    result = run_response_stds(tmp_path, raw, batch_size=4)
    expected = layer_response_stds(model, raw.float() / 255 - 0.5)
    assert result["layers"] == list(expected) and result["iteration"] == 8 and result["images"] == 9
    assert result["std"] == pytest.approx(list(expected.values()), rel=1e-5)
    png = plot_responses({"resnet20": result, "plain20": {"std": [s * 2 for s in result["std"]]}}, tmp_path / "f.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_model_without_response_layers_is_refused():
    with pytest.raises(ValueError, match="response_layers"):
        layer_response_stds(nn.Conv2d(3, 3, 1), images(2))
