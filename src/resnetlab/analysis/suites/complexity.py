"""Complexity (Sec. 3.3, Sec. 4.1, Table 1): parameters and multiply-adds of every network, measured
on the built models beside the paper's FLOPs. ResNet-152 (11.3 G) needs fewer than VGG-16/19
(15.3 / 19.6 G). Nothing is trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..paper import CIFAR_RESNETS, pretty_name
from ..runs import RunSpec
from ..tables import fmt_params, markdown_table
from .base import Figure, Suite

if TYPE_CHECKING:
    from .options import SuiteOptions


def plan(options: SuiteOptions) -> list[RunSpec]:
    return []


def rows(options: SuiteOptions, specs: list[RunSpec]) -> list[dict]:
    """Parameters and multiply-adds measured on the built models, beside Table 1 / Table 6."""
    from ...models import measure, model_info

    measured = []
    for name in options.chosen_models:
        info = model_info(name)
        c = measure(name)
        measured.append(
            {**c.as_dict(), "family": info.family, "paper_params": info.paper_params, "paper_macs": info.paper_macs}
        )
    return measured


def table(rows: list[dict]) -> str:
    def gmacs(value: float | None) -> str:
        return "-" if value is None else f"{value / 1e9:.3f}"

    body = [
        [
            pretty_name(r["name"]),
            r["family"],
            str(r["depth"]),
            f"{r['params']:,}",
            fmt_params(r["paper_params"]) if r["paper_params"] else "-",
            gmacs(r["macs"]),
            gmacs(r["paper_macs"]),
            f"{r['input_size']}x{r['input_size']}",
        ]
        for r in rows
    ]
    return markdown_table(
        ["network", "family", "depth", "params", "reference params", "mult-adds (G)", "paper FLOPs (G)", "input"], body
    )


def findings(rows: list[dict]) -> list[str]:
    """How close the measured multiply-adds come to the paper's, and the deepest ResNet vs VGG."""
    lines = []
    compared = [(r, (r["macs"] - r["paper_macs"]) / r["paper_macs"]) for r in rows if r.get("paper_macs")]
    if compared:
        worst, rel = max(compared, key=lambda item: abs(item[1]))
        lines.append(
            f"Measured multiply-adds agree with the paper's FLOPs within {100 * abs(rel):.1f}% "
            f"(largest gap: {pretty_name(worst['name'])}, {worst['macs'] / 1e9:.2f} G vs "
            f"{worst['paper_macs'] / 1e9:.1f} G)."
        )
    by_name = {r["name"]: r for r in rows}
    deepest = next((by_name[m] for m in ("resnet152", "resnet101", "resnet50") if m in by_name), None)
    for vgg in ("vgg16", "vgg19"):
        if deepest and vgg in by_name:
            lines.append(
                f"{pretty_name(deepest['name'])} needs {deepest['macs'] / 1e9:.2f} G multiply-adds, "
                f"{'fewer' if deepest['macs'] < by_name[vgg]['macs'] else 'not fewer'} than "
                f"{pretty_name(vgg)}'s {by_name[vgg]['macs'] / 1e9:.2f} G (Sec. 4.1)."
            )
    return lines


def draw(rows: list[dict], options: SuiteOptions, path: Path) -> None:
    """Measured multiply-adds per network (bars, log scale) with the paper's FLOPs as markers."""
    from ..curves import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(rows) + 2), 4.2))
    x = list(range(len(rows)))
    ax.bar(
        x,
        [r["macs"] / 1e9 for r in rows],
        color=["C1" if r["family"] == "vgg" else "C0" for r in rows],
        label="measured here",
    )
    paper = [(i, r["paper_macs"] / 1e9) for i, r in enumerate(rows) if r.get("paper_macs")]
    if paper:
        ax.plot(
            [i for i, _ in paper],
            [v for _, v in paper],
            "k_",
            markersize=18,
            markeredgewidth=2,
            label="paper (Table 1, Sec. 3.3)",
        )
    ax.set_xticks(x, [f"{pretty_name(r['name'])}\n{r['input_size']}px" for r in rows], fontsize=7, rotation=45)
    ax.set_yscale("log")
    ax.set_ylabel("multiply-adds (G, log scale)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


SUITE = Suite(
    name="complexity",
    title="Parameters and multiply-adds (Table 1, FLOPs vs VGG-16/19)",
    help="Table 1: parameters and multiply-adds beside the paper's, VGG-16/19 FLOPs (no training)",
    order=5,
    models=None,
    default_models=(
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "plain18",
        "plain34",
        "vgg16",
        "vgg19",
    )
    + CIFAR_RESNETS,
    plan=plan,
    results=rows,
    table=table,
    findings=findings,
    figure=Figure(
        "complexity.png",
        "Multiply-adds per network, measured (bars) and the paper's FLOPs (markers)",
        draw,
        needs_no_runs=True,
    ),
    # The paper's FLOPs and parameter counts are per network in the model registry (ModelInfo).
    paper={"source": "resnetlab.models.model_info(name).paper_macs / .paper_params"},
    notes=(
        "Measured on the models built here by tracing one forward pass: multiply-adds of convolutions and "
        "fully connected layers (BN, ReLU, pooling and additions left out, as the paper's FLOPs are). "
        "ImageNet ResNets use option B shortcuts and the paper's v1 stride (on the first 1x1 of a "
        "bottleneck); CIFAR nets use option A.",
        "Reference params: Table 6's rounded counts for the CIFAR nets; for ImageNet nets the paper prints "
        "none, so the column holds the common torchvision option-B counts.",
    ),
    trains=False,
)
