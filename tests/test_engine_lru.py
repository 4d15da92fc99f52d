"""The memory limit of the Monte Carlo engine (``reclaim="lru"``) against theory and hand-derived
cases.

* Che's approximation (Che, Tung and Wang 2002; Fricker, Robert and Roberts 2012): an LRU cache of
  C pages under independent references with probabilities p_i has a characteristic time T solving
  sum_i (1 - exp(-p_i T)) = C, and hit ratio sum_i p_i (1 - exp(-p_i T)); for C >= ~100 its error
  is well under a few percent. With one list (``lru_lists=1``), one thread, Zipf references and
  one page per read, the engine's hit ratio per access (no fault or a minor fault) must match it.
  Reclaim frees SWAP_CLUSTER_MAX = 32 folios at a time, so the cache's size saws between
  limit - 32 and limit: C is the cache's measured time-average size.
* Little's law for the cache: time-average folios resident = folios that leave per second times
  their mean residence (both measured), where every folio leaves within the run.
* The limit is never exceeded; a limit above the working set reclaims nothing.
* Two lists, by hand on the engine's own functions: a page the thread touched again after it was
  first scanned is activated and survives the scan that reclaims the pages touched once.
* Direct reclaim is paid by the allocating thread: with one thread the same seed gives the same
  references whatever the cost, so the mean fault latency grows by exactly
  (reclaims per fault) x ``reclaim_cpu_time``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

import faultlock
from faultlock.model.montecarlo import lru, rng, state
from faultlock.model.montecarlo import simulate as sm

#: Che's approximation's error for caches of hundreds of pages under Zipf references (Fricker,
#: Robert and Roberts 2012 report well under 1 % at C ~ 100s; we allow 2 %)
CHE_RTOL = 0.02


def _zipf_lru(**changes) -> faultlock.Scenario:
    base = dict(threads=1, cpus=0, vmas=1, pages_per_vma=4096, page_popularity=0.8,
                readaround_pages=1, writer_rate=0.0, think_time=50e-6, io_latency=100e-6,
                memory_limit=512, lru_lists=1)
    return faultlock.Scenario(**{**base, **changes})


def _one(ds, name):
    return float(ds[name].isel(policy=0))


def che_hit_ratio(probabilities: np.ndarray, capacity: float) -> float:
    """Che's approximation of an LRU cache's hit ratio (``capacity`` pages)."""
    def occupancy(t):
        return np.sum(-np.expm1(-probabilities * t)) - capacity
    t = brentq(occupancy, 1e-9, 1e12)
    return float(np.sum(probabilities * -np.expm1(-probabilities * t)))


@pytest.fixture(scope="module")
def zipf_run():
    return sm.simulate(_zipf_lru(), ["mainline"], seed=5, operations=40_000, batches=20)


def test_single_list_lru_matches_che(zipf_run):
    d = zipf_run
    weights = np.arange(1.0, 4097.0) ** -0.8
    p = weights / weights.sum()
    capacity = _one(d, "cache_pages_mean")
    che = che_hit_ratio(p, capacity)
    hit = _one(d, "nofault_share") + _one(d, "minor_share")
    ci = float(d["nofault_share_ci"].isel(policy=0)) + float(d["minor_share_ci"].isel(policy=0))
    assert abs(hit - che) <= CHE_RTOL * che + ci, (hit, che, ci)
    # sanity of the regime: a real cache, neither empty nor holding everything
    assert 0.3 < che < 0.7


def test_little_law_for_the_cache():
    """Uniform references: every folio comes and goes within the run (under Zipf the hottest
    pages stay resident for good, and a run's departures cannot see them)."""
    d = sm.simulate(_zipf_lru(page_popularity=0.0), ["mainline"], seed=6, operations=20_000,
                    batches=20)
    assert _one(d, "reclaim_rate") > 0
    mean, law = _one(d, "cache_pages_mean"), _one(d, "cache_pages_little")
    slack = 2 * (float(d["cache_pages_mean_ci"].isel(policy=0))
                 + float(d["cache_pages_little_ci"].isel(policy=0)))
    assert abs(mean - law) <= slack, (mean, law, slack)


def test_the_limit_is_never_exceeded_and_reclaim_keeps_pace(zipf_run):
    d = zipf_run
    assert _one(d, "cache_pages_max") <= 512
    # the cache saws between limit - SWAP_CLUSTER_MAX and the limit
    assert 512 - state.SWAP_CLUSTER_MAX - 1 <= _one(d, "cache_pages_mean") <= 512
    # in a steady state every folio read pushes one out: reclaims = folios brought in
    brought = _one(d, "pages_read_per_fault") * _one(d, "fault_rate")
    slack = 2 * float(d["reclaim_rate_ci"].isel(policy=0)) + 0.02 * brought
    assert _one(d, "reclaim_rate") == pytest.approx(brought, abs=slack)
    assert _one(d, "table_eviction_rate") == 0.0
    assert bool(d["valid"].isel(policy=0))
    # the characteristic time: an unreferenced folio lives about C / (miss rate) under LRU
    assert _one(d, "cache_lifetime_mean") > 0


def test_a_limit_above_the_working_set_reclaims_nothing():
    """Once all 256 pages are in, nothing faults: mmap_lock writers keep the batches going (a
    batch is a number of operations, faults or writer sections)."""
    s = _zipf_lru(pages_per_vma=256, memory_limit=300, lru_lists=2, writer_rate=2000.0,
                  writer_hold=5e-6, writer_vma_share=0.0)
    d = sm.simulate(s, ["mainline"], seed=2, operations=2000, batches=10)
    assert _one(d, "reclaim_rate") == 0.0
    assert np.isnan(_one(d, "cache_lifetime_mean"))
    assert _one(d, "cache_pages_max") <= 256


def test_a_large_address_space_under_a_limit_keeps_its_folios_in_the_table():
    """The set-associative table (2**22 pages) is sized for the limit: it never drops a resident
    folio, and the limit, not the table, bounds the cache."""
    d = sm.simulate(_zipf_lru(pages_per_vma=2**22, page_popularity=0.0, memory_limit=2048,
                              readaround_pages=8, threads=4, lru_lists=2),
                    ["mainline"], seed=3, operations=4000, batches=10)
    assert _one(d, "table_eviction_rate") == 0.0
    assert _one(d, "reclaim_rate") > 0
    assert _one(d, "cache_pages_max") <= 2048
    assert _one(d, "pages_read_per_fault") == pytest.approx(8.0, rel=0.01)


def test_everything_pinned_is_out_of_memory_not_a_silent_overshoot():
    """Two reads of 32 pages in flight cannot fit a 40-page limit: the kernel would OOM."""
    s = _zipf_lru(threads=8, pages_per_vma=2**16, page_popularity=0.0, readaround_pages=32,
                  memory_limit=40, io_latency=1e-3)
    with pytest.warns(UserWarning, match="out of memory under mainline"):
        d = sm.simulate(s, ["mainline"], seed=1, operations=2000, batches=10)
    assert not bool(d["stable"].isel(policy=0))
    assert d.attrs["out_of_memory"] == 1


def test_direct_reclaim_is_paid_by_the_allocating_thread():
    """One thread, CPUs unlimited: the references, and so the reclaims, do not depend on the
    cost; each reclaim adds reclaim_cpu_time to the latency of the fault that allocated."""
    kw = dict(seed=4, operations=6000, batches=10)
    free = sm.simulate(_zipf_lru(reclaim_cpu_time=0.0), ["mainline"], **kw)
    cost = 50e-6
    paid = sm.simulate(_zipf_lru(reclaim_cpu_time=cost), ["mainline"], **kw)
    reclaims_per_fault = _one(free, "reclaim_rate") / _one(free, "fault_rate")
    assert _one(paid, "reclaim_rate") / _one(paid, "fault_rate") == pytest.approx(
        reclaims_per_fault, rel=1e-9)
    assert _one(paid, "fault_latency_mean") - _one(free, "fault_latency_mean") == pytest.approx(
        reclaims_per_fault * cost, rel=1e-6)
    # the CPU spent: reclaim_rate x reclaim_cpu_time
    assert _one(paid, "reclaim_cpu_share") == pytest.approx(_one(paid, "reclaim_rate") * cost,
                                                            rel=1e-9)
    assert _one(free, "reclaim_cpu_share") == 0.0


def test_hazard_mode_has_no_cache_metrics():
    s = faultlock.Scenario(threads=2, vmas=1, pages_per_vma=1024, writer_rate=0.0,
                           reclaim="hazard", reclaim_rate_cached=2000.0,
                           reclaim_rate_mapped=200.0)
    d = sm.simulate(s, ["mainline"], seed=1, operations=2000, batches=10)
    assert np.isnan(_one(d, "cache_pages_mean")) and np.isnan(_one(d, "cache_lifetime_mean"))
    assert _one(d, "pages_read_per_fault") > 1      # read-around of 32 pages
    assert _one(d, "reclaim_rate") > 0


# ---- two lists, by hand -------------------------------------------------------------------------

def _bare_state(limit: int):
    """An engine state with nothing running: the LRU functions are called one by one."""
    scenario = _zipf_lru(memory_limit=limit, lru_lists=2, pages_per_vma=1024)
    P, Q = sm.parameters(scenario, "mainline", operations=1000, batches=10, warmup=0.2,
                         max_events=10**6, max_time=np.inf, check=False)
    streams = rng.seed_streams(np.random.SeedSequence(0), sm._stream_count(scenario))
    arrays = state.allocate(P, Q, streams)
    return arrays, P, Q


def _fault_in(arrays, P, Q, page):
    """A fault reads ``page`` and maps it (the new PTE is young): charge, map, reference."""
    reclaimed = lru.charge(arrays.struct, P, Q, page)
    arrays.f_state[page] = state.F_MAPPED
    lru.reference(arrays.struct, Q, page)
    return reclaimed


def test_two_lists_a_page_touched_again_survives_a_scan_of_pages_used_once():
    """Limit 64 pages (below 1 GiB: inactive_ratio 1).

    1. Pages 0..63 are faulted in (each accessed once, by its fault): the cache is full.
    2. Page 64's charge reclaims: the first pass finds all 64 accessed, sets PG_referenced and
       keeps them (rotates); the second pass reclaims the oldest 32 (0..31, PG_referenced but
       not accessed again: FOLIOREF_RECLAIM_CLEAN) and stops at SWAP_CLUSTER_MAX.
    3. The thread touches page 40 again (its PTE becomes young).
    4. Pages 65..95 fill the room; page 96's charge reclaims again: 32..63 are at the tail with
       PG_referenced; page 40 is also accessed: it is activated, the other 31 go, and the scan
       goes on into 64.. (accessed once: kept with PG_referenced) until 32 are freed.
    """
    arrays, P, Q = _bare_state(64)
    S = arrays.struct
    for page in range(64):
        assert _fault_in(arrays, P, Q, page) == 0
    assert arrays.ints[state.I_CACHE_PAGES] == 64
    assert _fault_in(arrays, P, Q, 64) == 32
    assert all(arrays.f_state[p] == state.F_ABSENT for p in range(32))
    assert all(arrays.f_referenced[p] == 1 for p in range(32, 64))
    lru.reference(S, Q, 40)
    for page in range(65, 96):
        assert _fault_in(arrays, P, Q, page) == 0
    assert _fault_in(arrays, P, Q, 96) == 32
    assert arrays.f_state[40] == state.F_MAPPED
    assert arrays.f_lru[40] == state.LRU_ACTIVE
    gone = [p for p in range(32, 64) if p != 40]
    assert all(arrays.f_state[p] == state.F_ABSENT for p in gone)
    # 31 of 32..63 plus the oldest page faulted after the first reclaim (64)
    assert arrays.f_state[64] == state.F_ABSENT
    assert all(arrays.f_state[p] == state.F_MAPPED for p in range(65, 97))
    assert arrays.ints[state.I_CACHE_PAGES] == 64 + 1 - 32
    # Each eviction left a shadow entry, its age (nonresident_age: evictions + activations):
    # 63 was evicted second to last, 64 last. Refault distance = age now - shadow; a refault
    # within the active list's size (page 40 alone: 1) is activated at once (workingset_refault).
    age = arrays.ints[state.I_NONRESIDENT_AGE]
    assert arrays.f_shadow[64] == arrays.f_shadow[63] + 1 == age - 1
    _fault_in(arrays, P, Q, 63)                      # distance 2 > 1: inactive
    assert arrays.f_lru[63] == state.LRU_INACTIVE
    _fault_in(arrays, P, Q, 64)                      # distance 1 <= 1: active
    assert arrays.f_lru[64] == state.LRU_ACTIVE


def test_two_lists_a_pinned_folio_is_kept_not_reclaimed():
    """A folio with a reference or a lock holder at the tail is rotated, and reclaim takes the
    next: folio_trylock / the refcount freeze fail."""
    arrays, P, Q = _bare_state(40)
    for page in range(40):
        lru.charge(arrays.struct, P, Q, page)        # cached, never mapped: not referenced
        arrays.f_state[page] = state.F_CACHED
    arrays.f_refs[0] = 1
    arrays.f_owner[1] = 7
    assert lru.charge(arrays.struct, P, Q, 40) == 32
    assert arrays.f_state[0] == state.F_CACHED and arrays.f_state[1] == state.F_CACHED
    assert all(arrays.f_state[p] == state.F_ABSENT for p in range(2, 34))
