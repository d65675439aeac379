"""The training loop end to end: it learns, resumes bitwise, stops cleanly, fails clearly."""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from resnetlab.checkpoints.checkpoint import load_checkpoint, load_model
from resnetlab.checkpoints.rundir import read_metrics
from resnetlab.cli import main as cli_main
from resnetlab.engine.steps import TrainingDiverged
from resnetlab.engine.train import train

QUIET = dict(log=lambda line: None)


def test_run_directory_and_summary(tmp_path, tiny_data) -> None:
    result = train(tiny_config(), tmp_path / "run", data=tiny_data, **QUIET)
    run = tmp_path / "run"
    for name in (
        "config.json",
        "meta.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (run / name).is_file(), name
    assert any((run / "tb").iterdir())  # TensorBoard events
    summary = json.loads((run / "summary.json").read_text())
    for key in ("test_top1_error", "test_top5_error", "params", "iterations", "wall_seconds", "images_per_second"):
        assert key in summary
    assert summary == result.summary and summary["iterations"] == 12 and summary["test_images"] == 400
    meta = json.loads((run / "meta.json").read_text())
    assert meta["seed"] == 0 and meta["git_revision"] and meta["train_images"] == 576 and meta["val_images"] == 64
    metrics = read_metrics(run)
    logged = [m["iteration"] for m in metrics if "train_loss" in m]
    assert logged == [4, 8, 12] and [m["lr"] for m in metrics if "lr" in m] == pytest.approx([0.1, 0.01, 0.001])
    assert [m["iteration"] for m in metrics if "val_error" in m] == [6, 12]
    # The checkpoint rebuilds the model with its preprocessing and class names, no flags needed.
    loaded = load_model(run)
    assert loaded.name == "cifar_resnet" and loaded.options["depth"] == 8 and len(loaded.classes) == 10
    assert loaded.preprocess.mean_image.shape == (3, 32, 32)


def test_learns_the_synthetic_set(tmp_path, tiny_data) -> None:
    config = tiny_config(iterations=60, milestones=(40, 50), log_every=20, eval_every=60, checkpoint_every=60)
    summary = train(config, tmp_path / "run", data=tiny_data, **QUIET).summary
    assert summary["test_top1_error"] < 70.0  # chance is 90%


def _weights(path: Path) -> dict:
    return load_checkpoint(path)["model"]


def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path, tiny_data) -> None:
    # Warm-up and milestones both fall across the interruption.
    config = tiny_config(warmup_lr=0.01, warmup_max_iterations=7)
    train(config, tmp_path / "straight", data=tiny_data, **QUIET)
    calls = iter(range(100))
    interrupted = train(config, tmp_path / "resumed", data=tiny_data, should_stop=lambda: next(calls) == 6, **QUIET)
    assert interrupted.status == "interrupted" and interrupted.iteration == 7
    assert not (tmp_path / "resumed" / "summary.json").exists()
    finished = train(config, tmp_path / "resumed", data=tiny_data, resume=True, **QUIET)
    assert finished.status == "completed" and finished.iteration == 12
    a, b = _weights(tmp_path / "straight/checkpoints/last.pt"), _weights(tmp_path / "resumed/checkpoints/last.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda ms: [{k: v for k, v in m.items() if k not in ("images_per_second", "elapsed_seconds")} for m in ms]
    assert strip(read_metrics(tmp_path / "straight")) == strip(read_metrics(tmp_path / "resumed"))
    assert (
        finished.summary["test_top1_error"]
        == json.loads((tmp_path / "straight/summary.json").read_text())["test_top1_error"]
    )


def test_a_compiled_run_resumes_bitwise_and_says_it_was_compiled(tmp_path, tiny_data) -> None:
    """The campaign's later runs train a torch.compile'd step: stopping and resuming one (the
    model rebuilt and compiled again) must end on the same weights as one uninterrupted run."""
    config = tiny_config(compile=True, iterations=8, milestones=(4, 6), eval_every=8, checkpoint_every=8)
    straight = train(config, tmp_path / "straight", data=tiny_data, **QUIET)
    calls = iter(range(100))
    train(config, tmp_path / "resumed", data=tiny_data, should_stop=lambda: next(calls) == 3, **QUIET)
    finished = train(config, tmp_path / "resumed", data=tiny_data, resume=True, **QUIET)
    a, b = _weights(tmp_path / "straight/checkpoints/last.pt"), _weights(tmp_path / "resumed/checkpoints/last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert finished.summary["test_top1_error"] == straight.summary["test_top1_error"]
    assert finished.summary["precision"].endswith(" + torch.compile")
    segments = json.loads((tmp_path / "resumed/meta.json").read_text())["segments"]
    assert [(s["from_iteration"], s["compile"]) for s in segments] == [(0, True), (4, True)]


def test_compile_without_a_compiler_trains_eager_and_records_it(tmp_path, tiny_data, monkeypatch) -> None:
    """A campaign run with compile = true continued on a host without g++/clang++: it trains (eager,
    bitwise the run that never asked to compile) instead of failing, and its segment says so."""
    import resnetlab.engine.train as engine_train

    monkeypatch.setattr(engine_train.shutil, "which", lambda name: None)
    lines = []
    compiled = train(tiny_config(compile=True), tmp_path / "asked", data=tiny_data, log=lines.append)
    eager = train(tiny_config(), tmp_path / "eager", data=tiny_data, **QUIET)
    assert any("no C++ compiler" in line and "trains eager" in line for line in lines)
    a, b = _weights(tmp_path / "asked/checkpoints/last.pt"), _weights(tmp_path / "eager/checkpoints/last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert compiled.summary["test_top1_error"] == eager.summary["test_top1_error"]
    segments = json.loads((tmp_path / "asked/meta.json").read_text())["segments"]
    assert [s["compile"] for s in segments] == [False]
    assert not compiled.summary["precision"].endswith("torch.compile")


def test_compile_auto_compiles_an_fp32_step_and_not_a_bf16_one(tmp_path, tiny_data, monkeypatch) -> None:
    """``compile = "auto"`` (the campaign's later runs): compiled where the step trains in fp32,
    eager in bf16 on a CPU without AMX; the log line and each start's segment say which. With ``precision = "auto"`` a
    run resumed on a host of the other kind changes at that iteration: here it starts on a CPU
    without native bf16 (fp32, compiled) and resumes on one with it (bf16, eager)."""
    import resnetlab.engine.precision as precision_module
    import resnetlab.engine.train as engine_train

    wrapped = []
    monkeypatch.setattr(engine_train.torch, "compile", lambda model: wrapped.append(model) or model)
    lines = []
    config = tiny_config(compile="auto", precision="auto")
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(precision_module, "cpu_has_amx", lambda: False)  # bf16 compiles where there is AMX
    calls = iter(range(100))
    train(config, tmp_path / "run", data=tiny_data, log=lines.append, should_stop=lambda: next(calls) == 6)
    assert len(wrapped) == 1 and "compile = auto: compiled (fp32 on cpu)" in lines
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: True)
    train(config, tmp_path / "run", data=tiny_data, log=lines.append, resume=True)
    assert len(wrapped) == 1 and "compile = auto: eager (bf16 on cpu)" in lines
    segments = json.loads((tmp_path / "run/meta.json").read_text())["segments"]
    assert [(s["precision"], s["compile"]) for s in segments] == [("fp32", True), ("bf16", False)]
    for bad in (1, "yes", None):
        with pytest.raises(ValueError, match='compile must be true, false or "auto"'):
            tiny_config(compile=bad)


def test_resume_refuses_a_changed_recipe(tmp_path, tiny_data) -> None:
    calls = iter(range(100))
    train(tiny_config(), tmp_path / "run", data=tiny_data, should_stop=lambda: next(calls) == 2, **QUIET)
    with pytest.raises(ValueError, match="lr"):
        train(tiny_config(lr=0.2), tmp_path / "run", data=tiny_data, resume=True, **QUIET)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(tiny_config(), tmp_path / "other", data=tiny_data, resume=True, **QUIET)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_data) -> None:
    # Sane for 6 iterations, then the lr is multiplied by 1e30 and the weights blow up.
    config = tiny_config(
        milestones=(6,), lr_factor=1e30, iterations=12, log_every=4, checkpoint_every=2, eval_every=100
    )
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train(config, tmp_path / "run", data=tiny_data, **QUIET)
    last = load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert last["iteration"] == 6
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    assert not (tmp_path / "run/summary.json").exists()


def test_train_on_all_images_keeps_final_model_as_best(tmp_path, tiny_data) -> None:
    result = train(tiny_config(val_size=0, iterations=4, eval_every=4), tmp_path / "run", data=tiny_data, **QUIET)
    assert result.summary["best_val_error"] is None
    assert load_checkpoint(tmp_path / "run/checkpoints/best.pt")["iteration"] == 4


def test_a_library_call_prints_nothing_and_logs_on_the_resnetlab_logger(tmp_path, tiny_data, capsys, caplog) -> None:
    caplog.set_level(logging.INFO, logger="resnetlab")
    train(tiny_config(iterations=4, eval_every=4), tmp_path / "run", data=tiny_data)  # log left at its default
    assert capsys.readouterr().out == ""
    lines = [r.getMessage() for r in caplog.records if r.name == "resnetlab.engine.train" and r.levelno == logging.INFO]
    assert any("iterations; device" in line for line in lines), lines
    assert len(lines) >= 2, lines  # the start line, then the progress/evaluation lines


LIBRARY_LOGS = (
    "resnetlab.engine.train:train",
    "resnetlab.detection.train:train_detector",
    "resnetlab.analysis.runs:ensure_run",
    "resnetlab.analysis.suites.reproduce:reproduce",
    "resnetlab.analysis.suites.responses:measure",
    "resnetlab.analysis.campaign_runner:continue_campaign",
)


@pytest.mark.parametrize("where", LIBRARY_LOGS)
def test_library_log_defaults_go_to_the_resnetlab_logger_at_info(where) -> None:
    module, name = where.split(":")
    default = inspect.signature(getattr(importlib.import_module(module), name)).parameters["log"].default
    assert getattr(default, "__func__", None) is logging.Logger.info
    assert default.__self__.name == module and module.startswith("resnetlab.")  # a child of "resnetlab"


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    cases = [
        (["train", "--set", "lrr=1"], "unknown key"),
        (["train", "--recipe", "nope"], "unknown recipe"),
        (["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")], "missing"),
        (["train", "--set", "batch_size=-3"], "batch_size"),
    ]
    for argv, fragment in cases:
        assert cli_main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert fragment in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_cli_sigint_saves_a_checkpoint_and_resume_finishes(tmp_path) -> None:
    out = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "resnetlab",
        "train",
        "--recipe",
        "demo",
        "--out",
        str(out),
        "--data",
        "synthetic:640",
        "--iterations",
        "400",
        "--set",
        "model=cifar_resnet",
        "--set",
        "model_options.depth=8",
        "--set",
        "log_every=1",
        "--set",
        "eval_every=1000",
        "--set",
        "batch_size=32",
        "--set",
        "val_size=64",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RESNETLAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("iter 3/"):
            proc.send_signal(signal.SIGINT)
            break
    output = "".join(lines) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + signal.SIGINT, output
    assert "Traceback" not in output and "interrupted at iteration" in output
    stopped_at = load_checkpoint(out / "checkpoints/last.pt")["iteration"]
    assert 3 <= stopped_at < 400
    resumed = subprocess.run(
        argv + ["--resume", "--iterations", str(stopped_at + 2)], capture_output=True, text=True, env=env, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "summary.json").read_text())["iterations"] == stopped_at + 2


def test_reported_test_error_is_the_fp32_error_of_the_final_checkpoint(tmp_path, tiny_data) -> None:
    from resnetlab.evaluation.counts import error_counts, rates

    summary = train(tiny_config(), tmp_path / "run", data=tiny_data, **QUIET).summary
    loaded = load_model(tmp_path / "run/checkpoints/last.pt")
    _, test = tiny_data
    counts = error_counts(loaded.model, loaded.preprocess.normalize(test.images), test.labels)
    assert rates(counts)["top1_error"] == summary["test_top1_error"]
    assert rates(counts)["top5_error"] == summary["test_top5_error"]
