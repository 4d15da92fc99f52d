"""The analytic model on the measurement harness's workloads, against theory and the Monte Carlo.

Three mechanisms added for them (issue 3 item 5, issue 6 "both solvers"):

* ``lag_inside_probability`` / ``lag_inside_residual``: an exponential lag against a gamma
  period; checked against their sympy expressions, their limits and sampling;
* closed readers against writers: a thread is blocked at most once per writer period, so few
  threads phase-lock to a periodic writer and wait nearly a whole hold each time, where PASTA
  (an open stream) would make them wait half a hold, ten times as often;
* writer threads (periodic, flat out, in another process) and group walks (followers joining
  their leader's read).

Agreement with the Monte Carlo is within its 95 % interval plus the modelling tolerance of
``validation.TOLERANCE``.
"""

from __future__ import annotations

import numpy as np
import pytest

import faultlock
from faultlock import Scenario, predict
from faultlock.model import formulas as S
from faultlock.model import validation


def _agrees(an, mc, name, policy, tolerance=None):
    a = float(an[name].sel(policy=policy))
    m = float(mc[name].sel(policy=policy))
    ci = float(mc[name + "_ci"].sel(policy=policy))
    tol = validation.TOLERANCE[name] if tolerance is None else tolerance
    assert abs(a - m) <= ci + tol * abs(m), (name, policy, a, m, ci)


# ---- the formulas ----------------------------------------------------------------------------

@pytest.mark.parametrize("cv", [0.2, 0.7, 1.0, 1.5])
def test_lag_inside_matches_its_sympy_expression(cv):
    for name in ("lag_inside_probability", "lag_inside_residual"):
        formula = S.FORMULAS[name]
        for lag in (3e-5, 1e-4, 1e-3):
            exact = formula.lambdified()(200e-6, cv, lag)
            assert formula.numeric()(200e-6, cv, lag) == pytest.approx(exact, rel=1e-9)


def test_lag_inside_limits():
    period, cv = 500e-6, 0.4
    # a long lag: PASTA, P -> E[S]/m and the residual E[S^2]/(2E[S])
    m = 1e3
    assert S.lag_inside_probability(period, cv, m) == pytest.approx(period / m, rel=1e-6)
    assert S.lag_inside_residual(period, cv, m) == pytest.approx(period * (1 + cv**2) / 2,
                                                                 rel=1e-6)
    # no lag: always inside, and the whole period is left
    assert S.lag_inside_probability(period, cv, 1e-12) == pytest.approx(1.0)
    assert S.lag_inside_residual(period, cv, 1e-12) == pytest.approx(period, rel=1e-6)
    # deterministic period: 1 - exp(-S/m)
    assert S.lag_inside_probability(period, 0.0, 2e-4) == pytest.approx(-np.expm1(-2.5))


def test_lag_inside_against_sampling():
    rng = np.random.default_rng(7)
    n = 400_000
    period, cv, m = 300e-6, 0.6, 250e-6
    shape = 1 / cv**2
    s = rng.gamma(shape, period / shape, n)
    x = rng.exponential(m, n)
    inside = x < s
    p_hat = inside.mean()
    p_se = np.sqrt(p_hat * (1 - p_hat) / n)
    assert abs(S.lag_inside_probability(period, cv, m) - p_hat) < 4 * p_se
    rest = (s - x)[inside]
    assert abs(S.lag_inside_residual(period, cv, m) - rest.mean()) < 4 * rest.std() / np.sqrt(
        rest.size)


# ---- phase locking: few threads against a periodic writer ------------------------------------

#: one thread faulting every ~70 µs under mmap_lock, one writer thread holding it 1 ms every
#: 10 ms: a thread can only be blocked once per hold, for nearly all of it
PHASE = {"threads": 1, "cpus": 2, "think_time": 20e-6, "io_latency": 50e-6,
         "io_latency_cv": 0.2, "vmas": 4, "pages_per_vma": 4096, "page_popularity": 0.0,
         "reclaim": "hazard",
         "reclaim_rate_cached": 20.0, "reclaim_rate_mapped": 5.0, "writer_mode": "periodic",
         "writer_rate": 0.0, "writer_threads": 1, "writer_op_rate": 100.0, "writer_hold": 1e-3,
         "writer_hold_cv": 0.1, "writer_vma_share": 0.0}


@pytest.fixture(scope="module")
def phase_mc():
    return faultlock.simulate(Scenario(**PHASE), ["legacy_hold", "mainline"], seed=5,
                              operations=20_000)


@pytest.mark.parametrize("policy", ["legacy_hold", "mainline"])
def test_phase_locking_against_a_periodic_writer(policy, phase_mc):
    an = predict(Scenario(**PHASE), [policy])
    for name in ("mmap_read_wait_mean", "fault_latency_mean", "fault_rate", "writer_ops_rate",
                 "writer_latency_mean"):
        _agrees(an, phase_mc, name, policy)
    # PASTA (an open stream of readers) would wait rho_w x half a hold per acquisition; the
    # thread instead waits about a whole hold once per writer period, far less per acquisition
    wait = float(phase_mc.mmap_read_wait_mean.sel(policy=policy))
    reads = float(phase_mc.mmap_read_rate.sel(policy=policy))
    pasta = 100.0 * 1e-3 * (1e-3 * (1 + 0.1**2) / 2)
    assert wait < 0.3 * pasta
    per_period = wait * reads / 100.0        # waiting per writer period
    assert per_period > 0.6 * 1e-3           # most of a hold, not half of one


# ---- writer threads ---------------------------------------------------------------------------

