"""The memcg reproducer's workload in the Monte Carlo engine (issue 12, item 3).

``access_pattern='file_rounds'`` (``montecarlo/rounds.py``): thread t maps VMA t, touches its pages
in order, munmaps (write lock, downgrade, zap under the read lock) and mmaps it again. Reads of a
sparse file (``read_source='hole'``) are CPU on the faulting thread; fault-around maps the cached
folios of a window; noise threads load the CPUs.

Every expected value below is derived by hand from the scenario: with ``cpus=0`` (no CPU queue) a
single thread's round is a sum of known CPU bursts, so its mean time is exact; only the touches'
``think_time`` is random. Tolerances are the engine's batch-means half-widths (``Z`` of them, as
``test_engine_theory.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

import faultlock
from faultlock.model.montecarlo import rng, rwsem, state
from faultlock.model.montecarlo import simulate as sm

Z = 4.0

PAGES = 64
THINK = 1e-6
FAULT_CPU = 2e-6
HOLD = 5e-6
UNMAP = 0.5e-6
HOLE = 3e-6


def rounds(**overrides) -> faultlock.Scenario:
    """One thread (unless overridden) walking a 64-page file, on as many CPUs as it wants."""
    values = dict(threads=1, vmas=1, pages_per_vma=PAGES, access_pattern="file_rounds",
                  think_time=THINK, fault_cpu_time=FAULT_CPU, round_lock_hold=HOLD,
                  unmap_page_time=UNMAP, readaround_pages=1, cpus=0, writer_rate=0.0)
    values.update(overrides)
    return faultlock.Scenario(**values)


def run(scenario, policy="mainline", operations=20_000, **kw):
    return sm.simulate(scenario, [policy], seed=7, operations=operations, batches=20,
                       check=True, **kw).isel(policy=0)


def check(ds, name, theory, *, slack=0.0, power=0.1):
    mc, ci = float(ds[name]), float(ds[name + "_ci"])
    print(f"{name}: MC {mc:.6g} ± {ci:.3g} vs theory {theory:.6g}")
    assert np.isfinite(mc) and np.isfinite(ci)
    assert ci <= power * abs(theory), f"{name}: half-width {ci:.3g} too wide against {theory:.3g}"
    assert abs(mc - theory) <= Z * ci + slack + 1e-12 * abs(theory), (
        f"{name}: MC {mc:.6g} ± {ci:.3g} vs theory {theory:.6g}")


def writes_and_zap(mapped=PAGES):
    """The two write holds (mmap, munmap before the downgrade) and the zap of ``mapped`` pages."""
    return 2 * HOLD + mapped * UNMAP


# ---- one thread, no contention: a round is the sum of its parts -------------------------------
def test_round_of_minor_faults():
    """No reclaim: after the first round every folio is cached, so every touch is a minor fault
    (fault_cpu_time under the VMA lock): T = P (think + fault) + 2 hold + P unmap."""
    ds = run(rounds())
    expected = PAGES * (THINK + FAULT_CPU) + writes_and_zap()
    check(ds, "round_time_mean", expected)
    check(ds, "round_rate", 1 / expected)
    assert float(ds["major_faults_per_fault"]) == 0.0
    assert float(ds["mmap_write_rate"]) == pytest.approx(2 * float(ds["round_rate"]), rel=0.02)
    assert int(ds["invariant_violations"]) == 0


@pytest.mark.parametrize("policy, attempts, fills, miss", [
    # drops the VMA lock, zero-fills, retries (TRIED, under mmap_lock): the folio, exposed
    # after the retry's folio_put, is reclaimed at once (hazard 1e12/s): a second, TRIED read
    # under the lock, then the install
    ("mainline", 4, 2, 1.0),
    ("vma_retry", 4, 2, 1.0),
    # never drops: zero-fills holding the VMA lock, then installs
    ("vma_wait", 2, 1, np.nan),
])
def test_round_of_hole_reads(policy, attempts, fills, miss):
    """Every page is a hole read each round (a cached folio is reclaimed at once, a mapped one
    never): T = P (think + attempts x fault + fills x hole) + 2 hold + P unmap."""
    scenario = rounds(read_source="hole", hole_page_cpu=HOLE, reclaim="hazard",
                      reclaim_rate_cached=1e12)
    ds = run(scenario, policy, operations=10_000)
    expected = PAGES * (THINK + attempts * FAULT_CPU + fills * HOLE) + writes_and_zap()
    check(ds, "round_time_mean", expected)
    check(ds, "hole_read_rate", fills * PAGES / expected)
    assert float(ds["io_read_rate"]) == 0.0           # no device: a hole is never read from it
    if np.isnan(miss):
        assert float(ds["retries_per_fault"]) == 0.0
    else:
        assert float(ds["retry_miss_ratio"]) == 1.0
        assert float(ds["retries_per_fault"]) == 1.0


def test_little_for_rounds_on_enough_cpus():
    """Eight threads on 16 CPUs: round_rate x round_time_mean = threads (a closed population),
    and each thread's round is the single thread's plus its waits for the write lock, which are
    short (spinning on a running owner)."""
    threads = 8
    ds = run(rounds(threads=threads, vmas=threads, cpus=16), operations=40_000)
    single = PAGES * (THINK + FAULT_CPU) + writes_and_zap()
    little = float(ds["round_rate"] * ds["round_time_mean"])
    slack = float(ds["round_rate_ci"] * ds["round_time_mean"]
                  + ds["round_rate"] * ds["round_time_mean_ci"])
    print(f"round_rate x round_time_mean = {little:.4f} (threads {threads}) ± {slack:.3g}")
    assert abs(little - threads) <= Z * slack
    waits = 2 * float(ds["mmap_write_wait_mean"])
    check(ds, "round_time_mean", single + waits,
          slack=Z * 2 * float(ds["mmap_write_wait_mean_ci"]))


# ---- downgrade ---------------------------------------------------------------------------------
def test_readers_enter_at_the_downgrade_not_at_the_end_of_the_zap():
    """Other mmap_lock readers (Poisson) wait only while the round holds the lock for write: a
    reader arriving in a write hold h waits h/2 on average, one arriving during the zap (read-held
    after the downgrade) enters at once. Mean wait over all reader acquisitions: (2h/T) (h/2) =
    h^2/T. Granted only at the zap's end, it would be h^2/T + h Z/T, seven times more here."""
    hold, unmap = 20e-6, 2e-6
    scenario = rounds(round_lock_hold=hold, unmap_page_time=unmap, reader_rate=20_000.0,
                      reader_hold=1e-7, wakeup_latency=0.0)
    # vma_retry: the minor faults take the VMA lock only, so the readers are alone on mmap_lock
    ds = run(scenario, "vma_retry", operations=60_000)
    period = PAGES * (THINK + FAULT_CPU) + 2 * hold + PAGES * unmap
    check(ds, "round_time_mean", period, power=0.2, slack=0.01 * period)
    check(ds, "mmap_read_wait_mean", hold**2 / period, power=0.3)
    assert float(ds["mmap_read_wait_mean"]) < 0.5 * (hold**2 + hold * PAGES * unmap) / period


