"""``resnetlab reproduce SUITE`` (one paper result per command), ``reproduce readme`` and ``plot``."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from . import add_device_argument, check_device, device_given, progress_printer, progress_tty


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..analysis.suites.registry import SUITES  # light: the suite modules import torch only when run

    p = subparsers.add_parser("reproduce", help="train (or reuse) the runs of one paper result and write its report")
    suites = p.add_subparsers(dest="suite", metavar="SUITE", required=True)
    for suite in SUITES.values():
        s = suites.add_parser(suite.name, help=suite.help, description=suite.help)
        if suite.trains:
            s.add_argument("--data", help="dataset spec, e.g. a CIFAR-10 folder (default: the built-in synthetic set)")
            s.add_argument(
                "--budget",
                type=float,
                default=1.0,
                help="fraction of the paper's 64k-iteration schedule, milestones scaled (default 1.0)",
            )
            s.add_argument("--seeds", type=int, default=1, help="runs per network, seeds 0..K-1 (default 1)")
            s.add_argument("--cache-dir", type=Path, help="decoded-dataset cache (default: ~/.cache/resnetlab)")
            s.add_argument(
                "--no-train", action="store_true", help="train nothing: report the finished runs already in --out"
            )
            add_device_argument(
                s, help="where the runs train: auto (the default: CUDA if present, else CPU), cpu, cuda or cuda:N"
            )
        s.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
        s.add_argument(
            "--models",
            nargs="+",
            default=[],
            metavar="MODEL",
            help="restrict to these networks (default: the paper's set for this suite)",
        )
        s.set_defaults(func=run_reproduce)
    s = suites.add_parser(
        "campaign",
        help="train or continue every unfinished run of a campaign (resumable at any point)",
        description="Train the runs of a campaign in order; a run stopped at any moment resumes "
        "from its last checkpoint. Stop with Ctrl-C or SIGTERM.",
    )
    s.add_argument("name", metavar="NAME", help="a shipped campaign (cifar10) or a campaign .toml file")
    s.add_argument("--data", help="dataset spec, e.g. a CIFAR-10 folder; continue a folder with the same --data")
    s.add_argument("--out", type=Path, required=True, help="campaign folder: one run directory per planned run")
    s.add_argument(
        "--jobs",
        type=int,
        help="runs trained side by side (default: one per available core, one thread each: "
        "1.32x the throughput of one 2-thread run on 2 cores, and robust next to other work; "
        "benchmarks/RESULTS.md)",
    )
    s.add_argument("--threads", type=int, help="threads per run (default: the available cores / --jobs)")
    s.add_argument("--wait-policy", help="OpenMP wait policy of each run: default, passive, active or spin:N")
    s.add_argument("--only", nargs="+", default=[], metavar="RUN", help="train only these runs")
    add_device_argument(
        s,
        help="where the runs train: auto (the default: CUDA if present, else CPU, as each "
        "run's recipe says), cpu, cuda or cuda:N (checked here, then passed to every run as --device)",
    )
    s.set_defaults(func=run_campaign)
    s = suites.add_parser("status", help="where every planned run of a campaign folder stands, with time left")
    s.add_argument("out", type=Path, metavar="DIR", help="a campaign folder (--out of `reproduce campaign`)")
    s.set_defaults(func=run_status)
    s = suites.add_parser(
        "ship", help="copy the final weights of finished full-schedule campaign runs into a weights folder"
    )
    s.add_argument("out", type=Path, metavar="DIR", help="a campaign folder")
    s.add_argument(
        "--into", type=Path, required=True, help="weights folder to write (the package's own: src/resnetlab/weights)"
    )
    s.set_defaults(func=run_ship)
    s = suites.add_parser(
        "report",
        help="the campaign's report beside the paper (Table 6, Fig. 6, precision, JPEG penalty)",
        description="Print the campaign report (Markdown); --readme puts it between the README's "
        "<!-- campaign report: begin/end --> markers, --figure also draws Fig. 6.",
    )
    s.add_argument("out", type=Path, metavar="DIR", help="a campaign folder")
    s.add_argument("--readme", type=Path, help="the README file to update in place")
    s.add_argument("--figure", type=Path, help="PNG of the degradation runs' curves (linked from the report)")
    s.set_defaults(func=run_campaign_report)
    s = suites.add_parser("readme", help="regenerate the README block between <!-- reproduce:begin/end --> markers")
    s.add_argument("results", type=Path, metavar="RESULTS_DIR", help="a --out folder of `resnetlab reproduce`")
    # Required: a default would rewrite whatever README.md the current directory happens to hold.
    s.add_argument("--readme", type=Path, required=True, help="the README file to update in place")
    s.set_defaults(func=run_readme)

    p = subparsers.add_parser("plot", help="overlay error curves of training runs")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", type=Path, default=Path("curves.png"), help="PNG to write (default curves.png)")
    p.add_argument(
        "--metric",
        action="append",
        choices=("train_error", "test_error", "val_error", "train_loss"),
        help="curve(s) to draw; repeatable (default: train_error dashed and test_error bold)",
    )
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=run_plot)


def run_campaign_report(args: argparse.Namespace) -> int:
    from ..analysis.campaign_report import campaign_report, update_readme

    figure = args.figure
    if figure is not None and args.readme is not None:
        # The README links the figure by a path relative to the README's own folder.
        figure = Path(os.path.relpath(figure.resolve(), args.readme.resolve().parent))
    text = campaign_report(args.out, figure=args.figure, link=figure)
    if args.readme is None:
        print(text)
        return 0
    changed = update_readme(args.readme, text)
    print(f"{args.readme}: campaign report {'updated' if changed else 'unchanged'}")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from ..analysis.suites import SuiteOptions, reproduce
    from ..data.datasets import default_cache_dir
    from ..engine.stop import StopFlag

    # The default (auto) is the recipes' own device: the runs' configs stay those of earlier results.
    overrides = {"device": str(args.device)} if device_given(args) else {}
    options = SuiteOptions(
        suite=args.suite,
        out=args.out,
        data=getattr(args, "data", None),
        budget=getattr(args, "budget", 1.0),
        seeds=getattr(args, "seeds", 1),
        models=tuple(args.models),
        overrides=overrides,
    )
    stop = StopFlag()
    stop.install()
    result = reproduce(
        options,
        cache_dir=getattr(args, "cache_dir", None) or default_cache_dir(),
        should_stop=stop,
        log=progress_printer(args),
        train_missing=not getattr(args, "no_train", False),
        progress_tty=progress_tty(args),  # "run k of n", then the run's own bar on a terminal
    )
    if result.status == "interrupted":
        return 128 + (stop.signal or signal.SIGINT)
    return 0


def run_campaign(args: argparse.Namespace) -> int:
    from ..analysis.campaign import load_campaign
    from ..analysis.campaign_runner import continue_campaign
    from ..engine.stop import StopFlag

    campaign = load_campaign(args.name)
    stop = StopFlag()
    stop.install()
    from ..engine.threads import available_cores

    jobs = args.jobs if args.jobs is not None else available_cores()
    # Only a device other than auto travels to the runs: with auto, each run's config is exactly
    # what the campaign plans (and what its run directory already records).
    # Checked here, once: a typo or a missing GPU would otherwise fail every run's process in turn.
    device = check_device(str(args.device)) if device_given(args) and args.device != "auto" else None
    status = continue_campaign(
        campaign,
        args.out,
        args.data,
        jobs=jobs,
        threads=args.threads,
        wait_policy=args.wait_policy,
        only=tuple(args.only),
        device=device,
        log=progress_printer(args),
        should_stop=stop,
    )
    print(f"campaign {campaign.name}: {status}; `resnetlab reproduce status {args.out}` shows every run")
    if status == "failed":
        return 1
    if status == "interrupted" and stop.signal:
        return 128 + stop.signal
    return 0


def run_status(args: argparse.Namespace) -> int:
    from ..analysis.campaign_status import format_status

    print(format_status(args.out))
    return 0


def run_ship(args: argparse.Namespace) -> int:
    from ..analysis.campaign_folder import NothingToShip, ship_finished

    def shipped(weights) -> None:
        print(f"shipped {weights.name}: test error {weights.meta['test_top1_error']:.2f}% -> {weights.file}")

    try:
        ship_finished(args.out, args.into, on_shipped=shipped)
    except NothingToShip as nothing:  # not an error: the campaign's runs may still be training
        print(nothing)
    return 0


def run_readme(args: argparse.Namespace) -> int:
    from ..analysis.suites import update_readme

    path = update_readme(args.results, args.readme)
    print(f"updated {path} from {args.results}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from ..analysis.curves import plot_runs
    from ..checkpoints.atomic import staged_output

    metrics = tuple(args.metric or ("train_error", "test_error"))
    with staged_output(args.out, overwrite=args.overwrite) as tmp:  # refuses an existing file first
        plot_runs(list(args.runs), tmp, metrics=metrics, title=args.title)
    print(f"wrote {args.out}")
    return 0
