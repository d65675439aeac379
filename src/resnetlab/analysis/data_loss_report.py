"""What the JPEG copy costs, as the campaign report states it: the JPEG-penalty extrapolation
(quarter-schedule ResNet-20 on copies re-encoded at lower qualities, ``jpeg_penalty.py``), the
colour-resolution comparison (the same run on a copy whose colour is coarser again), and whether
the cost of a re-encoding grows with the schedule (the same re-encoding at two budgets).

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
from .campaign_facts import RunFacts, against_noise, combined_standard_error, percent, shown_test_error
from .campaign_folder import read_folder
from .jpeg_penalty import JpegPoint, coarsest_scale, extrapolate_clean_error, line_at_zero, rms_difference
from .paper import TABLE6_ERROR, pretty_name

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
    if reference is None:
        return [], None, []
    # Only the runs trained like the reference: a copy at another budget is schedule_section's.
    copies = [f for f in facts if chosen(f) and f.setting == reference.setting]
    if not copies:
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
        noise = combined_standard_error(base, error)
        lines.append(
            f"| colour averaged over {f.chroma_factor}x{f.chroma_factor} pixels | {side}x{side} | {rms:.2f} | "
            f"{percent(f.progress.val_error)} | {percent(error)} | {difference:+.2f} points |"
        )
        verdicts.append(
            f"{f.chroma_factor}x{f.chroma_factor}: {difference:+.2f} points, {against_noise(difference, noise)} twice the standard error "
            f"of a difference of two such test errors ({noise:.2f} points)"
        )
    return lines + [
        "",
        f"Coarser colour, one seed each: {'; '.join(verdicts)}. The step the copy itself took (32x32 to "
        "16x16 colour samples) removed finer colour detail than these; no copy made from it can undo "
        "that step, so it stays unmeasured here.",
    ]


def _schedule(budget: float) -> str:
    return {1.0: "full schedule", 0.5: "half schedule", 0.25: "quarter schedule"}.get(budget, f"{budget:g} x schedule")


def schedule_section(facts: list[RunFacts]) -> list[str]:
    """Whether the cost of a JPEG re-encoding grows with the schedule: for each network and quality
    trained at more than one budget, the run on the copy beside the run of the same network, budget
    and training set on the campaign's data. The quarter-schedule penalty is measured; whether it
    holds at the full schedule, where Table 6 is compared with the paper, is this section's question."""
    base: dict[tuple[str, float, int], RunFacts] = {}
    for f in facts:  # the first of a setting in the campaign's order (resnet20-q, not its fp32 control)
        if not f.on_reduced_data:
            base.setdefault(f.setting, f)
    groups: dict[tuple[str, int], list[tuple[RunFacts, RunFacts]]] = {}
    for f in facts:
        if f.jpeg_quality is not None and f.chroma_factor is None and f.setting in base:
            groups.setdefault((f.model, f.jpeg_quality), []).append((base[f.setting], f))
    lines: list[str] = []
    for (model, quality), pairs in groups.items():
        if len({copy.budget for _, copy in pairs}) < 2:
            continue
        pairs.sort(key=lambda pair: pair[1].budget)
        lines += [
            f"### Does the JPEG penalty grow with the schedule? {pretty_name(model)} on the copy and re-encoded "
            f"at quality {quality}",
            "",
            f"| schedule | iterations | training images | JPEG copy | re-encoded at quality {quality} | cost of the re-encoding |",
            "|---|---|---|---|---|---|",
        ]
        for reference, copy in pairs:
            both = reference.progress.state == copy.progress.state == "finished"
            cost = f"{copy.progress.test_error - reference.progress.test_error:+.2f} points" if both else "-"
            lines.append(
                f"| {_schedule(copy.budget)} ({reference.progress.name}, {copy.progress.name}) | "
                f"{copy.progress.total:,} | {copy.train_images:,} | {shown_test_error(reference)} | "
                f"{shown_test_error(copy)} | {cost} |"
            )
        lines += ["", *_schedule_verdict(pairs, quality), ""]
    return lines[:-1]


def _schedule_verdict(pairs: list[tuple[RunFacts, RunFacts]], quality: int) -> list[str]:
    waiting = [
        f"{f.progress.name} {f.progress.state}" for pair in pairs for f in pair if f.progress.state != "finished"
    ]
    if waiting:
        return [f"Pending: {', '.join(waiting)} (compared once finished)."]
    (short_ref, short_copy), (long_ref, long_copy) = pairs[0], pairs[-1]
    errors = [f.progress.test_error for f in (short_ref, short_copy, long_ref, long_copy)]
    short_cost, long_cost = errors[1] - errors[0], errors[3] - errors[2]
    change = long_cost - short_cost
    noise = combined_standard_error(*errors)
    # Two points on the cross-check's axis (each copy's coarsest quantiser scale), read at scale 0.
    clean, _ = line_at_zero([coarsest_scale(None), coarsest_scale(quality)], errors[2:])
    paper = TABLE6_ERROR.get(long_ref.model) if long_ref.budget == 1.0 else None
    against = f", against the paper's {percent(paper)} on the clean images" if paper is not None else ""
    return [
        f"From the {_schedule(short_copy.budget)} to the {_schedule(long_copy.budget)}, the cost of re-encoding at "
        f"quality {quality} goes from {short_cost:+.2f} to {long_cost:+.2f} points: a change of {change:+.2f}, "
        f"{against_noise(change, noise)} twice its standard error ({noise:.2f} points: four test errors, one seed each). Read "
        f"back along a straight line in each copy's coarsest quantiser scale to scale 0 (the cross-check "
        f"above, from two runs here), the {_schedule(long_ref.budget)} {pretty_name(long_ref.model)} would "
        f"test at about {clean:.2f}% without JPEG quantisation{against}.",
    ]
