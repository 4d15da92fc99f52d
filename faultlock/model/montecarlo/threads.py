"""The faulting threads: a closed population, and the page-fault path of every policy.

A thread computes for an exponential ``think_time`` (on a CPU), then touches a page drawn from the
popularity law, or the next page of its group walk (``access``). A touch of a mapped page costs
nothing more; any other touch is a fault, and the thread generates no load until the fault
completes.

A fault is a sequence of *attempts* (``handle_mm_fault`` calls). An attempt takes a fault lock:
the per-VMA lock first where the policy uses it (``lock_vma_under_rcu``; it fails, VMA_LOCK_ABORT,
if the VMA is write-locked or draining), otherwise ``mmap_lock`` for read
(``lock_mm_and_find_vma``). Under that lock it looks the folio up (``filemap_get_folio``):

* mapped already (another thread installed the PTE meanwhile): ``handle_pte_fault`` finds the
  PTE present and returns without touching the folio: done after the attempt's CPU time;
* uptodate and unlocked: lock it, install the PTE (``fault_cpu_time``), unlock: done;
* absent, swap-backed: zram decompresses it synchronously under the fault lock, no retry
  (``do_swap_page`` with ``SWP_SYNCHRONOUS_IO``);
* absent, file-backed: a major fault. ``do_sync_mmap_readahead`` submits one read of the read-around
  (its folios allocated and charged first: under a memory limit direct reclaim runs on this thread's
  CPU, ``folio.charge``); then, if this attempt may drop its lock (a first attempt: not
  ``FAULT_FLAG_TRIED``), it drops it *before* waiting, sleeps for the folio lock, unlocks it and
  returns ``VM_FAULT_RETRY`` (``filemap_fault``: "if (fpin) goto out_retry"). Every major file fault
  retries, the one that started the read included, as traces of a 6.18 kernel show. A TRIED attempt
  waits for the read while it holds its lock;
* locked by someone else: under a read in flight (not uptodate) or being installed (uptodate). A
  first attempt drops its lock and waits (``__folio_lock`` for files, ``folio_wait_locked`` for
  swap), then retries; a TRIED attempt, or an ``*_uptodate`` policy finding the folio uptodate,
  waits in place holding its lock and maps the folio.

The thread that started the read waits for it with ``folio_wait_locked`` (shared) when there is no
read-around (``filemap_read_folio``, MADV_RANDOM), with ``__folio_lock`` behind the read-around
otherwise. The read's end wakes it with the first ``__folio_lock`` waiter, which is woken to take
the lock itself; each such waiter, unlocking, wakes the next (``folio.py``), and meanwhile the
folio is unlocked, so the retries map it without waiting for the chain.

After a RETRY from the VMA lock a major attempt's retry is TRIED when ``tried_after_major``
(46e714c729c8, 6.8+); mainline retries under ``mmap_lock``, the ``vma_retry`` policies under the VMA
lock again. A RETRY from ``mmap_lock`` always continues TRIED (the arch fault handler sets
FAULT_FLAG_TRIED before ``goto retry``); ``retry_limit`` > 0 makes an attempt TRIED once that many
retries were made.

With ``read_source='hole'`` (a sparse file, ``ftruncate`` and never written) a file major fault
reads no device: ``ext4_mpage_readpages`` zero-fills the folios of the read-around on the faulting
thread's CPU (``hole_page_cpu`` each), after the fault lock was dropped where the attempt may drop
it, and the attempt still returns ``VM_FAULT_RETRY`` (``_read_hole``, ``hole_filled``). With
``faultaround_pages`` > 1 a read fault first maps the cached folios of its aligned window
(``mapping.fault_around``). ``access_pattern='file_rounds'`` walks a thread's own VMA in order and
ends each walk with its own munmap and mmap (``rounds.py``).

Between the retry's drop of its folio reference and the next attempt's lookup the folio is exposed
to reclaim: under mainline that window contains the ``mmap_lock`` wait. A retry that finds its folio
gone reads it again: a refault.

Every fault is classed by what its first attempt found, as the harness classes its touches
(``faultlock/measure/parse.py``): *major* (absent: it starts the read or the zram swap-in),
*waiter* (locked by another thread: under read, or being installed), *minor* (uptodate and
unlocked); an access to a mapped page is *no fault*. The kernel's own count (``mm_account_fault``,
``ru_majflt``) is different: a fault is major if its completing attempt returned
``VM_FAULT_MAJOR`` (it read or swapped the folio in) or ran with ``FAULT_FLAG_TRIED``, so a waiter
whose retry found the folio still locked, or any fault retried under ``mmap_lock`` after a RETRY
from ``mmap_lock``, counts major.
"""

