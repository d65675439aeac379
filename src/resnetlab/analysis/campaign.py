"""A campaign: one named, versioned list of training runs, continued from wherever it stopped.

The CIFAR-10 reproduction takes days of CPU time, spread over sessions that may each end at any
moment and continue on another machine from what was committed. A campaign is therefore data: a
small TOML file (``src/resnetlab/campaigns/NAME.toml``) listing its runs in the order they are
trained, each as the ``resnetlab train`` command line that trains it. ``resnetlab reproduce
campaign NAME --data DIR --out OUT`` trains whatever is not finished (resuming from
``OUT/RUN/checkpoints/last.pt``), and ``resnetlab reproduce status OUT`` says where every run stands.

File format::

    name = "cifar10"                 # must equal the file name
    version = 1                      # bump when a run's definition changes
    description = "..."
    set = { checkpoint_every = 500 } # recipe keys for every run (``--set``)

    [[run]]
    name = "resnet20"                # directory under OUT
    recipe = "cifar10-resnet20"
    budget = 1.0                     # fraction of the paper's schedule (``--budget``)
    seed = 0
    set = { val_size = 0 }           # this run's ``--set`` keys, over the campaign's
    ships = "resnet20.cifar10"       # the shipped-weights name its final model becomes
    note = "..."                     # why the run is there (printed by ``status``)
    jpeg_quality = 50                # train and test on OUT/data-jpeg50: the campaign's --data
                                     # re-encoded at this JPEG quality (data/reencode.py)
    chroma_factor = 4                # or on OUT/data-chroma4: its colour at 1/4 resolution per
                                     # axis, brightness kept (one of the two, not both)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.config import TrainConfig, resolve_recipe
from ..engine.config_loader import read_toml, refuse_unknown, shipped_names

CAMPAIGN_KEYS = {"name", "version", "description", "set", "run"}
RUN_KEYS = {"name", "recipe", "budget", "seed", "set", "ships", "note", "jpeg_quality", "chroma_factor"}
_RUN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class PlannedRun:
    """One run of a campaign: the ``resnetlab train`` arguments that train it."""

    name: str
    recipe: str
    budget: float = 1.0
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # ``--set`` keys (campaign's, then the run's)
    ships: str | None = None
    note: str = ""
    jpeg_quality: int | None = None  # train on the campaign's data re-encoded at this quality
    chroma_factor: int | None = None  # or on it with colour at 1/factor of the resolution per axis

    def data_for(self, data: str | None, out: Path) -> str | None:
        """The dataset this run trains on: the campaign's, or its re-encoded copy under ``out``."""
        if self.jpeg_quality is not None:
            return str(Path(out) / f"data-jpeg{self.jpeg_quality}")
        if self.chroma_factor is not None:
            return str(Path(out) / f"data-chroma{self.chroma_factor}")
        return data

    def make_data(self, data: str, out: Path) -> str | None:
        """Write this run's copy of ``data`` if it has one (reused when complete); its folder."""
        from ..data.reencode import reencode_folder, subsample_chroma_folder

        folder = self.data_for(data, out)
        if self.jpeg_quality is not None:
            reencode_folder(data, folder, self.jpeg_quality)
        elif self.chroma_factor is not None:
            subsample_chroma_folder(data, folder, self.chroma_factor)
        return folder

    @property
    def data_change(self) -> str | None:
        """What its copy of the campaign's data removed, in words (None: it trains on the data)."""
        if self.jpeg_quality is not None:
            return f"re-encoded at JPEG quality {self.jpeg_quality}"
        if self.chroma_factor is not None:
            return f"colour at 1/{self.chroma_factor} resolution"
        return None

    def config(self, data: str | None) -> TrainConfig:
        """The configuration ``resnetlab train`` resolves from :meth:`train_args` (same order)."""
        # ``train_args`` passes --budget only when it is not 1: the same here.
        budget = None if self.budget == 1.0 else self.budget
        return resolve_recipe(
            self.recipe,
            budget=budget,
            changes={"data": data, "seed": self.seed},
            overrides=[f"{k}={toml_value(v)}" for k, v in self.overrides.items()],
        )

    def train_args(self, data: str | None, out: Path) -> list[str]:
        """``resnetlab train`` arguments (without ``--resume``) for the run directory ``out``."""
        args = ["train", "--recipe", self.recipe, "--out", str(out), "--seed", str(self.seed)]
        if data is not None:
            args += ["--data", data]
        if self.budget != 1.0:
            args += ["--budget", repr(self.budget)]
        for key, value in self.overrides.items():
            args += ["--set", f"{key}={toml_value(value)}"]
        return args


