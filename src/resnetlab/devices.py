"""The one reading of a device name, for the library and every ``--device`` of the CLI.

``auto`` is CUDA where there is one, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` must name a
device this machine has, so that a typo or a missing GPU stops at once with one line, not after a
model has been built.
"""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device, what: str = "device") -> torch.device:
    """The ``torch.device`` that ``name`` means here; ``ValueError`` naming the problem otherwise
    (``what``: how the messages call the setting, e.g. ``--device`` on the command line)."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"{what} {name!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{what} {name}: no CUDA device is available here; use {what} cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{what} {name}: this machine has {count} CUDA device(s), numbered from 0")
    elif device.type != "cpu":
        raise ValueError(f"{what} {name}: only cpu and cuda devices are supported")
    return device


__all__ = ["resolve_device"]
