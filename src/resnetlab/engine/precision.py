"""Which arithmetic a run trains in, and the context that applies it.

The paper trained in fp32. bf16 autocast gives the same accuracy within noise (the campaign's
precision control, ResNet-20 at a quarter schedule, same seed: 13.99% test / 13.56% validation in
bf16, 13.74% / 14.12% in fp32) and is 2-3x faster -- but only on CPUs that compute bf16 natively
(AVX512-BF16 or AMX). Elsewhere oneDNN still accepts bf16 and emulates it through fp32 conversions:
measured on an Intel Xeon whose hypervisor hides avx512_bf16, a ResNet-20 step ran at 120 img/s in
bf16 against 360 in fp32 (one thread). So "auto" asks the CPU, not oneDNN.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Callable
from pathlib import Path

import torch

# CPU flags (Linux /proc/cpuinfo names) under which bf16 arithmetic runs natively.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512-BF16, x86 AMX, ARMv8.6 BF16


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags in the text of /proc/cpuinfo (x86 "flags", ARM "Features")."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def _linux_cpu_flags() -> frozenset[str]:
    """This CPU's flags from /proc/cpuinfo; empty off Linux."""
    try:
        return frozenset(cpu_flags(Path("/proc/cpuinfo").read_text()))
    except OSError:
        return frozenset()


@functools.cache
def cpu_has_amx() -> bool:
    """True where the CPU has AMX tiles for bf16 (Intel Xeon since Sapphire Rapids)."""
    return "amx_bf16" in _linux_cpu_flags()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware. Off Linux, oneDNN's own answer."""
    flags = _linux_cpu_flags()
    if flags:
        return any(flag in flags for flag in NATIVE_BF16_FLAGS)
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return False  # Apple CPUs before M2 lack BF16 and oneDNN does not target them anyway
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "auto": bf16 where the hardware computes it natively (several times faster), else fp32;
    fp16 with loss scaling on CUDA devices without bf16."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return precision


def wants_compile(setting: bool | str, device: torch.device, precision: str, *, amx: bool | None = None) -> bool:
    """Whether a start compiles its training step. ``"auto"`` compiles where this project measured
    a gain (benchmarks/RESULTS.md): an fp32 step on the CPU (1.16-1.18x on one thread, an Intel
    host whose bf16 is emulated), and a bf16 step on a CPU with AMX (Intel, two 1-thread runs side
    by side as the campaign trains: 1.18x ResNet-20, 1.21x ResNet-32; alone 1.30-1.38x), where
    the convolutions are fast enough for the fused batch norm, ReLU and additions to matter. A bf16
    step on a CPU without AMX trains eager: on AMD hosts with AVX512-BF16, eleven comparisons gave
    0.85-1.08x of eager, median 0.97. On CUDA no comparison has been run, so it trains eager.
    ``amx``: whether this CPU has AMX (None: ask it)."""
    if setting == "auto":
        if device.type != "cpu":
            return False
        return precision == "fp32" or (precision == "bf16" and (cpu_has_amx() if amx is None else amx))
    return bool(setting)


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: torch.Tensor) -> None:
    """One SGD step on ``loss``: gradients zeroed, back-propagated through the loss scaler (active
    only in fp16, where small gradients would underflow; a pass-through otherwise), then applied."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def arithmetic(segment: dict) -> str:
    """What a segment computed in: its precision, and ``+ torch.compile`` where the training step
    was compiled (the same arithmetic, fused: the last bits differ from eager)."""
    return f"{segment.get('precision')}{' + torch.compile' if segment.get('compile') else ''}"


def describe_segments(segments: list[dict], key: str, end: int, label: Callable[[dict], object] | None = None) -> str:
    """``key`` (or ``label(segment)``) over a run's segments: "bf16", or "bf16 (iterations
    0-12,073), fp32 (12,073-64,000)" when a resume on another host changed it."""
    value_of = label or (lambda segment: segment.get(key))
    values = [value_of(s) for s in segments]
    if not segments or all(v == values[0] for v in values):
        return str(values[0]) if segments else "unknown"
    parts = []
    for i, segment in enumerate(segments):
        stop = segments[i + 1]["from_iteration"] if i + 1 < len(segments) else end
        if parts and parts[-1][0] == values[i]:
            parts[-1][2] = stop
        else:
            parts.append([values[i], segment["from_iteration"], stop])
    text = [f"{value} ({a:,}-{b:,})" for value, a, b in parts]
    return ", ".join([text[0].replace("(", "(iterations ", 1)] + text[1:])
