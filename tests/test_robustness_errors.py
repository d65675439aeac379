"""The robustness suite, part 3: bad recipes, keys, values and devices are one line each, usage
errors exit 2, a missing optional package is named in one line, a bug keeps its traceback
(``--debug`` shows every one), and stale temporaries are cleaned up."""

from __future__ import annotations

import os

import pytest
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

# --------------------------------------------------------------------------- recipes, keys and values


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--recipe", "nope"], "unknown recipe"),
        (["train", "--set", "lrr=1"], "unknown key"),
        (["train", "--set", "warmup_lr=true"], "warmup_lr"),  # bool is an int: was accepted as 1.0
        (["train", "--set", "batch_size=abc"], "batch_size"),
        (["train", "--set", "lr=-1"], "lr"),
        (["train", "--set", "milestones=[300,200]"], "milestones"),
        (["train", "--set", 'device="tpu"'], "device"),
        (["train", "--device", "tpu"], "device"),  # as eval/predict: a bad device is one line, exit 1
        (["summary", "resnet20", "--input-size", "-1"], "--input-size"),  # was a traceback
        (["summary", "resnet20", "--input-size", "0"], "--input-size"),  # was 32x32 without a word
        (["summary", "vgg16", "--input-size", "16"], "between 32 and"),
        (["summary", "resnet21"], "unknown model"),
        (["summary", "resnet20", "--set", "depth=abc"], "depth"),
        (["summary", "resnet50", "--set", "colour=red"], "unknown option"),
        (["detect", "train", "--recipe", "nope"], "nope"),
        (["eval", "missing.pt", "--batch-size", "0"], "--batch-size"),
        (["reproduce", "table6", "--budget", "0", "--out", "res"], "budget"),
        (["reproduce", "table6", "--seeds", "0", "--out", "res"], "seeds"),
        (["download", "cifar10", "--timeout", "0", "--root", "d"], "timeout"),
        (["plot", "no-such-run", "--out", "c.png"], "no-such-run"),
    ],
)
def test_bad_values_are_one_line(tmp_path, capsys, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)  # default output folders (runs/...) land here if a case ever trains
    if argv[0] == "train":  # and such a run is short (warmup_lr=true trained before the fix)
        argv = [*argv, "--iterations", "1", "--data", "synthetic:64", "--cache-dir", str(tmp_path / "cache")]
    fails_cleanly(capsys, argv, fragment, tmp_path)


def test_invalid_recipe_and_class_files(tmp_path, capsys, ckpt):
    (tmp_path / "bad.toml").write_text("lr = [unclosed\n")
    fails_cleanly(capsys, ["train", "--recipe", str(tmp_path / "bad.toml")], "not valid TOML", tmp_path)
    (tmp_path / "binary.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    fails_cleanly(capsys, ["train", "--recipe", str(tmp_path / "binary.toml")], "binary.toml", tmp_path)
    fails_cleanly(
        capsys,
        [
            "weights",
            "import",
            str(ckpt),
            "--model",
            "resnet18",
            "--classes",
            str(tmp_path / "binary.toml"),
            "--out",
            str(tmp_path / "w.pt"),
        ],
        "binary.toml",
        tmp_path,
    )


def test_devices_this_machine_lacks(tmp_path, capsys, ckpt):
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    fails_cleanly(capsys, ["predict", str(ckpt), str(image), "--device", "gpu0"], "not a torch device", tmp_path)
    # cuda:99 is absent on any machine: "no CUDA device" here, "has N CUDA device(s)" on a GPU host.
    fails_cleanly(capsys, ["predict", str(ckpt), str(image), "--device", "cuda:99"], "--device cuda:99", tmp_path)
    fails_cleanly(
        capsys, ["eval", str(ckpt), "--data", "synthetic:16", "--device", "cuda:99"], "--device cuda:99", tmp_path
    )
    fails_cleanly(  # before anything is exported: no file, not even a temporary one
        capsys,
        ["export", str(ckpt), "--format", "torchscript", "--out", str(tmp_path / "m.ts"), "--device", "cuda:99"],
        "--device cuda:99",
        tmp_path,
    )
    assert not (tmp_path / "m.ts").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["summary", "resnet20", "--input-size", "big"],
        ["reproduce", "readme", "results"],  # the README to rewrite must be named: no ./README.md default
        ["export", "model.pt", "--out", "m.onnx"],  # --format is required
        ["demo", "--iterations", "0"],
        ["demo", "--iterations", "ten"],
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, argv):
    fails_cleanly(capsys, argv, "error:", tmp_path, code=2)


