"""Detection metrics: PASCAL VOC mAP@0.5 (11-point VOC2007 and all-points area) and COCO AP.

VOC (``voc_eval.py`` of the devkit / py-faster-rcnn): a detection is a true positive when its IoU
with an unmatched ground-truth box of its class exceeds 0.5; ``difficult`` objects are not counted
and detections matching them are neither right nor wrong.

COCO (``pycocotools`` ``COCOeval``, bbox): AP averaged over IoU 0.50:0.05:0.95 and 101 recall
points, at most 100 detections per image; crowd regions are matched by intersection over the
detection's area and never penalise; small/medium/large split at 32^2 and 96^2 pixels of area.
"""

from __future__ import annotations

import numpy as np
import torch

from .boxes import box_ioa, box_iou


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool) -> float:
    """Area under the precision/recall curve, VOC style."""
    if use_07_metric:  # VOC2007: mean of the best precision at recall >= 0, 0.1, ..., 1
        return float(
            np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in np.arange(0.0, 1.1, 0.1)])
        )
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the precision envelope
    changes = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class VOCEvaluator:
    def __init__(self, num_classes: int, iou_threshold: float = 0.5) -> None:
        self.num_classes = num_classes
        self.iou_threshold = iou_threshold
        self.gts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.dets: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, gt_boxes, gt_labels, gt_difficult, det_boxes, det_scores, det_labels) -> None:
        """One image: ground truth (labels 1..C) and detections."""
        self.gts.append(
            (_np(gt_boxes).reshape(-1, 4), _np(gt_labels).reshape(-1), _np(gt_difficult).reshape(-1).astype(bool))
        )
        self.dets.append((_np(det_boxes).reshape(-1, 4), _np(det_scores).reshape(-1), _np(det_labels).reshape(-1)))

    def class_ap(self, label: int) -> tuple[float, float]:
        """(all-points AP, 11-point AP) of one class; NaN when it has no non-difficult object."""
        records = []
        npos = 0
        for image, ((_gb, gl, gd), (db, ds, dl)) in enumerate(zip(self.gts, self.dets)):
            npos += int(((gl == label) & ~gd).sum())
            for box, score in zip(db[dl == label], ds[dl == label]):
                records.append((-float(score), image, box))
        if npos == 0:
            return float("nan"), float("nan")
        records.sort(key=lambda r: r[0])  # stable: equal scores keep image order
        used: dict[int, np.ndarray] = {}
        tp = np.zeros(len(records))
        fp = np.zeros(len(records))
        for i, (_, image, box) in enumerate(records):
            gb, gl, gd = self.gts[image]
            mine = np.nonzero(gl == label)[0]
            if len(mine) == 0:
                fp[i] = 1
                continue
            iou = box_iou(
                torch.as_tensor(box[None], dtype=torch.float64), torch.as_tensor(gb[mine], dtype=torch.float64)
            )[0].numpy()
            j = int(iou.argmax())
            if iou[j] > self.iou_threshold:
                if gd[mine[j]]:
                    continue  # a difficult object: neither right nor wrong
                taken = used.setdefault(image, np.zeros(len(gl), dtype=bool))
                if not taken[mine[j]]:
                    tp[i], taken[mine[j]] = 1, True
                else:
                    fp[i] = 1  # a duplicate detection
            else:
                fp[i] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / npos
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        return voc_ap(recall, precision, False), voc_ap(recall, precision, True)

    def compute(self) -> dict:
        aps = [self.class_ap(c) for c in range(1, self.num_classes + 1)]
        area = np.array([a for a, _ in aps])
        eleven = np.array([b for _, b in aps])
        valid = ~np.isnan(area)
        return {
            "mAP": float(area[valid].mean()) if valid.any() else float("nan"),
            "mAP_07": float(eleven[valid].mean()) if valid.any() else float("nan"),
            "ap": area.tolist(),
            "ap_07": eleven.tolist(),
        }


AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