from numba import njit

from . import access as walk
from . import cpu, device, folio, mapping, rng, rounds, rwsem, stats, vma_lock
from .state import (ACCESS_FILE_ROUNDS, K_HOLE_FILLED, P_HOLE_PAGE_CPU, Q_FAULTAROUND,
                    Q_READ_HOLE, S_HOLE_FILLS)
from .state import (ACCESS_GROUP_WALK, CLASS_MAJOR, CLASS_MINOR, CLASS_WAITER, EV_WAKE, F_ABSENT,
                    F_CACHED, F_MAPPED, F_READING, H_FAULT_LATENCY, H_MAJOR_LATENCY,
                    H_MINOR_LATENCY, H_WAITER_LATENCY, I_IN_FAULT, K_ATTEMPT, K_IDLE_DONE,
                    K_INSTALL_DONE, K_MISS_SUBMIT, K_PTE_PRESENT_DONE,
                    K_THINK_DONE, LOCK_MMAP, LOCK_NONE, LOCK_VMA, OWNER_IO, OWNER_NONE, P_FAULT_CPU,
                    P_IDLE, P_JANK, P_POPULARITY, P_RECLAIM_CPU, P_THINK, P_WAKE, P_ZIPF_H_N,
                    P_ZIPF_H_X1, P_ZIPF_S, P_ZRAM, Q_ACCESS_PATTERN, Q_DROP_ON_MMAP, Q_DROP_ON_VMA,
                    Q_PAGE_MULT,
                    Q_PAGES_PER_VMA, Q_READAROUND, Q_RETRY_LIMIT, Q_RETRY_ON_VMA, Q_SWAP_VMAS,
                    Q_TOTAL_PAGES, Q_TRIED_AFTER_MAJOR, Q_UPTODATE_WAIT, Q_USE_VMA_LOCK,
                    Q_ZIPF_ALIAS, R_NOW, S_ACCESSES, S_CLASS_MAJOR, S_CLASS_MINOR, S_CLASS_WAITER,
                    S_JANK, S_KERNEL_MAJOR, S_LATENCY_SUM, S_MAJOR, S_MAJOR_LATENCY_SUM,
                    S_MINOR_LATENCY_SUM, S_NOFAULT, S_PAGES_READ, S_READS_HOLDING_MMAP,
                    S_READS_HOLDING_VMA, S_REFAULTS, S_RETRIES, S_RETRY_IO_WAITS, S_RETRY_MISSES,
                    S_VMA_ABORTS, S_WAITER_LATENCY_SUM, WAIT_EXCLUSIVE, WAIT_SHARED)
from .stats import count


@njit(cache=True, inline="always")
def _think_stream(t):
    return 3 * t


@njit(cache=True, inline="always")
def _access_stream(t):
    return 3 * t + 1


@njit(cache=True, inline="always")
def _read_stream(t):
    return 3 * t + 2


@njit(cache=True, inline="always")
def think(S, P, Q, t):
    if Q[Q_ACCESS_PATTERN] == ACCESS_FILE_ROUNDS:
        rounds.walk_on(S, P, Q, t)        # the next touch, a run of mapped pages, or munmap
        return
    cpu.burst(S, P, Q, t, rng.exponential(S.streams, _think_stream(t), P[P_THINK]), K_THINK_DONE)


@njit(cache=True, inline="always")
def think_done(S, P, Q, t):
    """CPU work done: sleep off CPU for the idle time (then a wake-up), or access a page now."""
    if Q[Q_ACCESS_PATTERN] == ACCESS_FILE_ROUNDS and rounds.walked_all(S, Q, t):
        rounds.munmap_start(S, P, Q, t)
        return
    if P[P_IDLE] > 0.0:
        idle = rng.exponential(S.streams, _think_stream(t), P[P_IDLE])
        cpu.release_cpu(S, Q, t)
        S.ent_event[t] = EV_WAKE
        S.ent_cont[t] = K_IDLE_DONE
        cpu.set_timer(S, t, S.reals[R_NOW] + idle + P[P_WAKE])
        return
    access(S, P, Q, t)


