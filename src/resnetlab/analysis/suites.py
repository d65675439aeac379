"""``resnetlab reproduce SUITE``: train (or reuse) the runs of one paper result, then report it.

Suites (PAPER.md Sec. 5): ``degradation`` (Fig. 1/6), ``table6``, ``shortcuts`` (the CIFAR analogue
of Table 3), ``responses`` (Fig. 7) and ``complexity`` (Table 1 FLOPs, no training). Each writes
``OUT/suite-{suite}.json`` (how it was run), ``OUT/report-{suite}.md``, ``OUT/figures/*.png`` and
refreshes the index ``OUT/report.md``; ``resnetlab reproduce readme`` rebuilds the README block from
those files and the run directories.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..models import list_models
from . import findings
from .curves import plot_degradation
from .paper import FIG7_MODELS, TABLE6_ERROR, pretty_name
from .report import SUITE_ORDER, SuiteReport, data_title, deviation_lines, setup_lines, write_suite_report
from .runs import RunSpec, check_config, ensure_run, read_json, run_config
from .tables import (complexity_rows, complexity_table, degradation_table, responses_table, shortcuts_table,
                     table6_table)

CIFAR_RESNETS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202")
CIFAR_PLAINS = ("plain20", "plain32", "plain44", "plain56", "plain110")
SHORTCUT_OPTIONS = ("A", "B", "C")
# (allowed models, default models) per suite.
SUITE_MODELS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "degradation": (CIFAR_PLAINS + CIFAR_RESNETS[:5], CIFAR_PLAINS[:4] + CIFAR_RESNETS[:5]),
    "table6": (CIFAR_RESNETS, CIFAR_RESNETS[:5]),
    "shortcuts": (CIFAR_RESNETS, ("resnet20",)),
    "responses": (CIFAR_PLAINS + CIFAR_RESNETS, FIG7_MODELS),
    "complexity": (None, ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18", "plain34",
                          "vgg16", "vgg19") + CIFAR_RESNETS),
}
TITLES = {
    "degradation": "Degradation: plain nets vs ResNets on CIFAR-10 (Fig. 1, Fig. 6)",
    "table6": "CIFAR-10 test error of ResNets by depth (Table 6)",
    "shortcuts": "Shortcut options A / B / C on a CIFAR-10 ResNet (the CIFAR analogue of Table 3)",
    "responses": "Standard deviation of layer responses on CIFAR-10 (Fig. 7)",
    "complexity": "Parameters and multiply-adds (Table 1, FLOPs vs VGG-16/19)",
}


@dataclass(frozen=True)
class SuiteOptions:
    suite: str
    out: Path = Path("results")
    data: str | None = None  # dataset spec exactly as given; None: the built-in synthetic set
    budget: float = 1.0  # fraction of the paper's 64k-iteration schedule
    seeds: int = 1  # seeds 0..seeds-1
    models: tuple[str, ...] = ()  # () = the suite's default set
    overrides: dict = field(default_factory=dict)  # recipe keys replaced after scaling (library/tests)

    def __post_init__(self) -> None:
        if self.suite not in SUITE_ORDER:
            raise ValueError(f"suite must be one of {', '.join(SUITE_ORDER)}, got {self.suite!r}")
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)) or not 0 < self.budget <= 1:
            raise ValueError(f"budget must be a fraction in (0, 1], got {self.budget!r}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds must be a positive integer, got {self.seeds!r}")
        allowed = SUITE_MODELS[self.suite][0] or tuple(
            m for m in list_models() if m not in ("cifar_resnet", "cifar_plain"))
        unknown = [m for m in self.models if m not in allowed]
        if unknown:
            raise ValueError(f"models: {', '.join(unknown)} not part of suite {self.suite}; valid: {', '.join(allowed)}")
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "models", tuple(self.models))

    @property
    def chosen_models(self) -> tuple[str, ...]:
        return self.models or SUITE_MODELS[self.suite][1]

    def command(self) -> str:
        """The exact command line that (re)produces this suite."""
        args = ["resnetlab", "reproduce", self.suite]
        if self.suite != "complexity":
            if self.data is not None:
                args += ["--data", self.data]
            args += ["--budget", f"{self.budget:g}", "--seeds", str(self.seeds)]
        args += ["--out", str(self.out)]
        if self.models:
            args += ["--models", *self.models]
        return shlex.join(args)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["models"] = list(self.models)
        return d

    @classmethod
    def from_dict(cls, d: dict, out: Path | None = None) -> "SuiteOptions":
        d = dict(d)
        d["models"] = tuple(d.get("models", ()))
        if out is not None:
            d["out"] = Path(out)
        return cls(**d)


def suite_specs(options: SuiteOptions) -> list[RunSpec]:
    """The training runs a suite needs (none for ``complexity``); ``label`` is the table row."""
    if options.suite == "complexity":
        return []
    seeds = range(1) if options.suite == "responses" else range(options.seeds)
    common = dict(budget=options.budget, data=options.data, overrides=options.overrides)
    specs = []
    for model in options.chosen_models:
        if options.suite == "shortcuts":
            for option in SHORTCUT_OPTIONS:
                for seed in seeds:
                    config = run_config(model, seed=seed, model_options={"shortcut": option}, **common)
                    specs.append(RunSpec(f"{model}-{option}-s{seed}", model, seed, config, option))
        else:
            for seed in seeds:
                specs.append(RunSpec(f"{model}-s{seed}", model, seed, run_config(model, seed=seed, **common), model))
    return specs


@dataclass
class SuiteResult:
    status: str  # "completed" | "interrupted"
    report: Path | None
    actions: dict[str, str]  # run name -> "reused" | "trained" | "resumed" | "interrupted"


def reproduce(
    options: SuiteOptions, *, trainer: Callable | None = None, arrays=None, cache_dir: Path | None = None,
    should_stop: Callable[[], bool] = lambda: False, log: Callable[[str], None] = print,
    train_missing: bool = True,
) -> SuiteResult:
    """Train every missing run of the suite (resuming partial ones), then write its report.

    ``arrays`` = ``(train, test)`` ImageArrays replaces loading ``options.data`` (tests);
    ``trainer`` defaults to ``engine.train.train``. ``train_missing=False`` trains nothing and
    reports the finished runs present (the others show as "not finished").
    """
    if trainer is None:
        from ..engine.train import train as trainer
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    actions: dict[str, str] = {}
    for spec in suite_specs(options):
        if not train_missing:
            check_config(spec.run_dir(out), spec.config)
            continue
        actions[spec.name] = ensure_run(spec, out, trainer=trainer, log=log, should_stop=should_stop,
                                        data=arrays, cache_dir=cache_dir)
        if actions[spec.name] == "interrupted":
            log(f"interrupted; run the same command again to continue: {options.command()}")
            return SuiteResult("interrupted", None, actions)
    manifest = {**options.to_dict(), "command": options.command()}
    (out / f"suite-{options.suite}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if options.suite == "responses":
        compute_responses(options, arrays=arrays, cache_dir=cache_dir, log=log)
    report = build_report(options, plot=True)
    path = write_suite_report(out, report)
    log(f"report: {path} (index {out / 'report.md'})")
    return SuiteResult("completed", path, actions)


def compute_responses(options: SuiteOptions, *, arrays=None, cache_dir: Path | None = None,
                      log: Callable[[str], None] = print) -> Path:
    """Fig. 7 stds of every seed-0 run of the suite, saved raw to ``OUT/responses.json``."""
    from .responses import run_response_stds

    if arrays is not None:
        test = arrays[1]
    else:
        from ..data import load_dataset

        test = load_dataset(options.data, "test", cache_dir=cache_dir)
    results = {}
    for spec in suite_specs(options):
        if not (spec.run_dir(options.out) / "summary.json").is_file():
            log(f"{spec.name}: not finished; left out of the responses")
            continue
        log(f"{spec.name}: layer responses on {len(test):,} test images")
        results[spec.model] = {"run": f"runs/{spec.name}", **run_response_stds(spec.run_dir(options.out), test.images)}
    path = options.out / "responses.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def build_report(options: SuiteOptions, *, plot: bool = True, command: str | None = None) -> SuiteReport:
    """The suite's report from its run directories (and figures, when ``plot``)."""
    out, suite = options.out, options.suite
    specs = suite_specs(options)
    figures_dir = out / "figures"
    report = SuiteReport(suite, TITLES[suite], command or options.command(), table="")
    if suite == "complexity":
        rows = complexity_rows(list(options.chosen_models))
        report.table = complexity_table(rows)
        report.findings = findings.complexity(rows)
        report.notes = ["Measured on the models built here by tracing one forward pass: multiply-adds of "
                        "convolutions and fully connected layers (BN, ReLU, pooling and additions left out, as "
                        "the paper's FLOPs are). ImageNet ResNets use option B shortcuts and the paper's v1 "
                        "stride (on the first 1x1 of a bottleneck); CIFAR nets use option A.",
                        "Reference params: Table 6's rounded counts for the CIFAR nets; for ImageNet nets the "
                        "paper prints none, so the column holds the common torchvision option-B counts."]
        if plot:
            from .figures import plot_complexity

            plot_complexity(rows, figures_dir / "complexity.png")
        report.figures = [("Multiply-adds per network, measured (bars) and the paper's FLOPs (markers)",
                           "figures/complexity.png")]
        return report

    report.setup = setup_lines(specs, out, options.data, options.budget)
    report.deviations = deviation_lines(specs, out, options.data, options.budget, options.seeds, suite)
    if suite == "degradation":
        report.table = degradation_table(specs, out)
        runs = {s.model: s.run_dir(out) for s in specs if s.seed == 0 and (s.run_dir(out) / "metrics.jsonl").is_file()}
        if plot and runs:
            plot_degradation(runs, figures_dir / "degradation.png", paper_errors=TABLE6_ERROR,
                             title=f"{data_title(options.data)}, {options.budget:g} of the paper's schedule (seed 0)")
        report.figures = [("Fig. 6 reproduced: training error (dashed) and test error (bold) of plain nets "
                           "(left) and ResNets (right), seed 0", "figures/degradation.png")]
        report.findings = findings.degradation(specs, out)
    elif suite == "table6":
        report.table = table6_table(specs, out)
        report.findings = findings.table6(specs, out)
        runs = {s.model: s.run_dir(out) for s in specs if s.seed == 0 and (s.run_dir(out) / "metrics.jsonl").is_file()}
        if plot and runs:
            plot_degradation(runs, figures_dir / "table6.png", paper_errors=TABLE6_ERROR,
                             title=f"ResNets on {data_title(options.data)}, {options.budget:g} of the paper's schedule (seed 0)")
        report.figures = [("Training (dashed) and test (bold) error of the Table 6 ResNets, seed 0",
                           "figures/table6.png")]
    elif suite == "shortcuts":
        report.table = shortcuts_table(specs, out)
        report.findings = findings.shortcuts(specs, out)
        report.deviations.insert(0, f"CIFAR analogue of Table 3: {', '.join(map(pretty_name, options.chosen_models))} "
                                    f"on CIFAR-10 instead of ResNet-34 on ImageNet; the paper's numbers are ImageNet "
                                    f"10-crop errors and compare in ordering only (A > B > C in error).")
        if plot:
            from .curves import plot_runs

            seed0 = [s for s in specs if s.seed == 0 and (s.run_dir(out) / "metrics.jsonl").is_file()]
            if seed0:
                plot_runs([s.run_dir(out) for s in seed0], figures_dir / "shortcuts.png",
                          labels=[f"{pretty_name(s.model)} option {s.label}" for s in seed0],
                          title=f"Shortcut options on {data_title(options.data)} (seed 0)")
        report.figures = [("Training (dashed) and test (bold) error per shortcut option, seed 0",
                           "figures/shortcuts.png")]
    elif suite == "responses":
        path = out / "responses.json"
        responses = read_json(path) if path.is_file() else {}
        report.table = responses_table(responses)
        report.findings = findings.responses(responses)
        report.notes = ["Raw per-layer stds: [responses.json](responses.json).",
                        "Each network's seed-0 run (the final model, `checkpoints/last.pt`)."]
        report.deviations.append("Responses are taken with BN in eval mode (running statistics) over the whole "
                                 "test set; one std per layer over all images, channels and positions. The paper "
                                 "does not say how it pools the std.")
        if plot and responses:
            from .responses import plot_responses

            plot_responses(responses, figures_dir / "responses.png",
                           title=f"{data_title(options.data)} test set, {options.budget:g} of the paper's schedule")
        report.figures = [("Fig. 7 reproduced: std of each 3x3 layer's response (after BN, before ReLU/addition), "
                           "in network order (top) and sorted (bottom)", "figures/responses.png")]
    report.figures = [(caption, rel) for caption, rel in report.figures if (out / rel).is_file()]
    return report


def load_suite(out: Path, suite: str) -> tuple[SuiteOptions, str] | None:
    """The options a suite in ``out`` was run with (runs read from ``out``), and its command line."""
    path = Path(out) / f"suite-{suite}.json"
    if not path.is_file():
        return None
    manifest = read_json(path)
    command = manifest.pop("command", None)
    options = SuiteOptions.from_dict(manifest, out=Path(out))
    return options, command or options.command()


def update_readme(results_dir: Path, readme: Path) -> Path:
    """Regenerate the README block from the suites recorded in ``results_dir`` (no training)."""
    from .report import readme_block, replace_readme_block

    readme = Path(readme)
    if not readme.is_file():
        raise FileNotFoundError(f"no README at {readme}")
    results_dir = Path(results_dir)
    reports = []
    for suite in SUITE_ORDER:
        loaded = load_suite(results_dir, suite)
        if loaded is not None:
            reports.append((results_dir, build_report(loaded[0], plot=False, command=loaded[1])))
    if not reports:
        raise FileNotFoundError(f"no suite results in {results_dir} (looked for suite-*.json; run `resnetlab reproduce`)")
    text = replace_readme_block(readme.read_text(), readme_block(reports, readme), source=str(readme))
    readme.write_text(text)
    return readme
