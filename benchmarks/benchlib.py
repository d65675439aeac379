"""Pieces shared by peak.py and gpu.py: engine throughput, host facts, and subprocess workers.

torch is imported inside functions only: a worker subprocess must set its OpenMP wait policy
before torch loads the OpenMP runtime (see resnetlab.engine.threads), so importing this module
must not import torch.

Worker protocol: ``python benchmarks/benchlib.py worker --model resnet20 --threads 1
--wait-policy spin:10000 ...`` trains with the engine and prints one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def host_info() -> dict:
    """CPU model and the flags that decide bf16 speed (AVX512-BF16, AMX), read from /proc/cpuinfo."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "amx_tile": "amx_tile" in flags,
        "python": platform.python_version(),
    }


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


class StopAfter:
    """``should_stop`` for the engine: stop after ``n`` iterations or at a deadline, whichever first.

    The clock starts after the first iteration, so data set-up and the first (slowest) step do
    not eat into the measurement; the bound is ``seconds`` plus one iteration.
    """

    def __init__(self, n: int, seconds: float | None) -> None:
        self.n, self.calls, self.seconds = n, 0, seconds
        self.deadline: float | None = None
        self.by_deadline = False

    def __call__(self) -> bool:
        self.calls += 1  # the engine calls this once after every iteration
        now = time.perf_counter()
        if self.seconds is not None and self.deadline is None:
            self.deadline = now + self.seconds
        if self.deadline is not None and now > self.deadline:
            self.by_deadline = True
        return self.calls >= self.n or self.by_deadline


def engine_throughput(
    model: str, arrays, *, iterations: int, warmup: int, seconds: float | None = None, device: str = "cpu", **changes
) -> dict:
    """Steady-state images/s of ``resnetlab.engine.train`` on the model's CIFAR recipe.

    The engine logs a window every ``warmup`` iterations with its own timestamps (it syncs the
    device there); the first window holds the warm-up (and any compilation) and is left out. The
    run is stopped through ``should_stop`` after ``warmup + iterations`` iterations or at the
    deadline, so the final full-test-set evaluation never runs and a slow machine stays bounded.
    """
    from resnetlab.checkpoints.rundir import read_metrics
    from resnetlab.engine.config import load_recipe
    from resnetlab.engine.train import train

    windows = max(1, -(-iterations // warmup))  # whole windows after the warm-up one
    total = warmup * (windows + 1)
    after = total + 1  # never reached: no milestone, evaluation or final evaluation inside the run
    config = load_recipe(f"cifar10-{model}").replace(
        iterations=after,
        milestones=(after,),
        val_size=0,
        log_every=warmup,
        eval_every=after,
        checkpoint_every=after,
        track_test_error=False,
        device=device,
        **changes,
    )
    stop = StopAfter(total, seconds)
    with tempfile.TemporaryDirectory() as out:
        train(config, Path(out) / "run", data=arrays, log=lambda line: None, should_stop=stop)
        rate = steady_rate(read_metrics(Path(out) / "run"), config.batch_size)
    return {
        "model": model,
        "iterations": rate.get("iterations", 0),
        "images_per_second": rate["images_per_second"],
        "stopped_by_deadline": stop.by_deadline,
        "warmup_seconds": rate.get("startup_seconds"),
    }


def interleaved_rates(steps: dict, *, repeats: int, block: int, batch: int = 128) -> dict:
    """``{name: [images/s of each block]}``: ``repeats`` rounds, each timing ``block`` calls of every
    step in turn, so that a change of load hits every variant alike."""
    rates: dict = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(block):
                step()
            rates[name].append(block * batch / (time.perf_counter() - start))
    return rates


def steady_rate(metrics: list[dict], batch: int) -> dict:
    """Images/s of a run from the end of its first logged window (start-up, warm-up, any
    compilation) to its last one, read from its ``metrics.jsonl`` records."""
    logged = [m for m in metrics if "images_per_second" in m and "elapsed_seconds" in m]
    if len(logged) < 2:
        return {
            "images_per_second": None,
            "startup_seconds": logged[0]["elapsed_seconds"] if logged else None,
            "error": f"only {len(logged)} log windows were written",
        }
    first, last = logged[0], logged[-1]
    iterations = last["iteration"] - first["iteration"]
    return {
        "images_per_second": iterations * batch / (last["elapsed_seconds"] - first["elapsed_seconds"]),
        "iterations": iterations,
        "startup_seconds": first["elapsed_seconds"],
    }


def synthetic_arrays(spec: str):
    from resnetlab.data import load_dataset

    return load_dataset(spec, "train"), load_dataset(spec, "test")


# --- subprocess workers ---------------------------------------------------------------------------


def worker_command(
    model: str, *, threads: int, wait_policy: str, iterations: int, warmup: int, seconds: float, data: str
) -> list[str]:
    return [
        sys.executable,
        str(HERE / "benchlib.py"),
        "worker",
        "--model",
        model,
        "--threads",
        str(threads),
        "--wait-policy",
        wait_policy,
        "--iterations",
        str(iterations),
        "--warmup",
        str(warmup),
        "--seconds",
        str(seconds),
        "--data",
        data,
    ]


def parse_result(stdout: str) -> dict | None:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT ") :]) if lines else None


def start_worker(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_worker(proc: subprocess.Popen, timeout: float) -> dict:
    """Wait (bounded) for a worker; a failed or hung worker gives an ``error`` entry, not an exception."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"images_per_second": None, "error": f"worker exceeded {timeout:.0f} s and was killed"}
    result = parse_result(stdout)
    if proc.returncode != 0 or result is None:
        return {"images_per_second": None, "error": f"worker exit {proc.returncode}: {stderr.strip()[-500:]}"}
    return result


def busy_competitor(seconds: float) -> subprocess.Popen:
    """A pure-Python busy loop (one core's worth of CPU) that ends by itself after ``seconds``.

    The deadline is inside the child, so even if this process dies without its ``finally`` the
    competitor stops on its own; callers still kill it as soon as the measurement is done.
    """
    code = f"import time\nend = time.monotonic() + {float(seconds)!r}\nwhile time.monotonic() < end:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


def run_worker(command: list[str], seconds: float, *, contended: bool, startup: float = 120.0) -> dict:
    """One worker, optionally next to a busy competitor that lives exactly as long as it."""
    competitor = None
    try:
        if contended:
            competitor = busy_competitor(startup + seconds + 30)
            time.sleep(0.5)  # let it get going before the worker starts
        return finish_worker(start_worker(command), timeout=startup + seconds)
    finally:
        stop_process(competitor)


def worker_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="benchlib.py worker")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--wait-policy", default="default")
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--data", default="synthetic:12800")
    args = p.parse_args(argv)
    from resnetlab.engine.threads import configure_threads

    # Before any torch import: this is the only point where the policy can still take effect.
    settings = configure_threads(args.threads, args.wait_policy)
    result = engine_throughput(
        args.model, synthetic_arrays(args.data), iterations=args.iterations, warmup=args.warmup, seconds=args.seconds
    )
    result.update(
        threads=settings.threads,
        wait_policy=args.wait_policy,
        wait_policy_applied=settings.wait_policy_applied,
        environment={k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
    )
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["worker"]:
        sys.exit("usage: benchlib.py worker [options]  (used by peak.py)")
    sys.exit(worker_main(sys.argv[2:]))
