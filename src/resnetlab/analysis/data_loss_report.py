"""What the JPEG copy costs, as the campaign report states it: the JPEG-penalty extrapolation
(quarter-schedule ResNet-20 on copies re-encoded at lower qualities, ``jpeg_penalty.py``) and the
colour-resolution comparison (the same run on a copy whose colour is coarser again).

Both need how far each copy is from the campaign's data (RMS pixel difference, test split). The
copies are not committed (``.gitignore``: they are rebuilt from the data, deterministically), so
each distance is measured once and kept in ``OUT/data-copies.json``, which is: a report on a fresh
clone reads it and rebuilds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..checkpoints.atomic import write_json
from .campaign import PlannedRun
from .campaign_facts import RunFacts, percent, standard_error
from .campaign_folder import read_folder
from .jpeg_penalty import JpegPoint, extrapolate_clean_error, rms_difference

COPIES_FILE = "data-copies.json"
REFERENCE = "resnet20-q"  # the quarter-schedule ResNet-20 on the campaign's own data


def added_rms(out: Path, data: str, planned: PlannedRun) -> float:
    """RMS difference (0..255) between ``planned``'s copy of the data and the data itself (test
    split), from ``OUT/data-copies.json``, or measured (rebuilding the copy if it is gone) and kept."""
    path = Path(out) / COPIES_FILE
    known = json.loads(path.read_text()) if path.is_file() else {}
    folder = Path(planned.data_for(data, out))
    entry = known.get(folder.name)
    if entry is None or entry.get("change") != planned.data_change:
        planned.make_data(data, out)  # deterministic; reused when complete
        entry = {"change": planned.data_change, "test_rms": round(rms_difference(Path(data), folder), 4)}
        write_json(path, {**known, folder.name: entry})
    return entry["test_rms"]


def _start(
    facts: list[RunFacts], data: str | None, chosen: Callable[[RunFacts], bool], heading: list[str]
) -> tuple[list[str], RunFacts | None, list[RunFacts]]:
    """``(the section's lines so far, the reference run, the runs on copies)``. The reference is
    None where the section ends there: no such runs (no lines), some still training, or no data."""
    reference = next((f for f in facts if f.progress.name == REFERENCE), None)
    copies = [f for f in facts if chosen(f)]
    if reference is None or not copies:
        return [], None, []
    waiting = [f"{f.progress.name} {f.progress.state}" for f in (reference, *copies) if f.progress.state != "finished"]
    if waiting:
        return [*heading, f"Pending: {', '.join(waiting)}."], None, []
    if data is None:
        return [*heading, "Needs the campaign's JPEG data to measure how far each copy is from it."], None, []
    return list(heading), reference, copies


def jpeg_section(facts: list[RunFacts], data: str | None, out: Path) -> list[str]:
    heading = ["### The JPEG penalty: ResNet-20 at a quarter schedule on copies re-encoded at lower qualities", ""]
    lines, reference, copies = _start(facts, data, lambda f: f.jpeg_quality is not None, heading)
    if reference is None:
        return lines
    campaign = read_folder(out)[0]
    points = [JpegPoint(quality=None, folder=Path(data), test_error=reference.progress.test_error)]
    measured = {}
    for f in copies:
        planned = campaign.run(f.progress.name)
        folder = Path(planned.data_for(data, out))
        measured[folder] = added_rms(out, data, planned)
        points.append(JpegPoint(quality=f.jpeg_quality, folder=folder, test_error=f.progress.test_error))
    estimate = extrapolate_clean_error(points, rms=lambda source, copy: measured[Path(copy)])
    return lines + estimate.describe()


def chroma_section(facts: list[RunFacts], data: str | None, out: Path) -> list[str]:
    heading = [
        "### Colour resolution: ResNet-20 at a quarter schedule with the colour coarsened again",
        "",
        "The JPEG copy stores colour (Cb, Cr) once per 2x2 pixels (4:2:0: 16x16 colour samples for a "
        "32x32 image), which re-encoding at another quality leaves as it is, so the penalty above does "
        "not price it. Here the same run trains on copies whose colour is averaged over larger blocks, "
        "brightness kept (`data/reencode.py`).",
        "",
    ]
    lines, reference, copies = _start(facts, data, lambda f: f.chroma_factor is not None, heading)
    if reference is None:
        return lines
    campaign = read_folder(out)[0]
    lines += [
        "| data | colour samples per 32x32 image | RMS added | validation | test error | difference (test) |",
        "|---|---|---|---|---|---|",
        f"| JPEG copy (4:2:0) | 16x16 | 0 | {percent(reference.progress.val_error)} | "
        f"{percent(reference.progress.test_error)} | - |",
    ]
    base = reference.progress.test_error
    verdicts = []
    for f in copies:
        side = 32 // f.chroma_factor
        rms = added_rms(out, data, campaign.run(f.progress.name))
        error = f.progress.test_error
        difference = error - base
        noise = (standard_error(base) ** 2 + standard_error(error) ** 2) ** 0.5
        lines.append(
            f"| colour averaged over {f.chroma_factor}x{f.chroma_factor} pixels | {side}x{side} | {rms:.2f} | "
            f"{percent(f.progress.val_error)} | {percent(error)} | {difference:+.2f} points |"
        )
        size = "within" if abs(difference) < 2 * noise else "beyond"
        verdicts.append(
            f"{f.chroma_factor}x{f.chroma_factor}: {difference:+.2f} points, {size} twice the standard error "
            f"of a difference of two such test errors ({noise:.2f} points)"
        )
    return lines + [
        "",
        f"Coarser colour, one seed each: {'; '.join(verdicts)}. The step the copy itself took (32x32 to "
        "16x16 colour samples) removed finer colour detail than these; no copy made from it can undo "
        "that step, so it stays unmeasured here.",
    ]
