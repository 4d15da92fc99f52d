"""Invariants of the engine (issue 2 §5, second bullet).

* The engine's checking mode (``check=True``: after every event, never a writer together with
  another holder of ``mmap_lock``, never a negative reader count, never a VMA reader while its VMA
  is write-locked) finds nothing, for every policy, on contended scenarios that exercise forks, VMA
  writers, swap, reclaim, few CPUs and each rwsem discipline.
* The whole state is consistent when a run is stopped at arbitrary moments: the rwsem wait list,
  the reader count against the threads and background readers that hold or were granted the lock,
  the per-VMA reader counts, the VMA write locks against the ``mmap_lock`` writer, the writer and
  background-reader slots, the CPUs, the event calendar and the folio locks. (This check found an
  engine bug, now fixed: see ``two_cpus_spinning``.)
* Little's law per lock (time-average waiters against completed waits per second times their mean)
  within its interval, and Little's law for the faults themselves.
* Flow balance: every writer that arrives is served; the same seed gives the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

import faultlock
from faultlock import POLICIES
from faultlock.model.montecarlo import output, state
from faultlock.model.montecarlo import simulate as sm

Z = 4.0     # half-widths are from 20 batches; see test_engine_theory.py for the choice of 4


def contended(discipline: str = "linux", **changes) -> faultlock.Scenario:
    """android_warm_start (with its background mmap_lock readers) shrunk to 64 threads, with few
    VMAs and many writers of every kind, so that VMA write locks, drains, forks, swap-ins, reclaim
    and lock queues all happen often."""
    base = {"threads": 64, "vmas": 4, "pages_per_vma": 1024, "writer_rate": 3000.0,
            "writer_hold": 30e-6, "writer_vma_share": 0.4, "writer_fork_share": 0.1,
            "reclaim": "hazard",
            "reclaim_rate_cached": 200.0, "reclaim_rate_mapped": 20.0, "rwsem": discipline}
    return faultlock.Scenario.preset("android_warm_start", **{**base, **changes})


SCENARIOS = {
    "android_warm_start": faultlock.Scenario.preset("android_warm_start", threads=64),
    "fork_heavy": faultlock.Scenario.preset("fork_heavy", threads=64),
    "memcg_stress": faultlock.Scenario.preset("memcg_stress", threads=64, cpus=8),
    **{f"contended_{d}": contended(d) for d in ("linux", "fifo", "reader_pref", "writer_pref",
                                                "phase_fair")},
    # hot pages: many faults on one folio, uptodate-but-locked folios, shared swap-in waits
    "hot_pages": contended(page_popularity=2.0, swap_share=0.5, readaround_pages=8),
    # 2 CPUs, slow wake-ups, a small device queue, older kernels
    "two_cpus_old_kernel": contended(cpus=2, wakeup_latency=50e-6, io_parallelism=2,
                                     tried_after_major=False, retry_limit=1),
    "no_spin_short_handoff": contended(writer_spin=False, handoff_timeout=200e-6,
                                       reader_wake_batch=4),
}

#: Spinning writers on 2 CPUs with slow wake-ups and a short handoff timeout. A woken head writer
#: often waits in the CPU run queue behind a writer's critical section and a spinner; a spinner then
#: steals the lock, the head's wait passes the timeout (HANDOFF), and at the next release
#: rwsem._on_free hands the lock to the head. It used to wake the head a second time (it ran its
#: critical section twice and freed its writer slot twice); the whole-state check below saw it in
#: every run. See
#: test_engine_rules.py::test_handoff_to_a_writer_already_woken_does_not_wake_it_twice.
SCENARIOS["two_cpus_spinning"] = contended(cpus=2, wakeup_latency=50e-6, handoff_timeout=200e-6)


# ----------------------------------------------------------------------------------------------
# The engine's checking mode
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_checking_mode_finds_no_violation(name):
    ds = faultlock.simulate(SCENARIOS[name], policies=POLICIES, operations=20_000, batches=10,
                            seed=201, check=True)
    bad = {p: int(v) for p, v in zip(ds.policy.values, ds.invariant_violations.values) if v}
    assert not bad, f"lock invariant violations in {name}: {bad}"
    assert int(ds.events.min()) > 0


# ----------------------------------------------------------------------------------------------
# Whole-state consistency at arbitrary stopping points
# ----------------------------------------------------------------------------------------------


def _run_queue(S) -> list[int]:
    n = S.run_queue.shape[0]
    head, length = int(S.ints[state.I_RQ_HEAD]), int(S.ints[state.I_RQ_LEN])
    return [int(S.run_queue[(head + i) % n]) for i in range(length)]


def _wait_list(S) -> list[int]:
    out, prev = [], -1
    e = int(S.ints[state.I_RW_QHEAD])
    while e >= 0:
        assert int(S.rw_prev[e]) == prev, "wait list: broken back link"
        out.append(e)
        prev, e = e, int(S.rw_next[e])
        assert len(out) <= S.rw_next.shape[0], "wait list: cycle"
    assert int(S.ints[state.I_RW_QTAIL]) == prev, "wait list: wrong tail"
    return out


def check_state(S, P, Q) -> None:
    threads = int(Q[state.Q_THREADS])
    first_writer = int(Q[state.Q_FIRST_WRITER])
    cpus = int(Q[state.Q_CPUS])
    heap_n = int(S.heap_size[0])

    # -- the event calendar: an indexed binary min-heap
    for i in range(heap_n):
        e = int(S.heap_ent[i])
        assert int(S.heap_pos[e]) == i
        if i:
            assert S.heap_time[(i - 1) // 2] <= S.heap_time[i]
    assert int((S.heap_pos >= 0).sum()) == heap_n
    assert heap_n == 0 or S.heap_time[0] >= S.reals[state.R_NOW]

    # -- the CPUs
    rq = _run_queue(S)
    assert len(set(rq)) == len(rq), "an entity twice in the run queue"
    assert not any(S.heap_pos[e] >= 0 for e in rq), "an entity queued for a CPU has a timer"
    pending = set(rq) | {int(S.heap_ent[i]) for i in range(heap_n)}
    if cpus:
        running = [int(e) for e in S.cpu_running[:cpus] if e >= 0]
        assert int(S.ints[state.I_CPU_FREE]) + len(running) == cpus
        assert not set(running) & set(rq), "a running entity is also queued for a CPU"
        if rq:
            assert int(S.ints[state.I_CPU_FREE]) == 0, "a CPU idles while entities queue for one"

    # -- mmap_lock: the wait list
    queue = _wait_list(S)
    assert int(S.ints[state.I_RW_QLEN]) == len(queue)
    assert int(S.ints[state.I_RW_QWRITERS]) == sum(int(S.rw_is_writer[e]) for e in queue)
    writer = int(S.ints[state.I_RW_WRITER])
    readers = int(S.ints[state.I_RW_READERS])
    assert readers >= 0
    assert writer < 0 or readers == 0, "a writer together with readers"
    assert writer not in queue
    if not queue:
        assert not S.ints[state.I_RW_HANDOFF], "HANDOFF without a waiter"
    for e in queue:
        if S.rw_is_writer[e]:
            assert first_writer <= e < int(Q[state.Q_FIRST_IO])
        elif e < threads:
            assert S.t_lock[e] == state.LOCK_NONE, "a queued reader holds a lock"
        else:
            assert e >= int(Q[state.Q_FIRST_READER]), "a queued reader that is no reader"
    spinners = [int(x) for x in S.spinners[:int(S.ints[state.I_SPIN_LEN])]]
    assert not set(spinners) & set(queue) and writer not in spinners

    # -- writer slots: a free slot's writer is nowhere (not runnable, queued, spinning, holding)
    free = [int(x) for x in S.w_free[:int(S.ints[state.I_W_FREE])]]
    assert len(set(free)) == len(free), "a writer slot freed twice"
    active = pending | set(queue) | set(spinners) | {writer}
    if cpus:
        active |= set(running)
    assert not {first_writer + w for w in free} & active, "a freed writer slot is still active"

    # -- mmap_lock: readers = faulting threads holding it + background readers in their hold +
    #    threads and background readers granted it that have not run yet
    first_reader = int(Q[state.Q_FIRST_READER])
    bg = range(first_reader, first_reader + int(Q[state.Q_READER_SLOTS]))
    holding = [t for t in range(threads) if S.t_lock[t] == state.LOCK_MMAP]
    bg_holding = [e for e in bg if S.ent_cont[e] == state.K_R_HOLD_DONE and e in pending]
    granted = [e for e in list(range(threads)) + list(bg)
               if S.ent_cont[e] == state.K_MMAP_GRANTED and e in pending]
    assert not set(holding) & set(granted)
    assert readers == len(holding) + len(bg_holding) + len(granted), (
        readers, len(holding), len(bg_holding), len(granted))
    waiting = sum(1 for e in queue if not S.rw_is_writer[e]) + len(granted)
    assert int(S.ints[state.I_READ_WAITING]) == waiting
    free_readers = [int(x) for x in S.r_free[:int(S.ints[state.I_R_FREE])]]
    assert len(set(free_readers)) == len(free_readers), "a background-reader slot freed twice"
    assert not {first_reader + r for r in free_readers} & (pending | set(queue))

    # -- per-VMA locks
    vmas = int(Q[state.Q_VMAS])
    vma_holders = np.zeros(vmas, dtype=int)
    for t in range(threads):
        if S.t_lock[t] == state.LOCK_VMA:
            vma_holders[S.t_vma[t]] += 1
    assert np.array_equal(S.v_readers[:vmas], vma_holders), "v_readers against VMA-lock holders"
    for v in range(vmas):
        if S.v_write_locked[v]:
            assert S.v_readers[v] == 0, "a VMA reader on a write-locked VMA"
            assert writer >= 0, "a VMA write lock outlives its mmap_lock write section"
        if S.v_drainer[v] >= 0:
            assert int(S.v_drainer[v]) == writer, "a VMA drained by a writer not holding mmap_lock"
            assert not S.v_write_locked[v]

    # -- folios: references, locks and who owns them
    used = S.f_key >= 0
    assert (S.f_refs[used] >= 0).all()
    reading = used & (S.f_state == state.F_READING)
    assert (S.f_owner[reading] == state.OWNER_IO).all(), "a folio under read not locked by it"
    owned = np.flatnonzero(used & (S.f_owner >= 0))
    for slot in owned:
        t = int(S.f_owner[slot])
        assert t < threads and int(S.t_slot[t]) == slot, "a folio locked by a thread not on it"
    assert len({int(S.f_owner[s]) for s in owned}) == len(owned), "a thread owns two folios"


STOP_POINTS = (3_001, 20_011, 77_003, 150_001)


@pytest.mark.parametrize("name", [
    "android_warm_start", "fork_heavy", "contended_linux", "contended_phase_fair", "hot_pages",
    "two_cpus_old_kernel", "no_spin_short_handoff",
    "two_cpus_spinning",
])
def test_state_is_consistent_wherever_a_run_stops(name):
    scenario = SCENARIOS[name]
    for policy in POLICIES:
        for k, stop in enumerate(STOP_POINTS):
            P, Q = sm.parameters(scenario, policy, operations=50_000, batches=10, warmup=0.1,
                                 max_events=stop, max_time=np.inf, check=True)
            S, summary = sm.run_policy(scenario, policy, np.random.SeedSequence([202, k]),
                                       operations=50_000, batches=10, warmup=0.1,
                                       max_events=stop, max_time=np.inf, check=True)
            assert summary["violations"] == 0
            try:
                check_state(S, P, Q)
            except AssertionError as exc:
                raise AssertionError(f"{name}/{policy} stopped after {stop} events: {exc}") from exc


# ----------------------------------------------------------------------------------------------
# Little's law and flow balance
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def busy():
    """Contended enough for queues on mmap_lock under every policy: android_warm_start with 96
    threads and 2000 writes per second, some write-locking a faulted VMA or all of them."""
    sc = faultlock.Scenario.preset("android_warm_start", threads=96, writer_rate=2000.0,
                                   writer_vma_share=0.4, writer_fork_share=0.05)
    return faultlock.simulate(sc, policies=POLICIES, operations=60_000, batches=20, seed=203)


def _little(d, kind: str):
    mean, mean_ci = float(d[f"mmap_{kind}_waiters_mean"]), float(d[f"mmap_{kind}_waiters_mean_ci"])
    little = float(d[f"mmap_{kind}_waiters_little"])
    little_ci = float(d[f"mmap_{kind}_waiters_little_ci"])
    return mean, mean_ci, little, little_ci


@pytest.mark.parametrize("kind", ["read", "write"])
def test_littles_law_per_lock(busy, kind):
    """L = lambda W for the waiters of mmap_lock: the time-average number of threads (writers)
    waiting against slow-path waits completed per second times their mean. The two are computed
    from the same batches, so they differ only by the waits cut by the batch boundaries; the
    interval of their difference is at most the two half-widths combined."""
    contended_somewhere = False
    for policy in POLICIES:
        d = busy.sel(policy=policy)
        assert bool(d.stable)
        mean, mean_ci, little, little_ci = _little(d, kind)
        assert np.isfinite(mean) and np.isfinite(little)
        assert abs(mean - little) <= Z * np.hypot(mean_ci, little_ci) + 1e-12, (
            f"{policy} {kind}: L = {mean:.6g} ± {mean_ci:.3g}, lambda W = {little:.6g} ± "
            f"{little_ci:.3g}")
        contended_somewhere |= mean > 0.05
    assert contended_somewhere, "nobody waited: the check would be empty"


@pytest.mark.parametrize("policy", POLICIES)
def test_littles_law_per_lock_batch_by_batch(policy):
    """The same law with an interval on the difference itself: per batch, (time-integral of the
    waiting population - sum of the waits completed) / batch time, whose mean must be 0 up to the
    waits cut by the batch boundaries. Ten to a thousand times sharper than comparing the two
    intervals of the dataset."""
    sc = faultlock.Scenario.preset("android_warm_start", threads=96, writer_rate=2000.0,
                                   writer_vma_share=0.4, writer_fork_share=0.05)
    S, summary = sm.run_policy(sc, policy, np.random.SeedSequence(205), operations=100_000,
                               batches=20, warmup=0.2, max_events=10**9, max_time=np.inf,
                               check=False)
    assert summary["completed"] and not summary["overloaded"]
    st = S.stats
    time = st[:, state.S_TIME]
    for area, waits in ((state.S_READ_WAITING_AREA, state.S_READ_SLOW_WAIT_SUM),
                        (state.S_WRITE_WAITING_AREA, state.S_WRITE_SLOW_WAIT_SUM)):
        population = st[:, area].sum() / time.sum()
        diff = (st[:, area] - st[:, waits]) / time
        hw = output.half_width(diff)
        assert abs(diff.mean()) <= Z * hw + 1e-9 * population, (population, diff.mean(), hw)
        assert hw <= 0.1 * population + 1e-9, (population, hw)   # sharper than the datasets


def test_littles_law_for_faults(busy):
    """Threads inside a fault (time average) = faults per second x mean fault latency."""
    for policy in POLICIES:
        d = busy.sel(policy=policy)
        inside, inside_ci = float(d.threads_in_fault_mean), float(d.threads_in_fault_mean_ci)
        rate, rate_ci = float(d.fault_rate), float(d.fault_rate_ci)
        lat, lat_ci = float(d.fault_latency_mean), float(d.fault_latency_mean_ci)
        product = rate * lat
        product_ci = product * (rate_ci / rate + lat_ci / lat)   # first order, no credit for
        #                                                          their correlation
        assert abs(inside - product) <= Z * np.hypot(inside_ci, product_ci), (
            policy, inside, inside_ci, product, product_ci)


def test_every_writer_is_served(busy):
    """Writers arrive as an open Poisson stream: in a stable run the write acquisitions per second
    equal the arrival rate (no writer lost, none invented)."""
    for policy in POLICIES:
        d = busy.sel(policy=policy)
        rate, ci = float(d.mmap_write_rate), float(d.mmap_write_rate_ci)
        assert abs(rate - 2000.0) <= Z * ci and ci < 100.0, (policy, rate, ci)


def test_lock_shares_are_probabilities(busy):
    for policy in POLICIES:
        d = busy.sel(policy=policy)
        assert 0.0 <= float(d.mmap_read_held_share) <= 1.0
        assert 0.0 <= float(d.jank_share) <= 1.0
        hist = d.fault_latency_hist.values
        assert hist.min() >= 0 and hist.sum() == pytest.approx(1.0)


def test_same_seed_same_numbers():
    sc = SCENARIOS["contended_linux"]
    a = faultlock.simulate(sc, policies=["mainline", "vma_retry"], operations=5_000, batches=10,
                           seed=204)
    b = faultlock.simulate(sc, policies=["mainline", "vma_retry"], operations=5_000, batches=10,
                           seed=204)
    for name in ("fault_latency_mean", "mmap_read_wait_mean", "mmap_write_wait_mean",
                 "refaults_per_fault", "events"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
