"""The campaign's report beside the paper: Table 6, Fig. 6 (degradation), the controls of the
quarter-schedule ResNet-20 (``controls_report``: precision, batch-norm grouping, seed) and what the
JPEG copy costs (``data_loss_report``), as Markdown for the README's "Reproducing the
paper" section.

Everything printed is read from the campaign folder: final test errors from ``summary.json`` (the
final model, in fp32, never selected on the test set), the latest logged errors of runs still in
flight (marked as such), hours from the checkpoints, the load from ``campaign-log.jsonl``, the
precision and hosts from each run's ``meta.json`` segments. A comparison the paper makes is judged
only once every run it needs has finished.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from .campaign_facts import RunFacts, run_facts, shown_hours, shown_load
from .campaign_facts import percent as _pct
from .campaign_facts import shown_test_error as _test
from .campaign_facts import standard_error as _standard_error
from .campaign_folder import read_folder
from .campaign_log import host_description
from .controls_report import controls_section
from .data_loss_report import chroma_section, jpeg_section, schedule_section
from .paper import PAPER_WARMUP, TABLE6_ERROR, depth_of, pretty_name

BEGIN, END = "<!-- campaign report: begin -->", "<!-- campaign report: end -->"
DEGRADATION = ("plain20-q", "plain56-q", "resnet20-q", "resnet56-q")


def table6_section(facts: list[RunFacts]) -> list[str]:
    lines = [
        "### Table 6: CIFAR-10 test error at the full schedule (64k iterations, all 50k training images)",
        "",
        "| network | paper | ours | training error (last 5 logs) | state | iterations | precision | hours | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    full = [f for f in facts if f.budget == 1.0 and not f.on_reduced_data]
    for f in full:
        p = f.progress
        lines.append(
            f"| {pretty_name(f.model)} | {_pct(TABLE6_ERROR.get(f.model))} | {_test(f)} | "
            f"{_pct(f.final_train_error)} | {p.state} | {p.done:,}/{p.total:,} | {f.precision} | "
            f"{shown_hours(f)} | {shown_load(f)} |"
        )
    return lines + _depth_claims(full) + _warmup_note(full)


def _depth_claims(full: list[RunFacts]) -> list[str]:
    """Table 6's claim, that the test error falls with depth from ResNet-20 to ResNet-110, checked
    between each finished full-schedule ResNet and the next deeper finished one."""
    resnets = sorted((f for f in full if f.model.startswith("resnet")), key=lambda f: depth_of(f.model))
    if len(resnets) < 2:
        return []
    finished = [f for f in resnets if f.progress.state == "finished"]
    by_name = {f.progress.name: f for f in finished}
    claims = [
        f"- {pretty_name(deeper.model)} tests better than {pretty_name(shallower.model)}: "
        f"{_ordering(by_name, shallower.progress.name, deeper.progress.name, 'test')}"
        for shallower, deeper in itertools.pairwise(finished)
    ]
    waiting = [pretty_name(f.model) for f in resnets if f.progress.state != "finished"]
    if waiting:
        claims.append(f"- {', '.join(waiting)}: pending (compared once finished)")
    return ["", "The paper's claim (Sec. 4.2, Table 6): the test error falls as the ResNet gets deeper.", *claims]


def _warmup_note(full: list[RunFacts]) -> list[str]:
    """Which runs warm up, and where that departs from the paper (Sec. 4.2: ResNet-110 only)."""
    warm = [f for f in full if f.warmup]
    if not warm:
        return []
    said = ", ".join(
        f"{pretty_name(f.model)} (lr {f.warmup[0]:g} until the training error is below {100 * f.warmup[1]:g}%)"
        for f in warm
    )
    extra = [pretty_name(f.model) for f in warm if f.model not in PAPER_WARMUP]
    return [
        "",
        f"Warm-up: {said}. The paper warms up ResNet-110 only (Sec. 4.2)"
        + (
            f"; for {', '.join(extra)} it is this campaign's departure from the recipe, with its reason in "
            "the campaign definition (src/resnetlab/campaigns/cifar10.toml)."
            if extra
            else "."
        ),
    ]


def _ordering(facts: dict[str, RunFacts], worse: str, better: str, key: str) -> str:
    a, b = facts.get(worse), facts.get(better)
    if a is None or b is None or a.progress.state != "finished" or b.progress.state != "finished":
        return "pending (both runs must finish)"
    value = (lambda f: f.final_train_error) if key == "train" else (lambda f: f.progress.test_error)
    va, vb = value(a), value(b)
    if va is None or vb is None:
        return "pending"
    verdict = "holds" if va > vb else "FAILS"
    said = f"{verdict}: {va:.2f}% vs {vb:.2f}%"
    if key == "test":  # how far apart, against the sampling noise of one test error
        said += (
            f" (margin {va - vb:.2f} points; one test error near {(va + vb) / 2:.1f}% has a binomial "
            f"standard error of {_standard_error((va + vb) / 2):.2f}"
        )
        if a.progress.val_error is not None and b.progress.val_error is not None:
            said += f"; validation {a.progress.val_error:.2f}% vs {b.progress.val_error:.2f}%"
        said += ")"
    return said


def degradation_section(facts: list[RunFacts]) -> list[str]:
    by_name = {f.progress.name: f for f in facts}
    present = [by_name[n] for n in DEGRADATION if n in by_name]
    if not present:
        return []
    lines = [
        "### Fig. 6: degradation at a quarter of the schedule (16k iterations, 45k/5k split)",
        "",
        "| run | training error (last 5 logs) | validation | test | state | precision | hours | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in present:
        p = f.progress
        lines.append(
            f"| {pretty_name(f.model)} | {_pct(f.final_train_error)} | {_pct(p.val_error)} | {_test(f)} | "
            f"{p.state} {p.done:,}/{p.total:,} | {f.precision} | {shown_hours(f)} | {shown_load(f)} |"
        )
    lines += [
        "",
        "The paper's claims (Sec. 4.2, Fig. 6):",
        f"- plain-56 trains worse than plain-20 (training error): {_ordering(by_name, 'plain56-q', 'plain20-q', 'train')}",
        f"- plain-56 tests worse than plain-20: {_ordering(by_name, 'plain56-q', 'plain20-q', 'test')}",
        f"- ResNet-56 trains better than ResNet-20 (training error): {_ordering(by_name, 'resnet20-q', 'resnet56-q', 'train')}",
        f"- ResNet-56 tests better than ResNet-20: {_ordering(by_name, 'resnet20-q', 'resnet56-q', 'test')}",
    ]
    return lines


def campaign_report(out: Path, *, figure: Path | None = None, link: Path | None = None) -> str:
    """The Markdown section; ``figure``: also draw Fig. 6 from the degradation runs there, linked
    as ``link`` (default: ``figure`` itself)."""
    out = Path(out)
    data, facts = run_facts(out)
    hours = sum(f.progress.seconds_spent for f in facts) / 3600
    lines = [
        BEGIN,
        f"Generated by `resnetlab reproduce report {out}` from the committed campaign folder. Data: "
        f"{data or 'synthetic'} (the CIFAR-10 JPEG copy, quality ~75 with 4:2:0 chroma, not the PNG-exact "
        f"release). Test errors are the final model's in fp32 over the 10,000 test images; "
        f"nothing is selected on the test set. Values in parentheses are runs still in flight, at the "
        f"iteration shown. Hours: training time on 2-core CPU hosts ({hours:.1f} h so far; "
        f"hosts: {'; '.join(sorted({h for f in facts for h in f.hosts.split('; ') if h != '-'})) or host_description()}); "
        "load: the median 1-minute load average sampled while the run trained (2 = both cores busy, "
        "which is what two campaign jobs side by side do).",
        "",
    ]
    runs = read_folder(out)[0].runs
    compiled = [r.name for r in runs if r.overrides.get("compile") is True]
    auto = [r.name for r in runs if r.overrides.get("compile") == "auto"]
    if compiled or auto:
        clauses = [f"compiles {', '.join(compiled)}"] if compiled else []
        if auto:
            clauses.append(
                f'compiles {", ".join(auto)} only where it measured a gain (`compile = "auto"`): in fp32, '
                "and in bf16 on a CPU with AMX (1.18-1.21x there; 0.85-1.08x in bf16 on the AMD hosts)"
            )
        lines[-1:-1] = [
            "",
            f"Precision is given per segment of iterations. `+ torch.compile` marks a compiled training "
            f"step: the same arithmetic, with batch norm, ReLU and the additions fused into fewer "
            f"passes (1.16-1.18x in fp32 on an Intel host, benchmarks/RESULTS.md; only the last bits "
            f"differ from eager). The campaign {'; it '.join(clauses)}; a start on a host that "
            f"cannot compile trains eager, and its segment says so.",
        ]
    for section in (
        table6_section(facts),
        degradation_section(facts),
        controls_section(facts, runs),
        jpeg_section(facts, data, out),
        chroma_section(facts, data, out),
        schedule_section(facts),
    ):
        if section:
            lines += section + [""]
    if figure is not None:
        drawn = degradation_figure(out, facts, figure)
        if drawn is not None:
            lines += [f"![Fig. 6 at a quarter schedule]({(link or drawn).as_posix()})", ""]
    lines.append(END)
    return "\n".join(lines)


def degradation_figure(out: Path, facts: list[RunFacts], path: Path) -> Path | None:
    from .curves import plot_degradation

    runs = {
        f.model: out / f.progress.name
        for f in facts
        if f.progress.name in DEGRADATION and f.progress.state != "pending"
    }
    if not runs:
        return None
    return plot_degradation(runs, path, title="CIFAR-10 JPEG copy, 16k iterations (1/4 of the paper's schedule)")


def update_readme(readme: Path, section: str) -> bool:
    """Replace the README's text between the report markers; False when it is unchanged."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} has no '{BEGIN}' ... '{END}' markers to put the report between")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = head + section + tail
    if new == text:
        return False
    readme.write_text(new)
    return True
