"""``resnetlab reproduce SUITE``: train (or reuse) the runs of one paper result, then report it.

The same steps for every suite (each suite's module says what differs): plan its runs, train the
missing ones (resuming partial ones), write ``OUT/suite-{suite}.json`` (how it was run), measure
what the runs alone do not record (Fig. 7's responses), then write ``OUT/report-{suite}.md`` with
its table, findings and figure (``OUT/figures/``) and refresh the index ``OUT/report.md``.
``resnetlab reproduce readme`` rebuilds the README block from those files and the run directories.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...checkpoints.atomic import write_json
from ..report import SuiteReport, deviation_lines, setup_lines, write_suite_report
from ..runs import RunSpec, check_config, ensure_run, read_json
from .options import SuiteOptions
from .registry import SUITES

logger = logging.getLogger(__name__)  # a child of the library's one logger, "resnetlab"


def suite_specs(options: SuiteOptions) -> list[RunSpec]:
    """The training runs a suite needs (none for ``complexity``); ``label`` is the table row."""
    return SUITES[options.suite].plan(options)


@dataclass
class SuiteResult:
    status: str  # "completed" | "interrupted"
    report: Path | None
    actions: dict[str, str]  # run name -> "reused" | "trained" | "resumed" | "interrupted"


def reproduce(
    options: SuiteOptions,
    *,
    trainer: Callable | None = None,
    arrays=None,
    cache_dir: Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = logger.info,
    train_missing: bool = True,
    progress_tty: bool | None = False,
) -> SuiteResult:
    """Train every missing run of the suite (resuming partial ones), then write its report.

    ``arrays`` = ``(train, test)`` ImageArrays replaces loading ``options.data`` (tests);
    ``trainer`` defaults to ``engine.train.train``. ``train_missing=False`` trains nothing and
    reports the finished runs present (the others show as "not finished"). ``progress_tty``: each
    run's own progress (``engine.train.train``): None a bar where stderr is a terminal, False (the
    default) plain lines to ``log``.
    """
    if trainer is None:
        from ...engine.train import train as trainer
    suite = SUITES[options.suite]
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    actions: dict[str, str] = {}
    specs = suite.plan(options)
    for k, spec in enumerate(specs, 1):
        if not train_missing:
            check_config(spec.run_dir(out), spec.config)
            continue
        log(f"run {k} of {len(specs)}: {spec.name}")  # then the run's own progress bar
        actions[spec.name] = ensure_run(
            spec,
            out,
            trainer=trainer,
            log=log,
            should_stop=should_stop,
            data=arrays,
            cache_dir=cache_dir,
            progress_tty=progress_tty,
        )
        if actions[spec.name] == "interrupted":
            log(f"interrupted; run the same command again to continue: {options.command()}")
            return SuiteResult("interrupted", None, actions)
    manifest = {**options.to_dict(), "command": options.command()}
    write_json(out / f"suite-{options.suite}.json", manifest)
    if suite.measure is not None:
        suite.measure(options, arrays=arrays, cache_dir=cache_dir, log=log)
    path = write_suite_report(out, build_report(options, plot=True))
    log(f"report: {path} (index {out / 'report.md'})")
    return SuiteResult("completed", path, actions)


def build_report(options: SuiteOptions, *, plot: bool = True, command: str | None = None) -> SuiteReport:
    """The suite's report from its run directories (and its figure, when ``plot``)."""
    suite, out = SUITES[options.suite], options.out
    specs = suite.plan(options)
    report = SuiteReport(suite.name, suite.title, command or options.command(), table="")
    if suite.trains:
        report.setup = setup_lines(specs, out, options.data, options.budget)
        common = deviation_lines(specs, out, options.data, options.budget, suite.seeds_deviation(options.seeds))
        report.deviations = suite.deviations(options, common)
    results = suite.results(options, specs)
    report.table = suite.table(results)
    report.findings = suite.findings(results)
    report.notes = list(suite.notes)
    figure = suite.figure
    if plot:
        figure.draw(results, options, out / figure.path)
    if figure.needs_no_runs or (out / figure.path).is_file():
        report.figures = [(figure.caption, figure.path)]
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
    from ..report import readme_block, replace_readme_block

    readme = Path(readme)
    if not readme.is_file():
        raise FileNotFoundError(f"no README at {readme}")
    results_dir = Path(results_dir)
    reports = []
    for suite in SUITES:
        loaded = load_suite(results_dir, suite)
        if loaded is not None:
            reports.append((results_dir, build_report(loaded[0], plot=False, command=loaded[1])))
    if not reports:
        raise FileNotFoundError(
            f"no suite results in {results_dir} (looked for suite-*.json; run `resnetlab reproduce`)"
        )
    text = replace_readme_block(readme.read_text(), readme_block(reports, readme), source=str(readme))
    readme.write_text(text)
    return readme
