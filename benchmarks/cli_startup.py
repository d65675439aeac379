"""Start-up time of the command line: ``resnetlab --help``, ``resnetlab --version`` and
``resnetlab COMMAND --help`` for every command and sub-action (``weights import``, ``detect train``,
...), each the median wall time of N fresh processes, against a target of 0.3 s.

    .venv/bin/python benchmarks/cli_startup.py [--repeats 5] [--target 0.3] [--json PATH]

The commands are read from the parser itself (``resnetlab.cli.build_parser``), so a new command is
timed without editing this file. Every process is a new interpreter running the installed
``resnetlab`` script (``python -m resnetlab`` where there is none), as a user's shell starts it.
Runs go round-robin over the commands, so a burst of load elsewhere spreads over all of them
instead of failing one; one untimed pass first fills the file cache. Measure on an idle machine:
the host and its load average before and after are printed with the table (and kept in the JSON),
since a busy CPU slows every start. Exit status 1 if any median misses the target.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import benchlib  # beside this file; imports no torch

TARGET_SECONDS = 0.3  # issue 15, "A CLI that is fast and consistent": the fast paths answer at once
DEFAULT_REPEATS = 5


def command_words(parser: argparse.ArgumentParser | None = None) -> list[tuple[str, ...]]:
    """Every command and sub-action of the ``resnetlab`` parser, in ``--help`` order: ``("train",)``,
    ..., ``("weights",)``, ``("weights", "import")``, ... (an alias is listed once, by its name)."""
    if parser is None:
        from resnetlab.cli import build_parser  # light: building the parser imports no torch

        parser = build_parser()
    found: list[tuple[str, ...]] = []
    seen: set[int] = set()

    def walk(node: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        for action in node._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if id(sub) in seen:
                        continue
                    seen.add(id(sub))
                    found.append(words + (name,))
                    walk(sub, words + (name,))

    walk(parser, ())
    return found


def invocations(commands: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The argument lists to time: the two top-level fast paths, then ``--help`` of each command."""
    return [("--help",), ("--version",)] + [words + ("--help",) for words in commands]


def resnetlab_command() -> list[str]:
    """The console script of this interpreter's environment, else the one on PATH, else ``-m``."""
    beside = Path(sys.executable).parent / "resnetlab"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("resnetlab")
    return [found] if found else [sys.executable, "-m", "resnetlab"]


def time_once(argv: Sequence[str]) -> float:
    """Wall seconds of one fresh process; a failing command is an error, not a fast time."""
    start = time.perf_counter()
    result = subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return elapsed


def measure(
    runs: Sequence[tuple[str, ...]],
    repeats: int,
    target: float,
    prefix: Sequence[str],
    timer: Callable[[Sequence[str]], float] = time_once,
    warmup: bool = True,
) -> list[dict]:
    """Median, min and max seconds of each argument list over ``repeats`` round-robin passes."""
    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {repeats}")
    if warmup:
        for args in runs:
            timer([*prefix, *args])
    times: dict[tuple[str, ...], list[float]] = {args: [] for args in runs}
    for _ in range(repeats):
        for args in runs:
            times[args].append(timer([*prefix, *args]))
    results = []
    for args, seconds in times.items():
        median = statistics.median(seconds)
        results.append(
            {
                "command": " ".join(("resnetlab",) + args),
                "median_seconds": median,
                "min_seconds": min(seconds),
                "max_seconds": max(seconds),
                "runs_seconds": seconds,
                "pass": median <= target,
            }
        )
    return results


def table(results: Sequence[dict], target: float) -> str:
    width = max(len("command"), *(len(r["command"]) for r in results))
    lines = [f"{'command':<{width}}  median     min     max  target {target:.2f} s"]
    for r in results:
        verdict = "PASS" if r["pass"] else "FAIL"
        lines.append(
            f"{r['command']:<{width}}  {r['median_seconds']:6.3f}  {r['min_seconds']:6.3f}  "
            f"{r['max_seconds']:6.3f}  {verdict}"
        )
    passed = sum(r["pass"] for r in results)
    lines.append(f"{passed}/{len(results)} within {target:.2f} s")
    return "\n".join(lines)


def describe_host(host: dict) -> str:
    return f"{host['cpu']}, {host['cpus']} CPUs (os.cpu_count), Python {host['python']}"


def describe_load(load: list[float] | None) -> str:
    return "unavailable" if load is None else " ".join(f"{v:.2f}" for v in load) + " (1, 5, 15 min)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks/cli_startup.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help=f"runs per command (default {DEFAULT_REPEATS})")
    p.add_argument("--target", type=float, default=TARGET_SECONDS, help=f"seconds (default {TARGET_SECONDS})")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results here as JSON")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.target <= 0:
        p.error(f"--target must be positive, got {args.target}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prefix = resnetlab_command()
    runs = invocations(command_words())
    host, load_before = benchlib.host_info(), benchlib.load_average()
    print(f"resnetlab start-up: {len(runs)} invocations, median of {args.repeats} fresh process(es) each")
    print(f"running: {' '.join(prefix)}")
    print(f"host: {describe_host(host)}")
    print(f"load average before: {describe_load(load_before)}", flush=True)
    results = measure(runs, args.repeats, args.target, prefix)
    load_after = benchlib.load_average()
    print(table(results, args.target))
    print(f"load average after: {describe_load(load_after)}")
    if args.json is not None:
        report = {
            "target_seconds": args.target,
            "repeats": args.repeats,
            "command": prefix,
            "host": host,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "results": results,
            "all_pass": all(r["pass"] for r in results),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