def _state(discipline):
    scenario = faultlock.Scenario(threads=4, vmas=4, cpus=0, rwsem=discipline, writer_rate=0.0)
    P, Q = sm.parameters(scenario, "mainline", operations=100, batches=2, warmup=0.1,
                         max_events=1000, max_time=1.0, check=True)
    streams = rng.seed_streams(np.random.SeedSequence(0), sm._stream_count(scenario))
    return state.allocate(P, Q, streams), P, Q


@pytest.mark.parametrize("discipline, granted", [
    ("linux", [1, 3]),          # rwsem_mark_wake(READ_OWNED): readers, skipping the writer
    ("fifo", [1]),              # task-fair: readers at the head, up to the first writer
    ("reader_pref", [1, 3]),
    ("phase_fair", [1, 3]),
    ("writer_pref", []),        # a waiting writer keeps new readers out
])
def test_downgrade_grants_the_queued_readers(discipline, granted):
    """Owner 0 holds for write; reader 1, writer 2, reader 3 queue; downgrade_write."""
    arrays, P, Q = _state(discipline)
    S = arrays.struct
    assert rwsem.down_write(S, P, Q, 0, False) == rwsem.GRANTED
    assert not rwsem.down_read(S, P, Q, 1)
    assert rwsem.down_write(S, P, Q, 2, False) == rwsem.QUEUED
    assert not rwsem.down_read(S, P, Q, 3)
    rwsem.downgrade_write(S, P, Q)
    assert arrays.ints[state.I_RW_WRITER] == -1
    assert arrays.ints[state.I_RW_READERS] == 1 + len(granted)
    woken = [e for e in (1, 3) if arrays.ent_cont[e] == state.K_MMAP_GRANTED]
    assert woken == granted
    assert arrays.ints[state.I_RW_QWRITERS] == 1          # the writer still waits


