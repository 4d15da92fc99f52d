"""Page tables over the page cache: fault-around, and the zap of an unmapped VMA.

A folio is *mapped* when a PTE of the process points at it. Two kernel paths change that besides a
fault installing its own PTE (``threads.install_done``):

* fault-around (``mm/memory.c: do_read_fault -> do_fault_around -> filemap_map_pages``): before a
  read fault calls ``filemap_fault``, it maps the folios of an aligned window of
  ``faultaround_pages`` pages around the faulting address, within the VMA, that are in the page
  cache, uptodate and unlocked (``next_uptodate_folio`` skips a folio it cannot ``folio_trylock``
  or that is not uptodate). They need no fault later. The CPU it costs (~0.1 µs a folio) is left
  inside ``fault_cpu_time``. The kernel also skips folios marked ``PG_readahead`` (so that the
  async readahead they trigger happens); the model has no async readahead and maps them.
* the zap of munmap (``mm/memory.c: unmap_page_range -> zap_pte_range``): every mapped folio of
  the VMA loses its PTE and stays in the page cache, cached and exposed to reclaim.

Walks over a VMA's pages look them up with ``folio.find``, which inserts nothing
(``filemap_get_entry``), so that they do not evict anything from the bounded folio table.
"""

from numba import njit

from . import folio
from .state import (F_CACHED, F_MAPPED, OWNER_NONE, Q_FAULTAROUND, Q_PAGES_PER_VMA, R_NOW,
                    S_FAULTAROUND_MAPS)
from .stats import count


@njit(cache=True)
def fault_around(S, P, Q, key):
    """``filemap_map_pages`` over the aligned window of ``faultaround_pages`` around page ``key``
    (clipped to its VMA): map its cached, uptodate, unlocked folios, except ``key``'s own (the
    fault goes on with it). Returns the number of folios mapped."""
    window = Q[Q_FAULTAROUND]
    pages = Q[Q_PAGES_PER_VMA]
    vma_base = (key // pages) * pages
    page = key - vma_base
    first = page - page % window           # ALIGN_DOWN(pte_off, fault_around_pages)
    last = min(first + window, pages)
    now = S.reals[R_NOW]
    mapped = 0
    for p in range(first, last):
        if p == page:
            continue
        slot = folio.find(S, P, Q, vma_base + p)
        if (slot >= 0 and S.f_state[slot] == F_CACHED and S.f_owner[slot] == OWNER_NONE
                and now >= S.f_uptodate_at[slot]):
            S.f_state[slot] = F_MAPPED
            folio.reference(S, Q, slot)    # set_pte_range: x86 installs prefaulted PTEs young
            if S.f_refs[slot] == 0:
                folio.expose(S, slot)          # its reclaim clock restarts as a mapped folio
            mapped += 1
    count(S, S_FAULTAROUND_MAPS, mapped)
    return mapped


@njit(cache=True)
def mapped_pages(S, P, Q, vma):
    """Mapped folios of ``vma`` (settled: reclaim may have unmapped some meanwhile)."""
    pages = Q[Q_PAGES_PER_VMA]
    n = 0
    for p in range(pages):
        slot = folio.find(S, P, Q, vma * pages + p)
        if slot >= 0 and S.f_state[slot] == F_MAPPED:
            n += 1
    return n


@njit(cache=True)
def zap(S, P, Q, vma):
    """``zap_pte_range`` over ``vma``: its mapped folios become cached, exposed to reclaim."""
    pages = Q[Q_PAGES_PER_VMA]
    for p in range(pages):
        slot = folio.find(S, P, Q, vma * pages + p)
        if slot >= 0 and S.f_state[slot] == F_MAPPED:
            S.f_state[slot] = F_CACHED
            if S.f_refs[slot] == 0 and S.f_owner[slot] == OWNER_NONE:
                folio.expose(S, slot)
