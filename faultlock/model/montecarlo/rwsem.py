"""``mmap_lock``: a Linux reader-writer semaphore, and four textbook disciplines to compare with.

The ``linux`` discipline follows ``kernel/locking/rwsem.c`` (v6.1-6.6; ``reference/kernel.md`` §2):

* reader fast path only when no writer holds it, nobody waits and HANDOFF is clear
  (``RWSEM_READ_FAILED_MASK``): once anyone waits, every new reader takes the slow path;
* slow path (``rwsem_down_read_slowpath``): a reader queues if the lock is reader-owned and others
  wait (commit 2f06f702925b); it *steals* the lock if no writer holds it and HANDOFF is clear, and a
  first stealer wakes the queued readers (``rwsem_mark_wake(RWSEM_WAKE_READ_OWNED)``); otherwise it
  queues FIFO;
* on release (``rwsem_wake``): a writer at the head is woken alone and must win
  ``rwsem_try_write_lock`` itself when it runs; meanwhile readers and spinning writers may steal the
  lock. A reader at the head gets up to ``reader_wake_batch`` (256, ``MAX_READERS_WAKEUP``) queued
  readers granted at once, *skipping queued writers*; they hold the lock while they wake up;
* the first waiter sets HANDOFF once it has waited ``handoff_timeout`` (``RWSEM_WAIT_TIMEOUT``,
  4 ms): stealing stops and the lock goes to it;
* writers spin optimistically (``rwsem_optimistic_spin``) on a running writer owner, and on a
  reader-owned lock for ``(20 + min(readers, 30)) / 2`` µs, taking the lock whenever it is free and
  HANDOFF is clear. A spinner keeps its CPU.

Textbook disciplines, no stealing, no spinning, direct hand-over to the woken: ``fifo`` (task-fair:
a reader at the head takes the readers up to the first writer, Johnson 1995), ``reader_pref``,
``writer_pref`` and ``phase_fair`` (Brandenburg & Anderson 2009: on a writer's release all waiting
readers enter; new readers wait behind a waiting writer).

``downgrade_write`` turns the write owner into a reader (``mmap_write_downgrade``, used by munmap
after it detached the VMAs: ``mm/vma.c: vms_complete_munmap_vmas``). In ``linux``
(``__downgrade_write`` -> ``rwsem_downgrade_wake`` -> ``rwsem_mark_wake(RWSEM_WAKE_READ_OWNED)``)
the queued readers are granted at once, up to ``reader_wake_batch`` and skipping queued writers,
*if the first waiter is a reader*; a writer at the head is not woken (the lock is still held, for
read) and keeps everyone behind it waiting. The textbook disciplines grant what a reader arriving
now would get: ``fifo`` the readers at the head up to the first writer, ``reader_pref`` and
``phase_fair`` (a writer's release lets every waiting reader in) all waiting readers,
``writer_pref`` none while a writer waits.
"""

import numpy as np
from numba import njit

from . import cpu
from .stats import count
from .state import (EV_SPIN, I_RW_HANDOFF, I_RW_QHEAD, I_RW_QLEN, I_RW_QTAIL, I_RW_QWRITERS,
                    I_RW_READERS, I_RW_WRITER, I_SPIN_LEN, K_MMAP_GRANTED, K_W_GRANTED, K_W_WOKEN,
                    P_HANDOFF, P_HZ, Q_RWSEM, Q_WAKE_BATCH, Q_WRITER_SPIN, R_NOW, RWSEM_FIFO,
                    RWSEM_LINUX, RWSEM_PHASE_FAIR, RWSEM_READER_PREF, RWSEM_WRITER_PREF,
                    S_READ_BUSY_PERIODS)

GRANTED = 0
SPINNING = 1
QUEUED = 2


@njit(cache=True, inline="always")
def _add_reader(S):
    if S.ints[I_RW_READERS] == 0:
        count(S, S_READ_BUSY_PERIODS, 1.0)
    S.ints[I_RW_READERS] += 1


# ---- the wait list --------------------------------------------------------------------------
@njit(cache=True)
def _enqueue(S, entity, is_writer):
    S.rw_is_writer[entity] = is_writer
    S.rw_woken[entity] = 0
    S.rw_enq_time[entity] = S.reals[R_NOW]
    S.rw_next[entity] = -1
    tail = S.ints[I_RW_QTAIL]
    S.rw_prev[entity] = tail
    if tail >= 0:
        S.rw_next[tail] = entity
    else:
        S.ints[I_RW_QHEAD] = entity
    S.ints[I_RW_QTAIL] = entity
    S.ints[I_RW_QLEN] += 1
    S.ints[I_RW_QWRITERS] += is_writer


