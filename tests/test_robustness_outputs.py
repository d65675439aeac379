"""The robustness suite, part 2: no command loses a file. ``demo``, ``export``, ``weights``,
``download``, ``detect`` and ``plot`` onto existing files or folders would each have deleted or
overwritten a user's file before the fix; each case now refuses (or needs ``--overwrite``) and
leaves every pre-existing file unchanged (see ``test_robustness_inputs.py`` for the conventions).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from robustness import (  # noqa: F401 (the fixtures are used by name)
    CLASSES,
    _restore_signal_handlers,
    cifar_archive,
    cifar_folder,
    ckpt,
    fails_cleanly,
    image_folder,
    snapshot,
    unchanged,
)

from resnetlab.checkpoints.checkpoint import save_checkpoint
from resnetlab.cli import main
from resnetlab.engine.config import load_recipe
from resnetlab.models import build_model

# --------------------------------------------------------------------------- outputs: never lose a file


def test_demo_refuses_a_folder_that_is_not_its_own_run(tmp_path, capsys):
    """Data loss before the fix: ``demo --out DIR`` deleted DIR with everything in it."""
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work\n")
    fails_cleanly(capsys, ["demo", "--out", str(mine)], "not a previous demo run", tmp_path)
    (tmp_path / "file").write_text("x")
    fails_cleanly(capsys, ["demo", "--out", str(tmp_path / "file")], "is a file", tmp_path)
    # A run directory of another recipe is not a demo run either.
    other = tmp_path / "run"
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.json").write_text(json.dumps(load_recipe("cifar10-resnet20").to_dict()))
    fails_cleanly(capsys, ["demo", "--out", str(other)], "not a previous demo run", tmp_path)


def test_demo_replaces_only_its_own_previous_run(tmp_path):
    from resnetlab.engine.demo import prepare_demo_out

    run = tmp_path / "demo"
    (run / "checkpoints").mkdir(parents=True)
    (run / "tb").mkdir()
    (run / "config.json").write_text(json.dumps(load_recipe("demo").to_dict(), default=str))
    for name in (
        "meta.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "checkpoints/.last.pt.123.tmp",
        "tb/events.out.tfevents.1.host.1.0",
    ):
        (run / name).write_text("{}")
    prepare_demo_out(run)
    assert not run.exists()
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(load_recipe("demo").to_dict(), default=str))
    (run / "checkpoints" / "notes.txt").write_text("mine")  # one foreign file: refuse it all
    with pytest.raises(Exception, match="not a previous demo run"):
        prepare_demo_out(run)
    assert (run / "checkpoints" / "notes.txt").read_text() == "mine"


def test_demo_replaces_its_own_shortened_run_too(tmp_path):
    """A run of ``demo --iterations N`` is a demo run (its schedule is the demo's, scaled to N)."""
    from resnetlab.engine.demo import demo_config, prepare_demo_out

    short = demo_config(20)
    assert (short.iterations, short.milestones, short.eval_every) == (20, (10, 15), 7)
    assert demo_config() == load_recipe("demo") and demo_config(load_recipe("demo").iterations) == demo_config()
    with pytest.raises(ValueError, match="--iterations must be a positive integer"):
        demo_config(0)
    run = tmp_path / "demo"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(short.to_dict(), default=str))
    prepare_demo_out(run)
    assert not run.exists()
    run.mkdir()  # 20 iterations with the full run's milestones: not a schedule the demo makes
    (run / "config.json").write_text(json.dumps(load_recipe("demo").replace(iterations=20).to_dict(), default=str))
    with pytest.raises(Exception, match="not a previous demo run"):
        prepare_demo_out(run)


def test_demo_recognises_what_train_really_writes(tmp_path):
    """The demo's allow-list against a real (tiny) run directory, so the two cannot drift apart."""
    from resnetlab.data import load_dataset
    from resnetlab.engine.config import TrainConfig
    from resnetlab.engine.demo import prepare_demo_out
    from resnetlab.engine.train import train

    data = load_dataset("synthetic:128", "train"), load_dataset("synthetic", "test").subset(torch.arange(64))
    config = TrainConfig(
        model="cifar_resnet",
        model_options={"depth": 8},
        iterations=2,
        batch_size=16,
        milestones=(1,),
        val_size=16,
        log_every=1,
        eval_every=2,
        checkpoint_every=1,
    )
    run = tmp_path / "demo"
    train(config, run, data=data, log=lambda line: None)
    with pytest.raises(Exception, match="not a previous demo run"):  # a run, but not of the demo recipe
        prepare_demo_out(run)
    (run / "config.json").write_text(json.dumps(load_recipe("demo").to_dict(), default=str))
    prepare_demo_out(run)
    assert not run.exists()


def test_train_refuses_foreign_files_and_unfinished_runs_without_resume(tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text('{"editor": "vim"}')
    (project / "metrics.jsonl").write_text('{"my": 1}\n')
    # --iterations 1: before the fix these trained (and overwrote config.json, deleted metrics.jsonl).
    quick = ["--data", "synthetic:64", "--iterations", "1", "--cache-dir", str(tmp_path / "cache")]
    fails_cleanly(capsys, ["train", "--out", str(project), *quick], "not from a resnetlab run", tmp_path)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "last.pt", {"iteration": 5})
    (run / "config.json").write_text(json.dumps(load_recipe("cifar10-resnet20").to_dict()))
    fails_cleanly(capsys, ["train", "--out", str(run), *quick], "pass --resume", tmp_path)


