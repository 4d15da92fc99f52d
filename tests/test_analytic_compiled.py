"""The compiled analytic model (faultlock.model.analytic): its pieces against their sources.

The sub-models are compiled scalar code; these tests hold them to their sympy expressions and
closed forms (not to a second implementation), and the solve loop to the fixed point's own
equations: a converged element satisfies the closed loop's response-time law, the elements are
independent of how the grid is cut and of the cores, and an element without a fixed point (a
station that saturates at one access rate) is reported as such.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from faultlock import POLICIES, Scenario, predict
from faultlock.model import laws
from faultlock.model import formulas as S
from faultlock.model.analytic import zipf_nodes
from faultlock.model.analytic.distribution import LEVELS, read_strata, uniform_plus_wait
from faultlock.model.analytic.layout import IN, ST


@pytest.mark.parametrize("seed", range(3))
def test_uniform_plus_wait_is_its_sympy_expression(seed):
    formula = S.FORMULAS["uniform_plus_wait_cdf"]
    fn = formula.numeric()
    rng = np.random.default_rng(seed)
    for _ in range(200):
        t, x0, width = rng.uniform(0, 3), rng.uniform(0, 1), rng.uniform(1e-3, 1)
        p0, wbar = rng.uniform(0, 1), rng.uniform(1e-3, 1)
        want = float(np.clip(fn(t, x0, width, p0, wbar), 0.0, 1.0))
        assert uniform_plus_wait(t, x0, width, p0, wbar) == pytest.approx(want, abs=1e-12)
    # the limits the symbolic form leaves out: an atom (width 0) and no wait (wbar 0)
    assert uniform_plus_wait(1.5, 1.0, 0.0, 0.3, 0.5) == pytest.approx(1 - 0.7 * np.exp(-1.0))
    assert uniform_plus_wait(1.5, 1.0, 1.0, 0.3, 0.0) == pytest.approx(0.5)


def test_zipf_nodes_sum_the_law_exactly_for_small_spaces():
    prob, mass, count = zipf_nodes(np.array([6.0]), np.array([0.8]))
    ranks = np.arange(1, 7.0)
    exact = ranks**-0.8 / (ranks**-0.8).sum()
    np.testing.assert_allclose(prob[0, :6], exact, rtol=1e-12)
    np.testing.assert_allclose(mass[0].sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(count[0].sum(), 1.0, rtol=1e-12)


def test_read_strata_are_the_laws_quantiles_at_unit_mean():
    table, rows = read_strata(np.array(["lognormal", "gamma", "lognormal"]),
                              np.array([1.5, 0.5, 1.5]))
    assert rows.tolist() == [0.0, 1.0, 0.0] and table.shape == (2, 2, LEVELS.size)
    q = laws.quantile("lognormal", 3e-3, 1.5, LEVELS[1:-1])
    np.testing.assert_allclose(3e-3 * table[0, 0, 1:-1], q, rtol=1e-12)
    _, cv2 = laws.sum_of_reads("gamma", np.array([0.5]), 2)
    np.testing.assert_allclose(table[1, 1, 1:-1], laws.quantile("gamma", 1.0, cv2[0],
                                                                 LEVELS[1:-1]), rtol=1e-12)


def _flagship(threads):
    return Scenario.preset("android_warm_start").replace(
        threads=xr.DataArray(np.asarray(threads), dims="threads"))


def test_converged_elements_satisfy_the_closed_loop():
    """N threads cycle through a think (stretched by the CPUs), an idle period and the faults:
    access_rate = N / (think + idle + miss x latency) at the fixed point (think = think_time
    without a CPU queue: the flagship has 8 CPUs and few threads here)."""
    s = _flagship([1, 2, 4, 8])
    ds = predict(s, POLICIES, distribution=False)
    assert ds.converged.all() and (ds.unconverged_reason == "").all()
    miss = ds.fault_rate / ds.access_rate
    f = s.as_arrays()[0]
    idle = float(np.ravel(f["idle_time"])[0])
    idle = idle + float(np.ravel(f["wakeup_latency"])[0]) if idle > 0 else 0.0
    cycle = float(np.ravel(f["think_time"])[0]) + idle + miss * ds.fault_latency_mean.fillna(0)
    threads = xr.DataArray([1.0, 2.0, 4.0, 8.0], dims="threads")
    want = (threads / cycle).transpose(*ds.access_rate.dims)
    # within the CPU waits of the idle wake-ups and the computing's stretch (1 %)
    np.testing.assert_allclose(ds.access_rate, want, rtol=1e-2)


def test_elements_do_not_depend_on_the_grid_or_the_cores():
    s = _flagship([16, 300, 1200])
    whole = predict(s, POLICIES)
    for i, threads in enumerate([16, 300, 1200]):
        one = predict(Scenario.preset("android_warm_start", threads=threads), ["vma_retry"])
        for name in ("fault_latency_mean", "fault_latency_p99", "mmap_read_wait_mean"):
            a = float(whole[name].sel(policy="vma_retry").values[i])
            b = float(one[name].values[0])
            assert a == b or (np.isnan(a) and np.isnan(b)), name


def test_a_saturated_device_holds_the_surplus_threads():
    """The flagship without writers at 2,048 and 4,096 threads drives its 12-slot device to
    saturation (the rate solve has no fixed point there: longer reads bring more reads per
    fault).  Solved for the device's share, the closed loop converges, and the asymptotic
    bound of a closed network holds: the read rate reaches, and does not pass, the device's
    capacity ``io_parallelism / io_latency`` (the Monte Carlo: 11,370 +- 340 and 11,570 +- 490
    reads/s against 11,429, 2026-12-04), the surplus threads wait (Little's law: N minus the
    thinking threads in fault)."""
    s = _flagship([2048, 4096]).replace(writer_rate=0.0, reader_rate=0.0)
    ds = predict(s, ["mainline", "vma_retry"], distribution=False)
    assert bool(ds.converged.all()) and bool(ds.valid.all())
    capacity = 12 / 1.05e-3
    assert float(ds.io_read_rate.max()) <= capacity * (1 + 1e-6)
    assert float(ds.io_read_rate.min()) >= 0.95 * capacity
    in_fault = ds.threads_in_fault_mean
    assert bool((in_fault <= ds.threads).all()) and bool((in_fault > 0.1 * ds.threads).all())


def test_named_layouts_are_complete():
    assert len(set(IN)) == len(IN) and len(set(ST)) == len(ST)
    assert ST.access_rate == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_predict_in_a_forked_child_after_the_parent_used_it():
    """numba's default thread pool on Linux (GNU OpenMP) SIGTERMs a fork()ed child that calls a
    parallel function its parent already ran: multiprocessing's default start method would kill
    every worker of a user's Pool.  The package takes a fork-safe layer."""
    predict(Scenario(threads=3), "mainline")
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            ds = predict(Scenario(threads=5), "mainline")
            status = 0 if bool(ds.valid.all()) else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"wait status {status}"


def test_poisson_writers_past_the_hand_off_capacity_are_unstable():
    """Poisson writers that sleep in the queue (no optimistic spinning) pass the lock at most
    ``1 / (writer_hold + wakeup_latency)`` a second (7,692/s here): every hand-off wakes the
    next one.  Between that and ``1 / writer_hold`` (10,000/s) the backlog grows; the Monte
    Carlo's flow-conservation test calls 8,200/s unstable (7,381 writers/s got through) and
    7,000/s stable (2026-12-04, 20,000 operations)."""
    base = Scenario.preset("android_warm_start").replace(
        threads=16, writer_hold=1e-4, writer_hold_cv=1.0, wakeup_latency=3e-5, writer_spin=False,
        writer_vma_share=0.0, writer_fork_share=0.0, reader_rate=0.0,
        writer_rate=xr.DataArray([7000.0, 8200.0], dims="writer_rate"))
    ds = predict(base, ["mainline"], distribution=False)
    assert ds.stable.values.ravel().tolist() == [True, False]
