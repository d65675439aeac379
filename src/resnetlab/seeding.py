"""Every seeded ``torch.Generator`` of the package is made here.

Randomness that a result depends on (the epoch order, the augmentation of each batch, the probe
inputs of an export check) comes from an explicit generator seeded by a pure function of named
numbers, never from the global RNG: a resumed run then draws exactly the batches an uninterrupted
run would, without carrying generator states across processes (the global RNG, which weight
initialisation draws from, is saved in checkpoints instead; ``engine/state.py``).
"""

from __future__ import annotations

import torch

# Streams of the training data (``engine/batches.py``, ``engine/stream.py``): independent draws
# from one seed.
EPOCH_STREAM = 0x5EED_0001
AUGMENT_STREAM = 0x5EED_0002


def generator(seed: int) -> torch.Generator:
    """A CPU generator in the state ``manual_seed(seed)`` gives."""
    return torch.Generator().manual_seed(seed)


def seeded_generator(seed: int, stream: int, index: int) -> torch.Generator:
    """The generator of draw ``index`` (an epoch, an iteration) of ``stream`` under ``seed``."""
    return generator((seed * 1_000_003 + stream * 7_919 + index) % (2**63 - 1))
