"""Checkpoints: atomic on disk, self-describing, loadable without remembering any flag.

A checkpoint is a dict (``torch.save``, loadable with ``weights_only=True``):

- ``format``: ``"resnetlab/1"``
- ``arch``: ``{"name": registry name, "options": build_model options}``; a bottleneck net's
  ``stride_on`` is always written out (files from before that lack it were built "1x1", and load so)
- ``model``: the state dict (torchvision layout, see ``models.interop``)
- ``classes``: class names; ``preprocess``: ``Preprocess.to_dict()``
- ``iteration`` and, in training checkpoints, ``config``, ``optimizer``, ``rng`` and ``loader`` state

A run directory keeps ``checkpoints/last.pt`` (for ``--resume``) and ``checkpoints/best.pt`` (lowest
validation error); ``resolve_checkpoint`` turns a run directory into the file to use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.preprocess import Preprocess
from ..models import build_model
from ..models.interop import load_state_dict
from ..models.registry import explicit_layout

FORMAT = "resnetlab/1"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(folder: str | Path, pattern: re.Pattern) -> list[Path]:
    """Delete the files in ``folder`` whose names match ``pattern`` (a regex with a ``pid`` group)
    and whose writer process no longer exists.

    Atomic writes go through such a temporary file; a kill -9 (or a crash) mid-write leaves it
    behind. A live pid may still be writing, so only files of dead processes are removed.
    """
    removed = []
    try:
        candidates = [(p, pattern.fullmatch(p.name)) for p in Path(folder).iterdir()]
    except OSError:
        return removed
    for candidate, match in candidates:
        if match is None:
            continue
        pid = int(match.group("pid"))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass  # already gone, or not ours to delete: leave it
    return removed


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write atomically: a crash mid-write never leaves a half checkpoint under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Leftovers of interrupted writes of this file or of a sibling checkpoint (only our own naming).
    remove_stale_temporaries(path.parent, re.compile(rf"\.(?:{re.escape(path.name)}|[^/]+\.pt)\.(?P<pid>\d+)\.tmp"))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save({"format": FORMAT, **payload}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write (disk full, Ctrl-C) leaves nothing behind
        raise
    return path


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
    from ..models.interop import strip_prefixes

    return {
        "arch": {"name": name, "options": explicit_layout(name, options)},
        "model": {k: v.detach().cpu() for k, v in strip_prefixes(model.state_dict()).items()},
        "classes": list(classes),
        "preprocess": preprocess.to_dict(),
        "iteration": iteration,
    }
