"""Reproducing the paper's tables and figures from run directories (``resnetlab reproduce``).

``suites/`` holds one module per paper result and the steps that reproduce any of them; the
modules beside it are what the suites share (runs, tables, curves, reports, the paper's numbers)
and the campaign. Names below load on first use: ``resnetlab --help`` lists the suites from this
package before torch is imported.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "plot_degradation": "curves",
    "plot_runs": "curves",
    "read_curve": "curves",
    "layer_response_stds": "responses",
    "plot_responses": "responses",
    "run_response_stds": "responses",
    "SUITES": "suites",
    "Suite": "suites",
    "SuiteOptions": "suites",
    "SuiteResult": "suites",
    "build_report": "suites",
    "reproduce": "suites",
    "suite_specs": "suites",
    "update_readme": "suites",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
