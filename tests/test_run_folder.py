"""``engine.run_folder`` and ``engine.demo`` called as a library: which folders a run may start in
or replace, refused with the library's exceptions (ValueError, FileExistsError) that the CLI prints
in one line. Nothing is trained and torch is not needed."""

from __future__ import annotations

import json

import pytest

from resnetlab.engine.config import load_recipe
from resnetlab.engine.demo import demo_config, is_demo_run, prepare_demo_out
from resnetlab.engine.run_folder import RUN_FILES, RUN_FOLDERS, check_fresh_out, holds_run_config


def write_config(folder, config) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict(), default=str))


def test_check_fresh_out_accepts_new_empty_and_finished_run_folders(tmp_path):
    check_fresh_out(tmp_path / "missing")
    check_fresh_out(tmp_path)  # empty
    run = tmp_path / "finished"
    write_config(run, load_recipe("cifar10-resnet20"))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    (run / "summary.json").write_text("{}")
    assert holds_run_config(run)
    check_fresh_out(run)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.json", "summary.json"]
    assert set(RUN_FILES + RUN_FOLDERS) >= {"config.json", "summary.json", "checkpoints", "tb"}


def test_check_fresh_out_refuses_a_file_foreign_files_and_an_unfinished_run(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        check_fresh_out(tmp_path / "file")
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text('{"editor": "vim"}')
    (project / "metrics.jsonl").write_text("{}\n")
    assert not holds_run_config(project)
    with pytest.raises(FileExistsError, match=r"holds config.json, metrics.jsonl that are not from a resnetlab run"):
        check_fresh_out(project)
    run = tmp_path / "run"
    write_config(run, load_recipe("cifar10-resnet20"))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(FileExistsError, match="holds an unfinished run: pass --resume"):
        check_fresh_out(run)
    assert (project / "config.json").read_text() == '{"editor": "vim"}' and (run / "checkpoints" / "last.pt").exists()


def test_prepare_demo_out_as_a_library(tmp_path):
    prepare_demo_out(tmp_path / "missing")  # nothing to do
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        prepare_demo_out(tmp_path / "file")
    other = tmp_path / "other"
    write_config(other, load_recipe("cifar10-resnet20"))
    assert not is_demo_run(other)
    with pytest.raises(FileExistsError, match="is not empty and is not a previous demo run"):
        prepare_demo_out(other)
    assert (other / "config.json").exists()
    demo = tmp_path / "demo"
    write_config(demo, demo_config(40))
    assert is_demo_run(demo)
    prepare_demo_out(demo)
    assert not demo.exists()
    with pytest.raises(ValueError, match="--iterations must be a positive integer"):
        demo_config(True)
