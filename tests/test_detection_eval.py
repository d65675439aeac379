"""VOC and COCO evaluators on hand-computed cases, and against pycocotools where it installs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from resnetlab.evaluation.detection import COCOEvaluator, VOCEvaluator, voc_ap


def test_voc_ap_formulas():
    recall, precision = np.array([0.5, 0.5, 0.5, 1.0]), np.array([1.0, 0.5, 1 / 3, 0.5])
    assert voc_ap(recall, precision, False) == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    # 11-point: recall >= 0..0.5 reaches precision 1 (6 points), >= 0.6..1.0 only 0.5 (5 points).
    assert voc_ap(recall, precision, True) == pytest.approx((6 * 1 + 5 * 0.5) / 11)


def test_voc_evaluator_difficult_duplicates_and_missing_classes():
    ev = VOCEvaluator(num_classes=3)
    # image A: one object, one difficult object; detections: hit, hit-on-difficult, duplicate.
    ev.add(
        torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
        torch.tensor([1, 1]),
        torch.tensor([False, True]),
        torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]]),
        torch.tensor([0.9, 0.8, 0.6]),
        torch.tensor([1, 1, 1]),
    )
    # image B: one object of class 1 and one of class 3; a miss (0.7) and a hit (0.5) for class 1.
    ev.add(
        torch.tensor([[0.0, 0, 10, 10], [40, 40, 50, 50]]),
        torch.tensor([1, 3]),
        torch.tensor([False, False]),
        torch.tensor([[50.0, 50, 60, 60], [1, 0, 10, 10]]),
        torch.tensor([0.7, 0.5]),
        torch.tensor([1, 1]),
    )
    result = ev.compute()
    # class 1: TP, (ignored), FP, FP, TP over 2 objects -> recall .5 .5 .5 1, precision 1 .5 .33 .5
    assert result["ap"][0] == pytest.approx(0.75)
    assert result["ap_07"][0] == pytest.approx(8.5 / 11)
    assert math.isnan(result["ap"][1])  # class 2 has no object: left out of the mean
    assert result["ap"][2] == 0.0  # class 3 never detected
    assert result["mAP"] == pytest.approx((0.75 + 0.0) / 2)
    assert result["mAP_07"] == pytest.approx((8.5 / 11) / 2)


def _coco_case(with_crowd: bool) -> COCOEvaluator:
    ev = COCOEvaluator(num_classes=1)
    gt = [[0.0, 0, 10, 10]] + ([[20.0, 20, 60, 60]] if with_crowd else [])
    crowd = [False] + ([True] if with_crowd else [])
    ev.add(
        torch.tensor(gt),
        torch.ones(len(gt), dtype=torch.long),
        torch.tensor(crowd),
        torch.tensor([[0.0, 0, 10, 7.9], [0, 0, 10, 10], [25, 25, 35, 35]]),
        torch.tensor([0.9, 0.8, 0.95]),
        torch.tensor([1, 1, 1]),
    )
    return ev


def test_coco_evaluator_hand_computed():
    r = _coco_case(with_crowd=True).compute()
    # The 0.95 detection lies inside the crowd region (IoA 1): ignored. The 0.9 one (IoU 0.79) is the
    # hit up to IoU 0.75 (AP 1 at 6 thresholds); above, the 0.8 one hits after one miss (AP 0.5 at 4).
    assert r["AP"] == pytest.approx((6 * 1 + 4 * 0.5) / 10)
    assert r["AP50"] == pytest.approx(1.0) and r["AP75"] == pytest.approx(1.0)
    assert r["AP_small"] == pytest.approx(r["AP"])  # the one object has area 100 < 32^2
    assert math.isnan(r["AP_medium"]) and math.isnan(r["AP_large"])
    # Without the crowd region, the 0.95 detection is a false positive ranked first.
    assert _coco_case(with_crowd=False).compute()["AP"] < r["AP"]


def test_against_pycocotools():
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    images, annotations, results = [], [], []
    ours = COCOEvaluator(num_classes=3)
    for image_id in range(1, 13):
        images.append({"id": image_id, "width": 300, "height": 300})
        n = int(rng.integers(1, 6))
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(4, 120, (n, 2))
        labels = rng.integers(1, 4, n)
        crowd = rng.random(n) < 0.15
        for i in range(n):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(labels[i]),
                    "bbox": [*xy[i], *wh[i]],
                    "area": float(wh[i].prod()),
                    "iscrowd": int(crowd[i]),
                }
            )
        # detections: jittered copies of the objects plus random boxes
        m = int(rng.integers(0, 8))
        dxy = np.concatenate((xy + rng.normal(0, 5, xy.shape), rng.uniform(0, 200, (m, 2))))
        dwh = np.concatenate((wh * rng.uniform(0.8, 1.2, wh.shape), rng.uniform(4, 120, (m, 2))))
        dl = np.concatenate((labels, rng.integers(1, 4, m)))
        ds = rng.random(len(dl))
        for i in range(len(dl)):
            results.append(
                {"image_id": image_id, "category_id": int(dl[i]), "bbox": [*dxy[i], *dwh[i]], "score": float(ds[i])}
            )
        ours.add(
            torch.tensor(np.concatenate((xy, xy + wh), 1)),
            torch.tensor(labels),
            torch.tensor(crowd),
            torch.tensor(np.concatenate((dxy, dxy + dwh), 1)),
            torch.tensor(ds),
            torch.tensor(dl),
            gt_areas=torch.tensor(wh.prod(1)),
        )
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": str(c)} for c in (1, 2, 3)],
    }
    gt.createIndex()
    evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    r = ours.compute()
    mine = [r["AP"], r["AP50"], r["AP75"], r["AP_small"], r["AP_medium"], r["AP_large"]]
    mine = [-1.0 if math.isnan(v) else v for v in mine]
    assert mine == pytest.approx(list(evaluator.stats[:6]), abs=1e-9)
