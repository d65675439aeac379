"""Markdown reports: one per suite (``OUT/report-{suite}.md``), an index (``OUT/report.md``) and the
README block between ``<!-- reproduce:begin -->`` and ``<!-- reproduce:end -->``.

Every statement about the setup is derived from what the run directories record (config.json,
meta.json, summary.json), so a report cannot claim a recipe the runs did not use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.config import load_recipe
from .paper import PAPER_ITERATIONS, PAPER_MILESTONES
from .runs import EXECUTION_KEYS, RunSpec, config_differences, read_json

BEGIN, END = "<!-- reproduce:begin -->", "<!-- reproduce:end -->"
# Keys left out of "Changed from the paper's recipe": how a run was executed, and model_options,
# whose entries that line lists one by one.
CADENCE_KEYS = EXECUTION_KEYS | {"model_options"}


@dataclass
class SuiteReport:
    suite: str
    title: str
    command: str
    table: str
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, path relative to OUT)
    setup: list[str] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self, figure_prefix: str = "", level: int = 2) -> str:
        h = "#" * level
        parts = [f"{h} {self.title}", "", "Reproduce with:", "", "```bash", self.command, "```", ""]
        if self.setup:
            parts += [f"{h}# Setup", ""] + [f"- {line}" for line in self.setup] + [""]
        parts += [f"{h}# Results", "", self.table, ""]
        parts += [f"![{caption}]({figure_prefix}{path})\n\n*{caption}*\n" for caption, path in self.figures]
        if self.findings:
            parts += [f"{h}# What the numbers say", ""] + [f"- {line}" for line in self.findings] + [""]
        if self.deviations:
            parts += [f"{h}# Deviations from the paper", ""] + [f"- {line}" for line in self.deviations] + [""]
        if self.notes:
            parts += [f"{h}# Notes", ""] + [f"- {line}" for line in self.notes] + [""]
        return "\n".join(parts).rstrip() + "\n"

    def readme_markdown(self, figure_prefix: str, report_link: str) -> str:
        parts = [f"### {self.title}", "", "```bash", self.command, "```", "", self.table, ""]
        parts += [f"![{caption}]({figure_prefix}{path})\n" for caption, path in self.figures]
        parts += [f"Setup, deviations from the paper and findings: [{Path(report_link).name}]({report_link}).", ""]
        return "\n".join(parts)


def describe_data(spec: str | None) -> str:
    """One line on the dataset, with the caveat a reader needs next to the numbers."""
    from ..data import describe_dataset

    if spec is not None and Path(str(spec).rstrip("/")).name == "cifar10-jpeg":
        return (
            f"CIFAR-10, JPEG re-encoded copy (quality ~75) at `{spec}`; test errors run a little higher "
            f"than on the official arrays"
        )
    try:
        return describe_dataset(spec)
    except (ValueError, FileNotFoundError):
        return f"`{spec}` (not readable from here)"


def data_title(spec: str | None) -> str:
    """A short name for figure titles: "CIFAR-10", "synthetic set" or the folder's name."""
    if spec is None or str(spec).startswith("synthetic"):
        return "synthetic set"
    line = describe_data(spec)
    return "CIFAR-10" if line.startswith("CIFAR-10") else Path(str(spec).rstrip("/")).name


def _runs_info(specs: list[RunSpec], out: Path) -> tuple[list[dict], list[dict], list[dict]]:
    configs, summaries, metas = [], [], []
    for spec in specs:
        run_dir = spec.run_dir(out)
        for name, bucket in (("config.json", configs), ("summary.json", summaries), ("meta.json", metas)):
            if (run_dir / name).is_file():
                bucket.append(read_json(run_dir / name))
    return configs, summaries, metas


def _join(values) -> str:
    return ", ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in values)


def setup_lines(specs: list[RunSpec], out: Path, data: str | None, budget: float) -> list[str]:
    configs, summaries, metas = _runs_info(specs, out)
    lines = [f"Data: {describe_data(data)}."]
    if configs:
        iterations = sorted({c["iterations"] for c in configs})
        milestones = sorted({tuple(c["milestones"]) for c in configs})
        lines.append(
            f"Budget: {budget:g} of the paper's schedule: {_join(iterations)} iterations, learning rate "
            f"{_join(sorted({c['lr'] for c in configs}))} divided by 10 at "
            f"{' / '.join(_join(m) for m in milestones)} (paper: {PAPER_ITERATIONS:,} iterations, "
            f"divided at {_join(PAPER_MILESTONES)}); mini-batch {_join(sorted({c['batch_size'] for c in configs}))}."
        )
    devices = sorted({f"{m.get('device')}" + (f" ({m['cuda_device']})" if m.get("cuda_device") else "") for m in metas})
    if devices:
        precisions = sorted({str(r.get("precision")) for r in summaries + metas if r.get("precision")})
        lines.append(f"Hardware: {', '.join(devices)}; precision {', '.join(precisions) or 'not recorded'}.")
    lines.append(f"Runs: {len(summaries)} finished of {len(specs)} (`runs/` beside this report).")
    return lines


