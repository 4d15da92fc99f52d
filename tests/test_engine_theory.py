"""The Monte Carlo engine against queueing theory (issue 2 §5, first bullet).

Each test maps a textbook model onto the engine with a scenario in which the engine *is* that
model, runs it, and compares the Monte Carlo estimate with the closed form of
``faultlock.model.formulas`` (the oracles: nothing is re-derived here). Tolerances come from the
engine's own 95 % batch-means half-widths (``<metric>_ci``, ``reference/queueing.md`` §3.2):

    |MC - theory| <= Z * ci + slack

``slack`` is zero where the mapping is exact, and otherwise a modelling error bounded and argued
next to the test. ``Z = 4`` rather than the usual 2 or 3: a half-width is itself estimated from 20
batches (Student t, 19 degrees of freedom), and this module makes about a hundred comparisons. At
Z = 3 (p = 0.007 each) a correct engine would fail one of them about half the times its random
streams change; at Z = 4 (p = 0.0008 each) about once in twelve. Every comparison also requires
the half-width to be small against the quantity (``power``), so that a real error of a few per
cent still fails it. Seeds are fixed: the same engine gives the same numbers, and ``pytest -rP``
prints every comparison.

Mappings (each checked against the engine's code, see the docstrings):

* M/M/1, M/G/1 (P-K): writers only (§1.3).
* M/G/1 with vacations (Fuhrmann-Cooper): writer preference, one reader thread (§1.3).
* M/G/inf busy period and Poisson occupancy: legacy_hold readers, cold misses (§1.3).
* Machine repairman M/M/1//N and M/M/c//N: the CPUs are the station (§1.4).
* FCFS reader/writer capacity in saturation (Johnson; §1.2).
* Refault loop, repeat-different with a deterministic window (§1.6), and its truncations.
* Phase-fair bound on reader blocking (Brandenburg & Anderson; §1.1).
"""

from __future__ import annotations

import numpy as np
import pytest

import faultlock
from faultlock.model import formulas as sy
from faultlock.model.laws import lst
from faultlock.model.montecarlo import output, state
from faultlock.model.montecarlo import simulate as sm

Z = 4.0

F = sy.FORMULAS


def check(ds, name: str, theory: float, *, slack: float = 0.0, power: float = 0.1) -> None:
    """|MC - theory| <= Z ci + slack, with a finite, informative half-width."""
    mc = float(ds[name])
    ci = float(ds[name + "_ci"])
    print(f"{name}: MC {mc:.6g} ± {ci:.3g} vs theory {theory:.6g} (z = {(mc - theory) / ci:+.2f})")
    assert np.isfinite(mc) and np.isfinite(ci), f"{name}: MC {mc} ± {ci} is not finite"
    assert ci <= power * abs(theory), (
        f"{name}: half-width {ci:.4g} too wide against {theory:.4g} for the test to mean anything")
    assert abs(mc - theory) <= Z * ci + slack, (
        f"{name}: MC {mc:.6g} ± {ci:.3g} vs theory {theory:.6g}: |diff| {abs(mc - theory):.3g} > "
        f"{Z} x {ci:.3g} + {slack:.3g}")


def one(ds, policy=None):
    return ds.isel(policy=0) if policy is None else ds.sel(policy=policy)


def cold(**changes) -> faultlock.Scenario:
    """Every access a cold miss of a file page, one page per read, no lock or CPU effects unless
    asked: the set-associative folio table (2**36 pages) keeps memory bounded, uniform popularity
    makes a repeat access to a page vanishingly rare."""
    base = {"vmas": 1, "pages_per_vma": 2**36, "page_popularity": 0.0, "readaround_pages": 1,
            "swap_share": 0.0, "io_distribution": "exponential", "io_parallelism": 0,
            "io_depth_slope": 0.0, "io_page_time": 0.0, "fault_cpu_time": 0.0, "cpus": 0,
            "sched_slice": 100.0, "wakeup_latency": 0.0, "writer_rate": 0.0,
            "writer_vma_share": 0.0, "writer_fork_share": 0.0, "reclaim": "hazard",
            "reclaim_rate_cached": 0.0, "reclaim_rate_mapped": 0.0}
    return faultlock.Scenario(**{**base, **changes})


