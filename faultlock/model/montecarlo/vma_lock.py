"""The per-VMA lock (``mm/mmap_lock.c``, vm_refcnt era, 6.15+; ``reference/kernel.md`` §3.3).

A fault's ``vma_start_read`` never blocks: it fails (VMA_LOCK_ABORT, and the fault falls back to
``mmap_lock``) when the VMA is write-locked in the current ``mmap_lock`` write section, or when a
writer has set the exclusion flag and is draining its readers. A writer holding ``mmap_lock`` for
write calls ``vma_start_write`` for each VMA it changes: it excludes new readers, sleeps until the
readers already inside leave (``rcuwait_wait_event`` on ``vma_writer_wait``), and marks the VMA
write-locked until ``mmap_write_unlock`` releases every VMA write lock at once
(``vma_end_write_all``).
"""

from numba import njit

from . import cpu
from .state import I_VIOLATIONS, K_W_DRAINED, Q_CHECK


@njit(cache=True)
def vma_start_read(S, Q, vma):
    """True if the fault now holds ``vma`` for read."""
    if S.v_write_locked[vma] or S.v_drainer[vma] >= 0:
        return False
    S.v_readers[vma] += 1
    return True


@njit(cache=True)
def vma_end_read(S, P, Q, vma):
    S.v_readers[vma] -= 1
    if Q[Q_CHECK] and (S.v_readers[vma] < 0 or S.v_write_locked[vma]):
        S.ints[I_VIOLATIONS] += 1
    if S.v_readers[vma] == 0 and S.v_drainer[vma] >= 0:
        cpu.wake(S, P, S.v_drainer[vma], K_W_DRAINED)     # vma_refcount_put wakes the writer


@njit(cache=True)
def vma_start_write(S, Q, writer, vma):
    """True if ``vma`` is now write-locked; False if ``writer`` must sleep until its readers
    drain."""
    if S.v_write_locked[vma]:
        return True
    if S.v_readers[vma] == 0:
        S.v_write_locked[vma] = 1
        return True
    S.v_drainer[vma] = writer
    return False


@njit(cache=True)
def vma_drained(S, Q, vma):
    """The draining writer woke up: its VMA has no reader left."""
    if Q[Q_CHECK] and S.v_readers[vma] != 0:
        S.ints[I_VIOLATIONS] += 1
    S.v_drainer[vma] = -1
    S.v_write_locked[vma] = 1


@njit(cache=True)
def vma_end_write(S, vma):
    S.v_write_locked[vma] = 0
