"""Training runs of a reproduction suite: one directory per (network, seed), reused or resumed.

Layout: ``OUT/runs/{name}-s{seed}``, e.g. ``runs/plain20-s0`` or ``runs/resnet20-B-s0`` for the
shortcut study. A directory is trusted only when its ``config.json`` equals the configuration we
would train now (compared as JSON), so a suite restarted with the same command skips finished runs,
resumes interrupted ones and refuses to mix results from a different recipe.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..engine.config import TrainConfig, load_recipe

logger = logging.getLogger(__name__)  # a child of the library's one logger, "resnetlab"

# Settings that say how a run was executed or watched, not what it learned: a difference in these
# from the recipe is no departure from it (the reports and the shipped weights' ``recipe_changes``).
EXECUTION_KEYS = frozenset(
    {
        "data",
        "seed",
        "precision",
        "device",
        "channels_last",
        "compile",
        "workers",
        "on_error",
        "log_every",
        "eval_every",
        "checkpoint_every",
        "eval_batch_size",
        "track_test_error",
        "stop_at_chance",
    }
)


@dataclass(frozen=True)
class RunSpec:
    """One training run of a suite: what to train and where."""

    name: str  # directory name under OUT/runs, e.g. "resnet20-B-s1"
    model: str  # registry name, e.g. "resnet20"
    seed: int
    config: TrainConfig
    label: str = ""  # what tables call it ("A", "ResNet-20", ...)

    def run_dir(self, out: Path) -> Path:
        return Path(out) / "runs" / self.name


def run_config(
    model: str,
    *,
    budget: float,
    data: str | None,
    seed: int,
    model_options: dict | None = None,
    overrides: dict | None = None,
) -> TrainConfig:
    """``load_recipe("cifar10-{model}").scaled(budget).replace(data=..., seed=...)``.

    ``overrides`` (library use, e.g. tests: ``{"iterations": 8, "model_options": {"depth": 8}}``)
    replace recipe keys afterwards; ``model_options`` inside it are merged, not replaced.
    """
    config = load_recipe(f"cifar10-{model}").scaled(budget).replace(data=data, seed=seed)
    if model_options:
        config = config.replace(model_options={**config.model_options, **model_options})
    if overrides:
        changes = dict(overrides)
        if "model_options" in changes:
            changes["model_options"] = {**config.model_options, **changes["model_options"]}
        if "milestones" in changes:
            changes["milestones"] = tuple(changes["milestones"])
        config = config.replace(**changes)
    return config


def as_json(value: object) -> object:
    """What a value looks like after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def _field_defaults() -> dict:
    defaults = {}
    for f in dataclasses.fields(TrainConfig):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = as_json(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = as_json(f.default_factory())
    return defaults


def config_differences(saved: dict, wanted: TrainConfig) -> list[str]:
    """Keys whose JSON values differ between a saved ``config.json`` and ``wanted``.

    A key the saved file lacks counts as equal when ``wanted`` holds the field's default: the run
    was written before that knob existed, and its default is what the run did.
    """
    want = as_json(wanted.to_dict())
    have = as_json(saved)
    defaults = _field_defaults()
    return sorted(
        k
        for k in set(want) | set(have)
        if have.get(k) != want.get(k) and not (k not in have and k in defaults and want.get(k) == defaults[k])
    )


def run_state(run_dir: Path) -> str:
    """``"finished"`` (summary.json), ``"partial"`` (a checkpoint to resume) or ``"empty"``."""
    if (run_dir / "summary.json").is_file():
        return "finished"
    if (run_dir / "checkpoints" / "last.pt").is_file():
        return "partial"
    return "empty"


def check_config(run_dir: Path, wanted: TrainConfig) -> None:
    """Raise ValueError when ``run_dir`` was made with another configuration."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    saved = json.loads(path.read_text())
    changed = config_differences(saved, wanted)
    if changed:
        detail = "; ".join(
            f"{k}: has {saved.get(k)!r}, wanted {as_json(wanted.to_dict()).get(k)!r}" for k in changed[:4]
        )
        raise ValueError(
            f"{run_dir} holds a run with a different configuration (differing keys: {', '.join(changed)}; "
            f"{detail}); use another --out or the original --data/--budget"
        )


def ensure_run(
    spec: RunSpec,
    out: Path,
    *,
    trainer: Callable,
    log: Callable[[str], None] = logger.info,
    should_stop: Callable[[], bool] = lambda: False,
    **train_kwargs,
) -> str:
    """Make sure ``spec`` has a finished run under ``out``; returns what was done.

    ``"reused"``: a finished run with the same configuration; ``"resumed"``/``"trained"``: trained
    now (``"interrupted"`` when ``should_stop`` fired; the checkpoint is kept for the next call).
    """
    run_dir = spec.run_dir(out)
    check_config(run_dir, spec.config)
    state = run_state(run_dir)
    if state == "finished":
        log(f"{spec.name}: finished run reused ({run_dir})")
        return "reused"
    resume = state == "partial"
    log(
        f"{spec.name}: {'resuming' if resume else 'training'} {spec.config.model} for "
        f"{spec.config.iterations:,} iterations -> {run_dir}"
    )
    result = trainer(spec.config, run_dir, resume=resume, should_stop=should_stop, log=log, **train_kwargs)
    if result.status != "completed":
        return "interrupted"
    return "resumed" if resume else "trained"


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def finished_summary(run_dir: Path) -> dict | None:
    path = Path(run_dir) / "summary.json"
    return read_json(path) if path.is_file() else None
