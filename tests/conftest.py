"""Test-wide settings: one intra-op thread.

Tests run tiny tensors where a second thread only adds synchronisation, and a single thread keeps
timings sane when the machine is shared; numerical results do not depend on it.
"""

import torch

torch.set_num_threads(1)

from pathlib import Path  # noqa: E402 (after set_num_threads, on purpose)

# The real CIFAR-10 JPEG copy lives in shared/ beside the repository; tests using it skip without it.
CIFAR10_JPEG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg"
