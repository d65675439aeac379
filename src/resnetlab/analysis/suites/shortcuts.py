"""Shortcut options A / B / C (Sec. 3.3, Table 3) on a CIFAR-10 ResNet instead of ImageNet ResNet-34.

A: zero-padding identity shortcuts (parameter-free); B: projections where dimensions increase;
C: projections everywhere. The paper finds A > B > C in error, by small margins; ours are compared
in ordering only, against the seed-to-seed spread.
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from ..paper import CIFAR_RESNETS, TABLE3_RESNET34, pretty_name
from ..report import data_title
from ..runs import RunSpec, run_config
from ..tables import fmt_params, markdown_table, seed_stats
from .base import Figure, Runs, Suite, run_kwargs, runs_of

if TYPE_CHECKING:
    from .options import SuiteOptions

SHORTCUT_OPTIONS = ("A", "B", "C")


def plan(options: SuiteOptions) -> list[RunSpec]:
    """Every (network, option, seed); the table row is the option."""
    return [
        RunSpec(
            f"{model}-{option}-s{seed}",
            model,
            seed,
            run_config(model, seed=seed, model_options={"shortcut": option}, **run_kwargs(options)),
            option,
        )
        for model in options.chosen_models
        for option in SHORTCUT_OPTIONS
        for seed in range(options.seeds)
    ]


def table(runs: Runs) -> str:
    rows = []
    for label, finished in runs.groups().items():
        stats = seed_stats(finished)
        top5 = statistics.fmean(float(s["test_top5_error"]) for _, s in finished) if finished else None
        paper = TABLE3_RESNET34.get(label)
        rows.append(
            [
                f"option {label}",
                fmt_params(finished[0][1]["params"]) if finished else "-",
                stats.text() if finished else "not finished",
                f"{top5:.2f}" if top5 is not None else "-",
                f"{paper[0]:.2f} / {paper[1]:.2f}" if paper else "-",
                str(stats.n),
            ]
        )
    return markdown_table(
        [
            "shortcut",
            "params",
            "test top-1 error (%)",
            "top-5 (%)",
            "paper ImageNet ResNet-34 top-1 / top-5 (%)",
            "runs",
        ],
        rows,
    )


def findings(runs: Runs) -> list[str]:
    """Our error ordering of the options against the paper's, and whether the gaps exceed seed noise."""
    stats = {label: seed_stats(finished) for label, finished in runs.groups().items() if finished}
    if len(stats) < 2:
        return []
    order = sorted(stats, key=lambda k: stats[k].mean, reverse=True)
    text = " > ".join(f"{k} ({stats[k].mean:.2f}%)" for k in order)
    matches = all(k in stats for k in "ABC") and stats["A"].mean > stats["B"].mean > stats["C"].mean
    spreads = [s.std for s in stats.values() if s.std is not None]
    gaps = [abs(stats[a].mean - stats[b].mean) for a, b in itertools.pairwise(order)]
    line = (
        f"Test error ordering {text}: {'the same as' if matches else 'differs from'} the paper's "
        f"ImageNet ordering A > B > C."
    )
    if spreads:
        line += (
            f" The gaps ({', '.join(f'{g:.2f}' for g in gaps)} points) are "
            f"{'smaller' if max(gaps) < max(spreads) else 'not smaller'} than the largest seed std "
            f"({max(spreads):.2f})."
        )
    else:
        line += " One seed per option: gaps this small are within run-to-run noise."
    return [line]


def deviations(options: SuiteOptions, lines: list[str]) -> list[str]:
    analogue = (
        f"CIFAR analogue of Table 3: {', '.join(map(pretty_name, options.chosen_models))} on CIFAR-10 "
        f"instead of ResNet-34 on ImageNet; the paper's numbers are ImageNet 10-crop errors and compare "
        f"in ordering only (A > B > C in error)."
    )
    return [analogue, *lines]


def draw(runs: Runs, options: SuiteOptions, path: Path) -> None:
    from ..curves import plot_runs

    seed0 = runs.seed0_logged()
    if seed0:
        plot_runs(
            [s.run_dir(runs.out) for s in seed0],
            path,
            labels=[f"{pretty_name(s.model)} option {s.label}" for s in seed0],
            title=f"Shortcut options on {data_title(options.data)} (seed 0)",
        )


SUITE = Suite(
    name="shortcuts",
    title="Shortcut options A / B / C on a CIFAR-10 ResNet (the CIFAR analogue of Table 3)",
    help="Table 3 on CIFAR: shortcut options A, B, C on ResNet-20",
    order=3,
    models=CIFAR_RESNETS,
    default_models=("resnet20",),
    plan=plan,
    results=runs_of,
    table=table,
    findings=findings,
    figure=Figure("shortcuts.png", "Training (dashed) and test (bold) error per shortcut option, seed 0", draw),
    paper=TABLE3_RESNET34,
    deviations=deviations,
)
