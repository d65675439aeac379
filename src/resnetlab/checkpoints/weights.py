"""Weights from and to the torchvision/timm ResNet layout.

Our parameter names are torchvision's, so importing is loading with a precise report plus the
metadata a checkpoint needs: the evaluation protocol those weights were trained for (shorter side
256, centre crop 224, torchvision's per-channel mean/std; not the paper's per-pixel mean), and the
bottleneck stride placement, which a state dict cannot reveal: torchvision and timm ResNet-50/101/152
are "v1.5" (stride on the 3x3), the paper's are v1 (stride on the first 1x1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.imagenet_stats import IMAGENET_MEAN, IMAGENET_STD
from ..data.preprocess import Preprocess
from ..models import build_model, model_info
from ..models.registry import explicit_layout, is_bottleneck
from .atomic import refuse_existing, staged_output
from .checkpoint import model_payload, save_checkpoint
from .interop import (
    KeyReport,
    StrideChoiceError,
    fill_batch_counters,
    load_state_dict,
    read_weights_file,
    save_weights,
    stride_choice_message,
)
from .loading import load_any, safetensors_metadata


# torchvision's ImageNet evaluation transform (Resize(256), CenterCrop(224), Normalize(mean, std)).
def imagenet_preprocess() -> Preprocess:
    return Preprocess(
        input_size=224,
        resize="shorter_side",
        resize_to=256,
        mean_image=torch.tensor(IMAGENET_MEAN).view(3, 1, 1),
        std=IMAGENET_STD,
    )


@dataclass(frozen=True)
class ImportResult:
    path: Path
    report: KeyReport
    filled: tuple[str, ...]  # BN step counters added because the source lacked them
    options: dict


_fill_batch_counters = fill_batch_counters  # the older private name


def import_weights(
    src: str | Path,
    model: str,
    out: str | Path,
    *,
    stride_on: str | None = None,
    classes: list[str] | None = None,
    strict: bool = True,
    overwrite: bool = False,
) -> ImportResult:
    """A torchvision/timm-layout state dict (``.pt``/``.pth``/``.safetensors``, DDP ``module.``
    prefixes allowed) -> a resnetlab checkpoint at ``out``.

    ``stride_on`` must be given for a bottleneck net (resnet50/101/152, plain50/101/152): "3x3"
    for torchvision/timm weights (v1.5), "1x1" for the paper's v1; the weights alone cannot tell
    the two apart and either loads with strict=True (see ``checkpoints.interop``), so there is no
    default and its absence raises ``StrideChoiceError``. A resnetlab file records its own
    placement, which is used (a contradicting ``stride_on`` is refused). Basic-block nets need no
    choice. ``num_classes`` is taken from the source's ``fc.weight``. Mis-shaped tensors always fail; missing
    or unexpected keys fail unless ``strict=False``. An existing ``out`` is replaced only with
    ``overwrite``.
    """
    refuse_existing(out, overwrite)
    info = model_info(model)
    if info.family == "cifar":
        raise ValueError(
            f"{model} is a CIFAR network; weights import covers ImageNet-layout models "
            "(resnet18..152, plain*, vgg16/19)"
        )
    if stride_on is not None and "stride_on" not in info.options:
        raise ValueError(f"{model} has no bottleneck stride to place; drop --stride-on")
    state, arch = read_weights_file(src)
    options: dict = {}
    if arch is not None and arch.get("name") == model:  # a resnetlab file records its layout
        recorded = explicit_layout(model, arch.get("options", {})).get("stride_on")
        if stride_on is not None and recorded is not None and stride_on != recorded:
            raise ValueError(
                f"{src} is a resnetlab {model} file built with stride_on={recorded}; drop --stride-on {stride_on}"
            )
        stride_on = stride_on or recorded
    if stride_on is not None:
        options["stride_on"] = stride_on
    elif is_bottleneck(model):
        raise StrideChoiceError(stride_choice_message(model, str(src)))
    head = state.get("fc.weight", state.get("classifier.6.weight"))
    if head is not None and head.ndim == 2 and head.shape[0] != 1000:
        options["num_classes"] = int(head.shape[0])
    network = build_model(model, **options)
    filled = _fill_batch_counters(network, state)
    # The source named with the architecture asked for: a mismatch then says which one it was.
    report = load_state_dict(network, state, strict=strict, source=f"{src} (imported as {model})")
    num_classes = int(options.get("num_classes", 1000))
    names = list(classes) if classes else [f"class_{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names given for a {num_classes}-way classifier")
    with staged_output(out, overwrite=overwrite) as tmp:
        save_checkpoint(tmp, model_payload(network, model, options, names, imagenet_preprocess()))
    return ImportResult(Path(out), report, filled, options)


def export_weights(checkpoint: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """A checkpoint's weights as a bare state dict in our (= torchvision's) layout.

    ``.pt``/``.pth``: ``torch.save`` of the state dict. ``.safetensors``: the same tensors, with our
    metadata attached so that ``load_any`` can rebuild the model from the file alone. An existing
    ``out`` is replaced only with ``overwrite``.
    """
    out = Path(out)
    if out.suffix not in (".safetensors", ".pt", ".pth"):
        raise ValueError(f"weights file must end in .safetensors, .pt or .pth, got {out.name}")
    refuse_existing(out, overwrite)
    loaded = load_any(checkpoint)
    metadata = safetensors_metadata(loaded) if out.suffix == ".safetensors" else None
    with staged_output(out, overwrite=overwrite) as tmp:
        save_weights(loaded.model, tmp, metadata=metadata)
    return out


def read_class_names(path: str | Path) -> list[str]:
    """One class name per line; blank lines are ignored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no class-name file at {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text file of class names") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
