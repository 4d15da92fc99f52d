"""Folios: page-cache and swap-cache pages, their lock, and reclaim.

A folio is absent, *reading* (locked by the read in flight, not uptodate, not reclaimable: reclaim's
``folio_trylock`` fails, ``mm/vmscan.c: shrink_folio_list``), *cached* (uptodate, unlocked, not
mapped) or *mapped*. A fault that installs a PTE holds the folio lock meanwhile: that is the
"uptodate but locked" case of the ``*_uptodate`` policies.

Reclaim is either the memory limit (``reclaim="lru"``: ``lru.py``, the LRU lists, direct reclaim
on allocation) or a hazard (``reclaim="hazard"``). As a hazard, a folio that nobody references and
nobody has locked is reclaimed at rate
``reclaim_rate_cached`` if it is only cached and ``reclaim_rate_mapped`` if it is mapped (reclaim
unmaps it). The engine records when a folio became exposed; the first time it is looked at again
it draws the exposure's reclaim instant and compares: no reclaim events, no scan, and no draw at
all for read-around pages nobody touches. A reference (``filemap_get_folio`` to ``folio_put``) or
the lock protects it (``__remove_mapping``'s refcount freeze fails).

Waiters on a folio sleep in one FIFO queue (``mm/filemap.c: folio_wait_bit_common`` adds them at the
tail), each *shared* (``folio_wait_locked``: wait for the lock bit to clear) or *exclusive*
(``__folio_lock``: wait to take it). ``folio_unlock`` and ``folio_end_read`` call
``folio_wake_bit``, whose walk of the queue (``__wake_up_common`` with one exclusive wake-up,
``wake_page_function``) wakes every shared waiter up to the first exclusive one, wakes that one and
stops: one exclusive waiter per unlock, so many threads faulting one folio pass its lock from one to
the next, a wake-up each. The exclusive waiter is woken *without* the lock
(``sysctl_page_lock_unfairness`` = 5): when it runs it takes the bit itself
(``test_and_set_bit``), and if another thread took it meanwhile (a retry's ``folio_trylock``)
it queues again at the tail. Only after five such steals within one ``__folio_lock`` does the
wake-up hand it the lock (``WQ_FLAG_CUSTOM``, the fair hand-off since 5.14). So while a woken
waiter is on its way to a CPU the folio is unlocked, and a retry that finds it so maps it.

Storage: when the address space is small (at most ``FOLIO_DIRECT_LIMIT`` pages) every page has a
slot. Larger spaces (a file larger than memory, read once) use a set-associative table: a page
maps to a set of ``FOLIO_WAYS`` slots, and inserting into a full set evicts the unreferenced,
unlocked folio that reclaim would take first. Memory therefore stays bounded whatever the number of
pages touched. Under a memory limit the table has ``state.LIMIT_ROOM`` slots per folio of the limit
and two candidate sets per page, so that it never decides what stays resident; if it ever drops a
resident folio that is counted apart (``S_TABLE_EVICTIONS``), never as reclaim.
"""

import numpy as np
from numba import njit

from . import cpu, lru, rng
from .state import (F_ABSENT, F_CACHED, F_MAPPED, FOLIO_WAYS, I_OVERLOAD, K_FOLIO_HOLD_OWNED,
                    K_FOLIO_LOCK_WOKEN, K_FOLIO_RETRY, K_FOLIO_RETRY_OWNED, LOCK_NONE,
                    OWNER_NONE, P_RECLAIM_CACHED, PAGE_LOCK_UNFAIRNESS,
                    P_RECLAIM_MAPPED, Q_FOLIO_DIRECT, Q_FOLIO_SET_MASK, Q_FOLIO_TWO_SETS,
                    Q_RECLAIM_LRU, Q_THREADS, R_NOW,
                    S_RECLAIMS, WAIT_EXCLUSIVE, WAIT_SHARED)
from .stats import count


@njit(cache=True, inline="always")
def _hash(key):
    x = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64(x >> np.uint64(20))


