"""Shipping a finished campaign run as named weights (``resnetlab reproduce ship``).

:func:`ship` checks that a run is a finished full-schedule run of the network the name says, and
writes what a user of the weights needs to trust them into their meta: the measured errors, the
recipe and every departure from it, the precision of each segment, the code revisions the run went
through. ``checkpoints.pretrained.install`` stores the file and its manifest entry.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from ..checkpoints.pretrained import Weights, install
from ..engine.config import load_recipe
from .runs import EXECUTION_KEYS, config_differences


def _recipe_of(run_meta: dict, model: str) -> str:
    """The ``--recipe`` its command line named (``meta.json``), else the model's CIFAR-10 recipe."""
    argv = run_meta.get("argv") or []
    for flag, value in itertools.pairwise(argv):
        if flag == "--recipe":
            return value
    return f"cifar10-{model}"


def recipe_changes(config: dict, recipe: str) -> dict:
    """What a run's resolved ``config.json`` changed in its recipe, key by key (its values), the
    settings of execution left out: a user of the weights sees every departure from the paper's
    recipe (a warm-up, all 50k training images) without reading the run's files."""
    differences = config_differences(config, load_recipe(recipe))
    return {key: config.get(key) for key in differences if key not in EXECUTION_KEYS}


def ship(run_dir: Path, name: str, into: Path, *, min_iterations: int = 64_000) -> Weights:
    """Copy a finished run's ``final.safetensors`` into ``into`` as ``name`` and record its manifest
    entry (sha256 and the measured facts); refuses unfinished and reduced-budget runs (fewer than
    ``min_iterations``, the paper's 64k by default)."""
    run_dir, into = Path(run_dir), Path(into)
    summary_path, final = run_dir / "summary.json", run_dir / "final.safetensors"
    if not summary_path.is_file() or not final.is_file():
        raise ValueError(f"{run_dir} is not a finished campaign run (needs summary.json and final.safetensors)")
    summary = json.loads(summary_path.read_text())
    config = json.loads((run_dir / "config.json").read_text())
    meta_file = json.loads((run_dir / "meta.json").read_text())
    if config["iterations"] < min_iterations or summary["iterations"] != config["iterations"]:
        raise ValueError(
            f"{run_dir} trained {summary['iterations']:,} iterations, fewer than the paper's "
            f"{min_iterations:,}: only full-schedule runs are shipped"
        )
    model = name.split(".", 1)[0]
    if summary["model"] != model:
        raise ValueError(f"{run_dir} trained {summary['model']}, not {model}")
    revisions = []
    log = run_dir.parent / "campaign-log.jsonl"
    if log.is_file():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if record.get("run") == run_dir.name and record.get("event") in ("start", "resume"):
                revisions.append(
                    {"from_iteration": record.get("iteration"), "git_revision": record.get("git_revision")}
                )
    train_images = summary.get("train_images") or (50_000 - int(config.get("val_size", 0)))
    recipe = _recipe_of(meta_file, model)
    meta = {
        "dataset": "CIFAR-10",
        "data": config.get("data"),
        "data_note": "trained and tested on the CIFAR-10 JPEG copy (quality ~75, 4:2:0 chroma), not the "
        "official PNG-exact release; its re-encoding costs accuracy",
        "recipe": recipe,
        "recipe_changes": recipe_changes(config, recipe),
        "iterations": summary["iterations"],
        "batch_size": config["batch_size"],
        "train_images": train_images,
        "seed": config["seed"],
        "precision": summary.get("precision"),
        "test_top1_error": summary["test_top1_error"],
        "test_top5_error": summary.get("test_top5_error"),
        "test_images": summary.get("test_images"),
        "wall_hours": round(summary.get("wall_seconds", 0) / 3600, 2),
        "git_revision": meta_file.get("git_revision"),
        "code_revisions": revisions,
        "params": summary.get("params"),
        "model_options": summary.get("model_options", {}),
    }
    return install(final, name, into, meta)
