"""The analytic model: the same metrics as :func:`faultlock.simulate`, from formulas, fast.

``predict(scenario, policies)`` solves, for every cell of the scenario's grid and every policy
(one compiled loop over the (policy, cell) elements, spread over the cores: ``solve.py``), one
fixed point that ties together the pieces derived in :mod:`faultlock.model.formulas` (each
formula lives there once, with its assumptions), each sub-model written once, compiled, in the
module of its concept (named state: ``layout.py``):

* **pages** (``page_*_share``): each page of the Zipf popularity law is a semi-Markov cycle absent
  -> locked (being faulted in, or read around) -> cached -> mapped -> absent under the reclaim
  hazards, so an access is a hit, a minor fault (cached), a major fault (absent), a zram swap-in, or
  joins a fault already reading the folio.  The Zipf law is summed exactly for the hottest ranks and
  by Gauss-Legendre quadrature in log-rank for the tail (:func:`zipf_nodes`).
* **the memory limit** (``reclaim="lru"``, ``memory_limit > 0``; :mod:`.pages`,
  ``formulas/lru_cache.py``): the hazards give way to the LRU's characteristic time (Che, Tung
  and Wang 2002), solved in every pass: each folio lives a near-deterministic T_c after its last
  reference (one list), or passes the inactive list's tail checks and the FIFO active list as
  ``mm/vmscan.c`` runs them (two lists, the active list balanced by ``inactive_is_low``, a
  refault whose distance fits the active list activated by ``mm/workingset.c``), T_c set so that
  the resident folios (reading, cached, mapped) fill the limit.  A retry misses iff its window
  exceeds what is left of T_c after its read (``lru_retry_miss``); the rereads of the refault
  loop keep the page locked and charged, so T_c, the miss ratio and the loop are one fixed
  point; every folio brought in pushes one out (the reclaim rate), and direct reclaim's CPU
  (``reclaim_cpu_time`` per folio) is the faulting thread's.  Validated against the Monte Carlo
  by :mod:`.lru_validation`.  The Monte Carlo-only workloads (``file_rounds``, holes, noise
  threads) are refused (ArgumentError).
* **the fault path of each policy** (``policies.py`` switches, the state machines of kernel.md §6
  as coded in ``montecarlo/threads.py``): every major file fault drops its lock and retries
  (``VM_FAULT_RETRY``); the retry costs ``fault_cpu_time`` before its folio lookup; a TRIED retry
  re-reads holding its lock; ``vma_wait`` and ``legacy_hold`` never drop.  Expected latency, CPU
  time, wake-ups, reads, retries, refaults, lock acquisitions and holds per fault class follow.
* **the refault loop** (``refault_success_window``, ``refault_attempts_truncated``): the exposure
  window is the re-entry CPU plus, under mainline, the ``mmap_lock`` wait; under ``vma_retry`` only
  a VMA-lock fallback; nil under ``vma_wait``.  The window depends on the lock wait, which depends
  on the refault reads holding the lock: solved jointly.
* **mmap_lock** (``writer_utilisation``, ``mg1_busy_period_residual``, ``blocked_wait_mean``,
  ``mginf_max_residual``): writers are vacations of the reader server; each writer shuts readers
  out for its hold (VMA drains included) plus, when it must queue, the drain of long read holders
  (reads under a TRIED retry, ``legacy_hold``); linux writers that spin on a running owner chain
  into writer busy periods (like ``writer_pref``), the textbook disciplines hand over directly and
  keep the lock through the grantee's wake-up.  ``rho_w >= 1`` is unstable: inf.
* **closed readers** (``lag_inside_probability``, ``lag_inside_residual``): a thread is blocked
  at most once per writer period, when its next acquisition falls inside it; few threads that
  come back quickly phase-lock to a (periodic) writer and wait nearly a whole hold, many slow
  ones give PASTA back.  Other mmap_lock readers (``reader_rate``) are an open stream: PASTA.
* **writer threads** (``_writer_rates``): periodic or flat out, ``writer_locks_per_op``
  acquisitions an operation, in this process or another (CPU only); periodic ones arrive
  together and chain, a flat-out one comes back to find the readers its last hold blocked.
* **group walks** (``_group_walk``): one major fault per page and group, followers that trail
  the leader by an exponential lag join its read or find the page mapped, and the retries pass
  the folio lock along a chain of wake-ups.
* **the per-VMA lock** (``vma_abort_probability``): a fault falls back to ``mmap_lock`` while its
  VMA is write-locked or draining; under ``vma_wait`` a writer's drain waits for the reads of the
  VMA's readers (the largest residual of an M/G/infinity system).
* **storage** (``read_service_time``, ``finite_source_wait``): the device-depth curve and
  ``io_parallelism`` slots, seen by a thread's read among the other threads' reads.
* **CPUs** (``finite_source_wait``, ``finite_source_excess``): as in the engine, a woken thread
  preempts a thread that is only computing, so it waits only while every CPU runs fault work,
  writers or other readers, and then at the front of the run queue, until a CPU's fault work
  ends; readers granted together at a writer's release wake together, and those beyond the CPUs
  queue there one behind the other.  The computing between accesses shares what is left of the
  CPUs (processor sharing), which is where CPU saturation shows.
* **the closed loop** (``interactive_response_time_law``): N threads, access rate
  ``N / (think_time + miss x fault latency)``, so the model saturates as N grows.
* **the latency distribution**: a mixture over fault classes of fixed CPU and wake-up times, the
  read time (its law's CDF, linear between quantile levels) and an atom-or-exponential wait
  (``uniform_plus_wait_cdf``); quantiles, the jank share and the histogram are read from it.

What is not modelled (and so absent from the dataset): the engine's event rate and the longest
waits of a run (``mmap_read_wait_max``, ``mmap_write_wait_max``: they grow with the run length),
and the engine's newer metrics that need per-thread histories (``METRICS_ABSENT`` and any other
``simulate`` variable not produced here).  Group walks with read-around
(``readaround_pages > 1``) or swap VMAs are refused (ValueError).  The model is a steady state:
a scenario without reclaim (``reclaim_rate_mapped = 0``) maps every page it touches and has no
faults in steady state (the Monte Carlo then measures its cold start).

Where it holds and where it does not: see ``faultlock.model.validation`` and the README.

Modules: ``layout`` (named state), ``numeric`` (scalar numpy semantics, the share solve),
``inputs`` (the grid as rows), ``pages`` (pages and reclaim), ``walks`` (group walks),
``fault_paths`` (each policy's fault path), ``device`` (storage), ``lock`` (mmap_lock, VMA locks,
writers), ``cpu`` (CPUs), ``solve`` (the fixed point and the metrics), ``distribution`` (the
latency distribution), this module (``predict`` and its Dataset).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..numba_cache import invalidate_stale_cache

# The solve loop runs its (policy, cell) elements on numba's thread pool.  Its default layer on
# Linux is GNU OpenMP, which SIGTERMs a fork()ed child that uses it (multiprocessing's default
# start method; a Dask nanny; our crash tests): take a fork-safe layer (TBB, a dependency, which
# is also safe under concurrent calls; else numba's workqueue) unless the user chose one.
if "NUMBA_THREADING_LAYER" not in os.environ:
    import numba

    numba.config.THREADING_LAYER = "forksafe"

_HERE = Path(__file__).parent
# the compiled model calls the formulas' compiled forms, the laws and the engine's spin limit
invalidate_stale_cache(_HERE, [*sorted((_HERE.parent / "formulas").glob("*.py")),
                               _HERE.parent / "laws.py", _HERE.parent / "montecarlo" / "rwsem.py"],
                       "analytic-sources.sha256")

from .pages import zipf_nodes  # noqa: E402 (after the cache check)
from .predict import METRICS_ABSENT, predict  # noqa: E402

__all__ = ["METRICS_ABSENT", "predict", "zipf_nodes"]
