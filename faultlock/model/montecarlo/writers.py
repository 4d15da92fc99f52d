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

Writer *threads* (``writer_mode`` periodic or flat_out, SCENARIO_SPEC.md §2) are the harness's
writers (``faultlock/measure/harness.c``, ``writer_thread``): ``writer_threads`` closed-loop
threads, each in its own writer slot for the whole run. One operation (an mmap + munmap, or an
mprotect) is ``writer_locks_per_op`` acquisitions, each after ``writer_gap_cpu`` of CPU outside
the lock (syscall entry and exit, VMA allocation, the munmap zap after the downgrade), each the
path above. A periodic thread keeps absolute deadlines, one period apart from t = 0, and sleeps
until the next one (``clock_nanosleep(TIMER_ABSTIME)``; the wake-up costs ``wakeup_latency``); one
that fell more than a period behind restarts from now, with no catch-up burst. A flat-out thread
starts its next operation at once. Writers in another process (``writer_where='process'``, the
harness's control) run the same gaps and holds on the CPUs but take no lock of ours; their holds
count as operations for the batches all the same.

Every writer's CPU (gaps, holds, optimistic spinning) is counted for ``writer_cpu_share``; a
Poisson writer is an operation of one acquisition.
"""

import numpy as np
from numba import njit

from . import calendar, cpu, rng, rwsem, stats, vma_lock
from .state import (EV_ARRIVAL, EV_NONE, EV_SPIN, EV_WAKE, H_WRITE_WAIT, H_WRITER_LATENCY,
                    H_WRITER_OP_LATENCY, I_OVERLOAD, I_RW_READERS, I_RW_WRITER, I_W_FREE,
                    I_WRITE_WAITING, K_W_GAP_DONE, K_W_HOLD_DONE, K_W_NEXT_ACQ, K_W_OP_START,
                    K_W_PROC_HOLD_DONE, K_W_START, P_WAKE, P_WRITER_FORK_SHARE, P_WRITER_GAP,
                    P_WRITER_HOLD, P_WRITER_HOLD_CV, P_WRITER_PERIOD, P_WRITER_RATE,
                    P_WRITER_VMA_SHARE, Q_ARRIVAL_ENTITY, Q_CPUS, Q_FIRST_WRITER, Q_THREADS, Q_VMAS,
                    Q_WRITER_LAW, Q_WRITER_LOCKS, Q_WRITER_MODE, Q_WRITER_PROCESS, Q_WRITER_STREAM,
                    Q_WRITER_THREADS, R_NOW, S_WRITE_ACQ, S_WRITE_SLOW_WAIT_SUM, S_WRITE_WAIT_DONE,
                    S_WRITE_WAIT_MAX, S_WRITE_WAIT_SUM, S_WRITER_CPU, S_WRITER_LATENCY_SUM,
                    S_WRITER_OP_LATENCY_SUM, S_WRITER_OPS, S_WRITERS_DONE, WRITER_FORK,
                    WRITER_NONE_VMA, WRITER_ONE_VMA, WRITER_PERIODIC, WRITER_POISSON)
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
    _set_kind(S, P, Q, w, u, which)
    entity = Q[Q_FIRST_WRITER] + w
    S.ent_cont[entity] = K_W_START
    cpu.request_cpu(S, P, Q, entity, True)


@njit(cache=True, inline="always")
def _set_kind(S, P, Q, w, u, which):
    """What the write section of slot ``w`` write-locks (from two uniforms), from now on."""
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


@njit(cache=True, inline="always")
def _end_spin(S, w):
    """An optimistic spin of slot ``w`` ends (granted or given up): its CPU time is the writer's."""
    began = S.w_spin_start[w]
    if began >= 0.0:
        count(S, S_WRITER_CPU, S.reals[R_NOW] - began)
        S.w_spin_start[w] = -1.0


@njit(cache=True)
def owner_running(S, Q):
    """``owner->on_cpu``: spinning on a writer owner makes sense only while it runs. The owner is
    a writer, or a faulting thread in its round's munmap or mmap (``rounds``)."""
    owner = S.ints[I_RW_WRITER]
    if owner < 0:
        return False
    if owner < Q[Q_THREADS]:
        if S.t_draining[owner]:
            return False
    elif S.w_draining[owner - Q[Q_FIRST_WRITER]]:
        return False
    return Q[Q_CPUS] == 0 or S.ent_cpu[owner] >= 0


@njit(cache=True)
def start(S, P, Q, entity):
    """On a CPU: ``mmap_write_lock``."""
    w = entity - Q[Q_FIRST_WRITER]
    S.wait_start[entity] = S.reals[R_NOW]
    result = rwsem.down_write(S, P, Q, entity, owner_running(S, Q))
    if result == rwsem.GRANTED:
        S.w_waiting[w] = 0
        granted(S, P, Q, entity)
        return
    S.w_waiting[w] = 1
    S.ints[I_WRITE_WAITING] += 1
    if result == rwsem.SPINNING:
        S.w_spin_start[w] = S.reals[R_NOW]
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
    _end_spin(S, w)
    waited = S.reals[R_NOW] - S.wait_start[entity]
    record_write_grant(S, waited, S.w_waiting[w] != 0)
    S.w_waiting[w] = 0
    _lock_vmas(S, P, Q, entity)


@njit(cache=True)
def record_write_grant(S, waited, slow):
    """Count a write acquisition of ``mmap_lock`` and its wait (``slow``: it waited, spinning or
    queued, and was counted among the write waiters)."""
    if slow:
        S.ints[I_WRITE_WAITING] -= 1
        count(S, S_WRITE_WAIT_DONE, 1.0)
        count(S, S_WRITE_SLOW_WAIT_SUM, waited)
    count(S, S_WRITE_ACQ, 1.0)
    count(S, S_WRITE_WAIT_SUM, waited)
    observe(S, H_WRITE_WAIT, waited)
    stats.observe_max(S, S_WRITE_WAIT_MAX, waited)


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
            spinners_give_up(S, P, Q)           # the owner sleeps: rwsem_spin_on_owner stops
            cpu.release_cpu(S, Q, entity)
            return
        S.w_next_vma[w] += 1
    stream = _hold_stream(Q) if Q[Q_WRITER_MODE] == WRITER_POISSON else Q[Q_WRITER_STREAM] + w
    hold = rng.sample_law(S.streams, stream, Q[Q_WRITER_LAW], P[P_WRITER_HOLD],
                          P[P_WRITER_HOLD_CV])
    count(S, S_WRITER_CPU, hold)
    cpu.burst(S, P, Q, entity, hold, K_W_HOLD_DONE)


@njit(cache=True)
def spinners_give_up(S, P, Q):
    """The write owner sleeps: every optimistic spinner queues (a round thread among them, whose
    spin is no writer's CPU)."""
    for spinner in rwsem.spinners_snapshot(S):
        if spinner >= Q[Q_FIRST_WRITER]:
            _end_spin(S, spinner - Q[Q_FIRST_WRITER])
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
    if Q[Q_WRITER_MODE] != WRITER_POISSON:
        observe(S, H_WRITER_LATENCY, latency)
        stats.operation_completed(S, Q)
        _acquisition_done(S, P, Q, entity)
        return
    count(S, S_WRITER_OPS, 1.0)              # a Poisson writer: one acquisition per operation
    count(S, S_WRITER_OP_LATENCY_SUM, latency)
    stats.observe2(S, H_WRITER_LATENCY, H_WRITER_OP_LATENCY, latency)
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
    _end_spin(S, entity - Q[Q_FIRST_WRITER])
    if rwsem.stop_spinning(S, P, Q, entity):
        granted(S, P, Q, entity)
    else:
        cpu.release_cpu(S, Q, entity)


# ---- writer threads (closed loop) ----------------------------------------------------------
@njit(cache=True)
def start_threads(S, P, Q):
    """At t = 0 every writer thread enters its loop (periodic: first sleeps one period)."""
    if Q[Q_WRITER_MODE] == WRITER_POISSON:
        return
    for w in range(Q[Q_WRITER_THREADS]):
        entity = Q[Q_FIRST_WRITER] + w
        S.w_next[w] = 0.0
        if Q[Q_WRITER_MODE] == WRITER_PERIODIC:
            _sleep_until_next(S, P, Q, entity, False)
        else:
            S.ent_cont[entity] = K_W_OP_START
            cpu.request_cpu(S, P, Q, entity, False)


@njit(cache=True)
def _sleep_until_next(S, P, Q, entity, on_cpu):
    """``next += period``; restart from now if more than a period behind; sleep until ``next``."""
    w = entity - Q[Q_FIRST_WRITER]
    period = P[P_WRITER_PERIOD]
    now = S.reals[R_NOW]
    deadline = S.w_next[w] + period
    if deadline + period < now:
        deadline = now
    S.w_next[w] = deadline
    if deadline <= now:                     # the deadline has passed: no sleep, no wake-up
        if on_cpu:
            op_start(S, P, Q, entity)
        else:
            S.ent_cont[entity] = K_W_OP_START
            cpu.request_cpu(S, P, Q, entity, False)
        return
    if on_cpu:
        cpu.release_cpu(S, Q, entity)
    S.ent_cont[entity] = K_W_OP_START
    S.ent_event[entity] = EV_WAKE
    S.burst_rem[entity] = 0.0
    cpu.set_timer(S, entity, deadline + P[P_WAKE])


@njit(cache=True)
def op_start(S, P, Q, entity):
    """On a CPU: a writer thread begins an operation of ``writer_locks_per_op`` acquisitions."""
    w = entity - Q[Q_FIRST_WRITER]
    S.w_op_start[w] = S.reals[R_NOW]
    S.w_done_locks[w] = 0
    next_acquisition(S, P, Q, entity)


@njit(cache=True)
def next_acquisition(S, P, Q, entity):
    """An acquisition boundary: give the CPU to the entities queued for one (a flat-out thread
    never sleeps), then the CPU outside the lock and the acquisition."""
    if cpu.should_yield(S, P, Q, entity):
        cpu.yield_cpu(S, Q, entity, K_W_NEXT_ACQ)
        return
    resume_acquisition(S, P, Q, entity)


@njit(cache=True)
def resume_acquisition(S, P, Q, entity):
    """The CPU outside the lock before an acquisition, then the acquisition (``K_W_NEXT_ACQ``:
    after a yield the thread runs on, it does not yield again at once)."""
    gap = P[P_WRITER_GAP]
    if gap > 0.0:
        count(S, S_WRITER_CPU, gap)
        cpu.burst(S, P, Q, entity, gap, K_W_GAP_DONE)
    else:
        gap_done(S, P, Q, entity)


@njit(cache=True)
def gap_done(S, P, Q, entity):
    """``mmap_write_lock`` and the write section (this process), or a lock-free hold (another)."""
    w = entity - Q[Q_FIRST_WRITER]
    stream = Q[Q_WRITER_STREAM] + w
    if Q[Q_WRITER_PROCESS]:
        hold = rng.sample_law(S.streams, stream, Q[Q_WRITER_LAW], P[P_WRITER_HOLD],
                              P[P_WRITER_HOLD_CV])
        count(S, S_WRITER_CPU, hold)
        cpu.burst(S, P, Q, entity, hold, K_W_PROC_HOLD_DONE)
        return
    u = rng.uniform(S.streams, stream)
    which = np.int32(rng.uniform(S.streams, stream) * Q[Q_VMAS])
    _set_kind(S, P, Q, w, u, which)
    start(S, P, Q, entity)


@njit(cache=True)
def acquisition_done(S, P, Q, entity):
    """A writer in another process finished a lock-free hold (``K_W_PROC_HOLD_DONE``). It counts
    as an operation for the batches, as a write section of this process would, so that a cell and
    its control run for the same number of operations."""
    stats.operation_completed(S, Q)
    _acquisition_done(S, P, Q, entity)


@njit(cache=True)
def _acquisition_done(S, P, Q, entity):
    """One acquisition done: the next one, or the end of the operation and the next operation."""
    w = entity - Q[Q_FIRST_WRITER]
    S.w_done_locks[w] += 1
    if S.w_done_locks[w] < Q[Q_WRITER_LOCKS]:
        next_acquisition(S, P, Q, entity)
        return
    latency = S.reals[R_NOW] - S.w_op_start[w]
    count(S, S_WRITER_OPS, 1.0)
    count(S, S_WRITER_OP_LATENCY_SUM, latency)
    observe(S, H_WRITER_OP_LATENCY, latency)
    if Q[Q_WRITER_MODE] == WRITER_PERIODIC:
        _sleep_until_next(S, P, Q, entity, True)
    else:
        op_start(S, P, Q, entity)