@dataclass(frozen=True)
class Campaign:
    name: str
    version: int
    description: str
    runs: tuple[PlannedRun, ...]

    def run(self, name: str) -> PlannedRun:
        for planned in self.runs:
            if planned.name == name:
                return planned
        raise ValueError(f"campaign {self.name} has no run {name!r}; runs: {', '.join(r.name for r in self.runs)}")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "runs": [
                {
                    "name": r.name,
                    "recipe": r.recipe,
                    "budget": r.budget,
                    "seed": r.seed,
                    "set": r.overrides,
                    "ships": r.ships,
                    "note": r.note,
                    "jpeg_quality": r.jpeg_quality,
                    "chroma_factor": r.chroma_factor,
                }
                for r in self.runs
            ],
        }


def toml_value(value: object) -> str:
    """A ``--set`` value written the way the override parser reads it back (TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {value!r} as a --set value")


def campaign_names() -> list[str]:
    return shipped_names("campaigns")


def load_campaign(name_or_path: str | Path) -> Campaign:
    """A shipped campaign by name (``cifar10``) or a campaign TOML file by path."""
    values, source, stem = read_toml(name_or_path, "campaigns", "campaign")
    return parse_campaign(values, source=source, stem=stem)


def parse_campaign(values: dict, *, source: str, stem: str | None = None) -> Campaign:
    refuse_unknown(values, sorted(CAMPAIGN_KEYS), source)
    name = values.get("name")
    if not isinstance(name, str) or not _RUN_NAME.match(name):
        raise ValueError(f"{source}: name must be a lower-case word, got {name!r}")
    if stem is not None and name != stem:
        raise ValueError(f"{source}: name {name!r} must equal the file name {stem!r}")
    version = values.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{source}: version must be a positive integer, got {version!r}")
    common = _table(values.get("set", {}), f"{source}: set")
    raw_runs = values.get("run")
    if not isinstance(raw_runs, list) or not raw_runs:
        raise ValueError(f"{source}: needs at least one [[run]] table")
    runs: list[PlannedRun] = []
    for index, raw in enumerate(raw_runs):
        where = f"{source}: run {index + 1}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: must be a table")
        refuse_unknown(raw, sorted(RUN_KEYS), where)
        run_name = raw.get("name")
        if not isinstance(run_name, str) or not _RUN_NAME.match(run_name):
            raise ValueError(f"{where}: name must be a directory name (a-z, 0-9, . _ -), got {run_name!r}")
        if any(r.name == run_name for r in runs):
            raise ValueError(f"{where}: run name {run_name!r} appears twice")
        budget = raw.get("budget", 1.0)
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1:
            raise ValueError(f"{where} ({run_name}): budget must be in (0, 1], got {budget!r}")
        seed = raw.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"{where} ({run_name}): seed must be a non-negative integer, got {seed!r}")
        ships = raw.get("ships")
        if ships is not None and not (isinstance(ships, str) and "." in ships):
            raise ValueError(
                f"{where} ({run_name}): ships must be a weights name like 'resnet20.cifar10', got {ships!r}"
            )
        quality = raw.get("jpeg_quality")
        if quality is not None and (
            isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95
        ):
            raise ValueError(f"{where} ({run_name}): jpeg_quality must be an integer in 1..95, got {quality!r}")
        chroma = raw.get("chroma_factor")
        if chroma is not None:
            from ..data.reencode import CHROMA_FACTORS  # Pillow and numpy: only for such a run

            if isinstance(chroma, bool) or not isinstance(chroma, int) or chroma not in CHROMA_FACTORS:
                choices = ", ".join(map(str, CHROMA_FACTORS))
                raise ValueError(f"{where} ({run_name}): chroma_factor must be one of {choices}, got {chroma!r}")
            if quality is not None:
                raise ValueError(
                    f"{where} ({run_name}): jpeg_quality and chroma_factor: one change of the data per run"
                )
        if not isinstance(raw.get("recipe"), str):
            raise ValueError(f"{where} ({run_name}): recipe must be a recipe name, got {raw.get('recipe')!r}")
        planned = PlannedRun(
            name=run_name,
            recipe=raw["recipe"],
            budget=float(budget),
            seed=seed,
            overrides={**common, **_table(raw.get("set", {}), f"{where} ({run_name}): set")},
            ships=ships,
            note=str(raw.get("note", "")),
            jpeg_quality=quality,
            chroma_factor=chroma,
        )
        try:
            planned.config(data=None)  # every recipe and key is checked when the file is read
        except ValueError as error:
            raise ValueError(f"{where} ({run_name}): {error}") from None
        runs.append(planned)
    return Campaign(name=name, version=version, description=str(values.get("description", "")), runs=tuple(runs))


def _table(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table of recipe keys, got {value!r}")
    return dict(value)
