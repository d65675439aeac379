"""Reports from fake run directories: Table 6 mean ± std, deviations, index, README block."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnetlab.analysis.report import SuiteReport, describe_data, deviation_lines, replace_readme_block, write_index
from resnetlab.analysis.runs import config_differences, run_config
from resnetlab.analysis.suites import SUITES, Runs, SuiteOptions, build_report, suite_specs, update_readme
from resnetlab.analysis.suites.table6 import table as table6_table
from resnetlab.analysis.tables import SeedStats, markdown_table

BUDGET = 0.04  # 2,560 iterations, milestones 1,280 / 1,920


def fake_run(out: Path, spec, error: float, params: int, precision: str = "bf16") -> None:
    run_dir = spec.run_dir(out)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(spec.config.to_dict()))
    (run_dir / "summary.json").write_text(
        json.dumps({"test_top1_error": error, "test_top5_error": error / 4, "params": params, "precision": precision})
    )
    (run_dir / "meta.json").write_text(
        json.dumps({"device": "cuda", "cuda_device": "NVIDIA H100", "train_images": 45000, "val_images": 5000})
    )


@pytest.fixture
def table6_out(tmp_path) -> tuple[Path, SuiteOptions]:
    out = tmp_path / "results" / "cifar10-jpeg"
    options = SuiteOptions(
        "table6", out, data="../data/cifar10-jpeg", budget=BUDGET, seeds=3, models=("resnet20", "resnet110")
    )
    errors = {("resnet20", 0): 8.0, ("resnet20", 1): 9.0, ("resnet20", 2): 10.5, ("resnet110", 0): 7.25}
    for spec in suite_specs(options):
        if (spec.model, spec.seed) in errors:  # resnet110 seeds 1 and 2 never finished
            fake_run(out, spec, errors[spec.model, spec.seed], 272_474 if spec.model == "resnet20" else 1_730_714)
    (out / "suite-table6.json").write_text(json.dumps({**options.to_dict(), "command": options.command()}))
    return out, options


def test_seed_stats_against_hand_computation():
    # mean = 27.5 / 3 = 9.1667; deviations -1.1667, -0.1667, 1.3333; squares 1.3611 + 0.0278 + 1.7778
    # = 3.1667; sample variance 3.1667 / 2 = 1.5833; std = 1.2583.
    stats = SeedStats((8.0, 9.0, 10.5))
    assert stats.mean == pytest.approx(9.166667, abs=1e-6)
    assert stats.std == pytest.approx(1.258306, abs=1e-6)
    assert (stats.best, stats.text()) == (8.0, "9.17 ± 1.26")
    assert SeedStats((7.25,)).std is None and SeedStats((7.25,)).text() == "7.25"


def test_table6_rows_from_summaries(table6_out):
    out, options = table6_out
    table = table6_table(Runs(suite_specs(options), out))
    assert table.splitlines()[2] == "| ResNet-20 | 0.27M | 9.17 ± 1.26 | 8.00 | 8.75 | 3 |"
    assert table.splitlines()[3] == "| ResNet-110 | 1.73M | 7.25 | 7.25 | 6.43 (6.61 ± 0.16) | 1 |"


def test_report_states_budget_data_and_deviations(table6_out):
    _out, options = table6_out
    text = build_report(options, plot=False).markdown()
    assert "resnetlab reproduce table6 --data ../data/cifar10-jpeg --budget 0.04 --seeds 3" in text
    assert "2,560 iterations, learning rate 0.1 divided by 10 at 1,280, 1,920" in text
    assert "JPEG re-encoded copy (quality ~75)" in text
    assert "Reduced budget: 2,560 iterations instead of 64,000" in text
    assert "bf16 autocast" in text and "45,000/5,000" in text
    assert "ResNet-110/1202 warm-up" in text and "capped at 16 iterations" in text
    assert "Runs: 4 finished of 6" in text
    assert "Changed from the paper's recipe" not in text  # the plain recipe, only scaled


def test_deviations_for_official_data_full_budget_fp32(tmp_path):
    options = SuiteOptions("degradation", tmp_path, data=None, budget=1.0, models=("plain20",))
    spec = suite_specs(options)[0]
    fake_run(tmp_path, spec, 9.0, 272_474, precision="fp32")
    config_path = spec.run_dir(tmp_path) / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["sync_bn"]  # written before that knob existed: its default is what the run did
    config_path.write_text(json.dumps(saved))
    seeds_line = SUITES["degradation"].seeds_deviation(1)
    lines = deviation_lines([spec], tmp_path, None, 1.0, seeds_line)
    assert not any("Reduced budget" in line or "autocast" in line or "Changed" in line for line in lines)
    saved["momentum"] = 0.8
    config_path.write_text(json.dumps(saved))
    assert "Changed from the paper's recipe: momentum = 0.8." in deviation_lines(
        [spec], tmp_path, None, 1.0, seeds_line
    )
    assert any("synthetic" in line for line in lines) and "One run per network (seed 0)." in lines


def test_config_comparison_tolerates_knobs_added_later():
    wanted = run_config("plain20", budget=BUDGET, data="d", seed=0)
    saved = wanted.to_dict()
    assert config_differences(saved, wanted) == []
    missing = {k: v for k, v in saved.items() if k != "sync_bn"}  # an older config.json
    assert config_differences(missing, wanted) == []
    assert config_differences({**saved, "lr": 0.2, "seed": 1}, wanted) == ["lr", "seed"]
    assert config_differences({k: v for k, v in saved.items() if k != "lr"}, wanted.replace(lr=0.2)) == ["lr"]


def test_readme_block_replacement(table6_out, tmp_path):
    out, _ = table6_out
    (out / "figures").mkdir()
    (out / "figures" / "table6.png").write_bytes(b"\x89PNG")  # as committed; figures are linked, not redrawn
    readme = tmp_path / "README.md"
    readme.write_text("intro\n\n<!-- reproduce:begin -->\nSTALE\n<!-- reproduce:end -->\n\nfooter\n")
    update_readme(out, readme)
    text = readme.read_text()
    assert text.startswith("intro\n\n<!-- reproduce:begin -->\n") and text.endswith(
        "<!-- reproduce:end -->\n\nfooter\n"
    )
    assert "STALE" not in text
    assert "| ResNet-20 | 0.27M | 9.17 ± 1.26 | 8.00 | 8.75 | 3 |" in text
    assert "(results/cifar10-jpeg/figures/table6.png)" in text  # relative to the README's folder
    assert "[report-table6.md](results/cifar10-jpeg/report-table6.md)" in text
    update_readme(out, readme)
    assert readme.read_text() == text  # regenerating is idempotent


def test_readme_without_markers_is_an_error(table6_out, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="reproduce:begin"):
        update_readme(table6_out[0], readme)
    with pytest.raises(ValueError, match="no '<!-- reproduce:begin -->'"):
        replace_readme_block("<!-- reproduce:end --> <!-- reproduce:begin -->", "x")
    with pytest.raises(FileNotFoundError, match="no suite results"):
        readme.write_text("<!-- reproduce:begin --><!-- reproduce:end -->")
        update_readme(tmp_path / "empty", readme)


def test_index_includes_present_suites_in_paper_order(tmp_path):
    for suite in ("complexity", "degradation"):
        (tmp_path / f"report-{suite}.md").write_text(
            SuiteReport(suite, f"title {suite}", f"resnetlab reproduce {suite}", "| a |").markdown(level=1)
        )
    index = write_index(tmp_path).read_text()
    assert index.index("## title degradation") < index.index("## title complexity")
    assert "[table6]" not in index and "### Results" in index


def test_markdown_table_and_data_lines():
    assert markdown_table(["a", "b"], [["x", "1"]]) == "| a | b |\n| :--- | ---: |\n| x | 1 |"
    assert describe_data("somewhere/cifar10-jpeg/").startswith("CIFAR-10, JPEG re-encoded copy")
    assert describe_data("synthetic:512").startswith("synthetic")
