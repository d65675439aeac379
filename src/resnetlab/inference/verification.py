"""Check an exported model against the PyTorch model it came from, right after export.

Agreement means, on every verification input: ``max |logits_exported - logits_torch| <= rtol *
max(1, max |logits_torch|)`` (the tolerance is relative to the logit scale, since float32 rounding
error grows with the magnitude of the activations), and the same top-1 class. A top-1 difference is
excused only where the reference's own top-1/top-2 gap is within that tolerance (a numerical tie).

Devices: the PyTorch reference runs wherever its model is (``export_verified(device=...)``), in
full float32; the exported file is always traced from a CPU copy and checked on CPU, and the
logits are compared on CPU. So a check with a CUDA reference also shows that the file of a
GPU-trained model runs on CPU and gives that model's answers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints.atomic import staged_output
from ..checkpoints.checkpoint import LoadedModel
from ..checkpoints.loading import load_any, save_safetensors
from ..data.transforms import prepare_tensor
from ..devices import resolve_device
from ..export_formats import DEFAULT_OPSET, EXPORT_FORMATS
from ..progress import Progress
from ..seeding import generator as seeded_cpu_generator
from .export import INPUT_NAME, export_onnx, export_torchscript
from .reference import on_device, reference_runner

DEFAULT_RTOL = 1e-4


class ExportVerificationError(ValueError):
    """The exported model does not reproduce the PyTorch model's outputs."""


@dataclass(frozen=True)
class Tolerance:
    rtol: float = DEFAULT_RTOL

    def __post_init__(self) -> None:
        if not (isinstance(self.rtol, (int, float)) and 0 < self.rtol < 1):
            raise ValueError(f"rtol must be a number in (0, 1), got {self.rtol!r}")

    def limit(self, reference: torch.Tensor) -> float:
        return self.rtol * max(1.0, float(reference.abs().max()))


@dataclass(frozen=True)
class Check:
    """One verification input: its description, the worst logit difference and top-1 agreement."""

    name: str
    max_abs_diff: float
    limit: float
    top1_mismatches: int
    samples: int

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.limit and self.top1_mismatches == 0

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.name}: max |diff| {self.max_abs_diff:.3g} (limit {self.limit:.3g}), "
            f"top-1 differs on {self.top1_mismatches}/{self.samples} -> {verdict}"
        )


@dataclass(frozen=True)
class VerifyReport:
    target: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def describe(self) -> str:
        return "\n".join([f"verified {self.target} against PyTorch:"] + [f"  {c.describe()}" for c in self.checks])


def compare_logits(name: str, reference: torch.Tensor, candidate: torch.Tensor, tolerance: Tolerance) -> Check:
    reference, candidate = reference.float(), torch.as_tensor(candidate).float()
    if reference.shape != candidate.shape:
        return Check(
            f"{name} (shape {tuple(candidate.shape)} != {tuple(reference.shape)})",
            float("inf"),
            tolerance.limit(reference),
            reference.shape[0],
            reference.shape[0],
        )
    limit = tolerance.limit(reference)
    top2 = reference.topk(min(2, reference.shape[1]), dim=1).values
    gap = top2[:, 0] - top2[:, -1] if top2.shape[1] > 1 else torch.full_like(top2[:, 0], float("inf"))
    differs = (reference.argmax(1) != candidate.argmax(1)) & (gap > limit)
    return Check(name, float((reference - candidate).abs().max()), limit, int(differs.sum()), reference.shape[0])


