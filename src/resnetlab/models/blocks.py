"""Residual building blocks and the three shortcut options of He et al. (2016), Sec. 3.3.

A block computes ``y = relu(F(x) + shortcut(x))`` (Eq. 1-2); its plain counterpart computes
``y = relu(F(x))``: the same layers with the shortcut removed, so plain and residual nets have the
same depth, width and multiply-adds (Sec. 3.3, "Plain Network").

Attribute names follow the layout of the ecosystem's checkpoints (``conv1``, ``bn1``, ...,
``downsample.0/1``) so torchvision/timm ResNet weights load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHORTCUTS = ("A", "B", "C")
STRIDE_ON = ("1x1", "3x3")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    # No conv bias anywhere: BN follows every convolution (Sec. 3.4) and would cancel it.
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class ShortcutA(nn.Module):
    """Option A: identity with zero-padded extra channels; parameter-free (Sec. 3.3, Table 3).

    When the feature map halves, the identity "is performed with a stride of 2", i.e. it keeps
    every second pixel. The kept channels come first and the new ones are zeros, so the block adds
    nothing to the output channels it does not compute itself. A module rather than a lambda so that
    models pickle, script and export.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A cannot reduce channels ({in_channels} -> {out_channels}); use B or C")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra:
            x = F.pad(x, (0, 0, 0, 0, 0, extra))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}->{self.out_channels}, stride={self.stride}"


class Projection(nn.Sequential):
    """Options B/C: the projection shortcut ``W_s x`` (Eq. 2), a strided 1x1 conv followed by BN."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


def make_shortcut(option: str, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The shortcut of one block, or ``None`` for a pure identity.

    A: identity, zero-padding where dimensions increase. B: projection only where dimensions
    increase. C: projection on every shortcut (Table 3).
    """
    increases = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and increases):
        return Projection(in_channels, out_channels, stride)
    if option == "A" and increases:
        return ShortcutA(in_channels, out_channels, stride)
    if option not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {option!r}")
    return None


class ResidualBlock(nn.Module):
    """What basic and bottleneck blocks share: ``y = relu(F(x) + shortcut(x))`` (Eq. 1-2), or
    ``y = relu(F(x))`` with ``residual=False`` (the plain net of Sec. 3.3).

    A subclass builds its layers, then calls ``_add_shortcut`` last, so that ``downsample`` comes
    after them in the state dict as in torchvision's files; it defines ``residual_function`` (F)
    and names its last BN (``last_bn_name``: zero-initialised by ``zero_init_last_bn``) and the BN
    layers whose outputs Fig. 7 plots (``response_names``).
    """

    expansion = 1
    last_bn_name = ""
    response_names: tuple[str, ...] = ()
    __jit_unused_properties__ = ["last_bn"]  # noqa: RUF012 (TorchScript reads this exact list)

    def _add_shortcut(self, option: str, in_channels: int, out_channels: int, stride: int, residual: bool) -> None:
        self.residual = residual
        self.downsample = make_shortcut(option, in_channels, out_channels, stride) if residual else None

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return getattr(self, self.last_bn_name)

    def response_layers(self) -> list[nn.BatchNorm2d]:
        """BN layers that close a 3x3 convolution: the responses plotted in Fig. 7."""
        return [getattr(self, name) for name in self.response_names]

    def residual_function(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual_function(x)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions (Fig. 5 left): ResNet-18/34 and every CIFAR net."""

    expansion = 1
    last_bn_name = "bn2"
    response_names = ("bn1", "bn2")

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        *,
        shortcut: str = "B",
        residual: bool = True,
        stride_on: str = "1x1",
    ) -> None:
        super().__init__()
        del stride_on  # only bottlenecks have a 1x1 to move the stride to
        out_channels = width * self.expansion
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self._add_shortcut(shortcut, in_channels, out_channels, stride, residual)

    def residual_function(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))


class Bottleneck(ResidualBlock):
    """1x1 reduce -> 3x3 -> 1x1 restore to 4x width (Fig. 5 right): ResNet-50/101/152.

    The paper (v1) strides the first 1x1 conv; torchvision (v1.5) strides the 3x3, which costs more
    multiply-adds and gains about 0.5% top-1. ``stride_on`` selects between them.
    """

    expansion = 4
    last_bn_name = "bn3"
    response_names = ("bn2",)

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        *,
        shortcut: str = "B",
        residual: bool = True,
        stride_on: str = "1x1",
    ) -> None:
        super().__init__()
        if stride_on not in STRIDE_ON:
            raise ValueError(f"stride_on must be one of {STRIDE_ON}, got {stride_on!r}")
        out_channels = width * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_on == "1x1" else (1, stride)
        self.conv1 = conv1x1(in_channels, width, stride_1x1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride_3x3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self._add_shortcut(shortcut, in_channels, out_channels, stride, residual)

    def residual_function(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))
