"""How fast could a ResNet step be if batch norm and ReLU cost nothing? The upper bound of any
fusion of the memory-bound operators (issue 13), measured side by side in one run.

Three versions of the same network train on a fixed batch of 128 (bf16 autocast, channels_last,
the paper's SGD, eager), interleaved so a change of load hits all alike:

- ``full``: the network as trained;
- ``no batch norm``: every BatchNorm2d replaced by an identity;
- ``convolutions only``: batch norm and ReLU both gone: what is left is the convolutions, the
  shortcut additions, the pooling and the classifier.

Each is printed as images/s and percent of this host's bf16 GEMM peak, measured in the same run,
with FLOP/image from the *full* network's counted multiply-adds (the stripped versions do the
same convolution arithmetic). The learning rate is 0 so that the unnormalised networks cannot
diverge while timed (the SGD update is computed all the same); each version's final loss is
printed to show it stayed finite.

    python benchmarks/ceiling.py                         # ResNet-20 and ResNet-56, about 2 min
    python benchmarks/ceiling.py --quick                 # seconds; figures meaningless
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
from fusion import make_step
from peak import gemm_peak, macs_per_image


def strip(kinds: tuple[str, ...]):
    """A transform replacing every module of the named kinds ("bn", "relu") by an identity."""
    import torch.nn as nn

    types = tuple({"bn": nn.BatchNorm2d, "relu": nn.ReLU}[k] for k in kinds)

    def transform(model):
        for module in list(model.modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, types):
                    setattr(module, child_name, nn.Identity())
        return model

    return transform


VERSIONS = {"full": (), "no batch norm": ("bn",), "convolutions only": ("bn", "relu")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet20,resnet56")
    parser.add_argument("--threads", type=int, default=None, help="default: the cores available")
    parser.add_argument("--steps", type=int, default=8, help="steps per timed block (ResNet-20; deeper: fewer)")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per version; the median is printed")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 1, 1
    from resnetlab.engine.threads import configure_threads

    threads = configure_threads(args.threads, None).threads
    load_before = benchlib.load_average()
    import torch

    sizes = (512,) if args.quick else (2048, 4096)
    peak = gemm_peak(torch, torch.bfloat16, sizes, 2 if args.quick else 5)["gflops"]
    host = benchlib.host_info()
    print(
        f"host: {host['cpu']}, {host['cpus']} CPUs, avx512_bf16={host['avx512_bf16']} amx_bf16={host['amx_bf16']}; "
        f"torch {torch.__version__}; {threads} threads; load before {load_before}"
    )
    print(f"bf16 GEMM peak at {threads} threads: {peak:.1f} GFLOP/s; bf16 autocast, channels_last, eager, batch 128")
    report = {"host": host, "threads": threads, "bf16_peak_gflops": peak, "load_before": load_before, "models": {}}
    macs20 = macs_per_image("resnet20")
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        flop = 6 * macs_per_image(model)
        steps = {
            name: make_step(torch, model, "bf16", False, transform=strip(kinds), lr=0.0)
            for name, kinds in VERSIONS.items()
        }
        per_block = max(1, round(args.steps * 6 * macs20 / flop))  # about the same time per block
        losses = {name: float(step()) for name, step in steps.items()}  # warm-up
        rates: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.repeats):
            for name, step in steps.items():
                start = time.perf_counter()
                for _ in range(per_block):
                    losses[name] = float(step())
                rates[name].append(per_block * 128 / (time.perf_counter() - start))
        print(f"\n{model}: {flop / 1e9:.4f} GFLOP per training image, {args.repeats} blocks of {per_block} steps")
        base = statistics.median(rates["full"])
        report["models"][model] = {"flop_per_image": flop, "versions": {}}
        for name in steps:
            ips = statistics.median(rates[name])
            print(
                f"  {name:<18} {ips:7.1f} img/s  x{ips / base:.2f}  {100 * ips * flop / 1e9 / peak:5.1f}% of bf16 peak  "
                f"(final loss {losses[name]:.3g})"
            )
            report["models"][model]["versions"][name] = {
                "images_per_second": ips,
                "all": rates[name],
                "loss": losses[name],
            }
    report["load_after"] = benchlib.load_average()
    print(f"\nload after: {report['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
