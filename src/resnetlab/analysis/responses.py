"""Fig. 7: the standard deviation of every 3x3 layer's response on the test set.

The paper's responses are "the outputs of each 3x3 layer, after BN and before other nonlinearity
(ReLU/addition)" (Sec. 4.2, Analysis of Layer Responses): forward hooks on the BN that closes each
3x3 conv (``model.response_layers()``) see exactly that tensor. One std per layer, over every test
image, channel and position, with the model in eval mode (BN uses its running statistics, as at
test time). Accumulated batch by batch with Chan's pairwise update, so the whole test set counts
without keeping any activation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .curves import save_figure


@dataclass
class RunningMoments:
    """Count, mean and sum of squared deviations, merged exactly across batches (float64)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: torch.Tensor) -> None:
        values = values.detach().double().reshape(-1)
        count = values.numel()
        if count == 0:
            return
        batch_mean = values.mean().item()
        batch_m2 = ((values - batch_mean) ** 2).sum().item()
        total = self.n + count
        delta = batch_mean - self.mean
        self.mean += delta * count / total
        self.m2 += batch_m2 + delta * delta * self.n * count / total
        self.n = total

    @property
    def std(self) -> float:
        """Population std (divide by n): with ~10^6 values per layer the choice is immaterial."""
        return math.sqrt(self.m2 / self.n) if self.n else float("nan")


def layer_response_stds(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 500,
    layers: list[tuple[str, nn.Module]] | None = None,
) -> dict[str, float]:
    """Std of each response layer's output over ``images`` (already normalised float ``[N,3,H,W]``).

    ``layers`` defaults to ``model.response_layers()``; the result keeps their (network) order.
    """
    if layers is None:
        if not hasattr(model, "response_layers"):
            raise ValueError(f"{type(model).__name__} has no response_layers(); Fig. 7 needs a ResNet/plain net")
        layers = model.response_layers()
    moments = {name: RunningMoments() for name, _ in layers}
    handles = [
        module.register_forward_hook(lambda _m, _i, output, name=name: moments[name].add(output))
        for name, module in layers
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                model(images[start : start + batch_size])
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {name: m.std for name, m in moments.items()}


def run_response_stds(run_dir: Path, test_images: torch.Tensor, *, batch_size: int = 500, device: str = "cpu") -> dict:
    """Fig. 7 numbers of the final model of a run (``checkpoints/last.pt``: the one whose test error
    the summary reports; ``best.pt`` may be an earlier one). ``test_images`` are uint8."""
    from ..checkpoints.checkpoint import load_model

    loaded = load_model(Path(run_dir) / "checkpoints" / "last.pt", device=device)
    images = loaded.preprocess.normalize(test_images).to(device)
    stds = layer_response_stds(loaded.model, images, batch_size=batch_size)
    return {
        "layers": list(stds),
        "std": list(stds.values()),
        "iteration": loaded.iteration,
        "images": int(test_images.shape[0]),
    }


def plot_responses(responses: dict[str, dict], path: Path, *, title: str = "") -> Path:
    """The two panels of Fig. 7: std per layer in network order (top), sorted descending (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .paper import depth_of, pretty_name

    fig, axes = plt.subplots(2, 1, figsize=(7, 6.5))
    order = sorted(responses, key=lambda m: (not m.startswith("plain"), depth_of(m)))
    depths = sorted({depth_of(m) for m in order})
    cmap = plt.get_cmap("tab10")
    for model in order:
        stds = responses[model]["std"]
        colour = cmap(depths.index(depth_of(model)) % 10)
        style = "--" if model.startswith("plain") else "-"
        x = range(1, len(stds) + 1)
        axes[0].plot(x, stds, style, color=colour, linewidth=1.2, label=pretty_name(model))
        axes[1].plot(x, sorted(stds, reverse=True), style, color=colour, linewidth=1.2, label=pretty_name(model))
    axes[0].set_xlabel("layer index (original)")
    axes[1].set_xlabel("layer index (sorted by magnitude)")
    for ax in axes:
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    if title:
        axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
