"""Thread count and OpenMP wait policy (resnetlab.engine.threads)."""

import os
import subprocess
import sys

import pytest
import torch

from resnetlab.engine import threads


def test_available_cores_follows_affinity(monkeypatch):
    assert 1 <= threads.available_cores() <= (os.cpu_count() or 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert threads.available_cores() == 1


def test_available_cores_without_affinity(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert threads.available_cores() == 7


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("default", {}),
        ("passive", {"OMP_WAIT_POLICY": "PASSIVE"}),
        ("ACTIVE", {"OMP_WAIT_POLICY": "ACTIVE"}),
        ("spin:10000", {"GOMP_SPINCOUNT": "10000"}),
        ("spin:0", {"GOMP_SPINCOUNT": "0"}),
    ],
)
def test_policy_environment(policy, expected):
    assert threads.policy_environment(policy) == expected


@pytest.mark.parametrize("policy", ["lazy", "spin:", "spin:-1", "spin:1e4", ""])
def test_policy_environment_rejects(policy):
    with pytest.raises(ValueError, match="wait policy"):
        threads.policy_environment(policy)


def test_set_wait_policy_before_torch_writes_and_replaces():
    env = {"OMP_WAIT_POLICY": "PASSIVE", "OTHER": "x"}
    assert threads.set_wait_policy("spin:5000", environ=env, modules={})
    # The old PASSIVE is cleared: policies never mix.
    assert env == {"GOMP_SPINCOUNT": "5000", "OTHER": "x"}
    assert threads.set_wait_policy("default", environ=env, modules={})
    assert env == {"OTHER": "x"}


def test_set_wait_policy_after_torch_changes_nothing():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert not threads.set_wait_policy("passive", environ=env, modules={"torch": object()})
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}
    # In this process torch is imported (conftest): the real environment is left alone too.
    before = {k: os.environ.get(k) for k in threads.POLICY_VARIABLES}
    assert not threads.set_wait_policy("passive")
    assert {k: os.environ.get(k) for k in threads.POLICY_VARIABLES} == before
    with pytest.raises(ValueError):  # still validated, so a typo is not silently ignored
        threads.set_wait_policy("pasive", environ=env, modules={"torch": object()})


def test_set_wait_policy_in_a_fresh_process():
    # A fresh interpreter has not imported torch: the policy is written (torch is not imported
    # here, which keeps the test fast; the module itself must not import it either).
    code = (
        "import os, sys; from resnetlab.engine.threads import set_wait_policy; "
        "ok = set_wait_policy('passive'); "
        "print(ok, os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k not in threads.POLICY_VARIABLES}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "PASSIVE", "False"]


def test_policy_environ_for_subprocesses():
    base = {"PATH": "/bin", "GOMP_SPINCOUNT": "1"}
    assert threads.policy_environ("passive", base) == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    assert base == {"PATH": "/bin", "GOMP_SPINCOUNT": "1"}  # the base is not modified


def test_configure_threads():
    try:
        settings = threads.configure_threads(1, "passive")
        assert settings == threads.ThreadSettings(1, "passive", False)  # torch already imported
        assert torch.get_num_threads() == 1
        settings = threads.configure_threads(None)
        assert settings.threads == torch.get_num_threads() == threads.available_cores()
        assert settings.wait_policy is None and not settings.wait_policy_applied
    finally:
        torch.set_num_threads(1)  # the test-wide setting (conftest)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            threads.configure_threads(bad)


def test_policy_reaches_openmp_runtime():
    # The claim that matters: set before `import torch`, the policy is what the OpenMP runtime reads
    # (libgomp prints its settings at initialisation with OMP_DISPLAY_ENV).
    code = (
        "from resnetlab.engine.threads import set_wait_policy; "
        "assert set_wait_policy('spin:12345'); import torch; torch.ones(1)"
    )
    env = {k: v for k, v in os.environ.items() if k not in threads.POLICY_VARIABLES}
    env["OMP_DISPLAY_ENV"] = "VERBOSE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    if "GOMP_SPINCOUNT" not in out.stderr + out.stdout:
        pytest.skip("torch's OpenMP runtime is not libgomp")
    assert "GOMP_SPINCOUNT = '12345'" in out.stderr + out.stdout


STAT = "cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"


def test_busy_cores_from_two_samples_of_proc_stat(monkeypatch):
    samples = iter([STAT.format(user=100, system=0, idle=100), STAT.format(user=250, system=50, idle=200)])
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    busy = threads.busy_cores(seconds=0, read=lambda: next(samples))
    assert busy == pytest.approx(2 * 200 / 300)  # 200 busy of 300 jiffies on 2 cores
    assert threads.cpu_times(STAT.format(user=5, system=5, idle=10)) == (10, 20)
    with pytest.raises(ValueError):
        threads.cpu_times("intr 1 2 3\n")
    assert threads.busy_cores(seconds=0, read=lambda: "no cpu line") is None


def test_busy_at_start_only_where_threads_and_policy_are_ours(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    busy = lambda: 1.0
    assert threads.busy_at_start({}, busy) == 1.0
    assert threads.busy_at_start({}, lambda: 0.2) is None  # a quiet machine
    assert threads.busy_at_start({}, lambda: None) is None  # not Linux
    assert threads.busy_at_start({"OMP_NUM_THREADS": "2"}, busy) is None  # the user chose
    assert threads.busy_at_start({"OMP_WAIT_POLICY": "ACTIVE"}, busy) is None
    assert threads.busy_at_start({"WORLD_SIZE": "2"}, busy) is None  # torchrun
    monkeypatch.setattr(threads, "available_cores", lambda: 1)
    assert threads.busy_at_start({}, busy) is None


def test_contention_warning_says_what_was_done_and_what_to_use():
    message = threads.contention_warning(2, 1.0, passive=True)
    assert "--threads 1" in message and "1.0 of the CPU cores" in message and "PASSIVE" in message
    assert "spin" in threads.contention_warning(2, 1.0, passive=False)
    assert "--threads 6" in threads.contention_warning(8, 2.2, passive=True)


def test_train_on_a_busy_machine_sleeps_its_threads_and_says_so(tmp_path):
    """In a fresh process (the policy must be set before torch loads OpenMP): a busy machine, as
    /proc/stat would report it, makes ``resnetlab train`` choose the passive wait policy."""
    script = f"""
import os, sys
import resnetlab.engine.threads as threads
threads.busy_cores = lambda: 1.0
threads.available_cores = lambda: 2
from resnetlab.cli import main
argv = ["train", "--recipe", "demo", "--data", "synthetic:128", "--iterations", "1", "--device", "cpu",
        "--set=val_size=0", "--set=model_options.depth=8", "--set=batch_size=8", "--out", {str(tmp_path / "run")!r}]
code = main(argv)
print("POLICY", os.environ.get("OMP_WAIT_POLICY"), code)
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "POLICY PASSIVE 0" in result.stdout, result.stdout + result.stderr
    assert "OMP_WAIT_POLICY=PASSIVE" in result.stderr and "--threads 1" in result.stderr
