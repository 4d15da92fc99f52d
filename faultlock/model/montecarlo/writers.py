"""``mmap_lock`` writers: mmap, munmap, mprotect, thread creation and exit, fork.

Writers arrive as a Poisson stream at ``writer_rate`` (``reference/kernel.md`` §6.5). Each takes
``mmap_lock`` for write (``mmap_write_lock_killable``: fast path, optimistic spinning, or the FIFO
wait list), then write-locks the VMAs it changes: none of the faulted VMAs (mmap of new memory, a
thread stack), one of them chosen uniformly (``writer_vma_share``: mprotect, merge, split) or all
(``writer_fork_share``: ``dup_mmap``). ``vma_start_write`` sleeps, holding ``mmap_lock`` for write,
until the VMA's readers leave: under ``vma_wait`` those readers may be waiting for a read. Then the
critical section runs on a CPU for ``writer_hold`` (law ``writer_hold_distribution``, spread
``writer_hold_cv``), and ``mmap_write_unlock`` releases the VMA write locks and the rwsem.

A writer's latency runs from its arrival to its release: lock wait, VMA drain and hold.
"""

import numpy as np
from numba import njit

from . import calendar, cpu, rng, rwsem, stats, vma_lock
from .state import (EV_ARRIVAL, EV_NONE, EV_SPIN, H_WRITE_WAIT, H_WRITER_LATENCY, I_OVERLOAD,
                    I_RW_READERS, I_RW_WRITER, I_W_FREE, I_WRITE_WAITING, K_W_HOLD_DONE, K_W_START,
                    P_WRITER_FORK_SHARE, P_WRITER_HOLD, P_WRITER_HOLD_CV, P_WRITER_RATE,
                    P_WRITER_VMA_SHARE, Q_ARRIVAL_ENTITY, Q_CPUS, Q_FIRST_WRITER, Q_THREADS, Q_VMAS,
                    Q_WRITER_LAW, R_NOW, S_WRITE_ACQ, S_WRITE_SLOW_WAIT_SUM, S_WRITE_WAIT_DONE,
                    S_WRITE_WAIT_MAX, S_WRITE_WAIT_SUM, S_WRITER_LATENCY_SUM, S_WRITERS_DONE, WRITER_FORK,
                    WRITER_NONE_VMA, WRITER_ONE_VMA)
from .stats import count, observe


@njit(cache=True, inline="always")
def _arrival_stream(Q):
    return 3 * Q[Q_THREADS]


@njit(cache=True, inline="always")
def _hold_stream(Q):
    return 3 * Q[Q_THREADS] + 1


@njit(cache=True, inline="always")
def _kind_stream(Q):
    return 3 * Q[Q_THREADS] + 2


@njit(cache=True)
def schedule_arrival(S, P, Q):
    if P[P_WRITER_RATE] <= 0.0:
        return
    source = Q[Q_ARRIVAL_ENTITY]
    S.ent_event[source] = EV_ARRIVAL
    gap = rng.exponential(S.streams, _arrival_stream(Q), 1.0 / P[P_WRITER_RATE])
    cpu.set_timer(S, source, S.reals[R_NOW] + gap)


@njit(cache=True)
def arrival(S, P, Q):
    """A writer arrives; the next arrival is scheduled."""
    schedule_arrival(S, P, Q)
    u = rng.uniform(S.streams, _kind_stream(Q))
    which = np.int32(rng.uniform(S.streams, _kind_stream(Q)) * Q[Q_VMAS])
    if S.ints[I_W_FREE] == 0:
        S.ints[I_OVERLOAD] = 1       # writers pile up: mmap_lock is past its capacity
        return
    S.ints[I_W_FREE] -= 1
    w = S.w_free[S.ints[I_W_FREE]]
    if u < P[P_WRITER_FORK_SHARE]:
        S.w_kind[w] = WRITER_FORK
    elif u < P[P_WRITER_FORK_SHARE] + P[P_WRITER_VMA_SHARE]:
        S.w_kind[w] = WRITER_ONE_VMA
    else:
        S.w_kind[w] = WRITER_NONE_VMA
    S.w_vma[w] = min(which, Q[Q_VMAS] - 1)
    S.w_next_vma[w] = 0
    S.w_draining[w] = 0
    S.w_start[w] = S.reals[R_NOW]
    entity = Q[Q_FIRST_WRITER] + w
    S.ent_cont[entity] = K_W_START
    cpu.request_cpu(S, Q, entity, True)


@njit(cache=True)
def _owner_running(S, Q):
    """``owner->on_cpu``: spinning on a writer owner makes sense only while it runs."""
    owner = S.ints[I_RW_WRITER]
    if owner < 0 or S.w_draining[owner - Q[Q_FIRST_WRITER]]:
        return False
    return Q[Q_CPUS] == 0 or S.ent_cpu[owner] >= 0


