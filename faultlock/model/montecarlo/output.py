"""From per-batch counters and histograms to the metrics of ``MODEL.md`` with 95 % intervals.

Every metric is a ratio of two per-batch sums (a mean latency is latency sum over count; a rate is a
count over the batch's simulated time; a quantile is read from the batch's histogram). The point
estimate pools all batches; the half-width is the batch-means interval: Student's t with B-1
degrees of freedom times the standard error of the B batch values (Law & Kelton; ``reference/
queueing.md`` §3.2). Batches are equal numbers of completed faults after a warm-up.
"""

import functools

import numpy as np
from scipy import stats as scipy_stats

from .state import (H_FAULT_LATENCY, H_MAJOR_LATENCY, H_MINOR_LATENCY, H_READ_WAIT,
                    H_WAITER_LATENCY, H_WRITE_WAIT, H_WRITER_LATENCY, H_WRITER_OP_LATENCY,
                    HIST_LOG10_MIN, HIST_PER_DECADE, N_BINS, S_ACCESSES, S_CLASS_MAJOR,
                    S_CLASS_MINOR, S_CLASS_WAITER, S_EVENTS, S_FAULTS, S_IN_FAULT_AREA, S_IO_READS,
                    S_JANK, S_KERNEL_MAJOR, S_LATENCY_SUM, S_MAJOR, S_MAJOR_LATENCY_SUM,
                    S_MINOR_LATENCY_SUM, S_NOFAULT, S_READ_ACQ, S_READ_BUSY_PERIODS,
                    S_READ_BUSY_TIME, S_READ_SLOW_WAIT_SUM, S_READ_WAIT_DONE, S_READ_WAIT_MAX,
                    S_READ_WAIT_SUM, S_READ_WAITING_AREA, S_READS_HOLDING_MMAP, S_READS_HOLDING_VMA,
                    S_RECLAIMS, S_REFAULTS, S_RETRIES, S_RETRY_IO_WAITS, S_RETRY_MISSES, S_TIME,
                    S_VMA_ABORTS, S_WAITER_LATENCY_SUM, S_WRITE_ACQ, S_WRITE_SLOW_WAIT_SUM,
                    S_WRITE_WAIT_DONE, S_WRITE_WAIT_MAX, S_WRITE_WAIT_SUM, S_WRITE_WAITING_AREA,
                    S_WRITER_CPU, S_WRITER_LATENCY_SUM, S_WRITER_OP_LATENCY_SUM, S_WRITER_OPS,
                    S_WRITERS_DONE)

