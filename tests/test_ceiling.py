"""The CPU side of benchmarks/ceiling.py: the stripped networks lose exactly their batch norm (and
ReLU) layers, keep every convolution, and still train a step with a finite loss."""

import sys
from pathlib import Path

import torch
import torch.nn as nn

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import ceiling  # noqa: E402
from fusion import make_step  # noqa: E402


def count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_stripping_removes_batch_norm_and_relu_and_keeps_the_convolutions() -> None:
    from resnetlab.models import build_model

    full = build_model("resnet20")
    no_bn = ceiling.strip(("bn",))(build_model("resnet20"))
    convs_only = ceiling.strip(("bn", "relu"))(build_model("resnet20"))
    assert count(full, nn.BatchNorm2d) == 19 and count(full, nn.ReLU) > 0
    assert count(no_bn, nn.BatchNorm2d) == 0 and count(no_bn, nn.ReLU) == count(full, nn.ReLU)
    assert count(convs_only, nn.BatchNorm2d) == count(convs_only, nn.ReLU) == 0
    assert count(convs_only, nn.Conv2d) == count(full, nn.Conv2d) == 19
    x = torch.randn(2, 3, 32, 32)
    assert convs_only(x).shape == full(x).shape == (2, 10)


def test_a_stripped_step_at_learning_rate_zero_keeps_the_weights_and_a_finite_loss() -> None:
    step = make_step(torch, "resnet20", "fp32", False, transform=ceiling.strip(("bn", "relu")), lr=0.0)
    losses = [float(step()) for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[0] == losses[1]  # lr 0: the SGD step is computed but changes nothing