@njit(cache=True)
def _reclaim_stream(Q):
    return 3 * Q[Q_THREADS] + 3


@njit(cache=True, inline="always")
def settle(S, P, Q, slot):
    """Apply reclaim that happened since the folio was exposed."""
    state = S.f_state[slot]
    if ((state == F_CACHED or state == F_MAPPED) and S.f_owner[slot] == OWNER_NONE
            and S.f_refs[slot] == 0):
        deadline = S.f_deadline[slot]
        if np.isnan(deadline):
            rate = P[P_RECLAIM_CACHED] if state == F_CACHED else P[P_RECLAIM_MAPPED]
            deadline = np.inf
            if rate > 0.0:
                deadline = S.f_exposed_at[slot] + rng.exponential(S.streams, _reclaim_stream(Q),
                                                                   1.0 / rate)
            S.f_deadline[slot] = deadline
        if S.reals[R_NOW] >= deadline:
            S.f_state[slot] = F_ABSENT
            S.f_deadline[slot] = np.inf
            count(S, S_RECLAIMS, 1.0)


@njit(cache=True, inline="always")
def _hash2(key):
    # the second candidate set of a page (reclaim="lru" with a limit): another multiplier
    x = np.uint64(key) * np.uint64(0xC2B2AE3D27D4EB4F)
    return np.int64(x >> np.uint64(24))


@njit(cache=True, inline="always")
def slot_of(S, P, Q, key):
    """The slot of page ``key`` (inserted absent if new), settled; -1 if the table is full."""
    if Q[Q_FOLIO_DIRECT]:
        settle(S, P, Q, key)          # slot = page; f_key holds the identity from allocation
        return key
    if Q[Q_FOLIO_TWO_SETS]:
        return _slot_of_two_sets(S, P, Q, key)
    base = (_hash(key) & Q[Q_FOLIO_SET_MASK]) * FOLIO_WAYS
    victim = -1
    victim_deadline = np.inf
    for way in range(FOLIO_WAYS):
        slot = base + way
        if S.f_key[slot] == key:
            settle(S, P, Q, slot)
            return slot
    for way in range(FOLIO_WAYS):
        slot = base + way
        if S.f_key[slot] < 0:
            victim = slot
            break
        settle(S, P, Q, slot)
        if S.f_state[slot] == F_ABSENT and S.f_refs[slot] == 0 and not has_waiters(S, slot):
            victim = slot
            break
        if (S.f_owner[slot] == OWNER_NONE and S.f_refs[slot] == 0 and not has_waiters(S, slot)
                and (victim < 0 or S.f_deadline[slot] < victim_deadline)):
            victim = slot
            victim_deadline = S.f_deadline[slot]
    if victim < 0:
        S.ints[I_OVERLOAD] = 1
        return -1
    if S.f_key[victim] >= 0 and S.f_state[victim] != F_ABSENT:
        if Q[Q_RECLAIM_LRU]:
            lru.table_evicted(S, Q, victim)     # the table's room, not the memory limit
        else:
            count(S, S_RECLAIMS, 1.0)          # memory is full: reclaim takes this one
    return _take(S, victim, key)


@njit(cache=True, inline="always")
def _take(S, victim, key):
    S.f_key[victim] = key
    S.f_state[victim] = F_ABSENT
    S.f_owner[victim] = OWNER_NONE
    S.f_refs[victim] = 0
    S.f_deadline[victim] = np.inf
    S.f_shadow[victim] = -1            # the old page's shadow entry goes with it
    return victim