@njit(cache=True)
def _unlink(S, entity):
    prev = S.rw_prev[entity]
    nxt = S.rw_next[entity]
    if prev >= 0:
        S.rw_next[prev] = nxt
    else:
        S.ints[I_RW_QHEAD] = nxt
    if nxt >= 0:
        S.rw_prev[nxt] = prev
    else:
        S.ints[I_RW_QTAIL] = prev
    S.ints[I_RW_QLEN] -= 1
    S.ints[I_RW_QWRITERS] -= S.rw_is_writer[entity]
    if S.ints[I_RW_QLEN] == 0:
        S.ints[I_RW_HANDOFF] = 0   # HANDOFF belongs to a waiter; none left


@njit(cache=True)
def _grant_reader(S, P, entity):
    _unlink(S, entity)
    _add_reader(S)
    cpu.wake(S, P, entity, K_MMAP_GRANTED)


@njit(cache=True)
def _grant_writer(S, P, entity):
    _unlink(S, entity)
    S.ints[I_RW_WRITER] = entity
    cpu.wake(S, P, entity, K_W_GRANTED)


@njit(cache=True)
def _wake_readers(S, P, limit, stop_at_writer):
    """Grant up to ``limit`` queued readers, from the head, skipping (or stopping at) writers."""
    entity = S.ints[I_RW_QHEAD]
    granted = 0
    while entity >= 0 and granted < limit:
        nxt = S.rw_next[entity]
        if S.rw_is_writer[entity]:
            if stop_at_writer:
                break
        else:
            _grant_reader(S, P, entity)
            granted += 1
        entity = nxt
    return granted


# ---- spinners (linux) -------------------------------------------------------------------------
@njit(cache=True)
def _remove_spinner(S, entity):
    n = S.ints[I_SPIN_LEN]
    found = False
    for i in range(n):
        if found:
            S.spinners[i - 1] = S.spinners[i]
        elif S.spinners[i] == entity:
            found = True
    if found:
        S.ints[I_SPIN_LEN] = n - 1
    return found


@njit(cache=True)
def reader_spin_limit(readers):
    """``rwsem_rspin_threshold``: (20 + readers, at most 30) * NSEC_PER_USEC / 2."""
    return (20.0 + min(readers, 30)) * 0.5e-6


# ---- read side ----------------------------------------------------------------------------------
@njit(cache=True)
def down_read(S, P, Q, entity):
    """``down_read``: True if granted now; otherwise ``entity`` is queued and must sleep."""
    writer = S.ints[I_RW_WRITER]
    qlen = S.ints[I_RW_QLEN]
    discipline = Q[Q_RWSEM]
    if discipline == RWSEM_LINUX:
        handoff = S.ints[I_RW_HANDOFF]
        if writer < 0 and qlen == 0 and handoff == 0:          # fast path
            _add_reader(S)
            return True
        if S.ints[I_RW_READERS] > 0 and writer < 0 and qlen > 0:
            _enqueue(S, entity, 0)                              # no stealing among active readers
            return False
        if writer < 0 and handoff == 0:                         # rwsem_rlock_steal
            _add_reader(S)
            if qlen > 0:                                        # RWSEM_WAKE_READ_OWNED
                _wake_readers(S, P, Q[Q_WAKE_BATCH], False)
            return True
        if qlen == 0 and writer < 0:
            _add_reader(S)
            return True
        _enqueue(S, entity, 0)
        return False
    if discipline == RWSEM_FIFO:
        ok = writer < 0 and qlen == 0
    elif discipline == RWSEM_READER_PREF:
        ok = writer < 0
    else:  # writer preference and phase-fair: a waiting writer stops new readers
        ok = writer < 0 and S.ints[I_RW_QWRITERS] == 0
    if ok:
        _add_reader(S)
        return True
    _enqueue(S, entity, 0)
    return False


@njit(cache=True)
def up_read(S, P, Q):
    S.ints[I_RW_READERS] -= 1
    if S.ints[I_RW_READERS] == 0 and S.ints[I_RW_WRITER] < 0:
        _on_free(S, P, Q, False)