WRITERS = {"threads": 4, "cpus": 2, "think_time": 30e-6, "io_latency": 100e-6, "vmas": 4,
           "page_popularity": 0.0, "pages_per_vma": 4096, "reclaim": "hazard",
           "reclaim_rate_cached": 50.0,
           "reclaim_rate_mapped": 10.0, "writer_rate": 0.0, "writer_vma_share": 0.2,
           "writer_hold": 50e-6}


@pytest.mark.parametrize("mode, where, threads, rate, locks", [
    ("periodic", "thread", 2, 400.0, 2),
    ("flat_out", "thread", 1, 0.0, 1),
    ("periodic", "process", 1, 2000.0, 1),
])
def test_writer_threads_against_monte_carlo(mode, where, threads, rate, locks):
    s = Scenario(**WRITERS, writer_mode=mode, writer_where=where, writer_threads=threads,
                 writer_op_rate=rate, writer_locks_per_op=locks)
    policies = ["mainline", "vma_wait"]
    mc = faultlock.simulate(s, policies, seed=2, operations=20_000)
    an = predict(s, policies)
    assert an.stable.all()
    for policy in policies:
        for name in ("fault_latency_mean", "fault_rate", "writer_ops_rate",
                     "writer_op_latency_mean"):
            _agrees(an, mc, name, policy)
        if where == "process":          # the control: no write acquisition of our lock
            assert float(an.mmap_write_rate.sel(policy=policy)) == 0.0
            assert float(mc.mmap_write_rate.sel(policy=policy)) == 0.0
        elif policy == "mainline":
            _agrees(an, mc, "mmap_read_wait_mean", policy)
    if mode == "periodic":              # a periodic writer that keeps up makes its rate exactly
        assert np.allclose(an.writer_ops_rate, threads * rate)


# ---- group walks ------------------------------------------------------------------------------

WALK = {"threads": 4, "cpus": 4, "think_time": 1e-6, "io_latency": 500e-6, "io_latency_cv": 0.3,
        "access_pattern": "group_walk", "readaround_pages": 1, "vmas": 1, "pages_per_vma": 1 << 20,
        "reclaim": "hazard",
        "reclaim_rate_cached": 20.0, "reclaim_rate_mapped": 2.0, "writer_rate": 0.0}


@pytest.mark.parametrize("group", [1, 2, 4])
def test_group_walks_against_monte_carlo(group):
    s = Scenario(**WALK, group_size=group)
    policies = ["mainline", "vma_wait", "legacy_hold"]
    mc = faultlock.simulate(s, policies, seed=4, operations=20_000)
    an = predict(s, policies)
    for policy in policies:
        for name in ("fault_latency_mean", "fault_rate", "major_faults_per_fault",
                     "fault_latency_p50", "fault_latency_p90"):
            _agrees(an, mc, name, policy)
        _agrees(an, mc, "major_latency_p50", policy)
        if group > 1:
            _agrees(an, mc, "waiter_latency_mean", policy)
            _agrees(an, mc, "waiter_latency_p50", policy)
            _agrees(an, mc, "waiter_latency_p90", policy)
        # in lock step every page is one leader's major fault and G - 1 waiters
        share = float(an.waiter_share.sel(policy=policy))
        assert share == pytest.approx(1 - 1 / group, abs=0.01)
        assert float(mc.waiter_share.sel(policy=policy)) == pytest.approx(1 - 1 / group,
                                                                         abs=0.02)


def test_group_walk_refuses_what_it_does_not_model():
    with pytest.raises(ValueError, match="readaround_pages=8 is not allowed by the analytic"):
        predict(Scenario(**{**WALK, "readaround_pages": 8}, group_size=2), ["mainline"])


def test_workload_grid_validates():
    """``faultlock validate --grid workloads``: the mean fault latency agrees in most cells."""
    grid = validation.workload_grid()
    assert dict(grid.dims) == {"group_size": 2, "io_latency": 2, "writer": 4}
    ds = validation.validate(grid.replace(io_latency=500e-6), policies=["mainline", "vma_wait"],
                             operations=5_000, seed=1)
    table = validation.summary(ds)
    assert table.loc["fault_latency_mean", "agree"] >= 0.75, table.loc["fault_latency_mean"]
    assert table.loc["fault_rate", "agree"] >= 0.75, table.loc["fault_rate"]


def test_lag_inside_degenerate_inputs():
    """No period, an infinite lag or no lag at all, a NaN spread: limits, never an exception."""
    prob = S.lag_inside_probability([0.0, 1e-4, 1e-4, 1e-4], [0.5, np.nan, 0.5, 0.5],
                                    [1e-4, 1e-4, np.inf, 0.0])
    assert prob.tolist() == pytest.approx([0.0, -np.expm1(-1.0), 0.0, 1.0])
    assert S.lag_inside_residual(1e-4, 0.5, 0.0) == pytest.approx(1e-4)


def test_predict_on_the_paper_grid_corners():
    """The paper's grid mixes no reclaim (no faults: empty writer periods) with busy writers;
    every cell solves (a regression: the closed-reader formula was given a zero period)."""
    import xarray as xr
    grid = Scenario.preset("android_warm_start").replace(
        threads=xr.DataArray([1, 16, 256], dims="threads"),
        reclaim="hazard", reclaim_rate_cached=xr.DataArray([0.0, 5000.0], dims="pressure"),
        reclaim_rate_mapped=xr.DataArray([0.0, 50.0], dims="pressure"),
        writer_rate=xr.DataArray([100.0, 2000.0], dims="writers"))
    ds = predict(grid)
    assert ds.fault_latency_mean.shape == (7, 3, 2, 2)
    assert np.isfinite(ds.fault_rate.values[ds.stable.values]).all()
