"""``OUT/campaign-log.jsonl`` and the host facts each of its records carries.

Every start, resume, stop and end of a campaign run is appended with the code revision, the host
(its CPU and the features that decide the engine's precision and speed) and the load average, plus
a load sample every few minutes: a figure of time or speed in a report says how loaded the machine
was, and on which machine each stretch of a run trained.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path


def host_description() -> str:
    """The CPU model and its relevant features (bf16/AMX decide the engine's precision and speed)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    features = [f for f in ("avx512_bf16", "amx_tile") if f in flags]
    return f"{model}, {os.cpu_count()} cores" + (f" ({', '.join(features)})" if features else "")


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class CampaignLog:
    """``OUT/campaign-log.jsonl``: one JSON object per event, appended and flushed at once."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / "campaign-log.jsonl"

    def write(self, event: str, **fields) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, **fields}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a kill: skip it, keep the rest
                continue
        return records
