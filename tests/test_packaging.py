"""Packaging facts: one version, the license, the data files the package needs at run time."""

import tomllib
from pathlib import Path

import pytest

import resnetlab
from resnetlab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_written_once_and_printed(capsys):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "resnetlab.__version__"}
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"resnetlab {resnetlab.__version__}"


def test_license_is_an_spdx_string_with_its_file():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_run_time_data_files_are_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["resnetlab"]
    for pattern in ("recipes/*.toml", "campaigns/*.toml", "weights/manifest.json", "weights/*.safetensors", "py.typed"):
        assert pattern in data
    assert (ROOT / "src" / "resnetlab" / "py.typed").is_file()


def test_pre_commit_runs_the_ruff_that_make_lint_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = [d for d in project["optional-dependencies"]["dev"] if d.startswith("ruff==")]
    assert len(pinned) == 1
    hooks = (ROOT / ".pre-commit-config.yaml").read_text()
    assert f"rev: v{pinned[0].split('==')[1]}" in hooks and "ruff-check" in hooks and "ruff-format" in hooks
    assert "ruff check ." in (ROOT / "Makefile").read_text() and "make lint" in (ROOT / ".ci" / "run").read_text()
