"""The run directory: resolved config, provenance, metrics (JSONL + TensorBoard), progress output.

Layout::

    RUN/config.json        the resolved TrainConfig
    RUN/meta.json          package version, git revision (of a checkout), seed, versions, device, command line
    RUN/metrics.jsonl      one JSON object per log/eval point
    RUN/tb/                TensorBoard event files
    RUN/checkpoints/       last.pt (resume), best.pt (lowest validation error)
    RUN/summary.json       written at the end
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import torch

from .atomic import write_text

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../resnetlab


def _git(args: list[str], where: Path) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def project_checkout(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The root of the git checkout of this project that ``package_dir`` was imported from, or None.

    Installed into a virtual environment that lives inside some other repository, the package's
    folder is inside that repository's work tree too, and its commit says nothing about this code:
    only a work tree whose ``src/resnetlab`` is the package folder and tracks it counts.
    """
    top = _git(["rev-parse", "--show-toplevel"], package_dir)
    if top is None:
        return None
    root = Path(top).resolve()
    if (root / "src" / "resnetlab").resolve() != package_dir.resolve():
        return None
    if _git(["ls-files", "--error-unmatch", "src/resnetlab/__init__.py"], root) is None:
        return None  # an untracked copy inside another project
    return root


def git_revision(start: Path | None = None) -> str:
    """The commit of the checkout this package runs from (``-dirty`` with uncommitted changes to
    tracked files), or "unknown" when the package is not imported from a checkout of this project.
    ``start``: any folder of a work tree, instead."""
    where = start if start is not None else project_checkout()
    if where is None:
        return "unknown"
    rev = _git(["rev-parse", "HEAD"], where)
    if rev is None:
        return "unknown"
    # Only the code counts: a campaign's committed checkpoints change under results/ as it trains.
    dirty = _git(["status", "--porcelain", "--untracked-files=no", "--", "src", "pyproject.toml"], where)
    return rev + ("-dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def segments_so_far(meta_path: Path, resume_from: int | None) -> list[dict]:
    """The segments an earlier start recorded in ``meta.json`` that end at or before ``resume_from``
    (a fresh start has none). A run from before segments were recorded gets one reconstructed from
    its meta.json, which describes its latest start."""
    if resume_from is None or not meta_path.is_file():
        return []
    try:
        old = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return []
    segments = old.get("segments")
    if segments is None:
        segments = [
            {
                "from_iteration": 0,
                "precision": old.get("precision"),
                "threads": old.get("threads"),
                "git_revision": old.get("git_revision"),
                "cpu": old.get("cpu"),
                "started": old.get("started"),
            }
        ]
    return [s for s in segments if int(s.get("from_iteration", 0)) < resume_from]


def provenance(device: torch.device, precision: str, argv: list[str] | None = None) -> dict:
    from .. import __version__

    return {
        # The package version always; the commit only where it identifies this code (see above).
        "resnetlab_version": __version__,
        "git_revision": git_revision(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_model(),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "precision": precision,
        "argv": argv if argv is not None else [],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class MetricsLog:
    """Appends metrics to ``metrics.jsonl`` and TensorBoard; truncates on resume."""

    def __init__(self, run_dir: Path, *, enabled: bool = True, resume_from: int | None = None) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        if resume_from is not None and self.path.exists():
            # Lines logged after the checkpoint we resume from will be logged again: drop them.
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("iteration", 0) <= resume_from
            ]
            write_text(self.path, "".join(line + "\n" for line in kept))  # a kill here keeps the old log
        elif resume_from is None and self.path.exists():
            self.path.unlink()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=resume_from)
        except ImportError:  # tensorboard is a declared dependency; keep training if it is absent
            self.tb = None

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tb is not None:
            step = record.get("iteration", 0)
            for key, value in record.items():
                if key != "iteration" and isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
