"""What the reports say of bf16 training (analysis/report.py) is what torch.autocast does to a ResNet."""

import torch
import torch.nn.functional as F

from resnetlab.engine.train import autocast_for
from resnetlab.models import build_model


def test_bf16_autocast_covers_every_layer_but_keeps_weights_and_loss_fp32():
    model = build_model("resnet20").train()
    outputs: dict[str, set] = {}
    for module in model.modules():
        if not list(module.children()):
            module.register_forward_hook(lambda m, i, o: outputs.setdefault(type(m).__name__, set()).add(o.dtype))
    block = model.layer1[0]
    block.register_forward_hook(lambda m, i, o: outputs.setdefault("block (after the addition)", set()).add(o.dtype))
    with autocast_for(torch.device("cpu"), "bf16"):
        logits = model(torch.randn(2, 3, 32, 32))
        loss = F.cross_entropy(logits, torch.tensor([0, 1]))
    for name in ("Conv2d", "BatchNorm2d", "ReLU", "AdaptiveAvgPool2d", "Linear", "block (after the addition)"):
        assert outputs[name] == {torch.bfloat16}, name
    assert loss.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.bn1.running_mean.dtype == torch.float32

