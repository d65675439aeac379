"""ResNets and their plain counterparts, drawn as the paper draws them: stem, stages, head.

One class builds both families. The ImageNet family (Table 1) has a 7x7/2 stem with a 3x3/2 max
pool and four stages; the CIFAR family (Sec. 4.2) has a 3x3 stem with 16 filters and three stages of
{16, 32, 64} filters. Stages after the first halve the map in their first block (conv3_1, conv4_1,
conv5_1 in Table 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import SHORTCUTS, STRIDE_ON, BasicBlock, Bottleneck, ResidualBlock

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
STEMS = ("imagenet", "cifar")
MAX_STAGES = 4  # conv2_x .. conv5_x of Table 1


@dataclass(frozen=True)
class ResNetConfig:
    """Every knob of the paper, defaulted to the paper's ImageNet setting."""

    block: str
    stage_depths: tuple[int, ...]
    stage_widths: tuple[int, ...]
    stem: str = "imagenet"
    stem_width: int = 64
    shortcut: str = "B"
    residual: bool = True
    stride_on: str = "1x1"
    zero_init_last_bn: bool = False
    num_classes: int = 1000
    in_channels: int = 3

    def __post_init__(self) -> None:
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {tuple(BLOCKS)}, got {self.block!r}")
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {self.stem!r}")
        if self.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}")
        if self.stride_on not in STRIDE_ON:
            raise ValueError(f"stride_on must be one of {STRIDE_ON}, got {self.stride_on!r}")
        for key in ("residual", "zero_init_last_bn"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key} must be True or False, got {getattr(self, key)!r}")
        for key in ("num_classes", "in_channels", "stem_width"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if len(self.stage_depths) != len(self.stage_widths) or not 1 <= len(self.stage_depths) <= MAX_STAGES:
            raise ValueError(f"stage_depths and stage_widths must have equal length, 1 to {MAX_STAGES}")
        if any(d < 1 for d in self.stage_depths):
            raise ValueError(f"every stage needs at least one block, got {self.stage_depths}")
        if self.zero_init_last_bn and not self.residual:
            # A zero last BN makes every plain block output zero: the net could not learn.
            raise ValueError("zero_init_last_bn requires residual=True")


class ResNet(nn.Module):
    """Stem -> stages (``layer1``..``layerN``) -> head (global average pool, ``fc``)."""

    __jit_unused_properties__ = ["stages"]  # noqa: RUF012 (TorchScript reads this exact list)

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        block = BLOCKS[config.block]

        # Stem. Attributes sit on the model itself (not in a sub-module) to keep checkpoint keys
        # ``conv1.weight``/``bn1.*`` as everyone else's ResNet checkpoints have them.
        if config.stem == "imagenet":
            self.conv1 = nn.Conv2d(config.in_channels, config.stem_width, 7, 2, 3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(config.in_channels, config.stem_width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(config.stem_width)
        self.relu = nn.ReLU(inplace=True)

        channels = config.stem_width
        self.stage_names: list[str] = []
        for index, (depth, width) in enumerate(zip(config.stage_depths, config.stage_widths)):
            stride = 1 if index == 0 else 2
            blocks = []
            for position in range(depth):
                blocks.append(
                    block(
                        channels,
                        width,
                        stride if position == 0 else 1,
                        shortcut=config.shortcut,
                        residual=config.residual,
                        stride_on=config.stride_on,
                    )
                )
                channels = width * block.expansion
            name = f"layer{index + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
        # Nets with fewer stages (CIFAR: 3) get parameter-free identities in the remaining slots,
        # so forward() is one fixed chain that TorchScript and export can compile.
        for index in range(len(config.stage_depths), MAX_STAGES):
            self.add_module(f"layer{index + 1}", nn.Identity())

        # Head: global average pooling makes the net fully convolutional up to the classifier, so
        # any input size works (multi-scale testing at 224..640, Sec. 3.4).
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, config.num_classes)
        self.num_features = channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation (Sec. 3.4, ref. [13]); BN starts as the identity transform."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # [13] Eq. 10, the "forward" case: std = sqrt(2 / (k * k * in_channels)).
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1 / math.sqrt(module.in_features)
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.uniform_(module.bias, -bound, bound)
        if self.config.zero_init_last_bn:
            # Goyal et al. (2017): each residual block starts as the identity. Not in the paper.
            for module in self.modules():
                if isinstance(module, ResidualBlock):
                    nn.init.zeros_(module.last_bn.weight)

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, name) for name in self.stage_names]

    def response_layers(self) -> list[tuple[str, nn.BatchNorm2d]]:
        """The BN layers right after each 3x3 conv, in network order (Fig. 7)."""
        layers = []
        if self.config.stem == "cifar":
            layers.append(("bn1", self.bn1))
        names = {module: name for name, module in self.named_modules()}
        for stage in self.stages:
            for block in stage:
                layers.extend((names[bn], bn) for bn in block.response_layers())
        return layers

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (before pooling), e.g. for detection or score maps."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.forward_features(x))
        return self.fc(torch.flatten(x, 1))


IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def imagenet_resnet(depth: int, *, residual: bool = True, **knobs) -> ResNet:
    """A Table 1 network: ``depth`` in 18/34/50/101/152."""
    if depth not in IMAGENET_DEPTHS:
        raise ValueError(f"ImageNet depth must be one of {sorted(IMAGENET_DEPTHS)}, got {depth}")
    block, depths = IMAGENET_DEPTHS[depth]
    config = ResNetConfig(
        block=block,
        stage_depths=depths,
        stage_widths=(64, 128, 256, 512),
        stem="imagenet",
        stem_width=64,
        residual=residual,
        **knobs,
    )
    return ResNet(config)


def cifar_resnet(depth: int, *, residual: bool = True, **knobs) -> ResNet:
    """The CIFAR-10 network of Sec. 4.2: depth 6n+2, three stages of n basic blocks."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"CIFAR depth must be 6n+2 (8, 14, 20, 26, 32, 38, 44, 50, 56, ..., 110, ..., 1202), got {depth!r}"
        )
    n = (depth - 2) // 6
    knobs.setdefault("shortcut", "A")  # Sec. 4.2: option A everywhere on CIFAR
    knobs.setdefault("num_classes", 10)
    config = ResNetConfig(
        block="basic",
        stage_depths=(n, n, n),
        stage_widths=(16, 32, 64),
        stem="cifar",
        stem_width=16,
        residual=residual,
        **knobs,
    )
    return ResNet(config)
