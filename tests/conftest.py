"""Test-wide settings: one intra-op thread.

Tests run tiny tensors where a second thread only adds synchronisation, and a single thread keeps
timings sane when the machine is shared; numerical results do not depend on it.
"""

import torch

torch.set_num_threads(1)

from pathlib import Path  # noqa: E402 (after set_num_threads, on purpose)

import pytest  # noqa: E402

# The real CIFAR-10 JPEG copy lives in shared/ beside the repository; tests using it skip without it.
CIFAR10_JPEG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg"


def tiny_trained_cifar_resnet(seed: int, std: tuple[float, float, float]):
    """``(model, preprocess, images)``: a depth-8 CIFAR ResNet after 3 SGD steps on the 32 images of
    the built-in dataset, with their per-pixel mean and ``std``: a small model that is no longer
    at its initialisation, for the export and prediction tests."""
    from resnetlab.data import Preprocess, load_dataset
    from resnetlab.models import build_model

    torch.manual_seed(seed)
    data = load_dataset("synthetic:32", "train")
    images, labels = data.images, data.labels
    preprocess = Preprocess(mean_image=images.float().mean(0) / 255, std=std)
    model = build_model("cifar_resnet", depth=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(preprocess.normalize(images)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, preprocess, images


@pytest.fixture(scope="module")
def tiny_data():
    """640 synthetic training images and 400 test images: a training run in seconds."""
    from resnetlab.data import load_dataset

    train_set = load_dataset("synthetic:640", "train")
    test_set = load_dataset("synthetic", "test").subset(torch.arange(400))
    return train_set, test_set


def tiny_config(**changes):
    """A depth-8 CIFAR ResNet trained for 12 iterations of 32 images, logging every 4."""
    from resnetlab.engine.config import TrainConfig

    base = TrainConfig(
        model="cifar_resnet",
        model_options={"depth": 8},
        iterations=12,
        batch_size=32,
        milestones=(6, 9),
        val_size=64,
        log_every=4,
        eval_every=6,
        checkpoint_every=5,
    )
    return base.replace(**changes)
