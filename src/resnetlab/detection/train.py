"""Approximate joint training of the C4 Faster R-CNN (RPN and detector losses summed, one pass).

SGD with momentum 0.9 and weight decay 1e-4, a step learning-rate schedule counted in iterations
(Faster R-CNN / appendix A of the paper, Sec. 4.3). Biases take twice the learning rate and no
weight decay, as in py-faster-rcnn.

The machinery is classification's (``engine/``): the device (``devices.resolve_device``), the arithmetic
(``resolve_precision`` / ``autocast_for``, fp16 with loss scaling on CUDA), the run directory's
``config.json``, ``meta.json`` and ``metrics.jsonl`` + TensorBoard (``MetricsLog``), progress
(``Progress``), atomic checkpoints, and exact resume: ``checkpoints/last.pt`` holds the optimiser and
both random states, so a run stopped at iteration k and resumed draws the same images, flips and
RoI samples as one that never stopped. ``results.json`` holds the final test-set evaluation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..checkpoints.atomic import write_json
from ..checkpoints.checkpoint import load_checkpoint, save_checkpoint
from ..checkpoints.rundir import MetricsLog, provenance
from ..devices import resolve_device
from ..engine.precision import autocast_for, optimizer_step, resolve_precision
from ..progress import Progress
from ..seeding import generator as seeded
from .config import DetectionConfig, upgrade_legacy_keys
from .datasets import batch_images, resize_sample, training_targets
from .pipeline import Detector, build_dataset, build_detector, detector_payload, evaluate_detector

logger = logging.getLogger(__name__)  # a child of the library's one logger, "resnetlab"

# Keys that may differ between a run and its resumption (cadence and machine, not the recipe).
RESUMABLE_CHANGES = {"log_every", "checkpoint_every", "workers", "device"}


def learning_rate(config: DetectionConfig, iteration: int) -> float:
    """Step schedule with an optional linear warm-up from lr / 3."""
    lr = config.lr * config.lr_gamma ** sum(iteration >= step for step in config.lr_steps)
    if iteration < config.warmup_iterations:
        alpha = iteration / config.warmup_iterations
        lr *= (1 / 3) * (1 - alpha) + alpha
    return lr


def make_optimizer(model: torch.nn.Module, config: DetectionConfig) -> torch.optim.SGD:
    weights = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
    biases = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")]
    return torch.optim.SGD(
        [
            {"params": weights, "weight_decay": config.weight_decay, "lr_scale": 1.0},
            {"params": biases, "weight_decay": 0.0, "lr_scale": 2.0},
        ],
        lr=config.lr,
        momentum=config.momentum,
    )


class _TrainView(torch.utils.data.Dataset):
    """Samples resized (and flipped) for training; indexed by ``(index, flip)``."""

    def __init__(self, dataset, config: DetectionConfig) -> None:
        self.dataset, self.config = dataset, config

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, bool]):
        index, flip = key
        return resize_sample(self.dataset[index], self.config.min_size, self.config.max_size, flip)


def _batches(length: int, config: DetectionConfig, generator: torch.Generator, start: int):
    """Endless mini-batches of (index, flip): a fresh permutation of the set each epoch."""
    needed = config.iterations * config.images_per_batch
    keys: list[tuple[int, bool]] = []
    while len(keys) < needed:
        order = torch.randperm(length, generator=generator).tolist()
        flips = (torch.rand(length, generator=generator) < 0.5).tolist() if config.flip else [False] * length
        keys.extend(zip(order, flips))
    size = config.images_per_batch
    return [keys[i * size : (i + 1) * size] for i in range(start, config.iterations)]


def check_resumable(saved: dict, config: DetectionConfig, path: Path) -> None:
    """Refuse to resume under another recipe: the batch order is drawn from the whole schedule."""
    current, defaults = config.to_dict(), DetectionConfig().to_dict()
    saved = upgrade_legacy_keys(saved, str(path))  # a run started under the key's former name
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k, defaults[k]) != current[k])
    if changed:
        raise ValueError(
            f"cannot resume {path}: the run was started with different {', '.join(changed)} "
            f"(start a new --out directory, or resume with the original settings)"
        )


def _resume_state(path: Path, config: DetectionConfig) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    state = load_checkpoint(path)
    if "optimizer" not in state:
        raise ValueError(
            f"cannot resume {path}: it holds no training state (written before detection "
            "runs could resume); start a new --out directory"
        )
    check_resumable(state["config"], config, path)
    return state


def train_detector(
    config: DetectionConfig,
    data: str | Path | None,
    out: str | Path,
    log: Callable[[str], None] = logger.info,
    evaluate: bool = True,
    eval_limit: int | None = None,
    device: str | torch.device | None = None,
    *,
    resume: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    progress_tty: bool | None = False,
    argv: list[str] | None = None,
) -> dict:
    """Train on ``device`` (default: ``config.device``), checkpoint, evaluate; returns the final
    evaluation (also in ``out/results.json``), or ``{"status": "interrupted", ...}`` when
    ``should_stop()`` turned true (the checkpoint then resumes the run exactly)."""
    out = Path(out)
    device = resolve_device(str(device if device is not None else config.device))
    precision = resolve_precision(config.precision, device)
    checkpoint_path = out / "checkpoints" / "last.pt"
    state = _resume_state(checkpoint_path, config) if resume else None
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    generator = seeded(config.seed)
    train_set = build_dataset(config, data, train=True)
    test_set = build_dataset(config, data, train=False) if evaluate else None
    model, mean, std = build_detector(config, len(train_set.classes))
    model.to(device)
    detector = Detector(model, config, tuple(train_set.classes), tuple(mean), tuple(std))
    write_json(out / "config.json", config.to_dict())
    optimizer = make_optimizer(model, config)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    # Drawn before any state is restored: the whole schedule's order comes from the fresh generator.
    batches = _batches(len(train_set), config, generator, 0)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        generator.set_state(state["rng"]["generator"])
        torch.set_rng_state(state["rng"]["torch"])
        start = detector.iteration = int(state["iteration"])
    write_json(out / "meta.json", {**provenance(device, precision, argv), "resumed_from": start if resume else None})
    loader = torch.utils.data.DataLoader(
        _TrainView(train_set, config),
        batch_sampler=batches[start:],
        collate_fn=list,
        num_workers=config.workers,
    )
    metrics = MetricsLog(out, resume_from=start if resume else None)
    log(
        f"training Faster R-CNN ({config.backbone} C4) on {len(train_set):,} images for {config.iterations:,} "
        f"iterations; device {device}, {precision}{', resumed at ' + str(start) if resume else ''}"
    )
    loop = _Loop(
        config,
        detector,
        optimizer,
        scaler,
        autocast_for(device, precision),
        generator,
        metrics,
        checkpoint_path,
        Progress(config.iterations, start, tty=progress_tty, log=log, desc="iter"),
    )
    try:
        results = loop.run(loader, start, should_stop)
        if results.get("status") == "interrupted":
            return results
        if test_set is not None:
            t0 = time.perf_counter()
            results.update(
                evaluate_detector(
                    detector,
                    test_set,
                    eval_limit,
                    precision=precision,
                    progress=True,
                    log=log,
                    progress_tty=progress_tty,
                )
            )
            results["eval_seconds"] = time.perf_counter() - t0
            metrics.write({"iteration": config.iterations, "eval": results})
            log(
                f"test: mAP@0.5 {results['mAP50']:.4f} (VOC07 11-point {results['mAP50_07']:.4f}), "
                f"AP@[.5:.95] {results['AP']:.4f} on {results['images']} images"
            )
    finally:
        metrics.close()
    write_json(out / "results.json", results)
    return results


class _Loop:
    """The training iterations of one start of a run (fresh or resumed)."""

    def __init__(
        self,
        config: DetectionConfig,
        detector: Detector,
        optimizer: torch.optim.SGD,
        scaler: torch.amp.GradScaler,
        autocast,
        generator: torch.Generator,
        metrics: MetricsLog,
        checkpoint_path: Path,
        progress: Progress,
    ) -> None:
        self.config, self.detector, self.optimizer, self.scaler = config, detector, optimizer, scaler
        self.autocast, self.generator, self.metrics = autocast, generator, metrics
        self.checkpoint_path, self.progress = checkpoint_path, progress

    def checkpoint(self, done: int) -> None:
        self.detector.iteration = done
        payload = detector_payload(self.detector)
        payload.update(
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            rng={"generator": self.generator.get_state(), "torch": torch.get_rng_state()},
        )
        save_checkpoint(self.checkpoint_path, payload)

    def step(self, iteration: int, samples: list) -> tuple[float, torch.Tensor, dict]:
        config, model = self.config, self.detector.model
        lr = learning_rate(config, iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        images, sizes = batch_images([s.image for s in samples], self.detector.mean, self.detector.std)
        device = next(model.parameters()).device
        targets = [{k: v.to(device) for k, v in training_targets(s).items()} for s in samples]
        with self.autocast:
            losses = model(images.to(device), sizes, targets, self.generator)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at iteration {iteration}: lower lr or add warm-up")
        optimizer_step(self.optimizer, self.scaler, loss)
        return lr, loss, losses

    def run(self, loader, start: int, should_stop: Callable[[], bool]) -> dict:
        config = self.config
        self.detector.model.train()
        started = last = time.perf_counter()
        done = start
        with self.progress:
            for iteration, samples in enumerate(loader, start):
                lr, loss, losses = self.step(iteration, samples)
                done = iteration + 1
                self.detector.iteration = done
                if done % config.log_every == 0 or done == config.iterations:
                    now = time.perf_counter()
                    row = {
                        "iteration": done,
                        "lr": lr,
                        "loss": loss.item(),
                        **{k: v.item() for k, v in losses.items()},
                        "seconds_per_iteration": (now - last) / (done % config.log_every or config.log_every),
                        "elapsed_s": now - started,
                    }
                    last = now
                    self.metrics.write(row)
                    self.progress.update(done, f"loss {row['loss']:.4f} lr {lr:.5f}")
                stop = should_stop()
                if done % config.checkpoint_every == 0 or done == config.iterations or stop:
                    self.checkpoint(done)
                if stop and done < config.iterations:
                    return {"status": "interrupted", "iterations": done}
        return {"iterations": config.iterations, "train_seconds": time.perf_counter() - started}
