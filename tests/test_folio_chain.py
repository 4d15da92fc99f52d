"""The folio lock's wake-up chain (issue 14): G threads fault on one folio, a hand-derived case.

``mm/filemap.c`` (6.18): the thread that starts the read without read-around (MADV_RANDOM) waits
for it in ``filemap_read_folio`` with ``folio_wait_locked_killable``, a *shared* wait; the threads
that find the folio locked wait in ``__folio_lock_killable``, *exclusive*. ``folio_wake_bit``
walks the wait queue in order and stops after the first exclusive waiter, which is woken
*without* the lock (``sysctl_page_lock_unfairness``) and takes it when it runs. So every unlock
wakes one exclusive waiter, and a shared waiter behind exclusive ones waits for them.

The case: G threads start together (think time 0) on the first page of a group walk; CPUs
unlimited (c >= G), a fixed read latency L, a fixed wake-up latency w and fault CPU c_f, no
writers. The first thread to run starts the read (c_f of CPU, then the submission); the G - 1
others find the folio locked at time 0, before the leader queues its shared wait at c_f, so the
queue is [F_1, ..., F_{G-1}, leader] and the read ends at R = c_f + L.

* ``vma_wait`` (nobody drops its lock): F_1 is woken at R, runs at R + w, takes the lock, maps
  the page (c_f) and unlocks, waking F_2: F_k finishes at R + k (w + c_f); the leader, woken as a
  shared waiter by F_{G-1}'s unlock, takes the lock after its own wake-up and maps:
  R + G (w + c_f). Latencies from time 0: c_f + L + k (w + c_f), k = 1..G.
* ``mainline``, G = 2, w > c_f: F_1 (woken at R, runs at R + w) takes and drops the lock, which
  wakes the leader, and returns VM_FAULT_RETRY; its retry (c_f later) finds the folio uptodate
  and unlocked and maps it: done at R + w + 2 c_f. The leader runs at R + 2 w, retries (c_f) and
  finds the page mapped: done at R + 2 w + 2 c_f.

Under the old model (the leader exclusive, every wake-up a hand-off of the lock) F_1's retry
found the folio locked by the leader, handed it while waking up, and waited again: the mainline
pair's latencies would not hold.
"""

from __future__ import annotations

import numpy as np
import pytest

import faultlock
from faultlock.model.montecarlo import engine, state
from faultlock.model.montecarlo import simulate as sm

READ = 50e-6
WAKE = 5e-6
CPU = 2e-6


def first_faults(threads: int, policy: str) -> dict[int, tuple[float, int]]:
    """Each thread's first fault: (latency, class), by stepping the engine one event at a time."""
    scenario = faultlock.Scenario(
        access_pattern="group_walk", threads=threads, group_size=threads, vmas=1,
        pages_per_vma=4096, walk_pages=64, readaround_pages=1, swap_share=0.0,
        io_latency=READ, io_latency_cv=0.0, io_distribution="deterministic",
        io_depth_slope=0.0, io_parallelism=0, fault_cpu_time=CPU, cpus=0,
        wakeup_latency=WAKE, think_time=0.0, writer_rate=0.0, writer_vma_share=0.0,
        writer_fork_share=0.0, reclaim="hazard", reclaim_rate_cached=0.0,
        reclaim_rate_mapped=0.0)
    run = sm.Run(scenario, policy, np.random.SeedSequence(3), batch_operations=100,
                 warmup_operations=0, capacity=1)
    S, P, Q = run.state, run._P, run._Q
    started: set[int] = set()
    done: dict[int, tuple[float, int]] = {}
    for _ in range(10_000):
        Q[state.Q_MAX_EVENTS] = S.ints[state.I_EVENTS] + 1
        engine.loop(S.struct, P, Q)
        for t in range(threads):
            # in a fault its continuation is a fault step; once done it thinks again (think
            # time 0: K_THINK_DONE is its next continuation)
            if S.ent_cont[t] != state.K_THINK_DONE:
                started.add(t)
            elif t in started and t not in done:
                latency = float(S.reals[state.R_NOW] - S.t_fault_start[t])
                done[t] = (latency, int(S.t_class[t]))
        if len(done) == threads:
            return done
    raise AssertionError(f"only {len(done)} of {threads} first faults completed")


@pytest.mark.parametrize("threads", [2, 4, 8])
def test_a_chain_of_waiters_that_keep_their_lock(threads):
    done = first_faults(threads, "vma_wait")
    got = sorted(latency for latency, _ in done.values())
    expected = [CPU + READ + k * (WAKE + CPU) for k in range(1, threads + 1)]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # the last to finish is the thread that started the read: it waited shared, behind them all
    classes = {cls for latency, cls in done.values() if latency == pytest.approx(expected[-1])}
    assert classes == {state.CLASS_MAJOR}
    assert sum(cls == state.CLASS_WAITER for _, cls in done.values()) == threads - 1


def test_mainline_pair_the_follower_maps_and_the_leader_finds_it_mapped():
    done = first_faults(2, "mainline")
    by_class = {cls: latency for latency, cls in done.values()}
    assert by_class[state.CLASS_WAITER] == pytest.approx(CPU + READ + WAKE + 2 * CPU, rel=1e-9)
    assert by_class[state.CLASS_MAJOR] == pytest.approx(CPU + READ + 2 * WAKE + 2 * CPU,
                                                        rel=1e-9)
