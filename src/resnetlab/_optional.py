"""Optional dependencies that are used when they work and skipped, with one line, when they do not.

torchvision is never required: every operation has a plain-PyTorch path (``detection/boxes.py``,
``detection/roi.py``). Where it is installed its compiled operators are a faster path, but a
torchvision wheel built for another torch release imports with an error about a missing operator
(``torchvision::nms does not exist``) or fails at its first call. Such a build is detected once per
process, reported in one warning of the ``resnetlab`` logger (one line on stderr where logging is
not configured otherwise), and treated as absent.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from types import ModuleType

logger = logging.getLogger("resnetlab")


@functools.lru_cache(maxsize=1)
def torchvision_ops() -> ModuleType | None:
    """``torchvision.ops`` when it imports and its compiled operators run, else None."""
    if importlib.util.find_spec("torchvision") is None:
        return None  # not installed: nothing to say
    try:
        import torch
        import torchvision.ops as ops

        ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)  # a mismatched build fails here at the latest
        return ops
    except Exception as error:  # RuntimeError/ImportError/OSError from a broken operator library
        reason = " ".join(str(error).split()) or type(error).__name__
        logger.warning(
            "resnetlab: warning: torchvision is installed but unusable (%s); using the plain-PyTorch operators",
            reason[:160],
        )
        return None


__all__ = ["torchvision_ops"]
