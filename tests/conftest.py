"""Test-wide settings: one intra-op thread.

Tests run tiny tensors where a second thread only adds synchronisation, and a single thread keeps
timings sane when the machine is shared; numerical results do not depend on it.
"""

import torch

torch.set_num_threads(1)
