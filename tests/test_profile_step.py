"""The CPU side of benchmarks/profile_step.py: that a real training step's operators land in the
paper's parts (convolutions, batch norm, ReLU, additions, optimiser), whatever their timing."""

import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import profile_step  # noqa: E402


def test_operator_names_map_to_the_paper_s_parts() -> None:
    part = profile_step.part_of
    assert part("aten::convolution_backward") == part("ConvolutionBackward0") == "convolution backward"
    assert part("aten::mkldnn_convolution") == "convolution forward"
    assert part("aten::native_batch_norm_backward") == part("NativeBatchNormBackward0") == "batch norm"
    assert part("aten::clamp_min_") == part("aten::threshold_backward") == "ReLU"
    assert part("aten::addmm") == "classifier + loss"  # not an addition, though it starts like one
    assert part("aten::add") == part("AddBackward0") == "shortcut additions"
    assert part("aten::copy_") == "other"


def test_a_profiled_step_is_mostly_the_residual_network_s_own_parts() -> None:
    from resnetlab.models import build_model

    model = build_model("cifar_resnet", depth=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    totals = profile_step.parts_of_events(prof.events())
    for expected in ("convolution forward", "convolution backward", "batch norm", "ReLU", "optimiser (SGD)"):
        assert totals.get(expected, 0) > 0, expected
