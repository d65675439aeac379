"""Training throughput: the resnetlab engine against the loop most users write, side by side.

(a) the engine: data on the device, batched augmentation, bf16 autocast + channels_last where
    the hardware has bf16, no per-step host syncs (``resnetlab.engine.train``);
(b) a plain eager fp32 loop: a ``Dataset`` that augments one image at a time (pad 4, random crop,
    flip, per-pixel mean subtraction) and a standard ``DataLoader`` with worker processes.
Both train ResNet-20 on CIFAR-sized images with the paper's SGD settings for the same number of
iterations; the first iterations of each are excluded from the timing (warm-up).

    python benchmarks/train_throughput.py [--iterations 100] [--data DIR] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from resnetlab.checkpoints.rundir import read_metrics
from resnetlab.data import load_dataset
from resnetlab.data.cifar_augment import mean_image
from resnetlab.engine.config import load_recipe
from resnetlab.engine.train import train
from resnetlab.models import build_model


class PerImageCifar(Dataset):
    """The usual per-sample pipeline (what torchvision's RandomCrop(32, 4) + flip + Normalize do)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor) -> None:
        self.images, self.labels, self.mean = images, labels, mean

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i].float() / 255.0 - self.mean
        x = F.pad(x, (4, 4, 4, 4))
        top, left = torch.randint(0, 9, (2,)).tolist()
        x = x[:, top : top + 32, left : left + 32]
        if torch.rand(()) < 0.5:
            x = x.flip(2)
        return x, self.labels[i]


def plain_loop(
    arrays, iterations: int, warmup: int, device: torch.device, workers: int, model_name: str = "resnet20"
) -> float:
    torch.manual_seed(0)
    model = build_model(model_name).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    dataset = PerImageCifar(arrays.images, arrays.labels, mean_image(arrays.images))
    loader = DataLoader(
        dataset,
        batch_size=128,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )
    step, start = 0, None
    model.train()
    while step < iterations:
        for x, y in loader:
            if step == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the habitual per-step sync for logging
            step += 1
            if step == iterations:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (iterations - warmup) * 128 / (time.perf_counter() - start)


def engine_loop(arrays, iterations: int, warmup: int, device: str, **changes) -> float:
    config = load_recipe("cifar10-resnet20").replace(
        iterations=iterations,
        milestones=(iterations,),
        val_size=0,
        log_every=warmup,
        eval_every=iterations,
        checkpoint_every=iterations,
        track_test_error=False,
        device=device,
        **changes,
    )
    with tempfile.TemporaryDirectory() as out:
        train(config, Path(out) / "run", data=arrays, log=lambda line: None)
        windows = [m for m in read_metrics(Path(out) / "run") if "images_per_second" in m]
    # Windows are equal in length; the first one holds the warm-up and is left out.
    later = windows[1:]
    return sum(m["images_per_second"] for m in later) / len(later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--data", default="synthetic:12800", help="dataset spec (default: 12,800 synthetic images)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain loop")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.iterations % args.warmup:
        parser.error("--iterations must be a multiple of --warmup")
    train_arrays = load_dataset(args.data, "train")
    test_arrays = load_dataset(args.data, "test")
    arrays = (train_arrays, test_arrays)
    device = torch.device(args.device)
    print(
        f"ResNet-20, batch 128, {args.iterations} iterations ({args.warmup} warm-up) on {len(train_arrays):,} "
        f"images; {device} ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    results = {}
    results["plain eager fp32 + DataLoader"] = plain_loop(
        train_arrays, args.iterations, args.warmup, device, args.workers
    )
    results["engine, fp32, NCHW"] = engine_loop(
        arrays, args.iterations, args.warmup, args.device, precision="fp32", channels_last=False
    )
    results["engine, defaults (bf16 + channels_last)"] = engine_loop(arrays, args.iterations, args.warmup, args.device)
    base = results["plain eager fp32 + DataLoader"]
    print(f"{'loop':<42} {'images/s':>10} {'ratio':>7}")
    for name, value in results.items():
        print(f"{name:<42} {value:>10.0f} {value / base:>6.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps({"device": str(device), "iterations": args.iterations, "images_per_second": results}, indent=2)
        )


if __name__ == "__main__":
    main()
