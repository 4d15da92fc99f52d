"""A terminal progress bar for long runs: cells done, rate and a time left weighed by cost.

Cells are not equal: one analytic task of the ``lsfmm`` sweep holds 208 cells and costs minutes,
a Monte Carlo cell about a second, and both grow with the threads and under a memory limit. A
bar that divides the cells left by the cells per second so far is wrong by a factor of ten
for most of the run. So the time left comes from a :class:`CostModel`: every task has a *kind*
(``"mc"``, ``"analytic"``) and a *weight* (its cost relative to the other tasks of its kind,
from :func:`faultlock.sweeps.run.task_weight`); the model learns, per kind, the seconds a unit
of weight takes from the tasks that complete (their own durations, measured where they ran, so
tasks still running do not bias it), and the time left is the weight left of each kind times
its seconds per unit, shared by the workers. It converges after a few tasks of each kind;
before the first task of a kind completes, the kind's prior stands in.

On a terminal the bar redraws in place (at most ten times a second); otherwise (a log file, CI)
it prints a line at every tenth of the work and at least every ``heartbeat`` seconds, so logs
stay short but never silent for long. With ``ticking=True`` a thread redraws it (every second
on a terminal, every heartbeat otherwise) even while no task completes: the first tasks of a
sweep may be minutes long, and the elapsed time and the time left (counting down from the last
estimate) should move meanwhile. :func:`status` prints the one-line
messages before and between the bars ("starting 2 workers ...").
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TextIO

__all__ = ["CellProgress", "CostModel", "ProgressBar", "status"]


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status(message: str, stream: TextIO | None = None, enabled: bool = True) -> None:
    """One line of progress outside a bar (on stderr unless ``stream`` is given)."""
    if enabled:
        stream = stream if stream is not None else sys.stderr
        stream.write(message + "\n")
        stream.flush()


class CostModel:
    """Seconds per unit of weight, per kind of task, learned from the tasks that complete.

    ``prior`` gives, per kind, the seconds per unit assumed before a task of that kind has been
    measured (a kind missing from it has no estimate until then). After that the estimate is
    the measured ratio, total seconds over total weight of the completed tasks of the kind: the
    weight-weighted mean, which a few cheap tasks cannot drag far from what the expensive ones
    cost.
    """

    def __init__(self, prior: Mapping[str, float] | None = None):
        self.prior = dict(prior or {})
        self.weight: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def observe(self, kind: str, weight: float, seconds: float) -> None:
        """A task of ``kind`` and ``weight`` took ``seconds`` (where it ran)."""
        if weight > 0 and seconds >= 0 and math.isfinite(seconds):
            self.weight[kind] = self.weight.get(kind, 0.0) + weight
            self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds

    def measured(self, kind: str) -> bool:
        return self.weight.get(kind, 0.0) > 0

    def seconds_per_weight(self, kind: str) -> float:
        """The estimate for ``kind``: measured if possible, else the prior, else NaN."""
        if self.measured(kind):
            return self.seconds[kind] / self.weight[kind]
        return float(self.prior.get(kind, float("nan")))

    def estimate(self, work: Mapping[str, float], workers: int = 1) -> float:
        """Wall seconds for the ``work`` left (weight per kind) on ``workers`` busy workers;
        NaN while some kind with work left has neither a measurement nor a prior."""
        total = 0.0
        for kind, weight in work.items():
            if weight > 0:
                total += weight * self.seconds_per_weight(kind)
        return total / max(1, workers)


class ProgressBar:
    """``update(cells)`` as cells complete; ``close()`` at the end.

    Without ``work`` the time left is the cells left over the cells per second so far. With
    ``work`` (the weight left per kind when the bar starts) and a ``cost`` model, each
    ``update`` names the completed task's ``kind``, ``weight`` and (if known) the ``seconds`` it
    took, and the time left is ``cost.estimate(weight left, workers)``. ``clock`` is the time
    source (a fake one in tests).
    """

    def __init__(self, total: int, done: int = 0, label: str = "sweep", *,
                 stream: TextIO | None = None, enabled: bool = True, width: int = 30,
                 work: Mapping[str, float] | None = None, cost: CostModel | None = None,
                 workers: int = 1, heartbeat: float = 30.0, ticking: bool = False,
                 unit: str = "cells", clock: Callable[[], float] = time.monotonic):
        self.total, self.done, self.label, self.width = total, done, label, width
        self.start_done = done
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.unit = unit
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock = clock
        self.started = clock()
        self._last_update = self.started
        self.work = dict(work) if work is not None else None
        self.cost = cost if cost is not None else CostModel()
        self.workers = max(1, int(workers))
        self.heartbeat = heartbeat
        self._last_draw = -math.inf
        self._last_tenth = -1
        self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._draw(force=True)
        if ticking and enabled:
            self._ticker = threading.Thread(target=self._tick, daemon=True,
                                            name="faultlock-progress")
            self._ticker.start()

    def _tick(self) -> None:
        interval = 1.0 if self.tty else self.heartbeat
        while not self._stop.wait(interval):
            with self._lock:
                self._draw()

    def seconds_left(self) -> float:
        """The estimated wall time to the end (NaN: no estimate yet)."""
        if self.done >= self.total:
            return 0.0
        if self.work is not None:
            # the workers have been at the work left since the last completion: count down
            since = self.clock() - self._last_update
            return max(0.0, self.cost.estimate(self.work, self.workers) - since)
        elapsed = self.clock() - self.started
        fresh = self.done - self.start_done
        rate = fresh / elapsed if elapsed > 0 and fresh > 0 else 0.0
        return (self.total - self.done) / rate if rate > 0 else float("nan")

    def text(self) -> str:
        elapsed = self.clock() - self.started
        fresh = self.done - self.start_done
        rate = fresh / elapsed if elapsed > 0 and fresh > 0 else 0.0
        filled = int(self.width * self.done / self.total) if self.total else self.width
        filled = min(self.width, max(0, filled))
        bar = "#" * filled + "-" * (self.width - filled)
        failed = f"  {self.failed} failed" if self.failed else ""
        return (f"{self.label} [{bar}] {self.done}/{self.total} {self.unit}  {rate:.3g} "
                f"{self.unit}/s  {_clock(self.seconds_left())} left  ({_clock(elapsed)} "
                f"elapsed){failed}")

    def update(self, cells: int = 1, failed: int = 0, *, kind: str | None = None,
               weight: float = 0.0, seconds: float | None = None) -> None:
        """``cells`` completed (or ``failed``) in one task of ``kind`` and ``weight`` that took
        ``seconds`` where it ran (None: not measured)."""
        with self._lock:
            self.done += cells
            self.failed += failed
            self._last_update = self.clock()
            if kind is not None and self.work is not None:
                self.work[kind] = max(0.0, self.work.get(kind, 0.0) - weight)
                if seconds is not None and not failed:
                    self.cost.observe(kind, weight, seconds)
            self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self.tty:
            if force or now - self._last_draw >= 0.1 or self.done >= self.total:
                self.stream.write("\r" + self.text() + "\x1b[K")
                self.stream.flush()
                self._last_draw = now
            return
        tenth = int(10 * self.done / self.total) if self.total else 10
        if force or tenth != self._last_tenth or now - self._last_draw >= self.heartbeat:
            self.stream.write(self.text() + "\n")
            self.stream.flush()
            self._last_tenth = tenth
            self._last_draw = now

    def close(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
        if self.enabled and self.tty:
            self.stream.write("\r" + self.text() + "\x1b[K\n")
            self.stream.flush()


class CellProgress:
    """A ``progress(cells_done, cells)`` callback (:func:`faultlock.simulate`'s, for a grid)
    drawn as a :class:`ProgressBar`, created at the first call; ``close()`` at the end."""

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.label, self.stream, self.enabled, self.clock = label, stream, enabled, clock
        self.bar: ProgressBar | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = ProgressBar(total, done, self.label, stream=self.stream,
                                   enabled=self.enabled, clock=self.clock)
        elif done > self.bar.done:
            self.bar.update(done - self.bar.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
