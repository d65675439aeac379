"""The shipped weights as a table beside the paper (``resnetlab weights list``, the README's table).

Every cell is read from the weights' manifest entry (``checkpoints.pretrained``), which ``resnetlab
reproduce ship`` wrote from the finished run: the README's table is this function's output, so
shipping ResNet-56 changes it by running the command, not by editing prose.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..checkpoints.pretrained import Weights, get_weights, list_weights
from .paper import TABLE6_ERROR
from .tables import markdown_table

HEADERS = ["name", "test error (CIFAR-10 JPEG copy)", "paper (clean CIFAR-10)", "recipe", "trained"]


def shipped(root: Path | None = None) -> list[Weights]:
    return [get_weights(name, root) for name in list_weights(root)]


def _errors(meta: dict) -> str:
    text = f"{meta['test_top1_error']:.2f}% top-1"
    if meta.get("test_top5_error") is not None:
        text += f", {meta['test_top5_error']:.2f}% top-5"
    return text


def _recipe(meta: dict) -> str:
    """The recipe and what the run changed in it, ``key=value`` as ``--set`` spells it."""
    changes = meta.get("recipe_changes") or {}
    text = f"`{meta['recipe']}`"
    if changes:
        text += " with " + ", ".join(f"`{key}={json.dumps(value)}`" for key, value in changes.items())
    return text


def _trained(meta: dict) -> str:
    return (
        f"{meta['iterations']:,} iterations on {meta['train_images']:,} training images, seed {meta['seed']}; "
        f"{meta['precision']}; {meta['wall_hours']:.1f} hours"
    )


def row(weights: Weights) -> list[str]:
    meta = weights.meta
    paper = TABLE6_ERROR.get(weights.model) if weights.tag == "cifar10" else None
    return [
        f"`{weights.name}`",
        _errors(meta),
        "-" if paper is None else f"{paper:.2f}%",
        _recipe(meta),
        _trained(meta),
    ]


def weights_table(root: Path | None = None) -> str:
    """The markdown table of every shipped set of weights, in name order."""
    return markdown_table(HEADERS, [row(w) for w in shipped(root)], align="lrrll")