# --------------------------------------------------------------------------- errors and bugs


def test_missing_export_extra_names_it(tmp_path, capsys, ckpt, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the [export] extra were absent
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    line = fails_cleanly(
        capsys,
        ["export", str(ckpt), "--format", "onnx", "--exporter", "torchscript", "--out", str(tmp_path / "m.onnx")],
        "resnetlab[export]",
        tmp_path,
    )
    assert "onnxruntime" in line and not (tmp_path / "m.onnx").exists()


def test_missing_extra_deep_inside_a_library_names_it(tmp_path, capsys, monkeypatch):
    import resnetlab.models.complexity as complexity

    def exporter_like(*args, **kwargs):  # torch.onnx wraps the ImportError in its own error
        try:
            raise ModuleNotFoundError("No module named 'onnx'", name="onnx")
        except ImportError as error:
            raise RuntimeError("Module onnx is not installed!") from error

    monkeypatch.setattr(complexity, "summary_row", exporter_like)
    fails_cleanly(capsys, ["summary", "resnet20"], "pip install 'resnetlab[export]'", tmp_path)
    monkeypatch.setattr(complexity, "summary_row", lambda *a, **k: __import__("no_such_module_xyz"))
    with pytest.raises(ModuleNotFoundError):  # not an optional extra: a broken install keeps its traceback
        main(["summary", "resnet20"])


def test_bugs_keep_their_traceback_and_debug_shows_every_one(tmp_path, capsys, monkeypatch):
    import resnetlab.models.complexity as complexity

    def buggy(*args, **kwargs):
        raise KeyError("fc.weight")

    monkeypatch.setattr(complexity, "summary_row", buggy)
    with pytest.raises(KeyError):  # a bug is not reported as a user error
        main(["summary", "resnet20"])
    capsys.readouterr()
    for argv in (
        ["--debug", "summary", "resnet20", "--input-size", "0"],
        ["summary", "resnet20", "--input-size", "0", "--debug"],
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and err.strip().splitlines()[-1].startswith("resnetlab summary: error: --input-size")


def test_stale_checkpoint_temporaries_are_removed(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    import re
    import subprocess
    import sys

    from resnetlab.checkpoints.atomic import remove_stale_temporaries

    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    dead = child.pid  # a pid that no longer runs (reaped above)
    stale = [folder / f".last.pt.{dead}.tmp", folder / f".best.pt.{dead}.tmp"]
    live = folder / f".last.pt.{os.getppid()}.tmp"  # a live writer's file stays
    foreign = folder / f".notes.{dead}.tmp"  # not our naming: never touched
    for path in (*stale, live, foreign):
        path.write_bytes(b"partial")
    save_checkpoint(folder / "last.pt", {"iteration": 1})
    assert not any(p.exists() for p in stale) and live.exists() and foreign.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(["last.pt", live.name, foreign.name])
    assert remove_stale_temporaries(folder, re.compile(r"\.notes\.(?P<pid>\d+)\.tmp")) == [foreign]


def test_reproduce_readme_writes_only_the_named_file(tmp_path, capsys, monkeypatch):
    """Before the fix ``reproduce readme DIR`` rewrote ./README.md of the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# my project\n<!-- reproduce:begin -->\nmine\n<!-- reproduce:end -->\n")
    fails_cleanly(capsys, ["reproduce", "readme", str(tmp_path / "results")], "--readme", tmp_path, code=2)
    assert "mine" in (tmp_path / "README.md").read_text()


def test_in_process_cases_stay_quiet_on_stdout_for_errors(tmp_path, capsys):
    # One more guard on the contract: an error prints nothing on stdout.
    capsys.readouterr()
    assert main(["summary", "resnet20", "--input-size", "-5"]) == 1
    assert capsys.readouterr().out == ""
