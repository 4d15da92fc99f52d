"""From a measured configuration to the closest :class:`faultlock.Scenario` that exists today.

Until the Scenario has group walks and closed-loop writers (issue 6; the spec is in
``faultlock/measure/SCENARIO_SPEC.md``), a measured cell maps to an approximation, and every
approximation is stated in the note returned with the scenario (``compare`` keeps it per config):

* the cold walk: ``vmas=1``, a VMA far larger than the walk (``pages_per_vma=2**22``) with uniform
  popularity, so nearly every touch is a first touch, as in the harness; ``readaround_pages=1``
  (MADV_RANDOM); no reclaim (the file is evicted only before the walk);
* a group walk with G > 1 maps to T/G independent walkers: each group's leader reads, and the
  G-1 followers, which wait for that read and wake with it, are not modelled (neither their
  latency nor their CPU);
* writers in the measured process map to Poisson writers at the write-lock rate the harness
  achieved, holding for the calibrated hold of their kind; none of them write-locks the faulted
  VMA. Their CPU outside the lock (syscall entry, VMA allocation, the munmap zap after the
  downgrade) is not modelled;
* writers in the separate control process do not touch the measured ``mmap_lock``: the scenario
  has no writers, and their CPU load cannot be expressed (no background-load field).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model.scenario import Scenario

__all__ = ["closest_scenario", "writer_kind", "MODEL_PAGES"]

MODEL_PAGES = 2**22


def writer_kind(op: str, pages: int) -> str:
    """Key of a writer kind in :attr:`Calibration.writer_holds`: ``"mmap 1p"``,
    ``"mprotect 1024p"``."""
    return f"{op} {int(pages)}p"


def closest_scenario(cell: Mapping[str, Any], calibration: Any, *,
                     measured: Mapping[str, float] | None = None,
                     preset: str = "virtio_2cpu") -> tuple[Scenario, str]:
    """The Scenario closest to one measured cell, and a note of what it leaves out.

    Parameters
    ----------
    cell : mapping
        The cell's coordinates in a measurement dataset: ``threads``, ``group``, ``writer_where``,
        ``writer_op``, ``writer_pages``, ``writer_rate``, ``writer_locks_per_op``.
    calibration : Calibration
        From :func:`faultlock.measure.calibrate.calibrate` (its ``fields`` and ``writer_holds``).
    measured : mapping, optional
        The cell's measured metrics; ``writer_write_lock_rate`` (achieved write acquisitions per
        second) sets the writer rate; without it the configured rate is used (flat out: error).
    preset : str
        The preset the scenario starts from.
    """
    T, G = int(cell["threads"]), int(cell["group"])
    notes = []
    fields = dict(calibration.fields)
    threads = max(1, T // G)
    if G > 1:
        notes.append(f"G={G}: {threads} independent walkers (group leaders); the {G - 1} "
                     "followers per group, their waits and wake-ups are not modelled")
    where = str(cell.get("writer_where", "none"))
    writer: dict[str, Any] = {"writer_rate": 0.0}
    if where == "thread":
        kind = writer_kind(str(cell["writer_op"]), int(cell["writer_pages"]))
        hold, cv = calibration.writer_holds.get(kind, (fields.get("writer_hold"),
                                                       fields.get("writer_hold_cv", 1.0)))
        rate = (measured or {}).get("writer_write_lock_rate")
        if rate is None or not rate == rate:
            rate = float(cell["writer_rate"]) * int(cell["writer_locks_per_op"]) * \
                int(cell.get("writer_count", 1) or 1)
            if rate <= 0:
                raise ValueError(f"cell {dict(cell)} has flat-out writers and no measured rate")
        writer = {"writer_rate": float(rate), "writer_hold": float(hold),
                  "writer_hold_cv": float(cv), "writer_hold_distribution": "lognormal"}
        notes.append(f"writers: Poisson at the achieved {rate:.0f} write locks/s (harness: "
                     "periodic or flat-out loop); CPU outside the lock not modelled")
    elif where == "process":
        notes.append("control writers in another process: no mmap_lock writers; their CPU load "
                     "is not modelled")
    values = {
        **fields,
        "threads": threads,
        "vmas": 1,
        "pages_per_vma": MODEL_PAGES,
        "page_popularity": 0.0,
        "readaround_pages": 1,
        "swap_share": 0.0,
        "reclaim_rate_cached": 0.0,
        "reclaim_rate_mapped": 0.0,
        "writer_vma_share": 0.0,
        "writer_fork_share": 0.0,
        **writer,
    }
    known = {k: v for k, v in values.items() if k in Scenario.FIELDS}
    return Scenario.preset(preset, **known), "; ".join(notes) or "exact up to the model's laws"
