"""Regenerate the golden run directory of tests/test_golden_resume.py (only on a deliberate
checkpoint-format change: the committed fixture is what older code wrote).

    .venv/bin/python tests/data/make_golden_run.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
torch.set_num_threads(1)  # as tests/conftest.py

import test_golden_resume as golden  # noqa: E402

from resnetlab.engine.train import train  # noqa: E402


def main() -> None:
    golden.register_tiny()
    shutil.rmtree(golden.RUN, ignore_errors=True)
    calls = iter(range(1000))
    result = train(
        golden.golden_config(),
        golden.RUN,
        data=golden.golden_data(),
        log=lambda line: None,
        should_stop=lambda: next(calls) == golden.STOP_AFTER - 1,
    )
    assert result.status == "interrupted" and result.iteration == golden.STOP_AFTER, result
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "golden-run"
        shutil.copytree(golden.RUN, run)
        record = golden.finish(run)
    golden.EXPECTED.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("last_sha256", "best_sha256")}))


if __name__ == "__main__":
    main()
