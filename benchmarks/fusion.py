"""Does fusing batch norm + ReLU (+ the addition) pay on this CPU? Eager vs torch.compile (inductor,
which fuses those elementwise ops into the convolutions' neighbours), fp32 and bf16 autocast,
ResNet-20 training steps (batch 128, the paper's SGD), one thread, side by side in one run.

    python benchmarks/fusion.py                 # about 4 min on a quiet 2-core machine
    python benchmarks/fusion.py --quick         # seconds; figures meaningless

Each figure is the median of ``--repeats`` timed blocks of ``--steps`` steps, after the compiled
variants have compiled (compile time is reported separately: it is paid once per process start).
Prints images/s, the ratio to eager fp32, and the share of this host's fp32 and bf16 GEMM peak.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib


def gemm_gflops(torch, dtype, n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    out = torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def make_step(
    torch, model_name: str, precision: str, compiled: bool, channels_last: bool = True, *, transform=None, lr=0.1
):
    """One training step (batch 128, the paper's SGD) on a fixed batch; ``transform(model)`` may
    change the network first (benchmarks/ceiling.py strips its batch norm and ReLU)."""
    import torch.nn.functional as F

    from resnetlab.engine.precision import autocast_for
    from resnetlab.models import build_model

    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(model_name)
    if transform is not None:
        model = transform(model)
    model = model.to(memory_format=fmt)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    forward = torch.compile(model) if compiled else model
    x = torch.randn(128, 3, 32, 32).to(memory_format=fmt)
    y = torch.randint(0, 10, (128,))
    autocast = autocast_for(torch.device("cpu"), precision)

    def step():
        with autocast:
            loss = F.cross_entropy(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    parser.add_argument(
        "--memory-formats",
        nargs="+",
        choices=("channels_last", "contiguous"),
        default=["channels_last"],
        help="channels_last is the engine's default; contiguous is NCHW",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 1, 1

    import torch

    torch.set_num_threads(1)
    from resnetlab.models import build_model
    from resnetlab.models.complexity import count_macs

    flop = 6 * count_macs(build_model(args.model), 32)  # forward + backward of about twice it
    peaks = {"fp32": gemm_gflops(torch, torch.float32), "bf16": gemm_gflops(torch, torch.bfloat16)}
    variants = [(p, c, m) for c in (False, True) for m in args.memory_formats for p in args.precisions]
    steps, compile_seconds = {}, {}
    for precision, compiled, memory_format in variants:
        step = make_step(torch, args.model, precision, compiled, memory_format == "channels_last")
        start = time.perf_counter()
        step()
        step()  # the second call re-traces nothing; compiling ends here
        compile_seconds[(precision, compiled, memory_format)] = time.perf_counter() - start
        steps[(precision, compiled, memory_format)] = step
    rates = benchlib.interleaved_rates(steps, repeats=args.repeats, block=args.steps)
    host = benchlib.host_info()
    print(
        f"host: {host['cpu']}, {host['cpus']} CPUs, avx512_bf16={host['avx512_bf16']} amx_bf16={host['amx_bf16']}; "
        f"load before: {benchlib.load_average()}; torch {torch.__version__}; 1 thread"
    )
    print(
        f"GEMM peak, 1 thread: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s; "
        f"{args.model}: {flop / 1e9:.3f} GFLOP per training image"
    )
    base_variant = variants[0]  # eager, the first precision and memory format asked for
    base = statistics.median(rates[base_variant])
    report = {"host": host, "peaks": peaks, "flop_per_image": flop, "variants": []}
    base_name = f"eager {base_variant[0]} {base_variant[2]}"
    for precision, compiled, memory_format in variants:
        ips = statistics.median(rates[(precision, compiled, memory_format)])
        gflops = ips * flop / 1e9
        name = f"{'compiled' if compiled else 'eager'} {precision} {memory_format}"
        print(
            f"  {name:<28} {ips:7.1f} img/s  x{ips / base:.2f} of {base_name}  "
            f"{100 * gflops / peaks['fp32']:5.1f}% of fp32 peak  {100 * gflops / peaks['bf16']:5.1f}% of bf16 peak  "
            f"(first two steps {compile_seconds[(precision, compiled, memory_format)]:.1f} s)"
        )
        report["variants"].append(
            {
                "name": name,
                "images_per_second": ips,
                "all": rates[(precision, compiled, memory_format)],
                "first_steps_seconds": compile_seconds[(precision, compiled, memory_format)],
            }
        )
    print(f"load after: {benchlib.load_average()}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
