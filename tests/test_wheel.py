"""The wheel built from this checkout installs into a fresh virtual environment and runs there.

What an editable install hides (a data file missing from package-data, a module outside the
package, an entry point pointing nowhere) shows up only once the package is a wheel in another
environment. The new environment borrows this one's third-party packages (torch is a 200 MB local
wheel) through a .pth line; resnetlab itself comes only from the wheel: the editable finder of this
checkout is a .pth *file* of this environment, which a .pth line pointing here does not run.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(argv: list, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_environment_and_runs_the_demo_there(tmp_path):
    pytest.importorskip("setuptools")
    # Build from a copy of what the wheel is made of: building in the checkout would leave (and
    # reuse) a build/ folder there, whose stale modules a later wheel would ship.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, source], tmp_path)
    wheels = list(dist.glob("resnetlab-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip()
    )
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheels[0]],
        tmp_path,
    )

    where = run([python, "-c", "import resnetlab; print(resnetlab.__file__)"], tmp_path).stdout.strip()
    assert where.startswith(str(site)), where  # the wheel's copy, not this checkout
    cli = env_dir / "bin" / "resnetlab"
    assert run([cli, "--version"], tmp_path).stdout.startswith("resnetlab ")
    recipes = run([cli, "recipes"], tmp_path).stdout
    assert "cifar10-resnet110" in recipes and "demo" in recipes  # package data made it into the wheel
    # `resnetlab demo` itself, the first command of a new user, shortened to 20 iterations (its
    # milestones, evaluations and checkpoints scaled with them; the final test evaluation kept).
    printed = run([cli, "demo", "--iterations", "20", "--out", "demo-run"], tmp_path, timeout=600).stdout
    summary = json.loads((tmp_path / "demo-run" / "summary.json").read_text())
    assert summary["iterations"] == 20 and summary["model"] == "resnet20" and summary["test_images"] > 0
    assert (tmp_path / "demo-run" / "checkpoints" / "last.pt").is_file()
    assert f"ResNet-20 test error on the synthetic set: {summary['test_top1_error']:.2f}% (chance: 90%)" in printed
    # The summary's test error is the final model's: the installed eval reproduces it from last.pt (a
    # run directory alone evaluates best.pt, the lowest validation error, which need not be the last).
    final = "demo-run/checkpoints/last.pt"
    result = json.loads(run([cli, "eval", final, "--data", "synthetic", "--split", "test", "--json"], tmp_path).stdout)
    assert result["top1_error"] == summary["test_top1_error"]
    # The shipped weights are package data too: present in the wheel, sha256 as recorded.
    shipped = run(
        [
            python,
            "-c",
            "from resnetlab.models import get_weights, list_weights\n"
            "for name in list_weights(): get_weights(name).verify(); print(name)",
        ],
        tmp_path,
    ).stdout.split()
    assert "resnet20.cifar10" in shipped
