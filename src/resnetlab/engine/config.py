"""Training configuration: one frozen dataclass, recipes as small TOML files, ``--set`` overrides
(read by ``config_loader``, the loader every configuration shares).

Every field is a knob of the paper's recipe (Sec. 3.4, 4.2) or of the machine; units are in the
comments. Schedules count iterations, as the paper does; epochs are derived.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from .config_loader import build_config, field_names, merge_overrides, read_toml, shipped_names

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "cuda:N")  # cuda:N, the N-th CUDA device (as torch numbers them)
_DEVICE_NAME = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
SCHEDULES = ("step", "plateau")
PIPELINES = ("arrays", "imagenet")


def check_device_name(name: str) -> None:
    """``ValueError`` naming the ``device`` key unless ``name`` is auto, cpu, cuda or cuda:N. Only the
    spelling: whether this machine has the device is ``devices.resolve_device``'s question, asked
    when a run starts (under torchrun each process then takes its local rank's CUDA device)."""
    if not isinstance(name, str) or _DEVICE_NAME.fullmatch(name) is None:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")


# Sane maxima, checked after the types: a value past these is a typo (an extra zero or two) that
# would otherwise fail deep inside torch (a batch of 10^9 images asks for terabytes) or run for
# ever. Each is far beyond anything the paper uses (ImageNet: batch 256, 60e4 iterations).
UPPER_BOUNDS: dict[str, float] = {
    "iterations": 100_000_000,
    "batch_size": 65_536,
    "eval_batch_size": 65_536,
    "log_every": 100_000_000,
    "eval_every": 100_000_000,
    "checkpoint_every": 100_000_000,
    "warmup_max_iterations": 100_000_000,
    "stop_at_chance": 100_000_000,
    "plateau_patience": 1_000_000,
    "plateau_min_iterations": 100_000_000,
    "plateau_max_divisions": 100,
    "val_size": 100_000_000,
    "pad": 1024,
    "seed": 2**32 - 1,
    "workers": 256,
    "crop_size": 4096,
    "test_resize": 8192,
    "mean_sample": 10_000_000,
    "lr": 10.0,
    "momentum": 1.0,
    "weight_decay": 1.0,
    "warmup_lr": 10.0,
    "warmup_until_error": 1.0,  # a fraction of the training images
    "bn_batch_size": 65_536,
}


@dataclass(frozen=True)
class TrainConfig:
    # What to train.
    model: str = "resnet20"
    model_options: dict = field(default_factory=dict)  # build_model options, e.g. {shortcut = "B"}
    data: str | None = None  # dataset spec (see data.load_dataset); None: the built-in synthetic set

    # Optimisation (Sec. 4.2): SGD, momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 / 10 at
    # 32k and 48k, stop at 64k.
    iterations: int = 64_000
    batch_size: int = 128  # images per iteration, over all processes
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    schedule: str = "step"  # "step": divide at milestones; "plateau": divide when val error stalls
    milestones: tuple[int, ...] = (32_000, 48_000)  # iterations
    lr_factor: float = 0.1
    plateau_patience: int = 3  # evaluations without improvement before dividing ("plateau")
    # "plateau": iterations at least between divisions (and before the first; 0: no minimum), and
    # at most this many divisions (the paper's ImageNet schedule read as 0.1 -> 1e-4; schedule.py).
    plateau_min_iterations: int = 0
    plateau_max_divisions: int = 3
    # ResNet-110/1202 (Sec. 4.2): lr 0.01 until training error < 80% (about 400 iterations), then 0.1.
    warmup_lr: float | None = None
    warmup_until_error: float = 0.80
    warmup_max_iterations: int = 400
    # A net whose output no longer depends on its input (training loss at ln C, error at chance)
    # has collapsed: the v4 ResNet-56 run sat there from iteration 200 to 2,117 without recovering,
    # while no committed run that learned ever logged two points in a row there (engine/failures.py,
    # results/cifar10-jpeg/investigation.md). After this many iterations at chance the run stops
    # (TrainingCollapsed) instead of spending hours on it; 0 never stops.
    stop_at_chance: int = 1000

    # Data (Sec. 4.2): 45k/5k train/val split for model selection; 4-pixel pad, 32x32 crop, flip.
    val_size: int = 5000  # 0 trains on the whole training split (the final numbers)
    augment: bool = True
    pad: int = 4  # pixels of zero padding before the random crop

    # Data pipeline. "arrays": the dataset decoded once and held on the device (CIFAR);
    # "imagenet": JPEG folders decoded by worker processes each epoch (Sec. 3.4).
    pipeline: str = "arrays"
    test_split: str = "test"  # the split reported as test error ("val" for ILSVRC-2012)
    augmentation: str = "paper"  # imagenet: "paper" (scale aug + PCA colour) | "inception" (deviation)
    crop_size: int = 224  # imagenet: training crop and test crop, pixels
    scale_range: tuple[int, int] = (256, 480)  # imagenet: shorter side before the crop, pixels
    test_resize: int = 256  # imagenet: shorter side of the 1-crop test view, pixels
    mean_sample: int = 1000  # imagenet: training images sampled for the mean image
    val_labels: str | None = None  # imagenet: labels file for a flat val/ folder
    workers: int = 4  # imagenet: decoding processes per training process
    on_error: str = "fail"  # imagenet: an unreadable image "fail"s the run or is "skip"ped (reported)

    # Book-keeping, in iterations.
    log_every: int = 100
    eval_every: int = 1000
    checkpoint_every: int = 1000
    track_test_error: bool = True  # log test error at each evaluation (reported, never selected on)

    # Machine.
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # "auto": bf16 where the hardware has it (AVX512-BF16/AMX, CUDA)
    channels_last: bool = True
    # torch.compile the training step: true, false, or "auto": only where it was measured to pay, on
    # the CPU in fp32, or in bf16 where the CPU has AMX (engine/precision.py: wants_compile). Seconds
    # to minutes of start-up per start.
    compile: bool | str = False
    sync_bn: bool = False  # data-parallel runs: BN statistics over the global batch (CUDA only)
    # Batch norm statistics over groups of this many images of each process's batch (0: the whole
    # of it). 64 with batch 128 is the paper's CIFAR training on two GPUs (Sec. 4.2; batch_norm.py).
    bn_batch_size: int = 0
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        def positive(key: str, allow_zero: bool = False) -> None:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
                raise ValueError(
                    f"{key} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}"
                )

        for key in (
            "iterations",
            "batch_size",
            "log_every",
            "eval_every",
            "checkpoint_every",
            "warmup_max_iterations",
            "plateau_patience",
            "eval_batch_size",
        ):
            positive(key)
        for key in (
            "val_size",
            "pad",
            "seed",
            "plateau_min_iterations",
            "plateau_max_divisions",
            "stop_at_chance",
            "bn_batch_size",
        ):
            positive(key, allow_zero=True)
        if self.bn_batch_size == 1 or (self.bn_batch_size and self.batch_size % self.bn_batch_size):
            raise ValueError(
                f"bn_batch_size must be 0 or a divisor (at least 2) of batch_size {self.batch_size}, "
                f"got {self.bn_batch_size!r}"
            )
        for key in ("lr", "momentum", "weight_decay", "lr_factor", "warmup_until_error"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a non-negative number, got {value!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        # bool is an int subclass: without the explicit test, `warmup_lr = true` would train at 1.0.
        if self.warmup_lr is not None and (
            isinstance(self.warmup_lr, bool) or not isinstance(self.warmup_lr, (int, float)) or self.warmup_lr <= 0
        ):
            raise ValueError(f"warmup_lr must be a positive number or absent, got {self.warmup_lr!r}")
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {PIPELINES}, got {self.pipeline!r}")
        if self.augmentation not in ("paper", "inception"):
            raise ValueError(f"augmentation must be 'paper' or 'inception', got {self.augmentation!r}")
        if self.on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {self.on_error!r}")
        for key in ("crop_size", "test_resize", "mean_sample"):
            positive(key)
        positive("workers", allow_zero=True)
        for key, limit in UPPER_BOUNDS.items():  # every one of them type-checked above
            value = getattr(self, key)
            if value is not None and value > limit:
                shown = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
                raise ValueError(f"{key} must be at most {shown}, got {value!r}")
        scale = tuple(self.scale_range)
        if len(scale) != 2 or not self.crop_size <= scale[0] <= scale[1]:
            raise ValueError(f"scale_range must be [lo, hi] with crop_size <= lo <= hi, got {self.scale_range!r}")
        object.__setattr__(self, "scale_range", scale)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        check_device_name(self.device)
        for key in ("augment", "nesterov", "track_test_error", "channels_last", "sync_bn"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key} must be true or false, got {getattr(self, key)!r}")
        if self.sync_bn and self.bn_batch_size:
            raise ValueError("sync_bn and bn_batch_size ask for opposite statistics: set one of them")
        if not isinstance(self.compile, bool) and self.compile != "auto":
            raise ValueError(f'compile must be true, false or "auto", got {self.compile!r}')
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a registered model name, got {self.model!r}")
        if not isinstance(self.model_options, dict):
            raise ValueError(f"model_options must be a table, got {self.model_options!r}")
        milestones = tuple(self.milestones)
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in milestones) or list(
            milestones
        ) != sorted(milestones):
            raise ValueError(f"milestones must be increasing positive iterations, got {self.milestones!r}")
        object.__setattr__(self, "milestones", milestones)
        if self.scale_range[1] > UPPER_BOUNDS["test_resize"]:
            raise ValueError(
                f"scale_range must lie within [crop_size, {UPPER_BOUNDS['test_resize']}], "
                f"got {list(self.scale_range)!r}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def scaled(self, fraction: float) -> TrainConfig:
        """The same recipe on ``fraction`` of the iterations, every milestone scaled with it."""
        if not 0 < fraction <= 1:
            raise ValueError(f"budget must be in (0, 1], got {fraction!r}")

        def scale(n: int) -> int:
            return max(1, round(n * fraction))

        iterations = scale(self.iterations)
        return self.replace(
            iterations=iterations,
            milestones=tuple(scale(m) for m in self.milestones),
            plateau_min_iterations=round(self.plateau_min_iterations * fraction),
            warmup_max_iterations=scale(self.warmup_max_iterations),
            # Keep at least ~16 points on the error curves, but no more evaluations than the full
            # schedule makes: evaluating 15k images every few iterations would dominate a short run.
            eval_every=max(1, min(self.eval_every, iterations // 16)),
            log_every=max(1, min(self.log_every, iterations // 100)),
            checkpoint_every=max(1, min(self.checkpoint_every, iterations // 16)),
        )


FIELD_NAMES = field_names(TrainConfig)
TABLE_KEYS = ("model_options",)  # ``--set model_options.shortcut=B`` sets one entry


def config_from_dict(values: dict, *, source: str = "config") -> TrainConfig:
    """A ``TrainConfig`` from a recipe or a run's ``config.json``; keys an older version did not
    record take their defaults (fields are only ever added)."""
    return build_config(TrainConfig, values, source)


def recipe_names() -> list[str]:
    return shipped_names("recipes")


def load_recipe(name_or_path: str | Path) -> TrainConfig:
    """A shipped recipe by name (``cifar10-resnet20``) or a TOML file by path."""
    values, source, _ = read_toml(name_or_path, "recipes", "recipe")
    return config_from_dict(values, source=source)


def apply_overrides(config: TrainConfig, items: list[str]) -> TrainConfig:
    """``config`` with the ``--set KEY=VALUE`` items applied in order."""
    values = merge_overrides(config.to_dict(), items, FIELD_NAMES, TABLE_KEYS)
    return config_from_dict(values, source="--set")


def resolve_recipe(
    recipe: str | Path, *, budget: float | None = None, changes: dict | None = None, overrides: list[str] = ()
) -> TrainConfig:
    """What ``resnetlab train`` trains, and a campaign's run with it: the recipe, on ``budget`` of
    its schedule, then ``changes`` (typed values of ``--data``, ``--iterations``, ``--seed``,
    ``--device``), then the ``--set`` items, in that order."""
    config = load_recipe(recipe)
    if budget is not None:
        config = config.scaled(budget)
    if changes:
        config = config_from_dict({**config.to_dict(), **changes}, source="command line")
    return apply_overrides(config, list(overrides))
