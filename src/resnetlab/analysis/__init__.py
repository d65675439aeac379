"""Reproducing the paper's tables and figures from run directories (``resnetlab reproduce``)."""

from .curves import plot_degradation, plot_runs, read_curve
from .responses import layer_response_stds, plot_responses, run_response_stds
from .suites import SuiteOptions, SuiteResult, build_report, reproduce, suite_specs, update_readme

__all__ = [
    "SuiteOptions", "SuiteResult", "build_report", "layer_response_stds", "plot_degradation", "plot_responses",
    "plot_runs", "read_curve", "reproduce", "run_response_stds", "suite_specs", "update_readme",
]
