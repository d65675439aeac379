"""Tables of a reproduction, computed from run directories (never typed in), as markdown.

Spread over seeds is the sample standard deviation (n - 1 in the denominator), the usual reading of
the paper's "6.61±0.16" over 5 runs of ResNet-110 (Table 6).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..engine.rundir import read_metrics
from .paper import TABLE3_RESNET34, TABLE6_ERROR, TABLE6_RESNET110_MEAN_STD, pretty_name
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
    values = [r["train_error"] for r in read_metrics(run_dir) if "train_error" in r]
    return values[-1] if values else None


def _paper_table6(model: str) -> str:
    if model == "resnet110":
        mean, std = TABLE6_RESNET110_MEAN_STD
        return f"{TABLE6_ERROR[model]:.2f} ({mean:.2f} ± {std:.2f})"
    return f"{TABLE6_ERROR[model]:.2f}" if model in TABLE6_ERROR else "-"


def degradation_table(specs: list[RunSpec], out: Path) -> str:
    rows = []
    for label, runs in group_runs(specs, out).items():
        if not runs:
            rows.append([pretty_name(label), "-", "-", "not finished", _paper_table6(label), "0"])
            continue
        train_errors = [e for e in (final_train_error(spec.run_dir(out)) for spec, _ in runs) if e is not None]
        train = f"{statistics.fmean(train_errors):.2f}" if train_errors else "-"
        rows.append([pretty_name(label), fmt_params(runs[0][1]["params"]), train, seed_stats(runs).text(),
                     _paper_table6(label), str(len(runs))])
    return markdown_table(["network", "params", "training error (%)", "test error (%)", "paper test error (%)", "runs"], rows)


def table6_table(specs: list[RunSpec], out: Path) -> str:
    rows = []
    for label, runs in group_runs(specs, out).items():
        stats = seed_stats(runs)
        params = fmt_params(runs[0][1]["params"]) if runs else "-"
        best = f"{stats.best:.2f}" if runs else "-"
        rows.append([pretty_name(label), params, stats.text() if runs else "not finished", best,
                     _paper_table6(label), str(stats.n)])
    return markdown_table(["network", "params", "test error (%) mean ± std", "best (%)", "paper (%)", "runs"], rows)


def shortcuts_table(specs: list[RunSpec], out: Path) -> str:
    rows = []
    for label, runs in group_runs(specs, out).items():
        stats = seed_stats(runs)
        top5 = statistics.fmean(float(s["test_top5_error"]) for _, s in runs) if runs else None
        paper = TABLE3_RESNET34.get(label)
        rows.append([
            f"option {label}", fmt_params(runs[0][1]["params"]) if runs else "-",
            stats.text() if runs else "not finished", f"{top5:.2f}" if top5 is not None else "-",
            f"{paper[0]:.2f} / {paper[1]:.2f}" if paper else "-", str(stats.n),
        ])
    return markdown_table(["shortcut", "params", "test top-1 error (%)", "top-5 (%)",
                           "paper ImageNet ResNet-34 top-1 / top-5 (%)", "runs"], rows)


def complexity_rows(models: list[str]) -> list[dict]:
    """Parameters and multiply-adds measured on the built models, beside Table 1 / Table 6."""
    from ..models import measure, model_info

    rows = []
    for name in models:
        info = model_info(name)
        c = measure(name)
        rows.append({**c.as_dict(), "family": info.family, "paper_params": info.paper_params,
                     "paper_macs": info.paper_macs})
    return rows


def complexity_table(rows: list[dict]) -> str:
    def gmacs(value: float | None) -> str:
        return "-" if value is None else f"{value / 1e9:.3f}"

    body = [[pretty_name(r["name"]), r["family"], str(r["depth"]), f"{r['params']:,}",
             fmt_params(r["paper_params"]) if r["paper_params"] else "-",
             gmacs(r["macs"]), gmacs(r["paper_macs"]), f"{r['input_size']}x{r['input_size']}"]
            for r in rows]
    return markdown_table(["network", "family", "depth", "params", "reference params", "mult-adds (G)",
                           "paper FLOPs (G)", "input"], body)


def responses_table(responses: dict[str, dict]) -> str:
    """One row per network of Fig. 7: how many 3x3 layers, and the spread of their response stds."""
    from .paper import depth_of

    order = sorted(responses, key=lambda m: (not m.startswith("plain"), depth_of(m)))
    rows = []
    for model in order:
        stds = responses[model]["std"]
        rows.append([pretty_name(model), str(len(stds)), f"{statistics.fmean(stds):.3f}",
                     f"{statistics.median(stds):.3f}", f"{max(stds):.3f}", f"{min(stds):.3f}",
                     str(responses[model].get("images", "-"))])
    return markdown_table(["network", "3x3 layers", "mean std", "median std", "max std", "min std",
                           "test images"], rows)
