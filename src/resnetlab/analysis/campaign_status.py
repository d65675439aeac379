"""``resnetlab reproduce status OUT``: where every planned run of a campaign folder stands.

For each run: iterations done (the last checkpoint's, i.e. what survives a kill) of the total, the
latest validation and test error, the training speed of its last log points, and an estimate of
the time left on this machine. A run not started yet is estimated from the speed measured for the
runs already trained, scaled by the networks' multiply-adds (training time per image is close to
proportional to them on one machine); an estimate says so.
"""

from __future__ import annotations

import fcntl
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from .campaign import Campaign, PlannedRun
from .campaign_folder import LOCK_NAME, checkpoint_progress, read_folder
from .campaign_log import CampaignLog, host_description, load_average
from .runs import run_state

RECENT_LOG_POINTS = 10  # images/s is the median of this many last log points


@dataclass(frozen=True)
class RunProgress:
    name: str
    state: str  # "finished" | "running" | "partial" | "failed" | "pending"
    done: int
    total: int
    val_error: float | None
    test_error: float | None
    images_per_second: float | None  # measured on this run (None: not started)
    seconds_spent: float
    seconds_left: float | None
    estimated_speed: bool  # seconds_left comes from other runs' speed
    note: str
    failure: str | None = None  # why its last start failed (campaign-log.jsonl), while not running


def _last_failures(out: Path) -> dict[str, str]:
    """Each run whose last start ended in a failure (not a requested stop), with its reason."""
    last: dict[str, dict] = {}
    for r in CampaignLog(out).read():
        if r.get("event") in ("start", "resume", "stopped", "failed", "finished") and "run" in r:
            last[r["run"]] = r
    return {
        name: f"{r.get('reason', 'see train.log')} (iteration {r.get('iteration')})"
        for name, r in last.items()
        if r["event"] == "failed"
    }


def _is_locked(run_dir: Path) -> bool:
    path = run_dir / LOCK_NAME
    if not path.is_file():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _latest(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return values[-1] if values else None


def _macs(planned: PlannedRun, cache: dict) -> float:
    from ..models import build_model, count_macs

    config = planned.config(data=None)
    key = (config.model, json.dumps(config.model_options, sort_keys=True))
    if key not in cache:
        cache[key] = float(count_macs(build_model(config.model, **config.model_options), input_size=32))
    return cache[key]


def campaign_progress(out: Path) -> tuple[Campaign, str | None, list[RunProgress]]:
    out = Path(out)
    campaign, data = read_folder(out)
    failures = _last_failures(out)
    measured: list[tuple[PlannedRun, float]] = []
    rows: list[tuple[PlannedRun, dict]] = []
    for planned in campaign.runs:
        run_dir = out / planned.name
        config = planned.config(planned.data_for(data, out))
        metrics = _metrics(run_dir)
        speeds = [r["images_per_second"] for r in metrics if r.get("images_per_second")][-RECENT_LOG_POINTS:]
        ips = statistics.median(speeds) if speeds else None
        state = run_state(run_dir)
        done, spent, test = 0, 0.0, _latest(metrics, "test_error")
        if state == "finished":
            summary = json.loads((run_dir / "summary.json").read_text())
            done, spent = int(summary["iterations"]), float(summary.get("wall_seconds", 0.0))
            test = summary["test_top1_error"]  # the final model's, in fp32: the reported figure
        elif state == "partial":
            done, spent = checkpoint_progress(run_dir) or (0, 0.0)
        if state != "finished" and _is_locked(run_dir):
            state = "running"
        elif state != "finished" and planned.name in failures:
            state = "failed"
        elif state == "empty":
            state = "pending"
        if ips:
            measured.append((planned, ips))
        rows.append(
            (
                planned,
                dict(
                    state=state,
                    done=done,
                    total=config.iterations,
                    ips=ips,
                    spent=spent,
                    batch=config.batch_size,
                    val=_latest(metrics, "val_error"),
                    test=test,
                ),
            )
        )
    macs_cache: dict = {}
    progress = []
    for planned, r in rows:
        ips, estimated = r["ips"], False
        if ips is None and measured:
            # images/s x multiply-adds per image is about constant across these nets on one machine.
            work = statistics.median(speed * _macs(p, macs_cache) for p, speed in measured)
            ips, estimated = work / _macs(planned, macs_cache), True
        left = None
        if r["state"] == "finished":
            left = 0.0
        elif ips:
            left = (r["total"] - r["done"]) * r["batch"] / ips
        progress.append(
            RunProgress(
                name=planned.name,
                state=r["state"],
                done=r["done"],
                total=r["total"],
                val_error=r["val"],
                test_error=r["test"],
                images_per_second=r["ips"],
                seconds_spent=r["spent"],
                seconds_left=left,
                estimated_speed=estimated,
                note=planned.note,
                failure=failures.get(planned.name) if r["state"] == "failed" else None,
            )
        )
    return campaign, data, progress


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def deferred_here(campaign: Campaign, data: str | None, progress: list[RunProgress]) -> list[str]:
    """The unfinished runs that ``continue_campaign`` would train last on this machine."""
    from ..engine.precision import cpu_has_native_bf16
    from .campaign_runner import order_for_host

    unfinished = [campaign.run(p.name) for p in progress if p.state not in ("finished", "running")]
    return [r.name for r in order_for_host(unfinished, data, None, cpu_has_native_bf16())[1]]


def format_status(out: Path) -> str:
    campaign, data, progress = campaign_progress(out)
    lines = [
        f"campaign {campaign.name} v{campaign.version} in {out} (data: {data or 'synthetic'})",
        f"host: {host_description()}; load average now {load_average()}",
        "",
        f"{'run':<18} {'state':<9} {'iterations':>17} {'val err':>8} {'test err':>9} {'img/s':>6} "
        f"{'spent':>6} {'left':>7}  note",
    ]
    for p in progress:
        left = _hours(p.seconds_left) + ("*" if p.estimated_speed else "")
        ips = f"{p.images_per_second:.0f}" if p.images_per_second else "-"
        lines.append(
            f"{p.name:<18} {p.state:<9} {p.done:>8,}/{p.total:<8,} {_percent(p.val_error):>8} "
            f"{_percent(p.test_error):>9} {ips:>6} {_hours(p.seconds_spent):>6} {left:>7}  {p.note}"
        )
    for p in progress:
        if p.failure:
            lines.append(f"{p.name} failed: {p.failure}")
    deferred = deferred_here(campaign, data, progress)
    if deferred:
        lines.append(
            f"deferred on this host: {', '.join(deferred)} (pinned to bf16, which this CPU emulates at about a "
            "third of fp32's speed): trained after the other runs"
        )
    remaining = [p.seconds_left for p in progress if p.state != "finished"]
    total_left = sum(s for s in remaining if s is not None)
    unknown = sum(1 for s in remaining if s is None)
    lines.append("")
    lines.append(
        f"{sum(p.state == 'finished' for p in progress)} of {len(progress)} runs finished; "
        f"about {_hours(total_left)} of training left at one run at a time"
        + (f" ({unknown} run(s) not estimated)" if unknown else "")
        + (
            "; * estimated from the measured runs' speed scaled by multiply-adds"
            if any(p.estimated_speed for p in progress)
            else ""
        )
    )
    loads = [r["load"] for r in CampaignLog(out).read() if r.get("load") is not None]
    if loads:
        lines.append(
            f"load average recorded while training: median {statistics.median(loads):.2f}, "
            f"max {max(loads):.2f} over {len(loads)} samples (campaign-log.jsonl)"
        )
    return "\n".join(lines)
