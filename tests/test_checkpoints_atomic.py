"""The single atomic-write helper (``checkpoints.atomic``): a crash mid-write never costs the old file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from resnetlab.checkpoints.atomic import staged_output, write_json, write_text
from resnetlab.checkpoints.checkpoint import load_checkpoint, save_checkpoint


def test_a_crash_mid_write_leaves_the_old_file_intact(tmp_path) -> None:
    target = tmp_path / "meta.json"
    write_json(target, {"version": 1})
    with pytest.raises(RuntimeError, match="killed"), staged_output(target, overwrite=True, keep_suffix=False) as tmp:
        tmp.write_text('{"version": 2, "torn')  # half written, then the writer dies
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]  # no temporary left behind


def test_a_checkpoint_write_that_fails_keeps_the_last_good_one(tmp_path, monkeypatch) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, {"iteration": 5})

    def torn_save(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, {"iteration": 6})
    monkeypatch.undo()
    assert load_checkpoint(path)["iteration"] == 5
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_a_killed_writer_leaves_only_a_temporary_which_the_next_write_removes(tmp_path) -> None:
    target = tmp_path / "config.json"
    write_text(target, "old\n")
    script = (
        "import os, sys\n"
        "from resnetlab.checkpoints.atomic import staged_output\n"
        f"with staged_output({str(target)!r}, overwrite=True, keep_suffix=False) as tmp:\n"
        "    tmp.write_text('new, but never fin')\n"
        "    os._exit(9)  # as kill -9: no cleanup runs\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    leftovers = [p for p in tmp_path.iterdir() if p.name != "config.json"]
    assert target.read_text() == "old\n" and len(leftovers) == 1
    assert leftovers[0].name.startswith(".config.json.") and leftovers[0].name.endswith(".tmp")
    write_text(target, "newer\n")  # the dead writer's temporary goes with the next write
    assert target.read_text() == "newer\n" and [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_without_overwrite_an_existing_file_is_refused_and_kept(tmp_path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"mine")
    with pytest.raises(FileExistsError), staged_output(target) as tmp:
        tmp.write_bytes(b"theirs")
    assert target.read_bytes() == b"mine"
    fresh = tmp_path / "other.onnx"
    with staged_output(fresh) as tmp:
        assert tmp.suffix == ".onnx" and tmp.parent == fresh.parent  # exporters pick the format by suffix
        tmp.write_bytes(b"graph")
    assert fresh.read_bytes() == b"graph" and sorted(os.listdir(tmp_path)) == ["model.onnx", "other.onnx"]
