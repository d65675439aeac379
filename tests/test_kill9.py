"""kill -9 of a training run at several points, one of them in the middle of writing a checkpoint:
the latest checkpoint always loads, and resuming ends bitwise identical to an uninterrupted run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnetlab.checkpoints.checkpoint import load_checkpoint
from resnetlab.cli import main

ARGS = [
    "train",
    "--recipe",
    "cifar10-resnet20",
    "--data",
    "synthetic:512",
    "--set",
    "iterations=12",
    "--set",
    "milestones=[6]",
    "--set",
    "checkpoint_every=2",
    "--set",
    "eval_every=4",
    "--set",
    "log_every=2",
    "--set",
    "val_size=64",
    "--set",
    "eval_batch_size=256",
    "--set",
    "model_options.depth=8",
    "--threads",
    "1",
]

# The training process kills itself (SIGKILL: no handler runs, as with kill -9 or a power cut) at
# the N-th write of checkpoints/last.pt: just before it, or half-way through writing its bytes.
PATCH = r"""
import io, os, signal, sys
import torch
kill_at, how = int(sys.argv[1]), sys.argv[2]
real_save, calls = torch.save, [0]

def save(obj, handle, *args, **kwargs):
    if ".last.pt." in str(getattr(handle, "name", "")):
        calls[0] += 1
        if calls[0] == kill_at:
            if how == "during":
                buffer = io.BytesIO()
                real_save(obj, buffer)
                handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, handle, *args, **kwargs)

torch.save = save
"""
CHILD = PATCH + "from resnetlab.cli import main\nsys.exit(main(sys.argv[3:]))\n"
# A reproduce suite of one tiny run (depth 8, 12 iterations of 32 images), called as the CLI does.
SUITE = {
    "iterations": 12,
    "milestones": [6],
    "batch_size": 32,
    "eval_every": 4,
    "log_every": 2,
    "checkpoint_every": 2,
    "eval_batch_size": 256,
    "val_size": 64,
    "model_options": {"depth": 8},
}
CHILD_SUITE = (
    PATCH
    + f"""
from pathlib import Path
from resnetlab.analysis.suites import SuiteOptions, reproduce
options = SuiteOptions("degradation", Path(sys.argv[3]), data="synthetic:512", budget=0.0005,
                       models=("plain20",), overrides={SUITE!r})
result = reproduce(options, log=print)
print(result.status)
"""
)


def final_weights(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("kill9") / "reference"
    assert main([*ARGS, "--out", str(run_dir)]) == 0
    return final_weights(run_dir)


@pytest.mark.parametrize("kill_at, how", [(1, "before"), (3, "during"), (5, "before"), (6, "during")])
def test_kill_9_then_resume_is_bitwise_identical(tmp_path, reference, kill_at, how):
    run_dir = tmp_path / "run"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(kill_at), how, *ARGS, "--out", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -9, child.stdout + child.stderr
    last = run_dir / "checkpoints" / "last.pt"
    if kill_at == 1:
        assert not last.exists()  # killed before its first checkpoint: the same command starts again
        resume = []
    else:
        # The checkpoint on disk is always a whole one: the one before the kill.
        assert load_checkpoint(last)["iteration"] == 2 * (kill_at - 1)
        if how == "during":
            assert list(last.parent.glob(".last.pt.*.tmp"))  # the torn temporary, never under last.pt
        resume = ["--resume"]
    assert main([*ARGS, "--out", str(run_dir), *resume]) == 0
    state = final_weights(run_dir)
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) for k in reference)
    assert not list(last.parent.glob(".last.pt.*.tmp"))  # stale temporaries are cleaned up


def test_kill_9_of_a_reproduce_suite_then_rerun_is_bitwise_identical(tmp_path):
    """A reproduce suite killed half-way through a checkpoint write: the same call finishes it,
    with the weights and the summary of a suite that was never interrupted."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def suite(out: Path, kill_at: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", CHILD_SUITE, str(kill_at), "during", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )

    reference = suite(tmp_path / "reference", 0)  # 0: never killed
    assert reference.returncode == 0, reference.stdout + reference.stderr
    out = tmp_path / "killed"
    child = suite(out, 3)
    assert child.returncode == -9, child.stdout + child.stderr
    run = out / "runs" / "plain20-s0"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["iteration"] == 4 and not (run / "summary.json").exists()
    again = suite(out, 0)
    assert again.returncode == 0 and "resuming" in again.stdout, again.stdout + again.stderr
    mine = final_weights(run)
    theirs = final_weights(tmp_path / "reference" / "runs" / "plain20-s0")
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    summary = json.loads((run / "summary.json").read_text())
    assert summary == {
        **json.loads((tmp_path / "reference" / "runs" / "plain20-s0" / "summary.json").read_text()),
        "wall_seconds": summary["wall_seconds"],
        "images_per_second": summary["images_per_second"],
    }
