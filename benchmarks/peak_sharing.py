"""The machine-sharing sections of ``peak.py``: training next to a busy process under each OpenMP
wait policy (``--contended``), and N one-thread runs side by side against one N-thread run
(``--jobs-compare``), each candidate in its own subprocess (``benchlib.run_worker``); plus the
number formats of peak.py's tables."""

from __future__ import annotations

import benchlib  # beside this file


def pct(images_per_second: float | None, flop: float, peak_gflops: float) -> str:
    if images_per_second is None:
        return "-"
    return f"{100 * images_per_second * flop / (peak_gflops * 1e9):.1f}%"


def rate(value: float | None) -> str:
    return "failed" if value is None else f"{value:.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def contended_section(args, report: dict, flop: float, peak: float) -> None:
    """Each candidate quiet, then next to one busy process; all as fresh subprocesses."""
    candidates = [(policy, args.threads) for policy in args.policies] + [("default", 1)]
    rows = []
    for policy, threads in candidates:
        command = benchlib.worker_command(
            args.contended_model,
            threads=threads,
            wait_policy=policy,
            iterations=args.iterations,
            warmup=args.warmup,
            seconds=args.seconds,
            data=args.data,
        )
        quiet = benchlib.run_worker(command, args.seconds, contended=False)
        busy = benchlib.run_worker(command, args.seconds, contended=True)
        rows.append({"wait_policy": policy, "threads": threads, "quiet": quiet, "contended": busy})
    report["contended"] = rows
    base = rows[0]["quiet"]["images_per_second"]  # today's behaviour: default policy, all threads
    print(
        f"\n{args.contended_model} engine training, quiet vs next to one busy process (pure-Python loop); "
        f"each row a fresh subprocess; '{args.policies[0]}' at {args.threads} threads is the reference"
    )
    print(
        f"{'wait policy':<14} {'threads':>7} {'quiet img/s':>11} {'busy img/s':>10} {'busy/quiet':>10} "
        f"{'busy/ref quiet':>14} {'quiet/ref':>9} {'busy %peak':>10}"
    )
    for row in rows:
        q, b = row["quiet"]["images_per_second"], row["contended"]["images_per_second"]
        print(
            f"{row['wait_policy']:<14} {row['threads']:>7} {rate(q):>11} {rate(b):>10} {ratio(b, q):>10} "
            f"{ratio(b, base):>14} {ratio(q, base):>9} {pct(b, flop, peak):>10}"
        )
        for name in ("quiet", "contended"):
            part = row[name]
            if "error" in part:
                print(f"  {name}: {part['error']}")
            elif not part.get("wait_policy_applied", True):
                print(f"  {name}: wait policy NOT applied (torch imported too early)")
            elif part.get("stopped_by_deadline"):
                print(
                    f"  {name}: stopped at the {args.seconds:.0f} s deadline after {part['iterations']} timed iterations"
                )


def jobs_section(args, report: dict, flop: float, peak: float) -> None:
    """``n`` concurrent 1-thread runs (aggregate images/s) against one ``n``-thread run."""
    n = args.threads
    command = lambda threads: benchlib.worker_command(
        args.contended_model,
        threads=threads,
        wait_policy="default",
        iterations=args.iterations,
        warmup=args.warmup,
        seconds=args.seconds,
        data=args.data,
    )
    single = benchlib.run_worker(command(n), args.seconds, contended=False)
    procs = []
    try:
        procs = [benchlib.start_worker(command(1)) for _ in range(n)]  # started together: they overlap
        parts = [benchlib.finish_worker(p, timeout=120 + args.seconds) for p in procs]
    finally:
        for p in procs:
            benchlib.stop_process(p)
    rates = [p["images_per_second"] for p in parts]
    aggregate = None if None in rates else sum(rates)
    report["jobs"] = {"single": single, "parallel": parts, "aggregate_images_per_second": aggregate}
    s = single["images_per_second"]
    print(f"\n{args.contended_model} engine training: one {n}-thread run vs {n} 1-thread runs side by side")
    print(f"  one {n}-thread run:       {rate(s):>6} img/s  {pct(s, flop, peak):>6} of bf16 peak")
    print(
        f"  {n} x 1-thread, aggregate: {rate(aggregate):>6} img/s  {pct(aggregate, flop, peak):>6} of bf16 peak "
        f"(each: {', '.join(rate(r) for r in rates)}); ratio {ratio(aggregate, s)}"
    )
    for part in [single, *parts]:
        if "error" in part:
            print(f"  {part['error']}")
