"""Statistics gathered inside the engine, per batch.

The run is cut into ``batches`` batches of equal numbers of completed faults after a warm-up; every
counter and histogram is kept per batch, so that the Python side can form batch-means confidence
intervals (``reference/queueing.md`` §3.2: per-event i.i.d. intervals are wrong for queues).
Latencies go into fine logarithmic histograms (``HIST_PER_DECADE`` bins a decade), from which
quantiles are read and the decade bins kernel developers publish are summed.
"""

import numpy as np
from numba import njit

from .state import (H_READ_WAIT, I_CACHE_PAGES, S_CACHE_AREA, S_READ_ACQ, S_READ_SLOW_WAIT_SUM,
                    S_READ_WAIT_DONE,
                    S_READ_WAIT_MAX, S_READ_WAIT_SUM, HIST_LOG10_MIN, HIST_PER_DECADE, I_BATCH,
                    I_BATCH_FAULTS, I_FAULTS_DONE,
                    I_IN_FAULT, I_OPS_DONE, I_READ_WAITING, I_RW_READERS, I_STOP,
                    I_WRITE_WAITING, N_BINS, Q_BATCH_FAULTS, Q_BATCHES, Q_WARMUP_FAULTS,
                    R_BATCH_START, R_LAST_EVENT, R_NOW, R_WARMUP_END, S_FAULTS, S_IN_FAULT_AREA,
                    S_READ_BUSY_TIME, S_READ_WAITING_AREA, S_TIME, S_WRITE_WAITING_AREA)


@njit(cache=True, inline="always")
def count(S, key, value):
    b = S.ints[I_BATCH]
    if b >= 0:
        S.stats[b, key] += value


@njit(cache=True, inline="always")
def bin_of(value):
    if value <= 0.0:
        return 0
    x = (np.log10(value) - HIST_LOG10_MIN) * HIST_PER_DECADE
    if x < 0.0:
        return 0
    b = 1 + np.int64(x)
    return b if b < N_BINS else N_BINS - 1


@njit(cache=True, inline="always")
def observe(S, hist, value):
    b = S.ints[I_BATCH]
    if b >= 0:
        S.hist[b, hist, bin_of(value)] += 1.0


@njit(cache=True, inline="always")
def observe2(S, hist, other, value):
    """``observe`` into two histograms (one bin computation)."""
    b = S.ints[I_BATCH]
    if b >= 0:
        k = bin_of(value)
        S.hist[b, hist, k] += 1.0
        S.hist[b, other, k] += 1.0


@njit(cache=True, inline="always")
def advance_clock(S, when):
    """Integrate the waiting populations up to ``when`` (for Little's law), then move the clock."""
    b = S.ints[I_BATCH]
    if b >= 0:
        dt = when - S.reals[R_LAST_EVENT]
        S.stats[b, S_READ_WAITING_AREA] += S.ints[I_READ_WAITING] * dt
        S.stats[b, S_WRITE_WAITING_AREA] += S.ints[I_WRITE_WAITING] * dt
        S.stats[b, S_IN_FAULT_AREA] += S.ints[I_IN_FAULT] * dt
        S.stats[b, S_CACHE_AREA] += S.ints[I_CACHE_PAGES] * dt
        if S.ints[I_RW_READERS] > 0:
            S.stats[b, S_READ_BUSY_TIME] += dt
    S.reals[R_LAST_EVENT] = when
    S.reals[R_NOW] = when


@njit(cache=True, inline="always")
def observe_max(S, key, value):
    b = S.ints[I_BATCH]
    if b >= 0 and value > S.stats[b, key]:
        S.stats[b, key] = value


@njit(cache=True)
def fault_completed(S, Q):
    S.ints[I_FAULTS_DONE] += 1
    count(S, S_FAULTS, 1.0)
    operation_completed(S, Q)


@njit(cache=True)
def operation_completed(S, Q):
    """Count a completed operation (a fault or a writer section) and move the batch boundaries.

    Batches are equal numbers of operations, so that a scenario with writers and no faults (a
    writer-only M/G/1 check) is measured like any other.
    """
    S.ints[I_OPS_DONE] += 1
    b = S.ints[I_BATCH]
    now = S.reals[R_NOW]
    if b < 0:
        if b == -1 and S.ints[I_OPS_DONE] >= Q[Q_WARMUP_FAULTS]:
            S.ints[I_BATCH] = 0
            S.ints[I_BATCH_FAULTS] = 0
            S.reals[R_BATCH_START] = now
            S.reals[R_WARMUP_END] = now
        return
    S.ints[I_BATCH_FAULTS] += 1
    if S.ints[I_BATCH_FAULTS] >= Q[Q_BATCH_FAULTS]:
        S.stats[b, S_TIME] = now - S.reals[R_BATCH_START]
        S.reals[R_BATCH_START] = now
        S.ints[I_BATCH_FAULTS] = 0
        if b + 1 >= Q[Q_BATCHES]:
            # The target is reached: the loop stops after this event. The next batch, if the
            # arrays have room for it (a run that may be continued), opens now, so that the rest
            # of this event is counted where an uninterrupted run would count it; otherwise the
            # run records nothing more.
            S.ints[I_STOP] = 1
            S.ints[I_BATCH] = b + 1 if b + 1 < S.stats.shape[0] else -2
        else:
            S.ints[I_BATCH] = b + 1


@njit(cache=True)
def close_open_batch(S):
    """At an early stop, give the open batch its elapsed time so that rates stay defined.

    Not after a stop at the target (``I_STOP``): the batch open then has only just begun.
    """
    b = S.ints[I_BATCH]
    if b >= 0 and not S.ints[I_STOP]:
        S.stats[b, S_TIME] = S.reals[R_NOW] - S.reals[R_BATCH_START]


@njit(cache=True, inline="always")
def mmap_read_fast(S):
    """``mmap_lock`` taken for read at once (fast path or steal): an acquisition, no wait."""
    count(S, S_READ_ACQ, 1.0)
    observe(S, H_READ_WAIT, 0.0)


@njit(cache=True)
def mmap_read_wait_begins(S, entity):
    """``entity`` sleeps in ``down_read``'s slow path."""
    S.wait_start[entity] = S.reals[R_NOW]
    S.ints[I_READ_WAITING] += 1


@njit(cache=True)
def mmap_read_wait_ends(S, entity):
    """``entity`` runs again holding ``mmap_lock`` for read: count the acquisition and its wait
    (to the moment it runs: wake-up and CPU wait included, as the kernel's contention
    tracepoints see it)."""
    waited = S.reals[R_NOW] - S.wait_start[entity]
    S.ints[I_READ_WAITING] -= 1
    count(S, S_READ_ACQ, 1.0)
    count(S, S_READ_WAIT_SUM, waited)
    count(S, S_READ_WAIT_DONE, 1.0)
    count(S, S_READ_SLOW_WAIT_SUM, waited)
    observe(S, H_READ_WAIT, waited)
    observe_max(S, S_READ_WAIT_MAX, waited)
