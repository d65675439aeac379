"""Batched ImageNet augmentation (data/imagenet_augment.py): geometry against a per-image
reference, ranges, determinism, PCA colour noise statistics, the cached mean image."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import resnetlab.data.imagenet_color as aug_module
from resnetlab.data.imagenet import index_split
from resnetlab.data.imagenet_augment import (
    AUGMENT_PRESETS,
    AugmentConfig,
    BatchAugment,
    crop_resize,
    inception_params,
    lighting_noise,
    paper_params,
    resized_reference,
)
from resnetlab.data.imagenet_color import ALEXNET_EIGVAL, ALEXNET_EIGVEC, ColorStats, estimate_color_stats
from resnetlab.data.imagenet_loader import Collate, DecodeConfig

SIZES = [(300, 400), (480, 300), (256, 256), (333, 500), (420, 280)]


def canvas_batch(sizes=SIZES, short=480, seed=0):
    """Random images of ``sizes`` packed as the loader packs them (portraits transposed)."""
    generator = torch.Generator().manual_seed(seed)
    images = [torch.randint(0, 256, (3, h, w), generator=generator, dtype=torch.uint8) for h, w in sizes]
    batch = Collate(DecodeConfig(short, max_aspect=1.5, collate="pad"))([(x, 0, None) for x in images])
    return images, batch


def test_paper_crops_equal_resize_then_crop_per_image() -> None:
    images, batch = canvas_batch()
    config = AugmentConfig()
    params = paper_params(batch.sizes, config, torch.Generator().manual_seed(5))
    out = crop_resize(batch.images, batch.sizes, batch.transposed, params.boxes, 224)
    for n, image in enumerate(images):
        s = int(params.scale[n])
        resized = resized_reference(image, s)
        assert min(resized.shape[-2:]) == s
        top = round(float(params.boxes[n, 0]) * resized.shape[-2] / image.shape[-2])
        left = round(float(params.boxes[n, 1]) * resized.shape[-1] / image.shape[-1])
        expected = resized[:, top : top + 224, left : left + 224]
        assert expected.shape == (3, 224, 224)
        # float32 grid coordinates: agreement to a small fraction of one grey level (0..255).
        torch.testing.assert_close(out[n], expected, atol=0.03, rtol=0)


def test_scale_lies_in_256_480_and_crop_inside_image() -> None:
    sizes = torch.tensor([[375, 500], [500, 333], [256, 1000], [800, 600]] * 250)
    params = paper_params(sizes, AugmentConfig(), torch.Generator().manual_seed(0))
    scale = params.scale
    assert int(scale.min()) == 256 and int(scale.max()) == 480  # both ends reached over 1000 draws
    # Rescaled shorter side of the box's source image: crop / (box side / image side).
    short = sizes.min(1).values.double()
    box_short = torch.where(sizes[:, 0] <= sizes[:, 1], params.boxes[:, 2], params.boxes[:, 3])
    torch.testing.assert_close(224 * short / box_short, scale.double())
    assert (params.boxes[:, :2] >= -1e-9).all()
    assert (params.boxes[:, 0] + params.boxes[:, 2] <= sizes[:, 0] + 1e-6).all()
    assert (params.boxes[:, 1] + params.boxes[:, 3] <= sizes[:, 1] + 1e-6).all()
    assert 0.4 < params.flip.double().mean() < 0.6


def test_inception_boxes_respect_area_and_aspect() -> None:
    sizes = torch.tensor([[375, 500], [500, 333]] * 200 + [[10, 400]])
    config = AUGMENT_PRESETS["inception"]
    params = inception_params(sizes, config, torch.Generator().manual_seed(1))
    y0, x0, h, w = params.boxes.unbind(1)
    assert (y0 >= 0).all() and (x0 >= 0).all()
    assert (y0 + h <= sizes[:, 0]).all() and (x0 + w <= sizes[:, 1]).all()
    area = (h * w / (sizes[:, 0] * sizes[:, 1]))[:-1]
    assert area.min() > 0.07 and area.max() <= 1.0 and area.min() < 0.2 and area.max() > 0.8
    aspect = (w / h)[:-1]
    assert aspect.min() > 0.70 and aspect.max() < 1.40
    # 10x400 cannot hold any sampled box: fallback is the centre crop at the widest allowed ratio.
    assert params.boxes[-1].tolist() == [0.0, 193.0, 10.0, 13.0]


@pytest.mark.parametrize("style", ["paper", "inception"])
def test_augment_shapes_ranges_and_determinism(style: str) -> None:
    short = AUGMENT_PRESETS[style].worker_short_side
    _, batch = canvas_batch([(min(h, short), min(w, short)) for h, w in SIZES], short=short)
    zero = ColorStats(mean_image=torch.zeros(3, 1, 1))
    config = AugmentConfig(style=style, lighting_std=0.0)
    augment = BatchAugment(config, zero)
    x = augment(batch.images, batch.sizes, batch.transposed, torch.Generator().manual_seed(7))
    assert x.shape == (len(SIZES), 3, 224, 224) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1.0  # no mean, no noise: pixels / 255
    again = augment(batch.images, batch.sizes, batch.transposed, torch.Generator().manual_seed(7))
    other = augment(batch.images, batch.sizes, batch.transposed, torch.Generator().manual_seed(8))
    assert torch.equal(x, again) and not torch.equal(x, other)
    cl = augment(batch.images, batch.sizes, batch.transposed, torch.Generator().manual_seed(7), channels_last=True)
    assert cl.is_contiguous(memory_format=torch.channels_last) and torch.equal(cl, x)


def test_flip_and_mean_subtraction() -> None:
    images, batch = canvas_batch(sizes=[(256, 256)] * 4)
    mean = torch.rand(3, 224, 224, generator=torch.Generator().manual_seed(0))
    plain = BatchAugment(
        AugmentConfig(scale_range=(256, 256), flip=False, lighting_std=0.0), ColorStats(mean_image=torch.zeros(3, 1, 1))
    )
    flips = BatchAugment(AugmentConfig(scale_range=(256, 256), lighting_std=0.0), ColorStats(mean_image=mean))
    a = plain(batch.images, batch.sizes, batch.transposed, torch.Generator().manual_seed(3))
    b = flips(batch.images, batch.sizes, batch.transposed, torch.Generator().manual_seed(3))
    flip = flips.last_params.flip
    assert 0 < int(flip.sum()) < 4  # seed chosen so both cases occur
    expected = torch.where(flip[:, None, None, None], a.flip(-1), a) - mean
    torch.testing.assert_close(b, expected)
    # At scale 256 of a 256x256 image the crop is an exact sub-block (no resampling).
    top, left = int(plain.last_params.boxes[0, 0]), int(plain.last_params.boxes[0, 1])
    torch.testing.assert_close(a[0] * 255, images[0][:, top : top + 224, left : left + 224].float(), atol=0.03, rtol=0)


def test_pca_noise_has_the_alexnet_covariance() -> None:
    stats = ColorStats()
    noise = lighting_noise(200_000, stats, 0.1, torch.Generator().manual_seed(0)).double()
    vec = torch.tensor(ALEXNET_EIGVEC, dtype=torch.float64)
    val = torch.tensor(ALEXNET_EIGVAL, dtype=torch.float64)
    expected = vec @ torch.diag((0.1 * val) ** 2) @ vec.T
    covariance = torch.cov(noise.T)
    assert noise.mean(0).abs().max() < 3e-4
    torch.testing.assert_close(covariance, expected, atol=2e-6, rtol=0.02)
    # In the eigenbasis the noise is uncorrelated, with std 0.1 * eigval along each eigenvector.
    coords = noise @ vec
    torch.testing.assert_close(coords.std(0), 0.1 * val, rtol=0.01, atol=0)
    assert abs(float(torch.corrcoef(coords.T)[0, 1])) < 0.01


def test_lighting_adds_one_offset_per_image() -> None:
    _, batch = canvas_batch()
    config = AugmentConfig(lighting_std=0.1)
    with_noise = BatchAugment(config)(batch.images, batch.sizes, batch.transposed, torch.Generator().manual_seed(2))
    without = BatchAugment(AugmentConfig(lighting_std=0.0))(
        batch.images, batch.sizes, batch.transposed, torch.Generator().manual_seed(2)
    )
    offset = with_noise - without
    per_image = offset.mean((2, 3), keepdim=True)
    torch.testing.assert_close(offset, per_image.expand_as(offset), atol=1e-5, rtol=0)
    assert float(per_image.abs().max()) > 1e-3


def make_colour_folder(root: Path) -> list[tuple[int, int, int]]:
    colours = [(200, 10, 10), (10, 200, 10), (100, 100, 200), (50, 50, 50)]
    for i, colour in enumerate(colours):
        folder = root / "train" / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (300, 260), colour).save(folder / f"{i}.png")
    return colours


def test_color_stats_are_estimated_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    colours = make_colour_folder(tmp_path / "data")
    index = index_split(tmp_path / "data", "train")
    stats = estimate_color_stats(index, sample_size=10, cache_dir=tmp_path / "cache")
    pixels = torch.tensor(colours, dtype=torch.float64) / 255
    mean = pixels.mean(0)
    assert stats.mean_image.shape == (3, 224, 224)
    torch.testing.assert_close(stats.mean_image, mean.float().view(3, 1, 1).expand(3, 224, 224), atol=1e-6, rtol=0)
    covariance = torch.cov(pixels.T, correction=0)
    reconstructed = stats.eigvec.double() @ torch.diag(stats.eigval.double()) @ stats.eigvec.double().T
    torch.testing.assert_close(reconstructed, covariance, atol=1e-6, rtol=0)
    assert stats.eigval[0] >= stats.eigval[1] >= stats.eigval[2]
    cached = list((tmp_path / "cache").glob(f"color-stats-{index.listing_key()}-*.pt"))
    assert len(cached) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(aug_module, "ImageLoader", no_decoding)
    again = estimate_color_stats(index, sample_size=10, cache_dir=tmp_path / "cache")
    assert torch.equal(again.mean_image, stats.mean_image) and torch.equal(again.eigvec, stats.eigvec)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="style"):
        AugmentConfig(style="fancy")
    with pytest.raises(ValueError, match="scale_range"):
        AugmentConfig(scale_range=(200, 480))
    with pytest.raises(ValueError, match="area_range"):
        AugmentConfig(area_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="uint8"):
        _, batch = canvas_batch()
        BatchAugment(AugmentConfig())(batch.images.float(), batch.sizes, batch.transposed, torch.Generator())
    assert AUGMENT_PRESETS["paper"].worker_short_side == 480
    assert math.isclose(AUGMENT_PRESETS["inception"].aspect_range[0], 0.75)


def test_real_jpegs_through_loader_and_augment(tmp_path: Path) -> None:
    from resnetlab.data.imagenet_loader import ImageLoader

    rng = np.random.default_rng(0)
    for i in range(4):
        folder = tmp_path / "train" / f"n{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        shape = (375, 500, 3) if i % 2 else (500, 375, 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / f"{i}.JPEG")
    config = AUGMENT_PRESETS["paper"]
    loader = ImageLoader(index_split(tmp_path, "train"), config.decode_config(), batch_size=4, shuffle=True, seed=1)
    batch = next(iter(loader))
    assert batch.images.dtype == torch.uint8 and batch.images.shape == (4, 3, 375, 500)
    x = BatchAugment(config)(batch.images, batch.sizes, batch.transposed, torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 224, 224) and torch.isfinite(x).all()


def test_augmenting_in_workers_is_seeded_by_content_not_worker_count(tmp_path: Path) -> None:
    from resnetlab.data.imagenet_augment import AugmentingCollate
    from resnetlab.data.imagenet_loader import ImageLoader

    rng = np.random.default_rng(0)
    for i in range(6):
        folder = tmp_path / "train" / f"n{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 50) if i % 2 else (50, 40), dtype=np.uint8)).save(folder / f"{i}.png")
    index = index_split(tmp_path, "train")
    config = AugmentConfig(crop=32, scale_range=(32, 40))
    collate = AugmentingCollate(config.decode_config(), BatchAugment(config), seed=4)

    def run(workers: int) -> list:
        loader = ImageLoader(
            index, config.decode_config(), batch_size=4, shuffle=True, seed=1, workers=workers, collate=collate
        )
        return [(b.images, b.labels, b.indices) for b in loader]

    alone, parallel = run(0), run(2)
    assert [len(b[0]) for b in alone] == [4, 2]
    for (xa, ya, ia), (xb, yb, ib) in zip(alone, parallel):
        assert xa.dtype == torch.float32 and xa.shape[1:] == (3, 32, 32)
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and ia == ib
    assert sorted(i for b in alone for i in b[2]) == list(range(6))
