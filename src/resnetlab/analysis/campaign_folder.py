"""A campaign folder on disk: its definition (``campaign.json``), the lock of each run directory,
the finished runs' final weights (and shipping them: ``ship_finished``), and how far a run's
checkpoint got. The runner (``campaign_runner.py``) and the status (``campaign_status.py``) read
and write it through here."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..checkpoints.atomic import write_json
from .campaign import Campaign

if TYPE_CHECKING:  # for annotations only: pretrained imports torch
    from ..checkpoints.pretrained import Weights

LOCK_NAME = ".campaign.lock"


def prepare_folder(campaign: Campaign, out: Path, data: str | None) -> None:
    """Write ``OUT/campaign.json``, or check that the folder holds this campaign with this data."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "campaign.json"
    wanted = {"campaign": campaign.to_dict(), "data": data}
    if path.is_file():
        have = json.loads(path.read_text())
        if have.get("campaign", {}).get("name") != campaign.name:
            raise ValueError(f"{out} holds campaign {have.get('campaign', {}).get('name')!r}, not {campaign.name!r}")
        if have.get("data") != data:
            raise ValueError(f"{out} was started with --data {have.get('data')!r}; continue it with the same --data")
        if have == wanted:
            return
        # A new version of the definition: planned runs may be added or changed; a changed run's
        # directory refuses to resume (its config differs), so nothing is mixed silently.
    write_json(path, wanted)


def read_folder(out: Path) -> tuple[Campaign, str | None]:
    """The campaign and data a folder was started with."""
    from .campaign import parse_campaign

    path = Path(out) / "campaign.json"
    if not path.is_file():
        raise FileNotFoundError(f"{out} is not a campaign folder (no campaign.json)")
    saved = json.loads(path.read_text())
    d = saved["campaign"]
    values = {
        "name": d["name"],
        "version": d["version"],
        "description": d.get("description", ""),
        "run": [{k: v for k, v in r.items() if v is not None} for r in d["runs"]],
    }
    return parse_campaign(values, source=str(path)), saved.get("data")


def finalize_run(run_dir: Path) -> Path:
    """Keep a finished run's final weights only: ``final.safetensors`` replaces ``checkpoints/``."""
    from ..checkpoints.checkpoint import load_model
    from ..checkpoints.loading import save_safetensors

    final = run_dir / "final.safetensors"
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        save_safetensors(load_model(last), final)  # atomic: a kill leaves last.pt to redo it from
    if final.is_file():
        for name in ("last.pt", "best.pt"):
            (run_dir / "checkpoints" / name).unlink(missing_ok=True)
    return final


def try_lock(run_dir: Path) -> int | None:
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def checkpoint_progress(run_dir: Path) -> tuple[int, float] | None:
    """(iteration, training seconds so far) of a run's last checkpoint: what survives a kill."""
    import torch

    path = Path(run_dir) / "checkpoints" / "last.pt"
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        return int(payload.get("iteration", 0)), float(payload.get("wall_seconds", 0.0))
    except Exception:  # a foreign or unreadable file: the run will say so when it resumes
        return None


def checkpoint_iteration(run_dir: Path) -> int | None:
    progress = checkpoint_progress(run_dir)
    return progress[0] if progress else None


class NothingToShip(ValueError):
    """No finished run of a campaign folder is marked ``ships``: nothing was written."""


def ship_finished(out: Path, into: Path, on_shipped: Callable[[Weights], None] | None = None) -> list[Weights]:
    """Ship the final weights of every finished run of the campaign folder ``out`` that its
    campaign marks ``ships`` into the weights folder ``into`` (``analysis.shipping.ship``,
    which refuses reduced-budget runs), in the campaign's order. ``on_shipped`` sees each one as
    soon as it is written, so a later refusal leaves the earlier ones shipped and reported.

    Returns what was shipped; raises NothingToShip (a ValueError) when no run qualifies."""
    from .runs import run_state
    from .shipping import ship

    out = Path(out)
    campaign, _ = read_folder(out)
    shipped = []
    for planned in campaign.runs:
        if planned.ships and run_state(out / planned.name) == "finished":
            weights = ship(out / planned.name, planned.ships, into)
            shipped.append(weights)
            if on_shipped is not None:
                on_shipped(weights)
    if not shipped:
        raise NothingToShip(f"nothing to ship: no finished run of {out} is marked `ships` in campaign {campaign.name}")
    return shipped
