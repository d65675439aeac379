"""The weights that ship inside the package (src/resnetlab/weights): each entry of the manifest is a
finished full-schedule campaign run, its file matches the recorded sha256 and the committed run's
final weights, its meta says what the campaign recorded, and, where the campaign's data is present,
evaluating it on the test set gives exactly the recorded error."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from resnetlab.analysis.shipping import recipe_changes
from resnetlab.analysis.weights_table import weights_table
from resnetlab.checkpoints.pretrained import WEIGHTS_ROOT, sha256_of
from resnetlab.models import build_model, get_weights, list_weights

REPO = Path(__file__).resolve().parents[1]
CAMPAIGN = REPO / "results" / "cifar10-jpeg" / "campaign"
DATA = REPO.parent / "shared" / "data" / "cifar10-jpeg"
MANIFEST = (
    json.loads((WEIGHTS_ROOT / "manifest.json").read_text()) if (WEIGHTS_ROOT / "manifest.json").is_file() else {}
)
NAMES = sorted(MANIFEST)


def campaign_run(name: str) -> Path:
    """The committed campaign run a shipped name came from (the run that `ships` it)."""
    plan = json.loads((CAMPAIGN / "campaign.json").read_text())["campaign"]["runs"]
    (run,) = [r for r in plan if r.get("ships") == name]
    return CAMPAIGN / run["name"]


def test_resnet20_ships() -> None:
    assert "resnet20.cifar10" in NAMES
    assert "resnet20.cifar10" in list_weights()


@pytest.mark.parametrize("name", NAMES)
def test_shipped_file_is_the_finished_runs_final_model(name: str) -> None:
    weights = get_weights(name)
    assert sha256_of(weights.file) == MANIFEST[name]["sha256"]
    run = campaign_run(name)
    summary = json.loads((run / "summary.json").read_text())
    meta = weights.meta
    # Only full-schedule runs on all 50k training images ship, with the campaign's own figures.
    assert meta["iterations"] == summary["iterations"] == 64000
    assert meta["train_images"] == 50000
    assert meta["test_top1_error"] == summary["test_top1_error"]
    assert meta["precision"] == summary["precision"]
    assert meta["seed"] == summary["seed"]
    assert "JPEG" in meta["data_note"]
    config = json.loads((run / "config.json").read_text())
    assert meta["recipe_changes"] == recipe_changes(config, meta["recipe"])
    shipped = load_file(str(weights.file))
    final = load_file(str(run / "final.safetensors"))
    assert shipped.keys() == final.keys()
    assert all(torch.equal(shipped[k], final[k]) for k in final)


def test_the_readme_lists_the_shipped_weights_as_weights_list_does() -> None:
    """The README's table is ``resnetlab weights list``'s output: shipping ResNet-56 without
    updating the README (or editing a cell by hand) fails here."""
    assert weights_table() in (REPO / "README.md").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_build_model_loads_the_shipped_weights(name: str) -> None:
    model_name, tag = name.split(".", 1)
    model = build_model(model_name, weights=tag).eval()
    state = get_weights(name).state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data/cifar10-jpeg")
@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_evaluate_exactly_as_recorded(name: str, capsys) -> None:
    from resnetlab.cli import main

    capsys.readouterr()
    assert main(["eval", name, "--data", str(DATA), "--split", "test", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 10000
    assert result["top1_error"] == get_weights(name).meta["test_top1_error"]
    assert result["top5_error"] == get_weights(name).meta["test_top5_error"]
