"""From a measured configuration to the :class:`faultlock.Scenario` that states it.

The Scenario has the harness's group walks and closed-loop writer threads
(``faultlock/measure/SCENARIO_SPEC.md`` §1-2), so a measured cell translates one to one (§4):

* ``--threads T --group G --pages N --order O``: ``threads=T, access_pattern="group_walk",
  group_size=G, walk_pages=N, walk_order=O`` (``page_popularity`` at its default: the walk
  chooses the pages);
* the cold file read with ``MADV_RANDOM``: ``readaround_pages=1``, one VMA large enough for many
  epochs of fresh pages, no reclaim (the file is evicted only before the walk), no swap;
* per-touch loop overhead and ``--think-ns``: ``think_time`` (the calibration's);
* ``--writers W --writer-rate R``: ``writer_mode="periodic"`` (R > 0, ``writer_op_rate=R``) or
  ``"flat_out"`` (R = 0), ``writer_threads=W``;
* ``--writer-op mmap --writer-calls c``: ``writer_locks_per_op=2c``; ``--writer-op mprotect
  --writer-calls c``: ``writer_locks_per_op=c``; neither write-locks the faulted VMA (the mmap
  writer maps new memory, the mprotect region is its own VMA between guard pages); the hold of
  the kind (op and pages) from the calibration;
* ``--writer-where thread/process``: ``writer_where``;
* the control's operation time less k holds, per acquisition: ``writer_gap_cpu`` (the
  calibration's ``writer_gaps`` of the kind);
* the machine: ``cpus`` and the device and wake-up fields of the calibration.

What remains approximate is stated in the note returned with the scenario (``compare`` keeps it
per config): the model's laws (an exponential think time where the harness spins a fixed time; one
hold law for every acquisition of an operation, where mmap and munmap differ), and any writer
field the calibration could not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model.scenario import Scenario

__all__ = [
    "DEFAULT_WALK_ORDER",
    "DEFAULT_WALK_PAGES",
    "MODEL_PAGES",
    "closest_scenario",
    "scenario_for_cell",
    "writer_kind",
]

#: least pages of the model's file: room for many epochs of fresh pages (a cold walk)
MODEL_PAGES = 2**22
#: epochs of the walk the address space holds at least
MODEL_EPOCHS = 64
#: the harness's defaults (``MeasureConfig``), used when a cell does not say
DEFAULT_WALK_PAGES = 1024
DEFAULT_WALK_ORDER = "random"


def writer_kind(op: str, pages: int) -> str:
    """Key of a writer kind in :attr:`Calibration.writer_holds`: ``"mmap 1p"``,
    ``"mprotect 1024p"``."""
    return f"{op} {int(pages)}p"


def closest_scenario(cell: Mapping[str, Any], calibration: Any, *,
                     measured: Mapping[str, float] | None = None,
                     preset: str = "virtio_2cpu") -> tuple[Scenario, str]:
    """The Scenario of one measured cell, and a note of what the model still approximates.

    Parameters
    ----------
    cell : mapping
        The cell's coordinates in a measurement dataset: ``threads``, ``group`` (0 = threads),
        ``writer_where`` (``"none"``, ``"thread"``, ``"process"``), ``writer_op``,
        ``writer_pages``, ``writer_rate`` (operations per second per writer, 0 = flat out),
        ``writer_count``, ``writer_locks_per_op``; and the walk's ``pages`` and ``order`` (from
        the measurement's config; default 1024 and ``"random"``).
    calibration : Calibration
        From :func:`faultlock.measure.calibrate.calibrate`: its ``fields``, ``writer_holds`` and
        ``writer_gaps``.
    measured : mapping, optional
        The cell's measured metrics. Not needed any more (writer threads keep their own pace);
        accepted so that :func:`~faultlock.measure.compare.compare` can pass it.
    preset : str
        The preset the scenario starts from (its machine fields are then overridden by the
        calibration's).

    Raises
    ------
    ValueError
        A cell whose thread count is not a multiple of its group size, or an unknown writer place.
    """
    del measured
    T = int(cell["threads"])
    G = int(cell.get("group", 1) or T)
    if G > T or T % G:
        raise ValueError(f"cell {dict(cell)} is not allowed: threads={T} must be a multiple of "
                         f"group={G}")
    N = int(cell.get("pages") or DEFAULT_WALK_PAGES)
    order = str(cell.get("order") or DEFAULT_WALK_ORDER)
    notes = []
    fields = dict(calibration.fields)
    groups = T // G
    values: dict[str, Any] = {
        **fields,
        "threads": T,
        "access_pattern": "group_walk",
        "group_size": G,
        "walk_pages": N,
        "walk_order": order,
        "page_popularity": Scenario.FIELDS["page_popularity"].default,
        "vmas": 1,
        "pages_per_vma": max(MODEL_PAGES, 1 << (groups * N * MODEL_EPOCHS - 1).bit_length()),
        "readaround_pages": 1,
        "swap_share": 0.0,
        "reclaim_rate_cached": 0.0,
        "reclaim_rate_mapped": 0.0,
        "writer_mode": "poisson",
        "writer_rate": 0.0,
        "writer_vma_share": 0.0,
        "writer_fork_share": 0.0,
    }
    where = str(cell.get("writer_where", "none"))
    if where in ("thread", "process"):
        op, pages = str(cell["writer_op"]), int(cell["writer_pages"])
        kind = writer_kind(op, pages)
        rate = float(cell.get("writer_rate", 0.0) or 0.0)
        locks = int(cell.get("writer_locks_per_op") or (2 if op == "mmap" else 1))
        holds = getattr(calibration, "writer_holds", {}) or {}
        gaps = getattr(calibration, "writer_gaps", {}) or {}
        if kind in holds:
            hold, cv = holds[kind]
        else:
            hold, cv = fields.get("writer_hold", 20e-6), fields.get("writer_hold_cv", 1.0)
            notes.append(f"no calibrated hold for {kind!r}: the calibration's default writer "
                         f"hold {hold * 1e6:.3g} µs")
        gap = gaps.get(kind)
        if gap is None:
            gap = 0.0
            notes.append(f"no control cell for {kind!r}: writer_gap_cpu=0 (the writers' CPU "
                         "outside the lock is not modelled)")
        values.update({
            "writer_mode": "periodic" if rate > 0 else "flat_out",
            "writer_threads": int(cell.get("writer_count") or 1),
            "writer_op_rate": rate,
            "writer_locks_per_op": locks,
            "writer_gap_cpu": float(gap),
            "writer_where": where,
            "writer_hold": float(hold),
            "writer_hold_cv": float(cv),
            "writer_hold_distribution": "lognormal",
        })
        notes.append(f"writers: {locks} acquisitions per operation share one hold law "
                     f"({kind})")
    elif where != "none":
        raise ValueError(f"cell {dict(cell)} is not allowed: writer_where={where!r}, one of "
                         "'none', 'thread', 'process'")
    notes.append("think time exponential (harness: a fixed spin and the loop overhead)")
    known = {k: v for k, v in values.items() if k in Scenario.FIELDS}
    return Scenario.preset(preset, **known), "; ".join(notes)


#: the name the spec (SCENARIO_SPEC.md §4) gives the translation
scenario_for_cell = closest_scenario
