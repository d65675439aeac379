"""``resnetlab eval``: top-1/top-5 error of one checkpoint or an ensemble under a test protocol."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..evaluation.protocol_names import MULTISCALE_SIZES, PROTOCOLS
from . import add_device_argument, check_device, progress_tty


def _scales(text: str) -> tuple[int, ...]:
    try:
        scales = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales must be comma-separated integers, got {text!r}") from None
    if not scales or min(scales) < 1:
        raise argparse.ArgumentTypeError(f"scales must be positive, got {text!r}")
    return scales


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="test error of checkpoints (several: an ensemble) with 1-crop, 10-crop or multi-scale testing",
    )
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="checkpoint files or run directories")
    p.add_argument(
        "--data",
        help="image folder (ImageNet layout or CIFAR JPEG folders) or CIFAR pickle/binary "
        "(default: the built-in synthetic set)",
    )
    p.add_argument("--split", choices=("test", "val", "train"), help="default: val if the folder has one, else test")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="default: single for CIFAR checkpoints (Sec. 4.2), 10crop for ImageNet ones (Tables 2-3)",
    )
    p.add_argument(
        "--scales",
        type=_scales,
        default=MULTISCALE_SIZES,
        help="shorter sides for multiscale (default: 224,256,384,480,640)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("--workers", type=int, default=0, help="decoding worker processes (default 0)")
    p.add_argument(
        "--on-error",
        choices=("fail", "skip"),
        default="fail",
        help="unreadable image files: stop (default) or skip and count them",
    )
    p.add_argument("--limit", type=int, help="evaluate only N evenly spaced images (quick checks)")
    add_device_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from ..checkpoints.loading import check_checkpoint_file
    from ..evaluation.report import evaluate_checkpoints

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be positive, got {args.limit}")
    device = check_device(args.device)
    for checkpoint in map(Path, args.checkpoints):  # one clear line for a text, empty or truncated file
        if checkpoint.is_file() and checkpoint.suffix != ".safetensors":
            check_checkpoint_file(checkpoint)
    report = evaluate_checkpoints(
        args.checkpoints,
        args.data,
        split=args.split,
        protocol=args.protocol,
        batch_size=args.batch_size,
        workers=args.workers,
        on_error=args.on_error,
        scales=args.scales,
        limit=args.limit,
        device=device,
        # Images done of the total on stderr (a bar on a terminal), so --json output stays one line.
        log=None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True)),
        progress_tty=progress_tty(args),
    )
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    models = "1 model" if len(report.checkpoints) == 1 else f"ensemble of {len(report.checkpoints)} models"
    print(f"{models}, protocol {report.protocol}, {report.data} [{report.split}]")
    print(f"  images         {report.counts.n} ({len(report.skipped)} skipped)")
    print(f"  top-1 error    {report.top1_error:.2f}%")
    print(f"  top-5 error    {report.top5_error:.2f}%")
    for path, reason in report.skipped[:10]:
        print(f"  skipped {path}: {reason}")
    return 0
