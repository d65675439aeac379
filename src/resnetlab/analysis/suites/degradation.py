"""Degradation (Sec. 4.2, Fig. 1 and Fig. 6): deeper plain nets train *worse*, deeper ResNets better.

Plain-20..56 and ResNet-20..110 on CIFAR-10, each trained with the paper's recipe; the table gives
final training and test error beside Table 6's, the figure draws Fig. 6's two panels.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..paper import CIFAR_PLAINS, CIFAR_RESNETS, TABLE6_ERROR, depth_of, pretty_name, table6_text
from ..report import data_title
from ..tables import comparison_word, final_train_error, fmt_params, markdown_table, mean_errors, seed_stats
from .base import Figure, Runs, Suite, plan_seeded_runs, runs_of

if TYPE_CHECKING:
    from .options import SuiteOptions


def table(runs: Runs) -> str:
    rows = []
    for label, finished in runs.groups().items():
        if not finished:
            rows.append([pretty_name(label), "-", "-", "not finished", table6_text(label), "0"])
            continue
        train_errors = [e for e in (final_train_error(spec.run_dir(runs.out)) for spec, _ in finished) if e is not None]
        train = f"{statistics.fmean(train_errors):.2f}" if train_errors else "-"
        rows.append(
            [
                pretty_name(label),
                fmt_params(finished[0][1]["params"]),
                train,
                seed_stats(finished).text(),
                table6_text(label),
                str(len(finished)),
            ]
        )
    return markdown_table(
        ["network", "params", "training error (%)", "test error (%)", "paper test error (%)", "runs"], rows
    )


def findings(runs: Runs) -> list[str]:
    """The deeper plain net worse, the deeper ResNet better (Fig. 6), and ResNet below plain per depth."""
    means = mean_errors(runs.specs, runs.out)
    lines = []
    for prefix, expected in (("plain", "worse: the degradation problem"), ("resnet", "better")):
        models = sorted((m for m in means if m.startswith(prefix)), key=depth_of)
        if len(models) < 2:
            continue
        shallow, deep = models[0], models[-1]
        (test_s, train_s), (test_d, train_d) = means[shallow], means[deep]
        train_text = ""
        if train_s is not None and train_d is not None:
            train_text = f" training error {train_d:.2f}% vs {train_s:.2f}% ({comparison_word(train_d, train_s)}),"
        lines.append(
            f"{pretty_name(deep)} vs {pretty_name(shallow)}:{train_text} test error {test_d:.2f}% vs "
            f"{test_s:.2f}% ({comparison_word(test_d, test_s)}); the paper finds the deeper net {expected}."
        )
    for depth in sorted({depth_of(m) for m in means}):
        plain, res = means.get(f"plain{depth}"), means.get(f"resnet{depth}")
        if plain and res:
            lines.append(
                f"Depth {depth}: ResNet test error {res[0]:.2f}% vs plain {plain[0]:.2f}% "
                f"({'ResNet lower' if res[0] < plain[0] else 'ResNet not lower'})."
            )
    return lines


def draw_error_curves(title: str) -> Callable[[Runs, SuiteOptions, Path], None]:
    """A figure drawer for Fig. 6's panels over the seed-0 runs; ``title`` is formatted with the
    dataset's short name (``{data}``) and the budget (``{budget:g}``). Table 6 draws the same."""

    def draw(runs: Runs, options: SuiteOptions, path: Path) -> None:
        from ..curves import plot_degradation

        logged = {s.model: s.run_dir(runs.out) for s in runs.seed0_logged()}
        if logged:
            plot_degradation(
                logged,
                path,
                paper_errors=TABLE6_ERROR,
                title=title.format(data=data_title(options.data), budget=options.budget),
            )

    return draw


SUITE = Suite(
    name="degradation",
    title="Degradation: plain nets vs ResNets on CIFAR-10 (Fig. 1, Fig. 6)",
    help="Fig. 1/6: plain-20..56 vs ResNet-20..110 training and test error curves",
    order=1,
    models=CIFAR_PLAINS + CIFAR_RESNETS[:5],
    default_models=CIFAR_PLAINS[:4] + CIFAR_RESNETS[:5],
    plan=plan_seeded_runs,
    results=runs_of,
    table=table,
    findings=findings,
    figure=Figure(
        "degradation.png",
        "Fig. 6 reproduced: training error (dashed) and test error (bold) of plain "
        "nets (left) and ResNets (right), seed 0",
        draw_error_curves("{data}, {budget:g} of the paper's schedule (seed 0)"),
    ),
    paper=TABLE6_ERROR,
)
