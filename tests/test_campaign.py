"""Campaigns: definitions, continuing after a stop or a kill -9 (bitwise equal), status, locking."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from resnetlab.analysis.campaign import campaign_names, load_campaign, parse_campaign
from resnetlab.analysis.campaign_folder import LOCK_NAME, try_lock
from resnetlab.analysis.campaign_log import CampaignLog
from resnetlab.analysis.campaign_runner import continue_campaign, order_for_host
from resnetlab.analysis.campaign_status import campaign_progress, format_status
from resnetlab.cli import build_parser, main
from resnetlab.cli.train import resolve_config
from resnetlab.inference import load_any

TINY = """
name = "tiny"
version = 1
set = { iterations = 8, checkpoint_every = 2, eval_every = 4, log_every = 2, eval_batch_size = 256, "model_options.depth" = 8, val_size = 64 }
[[run]]
name = "a"
recipe = "cifar10-resnet20"
ships = "resnet20.synthetic"
[[run]]
name = "b"
recipe = "cifar10-plain20"
budget = 0.5
seed = 1
set = { iterations = 16, lr = 0.05 }
"""
DATA = "synthetic:512"


def tiny_campaign(tmp_path: Path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return load_campaign(path)


def final_state(run_dir: Path) -> dict:
    return load_file(str(run_dir / "final.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The tiny campaign trained start to end in one go: the reference for every resume test."""
    tmp = tmp_path_factory.mktemp("campaign")
    campaign = tiny_campaign(tmp)
    assert continue_campaign(campaign, tmp / "out", DATA, threads=1, log=lambda line: None) == "finished"
    return tmp / "out"


@pytest.mark.parametrize("name", campaign_names())
def test_shipped_campaigns_resolve_like_the_train_command(name):
    campaign = load_campaign(name)
    assert campaign.name == name and campaign.runs
    parser = build_parser()
    for planned in campaign.runs:
        data = planned.data_for("somewhere/cifar10-jpeg", Path("out"))
        args = parser.parse_args(planned.train_args(data, Path("out") / planned.name))
        # The runner starts `resnetlab train` with these arguments: both must mean the same config.
        assert resolve_config(args) == planned.config(data)


def test_cifar10_campaign_order_and_full_schedule_runs():
    campaign = load_campaign("cifar10")
    names = [r.name for r in campaign.runs]
    assert names[:6] == ["resnet20", "plain20-q", "plain56-q", "resnet20-q", "resnet56-q", "resnet20-q-fp32"]
    for planned in campaign.runs:
        config = planned.config(None)
        if planned.budget == 1.0:
            assert config.iterations == 64_000 and config.val_size == 0
            # Shipped under the model's name: every full-schedule run on the campaign's own data, and
            # no run on a copy with more information removed (resnet20-jpeg50).
            on_copy = planned.jpeg_quality is not None or planned.chroma_factor is not None
            assert planned.ships == (None if on_copy else f"{config.model}.cifar10")
        else:
            assert config.iterations == 16_000 and config.val_size == 5000
    assert campaign.run("resnet20-q-fp32").config(None).precision == "fp32"
    # The controls of resnet20-q change one setting each (the report reads the change the same way).
    reference = campaign.run("resnet20-q").config(None).to_dict()
    for name, key in (
        ("resnet20-q-fp32", "precision"),
        ("resnet20-q-bn64", "bn_batch_size"),
        ("resnet20-q-seed1", "seed"),
    ):
        control = campaign.run(name).config(None).to_dict()
        assert [k for k in reference if reference[k] != control[k]] == [key], name
    # The runs on reduced copies of the data: each its own folder under OUT, the others the data.
    folders = {r.name: r.data_for("data", Path("out")) for r in campaign.runs}
    assert folders["resnet20-q-jpeg50"] == str(Path("out/data-jpeg50"))
    assert folders["resnet20-q-chroma4"] == str(Path("out/data-chroma4"))
    assert folders["resnet20-jpeg50"] == folders["resnet20-q-jpeg50"]  # one copy for both budgets
    assert folders["resnet20"] == folders["resnet56"] == "data"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": 1}, "unknown key(s) colour"),
        ({"version": 0}, "version must be a positive integer"),
        ({"run": [{"name": "x", "recipe": "cifar10-resnet20", "budget": 2}]}, "budget must be in (0, 1]"),
        (
            {"run": [{"name": "x", "recipe": "cifar10-resnet20"}, {"name": "x", "recipe": "cifar10-resnet20"}]},
            "appears twice",
        ),
        ({"run": [{"name": "x", "recipe": "cifar10-resnet20", "set": {"lrr": 1}}]}, "lrr"),
        ({"run": [{"name": "x", "recipe": "nope"}]}, "unknown recipe 'nope'"),
        ({"run": [{"name": "x", "recipe": "cifar10-resnet20", "epochs": 3}]}, "unknown key(s) epochs"),
        ({"run": [{"name": "../x", "recipe": "cifar10-resnet20"}]}, "name must be a directory name"),
        (
            {"run": [{"name": "x", "recipe": "cifar10-resnet20", "jpeg_quality": 100}]},
            "jpeg_quality must be an integer",
        ),
        (
            {"run": [{"name": "x", "recipe": "cifar10-resnet20", "chroma_factor": 2}]},
            "chroma_factor must be one of 4, 8, 16, 32, got 2",
        ),
        (
            {"run": [{"name": "x", "recipe": "cifar10-resnet20", "chroma_factor": 4, "jpeg_quality": 50}]},
            "one change of the data per run",
        ),
    ],
)
def test_bad_campaign_files_name_the_problem(change, message):
    values = {"name": "c", "version": 1, "run": [{"name": "x", "recipe": "cifar10-resnet20"}], **change}
    with pytest.raises(ValueError) as error:
        parse_campaign(values, source="c.toml", stem="c")
    assert message in str(error.value)


