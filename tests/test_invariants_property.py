"""Property-based: over random valid Scenarios, both solvers' results hold the invariants of
faultlock.model.checks (Little's law, flow conservation, probabilities, quantile order, jank).

The analytic model must pass every check wherever its fixed point converged (an unconverged
element may carry any number: it must say so, with the reason). The Monte Carlo must pass them
within its intervals. The fast tests are derandomized (the same examples every run, so the suite
does not flicker); the ``slow`` variants draw fresh ones.

Also here: the probes of issue 11, each giving a plausible number or ``valid`` False with a reason.
"""

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultlock import POLICIES, Scenario, predict, simulate
from faultlock.model import checks
from faultlock.model.validation import TOLERANCE


def _log(low, high):
    return st.floats(np.log(low), np.log(high)).map(lambda v: float(np.exp(v)))


def _maybe_zero(strategy):
    return st.one_of(st.just(0.0), strategy)


#: scenarios across the regimes users sweep: few to hundreds of threads, idle or busy CPUs,
#: fast and slow storage, light to heavy reclaim, no to many writers and other readers
SCENARIOS = st.builds(
    Scenario,
    threads=st.integers(1, 256),
    think_time=_log(1e-6, 1e-2),
    idle_time=_maybe_zero(_log(1e-5, 0.1)),
    io_latency=_log(2e-5, 2e-2),
    io_latency_cv=st.floats(0.0, 3.0),
    reclaim=st.just("hazard"),
    reclaim_rate_mapped=_log(0.05, 50.0),
    reclaim_rate_cached=_log(1.0, 2000.0),
    writer_rate=_maybe_zero(_log(1.0, 3000.0)),
    writer_hold=_log(1e-6, 3e-4),
    reader_rate=_maybe_zero(_log(1.0, 3000.0)),
    cpus=st.integers(1, 16),
    vmas=st.integers(1, 16),
    pages_per_vma=st.integers(16, 8192),
    page_popularity=st.floats(0.0, 1.3),
)
POLICY_PAIRS = st.lists(st.sampled_from(POLICIES), min_size=1, max_size=2, unique=True)
_UNCONVERGED = int(checks._BIT["unconverged"])


def _analytic_holds(scenario):
    ds = predict(scenario)
    flags = ds.invalid_checks.values.astype(np.int64)
    converged_but_broken = (flags & ~_UNCONVERGED) != 0
    converged_but_broken &= (flags & _UNCONVERGED) == 0
    assert not converged_but_broken.any(), (
        f"{scenario!r}: " + "; ".join(
            f"{p}: {r}" for p, r, bad in zip(ds.policy.values, ds.invalid_reason.values,
                                             converged_but_broken) if bad))
    # an element is invalid exactly when a reason is given
    assert ((ds.invalid_reason.values == "") == ds.valid.values).all()


#: vma_retry's retry livelock (test_montecarlo_vma_retry_waiters_do_not_cycle_for_ever) is
#: the kernel's rule played out, not an engine error: flagged, it is a right answer
_LIVELOCK_ALLOWED = {"vma_retry": int(checks._BIT["censored"])}


def _montecarlo_holds(scenario, policies, seed):
    ds = simulate(scenario, policies, operations=2000, batches=10, seed=seed)
    allowed = np.array([_LIVELOCK_ALLOWED.get(p, 0) for p in ds.policy.values])
    bad = (ds.invalid_checks.values.astype(np.int64) & ~allowed) != 0
    assert not bad.any(), f"{scenario!r} seed {seed}: " + "; ".join(
        f"{p}: {r}" for p, r, b in zip(ds.policy.values, ds.invalid_reason.values, bad) if b)


FAST = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
FAST_MC = settings(FAST, max_examples=4)
SLOW = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(SCENARIOS)
def test_analytic_converged_results_hold_the_invariants(scenario):
    _analytic_holds(scenario)


@FAST_MC
@given(SCENARIOS, POLICY_PAIRS, st.integers(0, 2**32 - 1))
def test_montecarlo_results_hold_the_invariants(scenario, policies, seed):
    _montecarlo_holds(scenario, policies, seed)


@pytest.mark.slow
@SLOW
@given(SCENARIOS)
def test_analytic_invariants_many(scenario):
    _analytic_holds(scenario)


@pytest.mark.slow
@SLOW
@given(SCENARIOS, POLICY_PAIRS, st.integers(0, 2**32 - 1))
def test_montecarlo_invariants_many(scenario, policies, seed):
    _montecarlo_holds(scenario, policies, seed)