@njit(cache=True)
def _slot_of_two_sets(S, P, Q, key):
    """``slot_of`` under a memory limit: a page may sit in either of two sets (two-choice
    hashing), so that the limit's folios never crowd one set. A new page takes an empty slot,
    else a shadow entry (absent, unpinned), else, never expected at the table's size
    (``state.LIMIT_ROOM``), an unpinned resident folio, counted as a table eviction."""
    mask = Q[Q_FOLIO_SET_MASK]
    bases = ((_hash(key) & mask) * FOLIO_WAYS, (_hash2(key) & mask) * FOLIO_WAYS)
    for base in bases:
        for way in range(FOLIO_WAYS):
            slot = base + way
            if S.f_key[slot] == key:
                return slot
    empty = -1
    shadow = -1
    resident = -1
    for base in bases:
        for way in range(FOLIO_WAYS):
            slot = base + way
            if S.f_key[slot] < 0:
                empty = slot
                break
            if S.f_refs[slot] != 0 or has_waiters(S, slot):
                continue
            if S.f_state[slot] == F_ABSENT:
                if shadow < 0:
                    shadow = slot
            elif S.f_owner[slot] == OWNER_NONE and resident < 0:
                resident = slot
        if empty >= 0:
            break
    if empty >= 0:
        return _take(S, empty, key)
    if shadow >= 0:
        return _take(S, shadow, key)
    if resident < 0:
        S.ints[I_OVERLOAD] = 1
        return -1
    lru.table_evicted(S, Q, resident)
    return _take(S, resident, key)


@njit(cache=True, inline="always")
def charge(S, P, Q, slot):
    """Allocate and charge the folio of ``slot`` (see ``lru.charge``): returns the folios direct
    reclaim freed for it, whose CPU (``reclaim_cpu_time`` each) the allocating thread pays.
    Nothing under hazards (and no call: read-around allocates many folios)."""
    if not Q[Q_RECLAIM_LRU]:
        return 0
    return lru.charge(S, P, Q, slot)


@njit(cache=True, inline="always")
def charge_readahead(S, P, Q, slot):
    """Allocate a read-around folio (see ``lru.charge_readahead``): the folios reclaimed, or
    ``-1 - reclaimed`` where the limit leaves no room (the read-around stops there)."""
    if not Q[Q_RECLAIM_LRU]:
        return 0
    return lru.charge_readahead(S, P, Q, slot)


@njit(cache=True)
def find(S, P, Q, key):
    """The slot of page ``key`` if the table has it (settled for reclaim), else -1: a lookup
    that inserts nothing (``filemap_get_entry``), for walks over a VMA's pages."""
    if Q[Q_FOLIO_DIRECT]:
        settle(S, P, Q, key)          # every page has its slot
        return key
    mask = Q[Q_FOLIO_SET_MASK]
    sets = 2 if Q[Q_FOLIO_TWO_SETS] else 1
    for k in range(sets):
        base = ((_hash(key) if k == 0 else _hash2(key)) & mask) * FOLIO_WAYS
        for way in range(FOLIO_WAYS):
            slot = base + way
            if S.f_key[slot] == key:
                settle(S, P, Q, slot)
                return slot
    return -1


@njit(cache=True, inline="always")
def reference(S, Q, slot):
    """An access through a PTE (see ``lru.reference``): the LRU sees it; nothing under hazards."""
    if Q[Q_RECLAIM_LRU]:
        lru.reference(S, Q, slot)


@njit(cache=True, inline="always")
def expose(S, slot):
    """Nobody references or locks the folio any more: its reclaim clock starts (drawn lazily)."""
    S.f_exposed_at[slot] = S.reals[R_NOW]
    S.f_deadline[slot] = np.nan


@njit(cache=True)
def get(S, slot):
    """Take a reference (``filemap_get_folio``)."""
    S.f_refs[slot] += 1
    S.f_deadline[slot] = np.inf


@njit(cache=True)
def put(S, P, Q, slot):
    """Drop a reference (``folio_put``)."""
    S.f_refs[slot] -= 1
    if S.f_refs[slot] == 0 and S.f_owner[slot] == OWNER_NONE:
        expose(S, slot)


