"""File rounds: each thread maps a file of its own, reads every page in order, unmaps it, again.

The published memcg reproducer (``lianux-mm/ioretry_test``, ``ioretry_base.c``): thread t loops
``mmap(PROT_READ, MAP_SHARED)`` of its 16 MB file, one byte read from every 4 KiB page in order,
``munmap``. Here thread t owns VMA t (``vmas == threads``) of ``pages_per_vma`` pages.

*The walk.* Touching a page costs ``think_time`` of CPU (exponential), then the access: a fault if
the page is not mapped (``threads.access``). A run of already-mapped pages (after fault-around, or
read-around pages an earlier fault mapped) is walked as one CPU burst: k touches are one burst of
Gamma(k, think_time) (the sum of k independent exponentials, drawn at once), and their k accesses
are counted. Whether they are mapped is decided when the burst starts: a mapped folio reclaimed in
the middle of the burst (less than k * think_time later) is still counted as touched without a
fault.

*munmap* (``mm/vma.c: do_vmi_align_munmap``): ``mmap_write_lock`` taken by the thread itself
(fast path, optimistic spinning, or the wait list, exactly as a writer's), ``vma_start_write`` of
its VMA (``vms_gather_munmap_vmas``), ``round_lock_hold`` of CPU holding the lock for write
(detach), then ``mmap_write_downgrade`` (``vms_complete_munmap_vmas``; ``rwsem.downgrade_write``:
queued readers at the head enter now) and the zap under the read lock, ``unmap_page_time`` per
mapped page (``unmap_region -> zap_pte_range``); the zapped folios stay cached, exposed to reclaim.
Then ``mmap_read_unlock``.

*mmap* (``mm/mmap.c: do_mmap -> mmap_region``): ``mmap_write_lock`` again, the new VMA
write-locked (``vma_start_write``) for ``round_lock_hold``, ``mmap_write_unlock``. The round is
then complete (``round_rate``) and the walk starts again at page 0.

The two write acquisitions count in the ``mmap_write_*`` metrics like any writer's.
"""

import numpy as np
from numba import njit

from . import cpu, folio, mapping, rng, rwsem, vma_lock, writers
from .state import (EV_NONE, EV_SPIN, I_RW_READERS, I_RW_WRITER, I_WRITE_WAITING,
                    K_ROUND_MMAP_HELD, K_ROUND_MUNMAP_HELD, K_ROUND_ZAP_DONE, K_THINK_DONE,
                    F_MAPPED, P_ROUND_LOCK_HOLD, P_THINK, P_UNMAP_PAGE, Q_PAGES_PER_VMA, R_NOW,
                    ROUND_MMAP, ROUND_MUNMAP, ROUND_WALK, S_ACCESSES, S_NOFAULT, S_ROUND_TIME_SUM,
                    S_ROUNDS)
from .stats import count

_GAMMA = rng.LAW_GAMMA


@njit(cache=True, inline="always")
def _think_stream(t):
    return 3 * t                       # the thread's think stream (threads._think_stream)


@njit(cache=True)
def walk_on(S, P, Q, t):
    """Thread ``t`` (on a CPU) finished a touch: walk the run of mapped pages that follows as one
    burst, up to the next unmapped page (its touch's CPU included), or munmap after the last page.
    """
    pages = Q[Q_PAGES_PER_VMA]
    base = t * pages
    i = S.t_walk[t]
    j = i
    while j < pages:
        slot = folio.find(S, P, Q, base + j)
        if slot < 0 or S.f_state[slot] != F_MAPPED:
            break
        j += 1
    run = j - i
    if run > 0:
        count(S, S_ACCESSES, run)
        count(S, S_NOFAULT, run)
    S.t_walk[t] = j
    touches = run + 1 if j < pages else run       # the CPU of page j's touch comes first
    if touches == 0:
        munmap_start(S, P, Q, t)
        return
    think = P[P_THINK]
    duration = 0.0
    if think > 0.0:
        if touches == 1:
            duration = rng.exponential(S.streams, _think_stream(t), think)
        else:
            duration = rng.sample_law(S.streams, _think_stream(t), _GAMMA, touches * think,
                                      1.0 / np.sqrt(touches))
    # K_THINK_DONE: computing, preemptible by woken tasks; think_done accesses page j or, past the
    # last page, munmaps (round_done_walking)
    cpu.burst(S, P, Q, t, duration, K_THINK_DONE)


@njit(cache=True, inline="always")
def walked_all(S, Q, t):
    return S.t_walk[t] >= Q[Q_PAGES_PER_VMA]


@njit(cache=True)
def next_page(S, Q, t):
    """The page of thread ``t``'s next touch (its VMA is VMA t); advances its walk."""
    i = S.t_walk[t]
    S.t_walk[t] = i + 1
    return t * Q[Q_PAGES_PER_VMA] + i


