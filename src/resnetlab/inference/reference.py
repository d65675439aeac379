"""The PyTorch side of an export check: the reference logits, computed on any device in full
float32 and handed back on CPU, where the exported file's logits are compared with them."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterator

import torch

from ..checkpoints.checkpoint import LoadedModel


def model_device(loaded: LoadedModel) -> torch.device:
    return next(loaded.model.parameters()).device


def on_device(loaded: LoadedModel, device: str | torch.device) -> LoadedModel:
    """``loaded`` itself where its model is on ``device`` already, else a copy whose model is
    there (the original model stays where it was)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if model_device(loaded) == device:
        return loaded
    return dataclasses.replace(loaded, model=copy.deepcopy(loaded.model).to(device).eval())


@contextlib.contextmanager
def full_float32(device: torch.device) -> Iterator[None]:
    """Full float32 convolutions and matmuls on CUDA while the reference runs. cuDNN convolutions
    default to TF32 on Ampere and later GPUs (a 10-bit mantissa: ~1e-3 relative error), which
    alone would fail the 1e-4 comparison with the exported file's float32 run on CPU."""
    if device.type != "cuda":
        yield
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        # torch >= 2.9: per-operation settings. The legacy allow_tf32 flags must not be mixed with
        # these (torch refuses to read them afterwards), so only the per-operation ones are touched.
        settings = (conv, torch.backends.cuda.matmul)
        saved = [setting.fp32_precision for setting in settings]
        for setting in settings:
            setting.fp32_precision = "ieee"
        try:
            yield
        finally:
            for setting, value in zip(settings, saved):
                setting.fp32_precision = value
        return
    saved_flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved_flags


def reference_runner(loaded: LoadedModel, include_preprocess: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The library's own path: ``Preprocess.normalize`` + model for pixels, the model otherwise;
    run on the model's device (inputs moved there), logits returned on CPU for the comparison."""
    device = model_device(loaded)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), full_float32(device):
            logits = loaded.predict_logits(x) if include_preprocess else loaded.model(x.to(device))
        return logits.cpu()

    return run


__all__ = ["full_float32", "model_device", "on_device", "reference_runner"]
