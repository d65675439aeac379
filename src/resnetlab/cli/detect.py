"""``resnetlab detect train|eval|predict``: Faster R-CNN on a ResNet (Sec. 4.3 of the paper)."""

from __future__ import annotations

import argparse
import json
import shutil
from importlib import resources
from pathlib import Path

from . import UserError, add_device_argument, check_device, progress_printer


def _recipe_names() -> list[str]:
    """The shipped detection recipes, without importing the detection package (torch)."""
    folder = resources.files("resnetlab") / "recipes" / "detection"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("detect", help="object detection: Faster R-CNN with a ResNet backbone (C4)")
    sub = p.add_subparsers(dest="detect_command", metavar="ACTION", required=True)

    t = sub.add_parser("train", help="train a detector; without --data, on the built-in synthetic shapes")
    t.add_argument("--recipe", default="synthetic-resnet18", help=f"one of {', '.join(_recipe_names())} or a .toml path")
    t.add_argument("--data", help="VOCdevkit (VOC) or COCO root; omit for the synthetic set")
    t.add_argument("--out", default=None, help="run directory (default runs/detect-<recipe>)")
    t.add_argument("--iterations", type=int, help="override the recipe's iterations")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any recipe key")
    t.add_argument("--overwrite", action="store_true", help="replace a previous detection run in --out")
    add_device_argument(t)
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


def _is_detection_run(out: Path) -> bool:
    """Only what ``train_detector`` writes, with a detection config: safe to replace."""
    from dataclasses import fields

    from ..detection.config import DetectionConfig
    from ..engine.outputs import checkpoint_file, holds_only, recorded_config

    if not holds_only(out, ("config.json", "metrics.jsonl", "results.json"), {"checkpoints": checkpoint_file}):
        return False
    recorded = recorded_config(out)
    return recorded is not None and set(recorded) <= {f.name for f in fields(DetectionConfig)}


def prepare_train_out(out: Path, overwrite: bool) -> None:
    """A detection run starts in a new or empty folder (its metrics file is appended to), or
    replaces a previous detection run when asked; anything else is refused."""
    from ..engine.outputs import occupied

    if not occupied(out):
        return
    if not _is_detection_run(out):
        raise UserError(f"{out} is not empty and is not a detection run; choose another --out")
    if not overwrite:
        raise UserError(f"{out} holds a previous detection run; pass --overwrite to replace it, or choose another --out")
    shutil.rmtree(out)


def run_train(args: argparse.Namespace) -> int:
    from ..detection.config import load_recipe, parse_overrides
    from ..detection.train import train_detector

    device = check_device(args.device)
    overrides = parse_overrides(args.set)
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    config = load_recipe(args.recipe, overrides)
    if config.dataset != "synthetic" and args.data is None:
        raise ValueError(f"recipe {config.name} trains on {config.dataset}: give --data DIR")
    out = Path(args.out or f"runs/detect-{config.name}")
    prepare_train_out(out, args.overwrite)
    results = train_detector(config, args.data, out, log=progress_printer(args), device=device)
    print(json.dumps({k: v for k, v in results.items() if k != "ap50_per_class"}))
    print(f"run directory: {out}")
    return 0


def _load_detector(path: str, device: str = "cpu"):
    """``load_detector`` after a one-line check that the file is a readable checkpoint at all."""
    from ..detection.pipeline import load_detector
    from ..inference.loading import check_checkpoint_file

    if Path(path).is_file():
        check_checkpoint_file(path)
    return load_detector(path, device)


def run_eval(args: argparse.Namespace) -> int:
    from ..detection.pipeline import build_dataset, evaluate_detector

    detector = _load_detector(args.checkpoint, check_device(args.device))
    dataset = build_dataset(detector.config, args.data, train=False)
    results = evaluate_detector(detector, dataset, args.limit)
    print(json.dumps(results))
    return 0


def _prediction_outputs(images: list[str], out: Path, overwrite: bool) -> list[tuple[Path, Path]]:
    """``<stem>.json`` and ``<stem>.png`` per image, checked before any work: two images with one
    stem, an output that is an input image, or (without ``overwrite``) an existing file are refused."""
    from ..inference.export import refuse_existing

    outputs, seen = [], {}
    inputs = {Path(p).resolve() for p in images}
    for path in images:
        stem = Path(path).stem
        if stem in seen:
            raise UserError(f"{seen[stem]} and {path} would both write {out / stem}.json; predict them separately")
        seen[stem] = path
        pair = (out / f"{stem}.json", out / f"{stem}.png")
        for target in pair:
            if target.resolve() in inputs:
                raise UserError(f"{target} is an input image and would be overwritten; choose another --out")
            refuse_existing(target, overwrite)
        outputs.append(pair)
    return outputs


def run_predict(args: argparse.Namespace) -> int:
    from ..data.images import decode_image
    from ..detection.pipeline import draw_detections
    from ..inference.export import staged_output

    device = check_device(args.device)
    out = Path(args.out)
    outputs = _prediction_outputs(args.images, out, args.overwrite)
    detector = _load_detector(args.checkpoint, device)
    out.mkdir(parents=True, exist_ok=True)
    for path, (json_path, png_path) in zip(args.images, outputs):
        image = decode_image(path)
        det = detector.predict([image])[0]
        keep = det["scores"] >= args.threshold
        rows = [{"box": [round(v, 2) for v in box], "score": round(score, 4), "label": detector.classes[label - 1]}
                for box, score, label in zip(det["boxes"][keep].tolist(), det["scores"][keep].tolist(),
                                             det["labels"][keep].tolist())]
        with staged_output(json_path, overwrite=args.overwrite) as tmp:
            tmp.write_text(json.dumps({"image": str(path), "detections": rows}, indent=2) + "\n")
        with staged_output(png_path, overwrite=args.overwrite) as tmp:
            draw_detections(image, det, detector.classes, args.threshold).save(tmp)
        print(f"{path}: {len(rows)} objects -> {json_path}, .png")
    return 0
