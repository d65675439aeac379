"""The checkpoint format is a contract: a run directory written by an earlier version resumes.

``tests/data/golden-run/`` is a run stopped at iteration 7 of 12 by the code of commit 78ecc3a
(``checkpoints/last.pt`` and ``best.pt``, config, meta, metrics, TensorBoard events);
``tests/data/golden-run.json`` holds what that code produced when it resumed the run and finished:
the sha256 of the final weights and the metrics it logged. Today's trainer must resume the
committed directory and finish with bitwise the same weights and numbers (CPU, fp32, one thread) on
the kind of CPU that wrote the fixture (its meta.json names it). oneDNN picks other fp32 kernels on
other CPUs (an AMD EPYC finishes about 1e-7 away in the losses), so there every logged number must
match to a relative 1e-5: a resume that restored the wrong data order, schedule position or
optimiser state would be off by orders of magnitude more.

Regenerate only on purpose (a deliberate format change): ``python tests/data/make_golden_run.py``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from torch import nn

from resnetlab.checkpoints.checkpoint import load_checkpoint
from resnetlab.checkpoints.rundir import cpu_model, read_metrics
from resnetlab.data import load_dataset
from resnetlab.data.arrays import ImageArrays
from resnetlab.engine.config import TrainConfig
from resnetlab.engine.train import train
from resnetlab.models import registry
from resnetlab.models.registry import ModelInfo, list_models, register_model

DATA = Path(__file__).parent / "data"
RUN = DATA / "golden-run"
EXPECTED = DATA / "golden-run.json"
TINY = "golden_tiny"
STOP_AFTER = 7
# Wall-clock figures differ between runs; everything else must match exactly.
TIMING = {"images_per_second", "elapsed_seconds", "wall_seconds"}


def _tiny(*, num_classes: int = 10) -> nn.Module:
    """A few-hundred-parameter conv net (the fixture stays a few KB); BN buffers included."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


TINY_INFO = ModelInfo(name=TINY, family="cifar", builder=_tiny, input_size=32)


def register_tiny() -> None:
    """For the generator script; the test registers it only while it runs (other tests list the
    registry and must not see it)."""
    if TINY not in list_models():
        register_model(TINY_INFO)


def golden_config() -> TrainConfig:
    # fp32 and contiguous tensors: the same numbers on every CPU (auto precision picks bf16 on some).
    return TrainConfig(
        model=TINY,
        iterations=12,
        batch_size=32,
        milestones=(6, 9),
        val_size=64,
        log_every=4,
        eval_every=6,
        checkpoint_every=5,
        warmup_lr=0.01,
        warmup_max_iterations=7,
        precision="fp32",
        channels_last=False,
    )


def golden_data() -> tuple[ImageArrays, ImageArrays]:
    return load_dataset("synthetic:320", "train"), load_dataset("synthetic", "test").subset(torch.arange(200))


def weights_sha256(path: Path) -> str:
    """sha256 over the state dict's names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(load_checkpoint(path)["model"].items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def untimed(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING}


def finish(run: Path) -> dict:
    """Resume ``run`` to the end; what is compared with the golden record."""
    result = train(golden_config(), run, resume=True, data=golden_data(), log=lambda line: None)
    assert result.status == "completed" and result.iteration == 12
    summary = json.loads((run / "summary.json").read_text())
    return {
        "last_sha256": weights_sha256(run / "checkpoints" / "last.pt"),
        "best_sha256": weights_sha256(run / "checkpoints" / "best.pt"),
        "metrics": [untimed(m) for m in read_metrics(run)],
        "summary": {k: v for k, v in untimed(summary).items() if k not in ("device",)},
    }


def same_numbers(got, expected, rel: float) -> bool:
    """Equal, floats within ``rel`` (relative); dicts and lists compared element by element."""
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and got.keys() == expected.keys()
            and all(same_numbers(got[k], expected[k], rel) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(map(same_numbers, got, expected, [rel] * len(got)))
        )
    if isinstance(expected, float) and isinstance(got, float):
        return abs(got - expected) <= rel * abs(expected)
    return got == expected


def test_same_numbers_tolerates_only_float_noise() -> None:
    record = {"metrics": [{"iteration": 8, "train_loss": 2.3504336, "train_error": 90.625}]}
    noisy = {"metrics": [{"iteration": 8, "train_loss": 2.3504336 * (1 + 1e-7), "train_error": 90.625}]}
    assert same_numbers(noisy, record, 1e-5) and not same_numbers(noisy, record, 0.0)
    assert not same_numbers({"metrics": [{"iteration": 8, "train_loss": 2.36, "train_error": 90.625}]}, record, 1e-5)
    assert not same_numbers(
        {"metrics": [{"iteration": 9, "train_loss": 2.3504336, "train_error": 90.625}]}, record, 1e-5
    )


def test_committed_run_directory_resumes_bitwise(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(registry._REGISTRY, TINY, TINY_INFO)
    run = tmp_path / "golden-run"
    shutil.copytree(RUN, run)
    stopped = load_checkpoint(run / "checkpoints" / "last.pt")
    assert stopped["iteration"] == STOP_AFTER and stopped["format"] == "resnetlab/1"
    got = finish(run)
    expected = json.loads(EXPECTED.read_text())
    fixture_cpu = json.loads((RUN / "meta.json").read_text())["cpu"]
    if cpu_model() == fixture_cpu:
        assert got["last_sha256"] == expected["last_sha256"]
        assert got["best_sha256"] == expected["best_sha256"]
        assert got["metrics"] == expected["metrics"]
        assert got["summary"] == expected["summary"]
    else:
        assert same_numbers(got["metrics"], expected["metrics"], 1e-5), (got["metrics"], expected["metrics"])
        assert same_numbers(got["summary"], expected["summary"], 1e-5), (got["summary"], expected["summary"])
    # The resumed start adds a segment after the fixture's own (checkpoints/rundir.py segments_so_far).
    meta = json.loads((run / "meta.json").read_text())
    assert [s["from_iteration"] for s in meta["segments"]] == [0, STOP_AFTER]
    assert meta["resumed_from"] == STOP_AFTER