class COCOEvaluator:
    def __init__(self, num_classes: int, max_detections: int = 100) -> None:
        self.num_classes = num_classes
        self.max_detections = max_detections
        self.images: list[dict] = []

    def add(self, gt_boxes, gt_labels, gt_crowd, det_boxes, det_scores, det_labels, gt_areas=None) -> None:
        gb = _np(gt_boxes).reshape(-1, 4).astype(np.float64)
        areas = _np(gt_areas).reshape(-1) if gt_areas is not None else (gb[:, 2] - gb[:, 0]) * (gb[:, 3] - gb[:, 1])
        self.images.append(
            {
                "gt": gb,
                "gl": _np(gt_labels).reshape(-1),
                "crowd": _np(gt_crowd).reshape(-1).astype(bool),
                "area": areas.astype(np.float64),
                "db": _np(det_boxes).reshape(-1, 4).astype(np.float64),
                "ds": _np(det_scores).reshape(-1).astype(np.float64),
                "dl": _np(det_labels).reshape(-1),
            }
        )

    def _match(self, im: dict, label: int, area_range: tuple[float, float]):
        """COCOeval.evaluateImg for one image and class: (scores, matched [T, D], ignored [T, D], #gt)."""
        g = np.nonzero(im["gl"] == label)[0]
        d = np.nonzero(im["dl"] == label)[0]
        if len(g) == 0 and len(d) == 0:
            return None
        lo, hi = area_range
        g_ignore = im["crowd"][g] | (im["area"][g] < lo) | (im["area"][g] > hi)
        g = g[np.argsort(g_ignore, kind="mergesort")]  # ignored ground truth last
        g_ignore, crowd = np.sort(g_ignore, kind="mergesort"), im["crowd"][g]
        d = d[np.argsort(-im["ds"][d], kind="mergesort")][: self.max_detections]
        db, gb = torch.as_tensor(im["db"][d]), torch.as_tensor(im["gt"][g])
        ious = torch.where(torch.as_tensor(crowd)[None], box_ioa(db, gb), box_iou(db, gb)).numpy()
        t_count = len(IOU_THRESHOLDS)
        matched = np.zeros((t_count, len(d)), dtype=bool)
        d_ignore = np.zeros((t_count, len(d)), dtype=bool)
        for t, threshold in enumerate(IOU_THRESHOLDS):
            g_taken = np.zeros(len(g), dtype=bool)
            for i in range(len(d)):
                best, m = min(threshold, 1 - 1e-10), -1
                for j in range(len(g)):
                    if g_taken[j] and not crowd[j]:
                        continue
                    if m > -1 and not g_ignore[m] and g_ignore[j]:
                        break  # matched a real object: ignored ones cannot do better
                    if ious[i, j] < best:
                        continue
                    best, m = ious[i, j], j
                if m > -1:
                    matched[t, i], d_ignore[t, i], g_taken[m] = True, g_ignore[m], True
        box = im["db"][d]
        d_area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
        outside = (d_area < lo) | (d_area > hi)
        d_ignore |= ~matched & outside[None]  # unmatched detections of another size do not count
        return im["ds"][d], matched, d_ignore, int((~g_ignore).sum())

    def precision(self, label: int, area_range: tuple[float, float]) -> np.ndarray | None:
        """``[T, R]`` interpolated precision at each IoU threshold and recall point, None if no gt."""
        parts = [p for p in (self._match(im, label, area_range) for im in self.images) if p is not None]
        n_gt = sum(p[3] for p in parts)
        if n_gt == 0:
            return None
        scores = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
        order = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate([p[1] for p in parts], axis=1)[:, order]
        ignored = np.concatenate([p[2] for p in parts], axis=1)[:, order]
        tps = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
        fps = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
        out = np.zeros((len(IOU_THRESHOLDS), len(RECALL_POINTS)))
        for t in range(len(IOU_THRESHOLDS)):
            recall = tps[t] / n_gt
            prec = tps[t] / (fps[t] + tps[t] + np.spacing(1))
            prec = np.maximum.accumulate(prec[::-1])[::-1] if len(prec) else prec
            index = np.searchsorted(recall, RECALL_POINTS, side="left")
            valid = index < len(prec)
            out[t, valid] = prec[index[valid]]
        return out

    def compute(self) -> dict[str, float]:
        results = {}
        for area_name, area_range in AREA_RANGES.items():
            per_class = [self.precision(c, area_range) for c in range(1, self.num_classes + 1)]
            stack = np.stack([p for p in per_class if p is not None]) if any(p is not None for p in per_class) else None
            if area_name == "all":
                results["AP"] = float(stack.mean()) if stack is not None else float("nan")
                results["AP50"] = float(stack[:, 0].mean()) if stack is not None else float("nan")
                results["AP75"] = float(stack[:, 5].mean()) if stack is not None else float("nan")
            else:
                results[f"AP_{area_name}"] = float(stack.mean()) if stack is not None else float("nan")
        return results