@njit(cache=True)
def access(S, P, Q, t):
    """Touch a page: nothing more if it is mapped, otherwise start a fault."""
    count(S, S_ACCESSES, 1.0)
    if Q[Q_ACCESS_PATTERN] == ACCESS_GROUP_WALK:
        key = walk.walk_page(S, Q, t)
    elif Q[Q_ACCESS_PATTERN] == ACCESS_FILE_ROUNDS:
        key = rounds.next_page(S, Q, t)
    else:
        total = Q[Q_TOTAL_PAGES]
        if Q[Q_ZIPF_ALIAS]:
            rank = rng.alias_draw(S.streams, _access_stream(t), S.zipf_prob, S.zipf_alias)
        else:
            rank = rng.zipf_rank(S.streams, _access_stream(t), total, P[P_POPULARITY],
                                 P[P_ZIPF_H_X1], P[P_ZIPF_H_N], P[P_ZIPF_S])
        # Scatter popularity ranks over the address space, so that hot pages are spread over
        # VMAs and read-around windows (multiplication by a unit modulo the page count is a
        # bijection).
        key = (rank * Q[Q_PAGE_MULT]) % total
    slot = folio.slot_of(S, P, Q, key)
    if slot < 0 or S.f_state[slot] == F_MAPPED:
        if slot >= 0:
            folio.reference(S, Q, slot)      # the hardware sets the PTE's accessed bit
        count(S, S_NOFAULT, 1.0)
        think(S, P, Q, t)
        return
    S.t_key[t] = key
    S.t_vma[t] = key // Q[Q_PAGES_PER_VMA]
    S.t_fault_start[t] = S.reals[R_NOW]
    S.t_tried[t] = 0
    S.t_io_seen[t] = 0
    S.t_retries[t] = 0
    S.t_waited_io[t] = 0
    S.t_is_retry[t] = 0
    S.t_want_vma[t] = Q[Q_USE_VMA_LOCK]
    S.t_class[t] = CLASS_MINOR
    S.ints[I_IN_FAULT] += 1
    attempt(S, P, Q, t)


@njit(cache=True)
def attempt(S, P, Q, t):
    """One ``handle_mm_fault`` call: take the fault lock, then look at the folio."""
    S.t_major[t] = 0
    if S.t_want_vma[t]:
        if vma_lock.vma_start_read(S, Q, S.t_vma[t]):
            S.t_lock[t] = LOCK_VMA
            _under_lock(S, P, Q, t)
            return
        count(S, S_VMA_ABORTS, 1.0)
    if rwsem.down_read(S, P, Q, t):
        stats.mmap_read_fast(S)
        S.t_lock[t] = LOCK_MMAP
        _under_lock(S, P, Q, t)
        return
    S.t_lock[t] = LOCK_NONE
    stats.mmap_read_wait_begins(S, t)
    cpu.release_cpu(S, Q, t)


@njit(cache=True)
def mmap_granted(S, P, Q, t):
    """The thread runs again holding ``mmap_lock`` for read after waiting for it."""
    stats.mmap_read_wait_ends(S, t)
    S.t_lock[t] = LOCK_MMAP
    _under_lock(S, P, Q, t)


@njit(cache=True, inline="always")
def _may_drop(S, Q, t):
    """``fault_flag_allow_retry_first`` and the policy's choice for the lock held."""
    if S.t_tried[t]:
        return False
    if S.t_lock[t] == LOCK_VMA:
        return Q[Q_DROP_ON_VMA] != 0
    return Q[Q_DROP_ON_MMAP] != 0


@njit(cache=True)
def _release_fault_lock(S, P, Q, t):
    """``release_fault_lock``: ``vma_end_read`` or ``mmap_read_unlock``."""
    lock = S.t_lock[t]
    S.t_lock[t] = LOCK_NONE
    S.t_last_lock[t] = lock
    if lock == LOCK_VMA:
        vma_lock.vma_end_read(S, P, Q, S.t_vma[t])
    elif lock == LOCK_MMAP:
        rwsem.up_read(S, P, Q)


