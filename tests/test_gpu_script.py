"""The CPU side of benchmarks/gpu.sh + gpu.py: arguments, the no-GPU failure, the result files.

Every number below is fake test input for the writer, never a measurement.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import gpu  # noqa: E402

FAKE = "TEST INPUT: fake numbers, not a measurement"


@pytest.fixture
def cifar_dir(tmp_path):
    for sub in ("train", "test"):
        (tmp_path / "cifar" / sub / "cat").mkdir(parents=True)
    return tmp_path / "cifar"


def test_arguments(cifar_dir, tmp_path):
    args = gpu.parse_args([str(cifar_dir)])
    assert args.out == gpu.ROOT / "runs" / "gpu-bench" and args.compile == "auto" and args.full_iterations == 64_000
    args = gpu.parse_args([str(cifar_dir), str(tmp_path / "out"), "--compile", "no"])
    assert args.out == tmp_path / "out" and args.compile == "no"


def test_bad_arguments(cifar_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu.parse_args([str(tmp_path / "nowhere")])
    assert exit_info.value.code == gpu.EXIT_USAGE
    assert "has no train/ folder" in capsys.readouterr().err
    (tmp_path / "used" / gpu.FULL_RUN).mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:  # never overwrite an earlier full run
        gpu.parse_args([str(cifar_dir), str(tmp_path / "used")])
    assert exit_info.value.code == gpu.EXIT_USAGE and "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu.parse_args([])


def test_no_gpu_fails_fast(cifar_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main([str(cifar_dir), str(tmp_path / "out")]) == gpu.EXIT_NO_GPU
    err = capsys.readouterr().err
    assert err.startswith("error: no CUDA GPU is available") and "TORCH_PIN" in err
    assert not (tmp_path / "out").exists()  # nothing written before the check


def _sh(*args, cwd=None):
    return subprocess.run(["bash", str(BENCH / "gpu.sh"), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_shell_arguments(tmp_path):
    out = _sh()
    assert out.returncode == 2 and "usage: benchmarks/gpu.sh" in out.stderr
    assert _sh("--help").returncode == 0
    out = _sh(str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "is not a directory" in out.stderr
    assert _sh("a", "b", "c").returncode == 2


@pytest.mark.skipif(not (BENCH.parent / ".venv" / "bin" / "python").exists(), reason="needs the project's .venv")
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_shell_without_gpu(cifar_dir, tmp_path):
    out = _sh(str(cifar_dir), str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert "error: no CUDA GPU is available" in out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidia0"), reason="this machine has an NVIDIA GPU"
)
def test_shell_checks_gpu_before_installing(cifar_dir, tmp_path):
    # A checkout without .venv on a machine without a GPU: no minutes of pip, one clear error.
    (tmp_path / "repo" / "benchmarks").mkdir(parents=True)
    shutil.copy(BENCH / "gpu.sh", tmp_path / "repo" / "benchmarks" / "gpu.sh")
    out = subprocess.run(
        ["bash", str(tmp_path / "repo" / "benchmarks" / "gpu.sh"), str(cifar_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3 and "no NVIDIA GPU found" in out.stderr
    assert not (tmp_path / "repo" / ".venv").exists()


def fake_results(**extra) -> dict:
    return {
        "label": FAKE,
        "device": "FAKE GPU",
        "torch": "0.0",
        "cuda": "0.0",
        "started": "2000-01-01T00:00:00+00:00",
        "command": "benchmarks/gpu.sh /fake",
        "phases_done": ["resnet20 eager vs compile"],
        "wall_seconds": 12.0,
        "throughput": [
            {
                "model": "resnet20",
                "input": "32x32",
                "batch": 128,
                "mode": "bf16, channels_last, eager",
                "images_per_second": 11111.0,
                "warmup_seconds": 2.5,
            },
            {
                "model": "resnet20",
                "input": "32x32",
                "batch": 128,
                "mode": "bf16, channels_last, compile",
                "images_per_second": None,
                "warmup_seconds": None,
            },
        ],
        "errors": [],
        **extra,
    }


def test_result_files_partial(tmp_path):
    results = fake_results()
    json_path, md_path = gpu.write_results(results, tmp_path / "out")
    assert json.loads(json_path.read_text()) == results
    md = md_path.read_text()
    assert md.startswith("# GPU benchmark results") and f"**{FAKE}**" in md
    assert "| resnet20 | 32x32 | 128 | bf16, channels_last, eager | 11,111 | 2.5 |" in md
    assert "| bf16, channels_last, compile | failed | - |" in md
    assert "full schedule" not in md  # not run yet: no empty section


def test_result_files_complete(tmp_path):
    choice = {"compile": True, "eager_seconds": 700.0, "compile_seconds": 400.0, "reason": "faster overall"}
    full = {
        "iterations": 64000,
        "compile": True,
        "status": "completed",
        "test_top1_error": 8.75,
        "steady_images_per_second": 22222.0,
        "loop_seconds": 390.0,
        "process_seconds": 420.0,
        "exit_code": 0,
    }
    md = gpu.render_markdown(fake_results(compile_choice=choice, full_run=full, errors=["resnet50: fake error"]))
    assert "eager 700 s, compile 400 s" in md and "**compile**" in md
    assert "| 64000 | True | completed | 8.75 | 22,222 | 390 | 420 |" in md
    assert "- error: resnet50: fake error" in md
    full = {"iterations": 64000, "compile": False, "status": "exit 1", "exit_code": 1}  # crashed: no summary
    assert "| 64000 | False | exit 1 | - | - | - | - |" in gpu.render_markdown(fake_results(full_run=full))


def test_choose_compile():
    eager = {"images_per_second": 128.0, "warmup_seconds": 1.0}  # fake: 1 s per iteration
    fast = {"images_per_second": 256.0, "warmup_seconds": 31.0}  # fake: 30 s of compilation
    choice = gpu.choose_compile(eager, fast, iterations=100)
    assert choice["compile"] and choice["eager_seconds"] == 100 and choice["compile_seconds"] == 80
    assert not gpu.choose_compile(eager, fast, iterations=50)["compile"]  # 55 s vs 50 s
    failed = gpu.choose_compile(eager, {"images_per_second": None, "warmup_seconds": None}, iterations=10)
    assert not failed["compile"] and math.isnan(failed["compile_seconds"])
