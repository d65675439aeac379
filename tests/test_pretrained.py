"""Shipped weights: ship a finished run, get_weights/.meta/.transforms(), build_model(weights=...),
the name wherever a checkpoint is accepted, torch.hub, sha256 checks, and what is never shipped."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import resnetlab.checkpoints.pretrained as pretrained
from resnetlab.analysis.campaign_folder import finalize_run
from resnetlab.analysis.shipping import ship
from resnetlab.cli import main
from resnetlab.data import load_dataset
from resnetlab.engine.config import load_recipe
from resnetlab.engine.train import train
from resnetlab.inference import load_any
from resnetlab.models import build_model, get_weights, list_weights

REPO = Path(__file__).resolve().parents[1]
DATA = "synthetic:512"
NAME = "resnet20.synthetic"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny finished campaign run: resnet20's recipe at depth 8, 6 iterations, all training images."""
    run_dir = tmp_path_factory.mktemp("campaign") / "resnet20"
    config = load_recipe("cifar10-resnet20").replace(
        data=DATA,
        iterations=6,
        milestones=(4,),
        val_size=0,
        eval_every=3,
        log_every=3,
        checkpoint_every=3,
        eval_batch_size=256,
        model_options={"depth": 8},
    )
    assert train(config, run_dir, log=lambda line: None).status == "completed"
    finalize_run(run_dir)
    return run_dir


@pytest.fixture()
def shipped(finished_run, tmp_path, monkeypatch):
    """The run shipped into a temporary weights folder that the package uses as its own."""
    root = tmp_path / "weights"
    ship(finished_run, NAME, root, min_iterations=6)
    monkeypatch.setattr(pretrained, "WEIGHTS_ROOT", root)
    return root


def test_meta_records_how_the_weights_were_made(shipped, finished_run):
    weights = get_weights(NAME)
    summary = json.loads((finished_run / "summary.json").read_text())
    meta = weights.meta
    assert list_weights() == [NAME]
    assert meta["test_top1_error"] == summary["test_top1_error"]
    assert meta["iterations"] == 6 and meta["train_images"] == 50_000 and meta["seed"] == 0
    assert meta["recipe"] == "cifar10-resnet20" and meta["precision"] == summary["precision"]
    # every departure from the recipe that changes what is learned, none of the execution settings
    assert meta["recipe_changes"] == {"iterations": 6, "milestones": [4], "model_options": {"depth": 8}, "val_size": 0}
    assert "JPEG" in meta["data_note"] and meta["git_revision"]
    assert weights.sha256 == pretrained.sha256_of(shipped / f"{NAME}.safetensors")


def test_build_model_with_weights_equals_the_run(shipped, finished_run):
    model = build_model("resnet20", weights="synthetic").eval()
    again = build_model("resnet20", weights=NAME).eval()
    reference = load_any(finished_run)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference.model(x)) and torch.equal(again(x), reference.model(x))
    with pytest.raises(ValueError, match="trained with depth=8"):
        build_model("resnet20", weights="synthetic", depth=20)
    with pytest.raises(ValueError, match="are for resnet20, not resnet56"):
        build_model("resnet56", weights=NAME)
    with pytest.raises(ValueError, match="no shipped weights named 'resnet20.imagenet'"):
        build_model("resnet20", weights="imagenet")


def test_transforms_are_the_test_preprocessing(shipped, finished_run):
    transform = get_weights(NAME).transforms()
    loaded = load_any(finished_run)
    test = load_dataset(DATA, "test")
    images = test.images[:8]
    batch = transform(images)
    assert torch.equal(batch, loaded.preprocess.normalize(images))
    assert torch.equal(transform(images[0]), batch[0])
    pil = Image.fromarray(images[0].permute(1, 2, 0).numpy(), "RGB")
    assert torch.equal(transform(pil), batch[0])
    # The per-pixel mean of the training images is part of it (Sec. 4.2): not a zero image.
    assert loaded.preprocess.mean_image.shape == (3, 32, 32) and loaded.preprocess.mean_image.abs().sum() > 0


