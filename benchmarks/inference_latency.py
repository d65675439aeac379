"""Inference on this CPU: eager fp32 vs channels_last + bf16 autocast vs onnxruntime, side by side.

For ResNet-20 at 32x32 and ResNet-50 at 224x224 (untrained weights: speed does not depend on
them): single-image latency (median over repeats) and batched throughput, each with its ratio
against eager fp32, plus each variant's largest logit difference from eager fp32 (relative to the
logit scale), so a speed-up that changes the answer shows. Usage:

    .venv/bin/python benchmarks/inference_latency.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from resnetlab.checkpoints.checkpoint import LoadedModel
from resnetlab.data.preprocess import Preprocess
from resnetlab.inference.export import export_onnx
from resnetlab.models import build_model


def timed(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def runners(name: str, size: int, onnx_dir: Path, threads: int) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    torch.manual_seed(0)
    model = build_model(name).eval()
    eager = model

    def run_eager(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return eager(x)

    fast = build_model(name).eval()
    fast.load_state_dict(model.state_dict())
    fast = fast.to(memory_format=torch.channels_last)

    def run_bf16(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return fast(x.contiguous(memory_format=torch.channels_last)).float()

    import onnxruntime

    loaded = LoadedModel(model, name, {}, (), Preprocess(input_size=size, resize_to=size), Path(name), 0)
    path = export_onnx(loaded, onnx_dir / f"{name}.onnx", exporter="torchscript")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run_ort(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"images": x.numpy()})[0])

    return {"eager fp32": run_eager, "channels_last+bf16": run_bf16, "onnxruntime fp32": run_ort}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, small batches (about a minute)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads for every runtime")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 10 if args.quick else 50
    cases = [("resnet20", 32, 64 if args.quick else 256), ("resnet50", 224, 8 if args.quick else 32)]

    print(
        f"torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}, "
        f"repeats {repeats} (median)"
    )
    header = (
        f"{'model':<9} {'input':>7} {'variant':<19} {'latency b=1':>12} {'x eager':>8} "
        f"{'batch':>5} {'images/s':>9} {'x eager':>8} {'max|dlogit|/scale':>18}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name, size, batch in cases:
            variants = runners(name, size, Path(tmp), args.threads)
            generator = torch.Generator().manual_seed(0)
            one = torch.randn(1, 3, size, size, generator=generator)
            many = torch.randn(batch, 3, size, size, generator=generator)
            reference = variants["eager fp32"](many)
            scale = max(1.0, float(reference.abs().max()))
            base_latency = base_throughput = None
            for label, run in variants.items():
                latency = timed(lambda: run(one), repeats)  # noqa: B023 (called before the loop moves on)
                throughput = batch / timed(lambda: run(many), max(3, repeats // 5))  # noqa: B023
                error = float((run(many) - reference).abs().max()) / scale
                base_latency = base_latency or latency
                base_throughput = base_throughput or throughput
                print(
                    f"{name:<9} {size:>3}x{size:<3} {label:<19} {latency * 1e3:>9.2f} ms "
                    f"{base_latency / latency:>7.2f}x {batch:>5} {throughput:>9.1f} "
                    f"{throughput / base_throughput:>7.2f}x {error:>18.1e}"
                )
    print("x eager: speed relative to eager fp32 (above 1 is faster).")


if __name__ == "__main__":
    main()
