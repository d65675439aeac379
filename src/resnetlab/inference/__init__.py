"""Putting trained models to work: prediction on image files, export (ONNX, TorchScript,
safetensors) verified against PyTorch, and weight interop with the torchvision/timm layout."""

from .export import DEFAULT_OPSET, EXPORTERS, FORMATS, WithPreprocess, export_onnx, export_torchscript
from .loading import load_any, save_safetensors
from .predict import ClassScore, Prediction, expand_paths, predict, predict_tensor
from .transforms import load_image, prepare_image, prepare_tensor
from .verification import ExportVerificationError, Tolerance, VerifyReport, export_verified, verify
from .weights import ImportResult, export_weights, imagenet_preprocess, import_weights

__all__ = [
    "DEFAULT_OPSET", "EXPORTERS", "FORMATS", "WithPreprocess", "export_onnx", "export_torchscript",
    "load_any", "save_safetensors",
    "ClassScore", "Prediction", "expand_paths", "predict", "predict_tensor",
    "load_image", "prepare_image", "prepare_tensor",
    "ExportVerificationError", "Tolerance", "VerifyReport", "export_verified", "verify",
    "ImportResult", "export_weights", "imagenet_preprocess", "import_weights",
]
