"""``resnetlab predict``, ``resnetlab export`` and ``resnetlab weights import|export``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..export_formats import DEFAULT_OPSET, EXPORT_FORMATS, ONNX_EXPORTERS
from . import UserError, add_device_argument, check_device, progress_printer


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="top-k classes of image files under a checkpoint's test preprocessing")
    p.add_argument("checkpoint", help="run directory, .pt checkpoint or .safetensors with resnetlab metadata")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or directories")
    p.add_argument("--topk", type=int, default=5, help="classes per image (default 5)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    add_device_argument(p)
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=run_predict)

    p = subparsers.add_parser("export", help="ONNX / TorchScript / safetensors, verified right after export")
    p.add_argument("checkpoint", help="run directory, .pt checkpoint or .safetensors")
    p.add_argument(
        "--format",
        required=True,
        choices=tuple(EXPORT_FORMATS),
        help="reloaded and checked on CPU right after writing: " + "; ".join(EXPORT_FORMATS.values()),
    )
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--opset", type=int, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument(
        "--exporter",
        default="auto",
        choices=ONNX_EXPORTERS,
        help="ONNX exporter; auto = torch.export-based when onnxscript is installed",
    )
    p.add_argument(
        "--include-preprocess", action="store_true", help="graph takes uint8 RGB pixels and normalises them itself"
    )
    p.add_argument(
        "--verify-images",
        nargs="+",
        default=[],
        metavar="IMAGE_OR_DIR",
        help="real images to verify on (default: the built-in dataset's test images, if any)",
    )
    p.add_argument("--rtol", type=float, default=1e-4, help="logit tolerance relative to the logit scale")
    add_device_argument(
        p,
        help="where the PyTorch reference logits of the check are computed: auto (the default: CUDA if present, "
        "else CPU), cpu, cuda or cuda:N. The file itself is always traced from a CPU copy of the model and checked "
        "on CPU, so the check also shows that a GPU model's file runs on CPU",
    )
    p.add_argument("--overwrite", "--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=run_export)

    p = subparsers.add_parser(
        "weights", help="the shipped trained weights; import/export weights in the torchvision/timm ResNet layout"
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = actions.add_parser("list", help="the shipped trained weights beside the paper's error (a markdown table)")
    q.add_argument("--json", action="store_true", help="one JSON object per name: file, sha256 and the whole meta")
    q.set_defaults(func=run_weights_list)
    q = actions.add_parser("import", help="torchvision/timm state dict -> resnetlab checkpoint")
    q.add_argument("src", help=".pt/.pth/.safetensors state dict (DDP 'module.' prefixes are fine)")
    q.add_argument("--model", required=True, help="registered name, e.g. resnet50")
    q.add_argument(
        "--stride-on",
        choices=("1x1", "3x3"),
        help="bottleneck stride placement, required for resnet/plain 50/101/152: "
        "3x3 = torchvision/timm (v1.5), 1x1 = the paper's v1",
    )
    q.add_argument("--classes", help="text file with one class name per line")
    q.add_argument("--non-strict", action="store_true", help="accept missing/unexpected keys (never mis-shaped)")
    q.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    q.add_argument("--overwrite", "--force", action="store_true", help="replace an existing --out file")
    q.set_defaults(func=run_weights_import)
    q = actions.add_parser("export", help="checkpoint -> bare state dict (.pt or .safetensors)")
    q.add_argument("checkpoint", help="run directory, .pt checkpoint or .safetensors")
    q.add_argument("--out", required=True, help=".pt, .pth or .safetensors")
    q.add_argument("--overwrite", "--force", action="store_true", help="replace an existing --out file")
    q.set_defaults(func=run_weights_export)


def run_predict(args: argparse.Namespace) -> int:
    from ..inference import load_any, predict

    loaded = load_any(args.checkpoint, device=check_device(args.device))
    results = predict(loaded, args.inputs, topk=args.topk, batch_size=args.batch_size)
    if not results:
        raise ValueError("no image files found in " + ", ".join(args.inputs))
    for r in results:
        if args.json:
            print(json.dumps(r.to_dict()))
        elif r.ok:
            print(f"{r.path}\t" + "  ".join(f"{s.name} {s.probability:.4f}" for s in r.top))
        else:
            print(f"{r.path}\terror: {r.error}")
    failed = sum(not r.ok for r in results)
    if failed:
        print(f"resnetlab predict: {failed} of {len(results)} file(s) could not be classified", file=sys.stderr)
    return 1 if failed else 0


def _real_images(args: argparse.Namespace, loaded):
    import torch

    from ..inference import expand_paths, load_image
    from ..inference.verification import dataset_images

    if args.verify_images:
        return torch.stack([load_image(p, loaded.preprocess) for p in expand_paths(args.verify_images)])
    return dataset_images()


def _require(modules: list[str]) -> None:
    """Name the missing optional packages before any work, not after a 30-line traceback."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"ONNX export needs {', '.join(missing)}: pip install 'resnetlab[export]'")


