"""The compiled fixed point against the numpy reference: max deviation of every metric (prints).

    python benchmarks/compare_fixed_point.py [--small] [--dist]

On the benchmark grid (4096 cells; --small leaves it out), the validation grids, every preset
and the scenarios of tests/test_analytic_workloads.py, all policies: ``predict(compiled=True)``
against ``predict(compiled=False)`` (--dist: with the latency distribution).  Stops on a
``stable`` flag that differs.
"""
import importlib.util
import pathlib
import sys
import time

import numpy as np
import xarray as xr

from faultlock import POLICIES, PRESETS, Scenario, predict
from faultlock.model import validation as V

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_analytic import grid  # noqa: E402  (a sibling script, found through sys.path)

def scenarios(big=True):
    out = []
    if big:
        out.append(("grid4096", grid(4096)))
    out += [("default", V.default_grid()), ("workload", V.workload_grid())]
    out += [(k, Scenario.preset(k)) for k in PRESETS]
    spec = importlib.util.spec_from_file_location(
        "tw", HERE.parent / "tests" / "test_analytic_workloads.py")
    tw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tw)
    out.append(("PHASE", Scenario(**tw.PHASE)))
    for mode, where, threads, rate, locks in [("periodic", "thread", 2, 400.0, 2),
                                              ("flat_out", "thread", 1, 0.0, 1),
                                              ("periodic", "process", 1, 2000.0, 1)]:
        out.append((f"WRITERS-{mode}-{where}",
                    Scenario(**tw.WRITERS, writer_mode=mode, writer_where=where,
                             writer_threads=threads, writer_op_rate=rate,
                             writer_locks_per_op=locks)))
    for g in (1, 2, 4):
        out.append((f"WALK-{g}", Scenario(**tw.WALK, group_size=g)))
    out.append(("corners", Scenario.preset("android_warm_start").replace(
        threads=xr.DataArray([1, 16, 256], dims="threads"),
        reclaim_rate_cached=xr.DataArray([0.0, 5000.0], dims="pressure"),
        reclaim_rate_mapped=xr.DataArray([0.0, 50.0], dims="pressure"),
        writer_rate=xr.DataArray([100.0, 2000.0], dims="writers"))))
    return out

def compare(a, b, worst, label):
    assert (a.stable.values == b.stable.values).all(), (label, "stable differs")
    ua, ub = a.attrs["fixed_point_unconverged"], b.attrs["fixed_point_unconverged"]
    for name in b.data_vars:
        if name == "stable":
            continue
        va, vb = a[name].values, b[name].values
        same = (va == vb) | (np.isnan(va) & np.isnan(vb))
        with np.errstate(all="ignore"):
            dev = np.abs(va - vb) / np.maximum(np.abs(vb), 1e-8)   # rel, with abs near 0
            dev = np.where(np.abs(va - vb) <= 1e-12, 0.0, dev)
        dev = np.where(same, 0.0, np.where(np.isnan(dev), np.inf, dev))
        m = float(dev.max()) if dev.size else 0.0
        if m > worst.get(name, (0, ""))[0]:
            worst[name] = (m, label)
    return ua, ub

if __name__ == "__main__":
    dist = "--dist" in sys.argv
    worst = {}
    for label, s in scenarios(big="--small" not in sys.argv):
        t0 = time.time()
        c = predict(s, POLICIES, distribution=dist, compiled=True)
        t1 = time.time()
        n = predict(s, POLICIES, distribution=dist, compiled=False)
        t2 = time.time()
        ua, ub = compare(c, n, worst, label)
        print(f"{label:32s} compiled {t1-t0:6.2f}s numpy {t2-t1:6.2f}s "
              f"unconverged compiled {ua} numpy {ub}", flush=True)
    print("max deviation per metric:")
    for k, (m, where) in sorted(worst.items(), key=lambda kv: -kv[1][0]):
        print(f"  {k:36s} {m:.3e}  ({where})")
    print("OVERALL", max(m for m, _ in worst.values()))