def test_export_never_overwrites_without_the_flag(tmp_path, capsys, ckpt):
    """Data loss before the fix: an existing --out file was overwritten without a word."""
    target = tmp_path / "model.ts"
    target.write_bytes(b"the user's own file")
    fails_cleanly(
        capsys, ["export", str(ckpt), "--format", "torchscript", "--out", str(target)], "--overwrite", tmp_path
    )
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    fails_cleanly(capsys, ["export", str(ckpt), "--format", "onnx", "--out", str(folder)], "is a folder", tmp_path)
    capsys.readouterr()
    assert main(["export", str(ckpt), "--format", "torchscript", "--out", str(target), "--overwrite"]) == 0
    assert target.read_bytes() != b"the user's own file" and torch.jit.load(str(target)) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.onnx", "model.ts"]  # no temporary left


def test_failed_verification_keeps_the_existing_file(tmp_path, capsys, ckpt, monkeypatch):
    """Data loss before the fix: a failed check deleted --out, which may be the user's file."""
    import resnetlab.inference.verification as verification

    real_trace = verification.export_torchscript

    def export_wrong(loaded, path, **kw):  # the same net with one bias perturbed
        with torch.no_grad():
            loaded.model.fc.bias[0] += 5.0
        try:
            return real_trace(loaded, path, **kw)
        finally:
            with torch.no_grad():
                loaded.model.fc.bias[0] -= 5.0

    monkeypatch.setattr(verification, "export_torchscript", export_wrong)
    target = tmp_path / "model.ts"
    target.write_bytes(b"the user's own file")
    line = fails_cleanly(
        capsys,
        ["export", str(ckpt), "--format", "torchscript", "--out", str(target), "--overwrite"],
        "disagrees",
        tmp_path,
    )
    assert "FAILED" in line and target.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ts"]


def test_weights_export_and_import_never_overwrite_without_the_flag(tmp_path, capsys, ckpt):
    """Data loss before the fix: ``weights export --out`` overwrote an existing file."""
    target = tmp_path / "weights.pt"
    target.write_bytes(b"the user's own weights")
    fails_cleanly(capsys, ["weights", "export", str(ckpt), "--out", str(target)], "--overwrite", tmp_path)
    assert main(["weights", "export", str(ckpt), "--out", str(target), "--overwrite"]) == 0
    assert set(torch.load(target, weights_only=True)) == set(build_model("cifar_resnet", depth=8).state_dict())
    imagenet = tmp_path / "r18.pt"
    torch.save(build_model("resnet18").state_dict(), imagenet)
    mine = tmp_path / "converted.pt"
    mine.write_bytes(b"keep me")
    fails_cleanly(
        capsys, ["weights", "import", str(imagenet), "--model", "resnet18", "--out", str(mine)], "--overwrite", tmp_path
    )
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name]


def test_detect_predict_never_overwrites_inputs_or_outputs(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (48, 48), (200, 30, 30)).save(photos / "cat.png")
    fails_cleanly(
        capsys,
        ["detect", "predict", str(tmp_path / "no-run"), str(photos / "cat.png"), "--out", str(photos)],
        "is an input image",
        tmp_path,
    )
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "cat.json").write_text("mine")
    fails_cleanly(
        capsys,
        ["detect", "predict", str(tmp_path / "no-run"), str(photos / "cat.png"), "--out", str(tmp_path / "out")],
        "--overwrite",
        tmp_path,
    )
    other = tmp_path / "other"
    other.mkdir()
    Image.new("RGB", (48, 48)).save(other / "cat.png")
    fails_cleanly(
        capsys,
        [
            "detect",
            "predict",
            str(tmp_path / "no-run"),
            str(photos / "cat.png"),
            str(other / "cat.png"),
            "--out",
            str(tmp_path / "new"),
        ],
        "both write",
        tmp_path,
    )


def test_detect_train_refuses_a_folder_that_is_not_its_run(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.jsonl").write_text("my numbers\n")  # train_detector appends to this file
    fails_cleanly(capsys, ["detect", "train", "--out", str(mine), "--iterations", "1"], "not a detection run", tmp_path)


def test_detect_train_replaces_its_own_run_only_when_asked(tmp_path):
    from resnetlab.detection.config import load_recipe as detection_recipe
    from resnetlab.detection.run_folder import prepare_train_out

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(detection_recipe("synthetic-resnet18").to_dict()))
    (run / "metrics.jsonl").write_text("{}\n")
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    with pytest.raises(Exception, match="--overwrite"):
        prepare_train_out(run, overwrite=False)
    assert (run / "metrics.jsonl").exists()
    prepare_train_out(run, overwrite=True)
    assert not run.exists()


def _make_read_only(folder: Path):
    """Make ``folder`` unwritable even for root where possible (chattr +i on ext4 etc., else the
    mode bits); returns the undo function, or None where neither takes effect."""
    import shutil
    import subprocess

    attempts = []
    if shutil.which("chattr"):
        attempts.append((["chattr", "+i", str(folder)], ["chattr", "-i", str(folder)]))
    for make, undo in attempts:
        if subprocess.run(make, capture_output=True).returncode == 0:
            return lambda: subprocess.run(undo, capture_output=True)
    folder.chmod(0o555)
    return lambda: folder.chmod(0o755)


def test_read_only_output_folder(tmp_path, capsys, ckpt):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "keep.txt").write_text("x")
    undo = _make_read_only(locked)
    try:
        try:
            (locked / ".probe").write_text("")  # root ignores mode bits; chattr may be unavailable
        except PermissionError:
            pass
        else:
            (locked / ".probe").unlink()
            pytest.skip("cannot make a folder read-only for this user (root without chattr +i)")
        for argv in (
            ["export", str(ckpt), "--format", "torchscript", "--out", str(locked / "m.ts")],
            ["weights", "export", str(ckpt), "--out", str(locked / "w.pt")],
        ):
            fails_cleanly(capsys, argv, "Permission denied", tmp_path)
    finally:
        undo()
