"""Checkpoints: atomic on disk, self-describing, loadable without remembering any flag.

A checkpoint is a dict (``torch.save``, loadable with ``weights_only=True``):

- ``format``: ``"resnetlab/1"``
- ``arch``: ``{"name": registry name, "options": build_model options}``; a bottleneck net's
  ``stride_on`` is always written out (files from before that lack it were built "1x1", and load so)
- ``model``: the state dict (torchvision layout, see ``checkpoints.interop``)
- ``classes``: class names; ``preprocess``: ``Preprocess.to_dict()``
- ``iteration`` and, in training checkpoints, the ``TrainState`` (``engine/state.py``): ``config``,
  ``optimizer``, ``schedule``, ``scaler``, ``rng``, ``best``, ``windows``, ``wall_seconds``

The layout is a contract with the run directories already on disk: ``tests/test_golden_resume.py``
resumes one written by earlier code and must finish with bitwise the same weights. Writes go through
``atomic.staged_output``.

A run directory keeps ``checkpoints/last.pt`` (for ``--resume``) and ``checkpoints/best.pt`` (lowest
validation error); ``resolve_checkpoint`` turns a run directory into the file to use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.preprocess import Preprocess
from ..models import build_model
from ..models.registry import explicit_layout
from .atomic import staged_output
from .interop import load_state_dict

FORMAT = "resnetlab/1"


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write atomically: a crash mid-write never leaves a half checkpoint under ``path``."""
    with staged_output(path, overwrite=True, keep_suffix=False) as tmp, open(tmp, "wb") as handle:
        torch.save({"format": FORMAT, **payload}, handle)
    return Path(path)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the best (else last) checkpoint of a run directory."""
    path = Path(path)
    if path.is_dir():
        for candidate in ("checkpoints/best.pt", "checkpoints/last.pt", "best.pt", "last.pt"):
            if (path / candidate).is_file():
                return path / candidate
        raise FileNotFoundError(f"no checkpoint in run directory {path} (looked for checkpoints/best.pt, last.pt)")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def load_checkpoint(path: str | Path) -> dict:
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which file and why
        raise ValueError(f"cannot read checkpoint {path}: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a resnetlab checkpoint (format {FORMAT})")
    return payload


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint, with everything needed to feed it."""

    model: nn.Module
    name: str
    options: dict
    classes: tuple[str, ...]
    preprocess: Preprocess
    path: Path
    iteration: int

    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, 3, H, W]`` already at the model's input size -> logits."""
        device = next(self.model.parameters()).device
        with torch.no_grad():
            return self.model(self.preprocess.normalize(images.to(device)))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the network of a checkpoint (or run directory) in eval mode."""
    path = resolve_checkpoint(path)
    payload = load_checkpoint(path)
    arch = payload["arch"]
    options = explicit_layout(arch["name"], arch.get("options", {}))
    model = build_model(arch["name"], **options)
    load_state_dict(model, payload["model"], source=str(path))
    model.to(device).eval()
    return LoadedModel(
        model=model,
        name=arch["name"],
        options=options,
        classes=tuple(payload.get("classes", ())),
        preprocess=Preprocess.from_dict(payload.get("preprocess", {})),
        path=path,
        iteration=int(payload.get("iteration", 0)),
    )


def model_payload(
    model: nn.Module, name: str, options: dict, classes, preprocess: Preprocess, iteration: int = 0
) -> dict:
    """The part of a checkpoint that ``load_model`` needs (no training state)."""
    from .interop import strip_prefixes

    return {
        "arch": {"name": name, "options": explicit_layout(name, options)},
        "model": {k: v.detach().cpu() for k, v in strip_prefixes(model.state_dict()).items()},
        "classes": list(classes),
        "preprocess": preprocess.to_dict(),
        "iteration": iteration,
    }
