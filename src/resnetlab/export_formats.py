"""The export formats, ONNX exporters and default opset of ``resnetlab export``, without torch.

One table for the command line (``--format`` choices and ``--help``, which must not import torch)
and the library (``inference/export.py``, ``inference/verification.py``). It lives here, not in
``resnetlab/inference/``, because importing any module of that package runs its ``__init__``,
which loads torch. Adding a format: a name and its checking runtime here, a writer in
``inference/export.py`` and a runner in ``inference/verification.py``.
"""

# Format -> the runtime that reloads the exported file (on CPU) and checks it against PyTorch, as
# the verification report names it.
EXPORT_FORMATS: dict[str, str] = {
    "onnx": "ONNX (onnxruntime)",
    "torchscript": "TorchScript (torch.jit.load)",
    "safetensors": "safetensors (load_any)",
}

# auto: the torch.export-based ("dynamo") exporter when onnxscript is installed, else TorchScript's.
ONNX_EXPORTERS = ("auto", "dynamo", "torchscript")

# Opset 18 is the opset torch.export-based exporter's operator library is written for (any other
# is reached by version conversion) and the TorchScript-based exporter supports it natively, so both
# paths emit the same opset; onnxruntime has run it since 1.14.
DEFAULT_OPSET = 18

__all__ = ["DEFAULT_OPSET", "EXPORT_FORMATS", "ONNX_EXPORTERS"]