def test_linux_downgrade_with_a_writer_first_wakes_nobody():
    arrays, P, Q = _state("linux")
    S = arrays.struct
    assert rwsem.down_write(S, P, Q, 0, False) == rwsem.GRANTED
    assert rwsem.down_write(S, P, Q, 2, False) == rwsem.QUEUED
    assert not rwsem.down_read(S, P, Q, 1)
    rwsem.downgrade_write(S, P, Q)
    assert arrays.ints[state.I_RW_READERS] == 1
    assert arrays.ints[state.I_RW_QLEN] == 2


# ---- fault-around --------------------------------------------------------------------------------
def test_faultaround_maps_the_window():
    """Every folio cached (no reclaim): the fault on the first page of each aligned window of F
    maps the other F - 1, so a round makes P / F faults:
    T = P think + (P/F) fault + 2 hold + zap."""
    window = 8
    ds = run(rounds(faultaround_pages=window), operations=5_000)
    assert float(ds["faultaround_pages_per_fault"]) == window - 1
    assert float(ds["nofault_share"]) == pytest.approx((window - 1) / window, abs=1e-3)
    check(ds, "round_time_mean", PAGES * THINK + PAGES // window * FAULT_CPU + writes_and_zap())
    check(ds, "fault_rate", PAGES // window * float(ds["round_rate"]), power=0.2)


# ---- noise ---------------------------------------------------------------------------------------
def test_noise_cpu_share():
    """On plentiful CPUs each noise thread is busy noise_cpu of every noise_cpu + noise_sleep +
    wakeup_latency (renewal-reward): the CPUs it keeps busy, on average."""
    n, busy, sleep, wake = 4, 5e-6, 20e-6, 10e-6
    ds = run(rounds(cpus=64, noise_threads=n, noise_cpu=busy, noise_sleep=sleep,
                    wakeup_latency=wake), operations=5_000)
    check(ds, "noise_cpu_share", n * busy / (busy + sleep + wake), power=0.05)
    # and they leave the round alone: it has CPUs enough
    check(ds, "round_time_mean", PAGES * (THINK + FAULT_CPU) + writes_and_zap())


# ---- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, words", [
    (dict(vmas=2), "vmas == threads"),
    (dict(idle_time=1e-3), "idle_time"),
    (dict(swap_share=0.5), "swap_share"),
    (dict(hole_page_cpu=2e-6), "read_source"),
    (dict(noise_sleep=1e-3), "noise_threads=0"),
    (dict(noise_threads=2, noise_cpu=0.0), "noise_cpu"),
])
def test_bad_round_scenarios(overrides, words):
    with pytest.raises(faultlock.ArgumentError, match=words.replace("(", r"\(")):
        rounds(**overrides)


def test_round_fields_elsewhere():
    with pytest.raises(faultlock.ArgumentError, match="unmap_page_time"):
        faultlock.Scenario(unmap_page_time=1e-6)


def test_analytic_refuses_rounds():
    with pytest.raises(faultlock.ArgumentError, match="Monte Carlo engine only"):
        faultlock.predict(rounds(), ["mainline"])
