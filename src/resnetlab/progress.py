"""Progress of every long job (training, evaluation, detection, reproduce suites, downloads, export
checks): a tqdm bar on a terminal, periodic plain lines otherwise (a log file, CI), so that a job
piped to a file still says how far it is without filling it with carriage returns."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm.auto import tqdm

# On a non-terminal, at most one plain line per this many seconds (and always the last one).
PLAIN_EVERY_SECONDS = 30.0


class Progress:
    """Progress of ``total`` units. ``update(n, text)`` sets the absolute count ``n``.

    ``tty``: None asks the stream. ``log``: where plain lines and ``message`` lines go (default: the
    stream). ``plain_every``: seconds between plain lines (0: every update)."""

    def __init__(
        self,
        total: int,
        start: int = 0,
        stream: TextIO | None = None,
        tty: bool | None = None,
        log: Callable[[str], None] | None = None,
        desc: str = "",
        unit: str = "it",
        plain_every: float = 0.0,
        disable: bool = False,
        unit_scale: bool = False,
    ) -> None:
        self.total, self.start_count, self.desc, self.unit = total, start, desc, unit
        self.stream = stream or sys.stderr
        self.tty = (hasattr(self.stream, "isatty") and self.stream.isatty()) if tty is None else tty
        self.log = log or self._write_line
        self.plain_every, self.disable = plain_every, disable
        self.started = time.perf_counter()
        self._last_plain = float("-inf")
        self._count = start
        self.bar = None
        if self.tty and not disable:
            self.bar = tqdm(
                total=total,
                initial=start,
                file=self.stream,
                desc=desc or None,
                unit=unit,
                unit_scale=unit_scale,
                dynamic_ncols=True,
                leave=True,
                smoothing=0.1,
            )

    def _write_line(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def eta(self, count: int) -> float:
        done, elapsed = count - self.start_count, time.perf_counter() - self.started
        return elapsed / done * (self.total - count) if done > 0 else float("nan")

    def update(self, count: int, text: str = "") -> None:
        self._count = count
        if self.disable:
            return
        if self.bar is not None:
            self.bar.update(count - self.bar.n)
            if text:
                self.bar.set_postfix_str(text, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last_plain < self.plain_every and (not self.total or count < self.total):
            return
        self._last_plain = now
        eta = self.eta(count)
        eta_text = "?" if eta != eta else time.strftime("%H:%M:%S", time.gmtime(eta))
        prefix = f"{self.desc} " if self.desc else ("iter " if self.unit == "it" else "")
        self.log(f"{prefix}{count}/{self.total} {text + ' ' if text else ''}eta {eta_text}")

    def advance(self, n: int = 1, text: str = "") -> None:
        self.update(self._count + n, text)

    def message(self, line: str) -> None:
        """A line that stays (an evaluation result), printed above the bar."""
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        elif not self.disable or self.log is not self._write_line:
            self.log(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