# ----------------------------------------------------------------------------------------------
# M/M/1 and M/G/1: writers only (queueing.md §1.3)
# ----------------------------------------------------------------------------------------------
#
# One thread that never faults (think_time 1e6 s: P(fault during a run of ~300 s) < 3e-4, and a
# fault would not touch mmap_lock for long anyway), Poisson writers at writer_rate, holds of law
# writer_hold_distribution, no VMA locking, unlimited CPUs and no wake-up latency: a queued writer
# is granted when the holder releases (fifo: direct hand-over, writers.granted at the same instant).
# mmap_write_wait_mean averages every writer's wait, zero waits included: Wq. Batches count
# operations, here writer sections.


def writers_only(rate: float, hold: float, law: str, cv: float, rwsem: str) -> faultlock.Scenario:
    return faultlock.Scenario(threads=1, think_time=1e6, writer_rate=rate, writer_hold=hold,
                              writer_hold_distribution=law, writer_hold_cv=cv, writer_vma_share=0.0,
                              writer_fork_share=0.0, cpus=0, wakeup_latency=0.0, rwsem=rwsem)


@pytest.mark.parametrize("rwsem", ["fifo", "linux"])
def test_mm1_writer_wait(rwsem):
    """M/M/1 at rho = 0.8: Wq = rho/(mu - lambda) = 4 ms. Under ``linux`` the waiters spin on the
    running owner and take the lock in arrival order: the same queue (the mean wait of any
    work-conserving order that ignores hold times is the same anyway)."""
    lam, hold = 800.0, 1e-3
    ds = one(faultlock.simulate(writers_only(lam, hold, "exponential", 1.0, rwsem),
                                policies=["legacy_hold"], operations=200_000, batches=20, seed=101))
    check(ds, "mmap_write_wait_mean", F["mm1_wait"](lam, 1.0 / hold))
    check(ds, "mmap_write_rate", lam, power=0.02)          # Poisson arrivals, all served


@pytest.mark.parametrize("law, cv, lam", [
    ("deterministic", 0.0, 800.0),     # M/D/1: half the M/M/1 wait
    ("gamma", 0.5, 800.0),
    ("lognormal", 2.0, 600.0),         # heavy-ish tail: E[S^2] = 5 m^2
])
def test_mg1_pollaczek_khinchine(law, cv, lam):
    """M/G/1: Wq = lambda E[S^2] / (2 (1 - rho)), E[S^2] = m^2 (1 + cv^2)."""
    hold = 1e-3
    ops = 400_000 if law == "lognormal" else 200_000
    ds = one(faultlock.simulate(writers_only(lam, hold, law, cv, "fifo"),
                                policies=["legacy_hold"], operations=ops, batches=20, seed=102))
    check(ds, "mmap_write_wait_mean", F["mg1_wait"](lam, hold, cv), power=0.2)


# ----------------------------------------------------------------------------------------------
# M/G/1 with multiple vacations (Fuhrmann-Cooper): writer preference, one reader (§1.3)
# ----------------------------------------------------------------------------------------------
#
# One thread faults back to back (think_time 0) on cold misses under legacy_hold: each fault holds
# mmap_lock for read across its read (fault_cpu_time 0, no wake-up latency, unlimited CPUs), so a
# read hold is exactly one I/O time. Under writer_pref a release serves every waiting writer first
# (rwsem._on_free) and a new reader waits while a writer waits (rwsem.down_read): the writers are
# served exhaustively, and whenever none waits the lock goes to the reader, which holds it for an
# I/O time and then asks again at once. For the writers this is exactly an M/G/1 queue whose server
# takes i.i.d. vacations V = one I/O time whenever it finds the queue empty, independent of the
# arrivals: Wq = W_{M/G/1} + E[V^2]/(2 E[V]) (queueing.md §1.3: "a writer holding the lock is a
# vacation for the reader server" -- here the roles are swapped).


