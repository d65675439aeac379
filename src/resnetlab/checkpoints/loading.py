"""``load_any``: a run directory, a ``.pt`` checkpoint or a ``.safetensors`` file with our metadata.

A ``.safetensors`` file holds only tensors plus a string-to-string metadata map, so the parts of a
checkpoint that ``load_model`` needs besides the weights (architecture, options, classes, test
preprocessing) travel as JSON strings in that map. The tensors themselves are the bare state dict in
the torchvision layout, so the same file also loads into torchvision/timm code unchanged.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import torch

from ..data.preprocess import Preprocess
from ..models import build_model
from ..models.registry import explicit_layout
from .checkpoint import FORMAT, LoadedModel, load_model, resolve_checkpoint
from .interop import load_state_dict, save_weights

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
    return save_weights(loaded.model, path, metadata=safetensors_metadata(loaded))  # atomic


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
        raise ValueError(foreign_file_message(path, state))
    try:
        arch = json.loads(metadata["arch"])
        classes = tuple(json.loads(metadata.get("classes", "[]")))
        preprocess = preprocess_from_json(metadata["preprocess"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: malformed resnetlab metadata: {error}") from None
    options = explicit_layout(arch["name"], arch.get("options", {}))
    model = build_model(arch["name"], **options)
    load_state_dict(model, state, source=str(path))
    model.to(device).eval()
    return LoadedModel(
        model=model,
        name=arch["name"],
        options=options,
        classes=classes,
        preprocess=preprocess,
        path=path,
        iteration=int(metadata.get("iteration", 0)),
    )


def read_safetensors_preprocess(path: str | Path) -> Preprocess:
    """The test preprocessing recorded in a resnetlab ``.safetensors`` file (no tensors read)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if "preprocess" not in metadata:
        raise ValueError(f"{path} holds no resnetlab preprocessing metadata")
    return preprocess_from_json(metadata["preprocess"])


def load_any(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a model in eval mode from a run directory, a ``.pt`` checkpoint, ``.safetensors``,
    or the name of shipped weights (``resnet20.cifar10``, verified against its sha256)."""
    from .pretrained import get_weights, is_weights_name, looks_like_weights_name

    # A name of the form MODEL.DATASET that is not a file: shipped weights, or the one line saying
    # which weights are shipped (rather than "no checkpoint at resnet20.cifar10").
    if not Path(path).exists() and (is_weights_name(str(path)) or looks_like_weights_name(str(path))):
        weights = get_weights(str(path))
        weights.verify()
        path = weights.file
    path = Path(path)
    if path.is_dir() and (path / "final.safetensors").is_file() and not (path / "checkpoints" / "last.pt").is_file():
        path = path / "final.safetensors"  # a finished campaign run keeps its final weights only
    elif (
        path.is_dir()
        and (path / "model.safetensors").is_file()
        and (path / "config.json").is_file()
        and not (path / "checkpoints").is_dir()
    ):
        path = path / "model.safetensors"  # a save_pretrained folder (models.hub): our metadata is in it
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise FileNotFoundError(f"no weights file at {path}")
        return _load_safetensors(path, device)
    check_checkpoint_file(resolve_checkpoint(path))
    try:
        return load_model(path, device)
    except ValueError as error:
        if "is not a resnetlab checkpoint" in str(error):
            raise ValueError(foreign_file_message(path)) from None
        raise ValueError(one_line_load_error(error)) from None


def foreign_file_message(path: Path, state: dict | None = None) -> str:
    """One line for weights without resnetlab metadata: what to run to convert them, with the
    bottleneck stride choice spelled out when they are a bottleneck net's (which stride placement
    they were trained with cannot be read from the weights, so eval/predict never guess it)."""
    from ..models.registry import is_bottleneck
    from .interop import guess_architecture, read_state_dict, strip_prefixes

    try:
        state = strip_prefixes(state if state is not None else read_state_dict(path))
        name = guess_architecture(state)
    except (ValueError, OSError, RuntimeError):
        state, name = None, None
    if state is None:
        return f"{path} is not a resnetlab checkpoint (format {FORMAT})"
    command = f"resnetlab weights import {path} --model {name or 'NAME'}"
    if name and is_bottleneck(name):
        return (
            f"{path} holds {name} weights without resnetlab metadata (format {FORMAT}), and the weights "
            f"alone cannot tell where the bottleneck stride sits: convert them with `{command} --stride-on 3x3 "
            f"--out CKPT` (torchvision/timm, v1.5) or `--stride-on 1x1` (paper v1)"
        )
    return (
        f"{path} holds weights without resnetlab metadata (format {FORMAT}); convert them with `{command} --out CKPT`"
    )


def check_checkpoint_file(path: str | Path) -> None:
    """Say in one line why ``path`` cannot be a checkpoint, before torch.load answers with its own
    multi-line advice (or, for a text file, a bare ``KeyError`` number)."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head:
        raise ValueError(f"{path} is empty (0 bytes), not a checkpoint")
    if head == b"PK\x03\x04":  # torch.save's zip container
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is a truncated or damaged checkpoint (incomplete zip archive)")
        # torch.load does not check the archive's CRCs: flipped bytes in a tensor would load as
        # silently wrong weights. Reading the file once more costs ~0.1 s per 100 MB.
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ValueError(f"{path} is a damaged checkpoint ({error})") from None
        if damaged is not None:
            raise ValueError(f"{path} is a damaged checkpoint: its entry {damaged} fails the CRC check")
        return
    if head[:1] != b"\x80":  # nor a pickle (torch.save's legacy format)
        raise ValueError(f"{path} is not a PyTorch checkpoint (neither torch.save's zip nor pickle format)")


def one_line_load_error(error: Exception) -> str:
    """torch.load's refusal of non-tensor objects is six lines of advice; keep what it means."""
    text = str(error)
    if "Weights only load failed" in text:
        head = text.split(":", 1)[0] if text.startswith("cannot read checkpoint") else "cannot read checkpoint"
        return (
            f"{head}: it holds Python objects besides tensors (a pickled model?); resnetlab reads "
            "checkpoints with weights_only=True, so save a state dict and convert it with `resnetlab weights import`"
        )
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
