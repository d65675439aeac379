"""One configuration toolkit: one TOML loader, one ``--set KEY=VALUE`` syntax on every command,
errors that name the key; every shipped recipe and campaign parsed, and every committed campaign
run directory's config.json still read (and resumed) as its campaign defines it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnetlab.analysis.campaign import campaign_names, load_campaign
from resnetlab.detection.config import DetectionConfig
from resnetlab.detection.config import apply_overrides as detection_overrides
from resnetlab.detection.config import list_recipes as detection_recipes
from resnetlab.detection.config import load_recipe as detection_recipe
from resnetlab.engine.config import (
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_recipe,
    recipe_names,
    resolve_recipe,
)
from resnetlab.engine.config_loader import merge_overrides, parse_override, parse_value, read_toml, shipped_names

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN_CONFIGS = sorted(ROOT.glob("results/*/campaign/*/config.json"))


def test_every_shipped_file_parses_with_the_one_loader() -> None:
    assert recipe_names() == shipped_names("recipes")
    assert detection_recipes() == shipped_names("recipes/detection")
    for name in recipe_names():
        assert isinstance(load_recipe(name), TrainConfig)
    for name in detection_recipes():
        config = detection_recipe(name)
        assert isinstance(config, DetectionConfig) and config.name == name
    for name in campaign_names():
        assert load_campaign(name).runs


def test_values_are_read_alike_everywhere() -> None:
    assert parse_value("0.05") == 0.05 and parse_value("[100, 200]") == [100, 200]
    assert parse_value("false") is False and parse_value('"B"') == "B"
    assert parse_value("3x3") == "3x3" and parse_value("runs/r50") == "runs/r50" and parse_value("") == ""
    assert parse_override("model_options.shortcut=B", ["model_options"], ["model_options"]) == (
        "model_options.shortcut",
        "B",
    )
    merged = merge_overrides(
        {"model_options": {"a": 1}}, ["model_options.b=2", "lr=0.5"], ["lr", "model_options"], ["model_options"]
    )
    assert merged == {"model_options": {"a": 1, "b": 2}, "lr": 0.5}


def test_detection_takes_the_same_spelling_as_training() -> None:
    train = apply_overrides(TrainConfig(), ["lr=0.05", "seed=3"])
    detect = detection_overrides(
        detection_recipe("synthetic-resnet18"),
        ["lr=0.05", "seed=3", "lr_steps=[5]", "weights=runs/r18", "precision=fp32"],
    )
    assert (train.lr, train.seed) == (detect.lr, detect.seed) == (0.05, 3)
    assert detect.lr_steps == (5,) and detect.weights == "runs/r18" and detect.precision == "fp32"


@pytest.mark.parametrize(
    "items, key",
    [
        (["lrr=1"], "lrr"),
        (["lr=fast"], "lr"),
        (["flip=1"], "flip"),
        (['anchor_sizes=["a"]'], "anchor_sizes"),
        (["device=tpu"], "device"),
        (["checkpoint_every=0"], "checkpoint_every"),
        (["precision=int8"], "precision"),
        (["iterations=2.5"], "iterations"),
        (["lr"], "KEY=VALUE"),
    ],
)
def test_detection_errors_name_the_key(items, key) -> None:
    with pytest.raises(ValueError, match=key):
        detection_overrides(detection_recipe("synthetic-resnet18"), items)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:1", "cuda:12"])
def test_training_configs_accept_cuda_n(device) -> None:
    """Only the spelling is checked here: whether the machine has the device is asked when a run
    starts (``devices.resolve_device``), so a config written for a GPU host loads anywhere."""
    assert TrainConfig(device=device).device == device
    assert apply_overrides(TrainConfig(), [f"device={device}"]).device == device
    assert DetectionConfig(device=device).device == device
    assert detection_overrides(detection_recipe("synthetic-resnet18"), [f"device={device}"]).device == device


@pytest.mark.parametrize("device", ["gpu", "tpu", "mps", "CUDA", "cuda:", "cuda:-1", "cuda:x", "cuda:1 ", "cpu:0", ""])
def test_training_configs_reject_a_bogus_device_naming_the_key(device) -> None:
    message = rf"^device must be one of auto, cpu, cuda, cuda:N, got {device!r}$"
    for build in (lambda: TrainConfig(device=device), lambda: DetectionConfig(device=device)):
        with pytest.raises(ValueError, match=message):
            build()


def test_a_file_that_is_not_text_is_named(tmp_path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    for what in ("recipe", "detection recipe"):
        with pytest.raises(ValueError, match="binary.toml"):
            read_toml(binary, "recipes", what)
    with pytest.raises(FileNotFoundError, match="available"):
        detection_recipe("nope")


def test_summary_takes_set_and_no_other_override_syntax(capsys) -> None:
    from resnetlab.cli import main

    assert main(["summary", "resnet50", "--json", "--set", "stride_on=3x3"]) == 0
    v15 = json.loads(capsys.readouterr().out)
    assert main(["summary", "resnet50", "--json", "--set", "model_options.stride_on=3x3"]) == 0
    assert json.loads(capsys.readouterr().out) == v15
    for old in ("-o", "--option"):  # the spelling before --set was the one syntax: a usage error now
        with pytest.raises(SystemExit) as exit_info:
            main(["summary", "resnet50", "--json", old, "stride_on=3x3"])
        captured = capsys.readouterr()
        assert exit_info.value.code == 2 and captured.out == "" and "unrecognized arguments" in captured.err
    assert v15["macs"] > 4.0e9  # v1.5: the stride in the 3x3 (4.09 G against v1's 3.86 G)
    assert main(["summary", "resnet50", "--set", "colour=red"]) == 1
    assert "colour" in capsys.readouterr().err


def test_train_and_campaign_resolve_a_run_alike() -> None:
    campaign = load_campaign("cifar10")
    for run in campaign.runs:
        args = run.train_args("data", Path("out"))
        overrides = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
        budget = float(args[args.index("--budget") + 1]) if "--budget" in args else None
        cli = resolve_recipe(run.recipe, budget=budget, changes={"data": "data", "seed": run.seed}, overrides=overrides)
        assert cli == run.config("data"), run.name


@pytest.mark.skipif(not CAMPAIGN_CONFIGS, reason="no campaign run directory committed under results/")
@pytest.mark.parametrize("path", CAMPAIGN_CONFIGS, ids=lambda p: f"{p.parts[-4]}/{p.parent.name}")
def test_committed_campaign_configs_parse_and_match_their_recipe(path: Path) -> None:
    """The running campaign resumes these directories with ``--resume``: the loader must still read
    what they recorded, and resolve their campaign run to exactly that configuration."""
    recorded = json.loads(path.read_text())
    config = config_from_dict(recorded, source=str(path))  # keys and values still valid
    campaign_file = path.parent.parent / "campaign.json"
    name = json.loads(campaign_file.read_text())["campaign"]["name"] if campaign_file.is_file() else "cifar10"
    planned = load_campaign(name).run(path.parent.name)
    expected = planned.config(recorded.get("data"))
    # Compared as config.json holds them (tuples as lists), every key: stricter than the resume
    # check, which lets cadence and machine keys differ. A key an older version did not record
    # takes its default, as resuming does.
    as_json = lambda c: json.loads(json.dumps(c.to_dict()))
    assert as_json(config) == as_json(expected)
