"""Figures that are not training curves: the multiply-adds comparison of Table 1."""

from __future__ import annotations

from pathlib import Path

from .curves import save_figure
from .paper import pretty_name


def plot_complexity(rows: list[dict], path: str | Path) -> Path:
    """Measured multiply-adds per network (bars, log scale) with the paper's FLOPs as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(rows) + 2), 4.2))
    x = list(range(len(rows)))
    ax.bar(x, [r["macs"] / 1e9 for r in rows], color=["C1" if r["family"] == "vgg" else "C0" for r in rows],
           label="measured here")
    paper = [(i, r["paper_macs"] / 1e9) for i, r in enumerate(rows) if r.get("paper_macs")]
    if paper:
        ax.plot([i for i, _ in paper], [v for _, v in paper], "k_", markersize=18, markeredgewidth=2,
                label="paper (Table 1, Sec. 3.3)")
    ax.set_xticks(x, [f"{pretty_name(r['name'])}\n{r['input_size']}px" for r in rows], fontsize=7, rotation=45)
    ax.set_yscale("log")
    ax.set_ylabel("multiply-adds (G, log scale)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
