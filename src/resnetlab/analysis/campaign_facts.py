"""What the campaign report states about each planned run, read from the campaign folder: final
test errors from ``summary.json``, the latest logged errors of runs in flight, hours from the
checkpoints, the load and hosts from ``campaign-log.jsonl``, the precision from each run's
``meta.json`` segments (``campaign_report`` renders them beside the paper)."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from ..engine.precision import arithmetic, describe_segments
from .campaign_log import CampaignLog
from .campaign_status import RunProgress, campaign_progress

CIFAR10_TEST_IMAGES = 10_000


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def shown_test_error(f: RunFacts) -> str:
    """The final model's test error, or the latest logged one of a run in flight (marked)."""
    p = f.progress
    if p.test_error is None:
        return "-"
    return percent(p.test_error) if p.state == "finished" else f"({percent(p.test_error)} at {f.test_iteration or 0:,})"


def shown_hours(f: RunFacts) -> str:
    """Hours of training so far ("+" while the run is unfinished; "-" before it starts)."""
    if f.progress.state == "pending":
        return "-"
    return f"{f.progress.seconds_spent / 3600:.1f}" + ("" if f.progress.state == "finished" else "+")


def shown_load(f: RunFacts) -> str:
    """The median load average sampled while the run trained."""
    return "-" if f.median_load is None else f"{f.median_load:.1f}"


def standard_error(error_percent: float, images: int = CIFAR10_TEST_IMAGES) -> float:
    """Binomial standard error, in points, of an error rate measured on ``images`` images."""
    p = error_percent / 100
    return 100 * math.sqrt(p * (1 - p) / images)


def combined_standard_error(*errors_percent: float) -> float:
    """Standard error, in points, of a sum or difference of independent test errors (one seed each)."""
    return math.sqrt(sum(standard_error(e) ** 2 for e in errors_percent))


def against_noise(difference: float, noise: float) -> str:
    """ "within" or "beyond": where a difference stands against twice its standard error ``noise``."""
    return "within" if abs(difference) < 2 * noise else "beyond"


@dataclass(frozen=True)
class RunFacts:
    """One planned run as the report states it."""

    progress: RunProgress
    model: str
    budget: float
    train_images: int
    precision: str
    hosts: str
    median_load: float | None
    final_train_error: float | None  # mean of the last 5 logged points (one point is one batch's)
    test_iteration: int | None  # where the latest logged test error was measured
    jpeg_quality: int | None
    warmup: tuple[float, float] | None = None  # (lr, training error that ends it) where it warms up
    chroma_factor: int | None = None  # its data's colour at 1/factor resolution (None: the campaign's)

    @property
    def on_reduced_data(self) -> bool:
        """Whether it trains on a copy of the campaign's data with more information removed."""
        return self.jpeg_quality is not None or self.chroma_factor is not None

    @property
    def setting(self) -> tuple[str, float, int]:
        """What a run on a copy of the data shares with the run it is compared with: the network,
        the budget and the training-set size."""
        return self.model, self.budget, self.train_images


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _logged(run_dir: Path) -> tuple[float | None, int | None]:
    """(mean training error of the last 5 log points, iteration of the latest test error)."""
    path = run_dir / "metrics.jsonl"
    train, test_at = [], None
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "train_error" in record:
            train.append(record["train_error"])
        if "test_error" in record:
            test_at = record.get("iteration")
    return (statistics.fmean(train[-5:]) if train else None), test_at


def run_facts(out: Path) -> tuple[str | None, list[RunFacts]]:
    out = Path(out)
    campaign, data, progress = campaign_progress(out)
    loads: dict[str, list[float]] = {}
    hosts_of: dict[str, set[str]] = {}
    for record in CampaignLog(out).read():
        if record.get("event") == "load" and record.get("load") is not None:
            for name in record.get("runs", []):
                loads.setdefault(name, []).append(record["load"])
        elif record.get("event") in ("start", "resume") and record.get("host"):
            hosts_of.setdefault(record.get("run", ""), set()).add(record["host"])
    facts = []
    for planned, p in zip(campaign.runs, progress, strict=True):
        if p.state == "running":
            # The report describes the committed folder, where a run trained while it is written is
            # partial too (its lock is not committed): the README reads the same either way.
            p = replace(p, state="partial")
        run_dir = out / planned.name
        config = planned.config(planned.data_for(data, out))
        meta, summary = _json(run_dir / "meta.json"), _json(run_dir / "summary.json")
        segments = meta.get("segments") or ([{"from_iteration": 0, **meta}] if meta else [])
        precision = summary.get("precision") or (
            describe_segments(segments, "precision", p.done, arithmetic) if segments else "-"
        )
        # The campaign log names every host a run started on (with its bf16/AMX features); segments
        # recorded before that log existed name the CPU only.
        hosts = sorted(hosts_of.get(planned.name) or {s.get("cpu") for s in segments if s.get("cpu")})
        train_error, test_at = _logged(run_dir)
        facts.append(
            RunFacts(
                progress=p,
                model=config.model,
                budget=planned.budget,
                train_images=50_000 - config.val_size if config.data else 0,
                precision=precision,
                hosts="; ".join(hosts) or "-",
                median_load=statistics.median(loads[planned.name]) if loads.get(planned.name) else None,
                final_train_error=train_error,
                test_iteration=test_at,
                jpeg_quality=planned.jpeg_quality,
                warmup=None if config.warmup_lr is None else (config.warmup_lr, config.warmup_until_error),
                chroma_factor=planned.chroma_factor,
            )
        )
    return data, facts
