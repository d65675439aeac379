"""`resnetlab reproduce`: every suite end to end on tiny runs, reuse, resume, config mismatch, CLI."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch

from resnetlab.analysis.runs import run_config
from resnetlab.analysis.suites import SuiteOptions, reproduce, suite_specs
from resnetlab.cli import main
from resnetlab.data import load_dataset
from resnetlab.engine.train import train

DATA = "synthetic:512"
# Depth-8 nets (the registry's CIFAR builders take depth=6n+2), 8 iterations of 32 images: each run
# takes well under a second, yet goes through the real training loop, evaluation and checkpoints.
TINY = {
    "iterations": 8,
    "milestones": [4, 6],
    "batch_size": 32,
    "eval_every": 2,
    "log_every": 1,
    "checkpoint_every": 4,
    "eval_batch_size": 100,
    "model_options": {"depth": 8},
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def arrays():
    train_set = load_dataset(DATA, "train")
    test_set = load_dataset(DATA, "test")
    return train_set, test_set.subset(torch.arange(100))


def options(suite: str, out: Path, **kw) -> SuiteOptions:
    return SuiteOptions(suite, out, data=DATA, budget=0.0005, overrides=TINY, **kw)


def quiet(_line: str) -> None:
    pass


def summary(out: Path, name: str) -> dict:
    return json.loads((out / "runs" / name / "summary.json").read_text())


@pytest.fixture(scope="module")
def suites_out(tmp_path_factory, arrays) -> Path:
    """Every suite run once into one folder, as the README's commands would."""
    out = tmp_path_factory.mktemp("results")
    runs = [
        options("degradation", out, models=("plain20", "resnet20")),
        options("table6", out, models=("resnet20",), seeds=2),
        options("shortcuts", out),
        options("responses", out, models=("plain20", "resnet20")),
        SuiteOptions("complexity", out, models=("resnet20", "plain20")),
    ]
    for opts in runs:
        assert reproduce(opts, arrays=arrays, log=quiet).status == "completed"
    return out


def test_scaled_recipe_is_the_run_config():
    config = run_config("plain20", budget=0.04, data="../data/cifar10-jpeg", seed=3)
    assert (config.iterations, config.milestones, config.seed, config.data) == (
        2560,
        (1280, 1920),
        3,
        "../data/cifar10-jpeg",
    )
    specs = suite_specs(SuiteOptions("shortcuts", Path("x"), budget=0.5, seeds=2))
    assert [s.name for s in specs] == [
        "resnet20-A-s0",
        "resnet20-A-s1",
        "resnet20-B-s0",
        "resnet20-B-s1",
        "resnet20-C-s0",
        "resnet20-C-s1",
    ]
    assert specs[2].config.model_options == {"shortcut": "B"}


def test_every_suite_writes_report_and_figures(suites_out):
    out = suites_out
    for suite, figure in [
        ("degradation", "degradation"),
        ("table6", "table6"),
        ("shortcuts", "shortcuts"),
        ("responses", "responses"),
        ("complexity", "complexity"),
    ]:
        assert (out / f"report-{suite}.md").is_file()
        assert (out / "figures" / f"{figure}.png").read_bytes()[:8] == PNG_MAGIC
        assert f"resnetlab reproduce {suite}" in (out / f"report-{suite}.md").read_text()
    index = (out / "report.md").read_text()
    positions = [index.index(t) for t in ("(Fig. 1, Fig. 6)", "(Table 6)", "Table 3)", "(Fig. 7)", "(Table 1")]
    assert positions == sorted(positions)
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "plain20-s0",
        "resnet20-A-s0",
        "resnet20-B-s0",
        "resnet20-C-s0",
        "resnet20-s0",
        "resnet20-s1",
    ]