@pytest.mark.parametrize("law, cv, lam, io_law, io_cv, io", [
    ("exponential", 1.0, 500.0, "exponential", 1.0, 1e-3),
    ("lognormal", 1.5, 700.0, "exponential", 1.0, 0.5e-3),
    ("deterministic", 0.0, 500.0, "deterministic", 0.0, 2e-3),
    ("gamma", 0.5, 500.0, "lognormal", 1.0, 1e-3),
])
def test_writer_preference_is_mg1_with_reader_vacations(law, cv, lam, io_law, io_cv, io):
    hold = 1e-3
    sc = cold(threads=1, think_time=0.0, io_distribution=io_law, io_latency=io,
              io_latency_cv=io_cv, writer_rate=lam, writer_hold=hold,
              writer_hold_distribution=law, writer_hold_cv=cv, rwsem="writer_pref")
    ds = one(faultlock.simulate(sc, policies=["legacy_hold"], operations=200_000, batches=20,
                                seed=103))
    check(ds, "mmap_write_wait_mean", F["mg1_vacation_wait"](lam, hold, cv, io, io_cv), power=0.2)
    # The reader gets all the time the writers leave: (1 - rho) / E[V] vacations per second
    # (utilisation law; a vacation is one fault).
    check(ds, "fault_rate", (1.0 - lam * hold) / io, power=0.05)


# ----------------------------------------------------------------------------------------------
# M/G/inf: the readers of mmap_lock under legacy_hold (§1.3)
# ----------------------------------------------------------------------------------------------
#
# N = 2000 threads think for Exp(N/lambda) on unlimited CPUs, then fault a cold page under
# legacy_hold with rwsem fifo and no writers: down_read always succeeds, and the fault holds
# mmap_lock for read for exactly one I/O time (fault_cpu_time 0, no wake-up latency). The readers
# holding mmap_lock are the busy servers of an M/G/inf queue; mmap_read_busy_period_mean is its busy
# period and mmap_read_held_share the probability that at least one server is busy.
#
# Modelling slack: the population is closed. The arrival rate with k readers busy is (N - k)/Z,
# not lambda. Using the throughput lambda_eff = N/(Z + E[S]) corrects the mean; what remains is a
# relative change of the rate of order k/N ~ 0.3 % (k ~ 2-6 readers busy here), which moves the busy
# period by at most d ln E[B] / d ln lambda (~1.3 at lambda E[S] = 2) times that. Slack: 0.5 %.


@pytest.mark.parametrize("load, law, cv", [
    (1.0, "exponential", 1.0),
    (1.0, "deterministic", 0.0),       # insensitivity: same busy period
    (2.0, "exponential", 1.0),
    (2.0, "deterministic", 0.0),
    (0.5, "lognormal", 2.0),
])
def test_mginf_busy_period_and_occupancy(load, law, cv):
    n, mean = 2000, 1e-3
    lam = load / mean
    sc = cold(threads=n, think_time=n / lam, io_distribution=law, io_latency=mean,
              io_latency_cv=cv, rwsem="fifo")
    ds = one(faultlock.simulate(sc, policies=["legacy_hold"], operations=100_000, batches=20,
                                seed=104))
    lam_eff = n / (n / lam + mean)
    busy = F["mginf_busy_period"](lam_eff, mean)
    check(ds, "mmap_read_busy_period_mean", busy, slack=0.005 * busy, power=0.05)
    # P(busy) = E[B] / (E[B] + 1/lambda) (alternating renewal), = 1 - exp(-lambda E[S]) by the
    # Poisson occupancy of mginf_mean_busy: both oracles must agree with the engine.
    held = lam_eff * busy / (1.0 + lam_eff * busy)
    assert held == pytest.approx(-np.expm1(-F["mginf_mean_busy"](lam_eff, mean)), rel=1e-9)
    check(ds, "mmap_read_held_share", held, slack=0.005 * held, power=0.05)
    check(ds, "fault_rate", lam_eff, power=0.05)


# ----------------------------------------------------------------------------------------------
# Closed N-thread models: machine repairman M/M/1//N and M/M/c//N (§1.4)
# ----------------------------------------------------------------------------------------------
#
# The station is the CPUs: a thread's think_time (exponential, mean S) is the CPU burst, cpus = c
# are the servers, and sched_slice (100 s) never cuts a burst. The delay is the fault: a cold miss
# under legacy_hold whose read takes Exp(Z) on a device without a queue (io_parallelism 0: an
# infinite-server delay); fault_cpu_time 0, no writers, no wake-up latency.
#
# Where the CPU wait shows depends on the scheduler (cpu.py): a thread woken at the end of its read
# preempts a thread that is computing (wake-up preemption, commit 1cfc159), installs its PTE in no
# time and starts its next think burst on that CPU; the preempted thread goes to the tail of the run
# queue with the rest of its burst. So the fault never waits for a CPU (fault latency = the read,
# mean Z) and the station's queue is made of preempted thinkers. The discipline at the CPUs is
# therefore not FCFS, but it is work-conserving and blind to the bursts' lengths, and the bursts
# are exponential, so the number of threads at the station is the same birth-death chain as the
# FCFS M/M/c//N: its throughput X and mean population (threads not in a fault) are exactly those of
# formulas.machine_repairman / mva_multiserver.


