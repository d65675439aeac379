"""What the suites' tables share: seed statistics, runs grouped by table row, markdown; computed
from run directories, never typed in. Each suite's own table lives in its module (``suites/``).

Spread over seeds is the sample standard deviation (n - 1 in the denominator), the usual reading of
the paper's "6.61±0.16" over 5 runs of ResNet-110 (Table 6).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from .runs import RunSpec, finished_summary


@dataclass(frozen=True)
class SeedStats:
    """Test errors of one network over seeds."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float | None:
        """Sample std over seeds; None for a single run (no spread to report)."""
        return statistics.stdev(self.values) if self.n > 1 else None

    @property
    def best(self) -> float:
        return min(self.values) if self.values else math.nan

    def text(self) -> str:
        if not self.values:
            return "-"
        return f"{self.mean:.2f}" if self.std is None else f"{self.mean:.2f} ± {self.std:.2f}"


def markdown_table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_params(params: int | float | None) -> str:
    if params is None:
        return "-"
    return f"{params / 1e6:.2f}M" if params >= 1e5 else f"{int(params):,}"


def group_runs(specs: list[RunSpec], out: Path) -> dict[str, list[tuple[RunSpec, dict]]]:
    """Finished runs by table row (``spec.label``), in the order the specs come; unfinished skipped."""
    groups: dict[str, list[tuple[RunSpec, dict]]] = {}
    for spec in specs:
        summary = finished_summary(spec.run_dir(out))
        groups.setdefault(spec.label, [])
        if summary is not None:
            groups[spec.label].append((spec, summary))
    return groups


def seed_stats(runs: list[tuple[RunSpec, dict]]) -> SeedStats:
    return SeedStats(tuple(float(s["test_top1_error"]) for _, s in runs))


def final_train_error(run_dir: Path) -> float | None:
    """Training error of the last logged window (augmented mini-batches, as the paper plots it)."""
    from ..checkpoints.rundir import read_metrics  # imports torch: not at ``resnetlab --help`` time

    values = [r["train_error"] for r in read_metrics(run_dir) if "train_error" in r]
    return values[-1] if values else None


def mean_errors(specs: list[RunSpec], out: Path) -> dict[str, tuple[float, float | None]]:
    """label -> (mean test error, mean final training error) over finished seeds."""
    result = {}
    for label, runs in group_runs(specs, out).items():
        if not runs:
            continue
        train = [e for e in (final_train_error(s.run_dir(out)) for s, _ in runs) if e is not None]
        result[label] = (seed_stats(runs).mean, statistics.fmean(train) if train else None)
    return result


def comparison_word(deeper: float, shallower: float, *, lower: str = "better", higher: str = "worse") -> str:
    return lower if deeper < shallower else higher if deeper > shallower else "equal"
