"""The campaign report (README section): what it states for finished, in-flight and pending runs,
its verdicts on the paper's orderings, and the JPEG-penalty extrapolation."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlab.analysis.campaign import load_campaign
from resnetlab.analysis.campaign_folder import prepare_folder
from resnetlab.analysis.campaign_log import CampaignLog
from resnetlab.analysis.campaign_report import BEGIN, END, campaign_report, update_readme
from resnetlab.analysis.jpeg_penalty import (
    JpegPoint,
    coarsest_scale,
    extrapolate_clean_error,
    quantiser_scale,
    rms_difference,
)

CAMPAIGN = """
name = "fake"
version = 1
[[run]]
name = "resnet20"
recipe = "cifar10-resnet20"
set = { val_size = 0 }
[[run]]
name = "resnet56"
recipe = "cifar10-resnet56"
set = { val_size = 0 }
[[run]]
name = "plain20-q"
recipe = "cifar10-plain20"
budget = 0.25
[[run]]
name = "plain56-q"
recipe = "cifar10-plain56"
budget = 0.25
[[run]]
name = "resnet20-q"
recipe = "cifar10-resnet20"
budget = 0.25
[[run]]
name = "resnet56-q"
recipe = "cifar10-resnet56"
budget = 0.25
[[run]]
name = "resnet20-q-fp32"
recipe = "cifar10-resnet20"
budget = 0.25
set = { precision = "fp32" }
"""


def _finished(run_dir: Path, *, test: float, train: float, iterations: int, precision: str, hours: float) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(
        json.dumps(
            {"iterations": iterations, "test_top1_error": test, "wall_seconds": hours * 3600, "precision": precision}
        )
    )
    rows = [{"iteration": i * 100, "train_error": train, "images_per_second": 300.0} for i in range(1, 6)]
    rows.append({"iteration": iterations, "val_error": test + 0.5, "test_error": test + 0.1})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run_dir / "meta.json").write_text(
        json.dumps({"segments": [{"from_iteration": 0, "precision": precision, "cpu": "Test CPU"}]})
    )


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "fake.toml").write_text(CAMPAIGN)
    out = tmp_path / "out"
    prepare_folder(load_campaign(tmp_path / "fake.toml"), out, "data/cifar")
    _finished(out / "resnet20", test=9.5, train=1.0, iterations=64_000, precision="bf16", hours=3.0)
    _finished(out / "plain20-q", test=12.0, train=8.0, iterations=16_000, precision="fp32", hours=1.0)
    _finished(out / "plain56-q", test=15.0, train=11.0, iterations=16_000, precision="fp32", hours=2.5)
    _finished(out / "resnet20-q", test=11.0, train=6.0, iterations=16_000, precision="bf16", hours=1.0)
    _finished(out / "resnet56-q", test=11.5, train=4.0, iterations=16_000, precision="bf16", hours=2.5)
    # resnet56 in flight: its latest logged test error, at the iteration of its last log.
    flying = out / "resnet56"
    flying.mkdir()
    (flying / "metrics.jsonl").write_text(json.dumps({"iteration": 2000, "test_error": 30.0}) + "\n")
    (flying / "checkpoints").mkdir()
    torch.save({"iteration": 2500, "wall_seconds": 1800.0}, flying / "checkpoints" / "last.pt")
    (flying / "meta.json").write_text(
        json.dumps(
            {
                "segments": [
                    {"from_iteration": 0, "precision": "bf16", "cpu": "Test CPU"},
                    {"from_iteration": 1000, "precision": "fp32", "cpu": "Other CPU"},
                ]
            }
        )
    )
    log = CampaignLog(out)
    for load in (1.0, 2.0, 3.0):
        log.write("load", runs=["resnet20", "plain20-q"], load=load)
    return out


def test_report_states_each_result_beside_the_paper(folder):
    text = campaign_report(folder)
    assert text.startswith(BEGIN) and text.endswith(END)
    lines = text.splitlines()
    # The final training error (mean of the last 5 logs) beside the test error: fit vs generalisation.
    assert "| ResNet-20 | 8.75% | 9.50% | 1.00% | finished | 64,000/64,000 | bf16 | 3.0 | 2.0 |" in lines
    # In flight: the latest logged test error in parentheses, with the iteration; mixed precision.
    assert (
        "| ResNet-56 | 6.97% | (30.00% at 2,000) | - | partial | 2,500/64,000 | bf16 (iterations 0-1,000), "
        "fp32 (1,000-2,500) | 0.5+ | - |"
    ) in lines
    assert "| plain-56 | 11.00% | 15.50% | 15.00% | finished 16,000/16,000 | fp32 | 2.5 | - |" in text
    assert "plain-56 trains worse than plain-20 (training error): holds: 11.00% vs 8.00%" in text
    assert "plain-56 tests worse than plain-20: holds: 15.00% vs 12.00%" in text
    # A failed ordering is said, not hidden.
    assert "ResNet-56 tests better than ResNet-20: FAILS: 11.00% vs 11.50%" in text
    # The margin beside the sampling noise of one test error (sqrt(0.1125 * 0.8875 / 10,000) = 0.32),
    # and the validation errors, so a narrow verdict reads as narrow.
    assert (
        "FAILS: 11.00% vs 11.50% (margin -0.50 points; one test error near 11.2% has a binomial standard "
        "error of 0.32; validation 11.50% vs 12.00%)"
    ) in text
    assert "ResNet-56 trains better than ResNet-20 (training error): holds: 6.00% vs 4.00%" in text
    assert '| resnet20-q-fp32 | precision "fp32" instead of "auto" | - | - | - | - | pending 0/16,000 | - | - |' in text
    assert "Compared once finished.\n- pending: resnet20-q-fp32 pending" in text
    assert "data/cifar" in text and "nothing is selected on the test set" in text


def test_table6_depth_claim_compares_each_finished_resnet_with_the_next_deeper_one(folder):
    """In flight, ResNet-56 is pending; finished, it is compared with ResNet-20 with the verdict,
    the margin and the noise, whichever way it goes."""
    claim = "The paper's claim (Sec. 4.2, Table 6): the test error falls as the ResNet gets deeper."
    text = campaign_report(folder)
    assert f"{claim}\n- ResNet-56: pending (compared once finished)" in text
    shutil.rmtree(folder / "resnet56")
    _finished(folder / "resnet56", test=8.0, train=0.5, iterations=64_000, precision="bf16", hours=9.0)
    text = campaign_report(folder)
    assert "- ResNet-56 tests better than ResNet-20: holds: 9.50% vs 8.00% (margin 1.50 points;" in text
    assert "pending (compared once finished)" not in text
    shutil.rmtree(folder / "resnet56")
    _finished(folder / "resnet56", test=10.0, train=0.5, iterations=64_000, precision="bf16", hours=9.0)
    assert "- ResNet-56 tests better than ResNet-20: FAILS: 9.50% vs 10.00%" in campaign_report(folder)


def test_finished_controls_are_a_table_with_what_each_changes_the_difference_and_the_noise(folder):
    _finished(folder / "resnet20-q-fp32", test=10.6, train=5.5, iterations=16_000, precision="fp32", hours=1.5)
    lines = campaign_report(folder).splitlines()
    assert "| resnet20-q | the reference | bf16 | 6.00% | 11.50% | 11.00% | finished 16,000/16,000 | 1.0 | - |" in lines
    # What it changes comes from the two resolved configurations, not from the run's name.
    assert (
        '| resnet20-q-fp32 | precision "fp32" instead of "auto" | fp32 | 5.50% | 11.10% | 10.60% | '
        "finished 16,000/16,000 | 1.5 | - |"
    ) in lines
    # sqrt(0.110 * 0.890 / 1e4) and sqrt(0.106 * 0.894 / 1e4) combined: 0.44 points
    assert (
        '- resnet20-q-fp32 (precision "fp32" instead of "auto"): test -0.40 points, validation -0.40: within twice '
        "the standard error of a difference of two such test errors (0.44 points)."
    ) in lines
    said = next(line for line in lines if line.startswith("One seed each."))
    # sqrt(0.108 * 0.892 / 10,000) = 0.31 points
    assert "standard deviation of 0.16 points" in said and "10.8% measured on 10,000 test images" in said
    assert "binomial standard error of 0.31 points" in said


def test_a_control_whose_differences_disagree_in_sign_says_so(folder):
    _finished(folder / "resnet20-q-fp32", test=10.6, train=5.5, iterations=16_000, precision="fp32", hours=1.5)
    metrics = folder / "resnet20-q-fp32" / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    rows[-1]["val_error"] = 12.0  # resnet20-q's validation error is 11.5: fp32 worse there, better on test
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    said = next(line for line in campaign_report(folder).splitlines() if line.startswith("- resnet20-q-fp32"))
    assert "test -0.40 points, validation +0.50 (opposite signs): within" in said


def test_controls_in_flight_are_pending_and_a_seed_or_batch_norm_control_says_what_it_changes(tmp_path):
    campaign = (
        CAMPAIGN
        + """
