"""What batch norm over groups of 64 images (``bn_batch_size = 64``, the paper's two GPUs) costs in
training speed: ResNet-20 training steps (batch 128, the paper's SGD, one thread) with one batch
norm over the whole batch and with two groups, eager and compiled, side by side in one run.

    python benchmarks/bn_groups.py                  # about 2 min on a quiet machine
    python benchmarks/bn_groups.py --quick          # seconds; figures meaningless

Each figure is the median of ``--repeats`` interleaved blocks of ``--steps`` steps, after two
untimed steps (which compile the compiled variants).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib
from fusion import make_step

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--model", default="resnet20")
parser.add_argument("--group", type=int, default=64, help="images per batch-norm group (batch 128)")
parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
parser.add_argument("--steps", type=int, default=8)
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--eager-only", action="store_true", help="skip the compiled variants")
parser.add_argument("--quick", action="store_true")


def main() -> None:
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 1, 1
    import torch

    from resnetlab.engine.batch_norm import group_batch_norm

    torch.set_num_threads(1)
    grouped = lambda model: group_batch_norm(model, args.group)
    variants = {}
    for compiled in (False,) if args.eager_only else (False, True):
        for name, transform in (("batch norm over 128", None), (f"groups of {args.group}", grouped)):
            label = f"{'compiled' if compiled else 'eager'} {args.precision}, {name}"
            step = make_step(torch, args.model, args.precision, compiled, transform=transform)
            step(), step()
            variants[label] = step
    load_before = benchlib.load_average()
    rates = benchlib.interleaved_rates(variants, repeats=args.repeats, block=args.steps)
    host = benchlib.host_info()
    print(
        f"host: {host['cpu']}, {host['cpus']} CPUs, avx512_bf16={host['avx512_bf16']} amx_bf16={host['amx_bf16']}; "
        f"load before: {load_before}, after: {benchlib.load_average()}; torch {torch.__version__}; 1 thread; "
        f"{args.model}, batch 128"
    )
    labels = list(variants)
    for plain, grouped_label in zip(labels[::2], labels[1::2], strict=True):
        base = statistics.median(rates[plain])
        for label in (plain, grouped_label):
            ips = statistics.median(rates[label])
            print(f"  {label:<40} {ips:7.1f} img/s  x{ips / base:.3f} of the first")


if __name__ == "__main__":
    main()
