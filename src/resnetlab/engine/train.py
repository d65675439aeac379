"""The training loop: the paper's CIFAR recipe (Sec. 4.2), read top to bottom.

``build`` sets up one start of a run (device, data, ``TrainState``, run directory); ``train`` is
the loop, one screen of named steps (``engine/steps.py``). Fast by default: the data lives on the
device and is augmented in batches, convolutions run in bf16 autocast with channels_last where the
hardware computes bf16 natively, and the loop waits on the device only at log, evaluation and
checkpoint points. Exact resume: a run stopped at iteration k and resumed finishes with bitwise
the same weights as an uninterrupted run (CPU).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..checkpoints.atomic import write_json
from ..checkpoints.checkpoint import load_checkpoint
from ..checkpoints.rundir import MetricsLog, provenance, segments_so_far
from ..data.arrays import ImageArrays
from ..devices import resolve_device
from ..models import count_params
from ..progress import Progress
from .batch_norm import group_batch_norm
from .config import TrainConfig
from .distributed import DistInfo, barrier, broadcast_object
from .precision import autocast_for, resolve_precision, wants_compile
from .state import TrainState, check_resumable
from .steps import Run, TrainResult
from .train_data import TrainData, array_data, load_arrays

logger = logging.getLogger(__name__)  # a child of the library's one logger, "resnetlab"

SINGLE_PROCESS = DistInfo()  # the default: no torchrun


def _start_refusal(run_dir: Path, checkpoint_path: Path, resume: bool) -> tuple[str, str] | None:
    """Why the run cannot start, as ``(kind, message)``, or None."""
    if resume and not checkpoint_path.is_file():
        return "missing", f"--resume: no checkpoint at {checkpoint_path}"
    if not resume and (run_dir / "summary.json").exists():
        return "finished", f"{run_dir} already holds a finished run; choose another --out or pass --resume"
    return None


def _train_data(
    config: TrainConfig, data, cache_dir: Path | None, device: torch.device, dist_info: DistInfo
) -> TrainData:
    if config.pipeline == "imagenet":
        if data is not None:
            raise ValueError("in-memory data cannot feed the imagenet pipeline")
        from .stream import imagenet_data

        return imagenet_data(config, device=device, dist_info=dist_info, cache_dir=cache_dir)
    return array_data(
        config, data if data is not None else load_arrays(config, cache_dir), device=device, dist_info=dist_info
    )


def compile_problem(device: torch.device) -> str | None:
    """Why torch.compile cannot run on ``device`` here, or None: inductor writes C++ kernels for the
    CPU (a C++ compiler must be installed) and Triton kernels for CUDA."""
    if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "there is no C++ compiler (g++, clang++) for inductor's CPU kernels"
    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "triton, which inductor needs for CUDA kernels, is not installed"
    return None


def _wrap(
    model: nn.Module, config: TrainConfig, device: torch.device, dist_info: DistInfo, compiled: bool
) -> tuple[nn.Module, nn.Module]:
    """(the model to save and evaluate, the model to train: its DDP / compiled wrapper)."""
    train_model = model
    if config.sync_bn and dist_info.enabled:
        if device.type != "cuda":
            raise ValueError(
                "sync_bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU kernel); "
                "on CPU each process normalises over its share of the batch"
            )
        # Same parameter names, so checkpoints still load into a plain model.
        model = train_model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if config.bn_batch_size:
        share = config.batch_size // dist_info.world_size
        if share % config.bn_batch_size:
            raise ValueError(
                f"bn_batch_size {config.bn_batch_size} must divide each process's share of the batch "
                f"({config.batch_size} / {dist_info.world_size} processes = {share} images)"
            )
        # Same tensors and parameter names: the optimiser keeps them, checkpoints load anywhere.
        model = train_model = group_batch_norm(model, config.bn_batch_size)
    if dist_info.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if compiled:
        train_model = torch.compile(train_model)
    return model, train_model


def _write_run_files(
    run_dir: Path,
    config: TrainConfig,
    data: TrainData,
    device: torch.device,
    precision: str,
    compiled: bool,
    start: int,
    resume: bool,
    dist_info: DistInfo,
    argv: list[str] | None,
) -> list[dict]:
    """config.json and meta.json; returns meta's segments. Each start or resume adds a segment: a
    run resumed on another host (or under new code) says from which iteration its precision,
    compilation, threads and code revision changed."""
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", config.to_dict())
    meta = provenance(device, precision, argv)
    meta["segments"] = segments_so_far(run_dir / "meta.json", start if resume else None) + [
        {
            "from_iteration": start,
            "precision": precision,
            "compile": compiled,
            "threads": meta["threads"],
            "git_revision": meta["git_revision"],
            "cpu": meta["cpu"],
            "started": meta["started"],
        }
    ]
    meta.update(
        seed=config.seed,
        world_size=dist_info.world_size,
        resumed_from=start if resume else None,
        train_images=data.sizes["train"],
        val_images=data.sizes["val"],
        test_images=data.sizes["test"],
    )
    write_json(run_dir / "meta.json", meta)
    return meta["segments"]


def build(
    config: TrainConfig,
    run_dir: Path,
    *,
    resume: bool,
    data,
    cache_dir: Path | None,
    log: Callable[[str], None],
    progress_tty: bool | None,
    dist_info: DistInfo,
    argv: list[str] | None,
) -> Run:
    """Everything one start of the run needs, fresh or restored from ``checkpoints/last.pt``."""
    device = resolve_device(config.device)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    precision = resolve_precision(config.precision, device)
    checkpoint_path = run_dir / "checkpoints" / "last.pt"
    # Rank 0 decides whether the run may start and every rank follows: a rank that went on alone
    # would wait forever (or die with a connection error) in its first collective operation.
    refusal = broadcast_object(_start_refusal(run_dir, checkpoint_path, resume), dist_info)
    if refusal is not None:
        kind, message = refusal
        raise (FileNotFoundError if kind == "missing" else ValueError)(message)
    saved = load_checkpoint(checkpoint_path) if resume else None
    if saved is not None:
        check_resumable(saved["config"], config)
    train_data = _train_data(config, data, cache_dir, device, dist_info)
    # The order matters for exact resume: data, then seed + weights, then the saved RNG state.
    state = TrainState.build(config, len(train_data.classes), device, precision)
    if saved is not None:
        state.restore(saved)
    # A run asked to compile on a machine that cannot trains eager rather than not at all (a
    # campaign must not stop at a new host); the segment of this start records which it was.
    compiled = wants_compile(config.compile, device, precision)
    if config.compile == "auto" and dist_info.is_main:
        log(f"compile = auto: {'compiled' if compiled else 'eager'} ({precision} on {device.type})")
    problem = compile_problem(device) if compiled else None
    if problem is not None:
        setting = '"auto"' if config.compile == "auto" else "true"
        log(f"compile = {setting}, but {problem}: this start of the run trains eager")
        compiled = False
    state.model, train_model = _wrap(state.model, config, device, dist_info, compiled)
    start = state.iteration
    segments = (
        _write_run_files(run_dir, config, train_data, device, precision, compiled, start, resume, dist_info, argv)
        if dist_info.is_main
        else []
    )
    metrics = MetricsLog(run_dir, enabled=dist_info.is_main, resume_from=start if resume else None)
    progress = Progress(config.iterations, start, tty=progress_tty, log=log)
    if dist_info.is_main:
        log(
            f"training {config.model} ({count_params(state.model):,} parameters) on {train_data.sizes['train']:,} images "
            f"for {config.iterations:,} iterations; device {device}, {precision}"
            f"{', channels_last' if config.channels_last else ''}{', resumed at ' + str(start) if resume else ''}"
        )
    return Run(
        config,
        run_dir,
        state,
        train_data,
        train_model,
        device,
        precision,
        autocast_for(device, precision),
        dist_info,
        metrics,
        progress,
        log,
        start,
        resume,
        segments,
    )


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    data: tuple[ImageArrays, ImageArrays] | None = None,
    cache_dir: Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = logger.info,
    progress_tty: bool | None = False,
    dist_info: DistInfo = SINGLE_PROCESS,
    argv: list[str] | None = None,
) -> TrainResult:
    """Train ``config`` into the run directory ``out_dir``; see the module docstring."""
    run = build(
        config,
        Path(out_dir),
        resume=resume,
        data=data,
        cache_dir=cache_dir,
        log=log,
        progress_tty=progress_tty,
        dist_info=dist_info,
        argv=argv,
    )
    state, status = run.state, "completed"
    run.train_model.train()
    while state.iteration < config.iterations:
        lr = run.train_step()
        run.warmup_check()
        last = state.iteration == config.iterations
        log_point = state.iteration % config.log_every == 0 or last
        if log_point:
            run.log_point(lr)
        if state.iteration % config.eval_every == 0 or last:
            run.eval_point()
        stop = run.should_stop(should_stop, log_point)
        if state.iteration % config.checkpoint_every == 0 or last or stop:
            run.checkpoint_last()
        if stop and not last:
            status = "interrupted"
            break
    result = run.finish(status)
    barrier(dist_info)
    return result
