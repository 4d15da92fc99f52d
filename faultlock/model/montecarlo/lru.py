"""The LRU lists and the memory limit (``reclaim="lru"``): memcg charge, direct reclaim, workingset.

Every resident folio (reading, cached or mapped) is charged to the process's memory cgroup and sits
on an LRU list, the way ``filemap_add_folio`` charges a new page-cache folio
(``mem_cgroup_charge``) and puts it on the inactive file list (``folio_add_lru``). The lists are
doubly linked over folio slots (``f_prev``/``f_next``, int32): head = most recently added, tail =
where reclaim looks first; every operation is O(1).

**The limit** (``memory_limit`` folios, memcg ``memory.max``). A charge that would exceed it runs
direct reclaim on the allocating thread (``mm/memcontrol.c: try_charge`` ->
``try_to_free_mem_cgroup_pages``) with ``nr_to_reclaim = max(nr_pages, SWAP_CLUSTER_MAX)``: it
frees at least 32 folios, so the cache falls a little below the limit and the next charges are free
until it fills again. The caller adds ``reclaimed * reclaim_cpu_time`` to the thread's CPU burst:
who allocates pays. Reclaim takes folios from the inactive tail (``shrink_inactive_list`` ->
``shrink_folio_list``):

* a folio that is locked (a read in flight, a fault installing it), referenced (``f_refs`` > 0:
  ``filemap_get_folio`` to ``folio_put``) or waited on cannot go: ``folio_trylock`` or the refcount
  freeze in ``__remove_mapping`` fails, and it is put back at the head (kept);
* otherwise ``folio_check_references``: the PTE accessed bits (``folio_referenced``, test and
  clear; set by every access to a mapped page and by the fault that maps it) and ``PG_referenced``.
  Accessed and PG_referenced set: activate (to the active head). Accessed only: set
  PG_referenced, keep (to the inactive head): a page used once since it came in gets one more
  round. Not accessed: reclaim it, unmapping it first if it is mapped (``try_to_unmap``).

**Balance** (``inactive_is_low``): before each pick, while ``inactive * ratio < active`` with
``ratio = int_sqrt(10 * gigabytes of the lists)`` (1 below 1 GiB), the active tail is deactivated to
the inactive head, its accessed bits cleared (``shrink_active_list``; the VM_EXEC exception is not
modelled: no VMA here is executable).

**Refault distance** (``mm/workingset.c``): an eviction leaves a shadow entry in the folio's slot,
the value of ``nonresident_age`` (evictions plus activations so far). A folio read again whose
distance ``age - shadow`` is at most the active list's size would have stayed resident had the
inactive list been that much longer: it is activated at once (``workingset_refault``).

**One list** (``lru_lists=1``): an exact LRU for closed-form tests: a new folio enters at the head,
every reference (a fault that maps it, an access to it mapped) moves it to the head, reclaim takes
the tail (pinned folios are kept, at the head, as above).

If reclaim finds too few folios it can free (every resident folio pinned) the kernel retries and
finally invokes the OOM killer: the run is marked overloaded and out of memory rather than exceeding
the limit. Anonymous (zram) folios share these lists with file folios: the kernel keeps them apart,
which only matters with ``swappiness``, not modelled.
"""

import numpy as np
from numba import njit

from .state import (F_ABSENT, I_CACHE_PAGES, I_LRU_HEAD, I_LRU_LEN, I_LRU_TAIL,
                    I_NONRESIDENT_AGE, I_OUT_OF_MEMORY, I_OVERLOAD, LRU_ACTIVE, LRU_INACTIVE,
                    LRU_NONE, OWNER_NONE, P_RECLAIM_CPU, Q_LRU_LISTS, Q_MEMORY_LIMIT,
                    Q_RECLAIM_LRU, R_NOW, S_CACHE_MAX, S_LIFETIME_SUM, S_RECLAIM_CPU,
                    S_RECLAIMS, S_RESIDENCE_SUM, S_TABLE_EVICTIONS, SWAP_CLUSTER_MAX)
from .stats import count, observe_max

#: pages in a gigabyte (4 KiB pages): ``inactive_is_low``'s ``>> (30 - PAGE_SHIFT)``
PAGES_PER_GB = 1 << 18


# ---- the lists ---------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _push_head(S, lru, slot):
    head = S.ints[I_LRU_HEAD + lru]
    S.f_prev[slot] = -1
    S.f_next[slot] = head
    if head >= 0:
        S.f_prev[head] = slot
    else:
        S.ints[I_LRU_TAIL + lru] = slot
    S.ints[I_LRU_HEAD + lru] = slot
    S.ints[I_LRU_LEN + lru] += 1
    S.f_lru[slot] = lru


