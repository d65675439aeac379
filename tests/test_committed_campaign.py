"""The checkpoint format is a contract with the committed campaign: every unfinished run's
``checkpoints/last.pt`` under ``results/*/campaign/`` (what the next session resumes, maybe on
another machine) restores into today's training state, under the config the campaign resumes it
with, with nothing missing or left over."""

import json
from pathlib import Path

import pytest
import torch

from resnetlab.checkpoints.checkpoint import load_checkpoint
from resnetlab.engine.config import config_from_dict
from resnetlab.engine.state import TrainState, check_resumable

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = sorted(REPO.glob("results/*/campaign/*/checkpoints/last.pt"))


# Empty once every campaign run has finished (then nothing is left to resume).
@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.parts[-3])
def test_committed_checkpoint_restores_under_todays_code(path: Path) -> None:
    run = path.parents[1]
    config = config_from_dict(json.loads((run / "config.json").read_text()), source=str(run / "config.json"))
    saved = load_checkpoint(path)
    assert saved["format"] == "resnetlab/1"
    check_resumable(saved["config"], config)  # the same recipe: the resume is allowed
    num_classes = saved["model"]["fc.weight"].shape[0]
    state = TrainState.build(config, num_classes, torch.device("cpu"), "fp32")
    state.restore(saved)  # strict: every parameter, buffer and optimiser slot has its place
    assert 0 < state.iteration < config.iterations
    for name, value in state.model.state_dict().items():
        assert torch.equal(value, saved["model"][name]), name
    momentum = [state.optimizer.state[p]["momentum_buffer"] for p in state.model.parameters()]
    assert all(m is not None and torch.isfinite(m).all() for m in momentum)
