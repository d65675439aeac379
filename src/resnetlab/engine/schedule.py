"""Learning-rate schedules counted in iterations (Sec. 3.4, 4.2)."""

from __future__ import annotations

import bisect

from .config import TrainConfig


class LRSchedule:
    """Step or plateau division of the learning rate, with the paper's error-triggered warm-up.

    - "step": ``lr * factor ** (number of milestones passed)`` (CIFAR: /10 at 32k and 48k).
    - "plateau": divide by 10 when the validation error has not improved for ``plateau_patience``
      evaluations (ImageNet: "divided by 10 when the error plateaus").
    - Warm-up (ResNet-110/1202): ``warmup_lr`` until the training error falls below
      ``warmup_until_error`` or ``warmup_max_iterations`` pass, then the normal schedule.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.warmup_active = config.warmup_lr is not None
        self.warmup_ended_at: int | None = None
        self.divisions = 0  # plateau schedule: how often the lr was divided
        self.best_error = float("inf")
        self.bad_evaluations = 0

    def lr(self, iteration: int) -> float:
        c = self.config
        if self.warmup_active:
            return float(c.warmup_lr)
        if c.schedule == "step":
            passed = bisect.bisect_right(c.milestones, iteration)
        else:
            passed = self.divisions
        return c.lr * c.lr_factor**passed

    def needs_train_error(self, iteration: int) -> bool:
        return self.warmup_active

    def observe_train_error(self, iteration: int, error: float) -> bool:
        """Report the recent training error; True when this ends the warm-up."""
        if not self.warmup_active:
            return False
        if error < self.config.warmup_until_error or iteration >= self.config.warmup_max_iterations:
            self.warmup_active = False
            self.warmup_ended_at = iteration
            return True
        return False

    def observe_val_error(self, error: float) -> None:
        if self.config.schedule != "plateau":
            return
        if error < self.best_error - 1e-9:
            self.best_error, self.bad_evaluations = error, 0
            return
        self.bad_evaluations += 1
        if self.bad_evaluations >= self.config.plateau_patience:
            self.divisions += 1
            self.bad_evaluations = 0

    def state_dict(self) -> dict:
        return {
            "warmup_active": self.warmup_active,
            "warmup_ended_at": self.warmup_ended_at,
            "divisions": self.divisions,
            "best_error": self.best_error,
            "bad_evaluations": self.bad_evaluations,
        }

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
