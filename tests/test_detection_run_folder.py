"""``detection.run_folder`` called as a library: ``detect train`` starts in a new or empty folder,
replaces only a previous detection run and only when asked, and refuses everything else with the
library's exceptions (ValueError, FileExistsError) that the CLI prints in one line. Nothing is trained."""

from __future__ import annotations

import json

import pytest

from resnetlab.detection.config import load_recipe
from resnetlab.detection.run_folder import RUN_FILES, is_detection_run, prepare_train_out
from resnetlab.engine.config import load_recipe as load_train_recipe


def detection_run(folder):
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "tb").mkdir()
    (folder / "config.json").write_text(json.dumps(load_recipe("synthetic-resnet18").to_dict()))
    (folder / "metrics.jsonl").write_text("{}\n")
    (folder / "checkpoints" / "last.pt").write_bytes(b"x")
    (folder / "tb" / "events.out.tfevents.1.host").write_bytes(b"")
    return folder


def test_a_new_or_empty_folder_is_left_as_it_is(tmp_path):
    prepare_train_out(tmp_path / "missing", overwrite=False)
    assert not (tmp_path / "missing").exists()
    prepare_train_out(tmp_path, overwrite=True)  # empty: nothing to delete
    assert tmp_path.is_dir()


def test_only_a_previous_detection_run_is_replaced_and_only_when_asked(tmp_path):
    run = detection_run(tmp_path / "run")
    assert is_detection_run(run) and set(RUN_FILES) >= {"config.json", "metrics.jsonl"}
    with pytest.raises(FileExistsError, match="holds a previous detection run; pass --overwrite"):
        prepare_train_out(run, overwrite=False)
    assert (run / "checkpoints" / "last.pt").exists()
    prepare_train_out(run, overwrite=True)
    assert not run.exists()


@pytest.mark.parametrize("case", ["foreign file", "user folder", "classification run", "no config"])
def test_anything_else_is_refused_and_kept(tmp_path, case):
    run = detection_run(tmp_path / "run")
    if case == "foreign file":
        (run / "notes.txt").write_text("mine")
    elif case == "user folder":
        (run / "checkpoints" / "mine").mkdir()
    elif case == "classification run":
        (run / "config.json").write_text(json.dumps(load_train_recipe("cifar10-resnet20").to_dict(), default=str))
    else:
        (run / "config.json").unlink()
    assert not is_detection_run(run)
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="is not empty and is not a detection run; choose another --out"):
            prepare_train_out(run, overwrite=overwrite)
    assert (run / "metrics.jsonl").exists() and (run / "checkpoints" / "last.pt").exists()


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        prepare_train_out(tmp_path / "file", overwrite=True)
    assert (tmp_path / "file").read_text() == "x"