[[run]]
name = "resnet20-q-bn64"
recipe = "cifar10-resnet20"
budget = 0.25
set = { bn_batch_size = 64 }
[[run]]
name = "resnet20-q-seed1"
recipe = "cifar10-resnet20"
budget = 0.25
seed = 1
"""
    )
    (tmp_path / "fake.toml").write_text(campaign)
    out = tmp_path / "out"
    prepare_folder(load_campaign(tmp_path / "fake.toml"), out, "data/cifar")
    _finished(out / "resnet20-q", test=11.0, train=6.0, iterations=16_000, precision="bf16", hours=1.0)
    _finished(out / "resnet20-q-seed1", test=12.0, train=6.0, iterations=16_000, precision="bf16", hours=1.0)
    CampaignLog(out).write("load", runs=["resnet20-q-seed1", "resnet20"], load=2.5)
    lines = campaign_report(out).splitlines()
    assert "| seed 1 instead of 0 | bf16 | 6.00% | 12.50% | 12.00% | finished 16,000/16,000 | 1.0 | 2.5 |" in "\n".join(
        lines
    )
    assert "| resnet20-q-bn64 | bn_batch_size 64 instead of 0 | - | - | - | - | pending 0/16,000 | - | - |" in lines
    assert any(line.startswith("| resnet20-q-seed1 | seed 1 instead of 0 | bf16 |") for line in lines)
    # 1.00 points apart: beyond twice sqrt(0.11 * 0.89 / 1e4 + 0.12 * 0.88 / 1e4) = 0.45
    assert (
        "- resnet20-q-seed1 (seed 1 instead of 0): test +1.00 points, validation +1.00: beyond twice the standard "
        "error of a difference of two such test errors (0.45 points)."
    ) in lines
    assert "- pending: resnet20-q-fp32 pending, resnet20-q-bn64 pending" in lines


def test_readme_section_is_replaced_between_its_markers(tmp_path, folder):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n")
    section = campaign_report(folder)
    assert update_readme(readme, section) is True
    assert readme.read_text() == f"# title\n\nbefore\n{section}\nafter\n"
    assert update_readme(readme, section) is False
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        update_readme(readme, section)


def test_jpeg_extrapolation_recovers_a_known_clean_error():
    # Re-encodings whose added RMS follows the quantiser scale exactly, errors exactly linear in the
    # distance from clean: the fit must give back the clean error and the penalty.
    per_scale, clean, slope = 0.05, 8.0, 0.9
    added = {50: per_scale * quantiser_scale(50), 30: per_scale * quantiser_scale(30)}
    source = per_scale * quantiser_scale(75)
    error = {None: clean + slope * source, **{q: clean + slope * math.hypot(source, a) for q, a in added.items()}}
    points = [JpegPoint(q, Path(f"q{q}"), error[q]) for q in (None, 50, 30)]
    estimate = extrapolate_clean_error(points, rms=lambda src, copy: added[int(copy.name[1:])])
    assert estimate.clean_error == pytest.approx(clean)
    assert estimate.penalty == pytest.approx(slope * source)
    text = "\n".join(estimate.describe())
    assert "Extrapolated to no JPEG loss: 8.00% test error" in text
    assert estimate.predicted_rms[1:] == pytest.approx([added[50], added[30]])  # assumption 1 holds here
    assert "assumption 1 misses the measured re-encodings by up to 0.00 RMS units" in text
    with pytest.raises(ValueError, match="source data first"):
        extrapolate_clean_error(points[1:])


def test_jpeg_cross_check_reads_an_error_linear_in_the_quantiser_scale_at_zero():
    # Errors exactly linear in each copy's coarsest quantiser scale (50, 100, 167), RMS that does
    # not follow assumption 1: the cross-check gives back the intercept, and the misfit is printed.
    error = {q: 9.0 + 0.03 * coarsest_scale(q) for q in (None, 50, 30)}
    added = {50: 9.39, 30: 10.74}  # the campaign's measured re-encodings
    points = [JpegPoint(q, Path(f"q{q}"), error[q]) for q in (None, 50, 30)]
    estimate = extrapolate_clean_error(points, rms=lambda src, copy: added[int(copy.name[1:])])
    assert [coarsest_scale(q) for q in (None, 50, 30)] == pytest.approx([50, 100, 5000 / 30])
    assert estimate.scale_clean_error == pytest.approx(9.0)
    assert estimate.scale_penalty == pytest.approx(1.5)
    text = "\n".join(estimate.describe())
    assert "gives 9.00%, a penalty of 1.50 points" in text
    assert "misses the measured re-encodings by up to 2.17 RMS units" in text  # 9.39 against 7.22


def test_rms_difference_of_two_image_trees(tmp_path):
    pixels = np.random.default_rng(0).integers(10, 240, (8, 8, 3), dtype=np.uint8)
    for name, shift in (("a", 0), ("b", 3)):
        folder = tmp_path / name / "test" / "cat"
        folder.mkdir(parents=True)
        Image.fromarray(pixels + np.uint8(shift)).save(folder / "0.jpg", quality=100, subsampling=0)
    assert 2.0 < rms_difference(tmp_path / "a", tmp_path / "b") < 4.0  # a shift of 3, through JPEG at 100


def test_cli_writes_the_readme_section_and_links_the_figure_from_the_readme(tmp_path, folder, capsys):
    from resnetlab.cli import main

    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n")
    figure = folder / "fig6.png"
    assert main(["reproduce", "report", str(folder), "--readme", str(readme), "--figure", str(figure)]) == 0
    assert figure.is_file() and figure.stat().st_size > 1000
    assert "![Fig. 6 at a quarter schedule](out/fig6.png)" in readme.read_text()  # relative to the README
    assert main(["reproduce", "report", str(folder)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == END


def test_the_report_names_the_compiled_runs_only_where_there_are_some(tmp_path, folder):
    assert "torch.compile" not in campaign_report(folder)
    compiled = tmp_path / "compiled.toml"
    compiled.write_text(
        CAMPAIGN.replace('name = "fake"', 'name = "compiled"').replace(
            'set = { precision = "fp32" }', 'set = { precision = "fp32", compile = true }'
        )
    )
    out = tmp_path / "compiled-out"
    prepare_folder(load_campaign(compiled), out, "data/cifar")
    text = campaign_report(out)
    assert "`+ torch.compile` marks a compiled training step" in text
    assert "The campaign compiles resnet20-q-fp32;" in text
    auto = tmp_path / "auto.toml"
    auto.write_text(
        compiled.read_text().replace('name = "compiled"', 'name = "auto"').replace("compile = true", 'compile = "auto"')
    )
    prepare_folder(load_campaign(auto), tmp_path / "auto-out", "data/cifar")
    text = campaign_report(tmp_path / "auto-out")
    assert (
        'The campaign compiles resnet20-q-fp32 only where it measured a gain (`compile = "auto"`): in fp32, and in bf16 on a CPU with AMX'
        in text
    )


def test_a_warm_up_is_said_and_so_is_a_departure_from_the_paper(tmp_path, folder):
    assert "Warm-up" not in campaign_report(folder)
    warm = CAMPAIGN.replace(
        'recipe = "cifar10-resnet56"\nset = { val_size = 0 }',
        'recipe = "cifar10-resnet56"\nset = { val_size = 0, warmup_lr = 0.01 }',
    )
    warm += '[[run]]\nname = "resnet110"\nrecipe = "cifar10-resnet110"\nset = { val_size = 0 }\n'
    (tmp_path / "warm").mkdir()
    (tmp_path / "warm" / "fake.toml").write_text(warm)
    out = tmp_path / "warm" / "out"
    prepare_folder(load_campaign(tmp_path / "warm" / "fake.toml"), out, "data/cifar")
    assert (
        "Warm-up: ResNet-56 (lr 0.01 until the training error is below 80%), ResNet-110 (lr 0.01 until the "
        "training error is below 80%). The paper warms up ResNet-110 only (Sec. 4.2); for ResNet-56 it is this "
        "campaign's departure from the recipe"
    ) in campaign_report(out)


REDUCED = """
name = "reduced"
version = 1
[[run]]
name = "resnet20-q"
recipe = "cifar10-resnet20"
budget = 0.25
[[run]]
name = "resnet20-q-jpeg50"
recipe = "cifar10-resnet20"
budget = 0.25
jpeg_quality = 50
[[run]]
name = "resnet20-q-chroma4"
recipe = "cifar10-resnet20"
budget = 0.25
chroma_factor = 4
"""


@pytest.fixture
def reduced(tmp_path):
    """A campaign folder whose runs on reduced copies have finished, with a tiny JPEG data set."""
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (data / split / "cat").mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(data / split / "cat" / f"{i}.jpg", quality=75)
    (tmp_path / "reduced.toml").write_text(REDUCED)
    out = tmp_path / "out"
    prepare_folder(load_campaign(tmp_path / "reduced.toml"), out, str(data))
    return out


def test_colour_resolution_is_reported_beside_the_reference_with_its_noise(reduced):
    text = campaign_report(reduced)
    assert "Pending: resnet20-q pending, resnet20-q-chroma4 pending." in text
    _finished(reduced / "resnet20-q", test=14.0, train=7.5, iterations=16_000, precision="bf16", hours=1.0)
    _finished(reduced / "resnet20-q-jpeg50", test=15.5, train=8.0, iterations=16_000, precision="bf16", hours=1.0)
    _finished(reduced / "resnet20-q-chroma4", test=14.9, train=7.9, iterations=16_000, precision="bf16", hours=1.0)
    text = campaign_report(reduced)
    known = json.loads((reduced / "data-copies.json").read_text())
    assert set(known) == {"data-jpeg50", "data-chroma4"}
    assert known["data-chroma4"]["change"] == "colour at 1/4 resolution"
    rms = known["data-chroma4"]["test_rms"]
    assert 1.0 < rms < known["data-jpeg50"]["test_rms"]  # random pixels: much colour to lose, more to JPEG 50
    assert f"| colour averaged over 4x4 pixels | 8x8 | {rms:.2f} | 15.40% | 14.90% | +0.90 points |" in text
    # 14.0% and 14.9% on 10,000 images: standard errors 0.347 and 0.356, of the difference 0.50.
    assert (
        "4x4: +0.90 points, within twice the standard error of a difference of two such test errors (0.50 points)"
        in text
    )
    assert "re-encoded at quality 50" in text  # the JPEG penalty, from the same measured distances


def test_a_report_on_a_fresh_clone_reads_the_measured_distances_and_rebuilds_no_copy(reduced):
    for name, test in (("resnet20-q", 14.0), ("resnet20-q-jpeg50", 15.5), ("resnet20-q-chroma4", 16.0)):
        _finished(reduced / name, test=test, train=8.0, iterations=16_000, precision="bf16", hours=1.0)
    text = campaign_report(reduced)
    assert "4x4: +2.00 points, beyond twice" in text
    for copy in ("data-jpeg50", "data-chroma4"):  # not committed (.gitignore)
        shutil.rmtree(reduced / copy)
    assert campaign_report(reduced) == text
    assert not (reduced / "data-jpeg50").exists() and not (reduced / "data-chroma4").exists()


SCHEDULES = """
name = "schedules"
version = 1
[[run]]
name = "resnet20"
recipe = "cifar10-resnet20"
set = { val_size = 0 }
[[run]]
name = "resnet20-q"
recipe = "cifar10-resnet20"
budget = 0.25
[[run]]
name = "resnet20-q-fp32"
recipe = "cifar10-resnet20"
budget = 0.25
set = { precision = "fp32" }
[[run]]
name = "resnet20-q-jpeg50"
recipe = "cifar10-resnet20"
budget = 0.25
jpeg_quality = 50
[[run]]
name = "resnet20-jpeg50"
recipe = "cifar10-resnet20"
set = { val_size = 0 }
jpeg_quality = 50
"""


def test_the_cost_of_a_reencoding_is_compared_across_schedules_once_its_four_runs_finish(reduced):
    (reduced.parent / "schedules.toml").write_text(SCHEDULES)
    out = reduced.parent / "schedules"
    prepare_folder(load_campaign(reduced.parent / "schedules.toml"), out, str(reduced.parent / "data"))
    runs = (("resnet20", 12.0), ("resnet20-q", 14.0), ("resnet20-q-fp32", 13.0), ("resnet20-q-jpeg50", 15.5))
    for name, test in runs:  # the fp32 control trains like resnet20-q; the comparison is with the first
        budget = 64_000 if "-q" not in name else 16_000
        _finished(out / name, test=test, train=5.0, iterations=budget, precision="bf16", hours=1.0)
    text = campaign_report(out)
    heading = "### Does the JPEG penalty grow with the schedule? ResNet-20 on the copy and re-encoded at quality 50"
    assert heading in text
    assert (
        "| quarter schedule (resnet20-q, resnet20-q-jpeg50) | 16,000 | 45,000 | 14.00% | 15.50% | +1.50 points |"
        in text
    )
    assert "| full schedule (resnet20, resnet20-jpeg50) | 64,000 | 50,000 | 12.00% | - | - |" in text
    assert "Pending: resnet20-jpeg50 pending (compared once finished)." in text
    # The full-schedule copy stays out of the quarter-schedule extrapolation (one re-encoding there).
    jpeg = text.split("### The JPEG penalty")[1].split("###")[0]
    assert "re-encoded at quality 50" in jpeg and jpeg.count("| re-encoded at quality") == 1

    _finished(out / "resnet20-jpeg50", test=15.0, train=5.0, iterations=64_000, precision="bf16", hours=1.0)
    text = campaign_report(out)
    assert "| full schedule (resnet20, resnet20-jpeg50) | 64,000 | 50,000 | 12.00% | 15.00% | +3.00 points |" in text
    # Standard errors of 14.0, 15.5, 12.0 and 15.0% on 10,000 images: 0.347, 0.362, 0.325, 0.357.
    noise = math.sqrt(sum(p * (100 - p) / 10_000 for p in (14.0, 15.5, 12.0, 15.0)))
    assert 2 * noise < 1.5
    assert (
        "the cost of re-encoding at quality 50 goes from +1.50 to +3.00 points: a change of +1.50, "
        f"beyond twice its standard error ({noise:.2f} points" in text
    )
    # Error linear in the quantiser scale (50 for the copy, 100 at quality 50), read at 0: 12 - 3 = 9.
    assert "would test at about 9.00% without JPEG quantisation, against the paper's 8.75% on the clean images" in text


def test_a_reencoding_trained_at_one_budget_only_has_no_schedule_section(folder):
    assert "Does the JPEG penalty grow" not in campaign_report(folder)
