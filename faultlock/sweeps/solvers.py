"""The work of one task: a chunk of cells through a solver, returned as one labelled Dataset.

These functions run on Dask workers (or in the calling process). A task is a small dict of plain
values and Scenarios (which pickle without being validated again), built by :func:`make_task` on
the client; workers need no access to the store (they may be on other machines). The result has
the region's axes first, then the solver's own dimensions (``policy``, histogram bins).
Variables that differ between identical runs (engine wall-clock time) are dropped so that a
store is a deterministic function of its spec.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import xarray as xr

from .grid import Plan

__all__ = ["DERIVED", "NONDETERMINISTIC", "analytic_available", "make_task", "run_task"]

#: solver outputs that are not a function of the inputs (timings): never stored
NONDETERMINISTIC = ("wall_time",)
#: solver outputs stored through another variable: ``invalid_reason`` is the text of the bit
#: flags ``invalid_checks`` (``faultlock.model.checks.reasons``), ``unconverged_reason`` says why
#: ``converged`` is false (also the ``unconverged`` bit of ``invalid_checks``); strings of any
#: length do not fit the store's fixed dtypes
DERIVED = ("invalid_reason", "unconverged_reason")


def analytic_available() -> str | None:
    """None if ``faultlock.model.analytic.predict`` can be imported, else why not."""
    try:
        module = importlib.import_module("faultlock.model.analytic")
    except ImportError as exc:
        return f"faultlock.model.analytic cannot be imported ({exc})"
    if not callable(getattr(module, "predict", None)):
        return "faultlock.model.analytic has no predict()"
    return None


def make_task(plan: Plan, region: tuple[slice, ...]) -> dict[str, Any]:
    """The payload of one chunk: everything a worker needs, as plain data."""
    spec = plan.spec
    task: dict[str, Any] = {
        "method": plan.method,
        "axes": list(plan.axes),
        "region": [(s.start, s.stop) for s in region],
        "region_coords": {a: c.tolist() for a, c in plan.region_coords(region).items()},
        "policies": list(spec.policies),
    }
    if plan.method == "mc":
        cells = list(plan.cell_indices(region))
        task["cells"] = [plan.scenario(i) for i in cells]
        task["seed_keys"] = [list(plan.seed_key(i)) for i in cells]
        task["entropy"] = spec.seed
        task["settings"] = spec.mc.simulate_kwargs()
        if spec.mc.selection is not None:  # rank and select (faultlock.sweeps.ranking)
            task["selection"] = {"mc": spec.mc, "objectives": spec.objectives,
                                 "tie_tolerance": spec.tie_tolerance}
    else:
        task["grid"] = plan.region_grid(region)
    return task


def run_task(task: dict[str, Any]) -> xr.Dataset:
    """Compute one chunk (on a worker)."""
    if task["method"] == "mc":
        return _run_montecarlo(task)
    if task["method"] == "analytic":
        return _run_analytic(task)
    raise ValueError(f"method={task['method']!r} is not allowed: 'analytic' or 'mc'")


def _clean(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.drop_vars([v for v in NONDETERMINISTIC + DERIVED if v in ds.variables])
    ds.attrs = {}
    return ds


def _run_montecarlo(task: dict[str, Any]) -> xr.Dataset:
    from ..model.montecarlo.simulate import simulate
    from ..model.scenario import Scenario

    axes = task["axes"]
    shape = tuple(stop - start for start, stop in task["region"])
    results = []
    for cell, key in zip(task["cells"], task["seed_keys"]):
        seed = np.random.SeedSequence(task["entropy"], spawn_key=tuple(key))
        scenario = cell if isinstance(cell, Scenario) else Scenario.from_dict(cell)
        if task.get("selection"):
            from .ranking import select_cell
            ds = select_cell(scenario, task["policies"], seed, **task["selection"])
        else:
            ds = simulate(scenario, task["policies"], seed=seed, **task["settings"])
        results.append(_clean(ds))
    first = results[0]
    data_vars = {}
    for name in first.data_vars:  # Variables, not DataArrays: ~100 variables a cell
        var = first.variables[name]
        values = np.empty(shape + var.shape, dtype=var.dtype)
        flat = values.reshape((-1,) + var.shape)
        for k, ds in enumerate(results):
            flat[k] = ds.variables[name].values
        data_vars[name] = ((*axes, *var.dims), values, dict(var.attrs))
    coords = {a: task["region_coords"][a] for a in axes}
    coords.update({name: c for name, c in first.coords.items() if name not in axes})
    return xr.Dataset(data_vars, coords=coords)


def _run_analytic(task: dict[str, Any]) -> xr.Dataset:
    from ..model.analytic import predict
    from ..model.scenario import Scenario

    axes = task["axes"]
    grid = task["grid"] if isinstance(task["grid"], Scenario) else \
        Scenario.from_dict(task["grid"])
    ds = _clean(predict(grid, task["policies"]))
    missing = [a for a in axes if a not in ds.dims]
    if missing:  # an axis of length 1 may have been squeezed by the solver
        ds = ds.expand_dims({a: task["region_coords"][a] for a in missing})
    ds = ds.transpose(*axes, ...)
    for name in axes:  # the solver's labels are the grid's (levels: strings; fields: values)
        ds = ds.assign_coords({name: task["region_coords"][name]})
    extra = [c for c in ds.coords if c not in ds.dims and set(ds[c].dims) & set(axes)]
    return ds.drop_vars(extra)
