"""The end-to-end section of ``peak.py`` (``--end-to-end``): ``resnetlab train`` itself, as a user
runs it, in a fresh subprocess per candidate, with its steady-state speed read from the run's own
``metrics.jsonl`` (images/s between the end of the first log window, which holds start-up and any
compilation, and the last one), as percent of the GEMM peak measured earlier in the same run.

Candidates, per model: one process on all N threads, against N one-thread processes training the
same run data-parallel under torchrun (each process computes the gradient of 128/N images of the
same global batch of 128; DDP sums them before the one SGD step), each eager and under
torch.compile. With N = 2 the data-parallel candidate is the paper's own arrangement for CIFAR-10:
"a minibatch size of 128 on two GPUs" (Sec. 4.2), batch norm over each worker's 64 images.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib  # beside this file
from peak_sharing import pct, rate, ratio


def train_command(
    model: str,
    out: Path,
    *,
    processes: int,
    threads: int,
    compiled: bool,
    precision: str,
    window: int,
    windows: int,
    data: str,
) -> list[str]:
    """``resnetlab train`` for ``window x windows`` iterations, logging every ``window``; launched by
    torchrun (standalone, one node) when ``processes`` > 1."""
    total = window * windows
    launcher = [sys.executable, "-m", "resnetlab"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        launcher += ["-m", "resnetlab"]
    return launcher + [
        "train",
        "--recipe",
        f"cifar10-{model}",
        "--data",
        data,
        "--out",
        str(out),
        "--iterations",
        str(total),
        "--threads",
        str(threads),
        "--quiet",
        "--set",
        f"log_every={window}",
        "--set",
        f"eval_every={total}",
        "--set",
        f"checkpoint_every={total}",
        "--set",
        "val_size=0",
        "--set",
        "track_test_error=false",
        "--set",
        f"compile={'true' if compiled else 'false'}",
        "--set",
        f'precision="{precision}"',
    ]


def measure(command: list[str], out: Path, timeout: float) -> dict:
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"images_per_second": None, "error": f"exceeded {timeout:.0f} s"}
    if done.returncode != 0:
        return {"images_per_second": None, "error": f"exit {done.returncode}: {done.stderr.strip()[-400:]}"}
    from resnetlab.checkpoints.rundir import read_metrics

    batch = json.loads((out / "config.json").read_text())["batch_size"]
    return {**benchlib.steady_rate(read_metrics(out), batch), "wall_seconds": time.perf_counter() - start}


def end_to_end_section(args, report: dict, flops: dict[str, float], peak: float) -> None:
    """Every model x {one N-thread process, N one-thread data-parallel processes} x {eager, compiled}."""
    n = args.threads
    shapes = [(1, n)] + ([(n, 1)] if n > 1 else [])
    rows = []
    for model in flops:
        window = args.e2e_window
        windows = 1 + max(1, -(-args.e2e_iterations // window))
        for compiled in (False, True):
            for processes, threads in shapes:
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / "run"
                    command = train_command(
                        model,
                        out,
                        processes=processes,
                        threads=threads,
                        compiled=compiled,
                        precision=args.precision,
                        window=window,
                        windows=windows,
                        data=args.data,
                    )
                    result = measure(command, out, args.e2e_timeout)
                rows.append(
                    {"model": model, "processes": processes, "threads": threads, "compiled": compiled, **result}
                )
    report["end_to_end"] = {"rows": rows, "load_average_after": benchlib.load_average()}
    print(
        f"\nend to end: `resnetlab train`, {args.precision}, batch 128 "
        f"(global), steady state from its own metrics.jsonl; x = processes x threads each"
    )
    print(
        f"{'model':<9} {'launch':<24} {'compile':>7} {'images/s':>9} {'vs first':>8} {'% bf16 peak':>11} {'start-up s':>10}"
    )
    for model in flops:
        mine = [r for r in rows if r["model"] == model]
        base = mine[0]["images_per_second"]
        for r in mine:
            launch = f"{r['processes']} x {r['threads']}-thread" + (" (torchrun)" if r["processes"] > 1 else "")
            start = r.get("startup_seconds")
            print(
                f"{model:<9} {launch:<24} {'yes' if r['compiled'] else 'no':>7} {rate(r['images_per_second']):>9} "
                f"{ratio(r['images_per_second'], base):>8} {pct(r['images_per_second'], flops[model], peak):>11} "
                f"{'-' if start is None else f'{start:.0f}':>10}"
            )
            if "error" in r:
                print(f"  {r['error']}")
