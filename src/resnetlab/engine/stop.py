"""Stopping a long job cleanly: SIGINT/SIGTERM ask the loop to save a checkpoint and return.

Training (classification and detection) and the reproduce suites poll a ``StopFlag`` once per
iteration, so a Ctrl-C or a scheduler's SIGTERM loses no work; a second signal stops at once.
"""

from __future__ import annotations

import logging
import signal


class StopFlag:
    """Set by SIGINT/SIGTERM: the loop saves a checkpoint and returns at the next iteration."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def exit_status(self) -> int:
        """The shell's status for a job stopped by this signal (128 + its number)."""
        return 128 + (self.signal or signal.SIGINT)

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum
        # Through the library's logger (the CLI sends it to stderr); never a bare print from a library.
        logging.getLogger(__name__).warning(f"received {signal.Signals(signum).name}: saving a checkpoint and stopping")
