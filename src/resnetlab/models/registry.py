"""One registry of named networks: ``build_model``, ``list_models``, ``model_info``.

Each entry is a small builder over ``imagenet_resnet``/``cifar_resnet``/``VGG`` plus the paper's
figures for it (Table 1, Table 6), which ``resnetlab models`` prints beside the measured ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .resnet import cifar_resnet, imagenet_resnet
from .vgg import VGG


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str  # "imagenet" | "cifar" | "vgg"
    builder: Callable[..., nn.Module]
    input_size: int  # the native resolution the paper's figures are stated at
    paper_params: float | None = None  # as printed in the paper, e.g. 0.27e6
    paper_macs: float | None = None  # multiply-adds, e.g. 1.8e9
    description: str = ""

    @property
    def options(self) -> list[str]:
        """Keyword arguments the builder accepts."""
        return [p.name for p in inspect.signature(self.builder).parameters.values() if p.kind is p.KEYWORD_ONLY]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> ModelInfo:
    if info.name in _REGISTRY:
        raise ValueError(f"model {info.name!r} is already registered")
    _REGISTRY[info.name] = info
    return info


def list_models(family: str | None = None) -> list[str]:
    return [name for name, info in _REGISTRY.items() if family in (None, info.family)]


def model_info(name: str) -> ModelInfo:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def build_model(name: str, weights=None, **options) -> nn.Module:
    """Build a registered network, e.g. ``build_model("resnet50", stride_on="3x3")``.

    ``weights``: shipped trained weights to load, by data set (``build_model("resnet20",
    weights="cifar10")``), full name (``"resnet20.cifar10"``) or a ``Weights`` object from
    ``get_weights``; the options must then be those the weights were trained with.

    ``weights`` may also be a file (a ``Path``, or a string ending in ``.pt``/``.pth``/
    ``.safetensors`` or containing a ``/``): a resnetlab file is built with the options it
    records (given options must agree); a foreign (torchvision/timm) state dict of a bottleneck
    net (resnet50/101/152) needs ``stride_on`` given, "3x3" for torchvision/timm (v1.5) or "1x1"
    for the paper's v1, since the weights alone cannot tell the two apart.
    """
    info = model_info(name)
    valid = info.options
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {name}; valid options: {', '.join(valid)}")
    if weights is None:
        return info.builder(**options)
    from ..checkpoints.interop import is_weights_path, load_weights_file

    if is_weights_path(weights):
        return load_weights_file(name, weights, options)
    from ..checkpoints.pretrained import load_into, resolve_weights

    chosen = resolve_weights(name, weights)
    trained = dict(chosen.meta.get("model_options", {}))
    clashing = sorted(k for k, v in options.items() if trained.get(k, _default_option(info, k)) != v)
    if clashing:
        raise ValueError(
            f"weights {chosen.name} were trained with {', '.join(f'{k}={trained.get(k, _default_option(info, k))!r}' for k in clashing)}; "
            f"drop or change these options"
        )
    return load_into(info.builder(**{**trained, **options}), chosen)


def _default_option(info: ModelInfo, key: str):
    return inspect.signature(info.builder).parameters[key].default


# The bottleneck stride placement every resnetlab file made without an explicit ``stride_on`` was
# built with (the builders' default since the first commit): the paper's v1. Files record it
# explicitly from now on (``explicit_layout``), so a future change of the builder default could
# never flip the layout of an old file.
RECORDED_STRIDE_DEFAULT = "1x1"


def is_bottleneck(name: str) -> bool:
    """True for the ImageNet nets whose blocks are bottlenecks (resnet/plain 50, 101, 152): the
    only ones where ``stride_on`` changes the network (v1 "1x1" vs v1.5 "3x3")."""
    from .resnet import IMAGENET_DEPTHS

    info = model_info(name)
    digits = "".join(ch for ch in name if ch.isdigit())
    return (
        info.family == "imagenet"
        and digits.isdigit()
        and IMAGENET_DEPTHS.get(int(digits), ("basic",))[0] == "bottleneck"
    )


def explicit_layout(name: str, options: dict) -> dict:
    """``options`` with the bottleneck stride placement written out (``stride_on`` of a
    bottleneck net defaults to the recorded "1x1"); other nets' options are returned unchanged."""
    options = dict(options)
    if is_bottleneck(name):
        options.setdefault("stride_on", RECORDED_STRIDE_DEFAULT)
    return options


