"""The folder a detection run writes, and whether ``detect train`` may start in it or replace it.

A detection run starts in a new or empty folder (its ``metrics.jsonl`` is appended to), or replaces
a previous detection run when asked; anything else is refused, never deleted. Refusals are
FileExistsError (ValueError for a file given as the folder), which the CLI prints in one line.
Nothing heavy at the top of this module (the package's ``__init__`` loads the detector itself).
"""

from __future__ import annotations

import shutil
from pathlib import Path

# What ``train_detector`` writes into its run directory; only these are ever replaced.
RUN_FILES = ("config.json", "meta.json", "metrics.jsonl", "results.json")


def is_detection_run(out: Path) -> bool:
    """Only what ``train_detector`` writes, with a detection config: safe to replace."""
    from dataclasses import fields

    from ..checkpoints.outputs import checkpoint_file, holds_only, recorded_config, tensorboard_file
    from .config import DetectionConfig

    if not holds_only(out, RUN_FILES, {"checkpoints": checkpoint_file, "tb": tensorboard_file}):
        return False
    recorded = recorded_config(out)
    return recorded is not None and set(recorded) <= {f.name for f in fields(DetectionConfig)}


def prepare_train_out(out: Path, overwrite: bool) -> None:
    """Make ``out`` ready for a new detection run: nothing to do for a new or empty folder; a
    previous detection run is deleted when ``overwrite``, refused otherwise; anything else is refused.

    Raises ValueError when ``out`` is a file, FileExistsError when it may not be used."""
    from ..checkpoints.outputs import occupied

    if not occupied(out):
        return
    if not is_detection_run(out):
        raise FileExistsError(f"{out} is not empty and is not a detection run; choose another --out")
    if not overwrite:
        raise FileExistsError(
            f"{out} holds a previous detection run; pass --overwrite to replace it, or choose another --out"
        )
    shutil.rmtree(out)
