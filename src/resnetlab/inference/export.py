"""Export a trained model to ONNX, TorchScript or safetensors.

ONNX graphs take ``images`` ``[batch, 3, height, width]`` and give ``logits`` ``[batch, classes]``,
with batch, height and width all dynamic: global average pooling makes the network fully
convolutional up to ``fc`` (Sec. 3.4, multi-scale testing), so one graph serves every input size.
With ``include_preprocess`` the graph takes uint8 RGB pixels and applies the checkpoint's
normalisation (``/ 255``, minus the mean image, ``/ std``) itself; resizing and cropping stay outside.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints.checkpoint import LoadedModel
from ..data.preprocess import Preprocess
from ..export_formats import DEFAULT_OPSET, EXPORT_FORMATS, ONNX_EXPORTERS
from ..seeding import generator as seeded_cpu_generator

# The names of resnetlab.export_formats under their older public names (resnetlab.inference exports them).
FORMATS = tuple(EXPORT_FORMATS)
EXPORTERS = ONNX_EXPORTERS
INPUT_NAME, OUTPUT_NAME = "images", "logits"


class WithPreprocess(nn.Module):
    """uint8 ``[N, 3, H, W]`` pixels -> logits, with ``Preprocess.normalize`` built into the graph."""

    def __init__(self, model: nn.Module, preprocess: Preprocess) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", preprocess.mean_image.detach().float()[None].clone())
        self.register_buffer("std", torch.tensor(preprocess.std, dtype=torch.float32).view(1, 3, 1, 1))
        # Decided once here, not per input: a traced graph would freeze a per-input shape test.
        self.per_pixel_mean = tuple(preprocess.mean_image.shape[1:]) != (1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        mean = self.mean
        if self.per_pixel_mean:
            # Same stretch as Preprocess.normalize; at the native size it is the identity.
            mean = F.interpolate(mean, size=x.shape[2:], mode="bilinear", align_corners=False)
        return self.model((x - mean) / self.std)


def exportable(loaded: LoadedModel, include_preprocess: bool = False) -> nn.Module:
    """The CPU float32 eval-mode module to export (the loaded model is left untouched)."""
    model = loaded.model
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("export works on a CPU model; load the checkpoint with device='cpu'")
    model.eval()
    return (WithPreprocess(model, loaded.preprocess) if include_preprocess else model).eval()


def example_input(loaded: LoadedModel, include_preprocess: bool, batch: int = 2) -> torch.Tensor:
    size = loaded.preprocess.input_size
    generator = seeded_cpu_generator(0)
    if include_preprocess:
        return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator)
    return torch.randn(batch, 3, size, size, generator=generator)


def resolve_exporter(exporter: str) -> str:
    """``auto``: the torch.export-based exporter when onnxscript is installed, else TorchScript's."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    if exporter == "auto":
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            return "torchscript"
        return "dynamo"
    return exporter


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints, deprecation notes and torchvision-op warnings."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(
    loaded: LoadedModel,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    include_preprocess: bool = False,
    exporter: str = "auto",
) -> Path:
    """Write an ONNX graph with dynamic batch, height and width; returns the path."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not 13 <= opset <= 23:
        raise ValueError(f"opset must be an integer in [13, 23], got {opset!r}")
    kind = resolve_exporter(exporter)
    if kind == "torchscript" and opset > 20:
        raise ValueError(f"the TorchScript-based exporter supports opset <= 20, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = exportable(loaded, include_preprocess)
    x = example_input(loaded, include_preprocess)
    with _quiet(), torch.no_grad():
        if kind == "dynamo":
            dims = {
                0: torch.export.Dim("batch", min=1),
                2: torch.export.Dim("height", min=8),
                3: torch.export.Dim("width", min=8),
            }
            torch.onnx.export(
                module,
                (x,),
                str(path),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=(dims,),
                external_data=False,
                verbose=False,
            )
        else:
            torch.onnx.export(
                module,
                (x,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                do_constant_folding=True,
                dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch"}},
            )
    return path


def export_torchscript(loaded: LoadedModel, path: str | Path, *, include_preprocess: bool = False) -> Path:
    """A traced TorchScript module (``torch.jit.load`` needs no resnetlab code).

    Tracing, not scripting: the network's control flow depends only on its structure, never on the
    data, so the trace is exact at every batch and spatial size.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = exportable(loaded, include_preprocess)
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(module, example_input(loaded, include_preprocess), check_trace=False)
        torch.jit.save(traced, str(path))
    return path
