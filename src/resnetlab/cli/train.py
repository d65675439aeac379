"""``resnetlab train`` and ``resnetlab demo``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import UserError, add_device_argument, add_set_argument, device_given, progress_printer, progress_tty


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a network with one of the paper's recipes")
    p.add_argument(
        "--recipe",
        default="cifar10-resnet20",
        help="a shipped recipe (see `resnetlab recipes`) or a .toml file (default: cifar10-resnet20)",
    )
    p.add_argument(
        "--data",
        help="dataset: a CIFAR folder (python/binary), an image folder with train/ and "
        "test/, or 'synthetic' (default: the recipe's, else the built-in synthetic set)",
    )
    p.add_argument("--out", help="run directory (default: runs/RECIPE)")
    p.add_argument("--iterations", type=int, help="override the recipe's iterations (milestones unchanged)")
    p.add_argument("--budget", type=float, help="train on this fraction of the schedule, milestones scaled too")
    p.add_argument("--seed", type=int, help="random seed")
    add_device_argument(
        p,
        help="auto (the default: CUDA if present, else CPU; a recipe's own device key stands "
        "unless --device is given), cpu, cuda or cuda:N",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_set_argument(p, help="override a recipe key, e.g. --set lr=0.05 --set milestones=[100,200]")
    p.add_argument("--cache-dir", type=Path, help="decoded-dataset cache (default: ~/.cache/resnetlab)")
    p.add_argument("--threads", type=int, help="CPU threads (default: the cores this process may use)")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("recipes", help="list the shipped training recipes (classification and detection)")
    p.set_defaults(func=run_recipes)

    p = subparsers.add_parser(
        "demo", help="train ResNet-20 on the built-in synthetic set (about two minutes on 2 cores)"
    )
    p.add_argument(
        "--out",
        default="runs/demo",
        help="run directory (default runs/demo); a previous demo run there is replaced, "
        "any other non-empty directory is refused",
    )
    p.add_argument(
        "--iterations",
        type=positive_int,
        metavar="N",
        help="train N iterations instead of the demo recipe's own, with its milestones, evaluations, log lines "
        "and checkpoints at the same fractions of the run; the final test evaluation and result line stay "
        "(e.g. --iterations 20 for a smoke test)",
    )
    p.set_defaults(func=run_demo)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a usage error, exit status 2, otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def resolve_config(args: argparse.Namespace):
    from ..engine.config import resolve_recipe

    given = {"data": args.data, "iterations": args.iterations, "seed": args.seed}
    changes = {key: value for key, value in given.items() if value is not None}
    if device_given(args):  # the default (auto) leaves the recipe's device key as it is
        changes["device"] = str(args.device)
    return resolve_recipe(args.recipe, budget=args.budget, changes=changes, overrides=args.overrides)


def run_train(args: argparse.Namespace) -> int:
    # Before anything imports torch: the OpenMP wait policy is read when torch loads its runtime.
    from ..engine.threads import busy_at_start, set_wait_policy

    loaded = sys.modules.get("torch")  # in-process callers (tests, notebooks) may have set threads
    single = loaded is not None and loaded.get_num_threads() < 2
    busy = busy_at_start() if args.threads is None and not single else None
    passive = busy is not None and set_wait_policy("passive")
    from ..data.datasets import default_cache_dir
    from ..devices import resolve_device
    from ..engine.distributed import DistInfo, init, shutdown
    from ..engine.run_folder import check_fresh_out
    from ..engine.steps import TrainingDiverged
    from ..engine.stop import StopFlag
    from ..engine.train import train

    config = resolve_config(args)
    if args.threads is not None:
        from ..engine.threads import configure_threads

        configure_threads(args.threads)
    recipe_name = Path(args.recipe).stem
    out = Path(args.out or f"runs/{recipe_name}")
    # Before init(): every rank checks the directory before any rank has written to it.
    if not args.resume:
        check_fresh_out(out)
    elif (out / "checkpoints" / "last.pt").is_file():
        from ..checkpoints.loading import check_checkpoint_file

        check_checkpoint_file(out / "checkpoints" / "last.pt")  # one line for a damaged checkpoint
    dist_info = DistInfo.from_env(dict(os.environ))
    init(dist_info, resolve_device(config.device))
    if busy is not None and resolve_device(config.device).type == "cpu":
        import torch

        from ..engine.threads import contention_warning

        if torch.get_num_threads() > 1:  # one thread has nobody to wait for
            logging.getLogger("resnetlab.cli").warning(contention_warning(torch.get_num_threads(), busy, passive))
    stop = StopFlag()
    stop.install()
    log = (lambda line: None) if not dist_info.is_main else progress_printer(args)
    try:
        result = train(
            config,
            out,
            resume=args.resume,
            cache_dir=args.cache_dir or default_cache_dir(),
            should_stop=stop,
            log=log,
            progress_tty=progress_tty(args) if dist_info.is_main else False,
            dist_info=dist_info,
            argv=sys.argv,
        )
    except TrainingDiverged as error:
        raise UserError(str(error)) from None
    finally:
        shutdown(dist_info)
    return stop.exit_status() if result.status == "interrupted" else 0


def run_recipes(args: argparse.Namespace) -> int:
    from ..detection.config import list_recipes as detection_recipes
    from ..detection.config import load_recipe as load_detection_recipe
    from ..engine.config import load_recipe, recipe_names

    print("classification (resnetlab train --recipe NAME):")
    for name in recipe_names():
        c = load_recipe(name)
        print(
            f"  {name:<22} {c.model:<11} {c.iterations:>6} it  batch {c.batch_size:<4} lr {c.lr:g}"
            f"{' warm-up ' + format(c.warmup_lr, 'g') if c.warmup_lr else ''}  milestones {list(c.milestones)}"
        )
    print("detection (resnetlab detect train --recipe NAME):")
    for name in detection_recipes():
        c = load_detection_recipe(name)
        print(
            f"  {name:<22} {c.backbone:<11} {c.iterations:>6} it  batch {c.images_per_batch:<4} lr {c.lr:g}"
            f"  steps {list(c.lr_steps)}  on {c.dataset}"
        )
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from ..engine.demo import demo_config, prepare_demo_out
    from ..engine.train import train

    out = Path(args.out)
    config = demo_config(args.iterations)
    prepare_demo_out(out)
    log = progress_printer(args)
    log("resnetlab demo: ResNet-20 (He et al. 2016, Sec. 4.2) on the built-in synthetic 10-class set,")
    log(f"the paper's recipe on a {config.iterations}-iteration budget (lr 0.1, /10 at {list(config.milestones)}).\n")
    result = train(config, out, cache_dir=None, log=log, progress_tty=progress_tty(args), argv=sys.argv)
    s = result.summary
    print(
        f"\nResNet-20 test error on the synthetic set: {s['test_top1_error']:.2f}% "
        f"(chance: 90%), {s['images_per_second']:.0f} training images/s."
    )
    print(f"Next: resnetlab predict {out} IMAGE | resnetlab export {out} --format onnx --out resnet20.onnx")
    return 0
