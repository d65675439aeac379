"""How a training run fails on its own: it diverges (the loss is no longer finite) or collapses
(the net predicts the same distribution for every image, at chance, and does not come back)."""

from __future__ import annotations

import math


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingCollapsed(TrainingDiverged):
    """The training loss stayed at chance (ln C) for ``stop_at_chance`` iterations."""


def at_chance(loss: float, error_percent: float, num_classes: int) -> bool:
    """A log window whose loss is within 0.5% of ln C and whose error is within 2 points of chance:
    what a net measures that predicts the uniform distribution for every image. A freshly drawn net
    is not there (its loss is above ln C: 3.5 for ResNet-56), and a net that learns, even slowly,
    leaves it within a few hundred iterations (ResNet-56 in fp32 from the v4 campaign's seed: loss
    2.23 at iteration 300; results/cifar10-jpeg/investigation.md)."""
    chance_loss, chance_error = math.log(num_classes), 100.0 * (1 - 1 / num_classes)
    return abs(loss - chance_loss) <= 0.005 * chance_loss and error_percent >= chance_error - 2.0


def chance_streak(since: int | None, record: dict, num_classes: int) -> int | None:
    """The iteration of the first log point of the run of at-chance log points that ``record`` (a
    metrics.jsonl training record) continues or starts; None when ``record`` is not at chance."""
    if not at_chance(record["train_loss"], record["train_error"], num_classes):
        return None
    return record["iteration"] if since is None else since


def collapse_message(record: dict, num_classes: int, since: int) -> str:
    return (
        f"training collapsed: loss {record['train_loss']:.4f} (ln {num_classes} = {math.log(num_classes):.4f}) "
        f"and error {record['train_error']:.1f}% at chance since iteration {since}; stopped at "
        f"{record['iteration']}. Start again in a new --out with a warm-up at a lower learning rate "
        "(--set warmup_lr=0.01, the paper's remedy for ResNet-110, Sec. 4.2)"
    )
