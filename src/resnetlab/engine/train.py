"""The training loop: the paper's CIFAR recipe (Sec. 4.2), read top to bottom.

Fast by default: the data lives on the device and is augmented in batches, convolutions run in
bf16 autocast with channels_last where the hardware supports bf16, and the loop never waits on the
device except at log, evaluation and checkpoint points. Exact resume: a run stopped at iteration k
and resumed finishes with bitwise the same weights as an uninterrupted run (CPU).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data.arrays import ImageArrays
from ..models import build_model, count_params, model_info
from .checkpoint import load_checkpoint, model_payload, save_checkpoint
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum, barrier, broadcast_object
from .data import array_data, load_arrays
from .evaluate import rates
from .precision import autocast_for, describe_segments, resolve_precision
from .progress import Progress
from .rundir import MetricsLog, provenance, segments_so_far, write_json
from .schedule import LRSchedule

# Keys that may differ between a run and its resumption (cadence and machine, not the recipe).
RESUMABLE_CHANGES = {"log_every", "eval_every", "checkpoint_every", "device", "compile", "eval_batch_size", "iterations"}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # "completed" | "interrupted"
    iteration: int
    summary: dict = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda requested but no CUDA device is available")
    return torch.device(name)


def _check_resumable(saved: dict, config: TrainConfig) -> None:
    current = config.to_dict()
    # A key missing from an older run's config had its default then (fields are only ever added).
    defaults = TrainConfig().to_dict()
    changed = sorted(
        k for k in current
        if k not in RESUMABLE_CHANGES and _normalise(saved.get(k, defaults[k])) != _normalise(current[k])
    )
    if changed:
        raise ValueError(
            f"cannot resume: the run was started with different {', '.join(changed)} "
            f"(start a new --out directory, or resume with the original settings)"
        )


def _start_refusal(run_dir: Path, checkpoint_path: Path, resume: bool) -> tuple[str, str] | None:
    """Why the run cannot start, as ``(kind, message)``, or None."""
    if resume and not checkpoint_path.is_file():
        return "missing", f"--resume: no checkpoint at {checkpoint_path}"
    if not resume and (run_dir / "summary.json").exists():
        return "finished", f"{run_dir} already holds a finished run; choose another --out or pass --resume"
    return None


def _normalise(value):
    return list(value) if isinstance(value, tuple) else value


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    data: tuple[ImageArrays, ImageArrays] | None = None,
    cache_dir: Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = print,
    progress_tty: bool | None = False,
    dist_info: DistInfo = DistInfo(),
    argv: list[str] | None = None,
) -> TrainResult:
    """Train ``config`` into the run directory ``out_dir``; see the module docstring."""
    run_dir = Path(out_dir)
    main = dist_info.is_main
    device = resolve_device(config.device)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    precision = resolve_precision(config.precision, device)
    autocast = autocast_for(device, precision)

    checkpoint_path = run_dir / "checkpoints" / "last.pt"
    # Rank 0 decides whether the run may start and every rank follows: a rank that went on alone
    # would wait forever (or die with a connection error) in its first collective operation.
    refusal = broadcast_object(_start_refusal(run_dir, checkpoint_path, resume), dist_info)
    if refusal is not None:
        kind, message = refusal
        raise (FileNotFoundError if kind == "missing" else ValueError)(message)
    state = None
    if resume:
        state = load_checkpoint(checkpoint_path)
        _check_resumable(state["config"], config)

    # --- data ---------------------------------------------------------------------------------
    if config.pipeline == "imagenet":
        if data is not None:
            raise ValueError("in-memory data cannot feed the imagenet pipeline")
        from .stream import imagenet_data

        train_data = imagenet_data(config, device=device, dist_info=dist_info, cache_dir=cache_dir)
    else:
        train_data = array_data(config, data if data is not None else load_arrays(config, cache_dir),
                                device=device, dist_info=dist_info)
    batches, preprocess, classes = train_data.batches, train_data.preprocess, train_data.classes

    # --- model and optimiser ------------------------------------------------------------------
    torch.manual_seed(config.seed)
    options = dict(config.model_options)
    if "num_classes" in model_info(config.model).options:
        options.setdefault("num_classes", len(classes))
    model = build_model(config.model, **options).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum,
        weight_decay=config.weight_decay, nesterov=config.nesterov,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    schedule = LRSchedule(config)
    start = 0
    best = {"val_error": float("inf"), "iteration": None}
    wall_before = 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        start = int(state["iteration"])
        best = dict(state.get("best", best))
        wall_before = float(state.get("wall_seconds", 0.0))
    train_model: nn.Module = model
    if config.sync_bn and dist_info.enabled:
        if device.type != "cuda":
            raise ValueError("sync_bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU kernel); "
                             "on CPU each process normalises over its share of the batch")
        # Same parameter names, so checkpoints still load into a plain model.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = model
    if dist_info.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile:
        train_model = torch.compile(train_model)

    meta_segments: list[dict] = []
    if main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", config.to_dict())
        meta = provenance(device, precision, argv)
        # Each start or resume adds a segment: a run resumed on another host (or under new code)
        # says from which iteration its precision, threads and code revision changed.
        meta["segments"] = segments_so_far(run_dir / "meta.json", start if resume else None) + [{
            "from_iteration": start, "precision": precision, "threads": meta["threads"],
            "git_revision": meta["git_revision"], "cpu": meta["cpu"], "started": meta["started"],
        }]
        meta_segments = meta["segments"]
        meta.update(seed=config.seed, world_size=dist_info.world_size, resumed_from=start if resume else None,
                    train_images=train_data.sizes["train"], val_images=train_data.sizes["val"],
                    test_images=train_data.sizes["test"])
        write_json(run_dir / "meta.json", meta)
    metrics = MetricsLog(run_dir, enabled=main, resume_from=start if resume else None)
    progress = Progress(config.iterations, start, tty=progress_tty, log=log)
    params = count_params(model)
    if main:
        log(f"training {config.model} ({params:,} parameters) on {train_data.sizes['train']:,} images "
            f"for {config.iterations:,} iterations; device {device}, {precision}"
            f"{', channels_last' if config.channels_last else ''}{', resumed at ' + str(start) if resume else ''}")

    def evaluate(names: tuple[str, ...], exact: bool = False) -> dict[str, dict]:
        """Errors per split; ``exact`` evaluates in fp32 (the reported test error), else as trained."""
        context = contextlib.nullcontext() if exact else autocast
        results = {}
        for name in names:
            try:
                results[name] = rates(all_reduce_sum(train_data.evaluators[name](model, context), dist_info))
            except FloatingPointError as error:  # every rank sees the same summed loss
                diverged(f"{name} {error} at iteration {iteration}")
        return results

    def checkpoint(iteration: int, path: Path) -> None:
        if not main:
            return
        payload = model_payload(model, config.model, options, classes, preprocess, iteration)
        payload.update(
            config=config.to_dict(), optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
            scaler=scaler.state_dict(), rng={"torch": torch.get_rng_state()}, best=best,
            windows={"log": window.cpu(), "warmup": warm_window.cpu()},
            wall_seconds=wall_before + time.perf_counter() - started,
        )
        save_checkpoint(path, payload)

    def diverged(what: str) -> None:
        metrics.close()
        raise TrainingDiverged(f"{what}; stopped. The last good checkpoint is {checkpoint_path} "
                               f"(lower lr or check the data)")

    # --- the loop -----------------------------------------------------------------------------
    window = torch.zeros(3, dtype=torch.float64, device=device)  # [images, wrong, summed loss]
    warm_window = torch.zeros(2, dtype=torch.float64, device=device)
    if state is not None and "windows" in state:  # partial log/warm-up windows, for exact resume
        window.copy_(state["windows"]["log"])
        warm_window.copy_(state["windows"]["warmup"])
    started = time.perf_counter()
    window_started, window_iteration = started, start
    status = "completed"
    stop_requested = False
    iteration = start
    train_model.train()
    while iteration < config.iterations:
        lr = schedule.lr(iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, labels = batches.batch(iteration)
        images = images.contiguous(memory_format=torch.channels_last if config.channels_last else torch.contiguous_format)
        with autocast:
            logits = train_model(images)
            loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        iteration += 1

        with torch.no_grad():  # device-side accumulation: no host sync per step
            wrong = (logits.argmax(1) != labels).sum()
            window[0] += labels.shape[0]
            window[1] += wrong
            window[2] += loss.detach() * labels.shape[0]
            if schedule.warmup_active:
                warm_window[0] += labels.shape[0]
                warm_window[1] += wrong

        # Warm-up (Sec. 4.2): check the training error every 20 iterations, a fixed cadence so
        # that a resumed run makes the same decision at the same iteration.
        if schedule.warmup_active and (iteration % 20 == 0 or iteration >= config.warmup_max_iterations):
            seen, wrong_count = all_reduce_sum(warm_window.clone(), dist_info).tolist()
            warm_window.zero_()
            if schedule.observe_train_error(iteration, wrong_count / max(seen, 1)) and main:
                progress.message(f"warm-up ended at iteration {iteration} (training error {100 * wrong_count / max(seen, 1):.1f}%)")

        last = iteration == config.iterations
        log_point = iteration % config.log_every == 0 or last
        if log_point:
            seen, wrong_count, loss_sum = all_reduce_sum(window.clone(), dist_info).tolist()
            window.zero_()
            if not math.isfinite(loss_sum):
                diverged(f"loss is {loss_sum / max(seen, 1)} at iteration {iteration}")
            now = time.perf_counter()
            record = {
                "iteration": iteration, "lr": lr,
                "train_loss": loss_sum / max(seen, 1), "train_error": 100.0 * wrong_count / max(seen, 1),
                "images_per_second": (iteration - window_iteration) * config.batch_size / (now - window_started),
                "elapsed_seconds": wall_before + now - started,
            }
            window_started, window_iteration = now, iteration
            metrics.write(record)
            if main:
                progress.update(iteration, f"loss {record['train_loss']:.3f} err {record['train_error']:.1f}% "
                                f"lr {lr:g} {record['images_per_second']:.0f} img/s")

        if iteration % config.eval_every == 0 or last:
            names = tuple(n for n in ("val", "test") if n in train_data.evaluators and (n == "val" or config.track_test_error))
            results = evaluate(names)
            record = {"iteration": iteration}
            for name, r in results.items():
                record[f"{name}_error"] = r["top1_error"]
                if r["loss"] is not None:
                    record[f"{name}_loss"] = r["loss"]
            metrics.write(record)
            if "val" in results:
                schedule.observe_val_error(results["val"]["top1_error"], iteration)
                if results["val"]["top1_error"] < best["val_error"]:
                    best = {"val_error": results["val"]["top1_error"], "iteration": iteration}
                    checkpoint(iteration, run_dir / "checkpoints" / "best.pt")
            if main:
                progress.message(f"iter {iteration}: " + ", ".join(
                    f"{name} error {r['top1_error']:.2f}%" for name, r in results.items()))

        stop = stop_requested = stop_requested or should_stop()
        if dist_info.enabled:
            # Every process must stop at the same iteration, but agreeing costs an all-reduce and a
            # host sync: agree at log points only (a request is honoured at the next one).
            stop = False
            if log_point:
                flag = torch.tensor([1.0 if stop_requested else 0.0], device=device)
                stop = bool(all_reduce_sum(flag, dist_info).item() > 0)
        if iteration % config.checkpoint_every == 0 or last or stop:
            # Never overwrite the last good checkpoint with diverged weights.
            finite = torch.isfinite(window[2]) & torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all()
            if not bool(all_reduce_sum(finite.double().view(1), dist_info).item() == dist_info.world_size):
                diverged(f"weights or loss are not finite at iteration {iteration}")
            checkpoint(iteration, checkpoint_path)
        if stop and not last:
            status = "interrupted"
            break

    progress.close()
    loop_seconds = time.perf_counter() - started
    wall = wall_before + loop_seconds
    summary: dict = {}
    if status == "completed":
        final = evaluate(("test",), exact=True)["test"]
        summary = {
            "model": config.model, "model_options": options, "data": config.data,
            "test_top1_error": final["top1_error"], "test_top5_error": final["top5_error"],
            "test_loss": final["loss"], "test_images": final["n"],
            "best_val_error": best["val_error"] if best["iteration"] is not None else None,
            "best_val_iteration": best["iteration"],
            "params": params, "iterations": iteration, "batch_size": config.batch_size,
            "wall_seconds": wall, "images_per_second": (iteration - start) * config.batch_size / max(loop_seconds, 1e-9),
            "device": str(device), "seed": config.seed,
            "precision": describe_segments(meta_segments, "precision", iteration) if main else precision,
            "world_size": dist_info.world_size,
            # Unreadable training files dropped under on_error="skip" (imagenet pipeline).
            "skipped_images": [f"{path}: {reason}" for path, reason in getattr(batches, "skipped", [])],
            # ... and evaluation files (this process's shard): the errors above are over the rest.
            "skipped_eval_images": sorted({f"{path}: {reason}" for e in train_data.evaluators.values()
                                           for path, reason in getattr(e, "skipped", {}).items()}),
        }
        if "val" not in train_data.evaluators:
            # Trained on every training image: the last model is also the "best" one.
            checkpoint(iteration, run_dir / "checkpoints" / "best.pt")
        if main:
            write_json(run_dir / "summary.json", summary)
            log(f"done: test error {summary['test_top1_error']:.2f}% (top-5 {summary['test_top5_error']:.2f}%) "
                f"after {iteration:,} iterations in {wall:.0f} s ({summary['images_per_second']:.0f} img/s); run: {run_dir}")
    elif main:
        log(f"interrupted at iteration {iteration}; checkpoint saved to {checkpoint_path}; "
            f"continue with --resume --out {run_dir}")
    metrics.close()
    barrier(dist_info)
    return TrainResult(run_dir, status, iteration, summary)
