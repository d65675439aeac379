"""Learning-rate schedules counted in iterations (Sec. 3.4, 4.2)."""

from __future__ import annotations

import bisect

from .config import TrainConfig


class LRSchedule:
    """Step or plateau division of the learning rate, with the paper's error-triggered warm-up.

    - "step": ``lr * factor ** (number of milestones passed)`` (CIFAR: /10 at 32k and 48k). Also the
      documented fixed alternative for ImageNet (``--set schedule=step``: /10 at 150k, 300k and 450k
      iterations, i.e. every 30 epochs of 1.28M images at batch 256, the common reading).
    - "plateau" (ImageNet, Sec. 3.4: "the learning rate starts from 0.1 and is divided by 10 when
      the error plateaus, and the models are trained for up to 60 x 10^4 iterations"): divide when
      the validation error has not improved for ``plateau_patience`` evaluations, but never sooner
      than ``plateau_min_iterations`` after the start or the previous division, and at most
      ``plateau_max_divisions`` times. Without the spacing a noisy validation error on 10k images
      can trigger a division after a few thousand iterations; without the cap a long run would
      keep dividing to a learning rate too small to matter. The paper states no count; 3 (0.1
      down to 1e-4) is the common reading: 60e4 iterations at batch 256 are 120 epochs, divided
      every 30 epochs as in the step alternative above.
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
        # Plateau: iteration of the last division (0: the start). A checkpoint written before this
        # key existed loads with 0, which only ever allows a division sooner, never blocks one.
        self.last_division_at = 0

    def lr(self, iteration: int) -> float:
        c = self.config
        if self.warmup_active:
            return float(c.warmup_lr)
        if c.schedule == "step":
            passed = bisect.bisect_right(c.milestones, iteration)
        else:
            passed = self.divisions
        return c.lr * c.lr_factor**passed

    def observe_train_error(self, iteration: int, error: float) -> bool:
        """Report the recent training error; True when this ends the warm-up."""
        if not self.warmup_active:
            return False
        if error < self.config.warmup_until_error or iteration >= self.config.warmup_max_iterations:
            self.warmup_active = False
            self.warmup_ended_at = iteration
            return True
        return False

    def observe_val_error(self, error: float, iteration: int) -> None:
        """Report the validation error measured at ``iteration`` (plateau schedule)."""
        c = self.config
        if c.schedule != "plateau":
            return
        if error < self.best_error - 1e-9:
            self.best_error, self.bad_evaluations = error, 0
            return
        self.bad_evaluations += 1
        if (
            self.bad_evaluations >= c.plateau_patience
            and self.divisions < c.plateau_max_divisions
            and iteration - self.last_division_at >= c.plateau_min_iterations
        ):
            self.divisions += 1
            self.bad_evaluations = 0
            self.last_division_at = iteration

    def state_dict(self) -> dict:
        return {
            "warmup_active": self.warmup_active,
            "warmup_ended_at": self.warmup_ended_at,
            "divisions": self.divisions,
            "best_error": self.best_error,
            "bad_evaluations": self.bad_evaluations,
            "last_division_at": self.last_division_at,
        }

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