@pytest.mark.parametrize("threads, cpus", [(4, 1), (16, 1), (64, 1), (16, 4), (64, 8)])
def test_machine_repairman(threads, cpus):
    think, burst = 1e-3, 1e-4     # knee at N* = (Z + S)/S = 11 for one CPU
    sc = cold(threads=threads, think_time=burst, io_latency=think, cpus=cpus)
    ds = one(faultlock.simulate(sc, policies=["legacy_hold"], operations=100_000, batches=20,
                                seed=105))
    exact = (sy.machine_repairman(threads, think, burst) if cpus == 1
             else sy.mva_multiserver(threads, think, burst, cpus))
    check(ds, "fault_rate", exact.throughput, power=0.03)
    # mean number at the station = threads outside a fault (time average, not via X)
    at_station = threads - float(ds.threads_in_fault_mean)
    ci = float(ds.threads_in_fault_mean_ci)
    print(f"threads at the CPUs: MC {at_station:.5g} ± {ci:.3g} vs theory "
          f"{exact.queue_length:.5g}")
    assert abs(at_station - exact.queue_length) <= Z * ci, (at_station, ci, exact.queue_length)
    # no CPU wait inside the fault: its latency is the read alone
    check(ds, "fault_latency_mean", think, power=0.03)


# ----------------------------------------------------------------------------------------------
# FCFS reader/writer capacity in saturation (Johnson; queueing.md §1.2)
# ----------------------------------------------------------------------------------------------
#
# The formula is the throughput of a *saturated* strict-FCFS reader/writer queue whose customer
# sequence is i.i.d. (a writer with probability p_w), readers holding Exp(mu_r) and writers 1/mu_w.
# Mapping: rwsem fifo (a reader at the head takes the readers up to the first writer; a new reader
# queues whenever anyone waits), legacy_hold cold-miss readers holding mmap_lock for exactly one
# Exp(1/mu_r) read, Poisson writers holding Exp(1/mu_w). N = 1000 threads think Exp(Z) with
# N/Z = twice the reader throughput the lock can give, so about N/2 readers sit in the queue at any
# time: the queue never empties (saturation), and arrivals come from ~N/2 independent thinkers, a
# Poisson stream whose rate moves by O(sqrt(N)/N) as the queue length fluctuates: the type sequence
# is i.i.d. Bernoulli up to that slow modulation. The mix p_w is not an input: the closed population
# settles where it settles, so each batch's throughput is compared with the capacity at that
# batch's own mix, and the ratio's interval is the batch-means interval of the per-batch ratios.
#
# Modelling slack: the slow modulation of the mix; runs of 2,000,000 operations (N = 300, 1000,
# 3000) put the ratio at 1.0039 ± 0.0016, 1.0023 ± 0.0020 and 1.0003 ± 0.0029: a bias of at most
# ~0.3 % at N = 1000. Slack 0.5 % of the capacity.


def _capacity_ratio(p_w: float, mu_r: float, mu_w: float, rwsem: str = "fifo",
                    operations: int = 200_000, seed: int = 106):
    n = 1000
    cap = F["fcfs_rw_capacity"]
    lam = cap(p_w, mu_r, mu_w)
    sc = cold(threads=n, think_time=n / (2.0 * (1.0 - p_w) * lam), io_latency=1.0 / mu_r,
              writer_rate=p_w * lam, writer_hold=1.0 / mu_w,
              writer_hold_distribution="exponential", rwsem=rwsem)
    S, summary = sm.run_policy(sc, "legacy_hold", np.random.SeedSequence(seed),
                               operations=operations, batches=20, warmup=0.5, max_events=10**9,
                               max_time=np.inf, check=False)
    assert summary["completed"] and not summary["overloaded"]
    st = S.stats
    faults, writes, time = st[:, state.S_FAULTS], st[:, state.S_WRITERS_DONE], st[:, state.S_TIME]
    mix = writes / (faults + writes)
    per_batch = (faults + writes) / time / cap(mix, mu_r, mu_w)
    pooled = ((faults.sum() + writes.sum()) / time.sum()
              / cap(writes.sum() / (faults.sum() + writes.sum()), mu_r, mu_w))
    waiting = st[:, state.S_READ_WAITING_AREA].sum() / time.sum()
    return pooled, output.half_width(per_batch), waiting, float(mix.mean())