def test_tables_are_read_from_the_runs(suites_out):
    out = suites_out
    errors = [summary(out, f"resnet20-s{s}")["test_top1_error"] for s in (0, 1)]
    text = (out / "report-table6.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| ResNet-20 |"))
    assert f"{statistics.fmean(errors):.2f} ± {statistics.stdev(errors):.2f}" in row
    assert f"{min(errors):.2f}" in row and "8.75" in row and row.rstrip().endswith("| 2 |")
    shortcuts = (out / "report-shortcuts.md").read_text()
    for option in "ABC":
        s = summary(out, f"resnet20-{option}-s0")
        row = next(line for line in shortcuts.splitlines() if line.startswith(f"| option {option} |"))
        assert f"| {s['test_top1_error']:.2f} |" in row and f"{s['params']:,}" in row
    # Option B/C add projection shortcuts: more parameters than parameter-free option A.
    assert (
        summary(out, "resnet20-A-s0")["params"]
        < summary(out, "resnet20-B-s0")["params"]
        < summary(out, "resnet20-C-s0")["params"]
    )
    degradation = (out / "report-degradation.md").read_text()
    assert "Reduced budget: 8 iterations instead of 64,000" in degradation
    assert "Built-in synthetic 10-class set" in degradation
    assert "model_options.depth = 8" in degradation  # the test override is reported as a deviation


def test_responses_json_has_every_3x3_layer(suites_out):
    responses = json.loads((suites_out / "responses.json").read_text())
    assert set(responses) == {"plain20", "resnet20"}
    # depth 8: the stem's 3x3 conv + 3 stages x 1 block x 2 convs.
    assert responses["resnet20"]["layers"] == [
        "bn1",
        "layer1.0.bn1",
        "layer1.0.bn2",
        "layer2.0.bn1",
        "layer2.0.bn2",
        "layer3.0.bn1",
        "layer3.0.bn2",
    ]
    assert all(v > 0 for v in responses["plain20"]["std"]) and responses["plain20"]["images"] == 100


def test_finished_runs_are_reused(suites_out, arrays):
    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    result = reproduce(
        options("table6", suites_out, models=("resnet20",), seeds=2), arrays=arrays, trainer=must_not_train, log=quiet
    )
    assert result.actions == {"resnet20-s0": "reused", "resnet20-s1": "reused"}


def test_interrupted_run_is_resumed(tmp_path, arrays):
    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    opts = options("degradation", tmp_path, models=("plain20",))
    first = reproduce(opts, arrays=arrays, should_stop=stop_after_three, log=quiet)
    run_dir = tmp_path / "runs" / "plain20-s0"
    assert first.status == "interrupted" and first.report is None
    assert (run_dir / "checkpoints" / "last.pt").is_file() and not (run_dir / "summary.json").exists()
    seen = []

    def recording_train(config, out_dir, **kwargs):
        seen.append(kwargs["resume"])
        return train(config, out_dir, **kwargs)

    second = reproduce(opts, arrays=arrays, trainer=recording_train, log=quiet)
    assert second.actions == {"plain20-s0": "resumed"} and seen == [True]
    assert summary(tmp_path, "plain20-s0")["iterations"] == 8
    assert (tmp_path / "report-degradation.md").is_file()


def test_config_mismatch_is_an_error(tmp_path, arrays):
    run_dir = tmp_path / "runs" / "plain20-s0"
    run_dir.mkdir(parents=True)
    other = run_config("plain20", budget=0.0005, data="synthetic:999", seed=0, overrides={**TINY, "lr": 0.05})
    (run_dir / "config.json").write_text(json.dumps(other.to_dict()))
    with pytest.raises(ValueError, match=r"differing keys: data, lr"):
        reproduce(options("degradation", tmp_path, models=("plain20",)), arrays=arrays, log=quiet)


def test_options_are_validated():
    with pytest.raises(ValueError, match="budget"):
        SuiteOptions("table6", Path("x"), budget=0.0)
    with pytest.raises(ValueError, match="seeds"):
        SuiteOptions("table6", Path("x"), seeds=0)
    with pytest.raises(ValueError, match="plain20 not part of suite table6"):
        SuiteOptions("table6", Path("x"), models=("plain20",))
    with pytest.raises(ValueError, match="suite must be one of"):
        SuiteOptions("figure9", Path("x"))