@njit(cache=True, inline="always")
def handoff_due(S, P, entity):
    """The waiter ``entity`` has waited ``RWSEM_WAIT_TIMEOUT``: it may set HANDOFF.

    In continuous time (``tick_hz`` 0) after exactly ``handoff_timeout``. In jiffies, as the
    kernel: ``waiter.timeout = jiffies + RWSEM_WAIT_TIMEOUT`` at enqueue and the test is
    ``time_after(jiffies, waiter->timeout)``, so the deadline passes at the jiffy after it:
    between ``J`` and ``J + 1`` jiffies after the enqueue, ``J = ceil(handoff_timeout * HZ)``
    (at HZ = 250 and 4 ms, 4 to 8 ms, depending on where in a jiffy the waiter queued).
    """
    hz = P[P_HZ]
    if hz <= 0.0:
        return S.reals[R_NOW] - S.rw_enq_time[entity] >= P[P_HANDOFF]
    deadline = np.floor(S.rw_enq_time[entity] * hz) + np.ceil(P[P_HANDOFF] * hz - 1e-9)
    return np.floor(S.reals[R_NOW] * hz) > deadline


# ---- write side ---------------------------------------------------------------------------------
@njit(cache=True)
def down_write(S, P, Q, entity, owner_running):
    """``down_write``: GRANTED, SPINNING (keeps its CPU; an EV_SPIN timer may end the spin) or
    QUEUED.

    ``owner_running`` tells whether a writer owner is on a CPU (not sleeping on a VMA drain).
    """
    readers = S.ints[I_RW_READERS]
    writer = S.ints[I_RW_WRITER]
    qlen = S.ints[I_RW_QLEN]
    if Q[Q_RWSEM] != RWSEM_LINUX:
        free = readers == 0 and writer < 0
        if Q[Q_RWSEM] == RWSEM_WRITER_PREF or Q[Q_RWSEM] == RWSEM_PHASE_FAIR:
            ok = free and S.ints[I_RW_QWRITERS] == 0
        else:
            ok = free and qlen == 0
        if ok:
            S.ints[I_RW_WRITER] = entity
            return GRANTED
        _enqueue(S, entity, 1)
        return QUEUED
    handoff = S.ints[I_RW_HANDOFF]
    if readers == 0 and writer < 0 and handoff == 0:
        # fast path when nobody waits; otherwise rwsem_try_write_lock_unqueued steals it
        S.ints[I_RW_WRITER] = entity
        return GRANTED
    if Q[Q_WRITER_SPIN] and handoff == 0:
        if writer >= 0 and owner_running:
            S.spinners[S.ints[I_SPIN_LEN]] = entity
            S.ints[I_SPIN_LEN] += 1
            return SPINNING
        if writer < 0 and readers > 0:
            S.spinners[S.ints[I_SPIN_LEN]] = entity
            S.ints[I_SPIN_LEN] += 1
            return SPINNING                                    # caller arms the EV_SPIN timer
    _enqueue(S, entity, 1)
    if readers == 0 and writer < 0 and (handoff == 0 or S.ints[I_RW_QHEAD] == entity):
        _unlink(S, entity)
        S.ints[I_RW_WRITER] = entity
        return GRANTED
    return QUEUED


@njit(cache=True)
def stop_spinning(S, P, Q, entity):
    """A spinner gives up (timeout, or its owner went to sleep): queue it. True if that took the
    lock."""
    if not _remove_spinner(S, entity):
        return False
    _enqueue(S, entity, 1)
    if (S.ints[I_RW_READERS] == 0 and S.ints[I_RW_WRITER] < 0
            and (S.ints[I_RW_HANDOFF] == 0 or S.ints[I_RW_QHEAD] == entity)):
        _unlink(S, entity)
        S.ints[I_RW_WRITER] = entity
        return True
    return False


@njit(cache=True)
def spinners_snapshot(S):
    return S.spinners[:S.ints[I_SPIN_LEN]].copy()


@njit(cache=True)
def writer_woken(S, P, Q, entity):
    """A woken head writer runs ``rwsem_try_write_lock``. True if it took the lock."""
    S.rw_woken[entity] = 0
    first = S.ints[I_RW_QHEAD] == entity
    if (S.ints[I_RW_READERS] == 0 and S.ints[I_RW_WRITER] < 0
            and (S.ints[I_RW_HANDOFF] == 0 or first)):
        _unlink(S, entity)
        S.ints[I_RW_WRITER] = entity
        return True
    if first and handoff_due(S, P, entity):
        S.ints[I_RW_HANDOFF] = 1   # from now on it spins on the owner and gets the lock next
    return False


@njit(cache=True)
def up_write(S, P, Q):
    S.ints[I_RW_WRITER] = -1
    _on_free(S, P, Q, True)


