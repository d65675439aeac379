"""Test-wide settings: one intra-op thread.

Tests run tiny tensors where a second thread only adds synchronisation, and a single thread keeps
timings sane when the machine is shared; numerical results do not depend on it.
"""

import torch

torch.set_num_threads(1)

from pathlib import Path  # noqa: E402 (after set_num_threads, on purpose)

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