@pytest.mark.parametrize("p_w, mu_r, mu_w", [
    (0.5, 1000.0, 1000.0),
    (0.1, 1000.0, 1000.0),
    (0.1, 1000.0, 10000.0),      # short writers
    (0.2, 10000.0, 1000.0),      # short readers
])
def test_fcfs_reader_writer_capacity(p_w, mu_r, mu_w):
    ratio, ci, waiting, mix = _capacity_ratio(p_w, mu_r, mu_w)
    assert waiting > 200, "not saturated: the queue must never empty"
    assert 0.5 * p_w < mix < 2.0 * p_w
    assert ci < 0.02
    assert abs(ratio - 1.0) <= Z * ci + 0.005, f"throughput / capacity = {ratio:.4f} ± {ci:.4f}"


def test_linux_rwsem_beats_fcfs_capacity():
    """queueing.md §1.2's lesson: waking the readers past the queued writers (Linux) buys more than
    FCFS's ln(1/p_w). The offered load that saturates the FIFO lock at p_w = 0.5 does not saturate
    the Linux one (its queue stays short, so readers get through and the mix shifts to ~1/3
    writers), and its throughput is well above the FCFS capacity at the mix it reached (~24 %)."""
    ratio, ci, waiting, mix = _capacity_ratio(0.5, 1000.0, 1000.0, rwsem="linux",
                                              operations=100_000)
    assert waiting < 50
    assert mix < 0.45
    assert ratio > 1.0 + Z * ci + 0.1


# ----------------------------------------------------------------------------------------------
# The refault loop (queueing.md §1.6)
# ----------------------------------------------------------------------------------------------
#
# Cold misses, unlimited CPUs, no wake-up latency, no writers, reclaim hazard theta on cached
# folios. threads.folio_retry drops the retry's folio reference and burns fault_cpu_time = h on the
# CPU before the next attempt looks the folio up (K_ATTEMPT): the exposure window is exactly h,
# i.i.d. across attempts (repeat-different, deterministic W = h), q = W*(theta) = exp(-theta h).
# The folio is protected by the lock while read and by the reference until that burst, so reclaim
# can only strike inside the window. A retry that finds its folio gone reads it again.
#
# How many reads a fault can make depends on how often it may drop its lock:
#   vma_retry, tried_after_major=False, retry_limit=0: every retry drops again -> K ~ Geometric(q);
#   mainline / legacy_retry / vma_retry with tried_after_major, or retry_limit=1: the second attempt
#     is TRIED and reads under its lock -> K = min(Geometric(q), 2);
#   mainline without tried_after_major: VMA attempt, an mmap_lock attempt that may still drop, then
#     a TRIED one (a RETRY from mmap_lock is always TRIED) -> K = min(Geometric(q), 3);
#   vma_wait and legacy_hold never drop: K = 1 (no exposure window).
# E[min(K, n)] is formulas.refault_attempts_mean(q, n). The reads made while holding the lock are
# those of the n-th attempt: P(K >= n) = E[min(K, n)] - E[min(K, n - 1)]. Every retry that waited
# for a read finds the folio gone with probability 1 - q, so retry_miss_ratio = 1 - q whatever n.
# No slack: the mapping is exact (the set-associative folio table evicts a referenced or locked
# folio never, and an exposed one only if 8 other pages of its set arrive within h: not at these
# rates).

REFAULT_CASES = {
    # (tried_after_major, retry_limit): {policy: (attempt cap n or None, lock held on read n)}
    (False, 0): {"vma_retry": (None, None), "legacy_retry": (2, "mmap"), "mainline": (3, "mmap"),
                 "vma_wait": (1, "vma"), "legacy_hold": (1, "mmap")},
    (True, 0): {"mainline": (2, "mmap"), "vma_retry": (2, "vma"), "mainline_uptodate": (2, "mmap")},
    (False, 1): {"vma_retry": (2, "vma"), "mainline": (2, "mmap")},
}


