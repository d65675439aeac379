"""The CPU side of benchmarks/cli_startup.py: which commands it times and how it reports them.
No timing here: the timer is a fake, and every number below is test input, not a measurement."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import cli_startup  # noqa: E402


def test_every_command_and_sub_action_is_found_once() -> None:
    words = cli_startup.command_words()
    for expected in [("train",), ("eval",), ("predict",), ("export",), ("demo",), ("recipes",), ("weights",)]:
        assert expected in words
    assert ("weights", "import") in words and ("weights", "export") in words and ("detect", "train") in words
    assert len(words) == len(set(words))
    runs = cli_startup.invocations(words)
    assert runs[:2] == [("--help",), ("--version",)] and ("weights", "import", "--help") in runs


def test_medians_verdicts_table_and_json(tmp_path, monkeypatch, capsys) -> None:
    fake = {"--help": [0.5, 0.1, 0.2], "--version": [0.4, 0.35, 0.5]}  # seconds per run, in order
    calls = []

    def timer(argv):
        calls.append(argv)
        return fake[argv[-1]].pop(0) if len(calls) > 2 else 0.0  # the first pass is the untimed warm-up

    results = cli_startup.measure([("--help",), ("--version",)], 3, 0.3, ["resnetlab"], timer=timer)
    assert [r["median_seconds"] for r in results] == [0.2, 0.4] and [r["pass"] for r in results] == [True, False]
    assert calls[2:4] == [["resnetlab", "--help"], ["resnetlab", "--version"]]  # round-robin, not one after another
    text = cli_startup.table(results, 0.3)
    assert "resnetlab --help" in text and "PASS" in text and "FAIL" in text and "1/2 within 0.30 s" in text
    with pytest.raises(ValueError, match="--repeats"):
        cli_startup.measure([("--help",)], 0, 0.3, ["resnetlab"], timer=timer)

    monkeypatch.setattr(cli_startup, "command_words", lambda: [("demo",)])
    monkeypatch.setattr(cli_startup, "time_once", lambda argv: 0.1)
    monkeypatch.setattr(
        cli_startup,
        "measure",
        lambda runs, repeats, target, prefix: [
            {
                "command": " ".join(("resnetlab",) + r),
                "median_seconds": 0.1,
                "min_seconds": 0.1,
                "max_seconds": 0.1,
                "runs_seconds": [0.1],
                "pass": True,
            }
            for r in runs
        ],
    )
    out = tmp_path / "startup.json"
    assert cli_startup.main(["--repeats", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "host: " in printed and "load average before: " in printed and "load average after: " in printed
    report = json.loads(out.read_text())
    assert [r["command"] for r in report["results"]] == [
        "resnetlab --help",
        "resnetlab --version",
        "resnetlab demo --help",
    ]
    assert report["all_pass"] and report["host"]["cpus"] and report["target_seconds"] == 0.3
