"""Speed of the analytic model: scenario-policy evaluations per second (prints; not a test).

    python benchmarks/bench_analytic.py [--cells N]

Four numbers, each on one core (numpy releases no threads here):

* ``predict(..., distribution=False)``: the closed forms and the fixed point of the model
  (means, rates, ratios) on a DataArray grid over threads x io_latency x memory pressure x
  writer_rate, times the 7 policies;
* ``predict(...)``: the same plus the latency distribution (quantiles, jank share, histograms);
* the compiled fixed point (the default, ``faultlock.model.fixed_point``) against the numpy
  reference iteration (``predict(..., compiled=False)``), side by side in one run: their ratio
  (the machine is shared and noisy, so the ratio is what compares);
* the formula registry alone: every ``Formula.numeric()`` of ``symbolic.FORMULAS`` evaluated on
  arrays of a million points (what a sweep of one closed form costs).

The issue's target is 100,000 scenario-policy evaluations per second for the closed forms.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr

from faultlock import POLICIES, Scenario, predict
from faultlock.model import symbolic


def grid(cells: int) -> Scenario:
    side = max(2, round(cells ** 0.25))
    return Scenario(
        cpus=8, vmas=8, pages_per_vma=65536, page_popularity=0.8, readaround_pages=8,
        threads=xr.DataArray(np.unique(np.geomspace(1, 512, side).astype(int)), dims="threads"),
        io_latency=xr.DataArray(np.geomspace(20e-6, 5e-3, side), dims="io_latency"),
        reclaim_rate_cached=xr.DataArray(np.geomspace(1.0, 2000.0, side), dims="pressure"),
        reclaim_rate_mapped=xr.DataArray(np.geomspace(0.1, 50.0, side), dims="pressure"),
        writer_rate=xr.DataArray(np.geomspace(1.0, 3000.0, side), dims="writer_rate"),
    )


def rate(scenario: Scenario, distribution: bool,
         compiled: bool | None = None) -> tuple[float, int, float, int]:
    evaluations = len(POLICIES) * int(np.prod(list(scenario.dims.values())))
    start = time.perf_counter()
    ds = predict(scenario, POLICIES, distribution=distribution, compiled=compiled)
    elapsed = time.perf_counter() - start
    return evaluations / elapsed, evaluations, elapsed, ds.attrs["fixed_point_unconverged"]


def registry_rate(points: int = 1_000_000) -> float:
    total, elapsed = 0, 0.0
    for formula in symbolic.FORMULAS.values():
        args = [np.full(points, 2 if s.is_integer else 0.5) for s in formula.symbols]
        if symbolic.arrival_rate in formula.symbols:
            args[formula.symbols.index(symbolic.arrival_rate)] = np.full(points, 0.2)
        fn = formula.numeric()
        fn(*(a[:10] for a in args))                       # warm the lambdify cache
        start = time.perf_counter()
        fn(*args)
        elapsed += time.perf_counter() - start
        total += points
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4096, help="grid cells (times 7 policies)")
    args = parser.parse_args()
    start = time.perf_counter()
    predict(Scenario(), POLICIES)                           # import, numba cache / compilation
    print(f"warm-up (import, compiled code load or compilation): "
          f"{time.perf_counter() - start:.1f} s")
    big = grid(args.cells)
    per_s, n, elapsed, bad = rate(big, distribution=False)
    print(f"predict, closed forms + fixed point : {per_s:12,.0f} evaluations/s "
          f"({n:,} scenario-policy evaluations in {elapsed:.1f} s; {bad} unconverged)")
    fast, _, _, _ = rate(big, distribution=False, compiled=True)
    slow, _, _, _ = rate(big, distribution=False, compiled=False)
    print(f"compiled vs numpy fixed point, same run: {fast:12,.0f} vs {slow:,.0f} evaluations/s "
          f"(x{fast / slow:.2f})")
    small = grid(max(16, args.cells // 8))
    per_s, n, elapsed, bad = rate(small, distribution=True)
    print(f"predict, with the distribution       : {per_s:12,.0f} evaluations/s "
          f"({n:,} in {elapsed:.1f} s; {bad} unconverged)")
    print(f"formula registry (numeric), per point: {registry_rate():12,.0f} evaluations/s "
          f"({len(symbolic.FORMULAS)} formulas)")
    print("target (issue 3): 100,000 scenario-policy evaluations/s for the closed forms")


if __name__ == "__main__":
    main()
