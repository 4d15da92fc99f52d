"""Named state of the compiled analytic model: every per-element vector's fields, by name.

The compiled sub-models work on float64 vectors (one row per (policy, cell) element), so that
numba can keep them in registers and loop over them; the fields are addressed by name through
the namedtuples below (``xi[IN.threads]``, ``st[ST.access_rate]``), which numba folds to
constants.  Each tuple of names is the single definition of its vector's layout.

* ``IN``: the element's inputs: scenario fields, quantities derived from them, flags (0/1) and
  the policy's switches (``policies.py``).
* ``ST``: the state of the fixed point, the coupled quantities every pass re-estimates.
* ``ACC``: per-fault expectations accumulated over fault classes and branches (fault paths).
* ``IO``: the storage sub-model's results; ``LK``: the locks'; ``CPU``: the CPUs';
  ``PC``: the other pieces of a pass (access classes, writers) that the metrics and the latency
  distribution read.
"""

from __future__ import annotations

from collections import namedtuple


def _layout(name: str, fields: tuple[str, ...]):
    """A namedtuple instance mapping each field name to its column (0, 1, ...)."""
    return namedtuple(name, fields)(*range(len(fields)))


#: scenario fields taken as they are (floats)
SCENARIO_FIELDS = (
    "fault_cpu_time", "wakeup_latency", "reclaim_rate_cached", "reclaim_rate_mapped",
    "zram_latency", "tried_after_major", "retry_limit", "threads", "io_parallelism",
    "io_latency", "io_page_time", "io_depth_slope", "vmas", "writer_threads", "writer_hold",
    "writer_vma_share", "writer_fork_share", "reader_rate", "reader_hold", "handoff_timeout",
    "writer_locks_per_op", "writer_gap_cpu", "writer_op_rate", "writer_rate", "cpus",
    "think_time", "idle_time", "group_size", "jank_threshold", "memory_limit", "lru_lists",
    "reclaim_cpu_time", "sched_slice",
)
#: quantities derived from the scenario (inputs.py)
DERIVED_FIELDS = (
    "readaround", "file_pages", "swap_pages", "file_share", "capacity", "total_pages", "io_cv",
    "writer_cv", "walk", "periodic", "writer_loop", "writer_process", "linux", "spin",
    "drain_blocks", "handover", "writer_pref", "strata_row", "lru", "inactive_ratio",
    "run_to_parity",
)
#: the policy's switches (policies.py)
SWITCHES = ("use_vma_lock", "drop_on_vma", "drop_on_mmap", "retry_on_vma", "uptodate_wait")

IN = _layout("Inputs", SCENARIO_FIELDS + DERIVED_FIELDS + SWITCHES)

ST = _layout("State", (
    "access_rate", "cpu_wait", "cpu_wait_writer", "think", "cpu_wait_batch", "cpu_wait_p",
    "batch", "read_time", "read_time_m2", "read_rate", "reads_per_fault", "abort",
    "abort_residual", "block", "block_residual", "block_open", "block_open_residual",
    "writer_util", "writer_queued", "q_mmap", "q_vma", "writer_acquisition", "thinking_share",
    "writer_rate", "device_share", "refaults_per_major", "refault_window", "q_mmap_again",
    "q_vma_again",
))
#: state quantities whose relative change decides convergence
CHECKED = ("read_time", "block", "cpu_wait_batch", "think", "abort", "writer_rate")
#: state quantities taken as a pass gives them; every other one (but the access rate, which
#: the outer secant moves) is damped by half
UNDAMPED = ("read_time", "read_time_m2", "read_rate", "reads_per_fault", "think",
            "thinking_share", "device_share", "refaults_per_major")

ACC = _layout("PerFault", (
    "latency", "cpu", "wakes", "reads", "retries", "retry_io_waits", "refaults", "misses",
    "majors", "aborts", "mmap_acq", "mmap_wait", "mmap_slow", "hold_short_n", "hold_short_s",
    "hold_short_s2", "hold_long_n", "hold_long_s", "hold_long_s2", "vma_n", "vma_s", "vma_s2",
    "reads_holding_mmap", "reads_holding_vma", "zram_cpu",
))

IO = _layout("Storage", ("read_service", "read_wait", "read_wait_p", "read_time",
                         "read_time_m2", "pages_per_read"))

LK = _layout("Locks", (
    "abort", "abort_residual", "block", "block_residual", "block_open", "block_open_residual",
    "writer_util", "writer_queued", "write_wait", "writer_hold", "batch", "stable",
    "read_held_share", "read_rate", "read_hold_mean", "drain_vma",
))

CPU = _layout("Cpus", ("single", "batch_wait", "writer", "think_time", "single_p", "thinking"))

PC = _layout("Pieces", (
    "miss", "fault_rate", "latency", "major", "minor", "join_io", "join_up", "zram",
    "latency_minor", "latency_zram", "latency_major", "latency_waiter", "residual_io",
    "stampede", "absent_uniform", "reclaims_pages", "writer_ops", "writer_acquisitions",
    "writer_lock", "writer_cpu_holds", "writer_cpu_gaps", "cpu_wait_writer", "target",
    "cache_pages", "lifetime", "active_lifetime", "pages_per_read", "reclaim_cpu",
    "refault_window", "activated_major", "evictions", "unlocked_pages",
))

#: why an element's fixed point did not converge (``unconverged_reason``)
REASONS = (
    "",
    "iteration budget exhausted",
    "no fixed point: the closed loop's target access rate jumps across it (a station saturates "
    "at this rate: the storage read time, mmap_lock blocking or the CPU wait changes by a "
    "step), so the iterates oscillate",
)
CONVERGED, BUDGET, JUMP = range(len(REASONS))

#: the scalar results of an element: the means (solve.metrics) and the latency distribution's
#: quantiles and shares (distribution.py), under the names of the result contract
OUT = _layout("Outputs", (
    "fault_latency_mean", "fault_rate", "mmap_read_rate", "mmap_read_wait_mean",
    "mmap_write_rate", "mmap_write_wait_mean", "writer_latency_mean", "writer_ops_rate",
    "writer_op_latency_mean", "writer_cpu_share", "retries_per_fault", "refaults_per_fault",
    "retry_miss_ratio", "io_read_rate", "major_faults_per_fault", "vma_abort_rate",
    "access_rate", "reclaim_rate", "mmap_read_waiters_mean", "mmap_read_waiters_little",
    "mmap_write_waiters_mean", "mmap_write_waiters_little", "threads_in_fault_mean",
    "mmap_read_held_share", "mmap_read_busy_period_mean", "reads_holding_mmap_per_fault",
    "reads_holding_vma_per_fault", "major_share", "waiter_share", "minor_share",
    "major_latency_mean", "waiter_latency_mean", "minor_latency_mean", "nofault_share",
    "cache_pages_mean", "cache_lifetime_mean", "pages_read_per_fault", "reclaim_cpu_share",
    # the distribution
    "fault_latency_p50", "fault_latency_p90", "fault_latency_p99", "fault_latency_p999",
    "jank_share", "major_latency_p50", "major_latency_p90", "major_latency_p99",
    "waiter_latency_p50", "waiter_latency_p90", "waiter_latency_p99", "minor_latency_p50",
    "minor_latency_p90", "minor_latency_p99", "mmap_read_wait_p99", "mmap_write_wait_p99",
    "writer_latency_p99",
))
#: the outputs that only the distribution gives
DISTRIBUTION_OUTPUTS = OUT._fields[OUT.fault_latency_p50:]
