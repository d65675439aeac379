"""The folder a training run writes: what it holds, and whether a new run may start in it.

Light (no torch): ``resnetlab train`` checks ``--out`` before anything heavy loads, on every rank
before any rank has written to it.
"""

from __future__ import annotations

from pathlib import Path

# What ``train`` writes into a run directory (see checkpoints/rundir.py); only these are ever replaced.
RUN_FILES = ("config.json", "meta.json", "metrics.jsonl", "summary.json")
RUN_FOLDERS = ("checkpoints", "tb")


def holds_run_config(out: Path) -> bool:
    """Whether ``out/config.json`` is a resnetlab training config (not some other program's)."""
    from ..checkpoints.outputs import recorded_config
    from .config import FIELD_NAMES

    values = recorded_config(out)
    return values is not None and set(values) <= set(FIELD_NAMES)


def check_fresh_out(out: Path) -> None:
    """Refuse to start a run where it would overwrite what is not a run, or lose an unfinished one.

    Raises ValueError when ``out`` is a file, FileExistsError when it holds an unfinished run or
    files of a run's names that are not a resnetlab run's."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory; choose another --out")
    if (out / "checkpoints" / "last.pt").is_file() and not (out / "summary.json").exists():
        raise FileExistsError(f"{out} holds an unfinished run: pass --resume to continue it, or choose another --out")
    ours = [name for name in RUN_FILES + RUN_FOLDERS if (out / name).exists()]
    if ours and not holds_run_config(out):
        raise FileExistsError(
            f"{out} holds {', '.join(ours)} that are not from a resnetlab run and would be "
            "overwritten; choose another --out"
        )
