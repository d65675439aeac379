"""Detection on the engine: the device, precision, metrics log, progress, checkpoints and exact
resume of classification training (Sec. 4.3's detector trained by the same machinery)."""

from __future__ import annotations

import json

import pytest
import torch

from resnetlab.checkpoints.checkpoint import load_checkpoint
from resnetlab.cli import main
from resnetlab.detection.config import load_recipe
from resnetlab.detection.train import train_detector

TINY = {
    "synthetic_size": 64,
    "min_size": 64,
    "max_size": 64,
    "synthetic_train": 6,
    "synthetic_test": 2,
    "anchor_sizes": [16, 32],
    "rpn_pre_nms_train": 100,
    "rpn_post_nms_train": 30,
    "rpn_pre_nms_test": 100,
    "rpn_post_nms_test": 10,
    "pool_size": 2,
    "roi_batch_size": 8,
    "images_per_batch": 2,
    "log_every": 1,
    "iterations": 5,
    "checkpoint_every": 100,
    "lr_steps": [3],
    "warmup_iterations": 2,
    "precision": "fp32",
    "device": "cpu",
}
TINY_SET = [f"{k}={json.dumps(v)}" for k, v in TINY.items() if k not in ("iterations", "device")]
TIMING = {"seconds_per_iteration", "elapsed_s"}


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr("resnetlab.engine.stop.StopFlag.install", lambda self: None)


def _stop_after(n: int):
    calls = []
    return lambda: calls.append(1) or len(calls) >= n


def _rows(run) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_stopped_and_resumed_run_ends_bitwise_like_an_uninterrupted_one(tmp_path, precision) -> None:
    config = load_recipe("synthetic-resnet18", {**TINY, "precision": precision})
    quiet = lambda line: None
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_detector(config, None, whole, log=quiet, evaluate=False)
    stopped = train_detector(config, None, split, log=quiet, evaluate=False, should_stop=_stop_after(2))
    assert stopped == {"status": "interrupted", "iterations": 2}
    assert load_checkpoint(split / "checkpoints" / "last.pt")["iteration"] == 2
    train_detector(config, None, split, log=quiet, evaluate=False, resume=True)
    a = load_checkpoint(whole / "checkpoints" / "last.pt")
    b = load_checkpoint(split / "checkpoints" / "last.pt")
    assert a["iteration"] == b["iteration"] == 5
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert _rows(whole) == _rows(split)  # the log too: rows after the checkpoint are not repeated
    meta = json.loads((split / "meta.json").read_text())
    assert meta["device"] == "cpu" and meta["resumed_from"] == 2
    assert meta["precision"] == precision


def test_resume_refuses_another_recipe_and_a_missing_checkpoint(tmp_path) -> None:
    config = load_recipe("synthetic-resnet18", TINY)
    run = tmp_path / "run"
    train_detector(config, None, run, log=lambda line: None, evaluate=False, should_stop=_stop_after(1))
    with pytest.raises(ValueError, match="cannot resume.*lr"):
        train_detector(config.__class__(**{**config.to_dict(), "lr": 0.5}), None, run, evaluate=False, resume=True)
    # Cadence and machine keys may change at a resume, as in classification.
    train_detector(
        config.__class__(**{**config.to_dict(), "log_every": 2}),
        None,
        run,
        log=lambda line: None,
        evaluate=False,
        resume=True,
    )
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_detector(config, None, tmp_path / "empty", evaluate=False, resume=True)


def test_runs_and_recipes_of_the_former_autocast_key_still_load_and_resume(tmp_path) -> None:
    """Detection once spelled its precision ``autocast = "none" | "bf16" | ...``: a recipe file or a
    run directory of that time still reads ("none" as fp32) and its run resumes."""
    old = tmp_path / "old.toml"
    old.write_text('name = "old"\nautocast = "none"\n')
    assert load_recipe(str(old)).precision == "fp32"
    old.write_text('autocast = "bf16"\nprecision = "fp32"\n')
    with pytest.raises(ValueError, match="not both"):
        load_recipe(str(old))
    config = load_recipe("synthetic-resnet18", TINY)
    run = tmp_path / "run"
    train_detector(config, None, run, log=lambda line: None, evaluate=False, should_stop=_stop_after(2))
    path = run / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    legacy = {k: v for k, v in state["config"].items() if k != "precision"}
    state["config"] = {**legacy, "autocast": "none"}  # as the older code wrote it
    torch.save(state, path)
    result = train_detector(config, None, run, log=lambda line: None, evaluate=False, resume=True)
    assert result["iterations"] == config.iterations


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_cli_device_and_resume(tmp_path, capsys, device) -> None:
    run = tmp_path / "run"
    args = ["detect", "train", "--out", str(run), "--iterations", "2", "--device", device, "--quiet"]
    args += [a for kv in TINY_SET for a in ("--set", kv)]
    assert main(args) == 0
    expected = "cuda" if device == "auto" and torch.cuda.is_available() else "cpu"
    assert json.loads((run / "meta.json").read_text())["device"].startswith(expected)
    assert json.loads((run / "config.json").read_text())["device"] == device
    assert "mAP50" in capsys.readouterr().out
    assert main(args) == 1  # a finished run is not replaced without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0  # nothing left to train: evaluates again
    assert json.loads(capsys.readouterr().out.splitlines()[0])["iterations"] == 2
    assert main(args + ["--overwrite"]) == 0  # tb/ and meta.json are the run's own: replaced


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_cuda_without_cuda_is_the_one_line_error_of_training(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--device", "cuda", "--iterations", "1", "--data", "synthetic:64"]) == 1
    train_error = capsys.readouterr().err.strip().split(": error: ", 1)[1]
    assert main(["detect", "train", "--device", "cuda", "--iterations", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.split(": error: ", 1)[1] == train_error
    assert "cuda" in train_error.lower()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_n_passes_the_configs_and_stops_at_resolution_with_one_line(tmp_path, capsys, monkeypatch) -> None:
    from resnetlab.engine.config import TrainConfig
    from resnetlab.engine.train import train

    expected = "device cuda:1: no CUDA device is available here; use device cpu"
    with pytest.raises(ValueError) as error:
        train(TrainConfig(device="cuda:1"), tmp_path / "run")
    assert str(error.value) == expected
    with pytest.raises(ValueError) as error:
        train_detector(
            load_recipe("synthetic-resnet18", {**TINY, "device": "cuda:1"}), None, tmp_path / "d", evaluate=False
        )
    assert str(error.value) == expected
    assert not (tmp_path / "run").exists() and not (tmp_path / "d").exists()
    monkeypatch.chdir(tmp_path)
    for device, fragment in (("cuda:1", expected), ("gpu", "device must be one of auto, cpu, cuda, cuda:N, got 'gpu'")):
        assert main(["detect", "train", "--device", device, "--iterations", "1"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("resnetlab detect") and err.endswith(fragment) and "\n" not in err, err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cli_trains_on_cuda(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    args = ["detect", "train", "--out", str(run), "--iterations", "2", "--device", "cuda", "--quiet"]
    assert main(args + [a for kv in TINY_SET for a in ("--set", kv)] + ["--set", "precision=auto"]) == 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["device"].startswith("cuda") and meta["precision"] in ("bf16", "fp16")
