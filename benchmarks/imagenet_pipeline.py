"""ImageNet data pipeline throughput, side by side with a plain Pillow + DataLoader reference.

    .venv/bin/python benchmarks/imagenet_pipeline.py [--images 300] [--workers 2] [--cifar DIR]

1. Pipeline images/s (decode + the paper's training augmentation, to normalised float batches on
   the device) for ``resnetlab.data.imagenet_loader`` + ``imagenet_augment`` (draft-mode decode,
   one worker resize, uint8 batches, batched crop/scale/flip/colour on the device) against the
   reference: per-image PIL decode, PIL resize to a random shorter side, crop, flip, to-tensor,
   PCA colour noise and mean subtraction in the workers, float batches. Same workers, batch size
   and augmentation. On a generated folder of 500x375 JPEGs and on the CIFAR-10 JPEG folder
   (there with scale range [32, 40] and 32x32 crops, the small-image analogue). A third column runs
   the same batched augmentation inside the workers (``AugmentingCollate``), the mode for hosts
   without an accelerator.
2. ResNet-50 training images/s at 224x224, batch 16: eager fp32 against channels_last + bf16
   autocast (a few SGD steps after one warm-up step).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from resnetlab.data.imagenet import ImageIndex, index_split
from resnetlab.data.imagenet_augment import AugmentConfig, AugmentingCollate, BatchAugment
from resnetlab.data.imagenet_color import ALEXNET_EIGVAL, ALEXNET_EIGVEC, ColorStats
from resnetlab.data.imagenet_loader import ImageLoader
from resnetlab.models import build_model


def make_jpegs(root: Path, count: int, size: tuple[int, int] = (500, 375), classes: int = 10) -> None:
    """Photo-like JPEGs (smooth colour fields plus texture), as big as typical ImageNet files."""
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(count):
        a, b, c = rng.uniform(0.005, 0.05, 3)
        base = np.stack([np.sin(a * xx + b * yy + k) for k in rng.uniform(0, 6, 3)], -1) * 80 + 128
        image = np.clip(base + rng.normal(0, c * 400, (h, w, 3)), 0, 255).astype(np.uint8)
        folder = root / "train" / f"n{i % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.JPEG", quality=90)


class PillowReference(Dataset):
    """The usual per-image pipeline, all on the CPU workers, float tensors out."""

    def __init__(self, index: ImageIndex, config: AugmentConfig, mean: torch.Tensor) -> None:
        self.index, self.config, self.mean = index, config, mean
        self.eig = torch.tensor(ALEXNET_EIGVEC) * torch.tensor(ALEXNET_EIGVAL)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        path, label = self.index.samples[i]
        image = Image.open(path).convert("RGB")
        w, h = image.size
        s = random.randint(*self.config.scale_range)
        nw, nh = (s, round(h * s / w)) if w <= h else (round(w * s / h), s)
        image = image.resize((nw, nh), Image.BILINEAR)
        c = self.config.crop
        left, top = random.randint(0, nw - c), random.randint(0, nh - c)
        image = image.crop((left, top, left + c, top + c))
        if random.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
        x = x + (self.eig @ (torch.randn(3) * self.config.lighting_std))[:, None, None]
        return x - self.mean, label


def time_loader(batches, consume, limit_images: int) -> float:
    seen, start = 0, time.perf_counter()
    for batch in batches:
        seen += consume(batch)
        if seen >= limit_images:
            break
    return seen / (time.perf_counter() - start)


def pipeline_rates(
    index: ImageIndex, config: AugmentConfig, workers: int, batch: int, device: torch.device
) -> tuple[float, float, float]:
    mean = torch.full((3, 1, 1), 0.45)
    ours = ImageLoader(
        index, config.decode_config(), batch_size=batch, shuffle=True, workers=workers, pin_memory=device.type == "cuda"
    )
    augment = BatchAugment(config, ColorStats(mean_image=mean))
    generator = torch.Generator(device).manual_seed(0)

    def run_ours(b) -> int:
        b = b.to(device)
        x = augment(b.images, b.sizes, b.transposed, generator, channels_last=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(x)

    in_workers = ImageLoader(
        index,
        config.decode_config(),
        batch_size=batch,
        shuffle=True,
        workers=workers,
        collate=AugmentingCollate(config.decode_config(), augment, seed=0),
    )

    def run_in_workers(b) -> int:
        x = b.images.to(device, non_blocking=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(x)

    reference = DataLoader(
        PillowReference(index, config, mean),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )

    def run_reference(b) -> int:
        x = b[0].to(device, non_blocking=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(x)

    time_loader(ours, run_ours, batch * 2)  # start the workers, warm the file cache
    time_loader(in_workers, run_in_workers, batch * 2)
    time_loader(reference, run_reference, batch * 2)
    n = len(index)
    return (
        time_loader(ours, run_ours, n),
        time_loader(in_workers, run_in_workers, n),
        time_loader(reference, run_reference, n),
    )


def training_rate(channels_last_bf16: bool, steps: int, batch: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = build_model("resnet50").to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, 224, 224, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    if channels_last_bf16:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=channels_last_bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="generated 500x375 JPEGs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--cifar",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg"),
        help="CIFAR-10 JPEG folder",
    )
    parser.add_argument("--cifar-images", type=int, default=3000, help="images of its train split timed")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="main-process torch threads for the pipelines (the workers hold the other cores)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    print(
        f"device {device}, torch {torch.__version__}, pipeline main-process threads {args.threads}, "
        f"{args.workers} workers, batch {args.batch_size}; training threads {threads}"
    )
    print(
        f"{'data':<34} {'resnetlab':>10} {'ratio':>6} {'resnetlab, aug in workers':>26} {'ratio':>6} {'Pillow ref':>11}"
    )
    print(f"{'':<34} {'img/s':>10} {'':>6} {'img/s':>26} {'':>6} {'img/s':>11}")

    def row(name: str, rates: tuple[float, float, float]) -> None:
        ours, in_workers, ref = rates
        print(f"{name:<34} {ours:>10.1f} {ours / ref:>6.2f} {in_workers:>26.1f} {in_workers / ref:>6.2f} {ref:>11.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        make_jpegs(Path(tmp), args.images)
        index = index_split(tmp, "train")
        row(
            f"{len(index)} generated 500x375 JPEGs",
            pipeline_rates(index, AugmentConfig(), args.workers, args.batch_size, device),
        )
    cifar = Path(args.cifar)
    if (cifar / "train").is_dir():
        index = index_split(cifar, "train")
        index = index.subset([i * len(index) // args.cifar_images for i in range(args.cifar_images)])
        config = AugmentConfig(crop=32, scale_range=(32, 40))
        row(
            f"CIFAR-10 JPEG ({len(index)} of train)",
            pipeline_rates(index, config, args.workers, args.batch_size, device),
        )
    else:
        print(f"CIFAR-10 JPEG folder {cifar} not found: skipped")
    torch.set_num_threads(threads)  # training uses every core
    fp32 = training_rate(False, args.train_steps, 16, device)
    fast = training_rate(True, args.train_steps, 16, device)
    print(
        f"ResNet-50 train, batch 16, 224x224: eager fp32 {fp32:.2f} img/s, "
        f"channels_last+bf16 autocast {fast:.2f} img/s, ratio {fast / fp32:.2f}"
    )


if __name__ == "__main__":
    main()
