"""CPU threads: how many, and how idle OpenMP threads wait.

Two levers for a machine shared with other work (issue 13):

- the intra-op thread count, chosen from the cores this process may actually run on (a container
  or ``taskset`` can allow fewer than ``os.cpu_count()`` reports);
- the OpenMP wait policy. PyTorch's CPU kernels run in an OpenMP pool (the Linux wheels bundle
  GNU libgomp). Between parallel regions an idle thread spins for a while before it sleeps; when
  another process holds its core, the spinning thread and the thread it waits for take turns on
  that core and a 2-thread step can run several times slower. ``OMP_WAIT_POLICY=PASSIVE`` sleeps
  at once (costs wake-up latency on a quiet machine); ``GOMP_SPINCOUNT=N`` bounds the spin
  (libgomp's default is 300,000 iterations: ``OMP_DISPLAY_ENV=VERBOSE`` prints what it read).

The OpenMP runtime reads these variables once, when the library is loaded, which happens when
``torch`` is imported. Setting them later changes nothing, so :func:`set_wait_policy` refuses
(returns False) once torch is in ``sys.modules``; callers that must change the policy of an
already-running process have to start a subprocess instead.

This module imports torch only inside :func:`configure_threads`, so it can be imported (and the
policy set) first.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

# Variables owned by the wait policy; cleared before a new policy is written so that policies
# never mix (e.g. a PASSIVE left over next to a spin count).
POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def available_cores() -> int:
    """Cores this process may run on: its affinity mask where the OS has one, else the CPU count."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:  # some sandboxes refuse the call
            pass
    return max(1, os.cpu_count() or 1)


def policy_environment(wait_policy: str) -> dict[str, str]:
    """The environment variables a wait policy sets.

    ``"default"``: none (the runtime's own behaviour); ``"passive"`` / ``"active"``:
    ``OMP_WAIT_POLICY``; ``"spin:N"`` (N >= 0): ``GOMP_SPINCOUNT=N``, idle threads spin N
    iterations and then sleep (libgomp; other runtimes ignore it).
    """
    policy = wait_policy.strip().lower()
    if policy == "default":
        return {}
    if policy in ("passive", "active"):
        return {"OMP_WAIT_POLICY": policy.upper()}
    if policy.startswith("spin:"):
        count = policy[len("spin:") :]
        if count.isdigit():
            return {"GOMP_SPINCOUNT": str(int(count))}
    raise ValueError(f"wait policy must be 'default', 'passive', 'active' or 'spin:N', got {wait_policy!r}")


def torch_imported(modules: MutableMapping | None = None) -> bool:
    return "torch" in (sys.modules if modules is None else modules)


def set_wait_policy(
    wait_policy: str,
    *,
    environ: MutableMapping[str, str] | None = None,
    modules: MutableMapping | None = None,
) -> bool:
    """Write the OpenMP wait policy into the environment if torch is not imported yet.

    Returns True when the policy will take effect (environment written before torch loads its
    OpenMP runtime), False when torch was already imported and nothing was changed.
    ``environ``/``modules`` default to ``os.environ``/``sys.modules`` (injectable for tests).
    """
    values = policy_environment(wait_policy)  # validate first, even when it would be too late
    if torch_imported(modules):
        return False
    env = os.environ if environ is None else environ
    for key in POLICY_VARIABLES:
        env.pop(key, None)
    env.update(values)
    return True


def policy_environ(wait_policy: str, base: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with the policy applied: for a subprocess."""
    env = dict(os.environ if base is None else base)
    for key in POLICY_VARIABLES:
        env.pop(key, None)
    env.update(policy_environment(wait_policy))
    return env


def cpu_times(stat_text: str) -> tuple[int, int]:
    """``(busy, total)`` jiffies of all CPUs from the text of ``/proc/stat`` (its ``cpu`` line;
    iowait counts as idle, steal as busy: a core another guest holds is not ours)."""
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
            idle = values[3] + values[4]
            return sum(values) - idle, sum(values)
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def busy_cores(seconds: float = 0.25, read: Callable[[], str] | None = None) -> float | None:
    """How many cores other work keeps busy, sampled over ``seconds`` (this process sleeps
    meanwhile); None where ``/proc/stat`` cannot be read (not Linux)."""
    read = read or (lambda: Path("/proc/stat").read_text())
    try:
        busy0, total0 = cpu_times(read())
        time.sleep(seconds)
        busy1, total1 = cpu_times(read())
    except (OSError, ValueError):
        return None
    if total1 <= total0:
        return None
    return (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1)


BUSY_CORES = 0.75  # other work holding this much of a core counts as a busy machine


def busy_at_start(environ: MutableMapping[str, str] | None = None, sample: Callable[[], float | None] | None = None):
    """The cores other work keeps busy as a run starts, where it matters and can still be acted on:
    several cores, threads and wait policy left to us (no ``OMP_NUM_THREADS`` or policy variable),
    one process (torchrun sets ``WORLD_SIZE``). None otherwise, or on a quiet machine."""
    env = os.environ if environ is None else environ
    if available_cores() < 2 or "OMP_NUM_THREADS" in env or any(key in env for key in POLICY_VARIABLES):
        return None
    if int(env.get("WORLD_SIZE", "1") or 1) > 1:
        return None
    busy = (sample or busy_cores)()
    return busy if busy is not None and busy >= BUSY_CORES else None


def contention_warning(threads: int, busy: float, passive: bool) -> str:
    """What a multi-thread run started next to busy work says. Its OpenMP threads would spin at
    every barrier while another process holds their core (``benchmarks/RESULTS.md``: a 2-thread
    run next to one busy process kept 30% of its speed with the default policy); ``passive``: they
    now sleep instead (the passive policy kept 46%, and only costs on a quiet machine, so it is
    chosen only here). The wait policy changes no result; the thread count would change the last
    bits, and a run resumes bitwise only with its own, so that stays the user's choice."""
    free = max(1, round(threads - busy))
    how = (
        "its threads sleep while they wait (OMP_WAIT_POLICY=PASSIVE) instead of spinning"
        if passive
        else "its threads spin while they wait for each other"
    )
    return (
        f"about {busy:.1f} of the CPU cores are busy with other work: {how}; --threads {free} is usually "
        "faster on a shared machine (benchmarks/RESULTS.md)"
    )


@dataclass(frozen=True)
class ThreadSettings:
    threads: int  # intra-op threads torch now uses
    wait_policy: str | None  # the policy asked for (None: not asked)
    wait_policy_applied: bool  # False when asked for after torch had been imported


def configure_threads(threads: int | None = None, wait_policy: str | None = None) -> ThreadSettings:
    """Set the wait policy (if still possible), then torch's intra-op thread count.

    ``threads=None`` uses :func:`available_cores`. Call it before the first parallel torch
    operation; the wait policy only takes effect if this runs before ``import torch``.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    applied = set_wait_policy(wait_policy) if wait_policy is not None else False
    import torch  # after the policy: this import loads the OpenMP runtime

    count = threads if threads is not None else available_cores()
    torch.set_num_threads(count)
    return ThreadSettings(torch.get_num_threads(), wait_policy, applied)