#: lower edges (s) of the decade bins kernel developers publish: [0,1) µs, [1,10) µs, ... [1e5, inf)
WAIT_DECADE_EDGES = np.array([0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
#: lower edges (s) of the fault-latency histogram: 0, then 5 bins a decade from 100 ns to 100 s
LATENCY_BINS_PER_DECADE = 5
LATENCY_EDGES = np.concatenate(
    [[0.0], 10.0 ** np.arange(-7.0, 2.0 + 1e-9, 1.0 / LATENCY_BINS_PER_DECADE)])

# name: (numerator, denominator, units, long name)
RATIOS = {
    "fault_latency_mean": (S_LATENCY_SUM, S_FAULTS, "s", "mean fault latency"),
    "jank_share": (S_JANK, S_FAULTS, "1", "share of faults longer than the jank threshold"),
    "fault_rate": (S_FAULTS, S_TIME, "1/s", "faults completed per second"),
    "mmap_read_rate": (S_READ_ACQ, S_TIME, "1/s", "mmap_lock read acquisitions per second"),
    "mmap_read_wait_mean": (S_READ_WAIT_SUM, S_READ_ACQ, "s", "mean mmap_lock read wait"),
    "mmap_write_rate": (S_WRITE_ACQ, S_TIME, "1/s", "mmap_lock write acquisitions per second"),
    "mmap_write_wait_mean": (S_WRITE_WAIT_SUM, S_WRITE_ACQ, "s", "mean mmap_lock write wait"),
    "writer_latency_mean": (S_WRITER_LATENCY_SUM, S_WRITERS_DONE, "s",
                            "mean writer latency (lock wait, VMA drain and hold)"),
    "retries_per_fault": (S_RETRIES, S_FAULTS, "1", "VM_FAULT_RETRY returns per fault"),
    "refaults_per_fault": (S_REFAULTS, S_FAULTS, "1",
                           "reads of a folio again by the fault that read or awaited it"),
    "retry_miss_ratio": (
        S_RETRY_MISSES, S_RETRY_IO_WAITS, "1",
        "retries that found their folio reclaimed, over retries that waited for I/O"),
    "io_read_rate": (S_IO_READS, S_TIME, "1/s", "storage reads per second"),
    "major_faults_per_fault": (S_MAJOR, S_FAULTS, "1",
                               "attempts that found the folio absent, per fault"),
    "vma_abort_rate": (S_VMA_ABORTS, S_TIME, "1/s",
                       "per-VMA lock attempts that fell back (VMA_LOCK_ABORT)"),
    "access_rate": (S_ACCESSES, S_TIME, "1/s", "page accesses per second"),
    "reclaim_rate": (S_RECLAIMS, S_TIME, "1/s", "folios reclaimed per second"),
    # Little's law checks: time-average populations, and arrival rate times mean time
    "mmap_read_waiters_mean": (S_READ_WAITING_AREA, S_TIME, "1",
                               "time-average threads waiting for mmap_lock read"),
    "mmap_read_waiters_little": (S_READ_SLOW_WAIT_SUM, S_TIME, "1",
                                 "slow-path read waits per second times their mean"),
    "mmap_write_waiters_mean": (S_WRITE_WAITING_AREA, S_TIME, "1",
                                "time-average writers waiting for mmap_lock"),
    "mmap_write_waiters_little": (S_WRITE_SLOW_WAIT_SUM, S_TIME, "1",
                                  "slow-path write waits per second times their mean"),
    "threads_in_fault_mean": (S_IN_FAULT_AREA, S_TIME, "1", "time-average threads inside a fault"),
    "events_rate": (S_EVENTS, S_TIME, "1/s", "simulation events per simulated second"),
    "mmap_read_held_share": (S_READ_BUSY_TIME, S_TIME, "1",
                             "share of time mmap_lock is held for read"),
    "mmap_read_busy_period_mean": (S_READ_BUSY_TIME, S_READ_BUSY_PERIODS, "s",
                                   "mean period mmap_lock is continuously held for read"),
    "reads_holding_mmap_per_fault": (S_READS_HOLDING_MMAP, S_FAULTS, "1",
                                     "reads waited for while holding mmap_lock, per fault"),
    "reads_holding_vma_per_fault": (S_READS_HOLDING_VMA, S_FAULTS, "1",
                                    "reads waited for while holding the VMA lock, per fault"),
    # access classes (SCENARIO_SPEC.md §1; the harness's classes, faultlock/measure/parse.py)
    "major_share": (S_CLASS_MAJOR, S_ACCESSES, "1",
                    "share of accesses whose fault first found the folio absent"),
    "waiter_share": (S_CLASS_WAITER, S_ACCESSES, "1",
                     "share of accesses whose fault first found the folio locked by another "
                     "thread (under read or being installed)"),
    "minor_share": (S_CLASS_MINOR, S_ACCESSES, "1",
                    "share of accesses whose fault first found the folio cached and unlocked"),
    "nofault_share": (S_NOFAULT, S_ACCESSES, "1", "share of accesses to a mapped page (no fault)"),
    "major_latency_mean": (S_MAJOR_LATENCY_SUM, S_CLASS_MAJOR, "s", "mean latency of major faults"),
    "waiter_latency_mean": (S_WAITER_LATENCY_SUM, S_CLASS_WAITER, "s",
                            "mean latency of faults that waited for another thread's folio"),
    "minor_latency_mean": (S_MINOR_LATENCY_SUM, S_CLASS_MINOR, "s",
                           "mean latency of minor faults"),
    "kernel_major_faults_per_fault": (S_KERNEL_MAJOR, S_FAULTS, "1",
                                      "faults the kernel counts major (completing attempt "
                                      "returned VM_FAULT_MAJOR or ran TRIED), per fault"),
    # writer operations (SCENARIO_SPEC.md §2; a Poisson writer is one acquisition)
    "writer_ops_rate": (S_WRITER_OPS, S_TIME, "1/s", "writer operations completed per second"),
    "writer_op_latency_mean": (S_WRITER_OP_LATENCY_SUM, S_WRITER_OPS, "s",
                               "mean writer operation time (gaps, lock waits and holds)"),
    "writer_cpu_share": (S_WRITER_CPU, S_TIME, "1",
                         "CPUs busy with writers, time average (gaps, holds, spinning)"),
}

# name: (per-batch maximum, units, long name)
MAXIMA = {
    "mmap_read_wait_max": (S_READ_WAIT_MAX, "s", "longest mmap_lock read wait"),
    "mmap_write_wait_max": (S_WRITE_WAIT_MAX, "s", "longest mmap_lock write wait"),
}
_ = (S_READ_WAIT_DONE, S_WRITE_WAIT_DONE)

QUANTILES = {
    "fault_latency_p50": (H_FAULT_LATENCY, 0.50, "median fault latency"),
    "fault_latency_p90": (H_FAULT_LATENCY, 0.90, "90th percentile fault latency"),
    "fault_latency_p99": (H_FAULT_LATENCY, 0.99, "99th percentile fault latency"),
    "fault_latency_p999": (H_FAULT_LATENCY, 0.999, "99.9th percentile fault latency"),
    "mmap_read_wait_p99": (H_READ_WAIT, 0.99, "99th percentile mmap_lock read wait"),
    "mmap_write_wait_p99": (H_WRITE_WAIT, 0.99, "99th percentile mmap_lock write wait"),
    "writer_latency_p99": (H_WRITER_LATENCY, 0.99, "99th percentile writer latency"),
    **{f"{name}_latency_p{q}": (which, q / 100, f"{q}th percentile latency of {what}")
       for name, which, what in (("major", H_MAJOR_LATENCY, "major faults"),
                                 ("waiter", H_WAITER_LATENCY, "faults that waited for another "
                                                              "thread's folio"),
                                 ("minor", H_MINOR_LATENCY, "minor faults"))
       for q in (50, 90, 99)},
    "writer_op_latency_p50": (H_WRITER_OP_LATENCY, 0.50, "median writer operation time"),
    "writer_op_latency_p99": (H_WRITER_OP_LATENCY, 0.99, "99th percentile writer operation time"),
}

HISTOGRAMS = {
    "fault_latency_hist": (H_FAULT_LATENCY, LATENCY_EDGES, "latency_bin",
                           "share of faults by latency (log bins)"),
    "mmap_read_wait_hist": (H_READ_WAIT, WAIT_DECADE_EDGES, "wait_bin",
                            "share of mmap_lock read acquisitions by wait (decade bins)"),
    "mmap_write_wait_hist": (H_WRITE_WAIT, WAIT_DECADE_EDGES, "wait_bin",
                             "share of mmap_lock write acquisitions by wait (decade bins)"),
}

_FINE_LOWER = np.concatenate(
    [[0.0], 10.0 ** (HIST_LOG10_MIN + np.arange(N_BINS - 1) / HIST_PER_DECADE)])


def _fine_bin_of(edge: float) -> int:
    """Index of the fine bin that starts at ``edge`` (edges are aligned to the fine grid)."""
    if edge <= 0.0:
        return 0
    return int(round((np.log10(edge) - HIST_LOG10_MIN) * HIST_PER_DECADE)) + 1


@functools.lru_cache(maxsize=256)
def _t_quantile(degrees_of_freedom: int) -> float:
    return float(scipy_stats.t.ppf(0.975, degrees_of_freedom))


def half_width(values: np.ndarray) -> float:
    """95 % Student-t half-width of the mean of independent batch values (nan-aware)."""
    values = values[np.isfinite(values)]
    n = values.size
    if n < 2:
        return np.nan
    return _t_quantile(n - 1) * float(values.std(ddof=1)) / np.sqrt(n)


def ratio_estimate(stats: np.ndarray, num: int, den: int) -> tuple[float, float]:
    total_den = stats[:, den].sum()
    if total_den <= 0:
        return np.nan, np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        per_batch = np.where(stats[:, den] > 0, stats[:, num] / stats[:, den], np.nan)
    return float(stats[:, num].sum() / total_den), half_width(per_batch)


def quantile_from_hist(counts: np.ndarray, q: float) -> float:
    """The q-quantile of a fine log histogram, interpolated log-linearly inside the bin."""
    total = counts.sum()
    if total <= 0:
        return np.nan
    cumulative = np.cumsum(counts)
    target = q * total
    i = int(np.searchsorted(cumulative, target, side="left"))
    if i == 0:
        return 0.0
    below = cumulative[i - 1]
    fraction = (target - below) / counts[i] if counts[i] > 0 else 0.0
    lower = np.log10(_FINE_LOWER[i])
    return float(10.0 ** (lower + fraction / HIST_PER_DECADE))


def quantile_estimate(hist: np.ndarray, which: int, q: float) -> tuple[float, float]:
    pooled = quantile_from_hist(hist[:, which, :].sum(axis=0), q)
    per_batch = np.array([quantile_from_hist(hist[b, which, :], q) for b in range(hist.shape[0])])
    return pooled, half_width(per_batch)


def coarse_shares(hist: np.ndarray, which: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shares in coarse bins with lower edges ``edges`` (the last bin is open), and half-widths."""
    starts = [_fine_bin_of(e) for e in edges] + [N_BINS]
    per_batch = np.stack([hist[:, which, starts[k]:starts[k + 1]].sum(axis=1)
                          for k in range(len(edges))], axis=1)
    totals = per_batch.sum(axis=1, keepdims=True)
    pooled = per_batch.sum(axis=0)
    pooled = pooled / pooled.sum() if pooled.sum() > 0 else np.full(len(edges), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, per_batch / totals, np.nan)
    return pooled, np.array([half_width(shares[:, k]) for k in range(len(edges))])
