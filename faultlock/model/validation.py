"""Validation of the analytic model against the Monte Carlo engine, metric by metric.

``validate(scenarios)`` solves every cell and policy with both solvers and returns one dataset with
a ``source`` dimension (``analytic``, ``montecarlo``), the Monte Carlo 95 % half-widths and the
relative error of the analytic model, so that the regions where the model is weak are shown, not
hidden.  ``default_grid()`` is the grid of issue 3: threads, I/O latency, memory pressure and writer
load; ``summary(ds)`` condenses a validation dataset into a table per metric.

A cell counts as agreeing on a metric when ``|analytic - mc| <= z * ci + tolerance * |mc|``: the
Monte Carlo interval plus the stated modelling tolerance (``TOLERANCE``).  The command
``faultlock validate`` prints :func:`summary` and saves the dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import xarray as xr

from . import arguments
from .analytic import predict
from .arguments import OPERATIONS_LIMIT, ArgumentError, ArgumentTypeError
from .montecarlo.simulate import simulate
from .policies import POLICIES
from .scenario import PRESETS, Scenario

__all__ = ["ANALYTIC_LIMITS", "GRIDS", "METRICS", "NOT_COMPARED", "TOLERANCE", "default_grid",
           "summary", "validate", "workload_grid"]

#: metrics compared (both solvers give them), and the modelling tolerance stated for each: the
#: relative error allowed beyond the Monte Carlo interval where the model's assumptions hold.
TOLERANCE: dict[str, float] = {
    "fault_latency_mean": 0.10,
    "fault_rate": 0.10,
    "access_rate": 0.10,
    "io_read_rate": 0.10,
    "mmap_read_rate": 0.10,
    "retries_per_fault": 0.10,
    "major_faults_per_fault": 0.10,
    "threads_in_fault_mean": 0.10,
    "mmap_read_wait_mean": 0.30,
    "mmap_write_wait_mean": 0.30,
    "writer_latency_mean": 0.20,
    "refaults_per_fault": 0.30,
    "retry_miss_ratio": 0.30,
    "vma_abort_rate": 0.30,
    "reads_holding_mmap_per_fault": 0.30,
    "reads_holding_vma_per_fault": 0.30,
    "mmap_read_held_share": 0.30,
    "waiter_share": 0.15,
    "nofault_share": 0.15,
    "waiter_latency_mean": 0.30,
    "major_latency_p50": 0.15,
    "waiter_latency_p50": 0.15,
    "waiter_latency_p90": 0.15,
    "writer_ops_rate": 0.20,            # flat out: 1 / the operation latency (0.20)
    "writer_op_latency_mean": 0.20,
    "fault_latency_p50": 0.15,
    "fault_latency_p90": 0.15,
    "fault_latency_p99": 0.20,
    "fault_latency_p999": 0.35,
    "jank_share": 0.35,
    "mmap_read_wait_p99": 0.50,
    "mmap_write_wait_p99": 0.50,
    "writer_latency_p99": 0.35,
}
METRICS = tuple(TOLERANCE)
#: metrics both solvers give but that are not compared, and why.
NOT_COMPARED = {
    "reclaim_rate": "the Monte Carlo counts a reclaim when the page is next touched (reclaim is "
                    "lazy: montecarlo/folio.py settle), so a run shorter than the pages' return "
                    "time undercounts it; the analytic model gives the steady-state rate",
}
#: mechanisms of the engine the analytic model has only approximately, and what that costs
#: (recorded in ``validate``'s dataset, ``attrs["analytic_limits"]``)
ANALYTIC_LIMITS = {
    "wakeup_preemption": "run_to_parity is a mean term in analytic/cpu.py (a woken thread waits "
                         "when every CPU is busy, min(run, slice)/c): with computing threads "
                         "saturating the CPUs the analytic fault latency is low (32 threads, 30 "
                         "us of computing per access, 2 CPUs: 97 us against the engine's 587 "
                         "us); a protected CPU-bound entity that is no faulting thread and a "
                         "write hold preempted at its slice end are not in it",
}
_Z = 1.0      # multiples of the 95 % half-width
#: shares of accesses: a run of n operations cannot resolve a share below about 3/n (the "rule
#: of three": no event in n trials bounds the rate by 3/n at 95 %), so that much is allowed too
_SHARES = ("waiter_share", "nofault_share")


def default_grid() -> Scenario:
    """The validation grid of issue 3: threads x I/O latency x memory pressure x writer load.

    A file-backed workload on 8 CPUs (uniform page popularity over 256k pages, MADV_RANDOM
    reads), swept over ``threads`` (4, 16, 64), ``io_latency`` (50 µs, 200 µs, 1 ms), memory
    pressure (``reclaim_rate_cached``/``reclaim_rate_mapped``: low 20/2, mid 200/20,
    high 2000/50 per second) and ``writer_rate`` (0, 300, 2000 per second).  81 cells.
    """
    pressure = ["low", "mid", "high"]
    return Scenario(
        cpus=8, vmas=4, pages_per_vma=65536, page_popularity=0.0, readaround_pages=1,
        think_time=200e-6, writer_hold=30e-6,
        threads=xr.DataArray([4, 16, 64], dims="threads", coords={"threads": [4, 16, 64]}),
        io_latency=xr.DataArray([50e-6, 200e-6, 1e-3], dims="io_latency",
                                coords={"io_latency": [50e-6, 200e-6, 1e-3]}),
        reclaim="hazard",
        reclaim_rate_cached=xr.DataArray([20.0, 200.0, 2000.0], dims="memory_pressure",
                                         coords={"memory_pressure": pressure}),
        reclaim_rate_mapped=xr.DataArray([2.0, 20.0, 50.0], dims="memory_pressure",
                                         coords={"memory_pressure": pressure}),
        writer_rate=xr.DataArray([0.0, 300.0, 2000.0], dims="writer_rate",
                                 coords={"writer_rate": [0.0, 300.0, 2000.0]}),
    )


def workload_grid() -> Scenario:
    """The measurement harness's workloads: group walks against writer threads.

    4 reader threads on 2 CPUs (this VM) walk a cold file in groups of ``group_size`` (1: each
    its own pages; 4: all in lock step), MADV_RANDOM, think 1 µs, at ``io_latency`` 50 µs or
    500 µs, against four writers (dimension ``writer``): none; one writer thread at 500
    operations a second holding mmap_lock 200 µs (an mprotect of a populated region); one
    flat-out writer thread holding it 20 µs (mmap + munmap); and the periodic one in another
    process (the harness's control: its CPU without our lock).  16 cells.
    """
    writers = ["none", "periodic", "flat_out", "process"]

    def by_writer(values):
        return xr.DataArray(np.array(values, dtype=object if isinstance(values[0], str)
                                     else None), dims="writer", coords={"writer": writers})

    return Scenario(
        threads=4, cpus=2, think_time=1e-6, vmas=1, pages_per_vma=1 << 20, readaround_pages=1,
        access_pattern="group_walk", walk_pages=1024, reclaim="hazard", reclaim_rate_cached=20.0,
        reclaim_rate_mapped=2.0, io_latency_cv=0.3, writer_vma_share=0.0,
        group_size=xr.DataArray([1, 4], dims="group_size", coords={"group_size": [1, 4]}),
        io_latency=xr.DataArray([50e-6, 500e-6], dims="io_latency",
                                coords={"io_latency": [50e-6, 500e-6]}),
        writer_mode=by_writer(["poisson", "periodic", "flat_out", "periodic"]),
        writer_rate=by_writer([0.0, 0.0, 0.0, 0.0]),
        writer_threads=by_writer([0, 1, 1, 1]),
        writer_op_rate=by_writer([0.0, 500.0, 0.0, 500.0]),
        writer_where=by_writer(["thread", "thread", "thread", "process"]),
        writer_hold=by_writer([20e-6, 200e-6, 20e-6, 200e-6]),
    )


#: the named validation grids (``faultlock validate --grid``).
GRIDS = {"issue3": default_grid, "workloads": workload_grid}


def _as_scenario(scenarios) -> Scenario:
    """A Scenario from a Scenario, a preset name, or a sequence of presets/scalar Scenarios
    (stacked along a ``scenario`` dimension)."""
    if isinstance(scenarios, Scenario):
        return scenarios
    if isinstance(scenarios, str):
        return Scenario.preset(scenarios)
    if isinstance(scenarios, Iterable):
        items = list(scenarios)
        if not items:
            raise ArgumentError("scenarios=[] is not allowed: a Scenario, a preset name or a "
                                "non-empty sequence of them")
        resolved, names = [], []
        for i, item in enumerate(items):
            if isinstance(item, str):
                resolved.append(Scenario.preset(item))
                names.append(item)
            elif isinstance(item, Scenario) and item.is_scalar:
                resolved.append(item)
                names.append(f"scenario{i}")
            else:
                raise ArgumentTypeError(f"scenarios[{i}]={item!r} is not allowed: a preset name "
                                        f"(one of {', '.join(PRESETS)}) or a scalar Scenario")
        if len(set(names)) != len(names):
            raise ArgumentError(f"scenarios={items!r} is not allowed: each preset at most once")
        values = {}
        for field in Scenario.FIELDS:
            column = [getattr(s, field) for s in resolved]
            if all(c == column[0] for c in column):
                values[field] = column[0]
            else:
                values[field] = xr.DataArray(np.array(column, dtype=object if isinstance(
                    column[0], str) else None), dims="scenario", coords={"scenario": names})
        return Scenario(**values)
    raise ArgumentTypeError(f"scenarios={scenarios!r} is not allowed: a Scenario, a preset name "
                            "or a sequence of them")


def validate(scenarios=None, policies: Sequence[str] = POLICIES, operations: int = 20_000,
             seed: int = 0, progress=None) -> xr.Dataset:
    """Solve ``scenarios`` with both solvers; return values, intervals and relative errors.

    Parameters
    ----------
    scenarios : Scenario, str or sequence, optional
        A (grid) Scenario, a preset name, or a list of preset names and scalar Scenarios (stacked
        along a ``scenario`` dimension).  Default: :func:`default_grid`.
    policies : sequence of str
        Policies to compare (default: all).
    operations, seed :
        Monte Carlo run length (operations per cell and policy, after the warm-up) and root seed.
    progress : callable, optional
        ``progress(cells_done, cells)`` as the Monte Carlo's cells complete (the analytic model
        first takes seconds; the Monte Carlo minutes): see :func:`faultlock.simulate`.

    Returns
    -------
    xarray.Dataset
        For each metric of :data:`METRICS`: ``<metric>`` with dimension ``source``
        (``analytic``, ``montecarlo``) before ``policy`` and the grid's dimensions,
        ``<metric>_ci`` (the Monte Carlo 95 % half-width), ``<metric>_rel_error``
        (analytic / montecarlo - 1), ``<metric>_compared`` (both solvers give it: not NaN of a
        stable solution, e.g. a run with no folio-lock waiter has no waiter latency, a steady
        state without reclaim has no faults) and ``<metric>_agrees``
        (compared, and within ``ci`` plus the stated ``TOLERANCE``; false where one solver gives
        a finite number and the other an infinite one).
        ``stable`` per source.  ``attrs["tolerance"]`` records the tolerances.
    """
    policies = arguments.check_policies(policies)
    operations = arguments.check_integer("operations", operations, low=100,
                                         high=OPERATIONS_LIMIT)
    arguments.check_seed("seed", seed)
    scenario = default_grid() if scenarios is None else _as_scenario(scenarios)
    analytic = predict(scenario, policies)
    mc = simulate(scenario, policies, seed=seed, operations=operations, progress=progress)
    return compare(analytic, mc)


def compare(analytic: xr.Dataset, mc: xr.Dataset) -> xr.Dataset:
    """The validation dataset from an analytic and a Monte Carlo dataset of the same grid."""
    data_vars = {}

    def aligned(var: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
        """``var`` on ``like``'s grid: by label where both have coordinates (the Monte Carlo's
        combine sorts them), by position elsewhere."""
        for dim in like.dims:
            if dim in like.coords and dim in var.coords:
                var = var.sel({dim: like[dim].values})
        return xr.DataArray(var.transpose(*like.dims).values, dims=like.dims, coords=like.coords)

    mc_stable = aligned(mc.stable, analytic.stable)
    for name in METRICS:
        if name not in analytic or name not in mc:
            continue
        a = analytic[name]
        m = aligned(mc[name], a)
        ci = aligned(mc[name + "_ci"], a)
        attrs = dict(a.attrs)
        both = xr.concat([a, m], dim=xr.DataArray(["analytic", "montecarlo"], dims="source"))
        both.attrs = attrs
        data_vars[name] = both
        data_vars[name + "_ci"] = ci.assign_attrs(units=attrs.get("units", ""),
                                                  long_name=f"Monte Carlo 95% half-width of "
                                                            f"{attrs.get('long_name', name)}")
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = a / m - 1
        rel = rel.where(np.isfinite(a) & np.isfinite(m) & (m != 0))
        data_vars[name + "_rel_error"] = rel.assign_attrs(
            units="1", long_name=f"relative error of the analytic {attrs.get('long_name', name)}")
        finite_both = np.isfinite(a) & np.isfinite(m)
        same_inf = np.isinf(a) & np.isinf(m)
        gap = np.abs(a - m)
        allowed = _Z * ci.fillna(0.0) + TOLERANCE[name] * np.abs(m)
        if name in _SHARES:
            allowed = allowed + 3.0 / float(mc.attrs.get("operations_per_replication", np.inf))
        # A NaN is a ratio 0/0 of a stable solution: a class the Monte Carlo run never observed
        # (no waiter, no writer), or one the analytic model's steady state does not have (no
        # faults where nothing is reclaimed, while a short run measures its cold start).  There
        # is nothing to compare; the rate or share it is conditioned on is compared instead, so
        # the disagreement is counted there once.  A NaN of an unstable solution is compared
        # (it disagrees with a finite number).
        compared = ((~np.isnan(m) | ~mc_stable) & (~np.isnan(a) | ~analytic.stable))
        agrees = ((finite_both & (gap <= allowed)) | same_inf) & compared
        data_vars[name + "_agrees"] = agrees.assign_attrs(
            long_name=f"within the Monte Carlo interval plus {TOLERANCE[name]:.0%}")
        data_vars[name + "_compared"] = compared.assign_attrs(
            long_name="both solvers give it (not NaN, or NaN because unstable): the cell counts "
                      "in the agreement")
    stable = xr.concat([analytic.stable, mc_stable],
                       dim=xr.DataArray(["analytic", "montecarlo"], dims="source"))
    data_vars["stable"] = stable.assign_attrs(long_name="steady state exists (per solver)")
    ds = xr.Dataset(data_vars)
    ds.attrs.update({
        "tolerance": ", ".join(f"{k}={v}" for k, v in TOLERANCE.items()),
        "agreement": f"|analytic - mc| <= {_Z} x 95% half-width + tolerance x |mc|",
        "analytic_unconverged": analytic.attrs.get("fixed_point_unconverged", 0),
        "montecarlo_operations": mc.attrs.get("operations_per_replication", ""),
        "analytic_limits": "; ".join(f"{k}: {v}" for k, v in ANALYTIC_LIMITS.items()),
    })
    return ds


def summary(ds: xr.Dataset):
    """A table (pandas DataFrame), one row per metric: cells compared, share agreeing, median
    and 90th percentile of |relative error|, and the worst cell."""
    import pandas as pd

    rows = []
    for name in METRICS:
        if name + "_rel_error" not in ds:
            continue
        rel = ds[name + "_rel_error"]
        agrees = ds[name + "_agrees"]
        compared = ds[name + "_compared"].values if name + "_compared" in ds else np.ones(
            agrees.shape, dtype=bool)
        values = np.abs(rel.values.ravel())
        finite = values[np.isfinite(values)]
        worst = ""
        if finite.size:
            idx = np.unravel_index(int(np.nanargmax(np.abs(rel.values))), rel.shape)
            worst = ", ".join(f"{d}={rel[d].values[i]!s}" if d in rel.coords else f"{d}={i}"
                              for d, i in zip(rel.dims, idx))
        rows.append({
            "metric": name,
            "cells": int(compared.sum()),
            "agree": float(agrees.values[compared].mean()) if compared.any() else np.nan,
            "median_abs_rel_error": float(np.median(finite)) if finite.size else np.nan,
            "p90_abs_rel_error": float(np.quantile(finite, 0.9)) if finite.size else np.nan,
            "worst": worst,
        })
    return pd.DataFrame(rows).set_index("metric")


