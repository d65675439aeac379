"""``resnetlab detect train|eval|predict``: Faster R-CNN on a ResNet (Sec. 4.3 of the paper)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.images import decode_image
from ..detection.config import list_recipes, load_recipe, parse_overrides
from ..detection.pipeline import build_dataset, draw_detections, evaluate_detector, load_detector
from ..detection.train import train_detector


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("detect", help="object detection: Faster R-CNN with a ResNet backbone (C4)")
    sub = p.add_subparsers(dest="detect_command", metavar="ACTION", required=True)

    t = sub.add_parser("train", help="train a detector; without --data, on the built-in synthetic shapes")
    t.add_argument("--recipe", default="synthetic-resnet18", help=f"one of {', '.join(list_recipes())} or a .toml path")
    t.add_argument("--data", help="VOCdevkit (VOC) or COCO root; omit for the synthetic set")
    t.add_argument("--out", default=None, help="run directory (default runs/detect-<recipe>)")
    t.add_argument("--iterations", type=int, help="override the recipe's iterations")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any recipe key")
    t.set_defaults(func=run_train)

    e = sub.add_parser("eval", help="VOC mAP@0.5 and COCO AP of a checkpoint on its recipe's test set")
    e.add_argument("checkpoint", help="checkpoint file or run directory")
    e.add_argument("--data", help="dataset root (omit for a synthetic-set checkpoint)")
    e.add_argument("--limit", type=int, help="only the first N test images")
    e.set_defaults(func=run_eval)

    d = sub.add_parser("predict", help="detect objects in images: JSON boxes and annotated copies")
    d.add_argument("checkpoint", help="checkpoint file or run directory")
    d.add_argument("images", nargs="+", help="image files")
    d.add_argument("--out", default="detections", help="folder for <name>.json and <name>.png")
    d.add_argument("--threshold", type=float, default=0.5, help="lowest score drawn and written")
    d.set_defaults(func=run_predict)


def run_train(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.set)
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    config = load_recipe(args.recipe, overrides)
    if config.dataset != "synthetic" and args.data is None:
        raise ValueError(f"recipe {config.name} trains on {config.dataset}: give --data DIR")
    out = Path(args.out or f"runs/detect-{config.name}")
    results = train_detector(config, args.data, out)
    print(json.dumps({k: v for k, v in results.items() if k != "ap50_per_class"}))
    print(f"run directory: {out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    detector = load_detector(args.checkpoint)
    dataset = build_dataset(detector.config, args.data, train=False)
    results = evaluate_detector(detector, dataset, args.limit)
    print(json.dumps(results))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    detector = load_detector(args.checkpoint)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        image = decode_image(path)
        det = detector.predict([image])[0]
        keep = det["scores"] >= args.threshold
        rows = [{"box": [round(v, 2) for v in box], "score": round(score, 4), "label": detector.classes[label - 1]}
                for box, score, label in zip(det["boxes"][keep].tolist(), det["scores"][keep].tolist(),
                                             det["labels"][keep].tolist())]
        stem = Path(path).stem
        (out / f"{stem}.json").write_text(json.dumps({"image": str(path), "detections": rows}, indent=2) + "\n")
        draw_detections(image, det, detector.classes, args.threshold).save(out / f"{stem}.png")
        print(f"{path}: {len(rows)} objects -> {out / stem}.json, .png")
    return 0
