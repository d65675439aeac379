"""The demo: the ``demo`` recipe on any number of iterations, and the folder it may replace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .run_folder import RUN_FILES

if TYPE_CHECKING:  # for annotations only: config is imported when called
    from .config import TrainConfig


def demo_config(iterations: int | None = None) -> TrainConfig:
    """The demo recipe, on ``iterations`` instead of its own when given: the
    milestones, evaluations, log lines and checkpoints keep their fractions of the run (50%/75%,
    every third, ...), so a run of 20 iterations still passes through every part of the demo; the
    final test-set evaluation happens at the end of any run."""
    from .config import load_recipe

    config = load_recipe("demo")
    if iterations is None or iterations == config.iterations:
        return config
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"--iterations must be a positive integer, got {iterations!r}")
    fraction = iterations / config.iterations

    def scale(n: int) -> int:
        return max(1, round(n * fraction))

    return config.replace(
        iterations=iterations,
        milestones=tuple(scale(m) for m in config.milestones),
        log_every=scale(config.log_every),
        eval_every=scale(config.eval_every),
        checkpoint_every=scale(config.checkpoint_every),
    )


def is_demo_run(out: Path) -> bool:
    """Everything in ``out`` is what a demo run writes, and its config is the demo recipe's (on
    the iterations it records: a run of ``demo --iterations N`` is a demo run too)."""
    from ..checkpoints.outputs import checkpoint_file, holds_only, recorded_config, tensorboard_file

    if not holds_only(out, RUN_FILES, {"checkpoints": checkpoint_file, "tb": tensorboard_file}, temporaries=True):
        return False
    recorded = recorded_config(out)
    if recorded is None:
        return False
    try:
        config = demo_config(recorded.get("iterations"))
    except ValueError:  # iterations no demo run records
        return False
    # Compared as JSON, the form config.json is written in (tuples become lists). A key that an
    # older version did not record yet is not a difference (fields are only ever added).
    demo = json.loads(json.dumps(config.to_dict(), default=str))
    return set(recorded) <= set(demo) and all(recorded[key] == demo[key] for key in recorded)


def prepare_demo_out(out: Path) -> None:
    """Make ``out`` ready for a demo: replace a previous demo run, never anything else.

    Raises ValueError when ``out`` is a file, FileExistsError when it holds anything else."""
    from ..checkpoints.outputs import occupied

    if not occupied(out):
        return
    if not is_demo_run(out):
        raise FileExistsError(
            f"{out} is not empty and is not a previous demo run; remove it yourself or choose another --out"
        )
    shutil.rmtree(out)