# ---- the probes of issue 11 ----------------------------------------------------------------------
ANDROID = Scenario.preset("android_warm_start")
PROBES = {
    # name: (scenario, policy)
    "android_no_think": (ANDROID.replace(think_time=0.0, idle_time=0.0), "vma_retry"),
    "threads_100000": (ANDROID.replace(threads=100_000), "vma_wait"),
    "io_cv_20": (ANDROID.replace(io_latency_cv=20.0), "vma_retry"),
}
#: what the Monte Carlo measured for them (issue 11: 16.5 k faults/s and 18 ms mean; 0.68 ms at
#: 6,666 faults/s; re-measured here 2026-12-04 for the android case, see the report)
MC_FAULT_RATE = {"android_no_think": 16.5e3, "io_cv_20": 6666.0}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_is_plausible_or_invalid_with_a_reason(name):
    scenario, policy = PROBES[name]
    ds = predict(scenario, [policy]).sel(policy=policy)
    threads = scenario.threads
    plausible = (float(ds.threads_in_fault_mean) <= threads
                 and np.isfinite(float(ds.fault_latency_mean)))
    if name in MC_FAULT_RATE:
        gap = abs(float(ds.fault_rate) / MC_FAULT_RATE[name] - 1)
        plausible &= gap <= TOLERANCE["fault_rate"]
    # "no steady state" (stable false, times inf) is an answer too, not an impossible number:
    # threads=100000 under vma_wait drives the device to saturation, reads of seconds under
    # the VMA lock, and the Poisson writers' VMA drains past their capacity (the Monte Carlo
    # already finds vma_wait unstable at 2,048 and 4,096 threads, 2026-12-04)
    if bool(ds.valid) and bool(ds.stable):
        assert plausible, f"{name}: valid but implausible: {ds.invalid_reason.item()!r}"
    elif not bool(ds.stable):
        assert np.isinf(float(ds.fault_latency_mean))
    else:
        assert ds.invalid_reason.item() != ""
    if float(ds.threads_in_fault_mean) > threads:
        assert "threads in fault exceed threads" in ds.invalid_reason.item()


def test_probe_default_scenario_has_no_jank_without_faults():
    ds = predict(Scenario())
    assert (ds.fault_rate == 0).all()
    assert ds.jank_share.isnull().all() and ds.fault_latency_mean.isnull().all()
    assert ds.fault_latency_hist.isnull().all()
    assert ds.valid.all()


def test_probe_quantiles_in_order_on_extreme_scenarios():
    # the issue saw minor_latency_p90 > p99 and p50 > p90 on extreme and random scenarios;
    # android_warm_start's vma_retry minor faults (an atom at fault_cpu_time) showed it
    grid = ANDROID.replace(threads=xr.DataArray([1, 300, 4096], dims="threads"))
    ds = predict(grid, ["vma_retry", "vma_wait"])
    for family, levels in checks._FAMILIES.items():
        names = [name for name, _ in levels if name in ds]
        if len(names) < 2:
            continue
        values = np.stack([ds[n].values for n in names])
        finite = np.isfinite(values).all(axis=0)
        assert (np.diff(values, axis=0)[:, finite] >= 0).all(), family


def test_montecarlo_vma_retry_waiters_do_not_cycle_for_ever():
    """Under vma_retry (RETRY_VMA without the uptodate patch, kernel.md §6.2) waiters of a folio
    brought in by read-around retry untried under the VMA lock, so a retry that finds the folio
    locked may drop and wait again: "unbounded in principle". The model once handed the folio lock
    to each woken waiter (``WQ_FLAG_CUSTOM``), so the lock was held through every wake-up, every
    retry found it locked, re-queued, and the queue never emptied: a livelock that swallowed the
    threads of this run. The kernel wakes an exclusive waiter *without* the lock for its first
    ``sysctl_page_lock_unfairness`` (5) waits (``folio_wait_bit_common``, ``wake_page_function``):
    the folio is unlocked while the woken waiter gets to a CPU, and the first retry to look maps
    it. The Monte Carlo now does the same, and the same run has no stuck fault under any policy
    (the check that would flag one, ``censored``, stays: a hand-off after five steals can still
    form a cycle in principle)."""
    scenario = Scenario(threads=103, think_time=9.382525893002544e-05,
                        idle_time=0.01288515834764054, io_latency=0.001624885160734715,
                        io_latency_cv=2.2016848333579415, reclaim="hazard",
                        reclaim_rate_mapped=2.1671883845662063,
                        reclaim_rate_cached=5.715013926905956, writer_rate=0.0,
                        writer_hold=0.0002891449928164972, cpus=14, vmas=11, pages_per_vma=101,
                        page_popularity=0.898185805298369, reader_rate=6.377263962752195)
    ds = simulate(scenario, ["vma_retry", "vma_retry_uptodate", "mainline"], operations=3000,
                  batches=10, seed=1, max_events=2_000_000)
    for policy in ("vma_retry", "vma_retry_uptodate", "mainline"):
        d = ds.sel(policy=policy)
        assert int(d.faults_stuck) < 2, policy
        assert float(d.retries_per_fault) < 2, policy
        assert bool(d.valid), (policy, str(d.invalid_reason.values))
        assert not int(d.invalid_checks) & int(checks._BIT["censored"]), policy
