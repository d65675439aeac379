"""Table 6 (Sec. 4.2): CIFAR-10 test error of ResNet-20..110 (and 1202), falling with depth.

The paper gives single runs, except ResNet-110: best of 5 runs, with their mean ± std (6.61 ±
0.16). We give mean ± sample std and the best over ``--seeds`` for every network.
"""

from __future__ import annotations

import itertools

from ..paper import CIFAR_RESNETS, TABLE6_ERROR, TABLE6_RESNET110_MEAN_STD, depth_of, pretty_name, table6_text
from ..tables import fmt_params, markdown_table, mean_errors, seed_stats
from .base import Figure, Runs, Suite, plan_seeded_runs, runs_of
from .degradation import draw_error_curves


def table(runs: Runs) -> str:
    rows = []
    for label, finished in runs.groups().items():
        stats = seed_stats(finished)
        params = fmt_params(finished[0][1]["params"]) if finished else "-"
        best = f"{stats.best:.2f}" if finished else "-"
        rows.append(
            [
                pretty_name(label),
                params,
                stats.text() if finished else "not finished",
                best,
                table6_text(label),
                str(stats.n),
            ]
        )
    return markdown_table(["network", "params", "test error (%) mean ± std", "best (%)", "paper (%)", "runs"], rows)


def findings(runs: Runs) -> list[str]:
    """Error falls with every added depth up to 110; ResNet-1202 is worse than 110 (overfitting)."""
    means = mean_errors(runs.specs, runs.out)
    models = sorted((m for m in means if m != "resnet1202"), key=depth_of)
    lines = []
    if len(models) >= 2:
        errors = [means[m][0] for m in models]
        falling = all(b < a for a, b in itertools.pairwise(errors))
        lines.append(
            "Test error by depth: "
            + ", ".join(f"{pretty_name(m)} {e:.2f}%" for m, e in zip(models, errors))
            + (
                " — falls with every added depth, as in the paper."
                if falling
                else " — not monotone; the paper's falls from 8.75% (20) to 6.43% (110)."
            )
        )
    if "resnet1202" in means and "resnet110" in means:
        worse = means["resnet1202"][0] > means["resnet110"][0]
        lines.append(
            f"ResNet-1202 {means['resnet1202'][0]:.2f}% vs ResNet-110 {means['resnet110'][0]:.2f}%: "
            f"{'worse, as the paper reports (overfitting)' if worse else 'not worse, unlike the paper'}."
        )
    return lines


def seeds_deviation(seeds: int) -> str:
    mean, std = TABLE6_RESNET110_MEAN_STD
    if seeds == 1:
        return f"One run per network (seed 0); the paper's ResNet-110 entry is the best of 5 runs (mean {mean:.2f} ± {std:.2f})."
    return (
        f"Mean ± sample std over {seeds} seeds for every network; the paper gives best and "
        f"mean ± std over 5 runs for ResNet-110 only."
    )


SUITE = Suite(
    name="table6",
    title="CIFAR-10 test error of ResNets by depth (Table 6)",
    help="Table 6: ResNet-20..110 (1202 with --models) test error, mean ± std over --seeds",
    order=2,
    models=CIFAR_RESNETS,
    default_models=CIFAR_RESNETS[:5],
    plan=plan_seeded_runs,
    results=runs_of,
    table=table,
    findings=findings,
    figure=Figure(
        "table6.png",
        "Training (dashed) and test (bold) error of the Table 6 ResNets, seed 0",
        draw_error_curves("ResNets on {data}, {budget:g} of the paper's schedule (seed 0)"),
    ),
    paper={**TABLE6_ERROR, "resnet110 mean ± std": TABLE6_RESNET110_MEAN_STD},
    seeds_deviation=seeds_deviation,
)
