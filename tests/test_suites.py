"""The suite registry: one module per paper result, each a full record, and nothing else lists them."""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
import textwrap
from pathlib import Path

import pytest

import resnetlab.analysis as analysis
from resnetlab.analysis.suites import SUITES, Suite, SuiteOptions, build_report, suite_specs
from resnetlab.analysis.suites.registry import MACHINERY, discover
from resnetlab.cli import build_parser

PACKAGE = Path(analysis.__file__).parent
PAPER_RESULTS = ("degradation", "table6", "shortcuts", "responses", "complexity")


def test_every_paper_result_is_registered_in_report_order():
    assert tuple(SUITES) == PAPER_RESULTS
    modules = {p.stem for p in (PACKAGE / "suites").glob("*.py")} - MACHINERY - {"__init__"}
    assert modules == set(PAPER_RESULTS)  # one module per result, named as the suite


@pytest.mark.parametrize("name", PAPER_RESULTS)
def test_every_suite_has_the_full_record(name):
    suite = SUITES[name]
    assert isinstance(suite, Suite) and suite.name == name
    assert suite.title and suite.help and suite.paper, "title, help line and the paper's numbers"
    assert suite.default_models and (suite.models is None or set(suite.default_models) <= set(suite.models))
    for field in ("plan", "results", "table", "findings", "seeds_deviation", "deviations"):
        assert callable(getattr(suite, field)), field
    assert suite.figure.file.endswith(".png") and suite.figure.caption and callable(suite.figure.draw)
    options = SuiteOptions(name, Path("x"), budget=0.5)
    specs = suite_specs(options)
    assert bool(specs) == suite.trains  # complexity alone trains nothing
    assert len({s.name for s in specs}) == len(specs)


def test_no_per_suite_branches_outside_the_suite_modules():
    """``if suite == "table6"`` chains are what the registry replaces: the shared code names no suite."""
    shared = ("__init__", "curves", "paper", "report", "responses", "runs", "tables")
    files = [
        *(PACKAGE / "suites").glob("*.py"),
        *(PACKAGE / f"{name}.py" for name in shared),
        PACKAGE.parent / "cli" / "reproduce.py",
    ]
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(c, ast.Constant) and c.value in PAPER_RESULTS for c in node.comparators
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_a_new_suite_is_one_module(tmp_path, monkeypatch):
    """A module with a ``SUITE`` is found; the CLI and the options accept it with no other edit."""
    package = tmp_path / "more_suites"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "table6_again.py").write_text(
        textwrap.dedent("""
        import dataclasses
        from resnetlab.analysis.suites import SUITES
        SUITE = dataclasses.replace(SUITES["table6"], name="table6-again", order=9, help="Table 6, again")
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover("more_suites", package)
    assert list(found) == ["table6-again"]
    monkeypatch.setitem(SUITES, "table6-again", found["table6-again"])
    args = build_parser().parse_args(["reproduce", "table6-again", "--budget", "0.5", "--out", str(tmp_path)])
    assert args.suite == "table6-again" and args.budget == 0.5
    options = SuiteOptions("table6-again", tmp_path, budget=0.5, models=("resnet20",))
    assert options.command().startswith("resnetlab reproduce table6-again --budget 0.5")
    report = build_report(options, plot=False)
    assert report.title == SUITES["table6"].title and "| ResNet-20 |" in report.table
    sys.modules.pop("more_suites.table6_again", None)


def test_a_module_without_suite_is_an_error(tmp_path, monkeypatch):
    package = tmp_path / "broken_suites"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "half_done.py").write_text("TITLE = 'no record yet'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match="half_done defines no SUITE"):
        discover("broken_suites", package)


def test_suite_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SUITES["table6"].title = "changed"  # type: ignore[misc]


def test_manifest_round_trip_keeps_the_command(tmp_path):
    options = SuiteOptions("shortcuts", tmp_path, data="d", budget=0.25, seeds=2)
    again = SuiteOptions.from_dict(json.loads(json.dumps(options.to_dict())))
    assert again == options and again.command() == options.command()
