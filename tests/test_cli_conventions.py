"""Conventions of the command line: fast help, one --device with one default, --quiet/--verbose,
every recipe listed, and the library logging instead of printing (issue 15, "A CLI that is fast
and consistent"). All fast: parsers are inspected, nothing trains."""

from __future__ import annotations

import argparse
import ast
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from resnetlab.cli import DEFAULT_DEVICE, build_parser, configure_logging, device_given, main

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "resnetlab"
HEAVY = ("torch", "numpy", "PIL", "matplotlib", "safetensors", "tensorboard")

# Every command that computes, as the words that select it.
COMPUTING = [
    ("train",),
    ("eval",),
    ("predict",),
    ("export",),
    ("detect", "train"),
    ("detect", "eval"),
    ("detect", "predict"),
    ("reproduce", "degradation"),
    ("reproduce", "table6"),
    ("reproduce", "shortcuts"),
    ("reproduce", "responses"),
    ("reproduce", "campaign"),
]


def _subparser(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> argparse.ArgumentParser:
    for word in words:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


def _all_subparsers(parser: argparse.ArgumentParser, words=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield words + (name,), sub
                yield from _all_subparsers(sub, words + (name,))


def test_building_the_parser_imports_no_heavy_library() -> None:
    code = (
        "import sys; from resnetlab.cli import build_parser; build_parser(); "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


def test_help_and_version_import_no_heavy_library() -> None:
    code = (
        "import sys, contextlib, io\nfrom resnetlab.cli import main\n"
        "for argv in (['--help'], ['--version'], ['detect', 'train', '--help'], ['reproduce', 'campaign', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try: main(argv)\n"
        "        except SystemExit: pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


@pytest.mark.parametrize("words", COMPUTING, ids=" ".join)
def test_every_computing_command_has_device_defaulting_to_auto(words) -> None:
    sub = _subparser(build_parser(), words)
    device = next(a for a in sub._actions if "--device" in a.option_strings)
    assert device.default == "auto" and device.default is DEFAULT_DEVICE
    assert "auto" in device.help and "CUDA if present, else CPU" in device.help


def test_device_default_is_told_apart_from_a_typed_auto() -> None:
    parser = build_parser()
    assert not device_given(parser.parse_args(["eval", "ckpt"]))
    typed = parser.parse_args(["eval", "ckpt", "--device", "auto"])
    assert device_given(typed) and typed.device == "auto"
    assert parser.parse_args(["predict", "ckpt", "img", "--device", "cuda:1"]).device == "cuda:1"


def test_train_default_device_keeps_the_recipes_and_a_given_one_replaces_it(tmp_path) -> None:
    from resnetlab.cli.train import resolve_config

    recipe = tmp_path / "cpu-recipe.toml"
    recipe.write_text('model = "resnet20"\ndevice = "cpu"\n')
    parser = build_parser()
    assert resolve_config(parser.parse_args(["train", "--recipe", str(recipe)])).device == "cpu"
    assert resolve_config(parser.parse_args(["train", "--recipe", str(recipe), "--device", "auto"])).device == "auto"
    assert resolve_config(parser.parse_args(["train"])).device == "auto"


def test_check_device_resolves_auto() -> None:
    import torch

    from resnetlab.cli import check_device

    assert check_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert check_device("cpu") == "cpu"


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    """Commands install SIGINT/SIGTERM handlers; not in the test process."""
    monkeypatch.setattr("resnetlab.engine.stop.StopFlag.install", lambda self: None)


def test_campaign_passes_a_device_only_when_not_auto(monkeypatch, tmp_path) -> None:
    import resnetlab.analysis.campaign_runner as runner

    seen = []
    monkeypatch.setattr(runner, "continue_campaign", lambda *a, **k: seen.append(k["device"]) or "finished")
    for extra, expected in (([], None), (["--device", "auto"], None), (["--device", "cpu"], "cpu")):
        assert main(["reproduce", "campaign", "cifar10", "--out", str(tmp_path), *extra]) == 0
        assert seen[-1] == expected


def test_campaign_checks_its_device_once_before_any_run(monkeypatch, tmp_path, capsys) -> None:
    import torch

    import resnetlab.analysis.campaign_runner as runner

    seen = []
    monkeypatch.setattr(runner, "continue_campaign", lambda *a, **k: seen.append(k["device"]) or "finished")
    assert main(["reproduce", "campaign", "cifar10", "--out", str(tmp_path), "--device", "gpu"]) == 1
    assert "--device 'gpu' is not a torch device" in capsys.readouterr().err and seen == []
    if not torch.cuda.is_available():
        assert main(["reproduce", "campaign", "cifar10", "--out", str(tmp_path), "--device", "cuda:1"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.endswith("error: --device cuda:1: no CUDA device is available here; use --device cpu") and seen == []


def test_recipes_lists_classification_and_detection_recipes(capsys) -> None:
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    shipped = sorted(p.stem for p in (SRC / "recipes").glob("*.toml"))
    detection = sorted(p.stem for p in (SRC / "recipes" / "detection").glob("*.toml"))
    assert shipped and detection
    for name in shipped + detection:
        assert f"  {name} " in out
    assert "None" not in out


@pytest.mark.parametrize("flags", [["--quiet"], ["-q"], ["--verbose"], ["-v"]])
def test_quiet_and_verbose_are_accepted_before_and_after_the_command(flags) -> None:
    parser = build_parser()
    for argv in (
        flags + ["recipes"],
        ["recipes"] + flags,
        flags + ["detect", "eval", "ckpt"],
        ["download", "cifar10"] + flags,
    ):
        args = parser.parse_args(argv)
        assert args.quiet == (flags[0] in ("--quiet", "-q")) and args.verbose == (flags[0] in ("--verbose", "-v"))


def test_quiet_and_verbose_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--quiet", "--verbose", "recipes"])


def test_logging_levels_and_one_handler() -> None:
    logger = logging.getLogger("resnetlab")
    saved = logger.level, list(logger.handlers)
    try:
        assert configure_logging(quiet=True).level == logging.WARNING
        assert configure_logging(verbose=True).level == logging.DEBUG
        assert configure_logging().level == logging.INFO
        assert len(logger.handlers) == len(set(map(type, logger.handlers)))  # one stderr handler, however often
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]


def test_quiet_silences_progress_lines_but_not_results(capsys, monkeypatch, tmp_path) -> None:
    import resnetlab.analysis.campaign_runner as runner

    def fake(*args, log, **kwargs):
        log("resnet20: starting")
        return "finished"

    monkeypatch.setattr(runner, "continue_campaign", fake)
    assert main(["reproduce", "campaign", "cifar10", "--out", str(tmp_path)]) == 0
    assert "resnet20: starting" in capsys.readouterr().out
    assert main(["--quiet", "reproduce", "campaign", "cifar10", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "resnet20: starting" not in out and "campaign cifar10: finished" in out


def _print_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]


def test_no_print_outside_the_command_line() -> None:
    """The library logs (the ``resnetlab`` logger) or hands lines to a ``log=`` callable; only
    ``resnetlab/cli/`` prints."""
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if "cli" not in path.relative_to(SRC).parts[:1]
        for line in _print_calls(path)
    ]
    assert offenders == []


def test_cli_modules_import_nothing_heavy_at_top_level() -> None:
    """What the subprocess test checks, named by file: a top-level import of a heavy module (or of
    a library module outside the light ones) in ``resnetlab/cli`` or ``resnetlab/__init__.py``."""
    light = {"resnetlab.evaluation.protocol_names", "resnetlab.export_formats"}
    offenders = []
    for path in [SRC / "__init__.py", *sorted((SRC / "cli").glob("*.py"))]:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    names = [node.module or ""]
                elif node.level == 2 or (node.level == 1 and path.name == "__init__.py" and path.parent == SRC):
                    names = [f"resnetlab.{node.module}" if node.module else "resnetlab"]
                else:
                    continue  # from . import ...: the cli package itself
            else:
                continue
            for name in names:
                if name.split(".")[0] in HEAVY or (name.startswith("resnetlab.") and name not in light):
                    offenders.append(f"{path.name}:{node.lineno} {name}")
    assert offenders == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_also_hides_the_bar_on_a_terminal(quiet, monkeypatch, tmp_path, capsys) -> None:
    """A bar is progress too: on a terminal, ``--quiet`` leaves only the results (train, eval)."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr("resnetlab.engine.stop.StopFlag.install", lambda self: None)
    flags = ["--quiet"] if quiet else []
    run = tmp_path / "run"
    tiny = ["--data", "synthetic:256", "--iterations", "4", "--device", "cpu"]
    tiny += [
        f"--set={kv}" for kv in ("eval_every=4", "log_every=2", "batch_size=16", "val_size=32", "model_options.depth=8")
    ]
    assert main([*flags, "train", "--recipe", "demo", "--out", str(run), *tiny]) == 0
    evaluate = ["eval", str(run), "--data", "synthetic:256", "--split", "test", "--limit", "64", "--device", "cpu"]
    assert main([*flags, *evaluate]) == 0
    bars = terminal.getvalue()
    assert ("it/s" in bars or "s/it" in bars) != quiet  # the training bar
    assert ("img/s" in bars or "s/img" in bars) != quiet  # the evaluation bar
    assert "top-1 error" in capsys.readouterr().out
