"""The scheduler's wake-up preemption against hand-derived cases (``montecarlo/cpu.py``).

One CPU, one faulting thread and one CPU-bound thread of another process (a flat-out writer
thread with ``writer_where='process'`` whose CPU outside the lock, ``writer_gap_cpu``, is a long
computation: it takes no lock of ours and is preempted like any computing thread). Every access is
a cold miss under ``legacy_hold`` whose read takes X ~ Exp(m), no fault CPU, no wake-up latency.

When the faulting thread sleeps for its read, the CPU-bound thread gets the CPU (at time 0, say).
The read ends at X and the faulting thread is woken:

* ``wakeup_preemption='immediate'`` (NO_RUN_TO_PARITY): it preempts the computing thread at once;
  the fault latency is the read, mean m;
* ``'run_to_parity'`` (RUN_TO_PARITY, ``kernel/sched/fair.c``: ``protect_slice``): the computing
  thread keeps the CPU until it has run a slice s since it got it. If X < s the woken thread waits
  s - X (the computing thread yields at its slice end, ``burst_slice_end``); if X >= s it is not
  protected any more and the woken thread preempts it at once. The mean fault latency is

      m + E[(s - X)^+] = m + P(X < s) E[s - X | X < s] = m + s - m (1 - e^{-s/m}),

  the residual of a deterministic period s seen by an exponential lag
  (``formulas.phase_locking``: ``lag_inside_probability`` x ``lag_inside_residual``, cv 0).

Tolerances: batch-means 95 % half-widths, |MC - theory| <= Z ci with Z = 4 (as
``test_engine_theory.py``). The writer thread's hold (1 ns, once per 1 s of its computing) and its
acquisition boundary are negligible next to the read (a bias < 1e-6 of the latency).
"""

from __future__ import annotations

import numpy as np
import pytest

import faultlock
from faultlock.model import formulas as sy

Z = 4.0
F = sy.FORMULAS


def _scenario(preemption: str, slice_: float, read: float) -> faultlock.Scenario:
    return faultlock.Scenario(
        threads=1, think_time=1e-9, vmas=1, pages_per_vma=2**36, page_popularity=0.0,
        readaround_pages=1, swap_share=0.0, io_latency=read, io_distribution="exponential",
        io_parallelism=0, io_depth_slope=0.0, io_page_time=0.0, fault_cpu_time=0.0, cpus=1,
        sched_slice=slice_, wakeup_latency=0.0, wakeup_preemption=preemption,
        reclaim="hazard", reclaim_rate_cached=0.0, reclaim_rate_mapped=0.0,
        writer_mode="flat_out", writer_threads=1, writer_where="process", writer_rate=0.0,
        writer_gap_cpu=1.0, writer_hold=1e-9, writer_hold_distribution="deterministic",
        writer_vma_share=0.0, writer_fork_share=0.0)


def _check(ds, name, theory, power=0.05):
    mc, ci = float(ds[name].squeeze()), float(ds[name + "_ci"].squeeze())
    print(f"{name}: MC {mc:.6g} ± {ci:.3g} vs theory {theory:.6g}")
    assert np.isfinite(mc) and 0 < ci <= power * theory, (mc, ci, theory)
    assert abs(mc - theory) <= Z * ci, (mc, ci, theory)


@pytest.mark.parametrize("preemption, slice_", [
    ("immediate", 1e-3),
    ("run_to_parity", 1e-3),        # s = m: the wait is e^-1 m
    ("run_to_parity", 3e-3),        # s = 3m: nearly every wake-up waits, s - m on average
])
def test_wakeup_preemption_against_a_cpu_bound_thread(preemption, slice_):
    read = 1e-3
    ds = faultlock.simulate(_scenario(preemption, slice_, read), policies=["legacy_hold"],
                            operations=20_000, batches=20, seed=141)
    wait = 0.0
    if preemption == "run_to_parity":
        wait = (F["lag_inside_probability"](slice_, 0.0, read)
                * F["lag_inside_residual"](slice_, 0.0, read))
        # the same, by hand
        assert wait == pytest.approx(slice_ - read * (1 - np.exp(-slice_ / read)), rel=1e-9)
    _check(ds, "fault_latency_mean", read + float(wait))


def test_wakeup_preemption_is_validated():
    with pytest.raises(faultlock.ArgumentError, match="wakeup_preemption"):
        faultlock.Scenario(wakeup_preemption="lazy")


# ----------------------------------------------------------------------------------------------
# Lock-holder preemption: a writer's hold grows when its slice ends inside it
# ----------------------------------------------------------------------------------------------
#
# One CPU shared by a flat-out writer thread of this process (CPU outside the lock g, then a hold
# H ~ Exp(h), no lock contention) and one CPU-bound thread (think_time 1e6 s: it never faults).
# With RUN_TO_PARITY each of them runs exactly a slice s of CPU from when it gets the CPU, across
# bursts, then yields to the other (``burst``: the slice is counted from ``oncpu_since``). A slice
# end that falls inside a hold preempts the holder *holding mmap_lock* (``mm/mprotect.c``:
# ``change_pmd_range`` calls ``cond_resched()`` every PMD, dense next to s), and the hold then
# lasts the other thread's slice s longer. Slice ends come every s of the writer's own CPU time, so
# a hold of mean h contains h/s of them on average (renewal-reward over the writer's CPU time; the
# exponential holds mix the phase): the mean write latency (grant to release; no lock wait) is
#
#     h + (h / s) s = 2 h,
#
# whatever s, against h without the slice running across bursts ('immediate', where a burst
# shorter than a slice is never cut).