@njit(cache=True)
def _under_lock(S, P, Q, t):
    """The attempt holds its fault lock and looks the folio up."""
    slot = folio.slot_of(S, P, Q, S.t_key[t])
    if slot < 0:                   # folio table full: the run is already marked overloaded
        _release_fault_lock(S, P, Q, t)
        _finish(S, P, Q, t)
        return
    S.t_slot[t] = slot
    waited_for_read = S.t_is_retry[t] and S.t_waited_io[t]
    if waited_for_read:
        count(S, S_RETRY_IO_WAITS, 1.0)
    S.t_waited_io[t] = 0
    state = S.f_state[slot]
    now = S.reals[R_NOW]
    if not S.t_is_retry[t]:        # the first attempt classes the fault
        if state == F_ABSENT:
            S.t_class[t] = CLASS_MAJOR
        elif S.f_owner[slot] == OWNER_NONE:
            S.t_class[t] = CLASS_MINOR
        else:
            S.t_class[t] = CLASS_WAITER
    if state != F_MAPPED and Q[Q_FAULTAROUND] > 1 and S.t_vma[t] >= Q[Q_SWAP_VMAS]:
        # do_read_fault: fault-around maps the window's cached folios before filemap_fault
        mapping.fault_around(S, P, Q, S.t_key[t])
    if state == F_MAPPED:
        # The PTE is present: a retry after another thread mapped the folio (or a first attempt
        # that lost the race) completes without the folio lock, even if a waiter handed the lock
        # holds it. Waiting for that lock instead made retrying waiters pass it back and forth.
        cpu.burst(S, P, Q, t, P[P_FAULT_CPU], K_PTE_PRESENT_DONE)
        return
    if state == F_ABSENT:
        if waited_for_read:
            count(S, S_RETRY_MISSES, 1.0)
        if S.t_io_seen[t]:
            count(S, S_REFAULTS, 1.0)
        count(S, S_MAJOR, 1.0)
        folio.get(S, slot)
        S.t_io_seen[t] = 1
        if S.t_vma[t] < Q[Q_SWAP_VMAS]:
            # zram: decompressed in place, folio locked, under the fault lock, no retry; the
            # attempt returns VM_FAULT_MAJOR (t_major is read only after a RETRY otherwise)
            S.t_major[t] = 1
            reclaimed = folio.charge(S, P, Q, slot)
            count(S, S_PAGES_READ, 1.0)
            S.f_state[slot] = F_CACHED
            S.f_owner[slot] = t
            S.f_uptodate_at[slot] = now + P[P_ZRAM]
            cpu.burst(S, P, Q, t, P[P_ZRAM] + P[P_FAULT_CPU] + reclaimed * P[P_RECLAIM_CPU],
                      K_INSTALL_DONE)
            return
        S.t_major[t] = 1
        # Allocation (and direct reclaim, paid on this CPU before the read is submitted)
        reclaimed = folio.charge(S, P, Q, slot)
        S.f_state[slot] = F_READING
        S.f_owner[slot] = OWNER_IO
        io = device.new_read(S, _read_stream(t))
        device.add_folio(S, io, slot)
        reclaimed += _add_readaround(S, P, Q, io, S.t_key[t])
        count(S, S_PAGES_READ, S.io_nfolios[io])
        S.t_io[t] = io
        cpu.burst(S, P, Q, t, P[P_FAULT_CPU] + reclaimed * P[P_RECLAIM_CPU], K_MISS_SUBMIT)
        return
    folio.get(S, slot)
    if S.f_owner[slot] == OWNER_NONE:
        # uptodate and unlocked: lock it and install the PTE
        S.f_owner[slot] = t
        cpu.burst(S, P, Q, t, P[P_FAULT_CPU], K_INSTALL_DONE)
        return
    uptodate = state != F_READING and now >= S.f_uptodate_at[slot]
    if not uptodate:
        S.t_io_seen[t] = 1
    if not _may_drop(S, Q, t) or (uptodate and Q[Q_UPTODATE_WAIT]):
        folio.wait(S, slot, t, WAIT_EXCLUSIVE)     # sleeps holding the fault lock
    else:
        S.t_waited_io[t] = not uptodate
        _release_fault_lock(S, P, Q, t)
        swap = S.t_vma[t] < Q[Q_SWAP_VMAS]
        folio.wait(S, slot, t, WAIT_SHARED if swap else WAIT_EXCLUSIVE)
    cpu.release_cpu(S, Q, t)


