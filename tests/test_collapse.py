"""A collapsed run (training loss at ln C, error at chance) stops instead of training on for hours;
the threshold is checked against the committed campaign's own logs; and a campaign goes on with
its other runs when one of them fails."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from resnetlab.analysis.campaign import load_campaign
from resnetlab.analysis.campaign_runner import continue_campaign
from resnetlab.analysis.campaign_status import campaign_progress, format_status
from resnetlab.checkpoints.checkpoint import load_checkpoint
from resnetlab.checkpoints.rundir import read_metrics
from resnetlab.engine import failures
from resnetlab.engine.config import TrainConfig
from resnetlab.engine.failures import TrainingCollapsed, TrainingDiverged, at_chance, chance_streak
from resnetlab.engine.train import train

REPO = Path(__file__).resolve().parents[1]
COLLAPSED = REPO / "results" / "cifar10-jpeg" / "resnet56-collapsed-v4" / "metrics.jsonl"
QUIET = dict(log=lambda line: None)


def test_chance_is_ln_c_and_the_chance_error_not_a_fresh_or_a_slow_net() -> None:
    assert at_chance(math.log(10), 90.0, 10)
    assert at_chance(2.305, 89.4, 10)  # the v4 ResNet-56 from iteration 200 on
    assert not at_chance(3.49, 90.0, 10)  # a freshly drawn ResNet-56: above ln 10, not collapsed
    assert not at_chance(2.232, 85.7, 10)  # ResNet-56 in fp32 at 300: learning slowly
    assert not at_chance(2.30, 84.3, 10)  # loss at ln 10 but the error already below chance
    assert at_chance(math.log(1000), 99.9, 1000) and not at_chance(6.0, 99.9, 1000)


def _streaks(rows: list[dict], patience: int) -> tuple[int, int | None]:
    """The longest run of at-chance log points (in iterations) and where ``patience`` would stop."""
    since, longest, stop = None, 0, None
    for row in (r for r in rows if "train_loss" in r):
        since = chance_streak(since, row, 10)
        if since is not None:
            longest = max(longest, row["iteration"] - since)
            if stop is None and row["iteration"] - since >= patience:
                stop = row["iteration"]
    return longest, stop


@pytest.mark.skipif(not COLLAPSED.is_file(), reason="the committed campaign results are not in this checkout")
def test_the_committed_logs_the_collapsed_run_stops_early_and_no_learning_run_ever_would() -> None:
    patience = TrainConfig().stop_at_chance
    rows = [json.loads(line) for line in COLLAPSED.read_text().splitlines()]
    longest, stop = _streaks(rows, patience)
    assert longest == 1_900 and stop == 200 + patience  # it trained on to 2,117; it would stop at 1,200
    learned = [p for p in REPO.glob("results/*/*/*/metrics.jsonl") if "collapsed" not in str(p)]
    learned += list(REPO.glob("results/*/runs/*/metrics.jsonl"))
    assert len(learned) >= 10
    for path in learned:
        longest, stop = _streaks([json.loads(line) for line in path.read_text().splitlines()], patience)
        assert stop is None and longest < 100, path  # never two log points in a row at chance


def collapsing(**changes) -> TrainConfig:
    """conftest's tiny run, longer (20 iterations), with a checkpoint every 2 and a short patience."""
    defaults = dict(iterations=20, milestones=(15,), eval_every=100, checkpoint_every=2, stop_at_chance=8)
    return tiny_config(**{**defaults, **changes})


@pytest.fixture
def always_at_chance(monkeypatch):
    """Every log point reads as chance: the streak logic alone, on a net that trains for real."""
    monkeypatch.setattr(failures, "at_chance", lambda loss, error, classes: True)


def test_a_run_at_chance_stops_after_stop_at_chance_iterations(tmp_path, tiny_data, always_at_chance) -> None:
    with pytest.raises(TrainingCollapsed, match=r"since iteration 4; stopped at 12\. .*warmup_lr=0\.01"):
        train(collapsing(), tmp_path / "run", data=tiny_data, **QUIET)
    assert issubclass(TrainingCollapsed, TrainingDiverged)  # the CLI reports it in one line
    assert [r["iteration"] for r in read_metrics(tmp_path / "run") if "train_loss" in r] == [4, 8, 12]
    assert not (tmp_path / "run" / "summary.json").exists()


def test_the_count_survives_a_resume(tmp_path, tiny_data, always_at_chance) -> None:
    calls = iter(range(1000))
    result = train(collapsing(), tmp_path / "run", data=tiny_data, should_stop=lambda: next(calls) == 9, **QUIET)
    assert result.status == "interrupted" and 8 <= result.iteration < 12
    assert load_checkpoint(tmp_path / "run/checkpoints/last.pt")["at_chance_since"] == 4
    with pytest.raises(TrainingCollapsed, match="since iteration 4; stopped at 12"):
        train(collapsing(), tmp_path / "run", data=tiny_data, resume=True, **QUIET)


def test_stop_at_chance_zero_never_stops_and_is_checked(tmp_path, tiny_data, always_at_chance) -> None:
    result = train(collapsing(stop_at_chance=0), tmp_path / "run", data=tiny_data, **QUIET)
    assert result.status == "completed" and result.iteration == 20
    with pytest.raises(ValueError, match="stop_at_chance must be a non-negative integer"):
        collapsing(stop_at_chance=-1)


TWO_RUNS = """
name = "two"
version = 1
set = { iterations = 6, checkpoint_every = 3, eval_every = 6, log_every = 2, eval_batch_size = 256, "model_options.depth" = 8, val_size = 64 }
[[run]]
name = "broken"
recipe = "cifar10-resnet20"
set = { device = "cuda" }
[[run]]
name = "fine"
recipe = "cifar10-resnet20"
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the broken run asks for CUDA, which this machine has")
def test_a_failed_run_does_not_stop_the_others_and_status_says_why(tmp_path) -> None:
    (tmp_path / "two.toml").write_text(TWO_RUNS)
    campaign, out, lines = load_campaign(tmp_path / "two.toml"), tmp_path / "out", []
    assert continue_campaign(campaign, out, "synthetic:256", jobs=1, threads=1, log=lines.append) == "failed"
    assert any(line.startswith("broken: training failed") for line in lines)
    assert lines[-1] == "campaign two: failed: broken (see each run's train.log)"
    states = {p.name: (p.state, p.failure) for p in campaign_progress(out)[2]}
    assert states["fine"] == ("finished", None)
    assert states["broken"][0] == "failed" and "cuda" in states["broken"][1].lower()
    assert "broken failed: " in format_status(out)
