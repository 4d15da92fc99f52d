"""From per-batch counters and histograms to the result contract's metrics, with 95 % intervals.

The metrics themselves (names, units, long names, kinds, bins) are defined once in
:mod:`faultlock.model.metrics`; this module holds only the mapping from the engine's counters
(``state.S_*``) and histograms (``state.H_*``) to them, and the batch-means estimators.

Every metric is a ratio of two per-batch sums (a mean latency is latency sum over count; a rate is a
count over the batch's simulated time; a quantile is read from the batch's histogram). The point
estimate pools all batches; the half-width is the batch-means interval: Student's t with B-1
degrees of freedom times the standard error of the B batch values (Law & Kelton; ``reference/
queueing.md`` §3.2). Batches are equal numbers of completed faults after a warm-up.
"""

import functools

import numpy as np
from scipy import stats as scipy_stats

from .. import metrics
from .state import (S_CACHE_AREA, S_CACHE_MAX, S_LIFETIME_SUM, S_PAGES_READ, S_RECLAIM_CPU,
                    S_RESIDENCE_SUM, S_TABLE_EVICTIONS, H_FAULT_LATENCY, H_MAJOR_LATENCY,
                    H_MINOR_LATENCY, H_READ_WAIT,
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

#: the engine histogram (``state.H_*``) that records each random time of the contract
HISTOGRAM_OF = {
    "fault_latency": H_FAULT_LATENCY,
    "mmap_read_wait": H_READ_WAIT,
    "mmap_write_wait": H_WRITE_WAIT,
    "writer_latency": H_WRITER_LATENCY,
    "major_latency": H_MAJOR_LATENCY,
    "waiter_latency": H_WAITER_LATENCY,
    "minor_latency": H_MINOR_LATENCY,
    "writer_op_latency": H_WRITER_OP_LATENCY,
}

#: metric -> (numerator, denominator) per-batch sums (``state.S_*``)
RATIOS = {
    "fault_latency_mean": (S_LATENCY_SUM, S_FAULTS),
    "jank_share": (S_JANK, S_FAULTS),
    "fault_rate": (S_FAULTS, S_TIME),
    "mmap_read_rate": (S_READ_ACQ, S_TIME),
    "mmap_read_wait_mean": (S_READ_WAIT_SUM, S_READ_ACQ),
    "mmap_write_rate": (S_WRITE_ACQ, S_TIME),
    "mmap_write_wait_mean": (S_WRITE_WAIT_SUM, S_WRITE_ACQ),
    "writer_latency_mean": (S_WRITER_LATENCY_SUM, S_WRITERS_DONE),
    "retries_per_fault": (S_RETRIES, S_FAULTS),
    "refaults_per_fault": (S_REFAULTS, S_FAULTS),
    "retry_miss_ratio": (S_RETRY_MISSES, S_RETRY_IO_WAITS),
    "io_read_rate": (S_IO_READS, S_TIME),
    "major_faults_per_fault": (S_MAJOR, S_FAULTS),
    "vma_abort_rate": (S_VMA_ABORTS, S_TIME),
    "access_rate": (S_ACCESSES, S_TIME),
    "reclaim_rate": (S_RECLAIMS, S_TIME),
    "cache_pages_mean": (S_CACHE_AREA, S_TIME),
    "cache_pages_little": (S_RESIDENCE_SUM, S_TIME),
    "cache_lifetime_mean": (S_LIFETIME_SUM, S_RECLAIMS),
    "pages_read_per_fault": (S_PAGES_READ, S_FAULTS),
    "reclaim_cpu_share": (S_RECLAIM_CPU, S_TIME),
    "table_eviction_rate": (S_TABLE_EVICTIONS, S_TIME),
    # Little's law checks: time-average populations, and arrival rate times mean time
    "mmap_read_waiters_mean": (S_READ_WAITING_AREA, S_TIME),
    "mmap_read_waiters_little": (S_READ_SLOW_WAIT_SUM, S_TIME),
    "mmap_write_waiters_mean": (S_WRITE_WAITING_AREA, S_TIME),
    "mmap_write_waiters_little": (S_WRITE_SLOW_WAIT_SUM, S_TIME),
    "threads_in_fault_mean": (S_IN_FAULT_AREA, S_TIME),
    "events_rate": (S_EVENTS, S_TIME),
    "mmap_read_held_share": (S_READ_BUSY_TIME, S_TIME),
    "mmap_read_busy_period_mean": (S_READ_BUSY_TIME, S_READ_BUSY_PERIODS),
    "reads_holding_mmap_per_fault": (S_READS_HOLDING_MMAP, S_FAULTS),
    "reads_holding_vma_per_fault": (S_READS_HOLDING_VMA, S_FAULTS),
    # access classes (measure/SCENARIO_SPEC.md §1; the harness's classes, measure/parse.py)
    "major_share": (S_CLASS_MAJOR, S_ACCESSES),
    "waiter_share": (S_CLASS_WAITER, S_ACCESSES),
    "minor_share": (S_CLASS_MINOR, S_ACCESSES),
    "nofault_share": (S_NOFAULT, S_ACCESSES),
    "major_latency_mean": (S_MAJOR_LATENCY_SUM, S_CLASS_MAJOR),
    "waiter_latency_mean": (S_WAITER_LATENCY_SUM, S_CLASS_WAITER),
    "minor_latency_mean": (S_MINOR_LATENCY_SUM, S_CLASS_MINOR),
    "kernel_major_faults_per_fault": (S_KERNEL_MAJOR, S_FAULTS),
    # writer operations (measure/SCENARIO_SPEC.md §2; a Poisson writer is one acquisition)
    "writer_ops_rate": (S_WRITER_OPS, S_TIME),
    "writer_op_latency_mean": (S_WRITER_OP_LATENCY_SUM, S_WRITER_OPS),
    "writer_cpu_share": (S_WRITER_CPU, S_TIME),
}

#: metric -> the per-batch maximum (``state.S_*``) it is the largest of
MAXIMA = {
    "mmap_read_wait_max": S_READ_WAIT_MAX,
    "mmap_write_wait_max": S_WRITE_WAIT_MAX,
    "cache_pages_max": S_CACHE_MAX,
}
#: metrics only the LRU lists measure: NaN under reclaim="hazard" (its reclaim is drawn lazily,
#: when a folio is looked at, so no count of resident folios exists)
LRU_ONLY = ("cache_pages_mean", "cache_pages_little", "cache_lifetime_mean", "cache_pages_max",
            "reclaim_cpu_share")
_ = (S_READ_WAIT_DONE, S_WRITE_WAIT_DONE)

#: quantile metric -> (engine histogram, level), from the contract's quantity and level
QUANTILES = {name: (HISTOGRAM_OF[m.quantity], m.level) for name, m in metrics.QUANTILES.items()}
#: histogram metric -> (engine histogram, lower edges of its coarse bins)
HISTOGRAMS = {name: (HISTOGRAM_OF[m.quantity], m.edges)
              for name, m in metrics.HISTOGRAMS.items()}


def _check_mapping() -> None:
    """Every estimate the engine makes is a metric of the contract, of a kind it can be."""
    kinds = {"ratio": (RATIOS, ("mean", "rate", "ratio", "share", "population")),
             "maximum": (MAXIMA, ("maximum",))}
    for what, (table, allowed) in kinds.items():
        for name in table:
            metric = metrics.METRICS.get(name)
            if metric is None or metric.kind not in allowed:
                raise RuntimeError(f"montecarlo/output.py: {what} {name!r} is not a metric of "
                                   f"kind {allowed} in faultlock.model.metrics")


_check_mapping()

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
