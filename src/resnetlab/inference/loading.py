"""``load_any``: a run directory, a ``.pt`` checkpoint or a ``.safetensors`` file with our metadata.

A ``.safetensors`` file holds only tensors plus a string-to-string metadata map, so the parts of a
checkpoint that ``load_model`` needs besides the weights (architecture, options, classes, test
preprocessing) travel as JSON strings in that map. The tensors themselves are the bare state dict in
the torchvision layout, so the same file also loads into torchvision/timm code unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data.preprocess import Preprocess
from ..engine.checkpoint import FORMAT, LoadedModel, load_model
from ..models import build_model
from ..models.interop import load_state_dict, save_weights

SAFETENSORS_KEYS = ("format", "arch", "classes", "preprocess", "iteration")


def preprocess_to_json(preprocess: Preprocess) -> str:
    d = preprocess.to_dict()
    # float32 -> Python float -> repr is exact, so the mean image survives the round trip bit for bit.
    d["mean_image"] = {"shape": list(d["mean_image"].shape), "values": d["mean_image"].flatten().tolist()}
    return json.dumps(d)


def preprocess_from_json(text: str) -> Preprocess:
    d = json.loads(text)
    mean = d.get("mean_image")
    if isinstance(mean, dict):
        d["mean_image"] = torch.tensor(mean["values"], dtype=torch.float32).reshape(mean["shape"])
    return Preprocess.from_dict(d)


def safetensors_metadata(loaded: LoadedModel) -> dict[str, str]:
    return {
        "format": FORMAT,
        "arch": json.dumps({"name": loaded.name, "options": loaded.options}),
        "classes": json.dumps(list(loaded.classes)),
        "preprocess": preprocess_to_json(loaded.preprocess),
        "iteration": str(loaded.iteration),
    }


def save_safetensors(loaded: LoadedModel, path: str | Path) -> Path:
    """Weights (torchvision layout) plus the metadata ``load_any`` needs to rebuild the model."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"safetensors output must end in .safetensors, got {path.name}")
    return save_weights(loaded.model, path, metadata=safetensors_metadata(loaded))


def _load_safetensors(path: Path, device: str | torch.device) -> LoadedModel:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except Exception as error:  # truncated or foreign file: name it and say why
        raise ValueError(f"cannot read safetensors file {path}: {error}") from None
    if metadata.get("format") != FORMAT or not all(k in metadata for k in ("arch", "preprocess")):
        raise ValueError(
            f"{path} holds weights without resnetlab metadata (format {FORMAT}); "
            "convert it with `resnetlab weights import`"
        )
    try:
        arch = json.loads(metadata["arch"])
        classes = tuple(json.loads(metadata.get("classes", "[]")))
        preprocess = preprocess_from_json(metadata["preprocess"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: malformed resnetlab metadata: {error}") from None
    model = build_model(arch["name"], **arch.get("options", {}))
    load_state_dict(model, state, source=str(path))
    model.to(device).eval()
    return LoadedModel(
        model=model,
        name=arch["name"],
        options=dict(arch.get("options", {})),
        classes=classes,
        preprocess=preprocess,
        path=path,
        iteration=int(metadata.get("iteration", 0)),
    )


def load_any(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a model in eval mode from a run directory, a ``.pt`` checkpoint or ``.safetensors``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise FileNotFoundError(f"no weights file at {path}")
        return _load_safetensors(path, device)
    try:
        return load_model(path, device)
    except ValueError as error:
        if "is not a resnetlab checkpoint" in str(error):
            raise ValueError(f"{error}; a bare state dict can be converted with `resnetlab weights import`") from None
        raise
