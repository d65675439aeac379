"""Trained weights shipped inside the package, in the shape of torchvision's multi-weight API.

``get_weights("resnet20.cifar10")`` returns a :class:`Weights`: ``.meta`` says how the weights were
made and what they measure (data set, recipe and every departure from it, iterations, training-set
size, seed, precision, test error, code revision), ``.transforms()`` is the exact test preprocessing, and
``build_model("resnet20", weights="cifar10")`` builds the network with them loaded.

The files live in ``resnetlab/weights/``: ``NAME.safetensors`` (the state dict in the torchvision
layout plus resnetlab's metadata, so ``resnetlab eval``/``predict`` rebuild the model from the file
alone) and one entry per name in ``manifest.json``, with the file's sha256, checked before every
load. Only the final model of a finished full-schedule campaign run is ever shipped under a name
(``resnetlab reproduce ship``, ``analysis/shipping.py``, which calls :func:`install`): never a
partial or reduced-budget run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from .atomic import staged_output, write_json

WEIGHTS_ROOT = Path(str(resources.files("resnetlab") / "weights"))
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Weights:
    """One shipped set of weights: ``name`` is ``MODEL.DATASET``, e.g. ``resnet20.cifar10``."""

    name: str
    file: Path
    sha256: str
    meta: dict = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    def verify(self) -> None:
        """Raise ValueError unless the file's sha256 is the recorded one."""
        if not self.file.is_file():
            raise FileNotFoundError(f"weights {self.name}: file {self.file} is missing from the installation")
        digest = sha256_of(self.file)
        if digest != self.sha256:
            raise ValueError(
                f"weights {self.name}: {self.file} has sha256 {digest}, expected {self.sha256} "
                f"(a damaged or replaced file; reinstall resnetlab)"
            )

    def load(self, device: str | torch.device = "cpu"):
        """The model rebuilt from the verified file (an ``inference.LoadedModel``, eval mode)."""
        from .loading import load_any

        self.verify()
        return load_any(self.file, device=device)

    def state_dict(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        self.verify()
        return load_file(str(self.file))

    def transforms(self) -> ImageTransform:
        """The exact test preprocessing of these weights (a PIL image or uint8 tensor in)."""
        from .loading import read_safetensors_preprocess

        self.verify()
        return ImageTransform(read_safetensors_preprocess(self.file))


class ImageTransform:
    """A PIL image, or a uint8 ``[3, H, W]`` / ``[N, 3, H, W]`` tensor, to the network's input.

    Geometry first (CIFAR: the 32x32 image as it is; another size is resized and centre-cropped,
    as ``resnetlab predict`` does), then ``/ 255`` and the per-pixel mean of the training images
    subtracted (Sec. 4.2). The result is float ``[3, H, W]`` (or ``[N, 3, H, W]``).
    """

    def __init__(self, preprocess) -> None:
        self.preprocess = preprocess

    def __call__(self, image) -> torch.Tensor:
        from PIL import Image

        from ..data.transforms import prepare_image, prepare_tensor

        if isinstance(image, Image.Image):
            return self.preprocess.normalize(prepare_image(image.convert("RGB"), self.preprocess)[None])[0]
        if isinstance(image, torch.Tensor) and image.ndim == 4:
            return self.preprocess.normalize(torch.stack([prepare_tensor(i, self.preprocess) for i in image]))
        if isinstance(image, torch.Tensor):
            return self.preprocess.normalize(prepare_tensor(image, self.preprocess)[None])[0]
        raise TypeError(f"expected a PIL image or a uint8 tensor, got {type(image).__name__}")

    def __repr__(self) -> str:
        p = self.preprocess
        return (
            f"ImageTransform(input_size={p.input_size}, resize={p.resize!r}, "
            f"mean_image={tuple(p.mean_image.shape)}, std={p.std})"
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def list_weights(root: Path | None = None) -> list[str]:
    return sorted(_manifest(root or WEIGHTS_ROOT))


def get_weights(name: str, root: Path | None = None) -> Weights:
    """Shipped weights by name, ``MODEL.DATASET`` (``resnet20.cifar10``)."""
    root = Path(root or WEIGHTS_ROOT)
    entries = _manifest(root)
    if not isinstance(name, str) or name not in entries:
        shipped = ", ".join(sorted(entries)) or "none yet (the campaign's full-schedule runs are in progress)"
        raise ValueError(f"no shipped weights named {name!r}; shipped: {shipped}")
    entry = entries[name]
    return Weights(name=name, file=root / entry["file"], sha256=entry["sha256"], meta=dict(entry.get("meta", {})))


def is_weights_name(text: str, root: Path | None = None) -> bool:
    return isinstance(text, str) and text in _manifest(root or WEIGHTS_ROOT)


def looks_like_weights_name(text: str) -> bool:
    """``MODEL.DATASET`` with a registered model (``resnet56.cifar10``), not a path or a file name."""
    from ..models.registry import list_models

    model, dot, dataset = text.partition(".")
    return bool(dot) and "/" not in text and dataset.isidentifier() and model in list_models()


def resolve_weights(model: str, weights: str | Weights, root: Path | None = None) -> Weights:
    """``build_model``'s ``weights=``: a Weights object, a full name or the data-set tag."""
    if isinstance(weights, Weights):
        chosen = weights
    else:
        chosen = get_weights(weights if "." in str(weights) else f"{model}.{weights}", root)
    if chosen.model != model:
        raise ValueError(f"weights {chosen.name} are for {chosen.model}, not {model}")
    return chosen


def load_into(model: nn.Module, weights: Weights) -> nn.Module:
    from .interop import load_state_dict

    load_state_dict(model, weights.state_dict(), source=weights.name)
    return model


def install(source: Path, name: str, into: Path, meta: dict) -> Weights:
    """Copy the safetensors file ``source`` into the weights folder ``into`` as ``name`` and record
    its manifest entry (its sha256 and ``meta``); an entry of that name is replaced."""
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    target = into / f"{name}.safetensors"
    with staged_output(target, overwrite=True) as tmp:
        shutil.copyfile(source, tmp)
    entries = _manifest(into)
    entries[name] = {"file": target.name, "sha256": sha256_of(target), "meta": meta}
    write_json(into / MANIFEST, entries, sort_keys=True)
    return get_weights(name, into)
