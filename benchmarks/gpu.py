"""The GPU benchmark (issue 13), planned to fit in about 10 minutes on one modern NVIDIA GPU.

    benchmarks/gpu.sh /path/to/cifar10-jpeg [OUT_DIR]        (installs .venv first if missing)
    .venv/bin/python benchmarks/gpu.py /path/to/cifar10-jpeg [OUT_DIR]

In order, most valuable first, rewriting OUT_DIR/gpu-results.{json,md} after every phase so a
machine lent for minutes still leaves results behind:
1. ResNet-20 training throughput through the engine, eager and torch.compile (bf16,
   channels_last, synthetic CIFAR-sized batches); the full run uses whichever finishes 64k
   iterations sooner, compile time included (CUDA graphs would need an engine option: not here).
2. The ResNet-20 full schedule (64k iterations) on the CIFAR-10 JPEG folder via
   ``resnetlab train --recipe cifar10-resnet20 --set val_size=0 --device cuda``.
3. Engine training throughput of ResNet-56 and ResNet-110 (eager).
4. ResNet-50 training throughput on synthetic 224x224 batches (bf16 autocast, channels_last).
Every figure comes from this run. Exit codes: 2 bad arguments, 3 no CUDA GPU, 1 a phase failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import benchlib  # beside this file
from gpu_report import render_markdown, write_results

EXIT_USAGE, EXIT_NO_GPU = 2, 3
ROOT = Path(__file__).resolve().parents[1]
FULL_RUN = "resnet20-full"
NO_GPU = (
    "error: no CUDA GPU is available to PyTorch (torch.cuda.is_available() is False; torch {version}, "
    "CUDA build {cuda}). This benchmark needs one NVIDIA GPU. On a GPU machine whose .venv holds a "
    "CPU-only torch, reinstall it: rm -rf .venv and run TORCH_PIN='torch --index-url "
    "https://download.pytorch.org/whl/cu128' benchmarks/gpu.sh ..."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/gpu.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("data", type=Path, help="the CIFAR-10 JPEG folder (train/ and test/ of class folders)")
    p.add_argument("out", type=Path, nargs="?", default=ROOT / "runs" / "gpu-bench", help="result folder")
    p.add_argument(
        "--compile",
        choices=("auto", "yes", "no"),
        default="auto",
        help="full run with torch.compile: 'auto' measures both first and picks the faster",
    )
    p.add_argument("--full-iterations", type=int, default=64_000, help="the full run's iterations (paper: 64k)")
    p.add_argument("--full-timeout", type=float, default=1800.0, help="seconds before the full run is stopped")
    p.add_argument("--r50-batch", type=int, default=256, help="ResNet-50 batch (the paper's ImageNet batch)")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="check the orchestration on the CPU: tiny sizes, no compile, no GPU needed; its figures are meaningless",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.full_iterations, args.r50_batch, args.compile = min(args.full_iterations, 4), 2, "no"
    for sub in ("train", "test"):
        if not (args.data / sub).is_dir():
            p.error(
                f"{args.data} has no {sub}/ folder: pass the CIFAR-10 JPEG copy (train/ and test/ of class folders)"
            )
    if (args.out / FULL_RUN).exists():
        p.error(f"{args.out / FULL_RUN} already exists: pass a new OUT_DIR (results are never overwritten)")
    if args.full_iterations < 1 or args.r50_batch < 1:
        p.error("--full-iterations and --r50-batch must be positive")
    return args


def choose_compile(eager: dict, compiled: dict, iterations: int, batch: int = 128) -> dict:
    """Loop time of the full run each way: steady rate plus, for compile, its one-off compilation."""
    e, c = eager.get("images_per_second"), compiled.get("images_per_second")
    if not c:
        return {
            "compile": False,
            "eager_seconds": iterations * batch / e,
            "compile_seconds": float("nan"),
            "reason": "compile failed",
        }
    e_s, c_s = iterations * batch / e, iterations * batch / c
    # The warm-up window holds the compilation; subtract what it would have cost at the steady rate.
    c_s += max(0.0, compiled["warmup_seconds"] - eager["warmup_seconds"])
    return {
        "compile": c_s < e_s,
        "eager_seconds": e_s,
        "compile_seconds": c_s,
        "reason": "faster overall" if c_s < e_s else "compilation does not pay off",
    }


def resnet50_throughput(torch, batch: int, iterations: int = 30, warmup: int = 10, device: str = "cuda") -> float:
    """Synthetic 224x224 batches already on the GPU: the network's speed, not a data pipeline's."""
    import torch.nn.functional as F

    from resnetlab.models import build_model

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)  # CUDA runs asynchronously
    model = build_model("resnet50").to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    for step in range(warmup + iterations):
        if step == warmup:
            sync()
            start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync()
    return iterations * batch / (time.perf_counter() - start)


def full_run(args, compile_: bool, device: str) -> dict:
    """The full schedule as a user runs it: the CLI in its own process (decoding included)."""
    run_dir = args.out / FULL_RUN
    command = [
        sys.executable,
        "-m",
        "resnetlab",
        "train",
        "--recipe",
        "cifar10-resnet20",
        "--data",
        str(args.data),
        "--out",
        str(run_dir),
        "--device",
        device,
        "--iterations",
        str(args.full_iterations),
        "--set",
        "val_size=0",
        "--set",
        "precision=bf16",
        "--set",
        "channels_last=true",
        "--set",
        f"compile={'true' if compile_ else 'false'}",
    ]
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    try:
        proc.wait(timeout=args.full_timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the engine checkpoints and stops at the next iteration
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result = {
        "iterations": args.full_iterations,
        "compile": compile_,
        "command": " ".join(command),
        "process_seconds": time.perf_counter() - start,
        "exit_code": proc.returncode,
        "status": "completed" if proc.returncode == 0 else f"exit {proc.returncode}",
    }
    summary = run_dir / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        result.update(test_top1_error=s["test_top1_error"], loop_seconds=s["wall_seconds"])
    from resnetlab.checkpoints.rundir import read_metrics

    windows = [m for m in read_metrics(run_dir) if "images_per_second" in m][1:]  # first: warm-up
    if len(windows) >= 2:
        span = windows[-1]["elapsed_seconds"] - windows[0]["elapsed_seconds"]
        result["steady_images_per_second"] = (windows[-1]["iteration"] - windows[0]["iteration"]) * 128 / span
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print(NO_GPU.format(version=torch.__version__, cuda=torch.version.cuda or "none"), file=sys.stderr)
        return EXIT_NO_GPU
    started = time.perf_counter()
    device = "cpu" if args.smoke else "cuda"
    results = {
        "label": "SMOKE RUN on the CPU: tiny sizes, figures meaningless" if args.smoke else None,
        "device": "cpu (smoke)" if args.smoke else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv if argv is None else ["benchmarks/gpu.py", *argv]),
        "host": benchlib.host_info(),
        "phases_done": [],
        "throughput": [],
        "errors": [],
    }

    def done(phase: str) -> None:
        results["phases_done"].append(phase)
        results["wall_seconds"] = time.perf_counter() - started
        paths = write_results(results, args.out)
        print(f"[{results['wall_seconds']:.0f} s] {phase} done; wrote {paths[1]}", flush=True)

    def engine(model: str, compile_: bool, arrays) -> dict:
        try:
            n, w = (2, 2) if args.smoke else (200, 50)
            r = benchlib.engine_throughput(
                model,
                arrays,
                iterations=n,
                warmup=w,
                seconds=120,
                device=device,
                precision="bf16",
                channels_last=True,
                compile=compile_,
            )
        except Exception as error:  # a failed mode is reported, the rest still runs
            results["errors"].append(f"{model} {'compile' if compile_ else 'eager'}: {error!r}")
            r = {"images_per_second": None, "warmup_seconds": None}
        results["throughput"].append(
            {
                "model": model,
                "input": "32x32",
                "batch": 128,
                "mode": "bf16, channels_last" + (", compile" if compile_ else ", eager"),
                **r,
            }
        )
        return r

    arrays = benchlib.synthetic_arrays("synthetic:1280" if args.smoke else "synthetic:12800")
    eager = engine("resnet20", False, arrays)
    if args.compile == "auto" and eager["images_per_second"]:
        choice = choose_compile(eager, engine("resnet20", True, arrays), args.full_iterations)
        results["compile_choice"] = choice
        use_compile = choice["compile"]
        print(
            f"full-run loop estimate: eager {choice['eager_seconds']:.0f} s, compile {choice['compile_seconds']:.0f} s "
            f"-> {'compile' if use_compile else 'eager'}",
            flush=True,
        )
    else:
        use_compile = args.compile == "yes"
    done("resnet20 eager vs compile")

    results["full_run"] = full_run(args, use_compile, device)
    if results["full_run"]["exit_code"] != 0:
        results["errors"].append(f"full run: {results['full_run']['status']}")
    done("resnet20 full schedule")

    for model in ("resnet56", "resnet110"):
        engine(model, False, arrays)
    done("resnet56/110 throughput")

    try:
        ips = resnet50_throughput(torch, args.r50_batch, *((2, 1) if args.smoke else ()), device=device)
    except Exception as error:  # e.g. out of memory on a small GPU: recorded, not fatal
        results["errors"].append(f"resnet50: {error!r}")
        ips = None
    results["throughput"].append(
        {
            "model": "resnet50",
            "input": "224x224",
            "batch": args.r50_batch,
            "mode": "bf16, channels_last, eager",
            "images_per_second": ips,
            "warmup_seconds": None,
        }
    )
    done("resnet50 throughput")
    print(render_markdown(results))
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
