"""What the JPEG copy costs: the test error extrapolated back to images without JPEG loss.

The clean CIFAR-10 images are not available here, so the penalty is bracketed instead of measured.
The campaign trains the same quarter-schedule ResNet-20 on the JPEG copy (quality ~75) and on
copies re-encoded from it at lower qualities (data/reencode.py). For each copy we measure the
distortion the re-encoding added (RMS pixel difference to its source, test split). Two stated
assumptions then place every run on one distortion axis:

1. JPEG's added RMS error is proportional to its quantiser scale (the IJG quality scaling: 5000/q
   below 50, 200 - 2q above), since quantisation noise grows with the step. The fit of the measured
   re-encodings gives the constant, hence the source's own distortion at quality 75.
2. Independent distortions add in variance: a re-encoded copy is sqrt(D75^2 + d_q^2) from clean.

The test error is fitted as a straight line in that distortion (least squares) and read at zero.
Three points and two assumptions: an estimate with its inputs printed, not a measurement. The
report prints how well assumption 1 fits the measured re-encodings, and a cross-check that needs
neither assumption: the test error as a straight line in the quantiser scale of each copy's
coarsest encoding, read at scale 0 (quality 100: no quantisation loss, the 4:2:0 chroma
subsampling kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOURCE_QUALITY = 75  # the campaign data's encoding (../shared/data/cifar10-jpeg: quality ~75)


def quantiser_scale(quality: int) -> float:
    """The IJG libjpeg scaling of the base quantisation tables, in percent."""
    return 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality


def rms_difference(source: Path, copy: Path, split: str = "test") -> float:
    """RMS difference (0..255 pixel units, RGB) between the images of two folders with one tree."""
    from PIL import Image

    files = sorted(p for p in (Path(source) / split).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not files:
        raise ValueError(f"{source}/{split} holds no JPEG images")
    total, count = 0.0, 0
    for path in files:
        other = Path(copy) / path.relative_to(source)
        with Image.open(path) as a, Image.open(other) as b:
            x = np.asarray(a.convert("RGB"), dtype=np.float64)
            y = np.asarray(b.convert("RGB"), dtype=np.float64)
        total += float(((x - y) ** 2).sum())
        count += x.size
    return math.sqrt(total / count)


def coarsest_scale(quality: int | None) -> float:
    """The quantiser scale that bounds a copy's loss: a re-encoding of the quality-75 source at a
    lower quality quantises more coarsely than the source did, the source itself at quality 75."""
    source = quantiser_scale(SOURCE_QUALITY)
    return source if quality is None else max(source, quantiser_scale(quality))


def line_at_zero(x: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares line through the points (exact through two): (value at x = 0, slope)."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


@dataclass(frozen=True)
class JpegPoint:
    quality: int | None  # None: the campaign's own data (the source of the re-encodings)
    folder: Path
    test_error: float


@dataclass(frozen=True)
class PenaltyEstimate:
    qualities: list[int | None]
    added_rms: list[float]  # measured: each copy against the source (0 for the source)
    distortion: list[float]  # the fitted distance of each from clean
    errors: list[float]
    clean_error: float
    slope: float  # test-error points per RMS pixel unit
    predicted_rms: list[float]  # assumption 1's added RMS for each copy (the source's own for the source)
    scale_clean_error: float  # the cross-check: error linear in the coarsest quantiser scale, at 0

    @property
    def penalty(self) -> float:
        return self.errors[0] - self.clean_error

    @property
    def scale_penalty(self) -> float:
        return self.errors[0] - self.scale_clean_error

    def describe(self) -> list[str]:
        rows = [
            "| data | quantiser scale | RMS added by re-encoding | the same by assumption 1 | distance from clean (fit) | test error |",
            "|---|---|---|---|---|---|",
        ]
        for q, added, fit, d, e in zip(
            self.qualities, self.added_rms, self.predicted_rms, self.distortion, self.errors, strict=True
        ):
            name = f"JPEG copy (quality ~{SOURCE_QUALITY})" if q is None else f"re-encoded at quality {q}"
            fitted = f"({fit:.2f} from clean)" if q is None else f"{fit:.2f}"
            rows.append(f"| {name} | {coarsest_scale(q):.0f} | {added:.2f} | {fitted} | {d:.2f} | {e:.2f}% |")
        worst = max(abs(a - f) for a, f in zip(self.added_rms[1:], self.predicted_rms[1:], strict=True))
        low, high = sorted((self.penalty, self.scale_penalty))
        return rows + [
            "",
            f"Extrapolated to no JPEG loss: {self.clean_error:.2f}% test error, so the JPEG copy costs "
            f"about {self.penalty:.2f} points at this schedule ({self.slope:.2f} points per RMS pixel "
            "unit; assumptions in `analysis/jpeg_penalty.py`: noise proportional to the quantiser "
            "scale, distortions adding in variance, error linear in distortion).",
            "",
            f"How far to trust it: assumption 1 misses the measured re-encodings by up to {worst:.2f} RMS units "
            f"(table). The cross-check that needs neither assumption (test error as a straight line in each "
            f"copy's coarsest quantiser scale, read at scale 0: quality 100, chroma still subsampled) gives "
            f"{self.scale_clean_error:.2f}%, a penalty of {self.scale_penalty:.2f} points. Both are "
            f"extrapolations from {len(self.errors)} runs of one seed; together they put the JPEG cost at this "
            f"schedule at {low:.2f}-{high:.2f} points.",
        ]


def extrapolate_clean_error(points: list[JpegPoint], *, rms=rms_difference) -> PenaltyEstimate:
    """``points[0]`` is the source data, the others its re-encodings (at least one)."""
    if len(points) < 2 or points[0].quality is not None or any(p.quality is None for p in points[1:]):
        raise ValueError("need the source data first, then at least one re-encoded copy")
    added = [0.0] + [rms(points[0].folder, p.folder) for p in points[1:]]
    scales = np.array([quantiser_scale(p.quality) for p in points[1:]])
    per_scale = float(np.dot(scales, added[1:]) / np.dot(scales, scales))  # least squares through 0
    source = per_scale * quantiser_scale(SOURCE_QUALITY)
    distortion = [source] + [math.hypot(source, a) for a in added[1:]]
    errors = [p.test_error for p in points]
    clean_error, slope = line_at_zero(distortion, errors)
    scale_clean_error, _ = line_at_zero([coarsest_scale(p.quality) for p in points], errors)
    predicted = [source] + [per_scale * s for s in scales]
    return PenaltyEstimate(
        [p.quality for p in points], added, distortion, errors, clean_error, slope, predicted, scale_clean_error
    )