@njit(cache=True)
def downgrade_write(S, P, Q):
    """``downgrade_write``: the write owner keeps the lock for read; queued readers may enter.

    Optimistic spinners on the (running) write owner see a reader-owned lock from now on
    (``rwsem_spin_on_owner`` returns OWNER_READER): they spin for the reader threshold only, so
    each gets its ``EV_SPIN`` timer now.
    """
    S.ints[I_RW_WRITER] = -1
    _add_reader(S)
    now = S.reals[R_NOW]
    for i in range(S.ints[I_SPIN_LEN]):
        spinner = S.spinners[i]
        if S.ent_event[spinner] != EV_SPIN:
            S.ent_event[spinner] = EV_SPIN
            cpu.set_timer(S, spinner, now + reader_spin_limit(S.ints[I_RW_READERS]))
    head = S.ints[I_RW_QHEAD]
    if head < 0:
        return
    discipline = Q[Q_RWSEM]
    big = 1 << 40
    if discipline == RWSEM_LINUX:
        if S.rw_is_writer[head]:
            return                      # rwsem_mark_wake(READ_OWNED): a writer first wakes nobody
        S.ints[I_RW_HANDOFF] = 0        # readers woken: RWSEM_FLAG_HANDOFF is cleared
        _wake_readers(S, P, Q[Q_WAKE_BATCH], False)
    elif discipline == RWSEM_FIFO:
        _wake_readers(S, P, big, True)
    elif discipline == RWSEM_WRITER_PREF:
        if S.ints[I_RW_QWRITERS] == 0:
            _wake_readers(S, P, big, False)
    else:                               # reader preference, phase-fair
        _wake_readers(S, P, big, False)


@njit(cache=True)
def _on_free(S, P, Q, by_writer):
    """The lock has no holder: hand it on according to the discipline."""
    head = S.ints[I_RW_QHEAD]
    discipline = Q[Q_RWSEM]
    if discipline == RWSEM_LINUX:
        handoff = S.ints[I_RW_HANDOFF]
        if S.ints[I_SPIN_LEN] > 0 and handoff == 0:
            spinner = S.spinners[0]
            _remove_spinner(S, spinner)
            S.ints[I_RW_WRITER] = spinner
            cpu.run_now(S, spinner, K_W_GRANTED)               # it is on a CPU already
            # rwsem_wake still runs: the head waiter finds the lock stolen, and sets HANDOFF if
            # it has waited past the timeout.
            if head >= 0 and handoff_due(S, P, head):
                S.ints[I_RW_HANDOFF] = 1
            return
        if head < 0:
            return
        if S.rw_is_writer[head]:
            if handoff:
                # The first waiter set HANDOFF and spins on the owner: the lock is its own.
                _unlink(S, head)
                S.ints[I_RW_WRITER] = head
                if S.rw_woken[head]:
                    # Already woken and on its way to a CPU: it runs once, holding the lock.
                    S.ent_cont[head] = K_W_GRANTED
                else:
                    cpu.wake(S, P, head, K_W_GRANTED)
                S.rw_woken[head] = 0
            elif not S.rw_woken[head]:
                S.rw_woken[head] = 1
                cpu.wake(S, P, head, K_W_WOKEN)
        else:
            S.ints[I_RW_HANDOFF] = 0
            _wake_readers(S, P, Q[Q_WAKE_BATCH], False)
        return
    if head < 0:
        return
    big = 1 << 40
    if discipline == RWSEM_FIFO:
        if S.rw_is_writer[head]:
            _grant_writer(S, P, head)
        else:
            _wake_readers(S, P, big, True)
    elif discipline == RWSEM_READER_PREF:
        if S.ints[I_RW_QLEN] > S.ints[I_RW_QWRITERS]:
            _wake_readers(S, P, big, False)
        else:
            _grant_writer(S, P, head)
    elif discipline == RWSEM_WRITER_PREF:
        if S.ints[I_RW_QWRITERS] > 0:
            _grant_writer(S, P, _first_writer(S))
        else:
            _wake_readers(S, P, big, False)
    else:  # phase-fair
        readers_waiting = S.ints[I_RW_QLEN] > S.ints[I_RW_QWRITERS]
        if (by_writer and readers_waiting) or S.ints[I_RW_QWRITERS] == 0:
            _wake_readers(S, P, big, False)
        else:
            _grant_writer(S, P, _first_writer(S))


@njit(cache=True)
def _first_writer(S):
    entity = S.ints[I_RW_QHEAD]
    while entity >= 0 and not S.rw_is_writer[entity]:
        entity = S.rw_next[entity]
    return entity
