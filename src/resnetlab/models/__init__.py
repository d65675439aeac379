"""Every network of the paper, from one set of parts."""

from .blocks import BasicBlock, Bottleneck, Projection, ShortcutA, make_shortcut
from .complexity import Complexity, count_depth, count_macs, count_params, measure
from .interop import load_weights, save_weights
from .pretrained import Weights, get_weights, list_weights
from .registry import ModelInfo, build_model, list_models, model_info, register_model
from .resnet import ResNet, ResNetConfig, cifar_resnet, imagenet_resnet
from .vgg import VGG

__all__ = [
    "BasicBlock", "Bottleneck", "Projection", "ShortcutA", "make_shortcut",
    "Complexity", "count_depth", "count_macs", "count_params", "measure",
    "load_weights", "save_weights", "Weights", "get_weights", "list_weights",
    "ModelInfo", "build_model", "list_models", "model_info", "register_model",
    "ResNet", "ResNetConfig", "cifar_resnet", "imagenet_resnet", "VGG",
]
