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


def make_step(torch, model_name: str, precision: str, compiled: bool):
    import torch.nn.functional as F

    from resnetlab.engine.precision import autocast_for
    from resnetlab.models import build_model

    torch.manual_seed(0)
    model = build_model(model_name).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    forward = torch.compile(model) if compiled else model
    x = torch.randn(128, 3, 32, 32).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,))
    autocast = autocast_for(torch.device("cpu"), precision)

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
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
    variants = [(p, c) for c in (False, True) for p in ("fp32", "bf16")]
    steps, compile_seconds = {}, {}
    for precision, compiled in variants:
        step = make_step(torch, args.model, precision, compiled)
        start = time.perf_counter()
        step()
        step()  # the second call re-traces nothing; compiling ends here
        compile_seconds[(precision, compiled)] = time.perf_counter() - start
        steps[(precision, compiled)] = step
    rates: dict[tuple[str, bool], list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):  # interleaved, so a change of load hits every variant alike
        for variant in variants:
            start = time.perf_counter()
            for _ in range(args.steps):
                steps[variant]()
            rates[variant].append(args.steps * 128 / (time.perf_counter() - start))
    host = benchlib.host_info()
    print(
        f"host: {host['cpu']}, {host['cpus']} CPUs, avx512_bf16={host['avx512_bf16']} amx_bf16={host['amx_bf16']}; "
        f"load before: {benchlib.load_average()}; torch {torch.__version__}; 1 thread"
    )
    print(
        f"GEMM peak, 1 thread: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s; "
        f"{args.model}: {flop / 1e9:.3f} GFLOP per training image"
    )
    base = statistics.median(rates[("fp32", False)])
    report = {"host": host, "peaks": peaks, "flop_per_image": flop, "variants": []}
    for precision, compiled in variants:
        ips = statistics.median(rates[(precision, compiled)])
        gflops = ips * flop / 1e9
        name = f"{'compiled' if compiled else 'eager'} {precision}"
        print(
            f"  {name:<14} {ips:7.1f} img/s  x{ips / base:.2f} of eager fp32  "
            f"{100 * gflops / peaks['fp32']:5.1f}% of fp32 peak  {100 * gflops / peaks['bf16']:5.1f}% of bf16 peak  "
            f"(first two steps {compile_seconds[(precision, compiled)]:.1f} s)"
        )
        report["variants"].append(
            {
                "name": name,
                "images_per_second": ips,
                "all": rates[(precision, compiled)],
                "first_steps_seconds": compile_seconds[(precision, compiled)],
            }
        )
    print(f"load after: {benchlib.load_average()}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
