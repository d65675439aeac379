"""Weights in and out: ``.pt`` and ``.safetensors``, torchvision/timm ResNet layout, key reports.

Our parameter names already are torchvision's (``conv1``, ``bn1``, ``layer1``.., ``downsample.0/1``,
``fc``), and timm's ResNets use the same names, so interop is loading with a precise report rather
than renaming. torchvision's ResNet-50/101/152 are "v1.5" (stride on the 3x3): build those with
``stride_on="3x3"`` to reproduce their outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


@dataclass
class KeyReport:
    """How a state dict fits a model; ``ok`` when it fits exactly."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # key, theirs, ours

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 20) -> str:
        lines = []
        for title, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                shown = ", ".join(keys[:limit]) + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")
                lines.append(f"{title} keys ({len(keys)}): {shown}")
        if self.mismatched:
            shown = "; ".join(
                f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched[:limit]
            )
            lines.append(f"mis-shaped keys ({len(self.mismatched)}): {shown}")
        return "\n".join(lines) or "state dict fits exactly"


class WeightsMismatchError(ValueError):
    def __init__(self, report: KeyReport, source: str = "checkpoint") -> None:
        self.report = report
        super().__init__(f"{source} does not fit the model:\n{report.describe()}")


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes that DDP and torch.compile add to every key, in any order and
    nesting (``module._orig_mod.`` from DDP around a compiled model, ``_orig_mod.module.`` from
    compiling a DDP model)."""
    out = {}
    for key, value in state_dict.items():
        stripped = True
        while stripped:  # until no prefix is left at the front, whichever wrapper came last
            stripped = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix):], True
        out[key] = value
    return out


def compare_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> KeyReport:
    ours = model.state_dict()
    report = KeyReport()
    report.missing = [k for k in ours if k not in state_dict]
    report.unexpected = [k for k in state_dict if k not in ours]
    report.mismatched = [
        (k, tuple(v.shape), tuple(ours[k].shape))
        for k, v in state_dict.items()
        if k in ours and tuple(v.shape) != tuple(ours[k].shape)
    ]
    return report


def load_state_dict(
    model: nn.Module, state_dict: dict[str, torch.Tensor], *, strict: bool = True, source: str = "checkpoint"
) -> KeyReport:
    """Load with a report; in strict mode any difference raises ``WeightsMismatchError``.

    Non-strict loading still refuses mis-shaped tensors (they could never be meant) but tolerates
    missing or unexpected keys, e.g. a classifier of another width when fine-tuning.
    """
    state_dict = strip_prefixes(state_dict)
    report = compare_state_dict(model, state_dict)
    if report.mismatched or (strict and not report.ok):
        raise WeightsMismatchError(report, source)
    model.load_state_dict(state_dict, strict=False)
    return report


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A bare state dict from ``.safetensors`` or ``.pt``/``.pth`` (also a training checkpoint)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]  # a resnetlab checkpoint; its weights are under "model"
    elif isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return obj


def save_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write the weights as ``.safetensors`` or ``.pt`` (chosen by suffix), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in strip_prefixes(model.state_dict()).items()}
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(tmp), metadata=metadata)
    elif path.suffix in (".pt", ".pth"):
        torch.save(state, tmp)
    else:
        raise ValueError(f"weights file must end in .safetensors, .pt or .pth, got {path.name}")
    tmp.replace(path)
    return path


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True) -> KeyReport:
    """Load ``.safetensors``/``.pt`` weights (ours, torchvision's or timm's ResNet layout)."""
    return load_state_dict(model, read_state_dict(path), strict=strict, source=str(path))
