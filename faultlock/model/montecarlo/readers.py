"""Other ``mmap_lock`` readers: paths that take it for read without faulting.

MGLRU's aging walks of the page tables, ``/proc/pid/maps`` and ``smaps`` readers,
``get_user_pages``, ``madvise`` (``reference/kernel.md`` §5) take ``mmap_lock`` for read and
contend with faults and writers like any reader. They arrive as a Poisson stream at
``reader_rate`` and hold the lock for an exponential ``reader_hold`` of CPU time. Their waits
count among the ``mmap_lock`` read acquisitions and waits, as they do in the kernel's
``lock:contention_*`` numbers.
"""

from numba import njit

from . import cpu, rng, rwsem, stats
from .state import (EV_NONE, EV_READER_ARRIVAL, I_OVERLOAD, I_R_FREE, K_R_HOLD_DONE, K_R_START,
                    P_READER_HOLD, P_READER_RATE, Q_FIRST_READER, Q_READER_ARRIVAL, Q_THREADS,
                    R_NOW)


@njit(cache=True, inline="always")
def _arrival_stream(Q):
    return 3 * Q[Q_THREADS] + 4


@njit(cache=True, inline="always")
def _hold_stream(Q):
    return 3 * Q[Q_THREADS] + 5


@njit(cache=True)
def schedule_arrival(S, P, Q):
    if P[P_READER_RATE] <= 0.0:
        return
    source = Q[Q_READER_ARRIVAL]
    S.ent_event[source] = EV_READER_ARRIVAL
    gap = rng.exponential(S.streams, _arrival_stream(Q), 1.0 / P[P_READER_RATE])
    cpu.set_timer(S, source, S.reals[R_NOW] + gap)


@njit(cache=True)
def arrival(S, P, Q):
    schedule_arrival(S, P, Q)
    if S.ints[I_R_FREE] == 0:
        S.ints[I_OVERLOAD] = 1
        return
    S.ints[I_R_FREE] -= 1
    entity = Q[Q_FIRST_READER] + S.r_free[S.ints[I_R_FREE]]
    S.ent_cont[entity] = K_R_START
    cpu.request_cpu(S, P, Q, entity, True)


@njit(cache=True)
def start(S, P, Q, entity):
    """On a CPU: ``mmap_read_lock``."""
    if rwsem.down_read(S, P, Q, entity):
        stats.mmap_read_fast(S)
        _hold(S, P, Q, entity)
        return
    stats.mmap_read_wait_begins(S, entity)
    cpu.release_cpu(S, Q, entity)


@njit(cache=True)
def granted(S, P, Q, entity):
    stats.mmap_read_wait_ends(S, entity)
    _hold(S, P, Q, entity)


@njit(cache=True)
def _hold(S, P, Q, entity):
    hold = rng.exponential(S.streams, _hold_stream(Q), P[P_READER_HOLD])
    cpu.burst(S, P, Q, entity, hold, K_R_HOLD_DONE)


@njit(cache=True)
def hold_done(S, P, Q, entity):
    """``mmap_read_unlock``."""
    rwsem.up_read(S, P, Q)
    S.r_free[S.ints[I_R_FREE]] = entity - Q[Q_FIRST_READER]
    S.ints[I_R_FREE] += 1
    S.ent_event[entity] = EV_NONE
    cpu.release_cpu(S, Q, entity)
