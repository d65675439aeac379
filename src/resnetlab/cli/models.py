"""``resnetlab models`` and ``resnetlab summary``: the networks and their complexity."""

from __future__ import annotations

import argparse
import json

from . import add_set_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list every network with its complexity beside the paper's")
    p.add_argument("--family", choices=("imagenet", "cifar", "vgg"), help="only this family")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run_models)

    p = subparsers.add_parser("summary", help="parameters, multiply-adds and depth of one network")
    p.add_argument("model", help="a registered name, e.g. resnet110 (see `resnetlab models`)")
    p.add_argument("--input-size", type=int, help="square input side (default: the model's native size)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_set_argument(
        p, help="builder option, e.g. --set stride_on=3x3 --set shortcut=A (model_options.KEY as in a recipe works too)"
    )
    p.set_defaults(func=run_summary)


def parse_options(pairs: list[str]) -> dict:
    """``--set KEY=VALUE`` builder options, read as ``--set`` reads recipe keys (TOML values, bare
    words as strings); ``model_options.KEY`` is the same key as a training recipe spells it."""
    from ..engine.config_loader import parse_override

    options = {}
    for pair in pairs:
        key, value = parse_override(pair)
        options[key.removeprefix("model_options.")] = value
    return options


def _fmt_count(value: float | None, unit: float, suffix: str, digits: int = 2) -> str:
    return "-" if value is None else f"{value / unit:.{digits}f}{suffix}"


def run_summary(args: argparse.Namespace) -> int:
    from ..models import complexity

    complexity.check_input_size(args.model, args.input_size)
    row = complexity.summary_row(args.model, args.input_size, **parse_options(args.overrides))
    if args.json:
        print(json.dumps(row))
        return 0
    print(f"{row['name']}: {row['description']}")
    print(
        f"  parameters     {row['params']:,}"
        + (f"   (paper {_fmt_count(row['paper_params'], 1e6, 'M')})" if row["paper_params"] else "")
    )
    print(
        f"  multiply-adds  {row['macs'] / 1e9:.3f} G at {row['input_size']}x{row['input_size']}"
        + (f"   (paper {row['paper_macs'] / 1e9:.1f} G)" if row["paper_macs"] else "")
    )
    print(f"  depth          {row['depth']} weighted layers")
    return 0


def run_models(args: argparse.Namespace) -> int:
    from ..models import complexity, list_models

    names = [n for n in list_models(args.family) if n not in ("cifar_resnet", "cifar_plain")]
    rows = [complexity.summary_row(name) for name in names]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    header = f"{'model':<11} {'family':<8} {'depth':>5} {'params':>12} {'paper':>8} {'mult-adds':>10} {'paper':>7} {'input':>5}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['name']:<11} {r['family']:<8} {r['depth']:>5} {r['params']:>12,} "
            f"{_fmt_count(r['paper_params'], 1e6, 'M'):>8} {r['macs'] / 1e9:>9.3f}G "
            f"{_fmt_count(r['paper_macs'], 1e9, 'G', 1):>7} {r['input_size']:>5}"
        )
    print("\nparams: this build (ImageNet nets: option B; CIFAR nets: option A, as in the paper).")
    print("mult-adds: one image at the native input; ImageNet bottlenecks use the paper's v1 stride (1x1).")
    print("Other depths: build_model('cifar_resnet', depth=6n+2); all sizes: resnetlab summary NAME --input-size N.")
    return 0
