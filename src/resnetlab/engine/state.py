"""``TrainState``: everything a training checkpoint holds and the loop changes.

The model and optimiser, the learning-rate schedule (with the warm-up and plateau decisions it has
taken), the loss scaler, the global torch RNG, the iteration, the best validation error so far and
the partial log/warm-up windows. Restoring all of it is what makes resume exact: a run stopped at
iteration k and resumed finishes with bitwise the same weights as an uninterrupted run (CPU).

The checkpoint layout (``payload``/``restore``) is a contract with every run directory already on
disk (``checkpoints/checkpoint.py`` documents the format; ``tests/test_golden_resume.py`` resumes a
run written by earlier code).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..checkpoints.checkpoint import model_payload
from ..data.preprocess import Preprocess
from ..models import build_model, model_info
from .config import TrainConfig
from .schedule import LRSchedule

# Keys that may differ between a run and its resumption (cadence and machine, not the recipe).
RESUMABLE_CHANGES = {
    "log_every",
    "eval_every",
    "checkpoint_every",
    "device",
    "compile",
    "eval_batch_size",
    "iterations",
    "stop_at_chance",  # when to give up on a collapsed run; the trajectory does not depend on it
}


def _normalise(value):
    return list(value) if isinstance(value, tuple) else value


def check_resumable(saved: dict, config: TrainConfig) -> None:
    """Refuse to resume under another recipe (the batches and schedule follow from it)."""
    current = config.to_dict()
    # A key missing from an older run's config had its default then (fields are only ever added).
    defaults = TrainConfig().to_dict()
    changed = sorted(
        k
        for k in current
        if k not in RESUMABLE_CHANGES and _normalise(saved.get(k, defaults[k])) != _normalise(current[k])
    )
    if changed:
        raise ValueError(
            f"cannot resume: the run was started with different {', '.join(changed)} "
            f"(start a new --out directory, or resume with the original settings)"
        )


def _no_best() -> dict:
    return {"val_error": float("inf"), "iteration": None}


@dataclass
class TrainState:
    config: TrainConfig
    model: nn.Module  # the bare network (what is saved); the loop may run a DDP/compiled wrapper
    options: dict  # build_model options, with the data's class count filled in
    optimizer: torch.optim.SGD
    scaler: torch.amp.GradScaler
    schedule: LRSchedule
    window: torch.Tensor  # since the last log point: [images, wrong, summed loss] (on the device)
    warm_window: torch.Tensor  # since the last warm-up check: [images, wrong]
    iteration: int = 0
    best: dict = field(default_factory=_no_best)  # lowest validation error and its iteration
    wall_before: float = 0.0  # seconds spent by earlier starts of this run
    at_chance_since: int | None = None  # first log point of the current run of logs at chance level

    @classmethod
    def build(cls, config: TrainConfig, num_classes: int, device: torch.device, precision: str) -> TrainState:
        """A fresh state. The global RNG is seeded here, right before the weights are drawn, so
        the initialisation (He et al. 2015, Sec. 3.4) depends on the seed alone."""
        torch.manual_seed(config.seed)
        options = dict(config.model_options)
        if "num_classes" in model_info(config.model).options:
            options.setdefault("num_classes", num_classes)
        model = build_model(config.model, **options).to(device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        # Sec. 3.4 / 4.2: SGD, momentum 0.9, weight decay 1e-4 (the recipe's values).
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
        return cls(
            config=config,
            model=model,
            options=options,
            optimizer=optimizer,
            scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
            schedule=LRSchedule(config),
            window=torch.zeros(3, dtype=torch.float64, device=device),
            warm_window=torch.zeros(2, dtype=torch.float64, device=device),
        )

    def restore(self, saved: dict) -> None:
        """Continue from a checkpoint's training state (``payload``'s keys)."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        if saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng"]["torch"])
        self.iteration = int(saved["iteration"])
        self.best = dict(saved.get("best", self.best))
        self.wall_before = float(saved.get("wall_seconds", 0.0))
        # Absent from checkpoints written before the collapse check: the count starts again.
        self.at_chance_since = saved.get("at_chance_since")
        if "windows" in saved:  # partial log/warm-up windows, for exact resume
            self.window.copy_(saved["windows"]["log"])
            self.warm_window.copy_(saved["windows"]["warmup"])

    def payload(self, classes, preprocess: Preprocess, wall_seconds: float) -> dict:
        """The checkpoint: what ``load_model`` needs plus the training state ``restore`` reads."""
        payload = model_payload(self.model, self.config.model, self.options, classes, preprocess, self.iteration)
        payload.update(
            config=self.config.to_dict(),
            optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict(),
            scaler=self.scaler.state_dict(),
            rng={"torch": torch.get_rng_state()},
            best=self.best,
            windows={"log": self.window.cpu(), "warmup": self.warm_window.cpu()},
            wall_seconds=wall_seconds,
            at_chance_since=self.at_chance_since,
        )
        return payload