@njit(cache=True)
def start(S, P, Q, entity):
    """On a CPU: ``mmap_write_lock``."""
    w = entity - Q[Q_FIRST_WRITER]
    S.wait_start[entity] = S.reals[R_NOW]
    result = rwsem.down_write(S, P, Q, entity, _owner_running(S, Q))
    if result == rwsem.GRANTED:
        S.w_waiting[w] = 0
        granted(S, P, Q, entity)
        return
    S.w_waiting[w] = 1
    S.ints[I_WRITE_WAITING] += 1
    if result == rwsem.SPINNING:
        if S.ints[I_RW_WRITER] < 0:     # reader-owned: spin for the rspin threshold only
            S.ent_event[entity] = EV_SPIN
            limit = rwsem.reader_spin_limit(S.ints[I_RW_READERS])
            cpu.set_timer(S, entity, S.reals[R_NOW] + limit)
        else:
            S.ent_event[entity] = EV_NONE
        return
    cpu.release_cpu(S, Q, entity)


@njit(cache=True)
def granted(S, P, Q, entity):
    """Running with ``mmap_lock`` held for write."""
    w = entity - Q[Q_FIRST_WRITER]
    waited = S.reals[R_NOW] - S.wait_start[entity]
    if S.w_waiting[w]:
        S.w_waiting[w] = 0
        S.ints[I_WRITE_WAITING] -= 1
        count(S, S_WRITE_WAIT_DONE, 1.0)
        count(S, S_WRITE_SLOW_WAIT_SUM, waited)
    count(S, S_WRITE_ACQ, 1.0)
    count(S, S_WRITE_WAIT_SUM, waited)
    observe(S, H_WRITE_WAIT, waited)
    stats.observe_max(S, S_WRITE_WAIT_MAX, waited)
    _lock_vmas(S, P, Q, entity)


@njit(cache=True)
def _lock_vmas(S, P, Q, entity):
    """``vma_start_write`` on each VMA the operation changes, then the critical section."""
    w = entity - Q[Q_FIRST_WRITER]
    kind = S.w_kind[w]
    n = 0
    if kind == WRITER_ONE_VMA:
        n = 1
    elif kind == WRITER_FORK:
        n = Q[Q_VMAS]
    while S.w_next_vma[w] < n:
        vma = S.w_vma[w] if kind == WRITER_ONE_VMA else S.w_next_vma[w]
        if not vma_lock.vma_start_write(S, Q, entity, vma):
            S.w_draining[w] = 1
            _spinners_give_up(S, P, Q)          # the owner sleeps: rwsem_spin_on_owner stops
            cpu.release_cpu(S, Q, entity)
            return
        S.w_next_vma[w] += 1
    hold = rng.sample_law(S.streams, _hold_stream(Q), Q[Q_WRITER_LAW], P[P_WRITER_HOLD],
                          P[P_WRITER_HOLD_CV])
    cpu.burst(S, P, Q, entity, hold, K_W_HOLD_DONE)


@njit(cache=True)
def _spinners_give_up(S, P, Q):
    for spinner in rwsem.spinners_snapshot(S):
        calendar.cancel(S.heap_time, S.heap_ent, S.heap_pos, S.heap_size, spinner)
        S.ent_event[spinner] = EV_NONE
        rwsem.stop_spinning(S, P, Q, spinner)      # cannot take it: the owner holds it
        cpu.release_cpu(S, Q, spinner)


@njit(cache=True)
def drained(S, P, Q, entity):
    """Woken by the last reader of the VMA being write-locked."""
    w = entity - Q[Q_FIRST_WRITER]
    vma = S.w_vma[w] if S.w_kind[w] == WRITER_ONE_VMA else S.w_next_vma[w]
    vma_lock.vma_drained(S, Q, vma)
    S.w_draining[w] = 0
    S.w_next_vma[w] += 1
    _lock_vmas(S, P, Q, entity)


@njit(cache=True)
def hold_done(S, P, Q, entity):
    """``mmap_write_unlock``: ``vma_end_write_all``, ``up_write``."""
    w = entity - Q[Q_FIRST_WRITER]
    kind = S.w_kind[w]
    if kind == WRITER_ONE_VMA:
        vma_lock.vma_end_write(S, S.w_vma[w])
    elif kind == WRITER_FORK:
        for vma in range(Q[Q_VMAS]):
            vma_lock.vma_end_write(S, vma)
    rwsem.up_write(S, P, Q)
    latency = S.reals[R_NOW] - S.w_start[w]
    count(S, S_WRITERS_DONE, 1.0)
    count(S, S_WRITER_LATENCY_SUM, latency)
    observe(S, H_WRITER_LATENCY, latency)
    stats.operation_completed(S, Q)
    S.w_free[S.ints[I_W_FREE]] = w
    S.ints[I_W_FREE] += 1
    S.ent_event[entity] = EV_NONE
    cpu.release_cpu(S, Q, entity)


@njit(cache=True)
def woken(S, P, Q, entity):
    """The head writer, woken by ``rwsem_wake``, tries for the lock; if it fails it sleeps again."""
    if rwsem.writer_woken(S, P, Q, entity):
        granted(S, P, Q, entity)
    else:
        cpu.release_cpu(S, Q, entity)


@njit(cache=True)
def spin_timeout(S, P, Q, entity):
    """The reader-owned spin threshold passed: queue (``RWSEM_NONSPINNABLE``)."""
    if rwsem.stop_spinning(S, P, Q, entity):
        granted(S, P, Q, entity)
    else:
        cpu.release_cpu(S, Q, entity)