@pytest.mark.parametrize("theta, h", [(1000.0, 1e-3), (1000.0, 0.5e-3)])
@pytest.mark.parametrize("tried, limit", list(REFAULT_CASES))
def test_refault_loop(theta, h, tried, limit):
    cases = REFAULT_CASES[(tried, limit)]
    sc = cold(threads=32, think_time=100e-6, io_latency=100e-6, fault_cpu_time=h,
              reclaim="hazard",
              reclaim_rate_cached=theta, tried_after_major=tried, retry_limit=limit)
    ds = faultlock.simulate(sc, policies=list(cases), operations=50_000, batches=20, seed=107)
    q = lst("deterministic", h, 0.0, theta)
    miss = lst("deterministic", h, 0.0, theta, complement=True)
    for policy, (n, lock) in cases.items():
        d = one(ds, policy)
        reads = sy.refault_attempts_mean(q, n)
        check(d, "major_faults_per_fault", reads, power=0.02)
        if n == 1:      # never exposed: exactly one read, no refault, no retry
            assert float(d.refaults_per_fault) == 0.0
            assert float(d.retries_per_fault) == 0.0
        else:
            check(d, "refaults_per_fault", reads - 1.0, power=0.05)
            check(d, "retry_miss_ratio", miss, power=0.05)
        held = {"mmap": "reads_holding_mmap_per_fault", "vma": "reads_holding_vma_per_fault"}
        for kind, name in held.items():
            if kind != lock:
                assert float(d[name]) == 0.0, (policy, name)
            elif n == 1:
                check(d, name, 1.0, power=0.01)
            else:
                tail = reads - sy.refault_attempts_mean(q, n - 1)   # P(K >= n)
                check(d, name, tail, power=0.05)


# ----------------------------------------------------------------------------------------------
# Phase-fair bound on reader blocking (Brandenburg & Anderson; queueing.md §1.1)
# ----------------------------------------------------------------------------------------------
#
# Bounded holds: writers hold exactly W (deterministic, no VMA locking, no CPU limit). A reader's
# hold under legacy_hold on a cold miss is fault_cpu_time f (lookup and read submission, before
# miss_submit), the deterministic read L, then f again (the PTE install after the folio is handed
# over): L_r^max = L + 2 f. With no wake-up latency and unlimited CPUs a grant is immediate, so the
# phase-fair bound on any reader's wait is formulas.phase_fair_reader_bound(W, L + 2 f) exactly.
# The run is heavy: 64 threads, writers 20 % busy, mmap_lock read-held ~80 % of the time.


def _phase_scenario(rwsem: str) -> faultlock.Scenario:
    return cold(threads=64, think_time=1e-3, vmas=4, pages_per_vma=2**34,
                io_distribution="deterministic", io_latency=200e-6, fault_cpu_time=5e-6,
                writer_rate=2000.0, writer_hold=100e-6, writer_hold_distribution="deterministic",
                writer_hold_cv=0.0, rwsem=rwsem)


def test_phase_fair_bound_on_reader_blocking():
    writer_hold, reader_hold, fault_cpu = 100e-6, 200e-6, 5e-6
    bound = F["phase_fair_reader_bound"](writer_hold, reader_hold + 2 * fault_cpu)
    ds = faultlock.simulate(_phase_scenario("phase_fair"), policies=["legacy_hold"],
                            operations=100_000, batches=20, seed=108)
    d = one(ds)
    worst = float(d.mmap_read_wait_max)
    assert bool(d.stable)
    assert worst <= bound * (1 + 1e-9), f"reader waited {worst * 1e6:.3f} µs > {bound * 1e6} µs"
    # the contention is heavy enough for the worst case to be approached
    assert worst > 0.9 * bound
    assert float(d.mmap_read_wait_mean) > 0.1 * bound


@pytest.mark.parametrize("rwsem", ["fifo", "writer_pref"])
def test_task_fair_and_writer_preference_exceed_the_phase_fair_bound(rwsem):
    """Under FIFO (task-fair) a reader waits for every writer queued ahead of it, and under writer
    preference for every writer that keeps arriving: the same run breaks the phase-fair bound."""
    writer_hold, reader_hold, fault_cpu = 100e-6, 200e-6, 5e-6
    bound = F["phase_fair_reader_bound"](writer_hold, reader_hold + 2 * fault_cpu)
    d = one(faultlock.simulate(_phase_scenario(rwsem), policies=["legacy_hold"],
                               operations=100_000, batches=20, seed=108))
    assert bool(d.stable)
    assert float(d.mmap_read_wait_max) > 2 * bound


