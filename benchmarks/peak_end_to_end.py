"""The end-to-end section of ``peak.py`` (``--end-to-end``): ``resnetlab train`` itself, as a user
runs it, in a fresh subprocess per candidate, with its steady-state speed read from the run's own
``metrics.jsonl`` (images/s between the end of the first log window, which holds start-up and any
compilation, and the last one), as percent of the GEMM peak measured earlier in the same run.

Candidates, per model (``--e2e-launches``), each eager and under torch.compile:
- ``one``: one process on all N threads;
- ``torchrun``: N one-thread processes training the same run data-parallel under torchrun (each
  computes the gradient of 128/N images of the same global batch of 128; DDP sums them before the
  one SGD step). With N = 2 it is the paper's own arrangement for CIFAR-10: "a minibatch size of
  128 on two GPUs" (Sec. 4.2), batch norm over each worker's 64 images;
- ``independent``: N separate one-thread runs side by side, started together, as ``resnetlab
  reproduce campaign`` trains its runs (``--jobs N``); the row gives their summed images/s, since
  the pair shares the machine's memory and caches the way the campaign's jobs do.
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

LAUNCHES = ("one", "torchrun", "independent")


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
    return measure_together([command], [out], timeout)


def measure_together(commands: list[list[str]], outs: list[Path], timeout: float) -> dict:
    """Run the commands at the same time; their steady-state images/s summed (one command: its
    own), each run's in ``runs``. Any failure fails the whole measurement."""
    from resnetlab.checkpoints.rundir import read_metrics

    start = time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in commands]
    errors = []
    for process in processes:
        try:
            _, stderr = process.communicate(timeout=max(1.0, timeout - (time.perf_counter() - start)))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            errors.append(f"exceeded {timeout:.0f} s")
            continue
        if process.returncode != 0:
            last = (stderr.strip().splitlines() or ["(no output)"])[-1]
            errors.append(f"exit {process.returncode}: {last[:400]}")  # the CLI's one-line error, from its start
    if errors:
        return {"images_per_second": None, "error": "; ".join(errors)}
    runs = []
    for out in outs:
        batch = json.loads((out / "config.json").read_text())["batch_size"]
        runs.append(benchlib.steady_rate(read_metrics(out), batch))
    if len(runs) == 1:
        return {**runs[0], "wall_seconds": time.perf_counter() - start}
    rates = [r["images_per_second"] for r in runs]
    return {
        "images_per_second": None if None in rates else sum(rates),
        "startup_seconds": max(r["startup_seconds"] or 0 for r in runs),
        "runs": runs,
        "wall_seconds": time.perf_counter() - start,
    }


def launch_label(launch: str, processes: int, threads: int) -> str:
    if launch == "torchrun":
        return f"{processes} x {threads}-thread (torchrun)"
    if launch == "independent":
        return f"{processes} runs x {threads}-thread"
    return f"{processes} x {threads}-thread"


def _shapes(launches: tuple[str, ...], n: int) -> list[tuple[str, int, int]]:
    """(launch, processes, threads each) of every candidate asked for, on ``n`` threads in all."""
    shapes = {"one": (1, n), "torchrun": (n, 1), "independent": (n, 1)}
    return [(launch, *shapes[launch]) for launch in launches if launch == "one" or n > 1]


def end_to_end_section(args, report: dict, flops: dict[str, float], peak: float) -> None:
    """Every model x the launches of ``args.e2e_launches`` x {eager, compiled}."""
    shapes = _shapes(tuple(args.e2e_launches), args.threads)
    rows = []
    for model in flops:
        window = args.e2e_window
        windows = 1 + max(1, -(-args.e2e_iterations // window))
        for compiled in (False, True):
            for launch, processes, threads in shapes:
                # independent runs: one command per process, each a plain one-process run
                copies, per_command = (processes, 1) if launch == "independent" else (1, processes)
                with tempfile.TemporaryDirectory() as tmp:
                    outs = [Path(tmp) / f"run{i}" for i in range(copies)]
                    commands = [
                        train_command(
                            model,
                            out,
                            processes=per_command,
                            threads=threads,
                            compiled=compiled,
                            precision=args.precision,
                            window=window,
                            windows=windows,
                            data=args.data,
                        )
                        for out in outs
                    ]
                    result = measure_together(commands, outs, args.e2e_timeout)
                rows.append(
                    {
                        "model": model,
                        "launch": launch,
                        "processes": processes,
                        "threads": threads,
                        "compiled": compiled,
                        **result,
                    }
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
            launch = launch_label(r["launch"], r["processes"], r["threads"])
            start = r.get("startup_seconds")
            print(
                f"{model:<9} {launch:<24} {'yes' if r['compiled'] else 'no':>7} {rate(r['images_per_second']):>9} "
                f"{ratio(r['images_per_second'], base):>8} {pct(r['images_per_second'], flops[model], peak):>11} "
                f"{'-' if start is None else f'{start:.0f}':>10}"
            )
            if "error" in r:
                print(f"  {r['error']}")