@njit(cache=True, inline="always")
def _unlink(S, slot):
    lru = S.f_lru[slot]
    prev = S.f_prev[slot]
    nxt = S.f_next[slot]
    if prev >= 0:
        S.f_next[prev] = nxt
    else:
        S.ints[I_LRU_HEAD + lru] = nxt
    if nxt >= 0:
        S.f_prev[nxt] = prev
    else:
        S.ints[I_LRU_TAIL + lru] = prev
    S.ints[I_LRU_LEN + lru] -= 1
    S.f_lru[slot] = LRU_NONE
    S.f_prev[slot] = -1
    S.f_next[slot] = -1


@njit(cache=True, inline="always")
def _move_to_head(S, lru, slot):
    if S.ints[I_LRU_HEAD + lru] == slot and S.f_lru[slot] == lru:
        return
    _unlink(S, slot)
    _push_head(S, lru, slot)


@njit(cache=True, inline="always")
def _pinned(S, slot):
    """``folio_trylock`` fails (a read in flight, a fault installing it) or the refcount freeze of
    ``__remove_mapping`` does (a reference, or waiters that will take one)."""
    return S.f_owner[slot] != OWNER_NONE or S.f_refs[slot] > 0 or S.f_wq_head[slot] >= 0


@njit(cache=True, inline="always")
def _inactive_ratio(S):
    """``inactive_is_low``'s ratio: ``int_sqrt(10 * gb)`` of the lists' size, 1 below 1 GiB."""
    gb = (S.ints[I_LRU_LEN + LRU_INACTIVE] + S.ints[I_LRU_LEN + LRU_ACTIVE]) // PAGES_PER_GB
    if gb <= 0:
        return 1
    return np.int64(np.sqrt(10.0 * gb))


@njit(cache=True)
def _balance(S):
    """``shrink_active_list`` while ``inactive_is_low``: deactivate from the active tail."""
    ratio = _inactive_ratio(S)
    while S.ints[I_LRU_LEN + LRU_INACTIVE] * ratio < S.ints[I_LRU_LEN + LRU_ACTIVE]:
        slot = S.ints[I_LRU_TAIL + LRU_ACTIVE]
        _unlink(S, slot)
        S.f_accessed[slot] = 0          # folio_referenced() tested and cleared the young bits
        _push_head(S, LRU_INACTIVE, slot)


# ---- what the engine calls ---------------------------------------------------------------------

@njit(cache=True)
def reference(S, Q, slot):
    """A thread touched the folio through a PTE (an access to a mapped page, or the fault that
    mapped it): the accessed bit is set; with one list the folio moves to the head."""
    if not Q[Q_RECLAIM_LRU] or S.f_lru[slot] == LRU_NONE:
        return
    if Q[Q_LRU_LISTS] == 1:
        _move_to_head(S, LRU_INACTIVE, slot)
    else:
        S.f_accessed[slot] = 1


@njit(cache=True)
def _evict(S, slot):
    """Take a resident folio out of the lists and the charge; return its residence time."""
    _unlink(S, slot)
    S.ints[I_CACHE_PAGES] -= 1
    residence = S.reals[R_NOW] - S.f_charged_at[slot]
    count(S, S_RESIDENCE_SUM, residence)
    return residence


@njit(cache=True)
def _reclaim_one(S, slot):
    """``__remove_mapping`` (after ``try_to_unmap`` if mapped): the folio leaves, a shadow entry
    with the eviction's age stays in its slot (``workingset_eviction``)."""
    _evict(S, slot)
    S.f_state[slot] = F_ABSENT
    S.f_deadline[slot] = np.inf
    S.f_referenced[slot] = 0
    S.f_accessed[slot] = 0
    S.f_shadow[slot] = S.ints[I_NONRESIDENT_AGE]
    S.ints[I_NONRESIDENT_AGE] += 1
    count(S, S_RECLAIMS, 1.0)
    count(S, S_LIFETIME_SUM, S.reals[R_NOW] - S.f_exposed_at[slot])


