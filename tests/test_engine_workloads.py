"""Group walks and closed-loop writer threads in the Monte Carlo engine (SCENARIO_SPEC.md §1-2).

Each test sets up a scenario in which the new mechanism has a known answer (a count that follows
from the walk's definition, a renewal rate, a deterministic recursion) and compares the engine's
estimate with it, within ``Z`` batch-means half-widths (``<metric>_ci``; ``Z = 4`` for the reasons
given in ``test_engine_theory.py``). Where the answer is exact the half-width is near zero and the
comparison is exact up to batch boundaries (``slack``).

* Walks: every policy sees the same pages in the same order (common random numbers), memory does
  not grow with epochs, a group's leader is the only major fault of each page, a sequential walk
  with read-around R faults major once every R/2 pages (the read-around window is centred on the
  fault), and the kernel's major-fault count follows ``mm_account_fault``.
* Writer threads: a periodic thread keeps its rate, a flat-out one loops at 1/(k (g + h)), writers
  in another process take no lock of ours but take CPU from the readers, and a few threads
  against a periodic writer lock in phase and wait most of a hold (MODEL.md, traces).
"""

from __future__ import annotations

import numpy as np
import pytest

import faultlock
from faultlock.model.montecarlo import access, state
from faultlock.model.montecarlo import simulate as sm

Z = 4.0
S = faultlock.Scenario


def check(ds, name: str, theory: float, *, slack: float = 0.0, power: float = 0.1) -> None:
    """|MC - theory| <= Z ci + slack, with a finite, informative half-width."""
    mc = float(ds[name])
    ci = float(ds[name + "_ci"])
    assert np.isfinite(mc) and np.isfinite(ci), f"{name}: MC {mc} ± {ci} is not finite"
    assert ci <= power * abs(theory) + slack, (
        f"{name}: half-width {ci:.4g} too wide against {theory:.4g}")
    assert abs(mc - theory) <= Z * ci + slack, (
        f"{name}: MC {mc:.6g} ± {ci:.3g} vs theory {theory:.6g}: |diff| {abs(mc - theory):.3g} > "
        f"{Z} x {ci:.3g} + {slack:.3g}")


def walk(**changes) -> faultlock.Scenario:
    """A cold group walk as the harness runs it (one 4 KiB read per major fault, no reclaim), with
    unlimited CPUs, no wake-up cost and no writers unless asked."""
    base = dict(access_pattern="group_walk", vmas=1, pages_per_vma=2**26, readaround_pages=1,
                swap_share=0.0, io_latency=100e-6, io_latency_cv=0.5, io_distribution="lognormal",
                fault_cpu_time=0.0, cpus=0, wakeup_latency=0.0, think_time=1e-6,
                writer_rate=0.0, writer_vma_share=0.0, writer_fork_share=0.0,
                reclaim="hazard", reclaim_rate_cached=0.0, reclaim_rate_mapped=0.0)
    base.update(changes)
    return S(**base)


def idle_reader(**changes) -> faultlock.Scenario:
    """One reader that never faults (it sleeps off CPU for 1e6 s before its first access) and
    writer threads: writers only."""
    base = dict(threads=1, think_time=0.0, idle_time=1e6, cpus=0, wakeup_latency=0.0,
                writer_rate=0.0, writer_vma_share=0.0, writer_fork_share=0.0,
                writer_hold_distribution="lognormal", writer_hold_cv=0.5)
    base.update(changes)
    return S(**base)


def run(scenario, policy="mainline", operations=20_000, seed=0):
    return faultlock.simulate(scenario, policies=[policy], operations=operations, batches=20,
                              seed=seed).isel(policy=0)


# ----------------------------------------------------------------------------------------------
# Group walks (§1)
# ----------------------------------------------------------------------------------------------

