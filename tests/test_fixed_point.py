"""The compiled fixed point (faultlock.model.fixed_point) against the numpy reference.

The numpy ``_pass``/``_solve`` of analytic.py are the readable reference; ``fixed_point`` runs the
same iteration compiled, one element at a time.  One pass at the same state agrees to round-off;
whole solves agree within the fixed point's tolerance (the iteration paths may part at
round-off level), and every metric of ``predict`` with it.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from faultlock import POLICIES, PRESETS, Scenario
from faultlock.model import analytic, fixed_point, validation


def _grid(side: int = 3) -> Scenario:
    """A small version of benchmarks/bench_analytic.py's grid."""
    return Scenario(
        cpus=8, vmas=8, pages_per_vma=65536, page_popularity=0.8, readaround_pages=8,
        threads=xr.DataArray(np.unique(np.geomspace(1, 512, side).astype(int)), dims="threads"),
        io_latency=xr.DataArray(np.geomspace(20e-6, 5e-3, side), dims="io_latency"),
        reclaim_rate_cached=xr.DataArray(np.geomspace(1.0, 2000.0, side), dims="pressure"),
        reclaim_rate_mapped=xr.DataArray(np.geomspace(0.1, 50.0, side), dims="pressure"),
        writer_rate=xr.DataArray(np.geomspace(1.0, 3000.0, side), dims="writer_rate"))


WALK = {"threads": 4, "cpus": 4, "think_time": 1e-6, "io_latency": 500e-6, "io_latency_cv": 0.3,
        "access_pattern": "group_walk", "readaround_pages": 1, "vmas": 1,
        "pages_per_vma": 1 << 20, "reclaim_rate_cached": 20.0, "reclaim_rate_mapped": 2.0,
        "writer_rate": 0.0, "group_size": 2}

SCENARIOS = {
    "grid": _grid(),
    "workload": validation.workload_grid(),
    "walk": Scenario(**WALK),
    "flat_out_writer": Scenario(threads=4, cpus=2, writer_mode="flat_out", writer_threads=2,
                                writer_rate=0.0, io_parallelism=2, swap_share=0.25),
    "big_file": Scenario(vmas=64, pages_per_vma=1 << 16, threads=32, cpus=4,
                         tried_after_major=False, retry_limit=3),
    **{name: Scenario.preset(name) for name in PRESETS},
}


def _elements(scenario):
    inputs = analytic._Inputs(scenario, POLICIES)
    return inputs.elements(np.arange(len(POLICIES) * inputs.cells))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_one_pass_agrees_with_numpy(name):
    """At the same state (the numpy solve's after 1 and 4 passes) the compiled pass gives every
    new state quantity and the target rate to round-off."""
    x = _elements(SCENARIOS[name])
    for passes in (1, 4):
        with np.errstate(all="ignore"):
            st = analytic._solve(x, iterations=passes, compiled=False)[0]
            new, target = analytic._pass(x, st)[:2]
        cnew, ctarget = fixed_point.pass_once(x, st)
        for key, value in [*new.items(), ("target", target)]:
            got = ctarget if key == "target" else cnew[key]
            np.testing.assert_allclose(got, np.broadcast_to(value, got.shape), rtol=1e-10,
                                       atol=1e-300, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_predict_compiled_agrees_with_numpy(name):
    scenario = SCENARIOS[name]
    fast = analytic.predict(scenario, POLICIES, distribution=name == "grid", compiled=True)
    slow = analytic.predict(scenario, POLICIES, distribution=name == "grid", compiled=False)
    assert (fast.stable.values == slow.stable.values).all()
    assert fast.attrs["fixed_point_unconverged"] <= slow.attrs["fixed_point_unconverged"]
    for var in slow.data_vars:
        a, b = fast[var].values, slow[var].values
        if var == "invalid_reason":
            continue   # text of invalid_checks, compared as numbers
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-12, err_msg=f"{name}: {var}")


def test_module_switch_selects_the_numpy_reference(monkeypatch):
    x = _elements(Scenario())
    calls = []
    monkeypatch.setattr(fixed_point, "solve", lambda *a, **k: calls.append(1) or 1 / 0)
    monkeypatch.setattr(analytic, "COMPILED", False)
    with np.errstate(all="ignore"):
        analytic._solve(x)
        assert not calls
        monkeypatch.setattr(analytic, "COMPILED", True)
        with pytest.raises(ZeroDivisionError):
            analytic._solve(x)