@njit(cache=True)
def wait(S, slot, entity, mode):
    """Sleep on the folio's wait queue, at its tail: exclusive (``__folio_lock``) or shared
    (``folio_wait_locked``). An exclusive wait starts the call's budget of lock steals
    (``folio_wait_bit_common``: ``unfairness = sysctl_page_lock_unfairness``)."""
    if mode == WAIT_EXCLUSIVE:
        S.fw_unfair[entity] = PAGE_LOCK_UNFAIRNESS
    _enqueue(S, slot, entity, mode)


@njit(cache=True)
def _enqueue(S, slot, entity, mode):
    """``folio_wait_bit_common``'s ``repeat:``: an exclusive waiter spends one unit of its budget
    each time it queues; below zero it asks for a hand-off (``WQ_FLAG_CUSTOM``)."""
    S.fw_mode[entity] = mode
    if mode == WAIT_EXCLUSIVE:
        S.fw_unfair[entity] -= 1
    S.fw_next[entity] = -1
    tail = S.f_wq_tail[slot]
    if tail >= 0:
        S.fw_next[tail] = entity
    else:
        S.f_wq_head[slot] = entity
    S.f_wq_tail[slot] = entity


@njit(cache=True)
def has_waiters(S, slot):
    return S.f_wq_head[slot] >= 0


@njit(cache=True)
def unlock(S, P, Q, slot):
    """``folio_unlock`` (and ``folio_end_read``): ``folio_wake_bit`` walks the queue in order.

    A shared waiter is woken and leaves the queue: one that dropped its fault lock returns
    VM_FAULT_RETRY (``__folio_lock_or_retry``, ``filemap_read_folio`` then ``out_retry``); one
    that still holds it goes on to lock the folio (``filemap_fault``'s ``retry_find``: a fresh
    ``lock_folio_maybe_drop_mmap``). The first exclusive waiter ends the walk: woken to take the
    lock itself, or, once it has been robbed ``sysctl_page_lock_unfairness`` times, handed it
    (``wake_page_function`` sets the bit for it). Shared waiters queued behind it wait for the
    next unlock, as in the kernel.
    """
    S.f_owner[slot] = OWNER_NONE
    entity = S.f_wq_head[slot]
    while entity >= 0:
        nxt = S.fw_next[entity]
        S.f_wq_head[slot] = nxt
        if nxt < 0:
            S.f_wq_tail[slot] = -1
        if S.fw_mode[entity] == WAIT_SHARED:
            if S.t_lock[entity] == LOCK_NONE:
                cpu.wake(S, P, entity, K_FOLIO_RETRY)
            else:
                S.fw_unfair[entity] = PAGE_LOCK_UNFAIRNESS      # a new __folio_lock call
                cpu.wake(S, P, entity, K_FOLIO_LOCK_WOKEN)
            entity = nxt
            continue
        if S.fw_unfair[entity] < 0:
            S.f_owner[slot] = entity
            cpu.wake(S, P, entity, _exclusive_cont(S, entity))
        else:
            cpu.wake(S, P, entity, K_FOLIO_LOCK_WOKEN)
        break
    if S.f_owner[slot] == OWNER_NONE and S.f_refs[slot] == 0:
        expose(S, slot)


@njit(cache=True)
def lock_woken(S, slot, entity):
    """A woken waiter that must take the lock itself runs (``folio_wait_bit_common``: a
    ``test_and_set_bit`` after the wake-up; ``lock_folio_maybe_drop_mmap``'s trylock after
    ``filemap_read_folio``). True if it got the lock; otherwise it queues again at the tail
    (``goto repeat``) and sleeps."""
    if S.f_owner[slot] == OWNER_NONE:
        S.f_owner[slot] = entity
        return True
    _enqueue(S, slot, entity, WAIT_EXCLUSIVE)
    return False


@njit(cache=True, inline="always")
def _exclusive_cont(S, entity):
    # An exclusive waiter that still holds its fault lock maps the folio; one that dropped it
    # unlocks and retries. ``t_lock`` is only set for threads (writers never wait on folios).
    return K_FOLIO_HOLD_OWNED if S.t_lock[entity] != 0 else K_FOLIO_RETRY_OWNED