# ---- the round's write acquisitions ----------------------------------------------------------
@njit(cache=True)
def munmap_start(S, P, Q, t):
    """Past the last page: ``munmap``, starting with ``mmap_write_lock_killable``."""
    S.t_round_phase[t] = ROUND_MUNMAP
    _write_lock(S, P, Q, t)


@njit(cache=True)
def _write_lock(S, P, Q, t):
    """``mmap_write_lock`` by thread ``t`` (on a CPU): as ``writers.start``."""
    S.wait_start[t] = S.reals[R_NOW]
    result = rwsem.down_write(S, P, Q, t, writers.owner_running(S, Q))
    if result == rwsem.GRANTED:
        write_granted(S, P, Q, t)
        return
    S.t_write_waiting[t] = 1
    S.ints[I_WRITE_WAITING] += 1
    if result == rwsem.SPINNING:
        if S.ints[I_RW_WRITER] < 0:     # reader-owned: spin for the reader threshold only
            S.ent_event[t] = EV_SPIN
            cpu.set_timer(S, t, S.reals[R_NOW] + rwsem.reader_spin_limit(S.ints[I_RW_READERS]))
        else:
            S.ent_event[t] = EV_NONE
        return
    cpu.release_cpu(S, Q, t)


@njit(cache=True)
def write_granted(S, P, Q, t):
    """Running with ``mmap_lock`` held for write: ``vma_start_write`` of the thread's VMA."""
    waited = S.reals[R_NOW] - S.wait_start[t]
    slow = S.t_write_waiting[t] != 0
    S.t_write_waiting[t] = 0
    writers.record_write_grant(S, waited, slow)
    if not vma_lock.vma_start_write(S, Q, t, t):
        # Readers of the VMA are inside (none in this workload: only thread t faults VMA t):
        # sleep holding mmap_lock until they leave.
        S.t_draining[t] = 1
        writers.spinners_give_up(S, P, Q)
        cpu.release_cpu(S, Q, t)
        return
    _hold(S, P, Q, t)


@njit(cache=True)
def drained(S, P, Q, t):
    """Woken by the last reader of the thread's VMA."""
    vma_lock.vma_drained(S, Q, t)
    S.t_draining[t] = 0
    _hold(S, P, Q, t)


@njit(cache=True)
def _hold(S, P, Q, t):
    cont = K_ROUND_MUNMAP_HELD if S.t_round_phase[t] == ROUND_MUNMAP else K_ROUND_MMAP_HELD
    cpu.burst(S, P, Q, t, P[P_ROUND_LOCK_HOLD], cont)


@njit(cache=True)
def woken(S, P, Q, t):
    """The head writer, woken by ``rwsem_wake``, tries for the lock (``writers.woken``)."""
    if rwsem.writer_woken(S, P, Q, t):
        write_granted(S, P, Q, t)
    else:
        cpu.release_cpu(S, Q, t)


@njit(cache=True)
def spin_timeout(S, P, Q, t):
    """The reader-owned spin threshold passed: queue (``writers.spin_timeout``)."""
    if rwsem.stop_spinning(S, P, Q, t):
        write_granted(S, P, Q, t)
    else:
        cpu.release_cpu(S, Q, t)


@njit(cache=True)
def munmap_held(S, P, Q, t):
    """The VMA is detached: ``mmap_write_downgrade`` (its VMA write lock ends with the write
    section, ``vma_end_write_all``), then the zap under the read lock."""
    vma_lock.vma_end_write(S, t)
    rwsem.downgrade_write(S, P, Q)
    zap_time = P[P_UNMAP_PAGE] * mapping.mapped_pages(S, P, Q, t)
    cpu.burst(S, P, Q, t, zap_time, K_ROUND_ZAP_DONE)


@njit(cache=True)
def zap_done(S, P, Q, t):
    """The PTEs are gone: the folios stay cached; ``mmap_read_unlock``; then ``mmap``."""
    mapping.zap(S, P, Q, t)
    rwsem.up_read(S, P, Q)
    S.t_round_phase[t] = ROUND_MMAP
    _write_lock(S, P, Q, t)


@njit(cache=True)
def mmap_held(S, P, Q, t):
    """``mmap_write_unlock`` (``vma_end_write_all``, ``up_write``): the round is done."""
    vma_lock.vma_end_write(S, t)
    rwsem.up_write(S, P, Q)
    now = S.reals[R_NOW]
    if S.t_round_start[t] >= 0.0:          # the first round began mapped at t = 0: not counted
        count(S, S_ROUNDS, 1.0)
        count(S, S_ROUND_TIME_SUM, now - S.t_round_start[t])
    S.t_round_start[t] = now
    S.t_round_phase[t] = ROUND_WALK
    S.t_walk[t] = 0
    walk_on(S, P, Q, t)

