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
            shown = "; ".join(f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched[:limit])
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
                    key, stripped = key[len(prefix) :], True
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
    from .atomic import staged_output

    path = Path(path)
    if path.suffix not in (".safetensors", ".pt", ".pth"):
        raise ValueError(f"weights file must end in .safetensors, .pt or .pth, got {path.name}")
    state = {k: v.detach().cpu().contiguous() for k, v in strip_prefixes(model.state_dict()).items()}
    with staged_output(path, overwrite=True) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(tmp), metadata=metadata)
        else:
            torch.save(state, tmp)
    return path


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True) -> KeyReport:
    """Load ``.safetensors``/``.pt`` weights (ours, torchvision's or timm's ResNet layout)."""
    return load_state_dict(model, read_state_dict(path), strict=strict, source=str(path))


# --- foreign weights and the v1/v1.5 trap ----------------------------------------------------
# A bottleneck ResNet's state dict is the same set of keys and shapes whether the stride-2 of a
# stage's first block sits on the 1x1 (the paper's v1, resnetlab's default) or on the 3x3 (v1.5,
# torchvision's and timm's resnet50/101/152): it loads with strict=True into either and gives other
# logits. So a foreign file (no resnetlab metadata) of a bottleneck net is never loaded under a
# default: the caller must say which it is. Defaulting to "3x3" because most foreign weights come
# from torchvision/timm would make the other cases silent: weights converted from the original
# MSRA Caffe models are v1, and so is a resnetlab v1 model written out with `weights export` to
# .pt (a bare state dict, which cannot carry metadata). resnetlab's own files record stride_on.

WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors")


class StrideChoiceError(ValueError):
    """Foreign bottleneck weights given without saying v1 ("1x1") or v1.5 ("3x3")."""


def stride_choice_message(name: str, source: str, *, python: bool = False) -> str:
    choose = (
        'pass stride_on="3x3" (torchvision/timm, v1.5) or stride_on="1x1" (paper v1)'
        if python
        else "choose --stride-on 3x3 (torchvision/timm, v1.5) or --stride-on 1x1 (paper v1)"
    )
    return (
        f"{source} holds {name} weights without resnetlab metadata, and the weights alone cannot "
        f"tell where the bottleneck stride sits: {choose}"
    )


def is_weights_path(weights) -> bool:
    """``build_model``'s ``weights=`` names a file (rather than shipped weights)?"""
    if isinstance(weights, Path):
        return True
    return isinstance(weights, str) and (weights.endswith(WEIGHT_SUFFIXES) or "/" in weights)


def read_weights_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The state dict of a weights file (prefixes stripped) and, for resnetlab's own files (a
    checkpoint or ``.safetensors`` with our metadata), the recorded ``{"name", "options"}``."""
    import json

    from .checkpoint import FORMAT

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    arch = None
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            state = load_file(str(path))
        except Exception as error:
            raise ValueError(f"cannot read safetensors file {path}: {error}") from None
        if metadata.get("format") == FORMAT and "arch" in metadata:
            try:
                arch = json.loads(metadata["arch"])
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: malformed resnetlab metadata: {error}") from None
        return strip_prefixes(state), arch
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read weights file {path}: {' '.join(str(error).split())[:300]}") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT and isinstance(obj.get("arch"), dict):
        arch = obj["arch"]
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return strip_prefixes(obj), arch


def guess_architecture(state: dict[str, torch.Tensor]) -> str | None:
    """The registered ImageNet net a torchvision-layout state dict fits (``resnet50``), or None."""
    from ..models.resnet import IMAGENET_DEPTHS

    counts = []
    for stage in range(1, 5):
        blocks = {k.split(".")[1] for k in state if k.startswith(f"layer{stage}.") and k.count(".") >= 2}
        counts.append(len(blocks))
    kind = "bottleneck" if any(k.endswith(".conv3.weight") for k in state) else "basic"
    for depth, spec in IMAGENET_DEPTHS.items():
        if spec == (kind, tuple(counts)):
            return f"{'resnet' if any('.downsample.' in k for k in state) else 'plain'}{depth}"
    return None


def fill_batch_counters(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[str, ...]:
    """Add missing BN ``num_batches_tracked`` counters (timm and some exports drop them); they do
    not affect evaluation, so their absence should not make an otherwise exact fit fail."""
    filled = []
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
            filled.append(key)
    return tuple(filled)


def load_weights_file(name: str, path: str | Path, options: dict) -> nn.Module:
    """``build_model(name, weights=FILE, **options)``: see ``build_model``."""
    from ..models.registry import _default_option, explicit_layout, is_bottleneck, model_info

    info = model_info(name)
    state, arch = read_weights_file(path)
    if arch is not None:  # our own file: its recorded options, the layout written out
        if arch.get("name") != name:
            raise ValueError(f"{path} holds {arch.get('name')} weights, not {name}")
        recorded = explicit_layout(name, arch.get("options", {}))
        clashing = sorted(k for k, v in options.items() if recorded.get(k, _default_option(info, k)) != v)
        if clashing:
            raise ValueError(
                f"{path} records "
                + ", ".join(f"{k}={recorded.get(k, _default_option(info, k))!r}" for k in clashing)
                + "; drop or change these options"
            )
        options = {**recorded, **options}
    else:
        if is_bottleneck(name) and "stride_on" not in options:
            raise StrideChoiceError(stride_choice_message(name, str(path), python=True))
        head = state.get("fc.weight")
        if "num_classes" in info.options and "num_classes" not in options and head is not None and head.ndim == 2:
            options = {**options, "num_classes": int(head.shape[0])}
    model = info.builder(**options)
    if arch is None:
        fill_batch_counters(model, state)
    load_state_dict(model, state, source=str(path))
    return model