# ----------------------------------------------------------------------------------------------
# The batch-means interval itself (queueing.md §3.2)
# ----------------------------------------------------------------------------------------------


def test_batch_means_interval_covers_the_mm1_wait():
    """Every tolerance above trusts the 95 % half-widths. On M/M/1 at rho = 0.8, 10^5 customers and
    20 batches, queueing.md §3.2 measured 94.3 % coverage (naive i.i.d. intervals: 17.7 %). Thirty
    seeds here: at a true coverage of 0.9 or more, fewer than 23 hits has probability < 1 %."""
    lam, hold = 800.0, 1e-3
    truth = F["mm1_wait"](lam, 1.0 / hold)
    hits = 0
    for seed in range(30):
        d = one(faultlock.simulate(writers_only(lam, hold, "exponential", 1.0, "fifo"),
                                   policies=["legacy_hold"], operations=100_000, batches=20,
                                   seed=1000 + seed))
        hits += abs(float(d.mmap_write_wait_mean) - truth) <= float(d.mmap_write_wait_mean_ci)
    assert hits >= 23, f"the 95 % interval covered the exact Wq in {hits}/30 runs"


# ----------------------------------------------------------------------------------------------
# Longer versions (pytest -m slow)
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("threads", [256, 1024])
def test_machine_repairman_many_threads(threads):
    """queueing.md §1.4's large-N cases, where short runs of other tools were biased (LDES -6%)."""
    think, burst = 1e-3, 1e-4
    sc = cold(threads=threads, think_time=burst, io_latency=think, cpus=1)
    ds = one(faultlock.simulate(sc, policies=["legacy_hold"], operations=1_000_000, batches=20,
                                seed=109))
    exact = sy.machine_repairman(threads, think, burst)
    check(ds, "fault_rate", exact.throughput, power=0.01)
    at_station = threads - float(ds.threads_in_fault_mean)
    assert abs(at_station - exact.queue_length) <= Z * float(ds.threads_in_fault_mean_ci)


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.9, 0.95])
def test_mm1_heavy_traffic(rho):
    hold = 1e-3
    lam = rho / hold
    ds = one(faultlock.simulate(writers_only(lam, hold, "exponential", 1.0, "fifo"),
                                policies=["legacy_hold"], operations=4_000_000, batches=20,
                                seed=110))
    check(ds, "mmap_write_wait_mean", F["mm1_wait"](lam, 1.0 / hold))


@pytest.mark.slow
def test_mginf_busy_period_high_load():
    """lambda E[S] = 3: the busy period is (e^3 - 1)/lambda, ~6.4 mean holds."""
    n, mean, load = 5000, 1e-3, 3.0
    lam = load / mean
    sc = cold(threads=n, think_time=n / lam, io_distribution="deterministic", io_latency=mean)
    ds = one(faultlock.simulate(sc, policies=["legacy_hold"], operations=1_000_000, batches=20,
                                seed=111))
    lam_eff = n / (n / lam + mean)
    busy = F["mginf_busy_period"](lam_eff, mean)
    check(ds, "mmap_read_busy_period_mean", busy, slack=0.005 * busy, power=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("p_w", [0.02, 0.5])
def test_fcfs_capacity_long(p_w):
    ratio, ci, waiting, _ = _capacity_ratio(p_w, 1000.0, 1000.0, operations=2_000_000, seed=112)
    assert waiting > 200
    assert abs(ratio - 1.0) <= Z * ci + 0.005


@pytest.mark.slow
def test_refault_loop_unbounded_long_window():
    """theta h = 2: E[K] = e^2 = 7.4 reads per fault under vma_retry on a pre-6.8 kernel."""
    theta, h = 2000.0, 1e-3
    sc = cold(threads=32, think_time=100e-6, io_latency=100e-6, fault_cpu_time=h,
              reclaim="hazard", reclaim_rate_cached=theta, tried_after_major=False)
    d = one(faultlock.simulate(sc, policies=["vma_retry"], operations=400_000, batches=20,
                               seed=113))
    q = lst("deterministic", h, 0.0, theta)
    check(d, "major_faults_per_fault", sy.refault_attempts_mean(q), power=0.03)
    check(d, "retry_miss_ratio", 1.0 - q, power=0.03)
