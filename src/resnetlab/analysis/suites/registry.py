"""``SUITES``: every paper result, found as the ``SUITE`` of each module of this package.

A new suite is one new module here; nothing else lists the suites (the CLI, the manifest check,
the report index and the README block all read this dict, in ``Suite.order``).
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from pathlib import Path

from .base import Suite

# The modules of this package that are the machinery, not paper results.
MACHINERY = frozenset({"base", "registry", "options", "reproduce"})


def discover(package: str = __name__.rpartition(".")[0], folder: Path = Path(__file__).parent) -> dict[str, Suite]:
    """Every ``SUITE`` of the modules in ``folder`` (the package ``package``), by ``Suite.order``."""
    found = []
    for module in pkgutil.iter_modules([str(folder)]):
        if module.name in MACHINERY or module.name.startswith("_"):
            continue
        suite = getattr(import_module(f"{package}.{module.name}"), "SUITE", None)
        if not isinstance(suite, Suite):
            raise TypeError(
                f"{package}.{module.name} defines no SUITE (a Suite): every module here is one paper result"
            )
        found.append(suite)
    return {suite.name: suite for suite in sorted(found, key=lambda s: s.order)}


SUITES: dict[str, Suite] = discover()
