"""Recipes, schedules, augmentation and batches: the pieces of the training engine."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest
import torch
import torch.nn.functional as F

from resnetlab.data.arrays import ImageArrays
from resnetlab.data.cifar_augment import mean_image, pad_channels_last, random_crop_flip
from resnetlab.data.preprocess import Preprocess
from resnetlab.engine.batches import DeviceBatches
from resnetlab.engine.config import (
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_recipe,
    recipe_names,
)
from resnetlab.engine.schedule import LRSchedule
from resnetlab.models import list_models


def test_every_shipped_recipe_parses_and_names_a_model() -> None:
    names = recipe_names()
    for depth in (20, 32, 44, 56, 110, 1202):
        assert f"cifar10-resnet{depth}" in names
    for depth in (20, 32, 44, 56, 110):
        assert f"cifar10-plain{depth}" in names
    for name in names:
        config = load_recipe(name)
        assert config.model in list_models(), name
        raw = tomllib.loads((resources.files("resnetlab") / "recipes" / f"{name}.toml").read_text())
        assert set(raw) <= set(config.to_dict()), name


def test_cifar_recipes_are_the_papers() -> None:
    c = load_recipe("cifar10-resnet56")
    assert (c.iterations, c.batch_size, c.lr, c.momentum, c.weight_decay) == (64_000, 128, 0.1, 0.9, 1e-4)
    assert c.milestones == (32_000, 48_000) and c.val_size == 5000 and c.warmup_lr is None
    for name in ("cifar10-resnet110", "cifar10-resnet1202", "cifar10-plain110"):
        c = load_recipe(name)
        assert c.warmup_lr == 0.01 and c.warmup_until_error == 0.80 and c.warmup_max_iterations == 400


def test_unknown_keys_and_bad_values_name_the_key(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "resnet20"\nlearning_rate = 0.1\n')
    with pytest.raises(ValueError, match="learning_rate"):
        load_recipe(bad)
    with pytest.raises(ValueError, match="batch_size"):
        config_from_dict({"batch_size": 0})
    with pytest.raises(ValueError, match="milestones"):
        config_from_dict({"milestones": [300, 200]})
    with pytest.raises(ValueError, match="precision"):
        config_from_dict({"precision": "int8"})
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    with pytest.raises(ValueError, match="--set lrr: unknown key"):
        apply_overrides(TrainConfig(), ["lrr=0.1"])
    with pytest.raises(ValueError, match="lr must be"):
        apply_overrides(TrainConfig(), ["lr=fast"])


def test_overrides_parse_toml_values() -> None:
    c = apply_overrides(
        TrainConfig(),
        ["lr=0.05", "milestones=[10, 20]", "augment=false", "model_options.shortcut=B", "data=synthetic:64"],
    )
    assert c.lr == 0.05 and c.milestones == (10, 20) and c.augment is False
    assert c.model_options == {"shortcut": "B"} and c.data == "synthetic:64"


def test_budget_scales_every_milestone_together() -> None:
    c = load_recipe("cifar10-resnet110").scaled(0.05)
    assert c.iterations == 3200 and c.milestones == (1600, 2400) and c.warmup_max_iterations == 20
    assert c.eval_every == 200 and c.log_every == 32
    with pytest.raises(ValueError, match="budget"):
        c.scaled(1.5)


def test_step_schedule_and_error_triggered_warmup() -> None:
    s = LRSchedule(TrainConfig(milestones=(10, 20)))
    assert [s.lr(i) for i in (0, 9, 10, 19, 20, 100)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    w = LRSchedule(TrainConfig(milestones=(10, 20), warmup_lr=0.01, warmup_max_iterations=8))
    assert w.lr(0) == 0.01
    assert not w.observe_train_error(4, 0.85)  # still above 80%
    assert w.observe_train_error(5, 0.79) and w.warmup_ended_at == 5
    assert w.lr(6) == pytest.approx(0.1)
    capped = LRSchedule(TrainConfig(warmup_lr=0.01, warmup_max_iterations=8))
    assert capped.observe_train_error(8, 0.9) and capped.lr(8) == pytest.approx(0.1)
    restored = LRSchedule(TrainConfig(warmup_lr=0.01))
    restored.load_state_dict(w.state_dict())
    assert restored.lr(6) == w.lr(6)


def test_plateau_schedule_divides_after_patience() -> None:
    s = LRSchedule(TrainConfig(schedule="plateau", plateau_patience=2))
    for iteration, error in enumerate((50, 40, 41, 40.5)):
        s.observe_val_error(error, 1000 * (iteration + 1))
    assert s.lr(0) == pytest.approx(0.01)


def test_plateau_schedule_keeps_divisions_apart_and_stops_at_the_papers_count() -> None:
    """Patience alone divided at every stall: with a noisy validation error that meant several
    divisions early in the run and no end to them. Evaluations every 5k iterations, no progress."""
    config = TrainConfig(
        schedule="plateau",
        plateau_patience=1,
        plateau_min_iterations=100_000,
        plateau_max_divisions=3,
        iterations=600_000,
    )
    s = LRSchedule(config)
    divided_at = []
    for iteration in range(5_000, 600_001, 5_000):
        before = s.lr(iteration)
        s.observe_val_error(40.0, iteration)  # never better than the first evaluation
        if s.lr(iteration) < before:
            divided_at.append(iteration)
    assert divided_at == [100_000, 200_000, 300_000]  # spaced, from the start too; then no more
    assert s.lr(600_000) == pytest.approx(0.1 * 0.1**3)
    # A checkpoint of a run from before these keys: its schedule state loads (spacing from 0).
    old = {k: v for k, v in s.state_dict().items() if k != "last_division_at"}
    restored = LRSchedule(config)
    restored.load_state_dict(old)
    assert restored.divisions == 3 and restored.last_division_at == 0


def test_imagenet_recipes_bound_the_plateau_rule_and_keep_step_as_the_alternative() -> None:
    c = load_recipe("imagenet-resnet50")
    assert c.schedule == "plateau" and c.plateau_max_divisions == 3 and c.plateau_min_iterations == 100_000
    assert c.replace(schedule="step").milestones == (150_000, 300_000, 450_000)  # 30/60/90 epochs
    # A config.json written before the new keys existed resumes: missing keys take the defaults.
    from resnetlab.engine.state import check_resumable

    saved = {k: v for k, v in TrainConfig().to_dict().items() if not k.startswith("plateau_m")}
    check_resumable(saved, TrainConfig())
    assert config_from_dict(saved) == TrainConfig()


@pytest.mark.parametrize(
    "key, value",
    [
        ("batch_size", 10**9),
        ("eval_batch_size", 10**7),
        ("iterations", 10**12),
        ("workers", 10_000),
        ("log_every", 10**12),
        ("crop_size", 100_000),
        ("seed", 2**64),
        ("lr", 1e6),
        ("momentum", 1.5),
        ("warmup_until_error", 80.0),
        ("val_size", 10**12),
    ],
)
def test_config_values_have_upper_bounds_that_name_the_key(key, value) -> None:
    """A batch of 10^9 used to be accepted and fail deep inside torch."""
    with pytest.raises(ValueError, match=rf"^--set: {key} must be at most"):
        apply_overrides(TrainConfig(), [f"{key}={value}"])


def test_random_crop_flip_matches_per_image_reference() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(16, 3, 8, 8, generator=g)
    padded = pad_channels_last(images, 4)
    index = torch.tensor([3, 0, 15, 7, 7, 1])
    out = random_crop_flip(padded, index, (8, 8), torch.Generator().manual_seed(5))
    assert out.shape == (6, 3, 8, 8) and out.is_contiguous(memory_format=torch.channels_last)
    # Replay the same draws and crop image by image.
    r = torch.Generator().manual_seed(5)
    dy, dx = torch.randint(0, 9, (6,), generator=r), torch.randint(0, 9, (6,), generator=r)
    flips = torch.rand(6, generator=r) < 0.5
    reference = F.pad(images[index], (4, 4, 4, 4))
    for i in range(6):
        crop = reference[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        torch.testing.assert_close(out[i], crop.flip(2) if flips[i] else crop, rtol=0, atol=0)
    assert 0 < int(flips.sum()) < 6
    # The border that comes in is zeros (the mean colour after mean subtraction).
    centre = random_crop_flip(padded, index, (8, 8), None)
    torch.testing.assert_close(centre, images[index], rtol=0, atol=0)


def test_mean_image_is_per_pixel() -> None:
    images = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    images[:2, 0, 0, 0] = 255
    mean = mean_image(images)
    assert mean[0, 0, 0].item() == pytest.approx(0.5) and mean.sum().item() == pytest.approx(0.5)


def _arrays(n: int) -> ImageArrays:
    g = torch.Generator().manual_seed(1)
    return ImageArrays(
        torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g),
        torch.randint(0, 10, (n,), generator=g),
        tuple("abcdefghij"),
    )


def test_batches_are_a_function_of_seed_and_iteration_and_shard_exactly() -> None:
    arrays = _arrays(100)
    pre = Preprocess(input_size=8, resize_to=8, mean_image=mean_image(arrays.images))
    make = lambda **kw: DeviceBatches(arrays, pre, batch_size=16, seed=3, device=torch.device("cpu"), **kw)
    a, b = make(), make()
    for it in (7, 0, 13, 7):  # any order, any instance: the same batch for the same iteration
        xa, ya = a.batch(it)
        xb, yb = b.batch(it)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a.batch(1)[0], a.batch(2)[0])
    shards = [make(rank=r, world_size=2).batch(5) for r in range(2)]
    full = a.batch(5)
    assert torch.equal(torch.cat([s[0] for s in shards]), full[0])
    assert torch.equal(torch.cat([s[1] for s in shards]), full[1])
    with pytest.raises(ValueError, match="divisible"):
        make(rank=0, world_size=3)


def test_progress_bar_on_a_terminal_and_plain_lines_otherwise() -> None:
    import io

    from resnetlab.progress import Progress

    screen = io.StringIO()
    bar = Progress(total=100, stream=screen, tty=True)
    bar.update(50, "loss 1.0")
    bar.message("iter 50: val error 10%")
    bar.close()
    text = screen.getvalue()
    assert "50/100" in text and "loss 1.0" in text and "\r" in text  # tqdm's bar, redrawn in place
    assert "iter 50: val error 10%\n" in text and text.endswith("\n")
    lines: list[str] = []
    plain = Progress(total=100, tty=False, log=lines.append)
    plain.update(25, "loss 2.0")
    assert len(lines) == 1 and lines[0].startswith("iter 25/100 loss 2.0 eta ") and "\r" not in lines[0]
    # Periodic on a non-terminal: updates within plain_every seconds print nothing, the last always.
    lines.clear()
    sparse = Progress(total=10, tty=False, log=lines.append, desc="eval", unit="img", plain_every=3600)
    for n in range(1, 11):
        sparse.update(n)
    assert [line.split(" eta")[0] for line in lines] == ["eval 1/10", "eval 10/10"]