@njit(cache=True)
def _add_readaround(S, P, Q, io, key):
    """Read-around: ``readaround_pages`` centred on the fault, within the VMA, absent ones only.
    Returns the folios direct reclaim freed to allocate them."""
    readaround = Q[Q_READAROUND]
    reclaimed = 0
    if readaround <= 1:
        return reclaimed
    pages = Q[Q_PAGES_PER_VMA]
    vma_base = (key // pages) * pages
    page = key - vma_base
    first = page - readaround // 2
    first = max(first, 0)
    last = first + readaround
    if last > pages:
        last = pages
        first = max(0, last - readaround)
    for p in range(first, last):
        if p == page:
            continue
        slot = folio.slot_of(S, P, Q, vma_base + p)
        if (slot >= 0 and S.f_state[slot] == F_ABSENT and S.f_refs[slot] == 0
                and not folio.has_waiters(S, slot)):
            charged = folio.charge_readahead(S, P, Q, slot)
            if charged < 0:            # no room under the limit: the read-around ends here
                reclaimed += -1 - charged
                break
            reclaimed += charged
            S.f_state[slot] = F_READING
            S.f_owner[slot] = OWNER_IO
            device.add_folio(S, io, slot)
    return reclaimed


@njit(cache=True)
def miss_submit(S, P, Q, t):
    """End of a major attempt's CPU work: submit the read, then wait for the folio."""
    if Q[Q_READ_HOLE]:
        _read_hole(S, P, Q, t)
        return
    device.submit(S, P, Q, S.t_io[t])
    if _may_drop(S, Q, t):
        S.t_waited_io[t] = 1
        _release_fault_lock(S, P, Q, t)
    elif S.t_lock[t] == LOCK_MMAP:
        count(S, S_READS_HOLDING_MMAP, 1.0)
    else:
        count(S, S_READS_HOLDING_VMA, 1.0)
    # Without read-around (MADV_RANDOM, or ra_pages 0) do_sync_mmap_readahead reads nothing:
    # filemap_fault creates the folio, locks it and reads it at page_not_uptodate, where
    # filemap_read_folio waits for the read with folio_wait_locked_killable, a shared wait that
    # the read's completion ends together with the first __folio_lock waiter's. With read-around
    # the read is submitted first and the folio found locked: __folio_lock_killable, exclusive.
    mode = WAIT_SHARED if Q[Q_READAROUND] <= 1 else WAIT_EXCLUSIVE
    folio.wait(S, S.t_slot[t], t, mode)
    cpu.release_cpu(S, Q, t)


@njit(cache=True)
def _read_hole(S, P, Q, t):
    """The read-around of a sparse file: ``ext4_mpage_readpages`` finds no block, zero-fills each
    folio and marks it uptodate, on the faulting thread's CPU, with no bio.

    ``filemap_fault -> do_sync_mmap_readahead`` drops the fault lock first when it may
    (``maybe_unlock_mmap_for_io``), so the zero-fill runs unlocked; a TRIED attempt zero-fills under
    its lock. The folios stay locked (other faults wait on them) until the fill is done.
    """
    io = S.t_io[t]
    if _may_drop(S, Q, t):
        S.t_waited_io[t] = 1               # its retry comes after a read: a miss if it is gone
        _release_fault_lock(S, P, Q, t)
    elif S.t_lock[t] == LOCK_MMAP:
        count(S, S_READS_HOLDING_MMAP, 1.0)
    else:
        count(S, S_READS_HOLDING_VMA, 1.0)
    count(S, S_HOLE_FILLS, 1.0)
    cpu.burst(S, P, Q, t, P[P_HOLE_PAGE_CPU] * S.io_nfolios[io], K_HOLE_FILLED)


@njit(cache=True)
def hole_filled(S, P, Q, t):
    """The zero-fill is done: every folio of the read-around is uptodate and unlocked (waiters
    woken). Then ``filemap_fault`` locks the faulting folio (waiting if a waiter got it first):
    with the lock dropped it unlocks it and returns VM_FAULT_RETRY ("if (fpin) goto out_retry");
    still holding the lock it maps it."""
    device.read_done(S, P, Q, S.t_io[t])
    S.t_io[t] = -1
    slot = S.t_slot[t]
    if S.f_owner[slot] != OWNER_NONE:
        # a waiter was handed the lock: wait for it (retry or map, by the lock held)
        folio.wait(S, slot, t, WAIT_EXCLUSIVE)
        cpu.release_cpu(S, Q, t)
        return
    if S.t_lock[t] == LOCK_NONE:
        folio_retry(S, P, Q, t, False)
        return
    S.f_owner[slot] = t
    folio_hold_owned(S, P, Q, t)


@njit(cache=True)
def folio_retry(S, P, Q, t, owned):
    """Woken from a folio wait with the fault lock dropped: unlock, put, VM_FAULT_RETRY."""
    slot = S.t_slot[t]
    if owned:
        folio.unlock(S, P, Q, slot)
    folio.put(S, P, Q, slot)
    count(S, S_RETRIES, 1.0)
    S.t_retries[t] += 1
    S.t_is_retry[t] = 1
    if S.t_last_lock[t] == LOCK_VMA:
        if S.t_major[t] and Q[Q_TRIED_AFTER_MAJOR]:
            S.t_tried[t] = 1
        S.t_want_vma[t] = Q[Q_RETRY_ON_VMA]
    else:
        S.t_tried[t] = 1
        S.t_want_vma[t] = 0
    if Q[Q_RETRY_LIMIT] > 0 and S.t_retries[t] >= Q[Q_RETRY_LIMIT]:
        S.t_tried[t] = 1
    # Back through the arch fault handler, the VMA lookup and the page-table walk before the
    # folio is looked up again: the folio is exposed to reclaim for this CPU time too.
    cpu.burst(S, P, Q, t, P[P_FAULT_CPU], K_ATTEMPT)


@njit(cache=True)
def folio_lock_woken(S, P, Q, t):
    """Woken from a folio wait to take its lock (``__folio_lock`` woken without a hand-off, or a
    TRIED reader after ``filemap_read_folio``): with the lock, retry (fault lock dropped) or map
    (still held); without it (another thread took it meanwhile), back to sleep at the tail."""
    if not folio.lock_woken(S, S.t_slot[t], t):
        cpu.release_cpu(S, Q, t)
        return
    if S.t_lock[t] == LOCK_NONE:
        folio_retry(S, P, Q, t, True)
    else:
        folio_hold_owned(S, P, Q, t)


@njit(cache=True)
def folio_hold_owned(S, P, Q, t):
    """Woken owning the folio lock while still holding the fault lock: install the PTE."""
    cpu.burst(S, P, Q, t, P[P_FAULT_CPU], K_INSTALL_DONE)


@njit(cache=True)
def install_done(S, P, Q, t):
    """The PTE is in: unlock and put the folio, release the fault lock, the fault is done."""
    slot = S.t_slot[t]
    S.f_state[slot] = F_MAPPED
    folio.reference(S, Q, slot)         # the new PTE is young
    folio.unlock(S, P, Q, slot)
    folio.put(S, P, Q, slot)
    _release_fault_lock(S, P, Q, t)
    _finish(S, P, Q, t)


@njit(cache=True)
def pte_present_done(S, P, Q, t):
    """The attempt found the PTE present: release the fault lock, the fault is done."""
    _release_fault_lock(S, P, Q, t)
    _finish(S, P, Q, t)


@njit(cache=True)
def _finish(S, P, Q, t):
    latency = S.reals[R_NOW] - S.t_fault_start[t]
    S.ints[I_IN_FAULT] -= 1
    count(S, S_LATENCY_SUM, latency)
    if latency > P[P_JANK]:
        count(S, S_JANK, 1.0)
    cls = S.t_class[t]
    if cls == CLASS_MAJOR:
        count(S, S_CLASS_MAJOR, 1.0)
        count(S, S_MAJOR_LATENCY_SUM, latency)
        stats.observe2(S, H_FAULT_LATENCY, H_MAJOR_LATENCY, latency)
    elif cls == CLASS_WAITER:
        count(S, S_CLASS_WAITER, 1.0)
        count(S, S_WAITER_LATENCY_SUM, latency)
        stats.observe2(S, H_FAULT_LATENCY, H_WAITER_LATENCY, latency)
    else:
        count(S, S_CLASS_MINOR, 1.0)
        count(S, S_MINOR_LATENCY_SUM, latency)
        stats.observe2(S, H_FAULT_LATENCY, H_MINOR_LATENCY, latency)
    if S.t_major[t] or S.t_tried[t]:     # mm_account_fault
        count(S, S_KERNEL_MAJOR, 1.0)
    stats.fault_completed(S, Q)
    think(S, P, Q, t)
