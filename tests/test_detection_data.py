"""VOC / COCO fixtures written by the test, the synthetic set, resizing, and the recipes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlab.detection.config import DetectionConfig, list_recipes, load_recipe, parse_overrides
from resnetlab.detection.datasets import (
    VOC_CLASSES,
    COCODetection,
    ConcatDetection,
    Sample,
    SyntheticDetection,
    VOCDetection,
    batch_images,
    resize_sample,
    resize_scale,
    training_targets,
)
from resnetlab.evaluation.detection import COCOEvaluator, VOCEvaluator

VOC_XML = """<annotation><filename>{name}.jpg</filename>
<size><width>40</width><height>30</height><depth>3</depth></size>
<object><name>dog</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>20</xmax><ymax>25</ymax></bndbox></object>
<object><name>person</name><difficult>1</difficult><bndbox><xmin>21</xmin><ymin>1</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>
</annotation>"""


def make_voc(root: Path, ids: list[str], split: str) -> Path:
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name in ids:
        (root / "Annotations" / f"{name}.xml").write_text(VOC_XML.format(name=name))
        Image.new("RGB", (40, 30), (10, 20, 30)).save(root / "JPEGImages" / f"{name}.jpg")
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


def test_voc_loads_difficult_and_joins_07_12(tmp_path):
    voc07 = make_voc(tmp_path / "VOC2007", ["000001", "000002"], "trainval")
    voc12 = make_voc(tmp_path / "VOC2012", ["2008_000001"], "trainval")
    sample = VOCDetection(voc07, "trainval")[0]
    assert sample.image.shape == (3, 30, 40) and sample.image.dtype == torch.uint8
    # 1-based inclusive (1, 2, 20, 25) is continuous (0, 1, 20, 25)
    assert sample.boxes.tolist() == [[0.0, 1.0, 20.0, 25.0], [20.0, 0.0, 40.0, 30.0]]
    assert sample.labels.tolist() == [VOC_CLASSES.index("dog") + 1, VOC_CLASSES.index("person") + 1]
    assert sample.ignore.tolist() == [False, True]
    assert training_targets(sample)["labels"].tolist() == [VOC_CLASSES.index("dog") + 1]
    union = ConcatDetection([VOCDetection(voc07, "trainval"), VOCDetection(voc12, "trainval")])
    assert len(union) == 3 and union[2].image_id == "2008_000001"
    # Evaluate the ground truth as detections: a perfect score, the difficult object not needed.
    ev = VOCEvaluator(len(VOC_CLASSES))
    for i in range(len(union)):
        s = union[i]
        ev.add(s.boxes, s.labels, s.ignore, s.boxes[:1], torch.ones(1), s.labels[:1])
    result = ev.compute()
    assert result["mAP"] == pytest.approx(1.0) and result["mAP_07"] == pytest.approx(1.0)
    with pytest.raises(FileNotFoundError, match="test.txt"):
        VOCDetection(voc07, "test")


def test_coco_loads_crowd_and_evaluates(tmp_path):
    (tmp_path / "val").mkdir()
    Image.new("RGB", (50, 40)).save(tmp_path / "val" / "a.png")
    data = {
        "images": [{"id": 7, "file_name": "a.png", "width": 50, "height": 40}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 18, "bbox": [5, 5, 10, 20], "area": 150.0, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [20, 0, 30, 40], "area": 1200.0, "iscrowd": 1},
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(data))
    ds = COCODetection(tmp_path / "val", tmp_path / "instances.json")
    assert ds.classes == ("person", "dog")  # category id order
    s = ds[0]
    assert s.boxes.tolist() == [[5.0, 5.0, 15.0, 25.0], [20.0, 0.0, 50.0, 40.0]]
    assert s.labels.tolist() == [2, 1] and s.ignore.tolist() == [False, True]
    assert s.areas.tolist() == [150.0, 1200.0]
    ev = COCOEvaluator(2)
    # the dog found; a detection on the crowd region is ignored rather than a false positive
    ev.add(
        s.boxes,
        s.labels,
        s.ignore,
        torch.tensor([[5.0, 5, 15, 25], [22, 2, 48, 38]]),
        torch.tensor([0.5, 0.9]),
        torch.tensor([2, 1]),
        gt_areas=s.areas,
    )
    r = ev.compute()
    assert r["AP"] == pytest.approx(1.0) and np.isnan(r["AP_large"])


def test_synthetic_is_deterministic_and_boxes_hold_shapes():
    ds = SyntheticDetection(size=64, length=4, seed=3, min_side=8, max_side=24)
    a, b = ds[2], ds[2]
    assert torch.equal(a.image, b.image) and torch.equal(a.boxes, b.boxes)
    assert not torch.equal(ds[1].image, a.image)
    assert not torch.equal(SyntheticDetection(size=64, length=4, seed=4, min_side=8, max_side=24)[2].image, a.image)
    for i in range(4):
        s = ds[i]
        assert len(s.boxes) >= 1 and ((s.boxes >= 0) & (s.boxes <= 64)).all()
        assert set(s.labels.tolist()) <= {1, 2, 3}


def test_resize_and_flip_and_batch():
    assert resize_scale(375, 500, 600, 1000) == pytest.approx(1.6)
    assert resize_scale(300, 1000, 600, 1000) == pytest.approx(1.0)  # longer side capped at 1000
    image = torch.zeros(3, 20, 40, dtype=torch.uint8)
    sample = Sample(image, torch.tensor([[0.0, 0, 10, 20]]), torch.tensor([1]), torch.tensor([False]))
    out = resize_sample(sample, 10, 100, flip=True)
    assert out.image.shape == (3, 10, 20) and out.scale == pytest.approx(0.5)
    assert out.boxes.tolist() == [[15.0, 0.0, 20.0, 10.0]]
    batch, sizes = batch_images([out.image, torch.full((3, 5, 7), 255, dtype=torch.uint8)], (0.5, 0.5, 0.5), (1, 1, 1))
    assert batch.shape == (2, 3, 16, 32) and sizes == [(10, 20), (5, 7)]
    assert batch[1, 0, 0, 0].item() == pytest.approx(0.5) and batch[1, 0, 6, 8].item() == 0.0


def test_every_recipe_parses_and_bad_keys_are_named(tmp_path):
    assert {"voc-resnet101", "coco-resnet101", "synthetic-resnet18"} <= set(list_recipes())
    for name in list_recipes():
        config = load_recipe(name)
        assert isinstance(config, DetectionConfig) and config.name == name
    voc = load_recipe("voc-resnet101")
    assert (voc.backbone, voc.min_size, voc.max_size, voc.pool_size) == ("resnet101", 600, 1000, 14)
    assert voc.train_sets == ("VOC2007/trainval", "VOC2012/trainval")
    with pytest.raises(ValueError, match="unknown key.*learning_rate"):
        load_recipe("voc-resnet101", {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="pooler"):
        load_recipe("voc-resnet101", parse_overrides(["pooler=roi_max"]))
    assert load_recipe("voc-resnet101", parse_overrides(["pooler=roi_align", "lr=0.002"])).lr == 0.002
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "synthetic"\nitrations = 5\n')
    with pytest.raises(ValueError, match="itrations"):
        load_recipe(str(bad))
    with pytest.raises(FileNotFoundError, match="available"):
        load_recipe("no-such-recipe")
