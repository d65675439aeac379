"""``resnetlab detect train|eval|predict``: Faster R-CNN on a ResNet (Sec. 4.3 of the paper)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import (
    add_device_argument,
    add_set_argument,
    check_device,
    device_given,
    progress_printer,
    progress_tty,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..engine.config_loader import shipped_names  # light: no torch

    p = subparsers.add_parser("detect", help="object detection: Faster R-CNN with a ResNet backbone (C4)")
    sub = p.add_subparsers(dest="detect_command", metavar="ACTION", required=True)

    t = sub.add_parser("train", help="train a detector; without --data, on the built-in synthetic shapes")
    t.add_argument(
        "--recipe",
        default="synthetic-resnet18",
        help=f"one of {', '.join(shipped_names('recipes/detection'))} or a .toml path",
    )
    t.add_argument("--data", help="VOCdevkit (VOC) or COCO root; omit for the synthetic set")
    t.add_argument("--out", default=None, help="run directory (default runs/detect-<recipe>)")
    t.add_argument("--iterations", type=int, help="override the recipe's iterations")
    add_set_argument(t, help="override a recipe key, e.g. --set lr=0.002 --set lr_steps=[450] --set precision=bf16")
    t.add_argument("--overwrite", action="store_true", help="replace a previous detection run in --out")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_device_argument(
        t,
        help="auto (the default: CUDA if present, else CPU; a recipe's own device key stands "
        "unless --device is given), cpu, cuda or cuda:N",
    )
    t.set_defaults(func=run_train)

    e = sub.add_parser("eval", help="VOC mAP@0.5 and COCO AP of a checkpoint on its recipe's test set")
    e.add_argument("checkpoint", help="checkpoint file or run directory")
    e.add_argument("--data", help="dataset root (omit for a synthetic-set checkpoint)")
    e.add_argument("--limit", type=int, help="only the first N test images")
    add_device_argument(e)
    e.set_defaults(func=run_eval)

    d = sub.add_parser("predict", help="detect objects in images: JSON boxes and annotated copies")
    d.add_argument("checkpoint", help="checkpoint file or run directory")
    d.add_argument("images", nargs="+", help="image files")
    d.add_argument("--out", default="detections", help="folder for <name>.json and <name>.png")
    d.add_argument("--threshold", type=float, default=0.5, help="lowest score drawn and written")
    d.add_argument("--overwrite", action="store_true", help="replace existing <name>.json/.png in --out")
    add_device_argument(d)
    d.set_defaults(func=run_predict)


def resolve_config(args: argparse.Namespace):
    """The recipe with ``--iterations``, ``--device`` and the ``--set`` items applied, in that order."""
    from ..detection.config import apply_overrides, load_recipe

    changes = {}
    if args.iterations is not None:
        changes["iterations"] = args.iterations
    if device_given(args):  # the default (auto) leaves the recipe's device key as it is
        changes["device"] = str(args.device)
    return apply_overrides(load_recipe(args.recipe, changes), args.overrides)


def run_train(args: argparse.Namespace) -> int:
    from ..detection.run_folder import prepare_train_out
    from ..detection.train import train_detector
    from ..engine.stop import StopFlag

    config = resolve_config(args)
    if config.dataset != "synthetic" and args.data is None:
        raise ValueError(f"recipe {config.name} trains on {config.dataset}: give --data DIR")
    out = Path(args.out or f"runs/detect-{config.name}")
    if not args.resume:
        prepare_train_out(out, args.overwrite)
    stop = StopFlag()
    stop.install()
    results = train_detector(
        config,
        args.data,
        out,
        log=progress_printer(args),
        resume=args.resume,
        should_stop=stop,
        progress_tty=progress_tty(args),
        argv=sys.argv,
    )
    if results.get("status") == "interrupted":
        print(f"stopped at iteration {results['iterations']}; continue with --resume --out {out}", file=sys.stderr)
        return stop.exit_status()
    print(json.dumps({k: v for k, v in results.items() if k != "ap50_per_class"}))
    print(f"run directory: {out}")
    return 0


def _load_detector(path: str, device: str = "cpu"):
    """``load_detector`` after a one-line check that the file is a readable checkpoint at all."""
    from ..checkpoints.loading import check_checkpoint_file
    from ..detection.pipeline import load_detector

    if Path(path).is_file():
        check_checkpoint_file(path)
    return load_detector(path, device)


def run_eval(args: argparse.Namespace) -> int:
    from ..detection.pipeline import build_dataset, evaluate_detector

    detector = _load_detector(args.checkpoint, check_device(args.device))
    dataset = build_dataset(detector.config, args.data, train=False)
    results = evaluate_detector(detector, dataset, args.limit, progress=not args.quiet)
    print(json.dumps(results))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..detection.predict import prediction_outputs, save_detections

    device = check_device(args.device)
    out = Path(args.out)
    outputs = prediction_outputs(args.images, out, args.overwrite)
    detector = _load_detector(args.checkpoint, device)
    out.mkdir(parents=True, exist_ok=True)
    for path, (json_path, png_path) in zip(args.images, outputs):
        count = save_detections(detector, path, json_path, png_path, args.threshold, args.overwrite)
        print(f"{path}: {count} objects -> {json_path}, .png")
    return 0
