"""The result files of ``benchmarks/gpu.py``: one JSON with every figure and the Markdown table made
from it (``render_markdown``), written side by side (``write_results``)."""

from __future__ import annotations

import json
from pathlib import Path


def render_markdown(r: dict) -> str:
    """The Markdown result file; tolerates the partial results written between phases."""
    lines = ["# GPU benchmark results", ""]
    if r.get("label"):
        lines += [f"**{r['label']}**", ""]
    lines += [
        f"- device: {r.get('device')}, torch {r.get('torch')}, CUDA {r.get('cuda')}",
        f"- started {r.get('started')}; phases done: {', '.join(r.get('phases_done', [])) or 'none'}; "
        f"wall so far {r.get('wall_seconds', 0):.0f} s",
        f"- command: `{r.get('command')}`",
        "",
    ]
    rows = r.get("throughput", [])
    if rows:
        lines += [
            "## Training throughput",
            "",
            "| model | input | batch | mode | images/s | warm-up s |",
            "|---|---|---|---|---:|---:|",
        ]
        for t in rows:
            ips = "failed" if t.get("images_per_second") is None else f"{t['images_per_second']:,.0f}"
            warm = "-" if t.get("warmup_seconds") is None else f"{t['warmup_seconds']:.1f}"
            lines.append(f"| {t['model']} | {t['input']} | {t['batch']} | {t['mode']} | {ips} | {warm} |")
        lines.append("")
    choice = r.get("compile_choice")
    if choice:
        lines += [
            "## Eager or compile",
            "",
            f"Estimated full-run loop time: eager {choice['eager_seconds']:.0f} s, "
            f"compile {choice['compile_seconds']:.0f} s (compilation included); chosen: "
            f"**{'compile' if choice['compile'] else 'eager'}** ({choice['reason']}).",
            "",
        ]
    full = r.get("full_run")
    if full:
        lines += [
            "## ResNet-20, full schedule (CIFAR-10, 50k training images, val_size=0)",
            "",
            "| iterations | compile | status | test error % | steady images/s | loop s | process wall s |",
            "|---:|---|---|---:|---:|---:|---:|",
        ]

        def f(key, fmt):
            return "-" if full.get(key) is None else format(full[key], fmt)

        lines += [
            f"| {full['iterations']} | {full['compile']} | {full['status']} | {f('test_top1_error', '.2f')} | "
            f"{f('steady_images_per_second', ',.0f')} | {f('loop_seconds', '.0f')} | {f('process_seconds', '.0f')} |",
            "",
        ]
    for error in r.get("errors", []):
        lines.append(f"- error: {error}")
    return "\n".join(lines).rstrip() + "\n"


def write_results(results: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "gpu-results.json", out / "gpu-results.md"
    json_path.write_text(json.dumps(results, indent=2))
    md_path.write_text(render_markdown(results))
    return json_path, md_path
