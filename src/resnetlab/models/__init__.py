"""Every network of the paper, from one set of parts.

The weights API of the torchvision kind is importable from here too (``get_weights``, ``Weights``,
``list_weights``, ``load_weights``, ``save_weights``), but lives in ``checkpoints/`` with everything
else that goes to disk; the names resolve on first use (PEP 562), so that ``models/`` never imports
``checkpoints/`` at load time (``checkpoints/`` builds networks, and imports ``models/``).
"""

from __future__ import annotations

import importlib
from typing import Any

from .blocks import BasicBlock, Bottleneck, Projection, ResidualBlock, ShortcutA, make_shortcut
from .complexity import Complexity, count_depth, count_macs, count_params, measure
from .registry import ModelInfo, build_model, list_models, model_info, register_model
from .resnet import ResNet, ResNetConfig, cifar_resnet, imagenet_resnet
from .vgg import VGG

# name -> the checkpoints module that defines it
_WEIGHTS_API = {
    "Weights": "pretrained",
    "get_weights": "pretrained",
    "list_weights": "pretrained",
    "load_weights": "interop",
    "save_weights": "interop",
}


def __getattr__(name: str) -> Any:
    if name in _WEIGHTS_API:
        module = importlib.import_module(f"..checkpoints.{_WEIGHTS_API[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WEIGHTS_API])


__all__ = [
    "VGG",
    "BasicBlock",
    "Bottleneck",
    "Complexity",
    "ModelInfo",
    "Projection",
    "ResNet",
    "ResNetConfig",
    "ResidualBlock",
    "ShortcutA",
    "Weights",
    "build_model",
    "cifar_resnet",
    "count_depth",
    "count_macs",
    "count_params",
    "get_weights",
    "imagenet_resnet",
    "list_models",
    "list_weights",
    "load_weights",
    "make_shortcut",
    "measure",
    "model_info",
    "register_model",
    "save_weights",
]