@njit(cache=True)
def shrink(S, Q, need):
    """Direct reclaim of at least ``need`` folios (``try_to_free_mem_cgroup_pages``): frees up to
    ``max(need, SWAP_CLUSTER_MAX)`` from the inactive tail; returns the folios freed.

    It gives up after scanning every folio on the lists twice (the kernel's priority loop scans
    the whole lists at priority 0, and a referenced folio needs two passes to be activated):
    the caller decides whether what it freed is enough."""
    target = max(need, SWAP_CLUSTER_MAX)
    two_lists = Q[Q_LRU_LISTS] == 2
    budget = 2 * (S.ints[I_LRU_LEN + LRU_INACTIVE] + S.ints[I_LRU_LEN + LRU_ACTIVE]) + 1
    reclaimed = 0
    while reclaimed < target and budget > 0:
        budget -= 1
        if two_lists:
            _balance(S)
        slot = S.ints[I_LRU_TAIL + LRU_INACTIVE]
        if slot < 0:
            break
        if _pinned(S, slot):
            _move_to_head(S, LRU_INACTIVE, slot)     # keep: putback_movable... at the head
            continue
        if two_lists:
            # folio_check_references
            accessed = S.f_accessed[slot]
            referenced = S.f_referenced[slot]
            S.f_accessed[slot] = 0
            S.f_referenced[slot] = 0
            if accessed:
                if referenced:
                    _unlink(S, slot)
                    _push_head(S, LRU_ACTIVE, slot)  # FOLIOREF_ACTIVATE
                    S.ints[I_NONRESIDENT_AGE] += 1  # activations age the workingset too
                else:
                    S.f_referenced[slot] = 1        # FOLIOREF_KEEP with PG_referenced
                    _move_to_head(S, LRU_INACTIVE, slot)
                continue
        _reclaim_one(S, slot)
        reclaimed += 1
    return reclaimed


@njit(cache=True)
def charge(S, P, Q, slot):
    """A folio is allocated for ``slot`` (``filemap_add_folio``/``mem_cgroup_charge``, or a zram
    swap-in's ``mem_cgroup_swapin_charge_folio``): charge it, reclaiming first if the limit would
    be exceeded, and put it on the LRU. Returns the folios reclaimed (the caller's CPU pays
    ``reclaim_cpu_time`` for each)."""
    reclaimed = _make_room(S, P, Q)
    if Q[Q_MEMORY_LIMIT] > 0 and S.ints[I_CACHE_PAGES] + 1 > Q[Q_MEMORY_LIMIT]:
        # nothing reclaimable: mem_cgroup_out_of_memory
        S.ints[I_OUT_OF_MEMORY] = 1
        S.ints[I_OVERLOAD] = 1
    _add(S, Q, slot)
    return reclaimed


@njit(cache=True)
def charge_readahead(S, P, Q, slot):
    """A read-around folio: charged like :func:`charge`, but readahead allocates with
    ``__GFP_NORETRY`` (``mm/readahead.c: ractl_alloc_folio``), so where reclaim cannot make room
    the charge fails and ``page_cache_ra_unbounded`` submits what it has and stops: no OOM.
    Returns the folios reclaimed, or ``-1 - reclaimed`` if the folio could not be charged (the
    caller stops its read-around there)."""
    reclaimed = _make_room(S, P, Q)
    if Q[Q_MEMORY_LIMIT] > 0 and S.ints[I_CACHE_PAGES] + 1 > Q[Q_MEMORY_LIMIT]:
        return -1 - reclaimed
    _add(S, Q, slot)
    return reclaimed


@njit(cache=True, inline="always")
def _make_room(S, P, Q):
    """Direct reclaim before a charge that would exceed the limit (``try_charge``)."""
    reclaimed = 0
    limit = Q[Q_MEMORY_LIMIT]
    if limit > 0 and S.ints[I_CACHE_PAGES] + 1 > limit:
        reclaimed = shrink(S, Q, S.ints[I_CACHE_PAGES] + 1 - limit)
        count(S, S_RECLAIM_CPU, reclaimed * P[P_RECLAIM_CPU])
    return reclaimed


@njit(cache=True, inline="always")
def _add(S, Q, slot):
    """The charge itself: count the folio and put it on its list (the workingset decides which)."""
    S.ints[I_CACHE_PAGES] += 1
    observe_max(S, S_CACHE_MAX, S.ints[I_CACHE_PAGES])
    S.f_charged_at[slot] = S.reals[R_NOW]
    S.f_referenced[slot] = 0
    S.f_accessed[slot] = 0
    lru = LRU_INACTIVE
    shadow = S.f_shadow[slot]
    if Q[Q_LRU_LISTS] == 2 and shadow >= 0:
        # workingset_refault: activate if the refault distance fits in the active list
        if S.ints[I_NONRESIDENT_AGE] - shadow <= S.ints[I_LRU_LEN + LRU_ACTIVE]:
            lru = LRU_ACTIVE
            S.ints[I_NONRESIDENT_AGE] += 1
    S.f_shadow[slot] = -1
    _push_head(S, lru, slot)


@njit(cache=True)
def table_evicted(S, Q, slot):
    """The set-associative folio table dropped ``slot`` to make room for another page. Not reclaim
    (the memory limit did not ask for it): counted apart (``S_TABLE_EVICTIONS``)."""
    if Q[Q_RECLAIM_LRU] and S.f_lru[slot] != LRU_NONE:
        _evict(S, slot)
    S.f_shadow[slot] = -1
    S.f_referenced[slot] = 0
    S.f_accessed[slot] = 0
    count(S, S_TABLE_EVICTIONS, 1.0)
