"""Is this folder one of our own runs? The test behind every command that may replace a folder.

A command may delete or overwrite only what it wrote itself (``demo`` its previous demo run,
``detect train --overwrite`` its previous detection run): every entry of the folder must be a file
a run writes, or a folder of such files, and nothing else — no symlink, nothing of the user's.
Imports nothing heavy, so the CLI can call it before torch loads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def is_temporary(name: str) -> bool:
    """An atomic-write leftover of ours (``.config.json.tmp``, ``.last.pt.<pid>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def checkpoint_file(path: Path) -> bool:
    return path.suffix == ".pt" or is_temporary(path.name)


def tensorboard_file(path: Path) -> bool:
    return path.name.startswith("events.out.tfevents.")


def holds_only(
    out: Path, files: tuple[str, ...], folders: dict[str, Callable[[Path], bool]], *, temporaries: bool = False
) -> bool:
    """Every entry of ``out`` is one of ``files`` (or, with ``temporaries``, one of our temporary
    files), or a folder named in ``folders`` whose entries are all plain files its test accepts."""
    for entry in out.iterdir():
        if entry.is_symlink():
            return False
        if entry.is_file() and (entry.name in files or (temporaries and is_temporary(entry.name))):
            continue
        accepts = folders.get(entry.name)
        if (
            entry.is_dir()
            and accepts is not None
            and all(f.is_file() and not f.is_symlink() and accepts(f) for f in entry.iterdir())
        ):
            continue
        return False
    return True


def recorded_config(out: Path) -> dict | None:
    """``out/config.json`` as a non-empty dict, or None when absent or not such a file."""
    try:
        recorded = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) and recorded else None


def occupied(out: Path) -> bool:
    """False for a missing or empty folder, True for a folder with entries; a file is an error."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory; choose another --out")
    return any(out.iterdir())
