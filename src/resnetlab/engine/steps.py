"""The named steps of one start of a training run: train step, warm-up check, log point, evaluate,
checkpoint, finish. ``engine/train.py`` builds a ``Run`` and calls them in order.

The loop never waits on the device except at log, evaluation and checkpoint points: per-step
figures accumulate in device tensors (``TrainState.window``) and are read back only there. Every
cross-process reduction of the loop goes through ``all_reduce_sum`` in this module.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints.atomic import write_json
from ..checkpoints.checkpoint import save_checkpoint
from ..checkpoints.rundir import MetricsLog
from ..evaluation.counts import rates
from ..models import count_params
from ..progress import Progress
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum
from .failures import TrainingCollapsed, TrainingDiverged, chance_streak, collapse_message
from .precision import arithmetic, describe_segments
from .state import TrainState
from .train_data import TrainData


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # "completed" | "interrupted"
    iteration: int
    summary: dict = field(default_factory=dict)


@dataclass
class Run:
    """One start (fresh or resumed) of the training run in ``run_dir``."""

    config: TrainConfig
    run_dir: Path
    state: TrainState
    data: TrainData
    train_model: nn.Module  # state.model, or its DDP / compiled wrapper
    device: torch.device
    precision: str
    autocast: contextlib.AbstractContextManager
    dist_info: DistInfo
    metrics: MetricsLog
    progress: Progress
    log: Callable[[str], None]
    start: int  # the iteration this start began at
    resumed: bool
    segments: list[dict]  # meta.json's segments (rank 0)
    started: float = field(default_factory=time.perf_counter)
    stop_requested: bool = False

    def __post_init__(self) -> None:
        self.window_started, self.window_iteration = self.started, self.start

    @property
    def main(self) -> bool:
        return self.dist_info.is_main

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    # --- train step ---------------------------------------------------------------------------
    def train_step(self) -> float:
        """One SGD step at the schedule's learning rate; returns that rate."""
        state, config = self.state, self.config
        lr = state.schedule.lr(state.iteration)
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        images, labels = self.data.batches.batch(state.iteration)
        images = images.contiguous(
            memory_format=torch.channels_last if config.channels_last else torch.contiguous_format
        )
        with self.autocast:
            logits = self.train_model(images)
            loss = F.cross_entropy(logits.float(), labels)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.iteration += 1
        with torch.no_grad():  # device-side accumulation: no host sync per step
            wrong = (logits.argmax(1) != labels).sum()
            state.window[0] += labels.shape[0]
            state.window[1] += wrong
            state.window[2] += loss.detach() * labels.shape[0]
            if state.schedule.warmup_active:
                state.warm_window[0] += labels.shape[0]
                state.warm_window[1] += wrong
        return lr

    def warmup_check(self) -> None:
        """Warm-up (Sec. 4.2, ResNet-110): lr 0.01 until the training error is below 80%. Checked
        every 20 iterations, a fixed cadence so that a resumed run decides at the same iteration."""
        state = self.state
        if not (
            state.schedule.warmup_active
            and (state.iteration % 20 == 0 or state.iteration >= self.config.warmup_max_iterations)
        ):
            return
        seen, wrong = all_reduce_sum(state.warm_window.clone(), self.dist_info).tolist()
        state.warm_window.zero_()
        if state.schedule.observe_train_error(state.iteration, wrong / max(seen, 1)) and self.main:
            self.progress.message(
                f"warm-up ended at iteration {state.iteration} (training error {100 * wrong / max(seen, 1):.1f}%)"
            )

    # --- log point ------------------------------------------------------------------------------
    def log_point(self, lr: float) -> None:
        """Training loss/error since the last log point, into metrics.jsonl and the progress line."""
        state = self.state
        seen, wrong, loss_sum = all_reduce_sum(state.window.clone(), self.dist_info).tolist()
        state.window.zero_()
        if not math.isfinite(loss_sum):
            self.diverged(f"loss is {loss_sum / max(seen, 1)} at iteration {state.iteration}")
        now = time.perf_counter()
        record = {
            "iteration": state.iteration,
            "lr": lr,
            "train_loss": loss_sum / max(seen, 1),
            "train_error": 100.0 * wrong / max(seen, 1),
            "images_per_second": (state.iteration - self.window_iteration)
            * self.config.batch_size
            / (now - self.window_started),
            "elapsed_seconds": state.wall_before + now - self.started,
        }
        self.window_started, self.window_iteration = now, state.iteration
        self.metrics.write(record)
        self.collapse_check(record)
        if self.main:
            self.progress.update(
                state.iteration,
                f"loss {record['train_loss']:.3f} err {record['train_error']:.1f}% "
                f"lr {lr:g} {record['images_per_second']:.0f} img/s",
            )

    def collapse_check(self, record: dict) -> None:
        """Stop a run whose logs have sat at chance for ``stop_at_chance`` iterations."""
        state, patience, classes = self.state, self.config.stop_at_chance, self.state.options["num_classes"]
        state.at_chance_since = chance_streak(state.at_chance_since, record, classes)
        if patience and state.at_chance_since is not None and state.iteration - state.at_chance_since >= patience:
            self.metrics.close()
            raise TrainingCollapsed(collapse_message(record, classes, state.at_chance_since))

    # --- evaluate -------------------------------------------------------------------------------
    def evaluate(self, names: tuple[str, ...], exact: bool = False) -> dict[str, dict]:
        """Errors per split; ``exact`` evaluates in fp32 (the reported test error), else as trained."""
        context = contextlib.nullcontext() if exact else self.autocast
        results = {}
        for name in names:
            try:
                counts = self.data.evaluators[name](self.state.model, context)
                results[name] = rates(all_reduce_sum(counts, self.dist_info))
            except FloatingPointError as error:  # every rank sees the same summed loss
                self.diverged(f"{name} {error} at iteration {self.state.iteration}")
        return results

    def eval_point(self) -> None:
        """Validation (and, if tracked, test) error; a new best validation error saves best.pt."""
        state, config = self.state, self.config
        names = tuple(
            n for n in ("val", "test") if n in self.data.evaluators and (n == "val" or config.track_test_error)
        )
        results = self.evaluate(names)
        record: dict = {"iteration": state.iteration}
        for name, r in results.items():
            record[f"{name}_error"] = r["top1_error"]
            if r["loss"] is not None:
                record[f"{name}_loss"] = r["loss"]
        self.metrics.write(record)
        if "val" in results:
            state.schedule.observe_val_error(results["val"]["top1_error"], state.iteration)
            if results["val"]["top1_error"] < state.best["val_error"]:
                state.best = {"val_error": results["val"]["top1_error"], "iteration": state.iteration}
                self.checkpoint(self.run_dir / "checkpoints" / "best.pt")
        if self.main:
            self.progress.message(
                f"iter {state.iteration}: "
                + ", ".join(f"{name} error {r['top1_error']:.2f}%" for name, r in results.items())
            )

    # --- stop and checkpoint --------------------------------------------------------------------
    def should_stop(self, should_stop: Callable[[], bool], log_point: bool) -> bool:
        """A stop request, agreed by every process: all must stop at the same iteration, but agreeing
        costs an all-reduce and a host sync, so they agree at log points only."""
        stop = self.stop_requested = self.stop_requested or should_stop()
        if not self.dist_info.enabled:
            return stop
        if not log_point:
            return False
        flag = torch.tensor([1.0 if self.stop_requested else 0.0], device=self.device)
        return bool(all_reduce_sum(flag, self.dist_info).item() > 0)

    def checkpoint(self, path: Path) -> None:
        if self.main:
            wall = self.state.wall_before + time.perf_counter() - self.started
            save_checkpoint(path, self.state.payload(self.data.classes, self.data.preprocess, wall))

    def checkpoint_last(self) -> None:
        """``last.pt``, but never with diverged weights over the last good checkpoint."""
        state = self.state
        finite = (
            torch.isfinite(state.window[2])
            & torch.stack([torch.isfinite(p).all() for p in state.model.parameters()]).all()
        )
        if not bool(all_reduce_sum(finite.double().view(1), self.dist_info).item() == self.dist_info.world_size):
            self.diverged(f"weights or loss are not finite at iteration {state.iteration}")
        self.checkpoint(self.checkpoint_path)

    def diverged(self, what: str) -> None:
        self.metrics.close()
        raise TrainingDiverged(
            f"{what}; stopped. The last good checkpoint is {self.checkpoint_path} (lower lr or check the data)"
        )

    # --- finish ---------------------------------------------------------------------------------
    def finish(self, status: str) -> TrainResult:
        """The fp32 test error of the final weights into summary.json (a completed run)."""
        self.progress.close()
        state, config, data = self.state, self.config, self.data
        loop_seconds = time.perf_counter() - self.started
        wall = state.wall_before + loop_seconds
        iteration = state.iteration
        summary: dict = {}
        if status == "completed":
            final = self.evaluate(("test",), exact=True)["test"]
            summary = {
                "model": config.model,
                "model_options": state.options,
                "data": config.data,
                "test_top1_error": final["top1_error"],
                "test_top5_error": final["top5_error"],
                "test_loss": final["loss"],
                "test_images": final["n"],
                "best_val_error": state.best["val_error"] if state.best["iteration"] is not None else None,
                "best_val_iteration": state.best["iteration"],
                "params": count_params(state.model),
                "iterations": iteration,
                "batch_size": config.batch_size,
                "wall_seconds": wall,
                "images_per_second": (iteration - self.start) * config.batch_size / max(loop_seconds, 1e-9),
                "device": str(self.device),
                "seed": config.seed,
                "precision": describe_segments(self.segments, "precision", iteration, arithmetic)
                if self.main
                else self.precision,
                "world_size": self.dist_info.world_size,
                # Unreadable training files dropped under on_error="skip" (imagenet pipeline).
                "skipped_images": [f"{path}: {reason}" for path, reason in getattr(data.batches, "skipped", [])],
                # ... and evaluation files (this process's shard): the errors above are over the rest.
                "skipped_eval_images": sorted(
                    {
                        f"{path}: {reason}"
                        for e in data.evaluators.values()
                        for path, reason in getattr(e, "skipped", {}).items()
                    }
                ),
            }
            if "val" not in data.evaluators:
                # Trained on every training image: the last model is also the "best" one.
                self.checkpoint(self.run_dir / "checkpoints" / "best.pt")
            if self.main:
                write_json(self.run_dir / "summary.json", summary)
                self.log(
                    f"done: test error {summary['test_top1_error']:.2f}% (top-5 {summary['test_top5_error']:.2f}%) "
                    f"after {iteration:,} iterations in {wall:.0f} s ({summary['images_per_second']:.0f} img/s); "
                    f"run: {self.run_dir}"
                )
        elif self.main:
            self.log(
                f"interrupted at iteration {iteration}; checkpoint saved to {self.checkpoint_path}; "
                f"continue with --resume --out {self.run_dir}"
            )
        self.metrics.close()
        return TrainResult(self.run_dir, status, iteration, summary)