def deviation_lines(
    specs: list[RunSpec], out: Path, data: str | None, budget: float, seeds_line: str | None
) -> list[str]:
    """Every way these runs differ from the paper's recipe, in plain words; ``seeds_line`` is the
    suite's own word on its seeds against the paper's runs (``Suite.seeds_deviation``)."""
    configs, summaries, metas = _runs_info(specs, out)
    lines = []
    iterations = sorted({c["iterations"] for c in configs})
    if iterations and iterations != [PAPER_ITERATIONS]:
        milestones = sorted({tuple(c["milestones"]) for c in configs})
        lines.append(
            f"Reduced budget: {_join(iterations)} iterations instead of {PAPER_ITERATIONS:,} "
            f"(--budget {budget:g}), learning rate divided at {' / '.join(_join(m) for m in milestones)} "
            f"instead of {_join(PAPER_MILESTONES)}; errors are higher than after the full schedule."
        )
    warm = sorted({c["warmup_max_iterations"] for c in configs if c.get("warmup_lr")})
    if warm and warm != [400]:
        lines.append(
            f"ResNet-110/1202 warm-up (lr 0.01 until training error < 80%) is capped at {_join(warm)} "
            f"iterations instead of about 400 (scaled with the budget)."
        )
    if seeds_line:
        lines.append(seeds_line)
    if data is None or str(data).startswith("synthetic"):
        lines.append(
            "Built-in synthetic 10-class set instead of CIFAR-10: the errors are not comparable to the "
            "paper's; only the trends are."
        )
    elif Path(str(data).rstrip("/")).name == "cifar10-jpeg":
        lines.append(
            "JPEG re-encoded CIFAR-10 (quality ~75) instead of the official arrays: expect slightly higher test errors."
        )
    precisions = sorted({r.get("precision") for r in summaries + metas} - {"fp32", None})
    if precisions:
        # What torch.autocast really covers (checked on the CPU): the convolutions, batch norm's
        # arithmetic, ReLU, the shortcut additions, pooling and the classifier all compute in the
        # low precision; parameters, BN running statistics, the optimiser and the loss stay fp32.
        lines.append(
            f"Forward and backward passes run under {'/'.join(precisions)} autocast: convolutions, batch "
            f"norm, ReLU, the shortcut additions, pooling and the classifier compute in "
            f"{'/'.join(precisions)}, while weights, BN running statistics, the optimiser and the loss "
            f"are fp32; the paper trained in fp32. Reported test errors are computed in fp32."
        )
    held_out = sorted({(m.get("train_images"), m.get("val_images")) for m in metas if m.get("val_images")})
    if held_out:
        split = ", ".join(f"{t:,}/{v:,}" for t, v in held_out)
        lines.append(
            f"Trained on a train/val split ({split} images): the paper chose its schedule on such a "
            f"45k/5k split and presumably trained the reported models on all 50k. Test error is "
            f"never used for any choice."
        )
    lines += _recipe_changes(specs, out, budget)
    return lines


def _recipe_changes(specs: list[RunSpec], out: Path, budget: float) -> list[str]:
    """Keys where a run's config departs from the scaled paper recipe (library overrides)."""
    changed: dict[str, set] = {}
    for spec in specs:
        path = spec.run_dir(out) / "config.json"
        if not path.is_file():
            continue
        saved = read_json(path)
        recipe = load_recipe(f"cifar10-{spec.model}").scaled(budget)
        for key in config_differences(saved, recipe):
            if key not in CADENCE_KEYS:
                changed.setdefault(key, set()).add(repr(saved.get(key)))
        extra = {k: v for k, v in saved.get("model_options", {}).items() if k != "shortcut"}
        for key, value in extra.items():
            changed.setdefault(f"model_options.{key}", set()).add(repr(value))
    if not changed:
        return []
    return [
        "Changed from the paper's recipe: "
        + "; ".join(f"{k} = {', '.join(sorted(v))}" for k, v in sorted(changed.items()))
        + "."
    ]


def write_suite_report(out: Path, report: SuiteReport) -> Path:
    path = Path(out) / f"report-{report.suite}.md"
    path.write_text(report.markdown(level=1))
    write_index(out)
    return path


def write_index(out: Path) -> Path:
    """``OUT/report.md``: every suite report present in ``OUT``, in the paper's order, included whole."""
    from .suites.registry import SUITES  # the suites import this module: the registry only when used

    out = Path(out)
    present = [s for s in SUITES if (out / f"report-{s}.md").is_file()]
    parts = [
        "# Reproduction report",
        "",
        "Generated by `resnetlab reproduce` from the run directories under `runs/`; regenerate rather "
        "than edit. Suites: " + ", ".join(f"[{s}](report-{s}.md)" for s in present) + ".",
        "",
    ]
    for suite in present:
        body = (out / f"report-{suite}.md").read_text()
        # Demote headings one level so each suite is a section of the index.
        parts.append(re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", body, flags=re.M).rstrip() + "\n")
    path = out / "report.md"
    path.write_text("\n".join(parts))
    return path


def readme_block(reports: list[tuple[Path, SuiteReport]], readme: Path) -> str:
    """The markdown between the README markers: tables, figure links and commands of each suite."""
    base = Path(readme).resolve().parent
    parts = [BEGIN, "<!-- generated by `resnetlab reproduce readme`; do not edit by hand -->", ""]
    for out, report in reports:
        prefix = Path(os.path.relpath(Path(out).resolve(), base)).as_posix() + "/"
        parts.append(report.readme_markdown(prefix, f"{prefix}report-{report.suite}.md"))
    parts.append(END)
    return "\n".join(parts)


def replace_readme_block(text: str, block: str, *, source: str = "README") -> str:
    """Swap the text between the markers (inclusive) for ``block``; error when they are missing."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"{source} has no '{BEGIN}' ... '{END}' block; add both markers where the results should go")
    return text[:start] + block + text[end + len(END) :]
