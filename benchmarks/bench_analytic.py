"""Speed of the analytic model: scenario-policy evaluations per second (prints; not a test).

    python benchmarks/bench_analytic.py [--cells N]

On two grids, each times the 7 policies: the benchmark grid (threads x io_latency x memory
pressure x writer_rate) and the flagship preset ``android_warm_start`` over 1,000 thread counts
from 1 to 4,096; for each, ``predict(..., distribution=False)`` (means, rates, ratios) and
``predict(...)`` (plus quantiles, jank share, histograms).  Evaluations per second of wall time
and of CPU time (the machine may be shared: CPU time is what one core gives), and how many
elements did not converge.  The elements are spread over numba's threads: run once with
``NUMBA_NUM_THREADS=1`` for one core.  Per grid it also counts the elements reported invalid
(``valid`` false: an unconverged fixed point or a failed invariant, with its reason).  Also
the formula registry alone: every ``Formula.numeric()`` of ``formulas.FORMULAS`` on arrays of
a million points.

The issue's target is 100,000 scenario-policy evaluations per second for the closed forms.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
import xarray as xr

from faultlock import POLICIES, Scenario, predict
from faultlock.model import formulas


def grid(cells: int) -> Scenario:
    side = max(2, round(cells ** 0.25))
    return Scenario(
        cpus=8, vmas=8, pages_per_vma=65536, page_popularity=0.8, readaround_pages=8,
        threads=xr.DataArray(np.unique(np.geomspace(1, 512, side).astype(int)), dims="threads"),
        io_latency=xr.DataArray(np.geomspace(20e-6, 5e-3, side), dims="io_latency"),
        reclaim="hazard",
        reclaim_rate_cached=xr.DataArray(np.geomspace(1.0, 2000.0, side), dims="pressure"),
        reclaim_rate_mapped=xr.DataArray(np.geomspace(0.1, 50.0, side), dims="pressure"),
        writer_rate=xr.DataArray(np.geomspace(1.0, 3000.0, side), dims="writer_rate"),
    )


def flagship(points: int = 1000) -> Scenario:
    threads = np.unique(np.linspace(1, 4096, points).astype(int))
    return Scenario.preset("android_warm_start").replace(
        threads=xr.DataArray(threads, dims="threads"))


def rate(scenario: Scenario, distribution: bool) -> tuple[float, float, int, int, int]:
    """(evaluations/s of wall time, of CPU time, evaluations, unconverged elements, elements
    reported invalid (``model/checks.py``: unconverged ones included))."""
    evaluations = len(POLICIES) * int(np.prod(list(scenario.dims.values())))
    start, cpu = time.perf_counter(), time.process_time()
    ds = predict(scenario, POLICIES, distribution=distribution)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    unconverged = ds.attrs["fixed_point_unconverged"]
    invalid = int((~ds["valid"]).sum())
    return evaluations / elapsed, evaluations / cpu, evaluations, unconverged, invalid


def registry_rate(points: int = 1_000_000) -> float:
    total, elapsed = 0, 0.0
    for formula in formulas.FORMULAS.values():
        args = [np.full(points, 2 if s.is_integer else 0.5) for s in formula.symbols]
        if formulas.arrival_rate in formula.symbols:
            args[formula.symbols.index(formulas.arrival_rate)] = np.full(points, 0.2)
        fn = formula.numeric()
        fn(*(a[:10] for a in args))                       # warm the lambdify cache
        start = time.perf_counter()
        fn(*args)
        elapsed += time.perf_counter() - start
        total += points
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4096, help="benchmark grid cells")
    parser.add_argument("--repeat", type=int, default=3, help="runs per number (best kept)")
    args = parser.parse_args()
    start = time.perf_counter()
    predict(Scenario(), POLICIES)                           # import, numba cache / compilation
    print(f"warm-up (import, compiled code load or compilation): "
          f"{time.perf_counter() - start:.1f} s; numba threads: {numba.get_num_threads()}")
    for label, scenario in (("benchmark grid", grid(args.cells)), ("flagship 1-4096", flagship())):
        for distribution in (False, True):
            runs = [rate(scenario, distribution) for _ in range(args.repeat)]
            wall = max(r[0] for r in runs)
            cpu = max(r[1] for r in runs)
            spread = (max(r[0] for r in runs) - min(r[0] for r in runs)) / wall
            n, bad, invalid = runs[0][2], runs[0][3], runs[0][4]
            what = "with the distribution" if distribution else "means"
            print(f"{label:16s} {what:22s}: {wall:10,.0f} evaluations/s wall "
                  f"({cpu:,.0f}/s per CPU second; runs spread {spread:.0%}; {n:,} evaluations, "
                  f"{bad} unconverged, {invalid} invalid)")
    print(f"formula registry (numeric), per point: {registry_rate():12,.0f} evaluations/s "
          f"({len(formulas.FORMULAS)} formulas)")
    print("target (issue 11): 100,000 evaluations/s for the means on one core, 20,000/s with "
          "the distribution")


if __name__ == "__main__":
    main()
