"""save_weights / load_weights: .pt and .safetensors round trips, precise mismatch reports."""

from __future__ import annotations

import pytest
import torch

from resnetlab._optional import torchvision_ops
from resnetlab.checkpoints.interop import WeightsMismatchError
from resnetlab.models import build_model, load_weights, save_weights


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_round_trip_gives_identical_outputs(tmp_path, suffix: str) -> None:
    torch.manual_seed(0)
    source = build_model("resnet20").eval()
    source(torch.randn(4, 3, 32, 32))  # nothing changes in eval mode, but exercise the module
    path = save_weights(source, tmp_path / f"w{suffix}")
    target = build_model("resnet20").eval()
    report = load_weights(target, path)
    assert report.ok
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(source(x), target(x))


def test_mismatch_lists_missing_unexpected_and_misshaped_keys(tmp_path) -> None:
    path = save_weights(build_model("resnet20", num_classes=100), tmp_path / "w.safetensors")
    with pytest.raises(WeightsMismatchError) as error:
        load_weights(build_model("resnet32"), path)
    message = str(error.value)
    assert "missing keys" in message and "layer1.3.conv1.weight" in message
    assert "mis-shaped keys" in message and "fc.weight: checkpoint (100, 64) vs model (10, 64)" in message
    with pytest.raises(WeightsMismatchError, match="unexpected keys"):
        load_weights(build_model("cifar_resnet", depth=14), tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="must end in"):
        save_weights(build_model("resnet20"), tmp_path / "w.bin")


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_torchvision_state_dict_loads_strictly_with_the_same_outputs(name: str) -> None:
    """Runs where torchvision works (e.g. a GPU machine); skipped where it is absent or broken."""
    if torchvision_ops() is None:
        pytest.skip("torchvision not installed or unusable")
    import torchvision.models as models

    torch.manual_seed(0)
    reference = getattr(models, name)(weights=None).eval()
    ours = build_model(name, stride_on="3x3").eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)
