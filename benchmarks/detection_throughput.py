"""Training and inference throughput of the C4 Faster R-CNN on the synthetic set, fp32 vs bf16.

.venv/bin/python benchmarks/detection_throughput.py --recipe synthetic-resnet18 --steps 5
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from resnetlab.detection.config import load_recipe, parse_overrides
from resnetlab.detection.datasets import batch_images, resize_sample, training_targets
from resnetlab.detection.pipeline import Detector, build_dataset, build_detector
from resnetlab.detection.train import make_optimizer
from resnetlab.engine.precision import autocast_for


def measure(recipe: str, precision: str, steps: int, overrides: dict) -> dict:
    config = load_recipe(recipe, {**overrides, "precision": precision, "dataset": "synthetic"})
    dataset = build_dataset(config, None, train=True)
    model, mean, std = build_detector(config, len(dataset.classes))
    optimizer = make_optimizer(model, config)
    n = config.images_per_batch
    samples = [resize_sample(dataset[i], config.min_size, config.max_size) for i in range(n)]
    images, sizes = batch_images([s.image for s in samples], mean, std)
    targets = [training_targets(s) for s in samples]
    times = []
    for step in range(steps + 1):  # the first step warms up and is not counted
        start = time.perf_counter()
        with autocast_for(torch.device("cpu"), precision):
            loss = sum(model(images, sizes, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - start)
    detector = Detector(model, config, tuple(dataset.classes), mean, std)
    detector.predict([samples[0].image], precision=precision)
    start = time.perf_counter()
    for s in samples * 2:
        detector.predict([s.image], precision=precision)
    infer = (time.perf_counter() - start) / (2 * n)
    return {
        "recipe": recipe,
        "precision": precision,
        "train_s_per_iter": min(times),
        "train_images_per_s": n / min(times),
        "infer_s_per_image": infer,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="synthetic-resnet18")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    for precision in ("fp32", "bf16"):
        print(json.dumps(measure(args.recipe, precision, args.steps, parse_overrides(args.set))))


if __name__ == "__main__":
    main()
