"""Error curves from run directories and the figures drawn from them (Fig. 1, Fig. 6).

The paper draws training error as thin dashed lines and test error as bold solid lines, error in %
against iterations, one colour per depth; we keep those conventions.
"""

from __future__ import annotations

from pathlib import Path

from ..checkpoints.rundir import read_metrics
from .paper import depth_of, pretty_name

METRICS = ("train_error", "test_error", "val_error", "train_loss")
METRIC_LABELS = {
    "train_error": "training error (%)",
    "test_error": "test error (%)",
    "val_error": "validation error (%)",
    "train_loss": "training loss",
}


def read_curve(run_dir: str | Path, metric: str) -> tuple[list[int], list[float]]:
    """``(iterations, values)`` of one metric, in iteration order; empty when never logged."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    points = {r["iteration"]: r[metric] for r in read_metrics(run_dir) if metric in r}
    its = sorted(points)
    return its, [points[i] for i in its]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure (creating its folder) and release it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    fig.clf()
    pyplot().close(fig)
    return path


def plot_runs(
    run_dirs: list[str | Path],
    path: str | Path,
    *,
    metrics: tuple[str, ...] = ("train_error", "test_error"),
    labels: list[str] | None = None,
    title: str = "",
) -> Path:
    """Overlay curves of any runs (``resnetlab plot``): one colour per run, one style per metric."""
    plt = pyplot()
    if not run_dirs:
        raise ValueError("plot needs at least one run directory")
    labels = labels or [Path(d).name for d in run_dirs]
    styles = {"train_error": ("--", 1.0), "test_error": ("-", 2.0), "val_error": (":", 1.5), "train_loss": ("-.", 1.0)}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = 0
    for index, (run_dir, label) in enumerate(zip(run_dirs, labels)):
        if not (Path(run_dir) / "metrics.jsonl").is_file():
            raise FileNotFoundError(f"{run_dir} has no metrics.jsonl (not a run directory?)")
        for metric in metrics:
            its, values = read_curve(run_dir, metric)
            if not its:
                continue
            style, width = styles[metric]
            suffix = f" {metric.replace('_', ' ')}" if len(metrics) > 1 else ""
            ax.plot(its, values, style, linewidth=width, color=f"C{index % 10}", label=label + suffix)
            drawn += 1
    if not drawn:
        raise ValueError(f"none of the runs logged {', '.join(metrics)}")
    ax.set_xlabel("iterations")
    ax.set_ylabel(
        METRIC_LABELS[metrics[0]]
        if len(metrics) == 1
        else ("loss" if all(m.endswith("loss") for m in metrics) else "error (%)")
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _error_ceiling(curves: dict[str, dict[str, tuple[list[int], list[float]]]]) -> float:
    """A y limit that shows the interesting end of training, as the paper's 0-20% axes do: early
    errors near chance would otherwise squash every final value against the axis."""
    finals = [c["test_error"][1][-1] for c in curves.values() if c["test_error"][1]]
    finals += [c["train_error"][1][-1] for c in curves.values() if c["train_error"][1]]
    if not finals:
        return 100.0
    return float(min(100.0, max(5.0, 2.5 * max(finals))))


def plot_degradation(
    runs: dict[str, Path], path: str | Path, *, paper_errors: dict[str, float] | None = None, title: str = ""
) -> Path:
    """Fig. 6 (and Fig. 1): plain nets left, ResNets right; dashed training and bold test error.

    ``runs`` maps a model name (``plain20``, ``resnet56`` ...) to its run directory; the paper's final
    test errors (Table 6), where known, are marked at the right edge as short dotted lines.
    """
    plt = pyplot()
    curves = {m: {k: read_curve(d, k) for k in ("train_error", "test_error")} for m, d in runs.items()}
    families = [("plain", "plain networks"), ("resnet", "ResNets")]
    present = [(prefix, name) for prefix, name in families if any(m.startswith(prefix) for m in runs)]
    if not present:
        raise ValueError("degradation figure needs plain* or resnet* runs")
    depths = sorted({depth_of(m) for m in runs})
    fig, axes = plt.subplots(1, len(present), figsize=(6.2 * len(present), 4.4), squeeze=False, sharey=True)
    top = _error_ceiling(curves)
    last_iteration = max((c["test_error"][0][-1] for c in curves.values() if c["test_error"][0]), default=1)
    for ax, (prefix, name) in zip(axes[0], present):
        models = sorted((m for m in runs if m.startswith(prefix)), key=depth_of)
        for model in models:
            colour = f"C{depths.index(depth_of(model)) % 10}"
            its, values = curves[model]["train_error"]
            ax.plot(its, values, "--", linewidth=0.8, color=colour)
            its, values = curves[model]["test_error"]
            ax.plot(its, values, "-", linewidth=2.0, color=colour, label=pretty_name(model))
            paper = (paper_errors or {}).get(model)
            if paper is not None:
                ax.plot([0.93 * last_iteration, last_iteration], [paper, paper], ":", color=colour, linewidth=1.5)
        ax.set_title(
            f"{name}: dashed training error, bold test error"
            + ("; dotted: paper's final test error" if any((paper_errors or {}).get(m) for m in models) else ""),
            fontsize=9,
        )
        ax.set_xlabel("iterations")
        ax.set_ylim(0, top)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("error (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