def _holder_scenario(preemption: str, hold: float, slice_: float) -> faultlock.Scenario:
    return faultlock.Scenario(
        threads=1, think_time=1e6, vmas=1, pages_per_vma=2**20, cpus=1, sched_slice=slice_,
        wakeup_latency=0.0, wakeup_preemption=preemption, reclaim="hazard",
        writer_mode="flat_out", writer_threads=1, writer_where="thread", writer_rate=0.0,
        writer_gap_cpu=0.3e-3, writer_hold=hold, writer_hold_distribution="exponential",
        writer_vma_share=0.0, writer_fork_share=0.0)


@pytest.mark.parametrize("preemption, slice_", [
    ("immediate", 1e-3), ("run_to_parity", 1e-3), ("run_to_parity", 0.4e-3)])
def test_holder_preempted_at_its_slice_end(preemption, slice_):
    hold = 0.2e-3
    ds = faultlock.simulate(_holder_scenario(preemption, hold, slice_), policies=["mainline"],
                            operations=20_000, batches=20, seed=142)
    expected = 2 * hold if preemption == "run_to_parity" else hold
    _check(ds, "writer_latency_mean", expected)


# ----------------------------------------------------------------------------------------------
# The rwsem HANDOFF timeout in jiffies (kernel/locking/rwsem.c: RWSEM_WAIT_TIMEOUT, time_after)
# ----------------------------------------------------------------------------------------------
#
# A writer queues behind a reader at t0; the reader leaves at t1 and wakes it, another reader
# steals the lock before it runs, and the woken writer fails: it sets HANDOFF iff it has waited
# RWSEM_WAIT_TIMEOUT. At HZ = 250 (4 ms jiffies) and handoff_timeout 4 ms the deadline is the
# enqueue jiffy + 1, passed only at the jiffy after: queued at 1 ms (jiffy 0), HANDOFF from 8 ms
# (jiffy 2) on, not at 7.9 ms; queued at 3.9 ms, also from 8 ms (a wait of 4.1 ms). In continuous
# time: from t0 + 4 ms.


def _handoff_set(hz: int, queued: float, tried: float) -> bool:
    from faultlock.model.montecarlo import rng, rwsem, state
    from faultlock.model.montecarlo import simulate as sm

    scenario = faultlock.Scenario(threads=4, handoff_timeout=4e-3, tick_hz=hz, writer_spin=False,
                                  wakeup_latency=0.0, cpus=0, writer_rate=100.0)
    P, Q = sm.parameters(scenario, "mainline", operations=1000, batches=10, warmup=0.1,
                         max_events=10**6, max_time=float("inf"), check=False)
    S = state.allocate(P, Q, rng.seed_streams(np.random.SeedSequence(0), 16))
    s = S.struct                                  # what the compiled functions take
    writer = int(Q[state.Q_FIRST_WRITER])
    S.reals[state.R_NOW] = 0.0
    assert rwsem.down_read(s, P, Q, 0)
    S.reals[state.R_NOW] = queued
    assert rwsem.down_write(s, P, Q, writer, True) == rwsem.QUEUED
    S.reals[state.R_NOW] = tried
    rwsem.up_read(s, P, Q)                        # the writer is woken ...
    assert rwsem.down_read(s, P, Q, 1)            # ... a reader steals the lock first
    assert not rwsem.writer_woken(s, P, Q, writer)
    return bool(S.ints[state.I_RW_HANDOFF])


@pytest.mark.parametrize("hz, queued, tried, handoff", [
    (250, 1e-3, 7.9e-3, False), (250, 1e-3, 8.0e-3, True), (250, 3.9e-3, 7.95e-3, False),
    (250, 3.9e-3, 8.0e-3, True), (0, 1e-3, 4.9e-3, False), (0, 1e-3, 5.0e-3, True)])
def test_handoff_timeout_in_jiffies(hz, queued, tried, handoff):
    assert _handoff_set(hz, queued, tried) is handoff


@pytest.mark.parametrize("hz, timeout, effective", [
    (0, 4e-3, 4e-3),            # continuous time
    (250, 4e-3, 6e-3),          # 1 jiffy + half a jiffy on average: 4 to 8 ms
    (1000, 4e-3, 4.5e-3),       # 4 jiffies of 1 ms, then up to one more
    (100, 4e-3, 15e-3)])        # rounded up to 1 jiffy of 10 ms, then up to one more
def test_analytic_handoff_timeout_in_jiffies(hz, timeout, effective):
    """The analytic model's mean HANDOFF timeout: the engine's jiffy rule averaged over where in
    a jiffy the waiter queued (uniform)."""
    from faultlock.model.analytic.inputs import Elements
    from faultlock.model.analytic.layout import IN

    rows = Elements(faultlock.Scenario(tick_hz=hz, handoff_timeout=timeout), ("mainline",)).rows
    assert rows[0, IN.handoff_timeout] == pytest.approx(effective, rel=1e-12)
