"""The built-in procedural dataset: deterministic, balanced, and classes that genuinely differ."""

from __future__ import annotations

import pytest
import torch

from resnetlab.data import datasets, describe_dataset, load_dataset, synthetic_cifar
from resnetlab.data.synthetic import CLASSES, DEFAULT_TEST, synthetic_split


def test_deterministic_from_seed() -> None:
    a_train, a_test = synthetic_cifar(seed=0, n_train=200, n_test=100)
    b_train, b_test = synthetic_cifar(seed=0, n_train=200, n_test=100)
    assert torch.equal(a_train.images, b_train.images) and torch.equal(a_train.labels, b_train.labels)
    assert torch.equal(a_test.images, b_test.images)
    c_train, _ = synthetic_cifar(seed=1, n_train=200, n_test=100)
    assert (c_train.images != a_train.images).float().mean() > 0.5
    # Train and test are separate streams: neither is a copy of the other, and the test set does
    # not move when the training set grows.
    assert not torch.equal(a_train.images[:100], a_test.images)
    assert torch.equal(synthetic_cifar(seed=0, n_train=30, n_test=100)[1].images, a_test.images)


def test_shapes_types_and_exact_balance() -> None:
    train, test = synthetic_cifar(seed=3, n_train=300, n_test=50)
    assert train.images.shape == (300, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (50, 3, 32, 32) and train.labels.dtype == torch.int64
    assert train.classes == CLASSES and len(set(CLASSES)) == 10
    assert train.labels.bincount(minlength=10).tolist() == [30] * 10
    assert test.labels.bincount(minlength=10).tolist() == [5] * 10
    assert train.labels[:20].tolist() != [i % 10 for i in range(20)]  # shuffled, not in class order
    # Uses the whole intensity range (noise and random colours), not a few flat levels.
    assert int(train.images.min()) == 0 and int(train.images.max()) == 255
    assert len(torch.unique(train.images[0])) > 100


def test_rendering_leaves_thread_setting_alone() -> None:
    before = torch.get_num_threads()
    synthetic_cifar(n_train=10, n_test=10)
    assert torch.get_num_threads() == before


def _spectrum(images: torch.Tensor) -> torch.Tensor:
    """Translation- and colour-sign-invariant features: |FFT| of the mean-free grey image."""
    grey = images.float().mean(1)
    grey = grey - grey.mean((1, 2), keepdim=True)
    f = torch.fft.rfft2(grey).abs().flatten(1)
    return f / f.norm(dim=1, keepdim=True)


def _nearest_mean_accuracy(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor
) -> float:
    means = torch.stack([train_x[train_y == c].mean(0) for c in range(10)])
    return (torch.cdist(test_x, means).argmin(1) == test_y).float().mean().item()


def test_classes_differ_but_not_in_raw_pixels() -> None:
    train, test = synthetic_cifar(seed=0, n_train=1000, n_test=500)
    # Shape classes are separable by a position-invariant feature (chance is 0.10)...
    shape_acc = _nearest_mean_accuracy(_spectrum(train.images), train.labels, _spectrum(test.images), test.labels)
    assert shape_acc > 0.35
    # ...while colours and positions carry no class information: class-mean pixels are near chance.
    pixel_acc = _nearest_mean_accuracy(
        train.images.flatten(1).float(), train.labels, test.images.flatten(1).float(), test.labels
    )
    assert pixel_acc < 0.2


def test_load_dataset_synthetic_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_TEST == 4000
    monkeypatch.setattr(datasets, "DEFAULT_TEST", 50)  # keep the test fast
    test = load_dataset(None, "test")
    assert len(test) == 50 and torch.equal(test.images, load_dataset("synthetic", "test").images)
    assert torch.equal(test.images, synthetic_split("test", 50, seed=0).images)
    small = load_dataset("synthetic:100", "train")
    assert len(small) == 100 and torch.equal(small.images, synthetic_split("train", 100).images)
    assert describe_dataset("synthetic:100").startswith("synthetic (10 procedural shape classes, 32x32, 100 train")
    with pytest.raises(ValueError, match="at least 10"):
        load_dataset("synthetic:5", "train")
    with pytest.raises(ValueError, match=">= 0"):
        synthetic_cifar(n_train=-1)
    with pytest.raises(ValueError, match="split"):
        synthetic_split("val", 10)
