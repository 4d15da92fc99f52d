"""A terminal progress bar for sweeps: cells done, rate and time left.

On a terminal the bar redraws in place (at most ten times a second); otherwise (a log file, CI)
it prints a line at every tenth of the work, so logs stay short.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """``update(cells)`` as cells complete; ``close()`` at the end."""

    def __init__(self, total: int, done: int = 0, label: str = "sweep", *,
                 stream: TextIO | None = None, enabled: bool = True, width: int = 30):
        self.total, self.done, self.label, self.width = total, done, label, width
        self.start_done = done
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_tenth = -1
        self.failed = 0
        self._draw(force=True)

    def text(self) -> str:
        elapsed = time.monotonic() - self.started
        fresh = self.done - self.start_done
        rate = fresh / elapsed if elapsed > 0 and fresh > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        filled = int(self.width * self.done / self.total) if self.total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        failed = f"  {self.failed} failed" if self.failed else ""
        return (f"{self.label} [{bar}] {self.done}/{self.total} cells  {rate:.3g} cells/s  "
                f"{_clock(left)} left  ({_clock(elapsed)} elapsed){failed}")

    def update(self, cells: int = 1, failed: int = 0) -> None:
        self.done += cells
        self.failed += failed
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if force or now - self._last_draw >= 0.1 or self.done >= self.total:
                self.stream.write("\r" + self.text() + "\x1b[K")
                self.stream.flush()
                self._last_draw = now
            return
        tenth = int(10 * self.done / self.total) if self.total else 10
        if force or tenth != self._last_tenth:
            self.stream.write(self.text() + "\n")
            self.stream.flush()
            self._last_tenth = tenth

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r" + self.text() + "\x1b[K\n")
            self.stream.flush()
