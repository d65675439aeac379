"""Where one training step's time goes: torch.profiler over the paper's ResNet training step (batch
128, SGD), with the CPU time of every operator summed into the paper's parts: convolutions
forward and backward, batch norm, ReLU, the shortcut additions, the classifier and loss, the
optimiser, and the rest.

    python benchmarks/profile_step.py                          # ResNet-20, fp32, eager, 1 thread
    python benchmarks/profile_step.py --model resnet56 --precision bf16 --threads 2

It answers what a faster engine must attack: the convolutions are near the GEMM peak already, so
what remains is the share of the other parts. Eager only: a compiled step's fused kernels no longer
map to these operators (``fusion.py`` measures what compiling gains).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

# Operator-name fragments -> part, first match wins, matched against the lower-cased name. Both
# aten operators and the autograd nodes that call them ("ConvolutionBackward0") are listed; the
# classifier comes before the additions because "aten::addmm" starts like "aten::add".
PARTS = (
    ("convolution backward", ("convolution_backward", "convolutionbackward")),
    ("convolution forward", ("convolution", "conv2d")),
    ("batch norm", ("batch_norm", "batchnorm")),
    ("ReLU", ("relu", "clamp_min", "threshold_backward")),
    ("classifier + loss", ("linear", "addmm", "aten::mm", "mmbackward", "cross_entropy", "softmax", "nll_loss")),
    ("shortcut additions", ("aten::add", "addbackward")),
    ("pooling", ("pool", "mean")),
    ("optimiser (SGD)", ("optimizer.",)),
)


def part_of(name: str) -> str:
    lowered = name.lower()
    for part, fragments in PARTS:
        if any(fragment in lowered for fragment in fragments):
            return part
    return "other"


def parts_of_events(events) -> dict[str, float]:
    """Self CPU microseconds per part (self time, so nested calls are not counted twice). An
    operator called by the optimiser (its ``add_``, ``mul_``) counts as the optimiser's, not as
    the shortcut additions it would otherwise look like."""
    totals: dict[str, float] = {}
    for event in events:
        part, parent = part_of(event.name), event.cpu_parent
        while parent is not None:
            if parent.name.lower().startswith("optimizer."):
                part = "optimiser (SGD)"
                break
            parent = parent.cpu_parent
        totals[part] = totals.get(part, 0.0) + event.self_cpu_time_total
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10, help="profiled steps (after 3 warm-up steps)")
    parser.add_argument("--json", type=Path, help="also write the shares here")
    args = parser.parse_args()
    if args.threads < 1 or args.steps < 1:
        parser.error("--threads and --steps must be positive")

    import torch
    from fusion import make_step
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args.threads)
    step = make_step(torch, args.model, args.precision, compiled=False)
    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    totals = parts_of_events(prof.events())
    whole = sum(totals.values())
    host = benchlib.host_info()
    print(
        f"host: {host['cpu']}, {host['cpus']} CPUs, avx512_bf16={host['avx512_bf16']}; load: {benchlib.load_average()}; "
        f"torch {torch.__version__}; {args.threads} thread(s)"
    )
    print(
        f"{args.model}, {args.precision}, eager channels_last, batch 128: "
        f"{whole / args.steps / 1000:.1f} ms of operator CPU time per step"
    )
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    for part, micros in rows:
        print(f"  {part:<22} {100 * micros / whole:5.1f}%  {micros / args.steps / 1000:7.1f} ms/step")
    if args.json:
        report = {"host": host, "model": args.model, "precision": args.precision, "threads": args.threads}
        report["shares"] = {part: micros / whole for part, micros in rows}
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
