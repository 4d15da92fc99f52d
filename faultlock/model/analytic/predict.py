"""``predict``: the analytic model's Dataset for a scenario (grid) and policies."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import arguments, checks
from .. import metrics as contract  # the result contract (local `metrics` are values)
from .. import formulas as sym
from ..policies import POLICIES
from ..scenario import Scenario
from .distribution import LEVELS
from .inputs import Elements
from .layout import OUT, REASONS
from .solve import solve_all

#: metrics of ``simulate`` that the analytic model does not give, and why.
METRICS_ABSENT = {
    "events_rate": "a property of the simulation engine, not of the system",
    "mmap_read_wait_max": "the longest wait of a run grows with the run's length",
    "mmap_write_wait_max": "the longest wait of a run grows with the run's length",
    "events": "a Monte Carlo counter",
    "simulated_time": "a Monte Carlo counter",
    "wall_time": "a Monte Carlo counter",
    "faults_stuck": "a Monte Carlo counter",
    "cache_pages_little": "the engine's check of its own time average; the analytic model's "
                          "residence is its page cycle, where Little's law holds by construction",
    "table_eviction_rate": "an artefact of the Monte Carlo's folio table",
}

ITERATIONS = 200         # passes of the fixed point, at most
TOLERANCE = 1e-5         # relative residual and change that count as converged


def predict(scenario: Scenario, policies=POLICIES, *, distribution: bool = True) -> xr.Dataset:
    """The analytic model's metrics for every policy (and every cell of a grid scenario).

    Parameters
    ----------
    scenario : Scenario
        A scalar scenario, or one with DataArray fields: the result broadcasts over their
        dimensions.
    policies : str or sequence of str
        Policies to solve, in the order wanted (default: all of ``POLICIES``).
    distribution : bool
        Also give the latency distribution: ``fault_latency_p50/p90/p99/p999``, ``jank_share``,
        the lock-wait 99th percentiles and the histograms.  ``False`` gives the closed forms and
        fixed points only (means, rates, ratios), several times faster.

    Returns
    -------
    xarray.Dataset
        The variables of :func:`faultlock.simulate` with the same names, ``units`` and
        ``long_name`` (no ``_ci``), dimension ``policy`` first, then the scenario's dimensions;
        a ``stable`` flag per policy and cell.  Where ``mmap_lock`` writers exceed its capacity
        (``writer_rate`` times their exclusive time >= 1) every time is ``inf``, other metrics
        ``nan``, and ``stable`` is False.  ``converged`` (per policy and cell) says whether the
        fixed point converged, ``unconverged_reason`` why not (empty where it did): an element
        that did not has the last iterate's numbers.  ``attrs["fixed_point_unconverged"]``
        counts them.  Metrics the model cannot derive (``METRICS_ABSENT``) are not in the
        dataset.

    Raises
    ------
    ValueError
        If ``scenario`` is not a Scenario, or a policy name is unknown (naming it and the
        allowed ones).
    """
    scenario = arguments.check_scenario(scenario)
    policies = arguments.check_policies(policies)
    distribution = arguments.check_bool("distribution", distribution)
    x = Elements(scenario, policies)
    with np.errstate(all="ignore"):
        state, out, hist, read_hist, write_hist, used, reason, stable = solve_all(
            x.rows, x.prob, x.mass, x.count, x.strata, ITERATIONS, TOLERANCE,
            bool(distribution), contract.LATENCY_EDGES.astype(float),
            contract.WAIT_DECADE_EDGES.astype(float), LEVELS)
    names = OUT._fields if distribution else OUT._fields[:OUT.fault_latency_p50]
    metrics = {name: out[:, getattr(OUT, name)] for name in names
               if name in contract.SCALARS}
    if distribution:
        metrics.update(fault_latency_hist=hist, mmap_read_wait_hist=read_hist,
                       mmap_write_wait_hist=write_hist)
    ds = _dataset(scenario, x, metrics, stable, distribution, int(used.max(initial=0)), reason)
    return checks.check(ds, scenario)


def _units(name: str) -> tuple[str, str]:
    return contract.METRICS[name].units, contract.METRICS[name].long_name


def _dataset(scenario, x: Elements, metrics, stable, distribution, iterations,
             reason) -> xr.Dataset:
    dims = ("policy",) + x.dims
    shape = (len(x.policies),) + x.shape
    data_vars = {}
    # A stable steady state without faults (nothing is ever reclaimed: every page stays mapped)
    # has no fault-latency distribution: its quantiles are undefined, not infinite.
    no_faults = np.asarray(metrics.get("fault_rate", np.ones(shape)), dtype=float).reshape(shape)
    no_faults = stable.reshape(shape) & (no_faults == 0)
    for name in contract.SCALARS:
        if name not in metrics:
            continue
        units, long_name = _units(name)
        values = np.asarray(metrics[name], dtype=float).reshape(shape)
        if name in contract.QUANTILES and contract.QUANTILES[name].quantity == "fault_latency":
            values = np.where(no_faults, np.nan, values)
        if units == "s":
            values = np.where(stable.reshape(shape), values, np.inf)
        else:
            values = np.where(stable.reshape(shape), values, np.nan)
        data_vars[name] = (dims, values, {"units": units, "long_name": long_name})
    for name, metric in contract.HISTOGRAMS.items():
        if name not in metrics:
            continue
        values = np.asarray(metrics[name]).reshape(shape + (len(metric.edges),))
        values = np.where(stable.reshape(shape)[..., None], values, np.nan)
        data_vars[name] = (dims + (metric.dim,), values, metric.attrs)
    data_vars["stable"] = (dims, stable.reshape(shape).copy(), contract.attrs("stable"))
    data_vars["converged"] = (dims, (reason == 0).reshape(shape),
                              {**contract.attrs("converged"),
                               "long_name": "the analytic fixed point converged"})
    data_vars["unconverged_reason"] = (dims, np.array(REASONS, dtype=object)[reason].reshape(
        shape).astype(str), contract.attrs("unconverged_reason"))
    unconverged = int((reason != 0).sum())
    coords = {"policy": list(x.policies)}
    coords.update({d: v for d, v in scenario.coords.items()})
    if distribution:
        coords.update(contract.bin_coords())
    ds = xr.Dataset(data_vars, coords=coords)
    from ... import __version__
    ds.attrs.update({
        "solver": "analytic",
        "faultlock_version": __version__,
        "scenario": scenario.to_json(indent=None),
        "formulas": ",".join(sorted(sym.FORMULAS)),
        "formula_hashes": ",".join(f"{n}:{sym.FORMULAS[n].hash()[:16]}"
                                   for n in sorted(sym.FORMULAS)),
        "fixed_point_iterations": int(iterations),
        "fixed_point_unconverged": unconverged,
    })
    return ds


