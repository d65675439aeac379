"""The CPU side of benchmarks/peak_end_to_end.py: the `resnetlab train` commands it launches, and
the steady-state rate it reads back from a real run's metrics (start-up window excluded)."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import peak_end_to_end as e2e  # noqa: E402


def test_the_first_window_start_up_and_compile_is_left_out() -> None:
    metrics = [
        {"iteration": 10, "images_per_second": 20.0, "elapsed_seconds": 60.0},  # 58 s of compile
        {"iteration": 20, "images_per_second": 640.0, "elapsed_seconds": 62.0},
        {"iteration": 30, "images_per_second": 640.0, "elapsed_seconds": 64.0},
        {"iteration": 30, "test_error": 50.0},  # an evaluation record: not a window
    ]
    rate = e2e.benchlib.steady_rate(metrics, batch=128)
    assert rate["iterations"] == 20
    assert rate["images_per_second"] == pytest.approx(20 * 128 / 4.0)
    assert rate["startup_seconds"] == 60.0
    assert e2e.benchlib.steady_rate(metrics[:1], batch=128)["images_per_second"] is None


def test_data_parallel_candidates_go_through_torchrun_with_one_thread_each(tmp_path) -> None:
    common = dict(compiled=True, precision="bf16", window=10, windows=4, data="synthetic")
    single = e2e.train_command("resnet56", tmp_path, processes=1, threads=2, **common)
    parallel = e2e.train_command("resnet56", tmp_path, processes=2, threads=1, **common)
    assert single[1:4] == ["-m", "resnetlab", "train"]
    assert parallel[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert parallel[5:8] == ["-m", "resnetlab", "train"]
    for command, threads in ((single, "2"), (parallel, "1")):
        assert command[command.index("--threads") + 1] == threads
        assert command[command.index("--iterations") + 1] == "40"
        sets = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
        assert {"log_every=10", "compile=true", 'precision="bf16"', "eval_every=40"} <= set(sets)


def test_a_real_tiny_run_is_measured_from_its_own_metrics(tmp_path) -> None:
    out = tmp_path / "run"
    command = e2e.train_command(
        "resnet20",
        out,
        processes=1,
        threads=1,
        compiled=False,
        precision="fp32",
        window=2,
        windows=3,
        data="synthetic:512",
    )
    result = e2e.measure(command, out, timeout=300)
    assert "error" not in result, result
    assert result["iterations"] == 4  # windows 2 and 3; window 1 holds the start-up
    assert result["images_per_second"] > 0


def test_candidates_per_launch_and_thread_count() -> None:
    assert e2e._shapes(("one", "torchrun", "independent"), 2) == [
        ("one", 1, 2),
        ("torchrun", 2, 1),
        ("independent", 2, 1),
    ]
    assert e2e._shapes(("one", "independent"), 1) == [("one", 1, 1)]  # one core: nothing to share
    assert e2e.launch_label("independent", 2, 1) == "2 runs x 1-thread"


def test_independent_runs_are_measured_together_and_summed(tmp_path) -> None:
    """The campaign's launch shape: two separate 1-thread runs at once, each read from its own
    metrics; the row is their sum. A failing run fails the measurement, naming its exit."""
    outs = [tmp_path / "a", tmp_path / "b"]
    common = dict(processes=1, threads=1, compiled=False, precision="fp32", window=2, windows=3, data="synthetic:512")
    commands = [e2e.train_command("resnet20", out, **common) for out in outs]
    result = e2e.measure_together(commands, outs, timeout=300)
    assert "error" not in result, result
    assert [r["iterations"] for r in result["runs"]] == [4, 4]
    assert result["images_per_second"] == pytest.approx(sum(r["images_per_second"] for r in result["runs"]))
    fresh = [tmp_path / "c", tmp_path / "d"]
    good, broken = (e2e.train_command("resnet20", out, **common) for out in fresh)
    failed = e2e.measure_together([good, [*broken, "--set", "no_such_key=1"]], fresh, timeout=300)
    assert failed["images_per_second"] is None
    assert failed["error"].startswith("exit 1: ") and "no_such_key" in failed["error"]
