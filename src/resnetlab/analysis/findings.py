"""One-line readings of each suite's numbers against the paper's claims, computed, not written.

Each function returns sentences built from measured values; where a claim cannot be checked (too
few finished runs) it says nothing rather than guess.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from .paper import depth_of, pretty_name
from .runs import RunSpec
from .tables import final_train_error, group_runs, seed_stats


def _means(specs: list[RunSpec], out: Path) -> dict[str, tuple[float, float | None]]:
    """label -> (mean test error, mean final training error) over finished seeds."""
    result = {}
    for label, runs in group_runs(specs, out).items():
        if not runs:
            continue
        train = [e for e in (final_train_error(s.run_dir(out)) for s, _ in runs) if e is not None]
        result[label] = (seed_stats(runs).mean, statistics.fmean(train) if train else None)
    return result


def _word(deeper: float, shallower: float, *, lower: str = "better", higher: str = "worse") -> str:
    return lower if deeper < shallower else higher if deeper > shallower else "equal"


def degradation(specs: list[RunSpec], out: Path) -> list[str]:
    means = _means(specs, out)
    lines = []
    for prefix, expected in (("plain", "worse: the degradation problem"), ("resnet", "better")):
        models = sorted((m for m in means if m.startswith(prefix)), key=depth_of)
        if len(models) < 2:
            continue
        shallow, deep = models[0], models[-1]
        (test_s, train_s), (test_d, train_d) = means[shallow], means[deep]
        train_text = ""
        if train_s is not None and train_d is not None:
            train_text = (f" training error {train_d:.2f}% vs {train_s:.2f}% ({_word(train_d, train_s)}),")
        lines.append(f"{pretty_name(deep)} vs {pretty_name(shallow)}:{train_text} test error {test_d:.2f}% vs "
                     f"{test_s:.2f}% ({_word(test_d, test_s)}); the paper finds the deeper net {expected}.")
    for depth in sorted({depth_of(m) for m in means}):
        plain, res = means.get(f"plain{depth}"), means.get(f"resnet{depth}")
        if plain and res:
            lines.append(f"Depth {depth}: ResNet test error {res[0]:.2f}% vs plain {plain[0]:.2f}% "
                         f"({'ResNet lower' if res[0] < plain[0] else 'ResNet not lower'}).")
    return lines


def table6(specs: list[RunSpec], out: Path) -> list[str]:
    means = _means(specs, out)
    models = sorted((m for m in means if m != "resnet1202"), key=depth_of)
    lines = []
    if len(models) >= 2:
        errors = [means[m][0] for m in models]
        falling = all(b < a for a, b in zip(errors, errors[1:]))
        lines.append("Test error by depth: " + ", ".join(f"{pretty_name(m)} {e:.2f}%" for m, e in zip(models, errors))
                     + (" — falls with every added depth, as in the paper." if falling
                        else " — not monotone; the paper's falls from 8.75% (20) to 6.43% (110)."))
    if "resnet1202" in means and "resnet110" in means:
        worse = means["resnet1202"][0] > means["resnet110"][0]
        lines.append(f"ResNet-1202 {means['resnet1202'][0]:.2f}% vs ResNet-110 {means['resnet110'][0]:.2f}%: "
                     f"{'worse, as the paper reports (overfitting)' if worse else 'not worse, unlike the paper'}.")
    return lines


def shortcuts(specs: list[RunSpec], out: Path) -> list[str]:
    groups = group_runs(specs, out)
    stats = {label: seed_stats(runs) for label, runs in groups.items() if runs}
    if len(stats) < 2:
        return []
    order = sorted(stats, key=lambda k: stats[k].mean, reverse=True)
    text = " > ".join(f"{k} ({stats[k].mean:.2f}%)" for k in order)
    matches = all(k in stats for k in "ABC") and stats["A"].mean > stats["B"].mean > stats["C"].mean
    spreads = [s.std for s in stats.values() if s.std is not None]
    gaps = [abs(stats[a].mean - stats[b].mean) for a, b in zip(order, order[1:])]
    line = (f"Test error ordering {text}: {'the same as' if matches else 'differs from'} the paper's "
            f"ImageNet ordering A > B > C.")
    if spreads:
        line += (f" The gaps ({', '.join(f'{g:.2f}' for g in gaps)} points) are "
                 f"{'smaller' if max(gaps) < max(spreads) else 'not smaller'} than the largest seed std "
                 f"({max(spreads):.2f}).")
    else:
        line += " One seed per option: gaps this small are within run-to-run noise."
    return [line]


def responses(responses_by_model: dict[str, dict]) -> list[str]:
    mean = {m: statistics.fmean(r["std"]) for m, r in responses_by_model.items() if r.get("std")}
    lines = []
    for depth in sorted({depth_of(m) for m in mean}):
        plain, res = mean.get(f"plain{depth}"), mean.get(f"resnet{depth}")
        if plain is not None and res is not None:
            lines.append(f"Depth {depth}: mean response std ResNet {res:.3f} vs plain {plain:.3f} — "
                         f"{'ResNet smaller, as in the paper' if res < plain else 'ResNet not smaller, unlike the paper'}.")
    resnets = sorted((m for m in mean if m.startswith("resnet")), key=depth_of)
    if len(resnets) >= 2:
        values = [mean[m] for m in resnets]
        falling = all(b < a for a, b in zip(values, values[1:]))
        lines.append("ResNets by depth: " + ", ".join(f"{pretty_name(m)} {v:.3f}" for m, v in zip(resnets, values))
                     + (" — deeper responds less, as in the paper." if falling
                        else " — not monotone; the paper finds deeper ResNets respond less."))
    return lines


def complexity(rows: list[dict]) -> list[str]:
    lines = []
    compared = [(r, (r["macs"] - r["paper_macs"]) / r["paper_macs"]) for r in rows if r.get("paper_macs")]
    if compared:
        worst, rel = max(compared, key=lambda item: abs(item[1]))
        lines.append(f"Measured multiply-adds agree with the paper's FLOPs within {100 * abs(rel):.1f}% "
                     f"(largest gap: {pretty_name(worst['name'])}, {worst['macs'] / 1e9:.2f} G vs "
                     f"{worst['paper_macs'] / 1e9:.1f} G).")
    by_name = {r["name"]: r for r in rows}
    deepest = next((by_name[m] for m in ("resnet152", "resnet101", "resnet50") if m in by_name), None)
    for vgg in ("vgg16", "vgg19"):
        if deepest and vgg in by_name:
            lines.append(f"{pretty_name(deepest['name'])} needs {deepest['macs'] / 1e9:.2f} G multiply-adds, "
                         f"{'fewer' if deepest['macs'] < by_name[vgg]['macs'] else 'not fewer'} than "
                         f"{pretty_name(vgg)}'s {by_name[vgg]['macs'] / 1e9:.2f} G (Sec. 4.1).")
    return lines