def test_cli_plot_readme_and_errors(suites_out, tmp_path, capsys):
    png = tmp_path / "curves.png"
    runs = [str(suites_out / "runs" / n) for n in ("plain20-s0", "resnet20-s0")]
    assert main(["plot", *runs, "--out", str(png), "--metric", "test_error"]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- reproduce:begin -->\nSTALE-BLOCK\n<!-- reproduce:end -->\ntail\n")
    assert main(["reproduce", "readme", str(suites_out), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "STALE-BLOCK" not in text and text.endswith("<!-- reproduce:end -->\ntail\n")
    assert "resnetlab reproduce table6 --data synthetic:512 --budget 0.0005 --seeds 2" in text
    assert main(["reproduce", "table6", "--models", "plain20", "--out", str(tmp_path)]) == 1
    assert "plain20 not part of suite table6" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nope"), "--out", str(tmp_path / "other.png")]) == 1
    assert "nope" in capsys.readouterr().err and not (tmp_path / "other.png").exists()
    before = png.read_bytes()
    assert main(["plot", *runs, "--out", str(png)]) == 1  # an existing file needs --overwrite
    assert "--overwrite" in capsys.readouterr().err and png.read_bytes() == before
    assert main(["plot", *runs, "--out", str(png), "--overwrite"]) == 0


def test_cli_no_train_reports_what_is_there(tmp_path):
    args = [
        "reproduce",
        "degradation",
        "--data",
        DATA,
        "--budget",
        "0.0005",
        "--models",
        "plain20",
        "--out",
        str(tmp_path),
    ]
    assert main([*args, "--no-train"]) == 0
    text = (tmp_path / "report-degradation.md").read_text()
    assert "| plain-20 | - | - | not finished | - | 0 |" in text and "Runs: 0 finished of 1" in text
    assert not (tmp_path / "runs").exists() and "figures/degradation.png" not in text


def test_no_train_keeps_the_responses_of_runs_committed_without_weights(suites_out, arrays, tmp_path):
    """Committed results hold summaries, not checkpoints: rebuilding the report must not drop the
    layer responses measured when the weights were still there."""
    import shutil

    out = tmp_path / "results"
    shutil.copytree(suites_out, out)
    before = json.loads((out / "responses.json").read_text())
    shutil.rmtree(out / "runs" / "plain20-s0" / "checkpoints")
    opts = options("responses", out, models=("plain20", "resnet20"))
    lines = []
    assert reproduce(opts, arrays=arrays, log=lines.append, train_missing=False).status == "completed"
    after = json.loads((out / "responses.json").read_text())
    assert after == before  # plain-20 kept as measured, resnet-20 measured again to the same numbers
    assert any("plain20-s0: no weights" in line and "keeping its earlier measurement" in line for line in lines)
    (out / "responses.json").unlink()
    reproduce(opts, arrays=arrays, log=lines.append, train_missing=False)
    assert set(json.loads((out / "responses.json").read_text())) == {"resnet20"}


def test_cli_complexity(tmp_path):
    assert main(["reproduce", "complexity", "--out", str(tmp_path), "--models", "resnet20", "resnet32"]) == 0
    text = (tmp_path / "report-complexity.md").read_text()
    # Table 6's parameter counts (0.27M, 0.46M), measured on the built models.
    assert "| ResNet-20 | cifar | 20 | 269,722 | 0.27M |" in text
    assert "| ResNet-32 | cifar | 32 | 464,154 | 0.46M |" in text


def test_each_run_says_run_k_of_n_then_shows_its_own_progress(tmp_path, monkeypatch):
    """Issue 15: a suite says which run of how many it is on, then hands ``progress_tty`` to the
    run's trainer (None from the CLI: a bar where stderr is a terminal; False under --quiet)."""
    import resnetlab.analysis.suites as suites
    from resnetlab.analysis.suites import SuiteResult

    lines, seen = [], []

    def fake_train(config, out_dir, **kwargs):
        seen.append(kwargs["progress_tty"])
        return type("Result", (), {"status": "interrupted"})()

    opts = options("degradation", tmp_path, models=("plain20", "resnet20"))
    for tty in (False, None):
        result = reproduce(opts, trainer=fake_train, log=lines.append, progress_tty=tty)
        assert result.status == "interrupted" and seen[-1] is tty
    assert lines[0] == "run 1 of 2: plain20-s0"
    assert reproduce(opts, trainer=fake_train, log=quiet).status == "interrupted" and seen[-1] is False  # the default

    passed = []
    monkeypatch.setattr(
        suites, "reproduce", lambda *a, **k: passed.append(k["progress_tty"]) or SuiteResult("completed", None, {})
    )
    monkeypatch.setattr("resnetlab.engine.stop.StopFlag.install", lambda self: None)
    args = ["reproduce", "degradation", "--models", "plain20", "--out", str(tmp_path)]
    assert main(args) == 0 and main([*args, "--quiet"]) == 0
    assert passed == [None, False]
