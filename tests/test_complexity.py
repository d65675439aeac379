"""Parameters, multiply-adds and depth: golden figures, the paper's numbers, an independent count."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from resnetlab.cli import main as cli_main
from resnetlab.models import build_model, count_macs, list_models, measure, model_info

# Measured once and checked in (pycls-style golden numbers): any change to a network shows here.
GOLDEN = {  # name: (params, multiply-adds at the native input, depth)
    "resnet18": (11_689_512, 1_814_073_344, 18),
    "resnet34": (21_797_672, 3_663_761_408, 34),
    "resnet50": (25_557_032, 3_857_973_248, 50),
    "resnet101": (44_549_160, 7_570_194_432, 101),
    "resnet152": (60_192_808, 11_282_415_616, 152),
    "plain18": (11_515_688, 1_794_805_760, 18),
    "plain34": (21_623_848, 3_644_493_824, 34),
    "plain50": (22_780_456, 3_498_311_680, 50),
    "plain101": (41_772_584, 7_210_532_864, 101),
    "plain152": (57_416_232, 10_922_754_048, 152),
    "resnet20": (269_722, 40_551_040, 20),
    "resnet32": (464_154, 68_862_592, 32),
    "resnet44": (658_586, 97_174_144, 44),
    "resnet56": (853_018, 125_485_696, 56),
    "resnet110": (1_727_962, 252_887_680, 110),
    "resnet1202": (19_421_274, 2_829_238_912, 1202),
    "plain20": (269_722, 40_551_040, 20),
    "plain32": (464_154, 68_862_592, 32),
    "plain44": (658_586, 97_174_144, 44),
    "plain56": (853_018, 125_485_696, 56),
    "plain110": (1_727_962, 252_887_680, 110),
    "vgg16": (138_357_544, 15_470_264_320, 16),
    "vgg19": (143_667_240, 19_632_062_464, 19),
}


def test_every_registered_model_has_golden_figures() -> None:
    assert set(GOLDEN) == set(list_models()) - {"cifar_resnet", "cifar_plain"}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_figures(name: str) -> None:
    c = measure(name)
    assert (c.params, c.macs, c.depth) == GOLDEN[name]


def _paper_rounding(value: float) -> float:
    """The paper prints CIFAR parameters as 0.27M .. 0.85M, then 1.7M and 19.4M."""
    return round(value / 1e6, 2) if value < 1e6 else round(value / 1e6, 1)


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110, 1202])
def test_cifar_parameters_match_table6(depth: int) -> None:
    info = model_info(f"resnet{depth}")
    params = GOLDEN[f"resnet{depth}"][0]
    assert _paper_rounding(params) == pytest.approx(info.paper_params / 1e6)
    if depth != 1202:
        assert GOLDEN[f"plain{depth}"][0] == params  # option A: residual and plain nets are alike


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_imagenet_figures_match_table1(depth: int) -> None:
    info = model_info(f"resnet{depth}")
    params, macs, _ = GOLDEN[f"resnet{depth}"]
    assert params == info.paper_params  # option B, exactly
    assert abs(macs - info.paper_macs) / info.paper_macs < 0.03  # v1 stride, within 3%


def test_plain34_has_the_flops_of_resnet34_option_a() -> None:
    assert measure("plain34").macs == measure("resnet34", shortcut="A").macs
    assert abs(GOLDEN["plain34"][1] - 3.6e9) / 3.6e9 < 0.03


@pytest.mark.parametrize("name, paper", [("vgg16", 15.3e9), ("vgg19", 19.6e9)])
def test_vgg_within_5_percent(name: str, paper: float) -> None:
    assert abs(GOLDEN[name][1] - paper) / paper < 0.05


def test_v15_costs_more_than_v1() -> None:
    assert measure("resnet50", stride_on="3x3").macs == 4_089_184_256  # torchvision's ResNet-50


@pytest.mark.parametrize(
    "name, size", [("resnet18", 224), ("resnet50", 160), ("resnet20", 32), ("vgg16", 64), ("plain56", 32)]
)
def test_multiply_adds_agree_with_torch_flop_counter(name: str, size: int) -> None:
    """PyTorch's own counter sees every conv and matmul; it counts 2 FLOPs per multiply-add."""
    model = build_model(name).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    assert counter.get_total_flops() == 2 * count_macs(model, size)


def test_cli_summary_and_models(capsys) -> None:
    assert cli_main(["summary", "resnet110", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["name"], row["params"], row["macs"], row["depth"]) == ("resnet110", 1_727_962, 252_887_680, 110)
    assert cli_main(["summary", "resnet18", "--input-size", "448", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == count_macs(build_model("resnet18"), 448)
    assert cli_main(["models", "--family", "cifar"]) == 0
    table = capsys.readouterr().out
    assert "resnet1202" in table and "19.40M" in table and "vgg16" not in table
    assert cli_main(["summary", "resnet21"]) == 1
    assert "valid names" in capsys.readouterr().err


def test_summary_row_and_check_input_size_as_a_library() -> None:
    """What ``resnetlab models`` / ``summary`` print, called without the CLI."""
    from resnetlab.models.complexity import MAX_INPUT_SIZE, check_input_size, summary_row

    row = summary_row("resnet110")
    assert (row["name"], row["params"], row["macs"], row["depth"], row["input_size"]) == (
        "resnet110",
        *GOLDEN["resnet110"],
        32,
    )
    info = model_info("resnet110")
    assert (row["family"], row["paper_params"], row["paper_macs"], row["description"]) == (
        info.family,
        info.paper_params,
        info.paper_macs,
        info.description,
    )
    assert summary_row("resnet18", 448)["macs"] == count_macs(build_model("resnet18"), 448)
    assert summary_row("resnet20", shortcut="B")["params"] == measure("resnet20", shortcut="B").params
    for name, size in [("resnet20", None), ("resnet20", 1), ("vgg16", 32), ("resnet18", MAX_INPUT_SIZE)]:
        check_input_size(name, size)
    for name, size, low in [("resnet20", 0, 1), ("resnet20", MAX_INPUT_SIZE + 1, 1), ("vgg16", 31, 32)]:
        with pytest.raises(ValueError, match=rf"--input-size must be between {low} and {MAX_INPUT_SIZE} for {name}"):
            check_input_size(name, size)
