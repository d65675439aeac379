"""The controls of the quarter-schedule ResNet-20, as the campaign report states them: runs that
change one setting of ``resnet20-q`` (the precision, the batch-norm grouping, the seed) on the same
data, network, schedule and split, each beside it with the difference and the noise it sits in.

A control is found, not named: any run of the campaign with the reference's network, budget and
training-set size on the campaign's own data. What it changes is read from the two resolved
configurations, so the table cannot say one thing while the run trained another.
"""

from __future__ import annotations

from .campaign import PlannedRun, toml_value
from .campaign_facts import (
    CIFAR10_TEST_IMAGES,
    RunFacts,
    against_noise,
    combined_standard_error,
    percent,
    shown_hours,
    shown_load,
    shown_test_error,
    standard_error,
)
from .paper import TABLE6_RESNET110_MEAN_STD

REFERENCE = "resnet20-q"
HEADING = (
    "### Controls: ResNet-20 at a quarter schedule, one setting changed at a time (same data and seed unless said)"
)


def _changes(reference: PlannedRun, control: PlannedRun) -> str:
    """``key value instead of value`` for each setting the control trains differently."""
    base, other = reference.config(None).to_dict(), control.config(None).to_dict()
    return ", ".join(
        f"{key} {toml_value(other[key])} instead of {toml_value(base[key])}" for key in base if base[key] != other[key]
    )


def _verdict(reference: RunFacts, control: RunFacts, change: str) -> str:
    a, b = reference.progress, control.progress
    test = b.test_error - a.test_error
    said = f"- {b.name} ({change}): test {test:+.2f} points"
    if a.val_error is not None and b.val_error is not None:
        val = b.val_error - a.val_error
        said += f", validation {val:+.2f}" + (" (opposite signs)" if val * test < 0 else "")
    noise = combined_standard_error(a.test_error, b.test_error)
    return f"{said}: {against_noise(test, noise)} twice the standard error of a difference of two such test errors ({noise:.2f} points)."


def controls_section(facts: list[RunFacts], runs: tuple[PlannedRun, ...]) -> list[str]:
    by_name = {f.progress.name: f for f in facts}
    reference = by_name.get(REFERENCE)
    if reference is None:
        return []
    controls = [f for f in facts if f is not reference and f.setting == reference.setting and not f.on_reduced_data]
    if not controls:
        return []
    planned = {r.name: r for r in runs}
    changes = {f.progress.name: _changes(planned[REFERENCE], planned[f.progress.name]) for f in controls}
    lines = [
        HEADING,
        "",
        "| run | what it changes | precision | training error (last 5 logs) | validation | test | state | hours | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in (reference, *controls):
        p = f.progress
        lines.append(
            f"| {p.name} | {changes.get(p.name, 'the reference')} | {f.precision} | {percent(f.final_train_error)} | "
            f"{percent(p.val_error)} | {shown_test_error(f)} | {p.state} {p.done:,}/{p.total:,} | {shown_hours(f)} | "
            f"{shown_load(f)} |"
        )
    done = [f for f in controls if f.progress.state == "finished"] if reference.progress.state == "finished" else []
    waiting = [
        f"{f.progress.name} {f.progress.state}" for f in (reference, *controls) if f.progress.state != "finished"
    ]
    lines += ["", "Each control minus the reference:" if done else "Compared once finished."]
    lines += [_verdict(reference, f, changes[f.progress.name]) for f in done]
    if waiting:
        lines.append(f"- pending: {', '.join(waiting)}")
    if done:
        near = sum(f.progress.test_error for f in (reference, *done)) / (len(done) + 1)
        lines += [
            "",
            f"One seed each. For scale: the paper's five ResNet-110 runs spread with a standard deviation of "
            f"{TABLE6_RESNET110_MEAN_STD[1]:.2f} points (Table 6), and an error rate of {near:.1f}% measured on "
            f"{CIFAR10_TEST_IMAGES:,} test images has a binomial standard error of {standard_error(near):.2f} "
            "points. A control that changes the seed alone measures the first of those here.",
        ]
    return lines