def test_walk_permutations_depend_on_group_and_epoch_only():
    """perm_{g,e} is a permutation of 0..N-1 that depends on (key, g, e) and nothing else: the
    same whichever member or policy draws it first, and different for another group or epoch."""
    n, key = 257, np.uint64(0x1234_5678_9ABC_DEF0)
    out = np.empty(n, dtype=np.int32)
    perms = {}
    for g, e in [(0, 0), (1, 0), (0, 1), (5, 3)]:
        access.shuffle(out, key, g, e)
        assert sorted(out.tolist()) == list(range(n))
        perms[g, e] = out.copy()
    access.shuffle(out, key, 0, 0)                         # again, after the others
    np.testing.assert_array_equal(out, perms[0, 0])
    assert len({p.tobytes() for p in perms.values()}) == len(perms)
    access.shuffle(out, key + np.uint64(1), 0, 0)          # another run (seed): another walk
    assert not np.array_equal(out, perms[0, 0])


def test_every_policy_walks_the_same_pages_and_memory_stays_bounded():
    """Two policies run from the same seed share the walk key, and each group's stored
    permutations are perm_{g,e} of their epoch; the table holds two epochs per group however many
    epochs the run walked."""
    scenario = walk(threads=6, group_size=2, walk_pages=64)
    tables = []
    for policy in ("mainline", "vma_retry"):
        _, Q = sm.parameters(scenario, policy, operations=3000, batches=10, warmup=0.1,
                             max_events=10**8, max_time=np.inf, check=False)
        St, summary = sm.run_policy(scenario, policy, np.random.SeedSequence(7), operations=3000,
                                    batches=10, warmup=0.1, max_events=10**8, max_time=np.inf,
                                    check=False)
        assert summary["walk_epochs"] > 5 and not summary["walk_wrapped"]
        assert St.walk_perm.shape == (2 * 3, 64)
        key = St.streams[int(Q[state.Q_WALK_KEY_STREAM])]
        out = np.empty(64, dtype=np.int32)
        for row in range(St.walk_perm.shape[0]):
            access.shuffle(out, key, row // 2, int(St.walk_epoch[row]))
            np.testing.assert_array_equal(St.walk_perm[row], out)
        tables.append((key, St.walk_perm.copy(), St.walk_epoch.copy()))
    assert tables[0][0] == tables[1][0]


@pytest.mark.parametrize("group", [1, 4, 8])
@pytest.mark.parametrize("policy", ["mainline", "vma_retry", "vma_wait"])
def test_lock_step_group_leader_is_the_only_major_fault(group, policy):
    """T = 8 threads in groups of G, CPUs unlimited, no wake-up cost: every page of a group's walk
    is accessed G times and read once, by whoever comes first, so major_share = 1/G of accesses
    exactly (no reclaim, no read-around). The members start together and think for ~1 µs against
    100 µs reads, so the followers find the leader's folio under read: they are waiters. Every
    access is classed once: the four shares sum to 1."""
    ds = run(walk(threads=8, group_size=group), policy)
    check(ds, "major_share", 1.0 / group, slack=1e-3)
    shares = sum(float(ds[f"{c}_share"]) for c in ("major", "waiter", "minor", "nofault"))
    assert shares == pytest.approx(1.0, abs=2e-3)
    if group > 1:
        assert float(ds.waiter_share) >= 0.9 * (group - 1) / group
        # a waiter's latency is the rest of the leader's read: shorter than a major fault
        assert float(ds.waiter_latency_mean) < float(ds.major_latency_mean)
    # a leader's fault is its read and nothing else here: mean = the mean read time
    check(ds, "major_latency_mean", 100e-6, power=0.05)
    assert bool(ds.converged)


@pytest.mark.parametrize("tried_after_major, expected", [(True, 1.0), (False, 0.0)])
def test_kernel_counts_a_retried_major_fault_major_only_since_6_8(tried_after_major, expected):
    """One thread, every access a cold file fault. Under mainline the read is started under the VMA
    lock, which returns RETRY, and the retry under mmap_lock maps the folio. ``mm_account_fault``
    counts the completing attempt: major if it ran TRIED (46e714c729c8, 6.8+) and minor before,
    although every fault read its page (the undercount that commit fixed)."""
    ds = run(walk(threads=1, tried_after_major=tried_after_major), operations=5000)
    assert float(ds.kernel_major_faults_per_fault) == expected
    assert float(ds.major_share) == 1.0
    # vma_wait completes in the attempt that read: VM_FAULT_MAJOR, whatever the switch
    ds = run(walk(threads=1, tried_after_major=tried_after_major), "vma_wait", operations=5000)
    assert float(ds.kernel_major_faults_per_fault) == 1.0


@pytest.mark.parametrize("readaround, threads, group", [(4, 1, 1), (16, 1, 1), (8, 4, 4)])
def test_sequential_walk_with_readaround(readaround, threads, group):
    """A sequential walk with read-around R: the window is centred on the faulting page
    (``do_sync_mmap_readahead``: ``ra->start = pgoff - ra_pages / 2``), so after the first read
    each major fault finds the R/2 pages behind it cached and reads the R/2 ahead: one major fault
    every R/2 pages, the rest minor (not 1/R: that would need the forward, asynchronous readahead
    the model does not have). Each page is accessed by the G members of its group."""
    ds = run(walk(threads=threads, group_size=group, walk_order="sequential", walk_pages=4096,
                  readaround_pages=readaround, io_latency_cv=0.0, io_distribution="deterministic",
                  fault_cpu_time=1e-6), operations=20_000)
    # a batch of 1000 faults holds a whole number of majors: +-1 per batch at its edges
    check(ds, "major_share", 2.0 / (readaround * group), slack=2e-3)
    if group == 1:
        check(ds, "minor_share", 1.0 - 2.0 / readaround, slack=2e-3)


# ----------------------------------------------------------------------------------------------
# Writer threads (§2)
# ----------------------------------------------------------------------------------------------

def test_periodic_writer_threads_keep_their_rate():
    """W periodic writers at rate r, unloaded (each operation far shorter than a period): W r
    operations and k W r write acquisitions per second. One writer alone never waits: its
    operation takes k (g + E[h]) and its CPU share is that times r."""
    W, r, k, g, h = 3, 500.0, 2, 5e-6, 20e-6
    ds = run(idle_reader(writer_mode="periodic", writer_threads=W, writer_op_rate=r,
                         writer_locks_per_op=k, writer_gap_cpu=g, writer_hold=h))
    check(ds, "writer_ops_rate", W * r, power=0.01)
    check(ds, "mmap_write_rate", k * W * r, power=0.01)
    assert float(ds.writer_op_latency_mean) >= k * (g + h) * 0.9
    one = run(idle_reader(writer_mode="periodic", writer_threads=1, writer_op_rate=r,
                          writer_locks_per_op=k, writer_gap_cpu=g, writer_hold=h))
    check(one, "writer_ops_rate", r, power=0.01)
    check(one, "writer_op_latency_mean", k * (g + h))
    check(one, "writer_cpu_share", k * (g + h) * r)
    assert float(one.mmap_write_wait_mean) == 0.0


@pytest.mark.parametrize("k", [1, 3])
def test_flat_out_writer_loops_at_one_over_k_gap_plus_hold(k):
    """A flat-out writer with no contention is a renewal process of cycles k (g + h): it achieves
    1 / (k (g + E[h])) operations per second and keeps one CPU busy."""
    g, h = 5e-6, 10e-6
    ds = run(idle_reader(writer_mode="flat_out", writer_threads=1, writer_locks_per_op=k,
                         writer_gap_cpu=g, writer_hold=h))
    check(ds, "writer_ops_rate", 1.0 / (k * (g + h)), power=0.02)
    check(ds, "mmap_write_rate", 1.0 / (g + h), power=0.02)
    check(ds, "writer_op_latency_mean", k * (g + h), power=0.02)
    check(ds, "writer_cpu_share", 1.0, slack=1e-9)
    check(ds, "writer_latency_mean", h, power=0.02)      # per acquisition: the hold


@pytest.mark.parametrize("where", ["process", "thread"])
def test_flat_out_writers_share_one_cpu(where):
    """W flat-out writers on one CPU (an idle reader): the CPU never idles and nobody spins in
    place, so together they complete 1 / (k (g + E[h])) operations per second, the CPU busy all
    the time. Each gives way at its acquisition boundaries to the others queued for the CPU
    (and, after giving way, runs on: two writers must not hand the CPU back and forth forever).
    In this process the holds also serialise on mmap_lock, which one CPU serialises anyway."""
    W, k, g, h = 3, 2, 5e-6, 10e-6
    ds = run(idle_reader(cpus=1, writer_mode="flat_out", writer_threads=W, writer_locks_per_op=k,
                         writer_gap_cpu=g, writer_hold=h, writer_where=where,
                         writer_spin=False))
    check(ds, "writer_ops_rate", 1.0 / (k * (g + h)), power=0.02)
    check(ds, "writer_cpu_share", 1.0, slack=1e-9)
    # each operation waits for the other writers' turns: about W times its own CPU
    assert float(ds.writer_op_latency_mean) > 0.8 * W * k * (g + h)


def test_writers_in_another_process_take_no_lock_but_cpu():
    """``writer_where='process'``: the writers' acquisitions are of another mm's mmap_lock. Ours
    sees no writer (no write acquisition, no reader wait), but their CPU is counted:
    W k (g + E[h]) r. On one CPU a flat-out control writer takes it from a reader."""
    W, r, k, g, h = 2, 2000.0, 2, 10e-6, 15e-6
    ds = run(walk(threads=4, writer_mode="periodic", writer_threads=W, writer_op_rate=r,
                  writer_locks_per_op=k, writer_gap_cpu=g, writer_hold=h,
                  writer_hold_distribution="lognormal", writer_hold_cv=0.5,
                  writer_where="process"))
    assert float(ds.mmap_write_rate) == 0.0
    assert float(ds.mmap_read_wait_mean) == 0.0
    check(ds, "writer_ops_rate", W * r, power=0.01)
    check(ds, "writer_cpu_share", W * k * (g + h) * r)

    reader = dict(threads=1, cpus=1, think_time=20e-6, fault_cpu_time=2e-6, io_latency=50e-6)
    alone = run(walk(**reader), operations=10_000)
    loaded = run(walk(**reader, writer_mode="flat_out", writer_threads=1, writer_locks_per_op=2,
                      writer_gap_cpu=10e-6, writer_hold=15e-6, writer_where="process"),
                 operations=10_000)
    # the reader wakes from its reads with lag and preempts the writer's gap (not its hold); the
    # writer gives way at its next acquisition: it takes what the reader leaves of the CPU
    reader_cpu = float(loaded.fault_rate) * (20e-6 + 2 * 2e-6)
    assert 0.5 < float(loaded.writer_cpu_share) <= 1.0 - 0.9 * reader_cpu
    assert float(loaded.fault_rate) < 0.95 * float(alone.fault_rate)
    assert float(loaded.fault_latency_mean) > float(alone.fault_latency_mean)
    assert float(loaded.mmap_write_rate) == 0.0


def _phase_locked_wait(period: float, hold: float, io_mean: float, io_cv: float,
                       reads: int = 200_000, seed: int = 0) -> float:
    """Mean mmap_lock wait of one thread against a periodic writer, with no CPU or wake-up cost:
    the thread's read ends at a; if a falls in a hold [j p, j p + h) it waits until j p + h, then
    starts its next read at once."""
    rng = np.random.default_rng(seed)
    s2 = np.log1p(io_cv**2)
    reads_ = np.exp(np.log(io_mean) - s2 / 2 + np.sqrt(s2) * rng.standard_normal(reads))
    t, waits = 0.0, np.empty(reads)
    for i, latency in enumerate(reads_):
        phase = (t + latency) % period
        waits[i] = hold - phase if phase < hold else 0.0
        t += latency + waits[i]
    return float(waits[reads // 100:].mean())


def test_phase_locking_against_a_periodic_writer():
    """MODEL.md (traces): a few threads against a periodic writer wait close to a whole hold, not
    half of one: the thread takes the lock as the writer leaves, starts a read, and returns during
    the next hold. Here p = 1 ms, h = 400 µs, reads of ~650 µs: a read started at a hold's end
    returns ~50 µs into the next hold. The engine agrees with the recursion of that loop, and the
    wait is far above what an arrival at a random time would see (rho h / 2 = 80 µs)."""
    p, h, io, cv = 1e-3, 400e-6, 650e-6, 0.05
    scenario = walk(threads=2, io_latency=io, io_latency_cv=cv, think_time=0.0,
                    writer_mode="periodic", writer_threads=1, writer_op_rate=1 / p,
                    writer_hold=h, writer_hold_distribution="deterministic")
    ds = run(scenario)
    theory = _phase_locked_wait(p, h, io, cv)
    check(ds, "mmap_read_wait_mean", theory, power=0.05)
    assert float(ds.mmap_read_wait_mean) > 0.7 * h > 3 * (h / p) * h / 2
    check(ds, "writer_ops_rate", 1 / p, power=0.01)


# ----------------------------------------------------------------------------------------------
# Invariants under the new workloads
# ----------------------------------------------------------------------------------------------

CONTENDED_WALK = walk(threads=8, group_size=2, walk_pages=256, cpus=2, wakeup_latency=10e-6,
                      fault_cpu_time=2e-6, think_time=5e-6, readaround_pages=4,
                      reclaim="hazard", reclaim_rate_cached=2000.0, reclaim_rate_mapped=50.0,
                      writer_mode="flat_out", writer_threads=2, writer_locks_per_op=2,
                      writer_gap_cpu=3e-6, writer_hold=5e-6, writer_vma_share=0.5,
                      writer_fork_share=0.1)


@pytest.mark.parametrize("scenario", [
    CONTENDED_WALK,
    CONTENDED_WALK.replace(group_size=8, walk_order="sequential", writer_mode="periodic",
                           writer_op_rate=5000.0, writer_threads=3, rwsem="phase_fair"),
], ids=["flat_out_writers", "periodic_writers_lock_step"])
def test_no_invariant_violation_and_a_consistent_state(scenario):
    """The checking mode finds no lock-invariant violation under any policy, and the whole state
    is consistent wherever a run stops (the checks of test_engine_invariants.py)."""
    from test_engine_invariants import check_state

    ds = faultlock.simulate(scenario, policies=faultlock.POLICIES, operations=5000, batches=10,
                            seed=5, check=True)
    assert int(ds.invariant_violations.sum()) == 0
    assert bool(ds.stable.all())
    for policy in ("mainline", "vma_retry", "vma_wait"):
        for stop in (4_001, 30_007):
            P, Q = sm.parameters(scenario, policy, operations=50_000, batches=10, warmup=0.1,
                                 max_events=stop, max_time=np.inf, check=True)
            St, summary = sm.run_policy(scenario, policy, np.random.SeedSequence([6, stop]),
                                        operations=50_000, batches=10, warmup=0.1,
                                        max_events=stop, max_time=np.inf, check=True)
            assert summary["violations"] == 0
            check_state(St, P, Q)


def test_a_walk_that_wraps_its_page_space_is_reported():
    """Epochs are fresh pages only while the address space lasts: a run that wraps it is told
    (a warning, and ``attrs['walk_wrapped']``), and a random walk too large for memory is
    refused."""
    # (reclaim keeps the walk faulting once every page has been mapped)
    small = walk(threads=2, walk_pages=64, pages_per_vma=256, reclaim="hazard",
                 reclaim_rate_mapped=2000.0)
    with pytest.warns(UserWarning, match="wrapped the page space"):
        ds = faultlock.simulate(small, policies=["mainline"], operations=2000, batches=10)
    assert ds.attrs["walk_wrapped"] == 1 and ds.attrs["walk_epochs"] > 4
    assert bool(ds.stable.all()) and np.isfinite(ds.fault_rate.values).all()
    big = walk(threads=4096, walk_pages=2**16, pages_per_vma=2**30)
    with pytest.raises(ValueError, match="walk_pages=65536 with 4096 groups"):
        faultlock.simulate(big, policies=["mainline"], operations=1000)
