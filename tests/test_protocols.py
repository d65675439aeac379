"""Testing protocols (evaluation/views.py, protocols.py) against hand-computed views, scores and errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from resnetlab.data.imagenet import index_split
from resnetlab.data.imagenet_loader import EpochSampler, ImageLoader
from resnetlab.data.preprocess import Preprocess
from resnetlab.evaluation.counts import EvalCounts, count_errors, error_rates
from resnetlab.evaluation.protocols import decode_config_for, evaluate_counts, resolve_protocol
from resnetlab.evaluation.views import one_crop_views, predict_probs, resize_shorter, score_map, ten_crop_views
from resnetlab.models import build_model

# Small stand-ins for 256/224 so the tests stay fast; the protocols read them from Preprocess.
RESIZE, CROP = 28, 24


@dataclass
class Scorer:
    model: nn.Module
    preprocess: Preprocess


def tiny_scorer(seed: int = 0, classes: int = 5) -> Scorer:
    torch.manual_seed(seed)
    model = build_model("cifar_resnet", depth=8, num_classes=classes).eval()
    mean = torch.rand(3, CROP, CROP, generator=torch.Generator().manual_seed(seed))
    return Scorer(model, Preprocess(input_size=CROP, resize="shorter_side", resize_to=RESIZE, mean_image=mean))


def random_image(h: int, w: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def softmax(scorer: Scorer, views: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.softmax(scorer.model(scorer.preprocess.normalize(views)), dim=-1)


def test_ten_crops_are_the_corners_centre_and_mirrors() -> None:
    image = random_image(RESIZE, 37, 1)
    views = ten_crop_views(image, RESIZE, CROP)
    assert views.shape == (10, 3, CROP, CROP)
    by_hand = [image[:, :24, :24], image[:, :24, 13:], image[:, 4:, :24], image[:, 4:, 13:], image[:, 2:26, 6:30]]
    for i, crop in enumerate(by_hand):
        assert torch.equal(views[i], crop)
        assert torch.equal(views[5 + i], crop.flip(-1))
    assert torch.equal(one_crop_views(image, RESIZE, CROP)[0], by_hand[4])


def test_resize_shorter_matches_pil_and_is_a_no_op_at_size() -> None:
    image = random_image(RESIZE, 37, 2)
    assert resize_shorter(image, RESIZE) is image
    big = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(big).resize((60, 45), Image.BILINEAR).resize((120, 90), Image.BILINEAR))
    pil = np.asarray(Image.fromarray(big).resize((37, RESIZE), Image.BILINEAR))
    ours = resize_shorter(torch.from_numpy(big.copy()).permute(2, 0, 1), RESIZE).permute(1, 2, 0).numpy()
    assert ours.shape == pil.shape == (RESIZE, 37, 3)
    # The workers resize with PIL, the protocols with torch: they agree to about one grey level.
    assert np.abs(ours.astype(int) - pil.astype(int)).mean() < 1.0


def test_10crop_and_1crop_average_hand_computed_softmaxes() -> None:
    scorer = tiny_scorer()
    images = [random_image(RESIZE, 37, 3), random_image(40, 30, 4), random_image(RESIZE, RESIZE, 5)]
    probs = predict_probs([scorer], images, "10crop")
    for n, image in enumerate(images):
        resized = (
            image
            if n != 1
            else F.interpolate(
                image[None].float(), size=(37, RESIZE), mode="bilinear", antialias=True, align_corners=False
            )[0]
            .round()
            .to(torch.uint8)
        )
        h, w = resized.shape[1:]
        corners = [(0, 0), (0, w - CROP), (h - CROP, 0), (h - CROP, w - CROP), ((h - CROP) // 2, (w - CROP) // 2)]
        crops = [resized[:, top : top + CROP, left : left + CROP] for top, left in corners]
        crops += [c.flip(-1) for c in crops]
        scores = torch.stack([softmax(scorer, c[None])[0] for c in crops])
        torch.testing.assert_close(probs[n], scores.mean(0), atol=1e-6, rtol=1e-5)
        one = predict_probs([scorer], [image], "1crop")[0]
        torch.testing.assert_close(one, scores[4], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))


def test_score_map_mean_is_fc_of_pooled_features() -> None:
    scorer = tiny_scorer()
    x = scorer.preprocess.normalize(random_image(36, 44, 6)[None])
    with torch.no_grad():
        scores = score_map(scorer.model, x)
        assert scores.shape == (1, 5, 9, 11)
        torch.testing.assert_close(scores.mean((2, 3)), scorer.model(x), atol=1e-5, rtol=1e-5)


def test_multiscale_averages_softmax_over_scales_and_flips() -> None:
    scorer = tiny_scorer()
    images = [random_image(RESIZE, 37, 7), random_image(33, RESIZE, 8)]
    scales = (20, RESIZE, 36)
    probs = predict_probs([scorer], images, "multiscale", scales=scales)
    for n, image in enumerate(images):
        expected = []
        for s in scales:
            x = resize_shorter(image, s)
            assert min(x.shape[1:]) == s
            expected += [softmax(scorer, x[None])[0], softmax(scorer, x.flip(-1)[None])[0]]
        torch.testing.assert_close(probs[n], torch.stack(expected).mean(0), atol=1e-6, rtol=1e-5)


def test_ensemble_averages_the_models_softmax() -> None:
    a, b = tiny_scorer(0), tiny_scorer(1)
    images = [random_image(RESIZE, 30, 9), random_image(30, RESIZE, 10)]
    for protocol in ("1crop", "10crop"):
        together = predict_probs([a, b], images, protocol)
        alone = (predict_probs([a], images, protocol) + predict_probs([b], images, protocol)) / 2
        torch.testing.assert_close(together, alone)
    with pytest.raises(ValueError, match="same number of classes"):
        predict_probs([a, tiny_scorer(2, classes=7)], images, "1crop")


class FixedLogits(nn.Module):
    """Ignores its input: the same logits for every image, at every scale and position."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.fc = nn.Linear(1, len(logits))
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.copy_(torch.tensor(logits))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 1, x.shape[2] // 4, x.shape[3] // 4, device=x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x).mean((2, 3)))


