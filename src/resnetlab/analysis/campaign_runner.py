"""Continue a campaign: train its unfinished runs, each as its own ``resnetlab train`` process.

Why processes and not calls: the thread count and OpenMP settings of a run are fixed when torch
starts, so ``--jobs 2`` on a 2-core machine needs two processes of one thread each; a run killed
by the machine going away leaves only its own checkpoint behind; and every run is exactly the
command a user could type (it is printed), so nothing about a result depends on the runner.

Safety, in order of what can go wrong:

- Two runners on one folder: each run directory is locked (``.campaign.lock``, ``flock``) for as
  long as its training process lives — the lock is inherited by that process, so it holds even if
  the runner itself is killed — and a locked run is skipped, never started twice.
- A stop (SIGINT/SIGTERM to the runner, or to its whole process group): every training process
  gets one SIGTERM from the runner, writes its checkpoint and exits; the runner waits for all of
  them. Each training process is the leader of its own session, so a terminal's Ctrl-C does not
  reach it a second time (a second signal aborts a run without its checkpoint).
- A run pinned to bf16 on a CPU that only emulates bf16 (oneDNN accepts bf16 on any AVX512 CPU;
  without AVX512-BF16 or AMX it is about 3x slower than fp32, ``benchmarks/RESULTS.md``) waits:
  the other runs go first, so the host's hours buy the most iterations, and the run trains on a
  host that computes bf16 natively if one comes, or last here.
- A finished run keeps its final weights only (``final.safetensors``, with the metadata that
  ``resnetlab eval``/``predict`` need) and drops ``checkpoints/``, so what is committed stays small.

``OUT/campaign.json`` records the definition the folder was started with, and
``OUT/campaign-log.jsonl`` every start, resume and end of a run with the code revision, the host
and the machine's load, plus a load sample every few minutes: which iteration ran under which
code, and how busy the machine was while the speed figures were measured.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .campaign import Campaign, PlannedRun
from .campaign_folder import checkpoint_iteration, finalize_run, prepare_folder, try_lock
from .campaign_log import CampaignLog, host_description, load_average
from .runs import run_state

logger = logging.getLogger(__name__)  # a child of the library's one logger, "resnetlab"

LOAD_SAMPLE_SECONDS = 300.0


@dataclass
class _Job:
    planned: PlannedRun
    process: subprocess.Popen
    lock: int
    log_file: object
    stopping: bool = False  # SIGTERM sent: a second one would abort the run before its checkpoint

    def stop(self) -> None:
        if not self.stopping and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.stopping = True


def order_for_host(
    runs: list[PlannedRun], data: str | None, device: str | None, native_bf16: bool
) -> tuple[list[PlannedRun], list[PlannedRun]]:
    """``(runs in training order, the deferred ones)``: a run whose precision is pinned to bf16,
    on the CPU, where the CPU has no native bf16, moves behind the others (their order kept)."""
    deferred = []
    for planned in runs:
        config = planned.config(data)
        target = device or config.device
        on_cpu = target == "cpu" or (target == "auto" and not _cuda_available())
        if config.precision == "bf16" and on_cpu and not native_bf16:
            deferred.append(planned)
    return [r for r in runs if r not in deferred] + deferred, deferred


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# Exit codes of a training process that stopped on request (Ctrl-C, SIGTERM): not a failure.
STOPPED_CODES = (0, 128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGTERM, -signal.SIGINT)


def continue_campaign(
    campaign: Campaign,
    out: Path,
    data: str | None,
    *,
    jobs: int = 1,
    threads: int | None = None,
    wait_policy: str | None = None,
    only: tuple[str, ...] = (),
    log: Callable[[str], None] = logger.info,
    should_stop: Callable[[], bool] = lambda: False,
    python: str = sys.executable,
    poll: float = 1.0,
    device: str | None = None,
) -> str:
    """Train every unfinished run (``only``: these names), ``jobs`` at a time, each with ``threads``
    threads (default: the available cores / ``jobs``) and the OpenMP ``wait_policy``
    (``engine.threads``), on ``device`` (each run's ``--device``; None: its recipe's); returns
    ``"finished"`` (every selected run done), ``"interrupted"`` or
    ``"failed"`` (a run failed: the others went on to the end or to the stop)."""
    from ..checkpoints.rundir import git_revision
    from ..engine import precision
    from ..engine.threads import available_cores, policy_environ, policy_environment

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if wait_policy is not None:
        policy_environment(wait_policy)  # a bad policy is an error now, not at the first run
    out = Path(out)
    for name in only:
        campaign.run(name)  # unknown names are errors naming the valid ones
    prepare_folder(campaign, out, data)
    record = CampaignLog(out)
    per_job = threads or max(1, available_cores() // jobs)
    queue = [r for r in campaign.runs if (not only or r.name in only) and run_state(out / r.name) != "finished"]
    queue, deferred = order_for_host(queue, data, device, precision.cpu_has_native_bf16())
    for planned in deferred:
        log(
            f"{planned.name}: pinned to bf16, which this CPU emulates (no AVX512-BF16/AMX: ~3x slower "
            "than fp32); trained after the other runs"
        )
        record.write("deferred", run=planned.name, reason="bf16 emulated on this CPU", host=host_description())
    for planned in campaign.runs:  # finished before a crash, not yet finalized
        if run_state(out / planned.name) == "finished":
            finalize_run(out / planned.name)
    running: list[_Job] = []
    failed: list[str] = []  # a failed run is not started again here; the others go on
    last_sample = time.monotonic()
    revision = git_revision()
    try:
        while queue or running:
            while queue and len(running) < jobs and not should_stop():
                planned = queue.pop(0)
                run_dir = out / planned.name
                fd = try_lock(run_dir)
                if fd is None:
                    log(f"{planned.name}: already being trained by another process; skipped")
                    continue
                resume = (run_dir / "checkpoints" / "last.pt").is_file()
                run_data = planned.data_for(data, out)
                if planned.data_change is not None:
                    log(f"{planned.name}: data {planned.data_change} -> {run_data}")
                    planned.make_data(data, out)  # reused when already complete
                args = (
                    planned.train_args(run_data, run_dir)
                    + (["--device", device] if device else [])
                    + (["--resume"] if resume else [])
                )
                # The OpenMP wait policy is read when torch starts: it travels in the environment.
                env = {**(policy_environ(wait_policy) if wait_policy else os.environ), "OMP_NUM_THREADS": str(per_job)}
                log(
                    f"{planned.name}: {'resuming' if resume else 'starting'} ({per_job} thread(s)): "
                    f"resnetlab {shlex.join(args)}"
                )
                iteration = checkpoint_iteration(run_dir) if resume else 0
                record.write(
                    "resume" if resume else "start",
                    run=planned.name,
                    iteration=iteration,
                    git_revision=revision,
                    host=host_description(),
                    threads=per_job,
                    jobs=jobs,
                    wait_policy=wait_policy or "default",
                    load=load_average(),
                )
                log_file = open(run_dir / "train.log", "a")  # noqa: SIM115 (the child writes it; closed when it ends)
                process = subprocess.Popen(
                    [python, "-m", "resnetlab", *args],
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    pass_fds=(fd,),
                    # Its own session: a Ctrl-C in the terminal or a kill of the runner's process group
                    # reaches the runner alone, which sends the run exactly one SIGTERM. Reached by both,
                    # the run would take the runner's as a second signal and abort before its checkpoint.
                    start_new_session=True,
                )
                running.append(_Job(planned, process, fd, log_file))
            if should_stop():
                for job in running:
                    job.stop()
            time.sleep(poll)
            if time.monotonic() - last_sample >= LOAD_SAMPLE_SECONDS and running:
                last_sample = time.monotonic()
                record.write("load", runs=[j.planned.name for j in running], load=load_average())
            for job in [j for j in running if j.process.poll() is not None]:
                running.remove(job)
                if not _finish(job, out, record, log):
                    failed.append(job.planned.name)
            if should_stop() and not running:
                break
    finally:
        for job in running:  # the runner itself is going away: let each run checkpoint and stop
            job.stop()
        for job in running:
            job.process.wait()
            _finish(job, out, record, log)
    if failed:
        log(f"campaign {campaign.name}: failed: {', '.join(failed)} (see each run's train.log)")
        return "failed"
    pending = [r for r in campaign.runs if (not only or r.name in only) and run_state(out / r.name) != "finished"]
    return "interrupted" if pending else "finished"


def _finish(job: _Job, out: Path, record: CampaignLog, log: Callable[[str], None]) -> bool:
    """Book-keeping after a training process ended; False when it failed."""
    job.log_file.close()
    run_dir = out / job.planned.name
    code = job.process.returncode
    state = run_state(run_dir)
    if state == "finished":
        finalize_run(run_dir)
    iteration = checkpoint_iteration(run_dir) if state == "partial" else None
    summary = json.loads((run_dir / "summary.json").read_text()) if state == "finished" else {}
    stopped = code in STOPPED_CODES
    reason = None
    if state != "finished" and not stopped:
        train_log = run_dir / "train.log"
        lines = train_log.read_text().strip().splitlines() if train_log.is_file() else []
        reason = lines[-1] if lines else "see train.log"
    record.write(
        "finished" if state == "finished" else "stopped" if stopped else "failed",
        run=job.planned.name,
        exit_code=code,
        iteration=summary.get("iterations", iteration),
        test_error=summary.get("test_top1_error"),
        load=load_average(),
        **({"reason": reason} if reason else {}),
    )
    os.close(job.lock)
    if state == "finished":
        log(f"{job.planned.name}: finished, test error {summary.get('test_top1_error', float('nan')):.2f}%")
        return True
    if stopped:
        log(f"{job.planned.name}: stopped at iteration {iteration}; continue with the same command")
        return True
    log(f"{job.planned.name}: training failed (exit code {code}): {reason}")
    return False
