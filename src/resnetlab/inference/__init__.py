"""Putting trained models to work: prediction on image files, export (ONNX, TorchScript,
safetensors) verified against PyTorch, and weight interop with the torchvision/timm layout."""

from ..checkpoints.loading import load_any, save_safetensors
from ..checkpoints.weights import ImportResult, export_weights, imagenet_preprocess, import_weights
from ..data.transforms import load_image, prepare_image, prepare_tensor
from .export import DEFAULT_OPSET, EXPORTERS, FORMATS, WithPreprocess, export_onnx, export_torchscript
from .predict import ClassScore, Prediction, expand_paths, predict, predict_tensor
from .verification import ExportVerificationError, Tolerance, VerifyReport, export_verified, verify

__all__ = [
    "DEFAULT_OPSET",
    "EXPORTERS",
    "FORMATS",
    "ClassScore",
    "ExportVerificationError",
    "ImportResult",
    "Prediction",
    "Tolerance",
    "VerifyReport",
    "WithPreprocess",
    "expand_paths",
    "export_onnx",
    "export_torchscript",
    "export_verified",
    "export_weights",
    "imagenet_preprocess",
    "import_weights",
    "load_any",
    "load_image",
    "predict",
    "predict_tensor",
    "prepare_image",
    "prepare_tensor",
    "save_safetensors",
    "verify",
]
