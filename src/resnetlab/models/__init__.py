"""Every network of the paper, from one set of parts."""

from .blocks import BasicBlock, Bottleneck, Projection, ResidualBlock, ShortcutA, make_shortcut
from .complexity import Complexity, count_depth, count_macs, count_params, measure
from .interop import load_weights, save_weights
from .pretrained import Weights, get_weights, list_weights
from .registry import ModelInfo, build_model, list_models, model_info, register_model
from .resnet import ResNet, ResNetConfig, cifar_resnet, imagenet_resnet
from .vgg import VGG

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
