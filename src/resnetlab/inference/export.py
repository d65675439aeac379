"""Export a trained model to ONNX, TorchScript or safetensors.

ONNX graphs take ``images`` ``[batch, 3, height, width]`` and give ``logits`` ``[batch, classes]``,
with batch, height and width all dynamic: global average pooling makes the network fully
convolutional up to ``fc`` (Sec. 3.4, multi-scale testing), so one graph serves every input size.
With ``include_preprocess`` the graph takes uint8 RGB pixels and applies the checkpoint's
normalisation (``/ 255``, minus the mean image, ``/ std``) itself; resizing and cropping stay outside.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..data.preprocess import Preprocess
from ..engine.checkpoint import LoadedModel, remove_stale_temporaries

FORMATS = ("onnx", "torchscript", "safetensors")
EXPORTERS = ("auto", "dynamo", "torchscript")
# Opset 18 is the opset torch.export-based exporter's operator library is written for (any other
# is reached by version conversion) and the TorchScript-based exporter supports it natively, so both
# paths emit the same opset; onnxruntime has run it since 1.14.
DEFAULT_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "images", "logits"


def refuse_existing(path: str | Path, overwrite: bool) -> None:
    """An output file is replaced only when asked; a folder is never an output file."""
    path = Path(path)
    for parent in path.parents:  # the first existing ancestor must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", str(parent))
            break
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name for --out", str(path))
    if path.exists() and not overwrite:
        raise FileExistsError(errno.EEXIST, "already exists; pass --overwrite to replace it", str(path))


@contextlib.contextmanager
def staged_output(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; after the block succeeds it becomes ``path`` in one
    rename. On any failure (a failed verification included) only the temporary file is removed, so
    a file already at ``path`` is never lost, and without ``overwrite`` it is never replaced.

    The temporary keeps ``path``'s suffix (exporters and ``save_weights`` choose the format by it)
    and lives in the same folder, so the rename never crosses file systems.
    """
    path = Path(path)
    refuse_existing(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = re.compile(re.escape(f".{path.stem}.") + r"(?P<pid>\d+)" + re.escape(f".tmp{path.suffix}"))
    remove_stale_temporaries(path.parent, stale)  # left by an export killed mid-write
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        # Created here, so an unwritable folder is one clear OSError, not an exporter's traceback.
        tmp.open("wb").close()
    except PermissionError:
        raise PermissionError(errno.EACCES, "Permission denied (cannot write into this folder)", str(path.parent)) from None
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _publish_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if nothing took that name while we were writing."""
    try:
        os.link(tmp, path)  # atomic, and fails rather than replace a file that appeared meanwhile
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "appeared while writing; pass --overwrite to replace it", str(path)) from None
    except OSError:  # a file system without hard links: check, then rename
        refuse_existing(path, overwrite=False)
        os.replace(tmp, path)


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
    generator = torch.Generator().manual_seed(0)
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
            dims = {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim("height", min=8),
                    3: torch.export.Dim("width", min=8)}
            torch.onnx.export(
                module, (x,), str(path), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], dynamic_shapes=(dims,), external_data=False, verbose=False,
            )
        else:
            torch.onnx.export(
                module, (x,), str(path), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], do_constant_folding=True,
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
