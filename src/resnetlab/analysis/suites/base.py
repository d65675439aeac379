"""The record of one paper result: what it trains, what it prints and draws, what it is compared with.

A suite module (``degradation.py``, ``table6.py`` ...) builds one :class:`Suite` named ``SUITE``;
the registry finds it, so adding a paper result means adding one module and nothing else.

``resnetlab --help`` lists the suites, so this package is imported before torch is: suite modules
keep torch, numpy and matplotlib imports inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..runs import RunSpec, run_config
from ..tables import group_runs

if TYPE_CHECKING:
    from .options import SuiteOptions

Results = TypeVar("Results")


@dataclass(frozen=True)
class Runs:
    """The planned runs of a suite and the folder they live in: what run-based tables read."""

    specs: list[RunSpec]
    out: Path

    def groups(self) -> dict[str, list[tuple[RunSpec, dict]]]:
        """Finished runs (with their summary.json) by table row, in plan order."""
        return group_runs(self.specs, self.out)

    def seed0_logged(self) -> list[RunSpec]:
        """Seed-0 runs that logged curves: the ones the figures draw (the paper plots one run each)."""
        return [s for s in self.specs if s.seed == 0 and (s.run_dir(self.out) / "metrics.jsonl").is_file()]


@dataclass(frozen=True)
class Figure:
    """One figure of a report: drawn into ``OUT/figures/{file}`` and shown under ``caption``."""

    file: str
    caption: str
    # (results, options, path): draws the figure, or nothing when there is nothing to draw yet.
    draw: Callable[[Any, SuiteOptions, Path], None]
    # True when the figure needs no run (complexity measures the built models): the report links
    # it even when it was not drawn this time (``plot=False``).
    needs_no_runs: bool = False

    @property
    def path(self) -> str:
        """Relative to OUT, as reports link it."""
        return f"figures/{self.file}"


def plan_seeded_runs(options: SuiteOptions, seeds: range | None = None) -> list[RunSpec]:
    """One run per (network, seed) of the paper's CIFAR-10 recipe; the table row is the network."""
    seeds = range(options.seeds) if seeds is None else seeds
    return [
        RunSpec(f"{model}-s{seed}", model, seed, run_config(model, seed=seed, **run_kwargs(options)), model)
        for model in options.chosen_models
        for seed in seeds
    ]


def run_kwargs(options: SuiteOptions) -> dict:
    """What every suite run shares with the suite: budget, data and the library's overrides."""
    return dict(budget=options.budget, data=options.data, overrides=options.overrides)


def one_run_per_network(seeds: int) -> str | None:
    """The seeds deviation of most suites: the paper reports single runs, so only one seed needs saying."""
    return "One run per network (seed 0)." if seeds == 1 else None


def common_deviations(options: SuiteOptions, lines: list[str]) -> list[str]:
    """Most suites add no deviation of their own to those every run-based suite states."""
    return lines


def no_findings(results: Any) -> list[str]:
    return []


def runs_of(options: SuiteOptions, specs: list[RunSpec]) -> Runs:
    """The results of a run-based suite: its run directories, read by its table and findings."""
    return Runs(specs, options.out)


@dataclass(frozen=True)
class Suite(Generic[Results]):
    """One paper result as ``resnetlab reproduce NAME`` reproduces and reports it."""

    name: str  # the subcommand and the file names: suite-{name}.json, report-{name}.md
    title: str  # the report's heading
    help: str  # one line for ``resnetlab reproduce --help``
    order: int  # position in the report index and the README (the order the paper's results are read in)
    models: tuple[str, ...] | None  # networks it accepts; None: every registered network
    default_models: tuple[str, ...]  # the paper's set
    plan: Callable[[SuiteOptions], list[RunSpec]]  # the training runs it needs
    results: Callable[[SuiteOptions, list[RunSpec]], Results]  # what table, findings and figure read
    table: Callable[[Results], str]
    figure: Figure
    paper: Mapping[str, Any]  # the paper's numbers printed beside ours (analysis/paper.py)
    findings: Callable[[Results], list[str]] = no_findings
    notes: tuple[str, ...] = ()
    trains: bool = True  # False: no runs, no --data/--budget/--seeds, no setup or deviation lines
    # What the paper ran per network, said when our seeds differ (Table 6's best of 5 runs).
    seeds_deviation: Callable[[int], str | None] = one_run_per_network
    # The suite's own deviations around the ones every run-based suite states (their order is the report's).
    deviations: Callable[[SuiteOptions, list[str]], list[str]] = common_deviations
    # A measurement of the finished runs before reporting (Fig. 7's layer responses), with
    # (options, test arrays or None, cache_dir, log).
    measure: Callable[..., Any] | None = None