# --- builders -------------------------------------------------------------------------------
# Keyword-only signatures double as the list of valid options for each family.


def _imagenet(depth: int, residual: bool) -> Callable[..., nn.Module]:
    def build(
        *,
        shortcut: str = "B",
        stride_on: str = "1x1",
        zero_init_last_bn: bool = False,
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> nn.Module:
        return imagenet_resnet(
            depth,
            residual=residual,
            shortcut=shortcut,
            stride_on=stride_on,
            zero_init_last_bn=zero_init_last_bn,
            num_classes=num_classes,
            in_channels=in_channels,
        )

    return build


def _cifar(depth: int | None, residual: bool) -> Callable[..., nn.Module]:
    def build(
        *,
        depth: int | None = depth,
        shortcut: str = "A",
        zero_init_last_bn: bool = False,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> nn.Module:
        if depth is None:
            raise ValueError("cifar_resnet/cifar_plain need depth=6n+2, e.g. depth=74")
        return cifar_resnet(
            depth,
            residual=residual,
            shortcut=shortcut,
            zero_init_last_bn=zero_init_last_bn,
            num_classes=num_classes,
            in_channels=in_channels,
        )

    return build


def _vgg(depth: int) -> Callable[..., nn.Module]:
    def build(*, num_classes: int = 1000, dropout: float = 0.5) -> nn.Module:
        return VGG(depth, num_classes=num_classes, dropout=dropout)

    return build


# Table 1: multiply-adds of the v1 (paper) networks; parameters of option B as torchvision counts.
_IMAGENET_PAPER = {
    18: (11_689_512, 1.8e9),
    34: (21_797_672, 3.6e9),
    50: (25_557_032, 3.8e9),
    101: (44_549_160, 7.6e9),
    152: (60_192_808, 11.3e9),
}
# Table 6: parameters as the paper rounds them.
_CIFAR_PAPER = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6, 1202: 19.4e6}

for _depth, (_params, _macs) in _IMAGENET_PAPER.items():
    register_model(
        ModelInfo(
            f"resnet{_depth}",
            "imagenet",
            _imagenet(_depth, True),
            224,
            _params,
            _macs,
            f"ImageNet ResNet-{_depth} (Table 1)",
        )
    )
for _depth in _IMAGENET_PAPER:
    # A plain net has no projection shortcuts, so the option-B parameter count does not apply; the
    # paper states plain-18/34 have the FLOPs of ResNet-18/34 (equal to option A, which has no
    # projections) and gives no figure for deeper plain nets.
    _macs = _IMAGENET_PAPER[_depth][1] if _depth in (18, 34) else None
    register_model(
        ModelInfo(
            f"plain{_depth}",
            "imagenet",
            _imagenet(_depth, False),
            224,
            None,
            _macs,
            f"ImageNet plain-{_depth}: ResNet-{_depth} without shortcuts",
        )
    )
for _depth, _params in _CIFAR_PAPER.items():
    register_model(
        ModelInfo(
            f"resnet{_depth}",
            "cifar",
            _cifar(_depth, True),
            32,
            _params,
            None,
            f"CIFAR-10 ResNet-{_depth}, n={(_depth - 2) // 6} (Sec. 4.2, Table 6)",
        )
    )
for _depth in (20, 32, 44, 56, 110):
    register_model(
        ModelInfo(
            f"plain{_depth}",
            "cifar",
            _cifar(_depth, False),
            32,
            _CIFAR_PAPER[_depth],
            None,
            f"CIFAR-10 plain-{_depth} (Fig. 6 left)",
        )
    )
register_model(
    ModelInfo(
        "cifar_resnet",
        "cifar",
        _cifar(None, True),
        32,
        None,
        None,
        "CIFAR ResNet of any depth 6n+2 (depth=...)",
    )
)
register_model(
    ModelInfo(
        "cifar_plain",
        "cifar",
        _cifar(None, False),
        32,
        None,
        None,
        "CIFAR plain net of any depth 6n+2 (depth=...)",
    )
)
register_model(ModelInfo("vgg16", "vgg", _vgg(16), 224, None, 15.3e9, "VGG-16, Table 1 baseline"))
register_model(ModelInfo("vgg19", "vgg", _vgg(19), 224, None, 19.6e9, "VGG-19, Table 1 baseline"))
