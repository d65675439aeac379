"""Training and evaluation speed as a share of this machine's measured arithmetic peak (issue 13).

In one process and run: (a) the bf16 and fp32 GEMM peak at the thread count used; (b) ResNet-20
and ResNet-56 training throughput of the engine (bf16 autocast + channels_last, batch 128, the
paper's SGD) and of a plain eager fp32 loop, each as images/s and as percent of the bf16 peak
(images/s x FLOP/image / peak; FLOP/image = 3 x 2 x the model's counted multiply-adds: forward
plus a backward of about twice the forward); (c) ResNet-20 evaluation images/s (batch 1000).
Every figure is measured in this run; hosts differ (AMX or not), so the peak is never assumed.

    python benchmarks/peak.py                      # about 4 min on a quiet 2-core machine
    python benchmarks/peak.py --contended          # + wait policies quiet vs busy (+ about 6 min)
    python benchmarks/peak.py --jobs-compare       # + two 1-thread runs vs one 2-thread run (+1 min)
    python benchmarks/peak.py --end-to-end         # + `resnetlab train` itself: 2 threads vs 2 x 1-thread
                                                   #   data-parallel, eager vs compiled (+ about 10 min)
    python benchmarks/peak.py --quick              # seconds-long smoke run; figures meaningless

--contended runs every candidate as a separate subprocess, because the OpenMP wait policy only
takes effect if it is set before torch initialises OpenMP (resnetlab.engine.threads).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import benchlib  # beside this file; imports no torch, so the wait policy below can still apply
from peak_end_to_end import LAUNCHES, end_to_end_section
from peak_sharing import contended_section, jobs_section, pct, rate

from resnetlab.engine.threads import available_cores, configure_threads


def gemm_peak(torch, dtype, sizes: tuple[int, ...], repeats: int) -> dict:
    """Best GFLOP/s of square matmuls (2 n^3 FLOP each), one warm-up call per size first."""
    best = {"gflops": 0.0, "n": None}
    for n in sizes:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        out = torch.mm(a, b)  # warm-up: packing buffers, thread pool start
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            gflops = 2 * n**3 / (time.perf_counter() - start) / 1e9
            if gflops > best["gflops"]:
                best = {"gflops": gflops, "n": n}
    return best


def macs_per_image(model: str, input_size: int = 32) -> int:
    from resnetlab.models import build_model
    from resnetlab.models.complexity import count_macs

    return count_macs(build_model(model), input_size)


def eval_throughput(torch, model_name: str, test, *, images: int, batch: int, precision: str, repeats: int) -> float:
    """Images/s of the engine's evaluation path (``error_counts``) over ``images`` test images."""
    from resnetlab.data.cifar_augment import mean_image
    from resnetlab.engine.precision import autocast_for
    from resnetlab.evaluation.counts import error_counts
    from resnetlab.models import build_model

    x = test.images.float() / 255.0 - mean_image(test.images)
    copies = -(-images // x.shape[0])  # repeat a small test split up to the CIFAR test-set size
    x, y = x.repeat(copies, 1, 1, 1)[:images], test.labels.repeat(copies)[:images]
    model = build_model(model_name).to(memory_format=torch.channels_last)
    autocast = autocast_for(torch.device("cpu"), precision)
    run = lambda: error_counts(model, x, y, batch_size=batch, autocast=autocast, channels_last=True)
    run()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return images / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the cores available)")
    p.add_argument(
        "--wait-policy", default=None, help="this process's OpenMP wait policy: default|passive|active|spin:N"
    )
    p.add_argument("--iterations", type=int, default=100, help="timed training iterations, after the warm-up")
    p.add_argument("--warmup", type=int, default=10, help="warm-up iterations (also the timing window)")
    p.add_argument("--models", default="resnet20,resnet56", help="models of the training table")
    p.add_argument("--data", default="synthetic:12800", help="training images (content does not change speed)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain loop")
    p.add_argument("--precision", default="bf16", choices=("bf16", "fp32"), help="the engine's precision")
    p.add_argument("--eval-images", type=int, default=10_000, help="images per evaluation pass (CIFAR test set: 10k)")
    p.add_argument("--contended", action="store_true", help="also: quiet vs busy machine, per wait policy")
    p.add_argument("--jobs-compare", action="store_true", help="also: N 1-thread runs side by side vs one N-thread run")
    p.add_argument("--policies", default="default,passive,spin:10000", help="wait policies --contended compares")
    p.add_argument("--contended-model", default="resnet20", help="model of --contended and --jobs-compare")
    p.add_argument("--seconds", type=float, default=60.0, help="time limit of each subprocess measurement")
    p.add_argument("--end-to-end", action="store_true", help="also: `resnetlab train` subprocesses, see module doc")
    p.add_argument("--e2e-window", type=int, default=10, help="log window of --end-to-end runs (the first is start-up)")
    p.add_argument("--e2e-iterations", type=int, default=150, help="timed iterations of each --end-to-end run")
    p.add_argument("--e2e-timeout", type=float, default=900.0, help="seconds before an --end-to-end run is killed")
    p.add_argument(
        "--e2e-launches",
        default="one,torchrun",
        help="--end-to-end candidates, from one (1 x N threads), torchrun (N x 1 thread, data-parallel), "
        "independent (N separate 1-thread runs side by side, as the campaign's --jobs N)",
    )
    p.add_argument("--skip-table", action="store_true", help="only the GEMM peak and the extra sections")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, figures meaningless")
    p.add_argument("--json", type=Path, help="also write every figure here")
    args = p.parse_args()
    args.policies = [s.strip() for s in args.policies.split(",") if s.strip()]
    args.e2e_launches = [s.strip() for s in args.e2e_launches.split(",") if s.strip()]
    unknown = sorted(set(args.e2e_launches) - set(LAUNCHES))
    if unknown:
        p.error(f"--e2e-launches: unknown {', '.join(unknown)}; choose from {', '.join(LAUNCHES)}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sizes, repeats = (2048, 4096), 5
    if args.quick:
        args.iterations, args.warmup, args.seconds, args.eval_images = 2, 2, 60.0, 1000
        args.data, sizes, repeats = "synthetic:1280", (512,), 2
        args.e2e_window, args.e2e_iterations = 2, 2
    if args.iterations < 1 or args.warmup < 1:
        p.error("--iterations and --warmup must be positive")
    load_before = benchlib.load_average()
    settings = configure_threads(args.threads, args.wait_policy)  # before torch is imported here
    args.threads = settings.threads
    import torch

    host = benchlib.host_info()
    report = {
        "host": host,
        "torch": torch.__version__,
        "threads": settings.threads,
        "wait_policy": args.wait_policy,
        "wait_policy_applied": settings.wait_policy_applied,
        "available_cores": available_cores(),
        "load_average_before": load_before,
        "quick": args.quick,
    }
    if args.quick:
        print("QUICK SMOKE RUN: tiny sizes (a 512 GEMM is far from peak); the figures below are meaningless")
    print(
        f"host: {host['cpu']} ({host['cpus']} CPUs, {available_cores()} available); avx512_bf16 "
        f"{'yes' if host['avx512_bf16'] else 'no'}, amx_bf16 {'yes' if host['amx_bf16'] else 'no'}; "
        f"torch {torch.__version__}; {settings.threads} threads; wait policy {args.wait_policy or 'inherited'}; "
        f"load average before {load_before}"
    )

    peaks = {
        name: gemm_peak(torch, dtype, sizes, repeats)
        for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32))
    }
    report["gemm_peak"] = peaks
    bf16, fp32 = peaks["bf16"]["gflops"], peaks["fp32"]["gflops"]
    print(
        f"GEMM peak at {settings.threads} threads (best of {repeats}, n in {list(sizes)}): "
        f"bf16 {bf16:.1f} GFLOP/s (n={peaks['bf16']['n']}), fp32 {fp32:.1f} GFLOP/s (n={peaks['fp32']['n']})"
    )
    contended_macs = macs_per_image(args.contended_model)
    if not args.skip_table:
        from train_throughput import plain_loop  # beside this file

        arrays = benchlib.synthetic_arrays(args.data)
        rows = []
        for model in models:
            macs = macs_per_image(model)
            engine = benchlib.engine_throughput(
                model,
                arrays,
                iterations=args.iterations,
                warmup=args.warmup,
                precision=args.precision,
                channels_last=True,
            )
            plain = plain_loop(
                arrays[0],
                args.warmup + args.iterations,
                args.warmup,
                torch.device("cpu"),
                args.workers,
                model_name=model,
            )
            rows += [
                {
                    "model": model,
                    "loop": f"engine, {args.precision} + channels_last",
                    "macs": macs,
                    "images_per_second": engine["images_per_second"],
                },
                {"model": model, "loop": "plain eager fp32 + DataLoader", "macs": macs, "images_per_second": plain},
            ]
        report["training"] = rows
        print(
            f"\ntraining, batch 128, paper's SGD, {args.iterations} timed iterations after {args.warmup} warm-up, "
            f"{args.data}; FLOP/image = 3 x 2 x counted multiply-adds"
        )
        print(
            f"{'model':<9} {'loop':<32} {'images/s':>9} {'GFLOP/img':>9} {'GFLOP/s':>8} {'% bf16 peak':>11} {'% fp32 peak':>11}"
        )
        for r in rows:
            flop = 6 * r["macs"]
            ips = r["images_per_second"]
            print(
                f"{r['model']:<9} {r['loop']:<32} {rate(ips):>9} {flop / 1e9:>9.4f} "
                f"{(ips or 0) * flop / 1e9:>8.1f} {pct(ips, flop, bf16):>11} {pct(ips, flop, fp32):>11}"
            )

        macs20 = macs_per_image("resnet20")
        evals = {
            prec: eval_throughput(
                torch, "resnet20", arrays[1], images=args.eval_images, batch=1000, precision=prec, repeats=3
            )
            for prec in ("bf16", "fp32")
        }
        report["eval"] = {
            "model": "resnet20",
            "batch": 1000,
            "images": args.eval_images,
            "macs": macs20,
            "images_per_second": evals,
        }
        print(
            f"\nevaluation, resnet20, 32x32, batch 1000, {args.eval_images} images per pass (best of 3); "
            f"FLOP/image = 2 x multiply-adds"
        )
        for prec, ips in evals.items():
            print(f"  {prec}: {ips:.0f} images/s, {pct(ips, 2 * macs20, bf16)} of bf16 peak")

    if args.contended:
        contended_section(args, report, 6 * contended_macs, bf16)
    if args.jobs_compare:
        jobs_section(args, report, 6 * contended_macs, bf16)
    if args.end_to_end:
        end_to_end_section(args, report, {m: 6 * macs_per_image(m) for m in models}, bf16)
    report["load_average_after"] = benchlib.load_average()
    print(
        f"\nload average after {report['load_average_after']} (a figure measured next to other work is not a quiet-machine figure)"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