# Ranking of these logits: 1, 3, 2, 5, 0 | 4. Top-5 misses only class 4.
LOGITS = [0.0, 3.0, 1.0, 2.0, -1.0, 0.5]


def test_fixed_logit_model_gives_hand_computed_errors() -> None:
    probs = F.softmax(torch.tensor(LOGITS), -1).expand(6, 6)
    counts = count_errors(probs, torch.tensor([1, 3, 4, 0, 2, 4]))
    assert counts == EvalCounts(6, 5, 2)
    top1, top5 = error_rates(counts)
    assert top1 == pytest.approx(500 / 6) and top5 == pytest.approx(200 / 6)
    with pytest.raises(ValueError, match="labels must lie"):
        count_errors(probs, torch.tensor([6]))


def fixed_folder(root: Path) -> list[int]:
    """Class folders c0..c5 of JPEGs of several sizes; returns the label of every file."""
    rng = np.random.default_rng(0)
    labels = [1, 3, 4, 0, 2, 4, 4, 1]
    for i, label in enumerate(labels):
        folder = root / "val" / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        h, w = [(30, 40), (45, 30), (28, 28), (60, 50)][i % 4]
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.JPEG")
    for label in range(6):
        (root / "val" / f"c{label}").mkdir(parents=True, exist_ok=True)
    return labels


@pytest.mark.parametrize("protocol", ["single", "1crop", "10crop", "multiscale"])
def test_every_protocol_on_a_jpeg_folder(tmp_path: Path, protocol: str) -> None:
    labels = fixed_folder(tmp_path)
    index = index_split(tmp_path, "val")
    pre = Preprocess(input_size=CROP, resize="shorter_side", resize_to=RESIZE)
    scorer = Scorer(FixedLogits(LOGITS), pre)
    loader = ImageLoader(index, decode_config_for(protocol, pre), batch_size=3)
    counts = evaluate_counts([scorer], loader, protocol, scales=(RESIZE, 32))
    top1_wrong = sum(label != 1 for label in labels)
    top5_wrong = sum(label == 4 for label in labels)
    assert counts == EvalCounts(len(labels), top1_wrong, top5_wrong) == EvalCounts(8, 6, 3)


def test_shard_counts_sum_to_the_whole(tmp_path: Path) -> None:
    fixed_folder(tmp_path)
    index = index_split(tmp_path, "val")
    scorer = tiny_scorer(classes=6)
    config = decode_config_for("1crop", scorer.preprocess)
    whole = evaluate_counts([scorer], ImageLoader(index, config, batch_size=3), "1crop")
    shards = [
        evaluate_counts([scorer], ImageLoader(index, config, batch_size=2, rank=r, world=3), "1crop") for r in range(3)
    ]
    assert sum(s.n for s in shards) == whole.n == 8
    assert shards[0] + shards[1] + shards[2] == whole
    assert [len(EpochSampler(8, shuffle=False, rank=r, world=3)) for r in range(3)] == [3, 3, 2]


def test_cifar_checkpoints_use_the_single_view() -> None:
    cifar = Preprocess()  # resize "none": the 32x32 original
    assert resolve_protocol(None, cifar) == "single"
    with pytest.raises(ValueError, match="single original view"):
        resolve_protocol("10crop", cifar)
    imagenet = Preprocess(input_size=224, resize="shorter_side", resize_to=256)
    assert resolve_protocol(None, imagenet) == "10crop"
    assert resolve_protocol("multiscale", imagenet) == "multiscale"
    with pytest.raises(ValueError, match="protocol must be one of"):
        resolve_protocol("5crop", imagenet)
    torch.manual_seed(0)
    scorer = Scorer(build_model("cifar_resnet", depth=8).eval(), cifar)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    probs = predict_probs([scorer], images, "single")
    torch.testing.assert_close(probs, softmax(scorer, images))
