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


CAMPAIGNS = sorted(REPO.glob("results/*/campaign/campaign.json"))


@pytest.mark.parametrize("path", CAMPAIGNS, ids=lambda p: p.parts[-3])
def test_the_readme_reports_what_the_committed_campaign_holds(path: Path, tmp_path: Path, monkeypatch) -> None:
    # The README's "Reproducing the paper" numbers are generated from the committed folder; this
    # regenerates them (the copies' distances come from data-copies.json: no data needed).
    from resnetlab.analysis.campaign_report import BEGIN, END, campaign_report

    out = path.parent.relative_to(REPO)
    readme = (REPO / "README.md").read_text()
    if f"resnetlab reproduce report {out}`" not in readme:
        pytest.skip(f"the README does not report {out}")
    figure = out / "fig6.png"
    monkeypatch.chdir(REPO)  # as the command is run: from the repository, with the folder's relative path
    section = campaign_report(out, figure=tmp_path / "fig6.png", link=figure)
    committed = BEGIN + readme.split(BEGIN, 1)[1].split(END, 1)[0] + END
    assert committed == section, (
        f"README.md's campaign report is out of date: run `resnetlab reproduce report {out} --readme README.md "
        f"--figure {figure}` (with the campaign paused) and commit it with the results"
    )