def test_finished_campaign_keeps_final_weights_only_and_evaluates_as_recorded(uninterrupted, capsys):
    for name in ("a", "b"):
        run_dir = uninterrupted / name
        assert not list((run_dir / "checkpoints").glob("*.pt"))
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["iterations"] == {"a": 8, "b": 16}[name]
        assert load_any(run_dir).path.name == "final.safetensors"
    summary = json.loads((uninterrupted / "a" / "summary.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(uninterrupted / "a"), "--data", DATA, "--split", "test", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["top1_error"] == summary["test_top1_error"]
    events = [r["event"] for r in CampaignLog(uninterrupted).read()]
    assert events == ["start", "finished", "start", "finished"]


def test_stop_then_continue_is_bitwise_identical(tmp_path, uninterrupted):
    campaign = tiny_campaign(tmp_path)
    out = tmp_path / "out"
    checkpoint = out / "a" / "checkpoints" / "last.pt"
    # Stop (SIGTERM to the training process) once run "a" has a checkpoint to resume from.
    status = continue_campaign(
        campaign, out, DATA, threads=1, log=lambda line: None, poll=0.05, should_stop=lambda: checkpoint.is_file()
    )
    assert status == "interrupted"
    assert checkpoint.is_file() and not (out / "a" / "summary.json").exists()
    # One SIGTERM: the run saved a checkpoint where it stopped (a second one would abort it).
    log = (out / "a" / "train.log").read_text()
    assert "interrupted at iteration" in log and "resnetlab train: interrupted" not in log
    progress = {p.name: p for p in campaign_progress(out)[2]}
    assert progress["a"].state == "partial" and 0 < progress["a"].done < 8
    assert progress["b"].state == "pending" and progress["b"].seconds_left is not None
    text = format_status(out)
    assert "a " in text and "partial" in text and f"{progress['a'].done:,}/8" in text
    assert continue_campaign(campaign, out, DATA, threads=1, log=lambda line: None) == "finished"
    for name in ("a", "b"):
        mine, reference = final_state(out / name), final_state(uninterrupted / name)
        assert mine.keys() == reference.keys()
        assert all(torch.equal(mine[k], reference[k]) for k in mine)
    events = [(r["event"], r["run"]) for r in CampaignLog(out).read() if r["event"] != "load"]
    assert events[:3] == [("start", "a"), ("stopped", "a"), ("resume", "a")]


def _runner_of_run_b(tmp_path: Path, out: Path) -> subprocess.Popen:
    """``resnetlab reproduce campaign`` training run b alone, in its own process (and process
    group: a signal to that group stands for a Ctrl-C in the runner's terminal)."""
    command = [sys.executable, "-m", "resnetlab", "reproduce", "campaign", str(tmp_path / "tiny.toml")]
    command += ["--data", DATA, "--out", str(out), "--only", "b", "--jobs", "1", "--threads", "1"]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _trainers_after_first_checkpoint(runner: subprocess.Popen, run_dir: Path) -> list[int]:
    """The training processes of ``run_dir``, once it has written its first checkpoint."""
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "last.pt").is_file() and time.monotonic() < deadline:
        if runner.poll() is not None:
            break
        time.sleep(0.05)
    found = subprocess.run(["pgrep", "-f", "--", f"--out {run_dir} "], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _continue_b_and_compare(campaign, out: Path, uninterrupted: Path) -> None:
    assert continue_campaign(campaign, out, DATA, threads=1, only=("b",), log=lambda line: None) == "finished"
    assert not (out / "a").exists()
    mine, reference = final_state(out / "b"), final_state(uninterrupted / "b")
    assert all(torch.equal(mine[k], reference[k]) for k in reference)


def test_kill_9_of_a_training_process_then_continue_is_bitwise_identical(tmp_path, uninterrupted):
    campaign = tiny_campaign(tmp_path)
    out = tmp_path / "out"
    # kill -9 the training process under the runner after its first checkpoint (run b: 16
    # iterations, a checkpoint every 2).
    runner = _runner_of_run_b(tmp_path, out)
    trainers = _trainers_after_first_checkpoint(runner, out / "b")
    for pid in trainers:
        os.kill(pid, signal.SIGKILL)
    output = runner.communicate(timeout=120)[0]
    assert trainers, output
    assert runner.returncode == 1 and "training failed" in output
    _continue_b_and_compare(campaign, out, uninterrupted)


def test_ctrl_c_to_the_runners_process_group_stops_each_run_once_with_its_checkpoint(tmp_path, uninterrupted):
    # A Ctrl-C in a terminal signals the whole foreground process group. Had the training process
    # been in it, it would get that SIGINT and then the runner's SIGTERM: a second signal, which
    # aborts without a checkpoint (a session's stop lost 500 ResNet-56 iterations that way).
    campaign = tiny_campaign(tmp_path)
    out = tmp_path / "out"
    runner = _runner_of_run_b(tmp_path, out)
    trainers = _trainers_after_first_checkpoint(runner, out / "b")
    assert trainers and all(os.getpgid(pid) != os.getpgid(runner.pid) for pid in trainers)
    os.killpg(runner.pid, signal.SIGINT)
    output = runner.communicate(timeout=120)[0]
    log = (out / "b" / "train.log").read_text()
    assert "interrupted at iteration" in log and "resnetlab train: interrupted" not in log, output
    events = [r for r in CampaignLog(out).read() if r["event"] not in ("load", "start")]
    assert [r["event"] for r in events] == ["stopped"] and events[0]["iteration"] > 0
    _continue_b_and_compare(campaign, out, uninterrupted)


def test_a_locked_run_is_never_started_twice(tmp_path):
    campaign = tiny_campaign(tmp_path)
    out = tmp_path / "out"
    fd = try_lock(out / "a")  # as if another runner's training process held it
    try:
        lines = []
        status = continue_campaign(campaign, out, DATA, threads=1, only=("a",), log=lines.append)
        assert status == "interrupted" and any("already being trained" in line for line in lines)
        assert not (out / "a" / "config.json").exists()
        assert campaign_progress(out)[2][0].state == "running"
    finally:
        os.close(fd)
    assert (out / "a" / LOCK_NAME).is_file()


def test_a_folder_refuses_another_campaign_or_data(tmp_path, uninterrupted):
    campaign = tiny_campaign(tmp_path)
    with pytest.raises(ValueError, match="same --data"):
        continue_campaign(campaign, uninterrupted, "synthetic:999", threads=1, log=lambda line: None)
    other = parse_campaign(
        {"name": "other", "version": 1, "run": [{"name": "x", "recipe": "cifar10-resnet20"}]}, source="other"
    )
    with pytest.raises(ValueError, match="holds campaign 'tiny'"):
        continue_campaign(other, uninterrupted, DATA, threads=1, log=lambda line: None)


def test_a_bf16_run_waits_behind_the_others_where_the_cpu_emulates_bf16(tmp_path, monkeypatch):
    runs = list(load_campaign("cifar10").runs)
    order, deferred = order_for_host(runs, "data", "cpu", native_bf16=False)
    # The bf16 side of the precision control and its bf16 twins (the batch-norm and seed controls).
    pinned = ["resnet20-q", "resnet20-q-bn64", "resnet20-q-seed1"]
    assert [r.name for r in deferred] == pinned
    assert [r.name for r in order] == [r.name for r in runs if r.name not in pinned] + pinned
    assert order_for_host(runs, "data", "cpu", native_bf16=True) == (runs, [])
    # The runner follows that order and says why.
    monkeypatch.setattr("resnetlab.engine.precision.cpu_has_native_bf16", lambda: False)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.replace('ships = "resnet20.synthetic"', 'set = { precision = "bf16" }'))
    lines = []
    assert continue_campaign(load_campaign(path), tmp_path / "out", DATA, threads=1, log=lines.append) == "finished"
    starts = [line.split(":")[0] for line in lines if ": starting" in line]
    assert starts == ["b", "a"]
    assert any(line.startswith("a: pinned to bf16") for line in lines)
    events = CampaignLog(tmp_path / "out").read()
    assert [e["run"] for e in events if e["event"] == "deferred"] == ["a"]


def test_status_names_the_runs_deferred_on_this_host(tmp_path, monkeypatch):
    from resnetlab.analysis.campaign_folder import prepare_folder

    path = tmp_path / "tiny.toml"
    path.write_text(TINY.replace('ships = "resnet20.synthetic"', 'set = { precision = "bf16" }'))
    prepare_folder(load_campaign(path), tmp_path / "out", DATA)
    monkeypatch.setattr("resnetlab.engine.precision.cpu_has_native_bf16", lambda: False)
    assert "deferred on this host: a (pinned to bf16" in format_status(tmp_path / "out")
    monkeypatch.setattr("resnetlab.engine.precision.cpu_has_native_bf16", lambda: True)
    assert "deferred" not in format_status(tmp_path / "out")
