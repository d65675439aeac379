"""The paper's results, one module each, and the steps that reproduce any of them.

- ``base``: the :class:`Suite` record (runs, table, findings, figure, the paper's numbers)
- ``degradation`` (Fig. 1/6), ``table6``, ``shortcuts`` (Table 3 on CIFAR), ``responses``
  (Fig. 7), ``complexity`` (Table 1): one ``SUITE`` per module
- ``registry``: ``SUITES``, found from those modules, in report order
- ``options`` / ``reproduce``: ``SuiteOptions``, then train, measure and report any suite
"""

from .base import Figure, Runs, Suite
from .options import SuiteOptions
from .registry import SUITES
from .reproduce import SuiteResult, build_report, load_suite, reproduce, suite_specs, update_readme

__all__ = [
    "SUITES",
    "Figure",
    "Runs",
    "Suite",
    "SuiteOptions",
    "SuiteResult",
    "build_report",
    "load_suite",
    "reproduce",
    "suite_specs",
    "update_readme",
]
