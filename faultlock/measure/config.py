"""What to measure: :class:`WriterSpec` (one kind of ``mmap_lock`` writer load) and
:class:`MeasureConfig` (the grid of configurations, repetitions and bounds of one measurement).

Every configuration (a *cell*) is a thread count T, a group size G (G = 0 means G = T: all threads
walk the same pages in lock step) and a writer load (or none). Validation raises one ValueError
naming each bad field, like :class:`faultlock.Scenario`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["WriterSpec", "MeasureConfig", "Cell"]

WHERE = ("thread", "process")
OPS = ("mmap", "mprotect")


@dataclass(frozen=True)
class WriterSpec:
    """``count`` writer threads that each loop on one operation.

    ``where='thread'``: threads of the measured process, so they take *its* ``mmap_lock`` for write;
    ``where='process'``: the same threads in a separate process (its own ``mm``): the CPU-load
    control. ``op='mmap'``: one operation is ``calls`` x (mmap + munmap of ``pages`` anonymous
    pages), 2 write acquisitions per call (munmap downgrades to read for the unmap).
    ``op='mprotect'``: one operation is ``calls`` x mprotect over a populated anonymous region of
    ``pages`` pages, 1 write acquisition per call; the hold grows with ``pages``
    (change_protection walks every PTE).
    ``rate``: operations per second per writer (periodic, absolute deadlines); 0 = flat out.
    """

    where: str = "thread"
    op: str = "mmap"
    rate: float = 0.0
    pages: int = 1
    calls: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        errors = []
        if self.where not in WHERE:
            errors.append(f"where={self.where!r} is not allowed: one of {WHERE}")
        if self.op not in OPS:
            errors.append(f"op={self.op!r} is not allowed: one of {OPS}")
        for name, low, high in (("pages", 1, 1 << 18), ("calls", 1, 1000), ("count", 1, 64)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                errors.append(f"{name}={value!r} is not allowed: an integer in [{low}, {high}]")
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or \
                not (0 <= self.rate <= 1e6 and math.isfinite(self.rate)):
            errors.append(f"rate={self.rate!r} is not allowed: operations per second in "
                          "[0, 1e6] (0 = flat out)")
        if errors:
            raise ValueError("; ".join(errors))
        object.__setattr__(self, "rate", float(self.rate))

    @property
    def write_locks_per_op(self) -> int:
        return (2 if self.op == "mmap" else 1) * self.calls

    @property
    def label(self) -> str:
        rate = "flat" if self.rate == 0 else f"{self.rate:g}/s"
        extra = f" x{self.count}" if self.count > 1 else ""
        calls = f" {self.calls}calls" if self.calls > 1 else ""
        return f"{self.where} {self.op} {self.pages}p {rate}{calls}{extra}"

    @classmethod
    def parse(cls, text: str) -> WriterSpec | None:
        """``"none"`` or ``"where:op[:rate=R][:pages=P][:calls=C][:count=N]"``, e.g.
        ``"thread:mprotect:rate=1000:pages=1024"``."""
        text = text.strip()
        if text.lower() in ("none", ""):
            return None
        parts = text.split(":")
        if len(parts) < 2:
            raise ValueError(f"writer={text!r} is not allowed: write none or "
                             "where:op[:rate=R][:pages=P][:calls=C][:count=N]")
        values: dict[str, Any] = {"where": parts[0], "op": parts[1]}
        for part in parts[2:]:
            key, _, value = part.partition("=")
            if key not in ("rate", "pages", "calls", "count") or not value:
                raise ValueError(f"writer={text!r} is not allowed: unknown setting {part!r} "
                                 "(rate, pages, calls, count)")
            try:
                values[key] = float(value) if key == "rate" else int(value)
            except ValueError:
                raise ValueError(f"writer={text!r} is not allowed: {key}={value!r} is not a "
                                 "number") from None
        return cls(**values)


@dataclass(frozen=True)
class Cell:
    """One measured configuration."""

    threads: int
    group: int
    writer: WriterSpec | None

    @property
    def label(self) -> str:
        w = self.writer.label if self.writer else "no writer"
        return f"T={self.threads} G={self.group} {w}"

    def coords(self) -> dict[str, Any]:
        w = self.writer
        return {"threads": self.threads, "group": self.group, "label": self.label,
                "writer_where": w.where if w else "none", "writer_op": w.op if w else "none",
                "writer_rate": w.rate if w else 0.0, "writer_pages": w.pages if w else 0,
                "writer_calls": w.calls if w else 0, "writer_count": w.count if w else 0,
                "writer_locks_per_op": w.write_locks_per_op if w else 0}


def _tuple(value: Any) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class MeasureConfig:
    """A measurement: the grid of cells, repetitions, and bounds.

    Parameters
    ----------
    threads : ints
        Reader thread counts T.
    groups : ints
        Group sizes G (0 = T). A (T, G) pair with T not a multiple of G is skipped.
    writers : WriterSpec, str or None, several
        Writer loads; ``None``/``"none"``: no writer. Strings as in :meth:`WriterSpec.parse`.
    pages : int
        Pages each group walks (each page one 4 KiB read when cold).
    repeats : int
        Untimed-traced repetitions of each cell; medians and their spread (min, max) are reported.
    order : {"random", "sequential"}
        Walk order within a group's pages (random avoids device-side sequential effects).
    think_time : float
        Busy CPU time (s) a reader spends before each touch.
    device_depths, device_seconds :
        O_DIRECT read-latency curve: queue depths and seconds per depth (per repeat).
    device_repeats : int
        The device curve and the wake-up latency are measured in the first ``device_repeats``
        repeats only (they need few; the fault runs need many).
    waiter_threshold, jank_threshold : float (s)
        Classification threshold of a folio-lock waiter; jank threshold (MODEL.md).
    trace : {"auto", "on", "off"}
        One extra perf-recorded run per cell for mmap_lock counts, waits and holds ("auto": if
        perf can; "on": fail if it cannot).
    directory : str
        Where the data file is created (a temporary subdirectory, removed afterwards).
    max_seconds : float
        Bound of one harness run (the walk stops there). ``budget``: bound of the whole
        measurement (s); cells not reached are NaN and listed in ``attrs['skipped']``.
    max_file_mb : int
        Largest data file allowed.
    max_other_cpus : float
        Noise control: a run during which the machine's other tenants kept more than this many
        CPUs busy on average (``/proc/stat`` busy time less the harness's and our own CPU time)
        is repeated, up to ``max_reruns`` times; the last attempt is kept either way, and
        ``attrs['runs_above_noise_threshold']`` counts those that stayed above.
    max_reruns : int
        Repetitions of one run at most for the rule above (0: never repeat).
    """

    threads: tuple[int, ...] = (1, 2, 4, 8)
    groups: tuple[int, ...] = (1,)
    writers: tuple[WriterSpec | None, ...] = (None,)
    pages: int = 1024
    repeats: int = 3
    order: str = "random"
    think_time: float = 0.0
    device_depths: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    device_seconds: float = 0.25
    device_repeats: int = 100
    waiter_threshold: float = 10e-6
    jank_threshold: float = 16.7e-3
    trace: str = "auto"
    directory: str = "."
    max_seconds: float = 10.0
    budget: float = 110.0
    max_file_mb: int = 512
    seed: int = 1
    max_other_cpus: float = 0.25
    max_reruns: int = 3

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        errors = []
        for name in ("threads", "groups", "device_depths"):
            values = _tuple(getattr(self, name))
            low = 0 if name == "groups" else 1
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or
                                 not low <= v <= 1024 for v in values):
                errors.append(f"{name}={getattr(self, name)!r} is not allowed: one or more "
                              f"integers in [{low}, 1024]")
            set_(name, values)
        writers = []
        for w in _tuple(self.writers):
            try:
                writers.append(WriterSpec.parse(w) if isinstance(w, str) else
                               WriterSpec(**w) if isinstance(w, Mapping) else w)
            except (ValueError, TypeError) as exc:
                errors.append(f"writers: {exc}")
        if any(w is not None and not isinstance(w, WriterSpec) for w in writers):
            errors.append(f"writers={self.writers!r} is not allowed: WriterSpec, str or None")
        set_("writers", tuple(writers) or (None,))
        for name, low, high in (("pages", 1, 1 << 18), ("repeats", 1, 100),
                                ("max_file_mb", 1, 4096), ("seed", 0, 2**40),
                                ("max_reruns", 0, 20), ("device_repeats", 1, 100)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                errors.append(f"{name}={value!r} is not allowed: an integer in [{low}, {high}]")
        for name, low, high in (("think_time", 0, 0.1), ("device_seconds", 0.01, 30),
                                ("waiter_threshold", 1e-7, 1.0), ("jank_threshold", 1e-6, 100),
                                ("max_seconds", 0.01, 600), ("budget", 1, 86400)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not low <= value <= high:
                errors.append(f"{name}={value!r} is not allowed: seconds in [{low:g}, {high:g}]")
        value = self.max_other_cpus
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 <= value <= 1024:
            errors.append(f"max_other_cpus={value!r} is not allowed: CPUs in [0, 1024]")
        if self.order not in ("random", "sequential"):
            errors.append(f"order={self.order!r} is not allowed: 'random' or 'sequential'")
        if self.trace not in ("auto", "on", "off"):
            errors.append(f"trace={self.trace!r} is not allowed: 'auto', 'on' or 'off'")
        if not errors and not self.cells():
            errors.append(f"threads={self.threads} and groups={self.groups} give no cell: "
                          "each thread count must be a multiple of some group size")
        if not errors and self.file_pages() * 4096 > self.max_file_mb * 2**20:
            errors.append(f"pages={self.pages} is not allowed: the largest cell needs "
                          f"{self.file_pages() * 4096 / 2**20:.0f} MiB of file, more than "
                          f"max_file_mb={self.max_file_mb}")
        if errors:
            raise ValueError(errors[0] if len(errors) == 1 else
                             f"{len(errors)} problems: " + "; ".join(errors))

    def cells(self) -> list[Cell]:
        """Every (T, G, writer) cell, in grid order; G = 0 resolved to T, duplicates dropped."""
        out, seen = [], set()
        for t, g, w in itertools.product(self.threads, self.groups, self.writers):
            g = t if g == 0 else g
            if g > t or t % g:
                continue
            cell = Cell(t, g, w)
            if cell not in seen:
                seen.add(cell)
                out.append(cell)
        return out

    def file_pages(self) -> int:
        """Pages of data file the largest cell walks."""
        return max((c.threads // c.group) * self.pages for c in self.cells())

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["writers"] = [None if w is None else dataclasses.asdict(w) for w in self.writers]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeasureConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{sorted(unknown)} not allowed: MeasureConfig fields are "
                             f"{[f.name for f in dataclasses.fields(cls)]}")
        return cls(**data)

    def replace(self, **changes: Any) -> MeasureConfig:
        return dataclasses.replace(self, **changes)