def test_the_name_works_wherever_a_checkpoint_does(shipped, finished_run, capsys, tmp_path):
    summary = json.loads((finished_run / "summary.json").read_text())
    capsys.readouterr()
    assert main(["eval", NAME, "--data", DATA, "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top1_error"] == summary["test_top1_error"]
    image = tmp_path / "x.png"
    Image.fromarray(load_dataset(DATA, "test").images[0].permute(1, 2, 0).numpy(), "RGB").save(image)
    assert main(["predict", NAME, str(image)]) == 0
    assert "x.png" in capsys.readouterr().out


def test_weights_list_prints_the_table_and_the_records(shipped, finished_run, capsys):
    summary = json.loads((finished_run / "summary.json").read_text())
    capsys.readouterr()
    assert main(["weights", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| name | test error") and len(table) == 3
    assert table[2].startswith(f"| `{NAME}` | {summary['test_top1_error']:.2f}% top-1")
    assert "`cifar10-resnet20` with `iterations=6`, `milestones=[4]`" in table[2]
    assert main(["weights", "list", "--json"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["name"] == NAME and record["meta"] == get_weights(NAME).meta
    assert record["sha256"] == pretrained.sha256_of(shipped / record["file"])


def test_a_name_not_shipped_says_which_are(shipped, capsys):
    """``resnet56.cifar10`` before its run has finished: the one line lists the shipped names,
    instead of "no checkpoint at resnet56.cifar10"; a plain missing file keeps its own message."""
    assert main(["eval", "resnet56.cifar10", "--data", DATA]) == 1
    assert f"no shipped weights named 'resnet56.cifar10'; shipped: {NAME}" in capsys.readouterr().err
    assert main(["eval", "model.pt", "--data", DATA]) == 1
    assert "no checkpoint at model.pt" in capsys.readouterr().err


def test_torch_hub_loads_from_the_repository(shipped):
    model = torch.hub.load(str(REPO), "resnet20", source="local", weights="synthetic").eval()
    reference = build_model("resnet20", weights=NAME).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_a_damaged_file_is_refused(shipped):
    path = shipped / f"{NAME}.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        build_model("resnet20", weights="synthetic")


def test_unfinished_and_reduced_budget_runs_are_never_shipped(finished_run, tmp_path):
    with pytest.raises(ValueError, match="fewer than the paper's 64,000"):
        ship(finished_run, NAME, tmp_path / "w")  # 6 iterations
    with pytest.raises(ValueError, match="not a finished campaign run"):
        ship(tmp_path, NAME, tmp_path / "w")
    with pytest.raises(ValueError, match="trained resnet20, not resnet56"):
        ship(finished_run, "resnet56.synthetic", tmp_path / "w", min_iterations=6)
    assert not (tmp_path / "w").exists()


def test_ship_finished_ships_the_finished_runs_marked_ships(finished_run, tmp_path, capsys):
    """``analysis.campaign_folder.ship_finished`` (``reproduce ship``): a campaign folder's finished
    runs that its campaign marks ``ships``, nothing else; nothing to ship is said, not written."""
    import shutil

    from resnetlab.analysis.campaign import parse_campaign
    from resnetlab.analysis.campaign_folder import NothingToShip, prepare_folder, ship_finished

    runs = [
        {"name": "a", "recipe": "cifar10-resnet20", "ships": NAME},
        {"name": "b", "recipe": "cifar10-resnet20", "ships": "resnet20.other"},  # never started
        {"name": "c", "recipe": "cifar10-resnet20"},  # finished, not marked
    ]
    campaign = parse_campaign({"name": "tiny", "version": 1, "run": runs}, source="test")
    out, into = tmp_path / "folder", tmp_path / "weights"
    prepare_folder(campaign, out, DATA)
    with pytest.raises(
        NothingToShip, match=f"nothing to ship: no finished run of {out} is marked `ships` in campaign tiny"
    ):
        ship_finished(out, into)
    assert main(["reproduce", "ship", str(out), "--into", str(into)]) == 0
    assert capsys.readouterr().out.startswith("nothing to ship:") and not into.exists()
    for name in ("a", "c"):
        shutil.copytree(finished_run, out / name)
        for file in ("config.json", "summary.json"):  # a full schedule, as far as shipping can tell
            values = json.loads((out / name / file).read_text())
            (out / name / file).write_text(json.dumps({**values, "iterations": 64_000}))
    seen = []
    shipped = ship_finished(out, into, on_shipped=seen.append)
    assert [w.name for w in shipped] == [NAME] and seen == shipped
    assert list_weights(into) == [NAME] and shipped[0].meta["iterations"] == 64_000
    assert main(["reproduce", "ship", str(out), "--into", str(into)]) == 0
    assert capsys.readouterr().out.startswith(f"shipped {NAME}: test error ")