def run_export(args: argparse.Namespace) -> int:
    """Export and verify. ``--device``: where the PyTorch reference runs; the file is written from a
    CPU copy and checked on CPU whatever it is (see ``export_verified``)."""
    from ..checkpoints.atomic import refuse_existing
    from ..inference import Tolerance, export_verified, load_any
    from ..inference.verification import ExportVerificationError

    if args.format == "safetensors" and Path(args.out).suffix != ".safetensors":
        raise ValueError(f"safetensors output must end in .safetensors, got {Path(args.out).name}")
    refuse_existing(args.out, args.overwrite)  # before minutes of exporting, not after
    device = check_device(args.device)
    if args.format == "onnx":
        _require(["onnx", "onnxruntime"] + (["onnxscript"] if args.exporter == "dynamo" else []))
    loaded = load_any(args.checkpoint)  # on CPU: export_verified copies it to --device for the reference
    real = _real_images(args, loaded)
    # Exported and verified under a temporary name: a failed check removes that file only.
    try:
        report = export_verified(
            loaded,
            args.format,
            args.out,
            opset=args.opset,
            include_preprocess=args.include_preprocess,
            exporter=args.exporter,
            real_images=real,
            tolerance=Tolerance(args.rtol),
            overwrite=args.overwrite,
            device=device,
            progress=not args.quiet,
            log=progress_printer(args),
            progress_tty=None,
        )
    except ExportVerificationError as error:
        failed = [line.strip() for line in str(error).splitlines() if line.endswith("FAILED")]
        raise UserError(
            f"the exported model disagrees with PyTorch ({'; '.join(failed)}); {args.out} was not written"
        ) from None
    print(f"wrote {args.out}")
    print(report.describe())
    if real is None:
        print("  (no real images checked: pass --verify-images)")
    return 0


def run_weights_list(args: argparse.Namespace) -> int:
    from ..analysis.weights_table import shipped, weights_table

    if args.json:
        for w in shipped():
            print(json.dumps({"name": w.name, "file": w.file.name, "sha256": w.sha256, "meta": w.meta}))
    else:
        print(weights_table())
    return 0


def run_weights_import(args: argparse.Namespace) -> int:
    from ..checkpoints.weights import read_class_names
    from ..inference import import_weights

    classes = read_class_names(args.classes) if args.classes else None
    result = import_weights(
        args.src,
        args.model,
        args.out,
        stride_on=args.stride_on,
        classes=classes,
        strict=not args.non_strict,
        overwrite=args.overwrite,
    )
    print(f"wrote {result.path} ({args.model}, options {json.dumps(result.options)}, ImageNet preprocessing)")
    print(result.report.describe())
    if result.filled:
        print(f"added {len(result.filled)} missing BN num_batches_tracked counter(s)")
    return 0


def run_weights_export(args: argparse.Namespace) -> int:
    from ..inference import export_weights

    print(f"wrote {export_weights(args.checkpoint, args.out, overwrite=args.overwrite)}")
    return 0
