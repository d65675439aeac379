"""Approximate joint training of the C4 Faster R-CNN (RPN and detector losses summed, one pass).

SGD with momentum 0.9 and weight decay 1e-4, a step learning-rate schedule counted in iterations
(Faster R-CNN / appendix A of the paper). Biases take twice the learning rate and no weight decay,
as in py-faster-rcnn. A run directory holds ``config.json``, ``metrics.jsonl``,
``checkpoints/last.pt`` and ``results.json`` (the final evaluation on the test set).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..engine.checkpoint import save_checkpoint
from .config import DetectionConfig
from .datasets import batch_images, resize_sample, training_targets
from .pipeline import Detector, build_dataset, build_detector, detector_payload, evaluate_detector


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
        [{"params": weights, "weight_decay": config.weight_decay, "lr_scale": 1.0},
         {"params": biases, "weight_decay": 0.0, "lr_scale": 2.0}],
        lr=config.lr, momentum=config.momentum,
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
    return [keys[i * size:(i + 1) * size] for i in range(start, config.iterations)]


def train_detector(
    config: DetectionConfig, data: str | Path | None, out: str | Path, log=print, evaluate: bool = True,
    eval_limit: int | None = None, device: str | torch.device = "cpu",
) -> dict:
    """Train on ``device``, checkpoint, evaluate; returns the final evaluation (also in
    ``out/results.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train_set = build_dataset(config, data, train=True)
    test_set = build_dataset(config, data, train=False) if evaluate else None
    model, mean, std = build_detector(config, len(train_set.classes))
    model.to(device)
    detector = Detector(model, config, tuple(train_set.classes), tuple(mean), tuple(std))
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    optimizer = make_optimizer(model, config)
    loader = torch.utils.data.DataLoader(
        _TrainView(train_set, config), batch_sampler=_batches(len(train_set), config, generator, 0),
        collate_fn=list, num_workers=config.workers,
    )
    with _MetricsFile(out / "metrics.jsonl") as metrics:
        results = _train_loop(config, model, detector, optimizer, loader, mean, std, generator, metrics, out, log)
        if test_set is not None:
            t0 = time.perf_counter()
            results.update(evaluate_detector(detector, test_set, eval_limit, autocast=config.autocast == "bf16"))
            results["eval_seconds"] = time.perf_counter() - t0
            metrics.write({"iteration": config.iterations, "eval": results})
            log(f"test: mAP@0.5 {results['mAP50']:.4f} (VOC07 11-point {results['mAP50_07']:.4f}), "
                f"AP@[.5:.95] {results['AP']:.4f} on {results['images']} images")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


class _MetricsFile:
    """``metrics.jsonl`` of one training run, closed on any exit (``with``).

    Training always starts at iteration 0, so rows an earlier, killed attempt left behind (and a
    row it tore in half) would be duplicates: the file starts empty. Each row then goes out in a
    single ``write`` of a whole line, flushed at once, so a kill loses at most the row being written
    and never glues two rows together.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None

    def __enter__(self) -> "_MetricsFile":
        self.handle = open(self.path, "w")
        return self

    def write(self, row: dict) -> None:
        self.handle.write(json.dumps(row) + "\n")
        self.handle.flush()

    def __exit__(self, *exc) -> None:
        self.handle.close()


def _train_loop(config, model, detector, optimizer, loader, mean, std, generator, metrics: _MetricsFile,
                out: Path, log) -> dict:
    model.train()
    started = last = time.perf_counter()
    for iteration, samples in enumerate(loader):
        lr = learning_rate(config, iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        images, sizes = batch_images([s.image for s in samples], mean, std)
        device = next(model.parameters()).device
        targets = [{k: v.to(device) for k, v in training_targets(s).items()} for s in samples]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.autocast == "bf16"):
            losses = model(images.to(device), sizes, targets, generator)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at iteration {iteration}: lower lr or add warm-up")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = iteration + 1
        detector.iteration = done
        if done % config.log_every == 0 or done == config.iterations:
            now = time.perf_counter()
            row = {"iteration": done, "lr": lr, "loss": loss.item(), **{k: v.item() for k, v in losses.items()},
                   "seconds_per_iteration": (now - last) / (done % config.log_every or config.log_every),
                   "elapsed_s": now - started}
            last = now
            metrics.write(row)
            log(f"iter {done}/{config.iterations} loss {row['loss']:.4f} lr {lr:.5f} ({row['elapsed_s']:.0f}s)")
        if done % config.checkpoint_every == 0 or done == config.iterations:
            save_checkpoint(out / "checkpoints" / "last.pt", detector_payload(detector))
    return {"iterations": config.iterations, "train_seconds": time.perf_counter() - started}
