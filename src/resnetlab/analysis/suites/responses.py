"""Layer responses (Sec. 4.2, "Analysis of Layer Responses", Fig. 7): the std of every 3x3 layer's
output on the test set is smaller in ResNets than in plain nets, and smaller in deeper ResNets.

Measured on each network's seed-0 run after training (``analysis/responses.py`` holds the hooks);
the raw per-layer stds go to ``OUT/responses.json``, which the table, findings and figure read.
"""

from __future__ import annotations

import itertools
import json
import logging
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..paper import CIFAR_PLAINS, CIFAR_RESNETS, FIG7_MODELS, depth_of, pretty_name
from ..report import data_title
from ..runs import RunSpec, read_json
from ..tables import markdown_table
from .base import Figure, Suite, plan_seeded_runs

logger = logging.getLogger(__name__)  # a child of the library's one logger, "resnetlab"

if TYPE_CHECKING:
    from .options import SuiteOptions

RESPONSES_FILE = "responses.json"


def plan(options: SuiteOptions) -> list[RunSpec]:
    """Fig. 7 plots one run per network: seed 0 only, whatever ``--seeds`` says."""
    return plan_seeded_runs(options, range(1))


def measure(
    options: SuiteOptions, arrays=None, cache_dir: Path | None = None, log: Callable[[str], None] = logger.info
) -> Path:
    """Fig. 7 stds of every seed-0 run of the suite, saved raw to ``OUT/responses.json``."""
    from ..responses import run_response_stds

    if arrays is not None:
        test = arrays[1]
    else:
        from ...data import load_dataset

        test = load_dataset(options.data, "test", cache_dir=cache_dir)
    path = options.out / RESPONSES_FILE
    # Committed results keep a finished run's summary but not always its weights: a run measured
    # before keeps that measurement rather than vanishing from Fig. 7 on a later --no-train.
    earlier = read_json(path) if path.is_file() else {}
    results = {}
    for spec in plan(options):
        run_dir = spec.run_dir(options.out)
        if not (run_dir / "summary.json").is_file():
            log(f"{spec.name}: not finished; left out of the responses")
        elif (run_dir / "checkpoints" / "last.pt").is_file():
            log(f"{spec.name}: layer responses on {len(test):,} test images")
            results[spec.model] = {"run": f"runs/{spec.name}", **run_response_stds(run_dir, test.images)}
        elif spec.model in earlier:
            log(f"{spec.name}: no weights in {run_dir}; keeping its earlier measurement from {path.name}")
            results[spec.model] = earlier[spec.model]
        else:
            log(f"{spec.name}: finished, but no weights in {run_dir} and no earlier measurement; left out")
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def results(options: SuiteOptions, specs: list[RunSpec]) -> dict[str, dict]:
    """network -> its measured stds (``responses.json``); empty before the measurement."""
    path = options.out / RESPONSES_FILE
    return read_json(path) if path.is_file() else {}


def network_order(responses: dict[str, dict]) -> list[str]:
    """Plain nets first, then ResNets, each by depth: the order of Fig. 7's legend."""
    return sorted(responses, key=lambda m: (not m.startswith("plain"), depth_of(m)))


def table(responses: dict[str, dict]) -> str:
    """One row per network of Fig. 7: how many 3x3 layers, and the spread of their response stds."""
    rows = []
    for model in network_order(responses):
        stds = responses[model]["std"]
        rows.append(
            [
                pretty_name(model),
                str(len(stds)),
                f"{statistics.fmean(stds):.3f}",
                f"{statistics.median(stds):.3f}",
                f"{max(stds):.3f}",
                f"{min(stds):.3f}",
                str(responses[model].get("images", "-")),
            ]
        )
    return markdown_table(
        ["network", "3x3 layers", "mean std", "median std", "max std", "min std", "test images"], rows
    )


def findings(responses: dict[str, dict]) -> list[str]:
    """ResNet below plain at each depth; deeper ResNets respond less (both as in Fig. 7)."""
    mean = {m: statistics.fmean(r["std"]) for m, r in responses.items() if r.get("std")}
    lines = []
    for depth in sorted({depth_of(m) for m in mean}):
        plain, res = mean.get(f"plain{depth}"), mean.get(f"resnet{depth}")
        if plain is not None and res is not None:
            lines.append(
                f"Depth {depth}: mean response std ResNet {res:.3f} vs plain {plain:.3f} — "
                f"{'ResNet smaller, as in the paper' if res < plain else 'ResNet not smaller, unlike the paper'}."
            )
    resnets = sorted((m for m in mean if m.startswith("resnet")), key=depth_of)
    if len(resnets) >= 2:
        values = [mean[m] for m in resnets]
        falling = all(b < a for a, b in itertools.pairwise(values))
        lines.append(
            "ResNets by depth: "
            + ", ".join(f"{pretty_name(m)} {v:.3f}" for m, v in zip(resnets, values))
            + (
                " — deeper responds less, as in the paper."
                if falling
                else " — not monotone; the paper finds deeper ResNets respond less."
            )
        )
    return lines


def deviations(options: SuiteOptions, lines: list[str]) -> list[str]:
    return [
        *lines,
        "Responses are taken with BN in eval mode (running statistics) over the whole test set; one "
        "std per layer over all images, channels and positions. The paper does not say how it pools "
        "the std.",
    ]


def draw(responses: dict[str, dict], options: SuiteOptions, path: Path) -> None:
    if responses:
        from ..responses import plot_responses

        plot_responses(
            responses, path, title=f"{data_title(options.data)} test set, {options.budget:g} of the paper's schedule"
        )


SUITE = Suite(
    name="responses",
    title="Standard deviation of layer responses on CIFAR-10 (Fig. 7)",
    help="Fig. 7: std of each 3x3 layer's response on the test set",
    order=4,
    models=CIFAR_PLAINS + CIFAR_RESNETS,
    default_models=FIG7_MODELS,
    plan=plan,
    results=results,
    table=table,
    findings=findings,
    figure=Figure(
        "responses.png",
        "Fig. 7 reproduced: std of each 3x3 layer's response (after BN, before "
        "ReLU/addition), in network order (top) and sorted (bottom)",
        draw,
    ),
    paper={"networks": FIG7_MODELS},  # Fig. 7 is a plot: its networks, no printed numbers
    notes=(
        "Raw per-layer stds: [responses.json](responses.json).",
        "Each network's seed-0 run (the final model, `checkpoints/last.pt`).",
    ),
    deviations=deviations,
    measure=measure,
)
