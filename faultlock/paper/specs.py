"""The sweeps the paper and the slides are built from, at a resolution that runs in minutes.

They are sweep specs in the format of :mod:`faultlock.sweeps.spec` (TOML), kept here as text so
that they ship with the package. ``faultlock paper`` runs (or resumes) each into
``OUTDIR/stores/<name>.zarr``:

``paper_grid``
    threads x I/O latency x memory pressure x writer load around the calibrated preset, every
    policy, both solvers: the winner maps, latency versus threads, refault amplification and the
    validation figures.
``paper_writers``
    the share of fork-like writers x I/O latency at the preset: the writers' cost.
``paper_preset``
    the calibrated preset itself (``android_warm_start``, kernel.md §1.4), one long run: the
    decade histograms beside Douyin's, the history figure and the paper's tables.

``resolution="full"`` uses the shipped ``lsfmm`` and ``validation`` specs instead of
``paper_grid`` (hours on two cores, minutes on a cluster).
"""

from __future__ import annotations

from ..sweeps.spec import SweepSpec

__all__ = ["PAPER_SPECS", "paper_specs", "ROLES"]

_OBJECTIVES = """
[objectives]
fault_p99 = "fault_latency_p99"
jank = "jank_share"
writer_p99 = "writer_latency_p99"
read_wait = "mmap_read_wait_mean"

[objectives.fault_p99_bounded_writer]
minimize = "fault_latency_p99"
subject_to = { writer_latency_p99 = "10ms" }
"""

PAPER_SPECS: dict[str, str] = {
    "paper_grid": """
description = "paper: threads 1-256 x I/O 100us-10ms x memory pressure x writer load, all policies"
method = "both"
policies = "all"
seed = 20260601
tie_tolerance = 0.1   # a p99 within 10 %: a tie (see the lsfmm spec)

[base]
preset = "android_warm_start"   # Douyin warm start on an 8 GB phone (kernel.md 1.4)

[grid]
threads = { pow2 = [1, 256] }                            # 9 values (Monte Carlo: every 2nd)
io_latency = { log = ["100us", "10ms"], points = 5 }     # 2 a decade (Monte Carlo: every 2nd)

[grid.memory_pressure]
description = "memory pressure: reclaim hazards of cached and mapped folios"
levels.none = { reclaim_rate_cached = "0/s", reclaim_rate_mapped = "0/s" }
levels.preset = { reclaim_rate_cached = "525/s", reclaim_rate_mapped = "0.5/s" }
levels.severe = { reclaim_rate_cached = "5000/s", reclaim_rate_mapped = "50/s" }

[grid.writer_load]
description = "mmap_lock writers: rate and how many VMAs each write-locks"
levels.light = { writer_rate = "100/s", writer_fork_share = 0.0 }
levels.preset = { writer_rate = "350/s", writer_fork_share = 0.02 }
levels.busy = { writer_rate = "2000/s", writer_fork_share = 0.02 }

[mc]
operations = 3000
batches = 10
stride = { threads = 2, io_latency = 2 }
chunk_cells = 3

[mc.selection]   # the headline map answers: winner, tie or undecided at 95 % (sweeps/ranking.py)
confidence = 0.95
budget = 140

[analytic]
chunk_cells = 405
""" + _OBJECTIVES,
    "paper_writers": """
description = "paper: share of fork-like writers x I/O latency at the preset, all policies"
method = "both"
policies = "all"
seed = 20260602

[base]
preset = "android_warm_start"

[grid]
writer_fork_share = [0.0, 0.05, 0.1, 0.2, 0.4]
io_latency = ["100us", "1ms", "10ms"]

[mc]
operations = 20000   # writers are rare: their p99 needs long runs
batches = 10
chunk_cells = 3

[analytic]
chunk_cells = 15
""" + _OBJECTIVES,
    "paper_preset": """
description = "paper: the calibrated preset android_warm_start, one long run, all policies"
method = "both"
policies = "all"
seed = 20260603

[base]
preset = "android_warm_start"

[grid]
threads = [300]

[mc]
operations = 20000
batches = 20
chunk_cells = 1

[analytic]
chunk_cells = 1
""" + _OBJECTIVES,
}

#: what each store is for (figure names it feeds first)
ROLES = {
    "paper_grid": ("fig1", "fig2", "fig4", "fig6"),
    "paper_writers": ("fig5",),
    "paper_preset": ("fig3", "fig7"),
}


def paper_specs(resolution: str = "small") -> dict[str, SweepSpec | str]:
    """Name -> spec (a SweepSpec, or a shipped spec name) for a resolution."""
    if resolution not in ("small", "full"):
        raise ValueError(f"resolution={resolution!r} is not allowed: 'small' or 'full'")
    specs: dict[str, SweepSpec | str] = {
        name: SweepSpec.from_text(text, source=f"faultlock.paper.specs:{name}", name=name)
        for name, text in PAPER_SPECS.items()}
    if resolution == "full":
        specs["paper_grid"] = "lsfmm"
        specs["paper_validation"] = "validation"
    return specs
