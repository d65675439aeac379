"""Parameters, multiply-adds and depth, measured on the real module by tracing one forward pass.

Multiply-adds count convolutions and fully connected layers, as the paper's FLOPs do (Table 1 counts
multiply-adds; BN, ReLU, pooling and additions are negligible and left out, as is customary).
Depth counts weighted layers on the main path: shortcut projections do not add depth (Sec. 3.3).
``summary_row`` is one network's row of ``resnetlab models`` / ``summary``: the measured counts
beside the paper's; ``check_input_size`` refuses a side the network cannot take.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Complexity:
    name: str
    params: int
    macs: int
    depth: int
    input_size: int

    def as_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_depth(model: nn.Module) -> int:
    """Weighted layers (conv + fc) outside shortcut projections (``downsample``)."""
    depth = 0
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and "downsample" not in name.split("."):
            depth += 1
    return depth


def count_macs(model: nn.Module, input_size: int, in_channels: int = 3) -> int:
    """Multiply-adds of one image at ``input_size`` x ``input_size``, from the real forward."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        total += output[0].numel() * per_output

    def linear_hook(module: nn.Linear, inputs, output) -> None:
        nonlocal total
        total += module.in_features * module.out_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        # Meta tensors would skip the arithmetic, but a real (tiny batch) pass is quick and also
        # exercises the model: one image is enough since every count is per image.
        with torch.no_grad():
            model(torch.zeros(1, in_channels, input_size, input_size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def measure(name: str, input_size: int | None = None, **options) -> Complexity:
    from .registry import build_model, model_info

    info = model_info(name)
    size = input_size or info.input_size
    model = build_model(name, **options)
    return Complexity(name, count_params(model), count_macs(model, size), count_depth(model), size)


def summary_row(name: str, input_size: int | None = None, **options) -> dict:
    """The measured complexity of ``name`` (``measure``) with its family, description and the
    paper's parameter and multiply-add counts (None where the paper gives none)."""
    from .registry import model_info

    info = model_info(name)
    c = measure(name, input_size, **options)
    return {
        **c.as_dict(),
        "family": info.family,
        "paper_params": info.paper_params,
        "paper_macs": info.paper_macs,
        "description": info.description,
    }


# The smallest side each family's layers can reduce without an empty feature map (VGG: five 2x2
# max-pools), and a largest one that keeps the measuring forward pass within memory.
MIN_INPUT_SIZE = {"vgg": 32}
MAX_INPUT_SIZE = 4096


def check_input_size(name: str, size: int | None) -> None:
    """Raise ValueError unless ``size`` (None: the native size) is a side ``name`` can measure."""
    if size is None:
        return
    from .registry import model_info

    low = MIN_INPUT_SIZE.get(model_info(name).family, 1)
    if not low <= size <= MAX_INPUT_SIZE:
        raise ValueError(f"--input-size must be between {low} and {MAX_INPUT_SIZE} for {name}, got {size}")