def verification_inputs(
    loaded: LoadedModel,
    include_preprocess: bool,
    real_images: torch.Tensor | None = None,
    sizes: tuple[int, ...] | None = None,
) -> list[tuple[str, torch.Tensor]]:
    """Random inputs at several batch and spatial sizes, plus prepared real images if given.

    ``sizes`` defaults to the native input and 1.5x it (32 and 48 for CIFAR, 224 and 336 for
    ImageNet), each with a different batch size, so the dynamic axes are exercised.
    """
    native = loaded.preprocess.input_size
    sizes = sizes or (native, native * 3 // 2)
    generator = seeded_cpu_generator(1)
    inputs = []
    for batch, size in zip((1, 3, 2, 2), sizes):
        shape = (batch, 3, size, size)
        x = (
            torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
            if include_preprocess
            else torch.randn(shape, generator=generator)
        )
        inputs.append((f"random {'x'.join(map(str, shape))}", x))
    if real_images is not None and len(real_images):
        images = torch.stack([prepare_tensor(image, loaded.preprocess) for image in real_images])
        x = images if include_preprocess else loaded.preprocess.normalize(images)
        inputs.append((f"real {'x'.join(map(str, tuple(x.shape)))}", x))
    return inputs


def dataset_images(limit: int = 8) -> torch.Tensor | None:
    """The first ``limit`` test images of the built-in synthetic dataset (the demo's data, no
    download), or ``None`` where it is unavailable. They are 32x32; ``verification_inputs`` brings
    them to the checkpoint's input geometry. Pass real photos to check ImageNet-family exports."""
    try:
        from ..data.synthetic import synthetic_split
    except ImportError:
        return None
    return synthetic_split("test", limit).images


def verify(
    target: str,
    candidate: Callable[[torch.Tensor], torch.Tensor],
    loaded: LoadedModel,
    *,
    include_preprocess: bool = False,
    real_images: torch.Tensor | None = None,
    sizes: tuple[int, ...] | None = None,
    tolerance: Tolerance = Tolerance(),
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    progress_tty: bool | None = None,
) -> VerifyReport:
    """Compare ``candidate`` (CPU tensors in, logits out) with ``loaded``'s model, which runs on
    its own device, on every ``verification_inputs`` entry.

    ``progress``: inputs checked of the total, a bar on a terminal (``progress_tty`` None asks
    stderr), else one plain line per input to ``log`` (default stderr). Off by default: library
    calls stay silent; ``resnetlab export`` turns it on unless ``--quiet``."""
    reference = reference_runner(loaded, include_preprocess)
    inputs = verification_inputs(loaded, include_preprocess, real_images, sizes)
    checks = []
    with Progress(len(inputs), tty=progress_tty, log=log, desc="verify", unit="input", disable=not progress) as bar:
        for done, (name, x) in enumerate(inputs, 1):
            check = compare_logits(name, reference(x), candidate(x), tolerance)
            checks.append(check)
            bar.update(done, f"{name} {'ok' if check.ok else 'FAILED'}")
    return VerifyReport(target, tuple(checks))


def onnx_runner(path: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {INPUT_NAME: x.numpy()})[0])


def torchscript_runner(path: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still supported
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run


def safetensors_runner(path: str | Path, include_preprocess: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    reloaded = load_any(path)
    return reference_runner(reloaded, include_preprocess)


def export_verified(
    loaded: LoadedModel,
    fmt: str,
    out: str | Path,
    *,
    opset: int | None = None,
    include_preprocess: bool = False,
    exporter: str = "auto",
    real_images: torch.Tensor | None = None,
    tolerance: Tolerance = Tolerance(),
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    progress_tty: bool | None = None,
) -> VerifyReport:
    """Export under a temporary name beside ``out``, reload it with its own runtime, compare, and
    only then give it the name ``out``. A failed check raises ``ExportVerificationError`` with the
    numbers and removes the temporary only: a file already at ``out`` is never lost, and without
    ``overwrite`` never replaced.

    ``fmt``: a name of ``resnetlab.export_formats.EXPORT_FORMATS``. ``device``: where the PyTorch
    reference logits are computed (``auto``, ``cpu``, ``cuda[:N]``; ``loaded`` may be on any
    device: it is copied as needed, never moved). The file is always written from a CPU copy of the model (ONNX and TorchScript files are
    device-neutral, and a CPU trace holds no CUDA device constants) and checked on CPU
    (onnxruntime's CPU provider, ``torch.jit.load(map_location="cpu")``, ``load_any``), so a CUDA
    reference also proves that the file runs on CPU. ``progress``, ``log``, ``progress_tty``: as
    in ``verify`` (off by default)."""
    out = Path(out)
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    if fmt == "safetensors" and include_preprocess:
        raise ValueError(
            "--include-preprocess applies to onnx and torchscript; safetensors "
            "always carries the preprocessing as metadata"
        )
    reference = on_device(loaded, resolve_device(device))  # checked before any file is staged
    cpu = on_device(loaded, "cpu")
    with staged_output(out, overwrite=overwrite) as tmp:
        if fmt == "onnx":
            export_onnx(
                cpu, tmp, opset=opset or DEFAULT_OPSET, include_preprocess=include_preprocess, exporter=exporter
            )
            runner = onnx_runner(tmp)
        elif fmt == "torchscript":
            export_torchscript(cpu, tmp, include_preprocess=include_preprocess)
            runner = torchscript_runner(tmp)
        else:
            save_safetensors(cpu, tmp)
            runner = safetensors_runner(tmp, False)
        report = verify(
            EXPORT_FORMATS[fmt],
            runner,
            reference,
            include_preprocess=include_preprocess,
            real_images=real_images,
            tolerance=tolerance,
            progress=progress,
            log=log,
            progress_tty=progress_tty,
        )
        if not report.ok:
            raise ExportVerificationError(f"{report.describe()}\nexported model disagrees; {out} not written")
    return report


__all__ = [
    "Check",
    "ExportVerificationError",
    "Tolerance",
    "VerifyReport",
    "compare_logits",
    "dataset_images",
    "export_verified",
    "onnx_runner",
    "torchscript_runner",
    "verification_inputs",
    "verify",
]
