"""Speed of the analytic model: scenario-policy evaluations per second (prints; not a test).

    python benchmarks/bench_analytic.py [--cells N] [--repeat N] [--only grids|memory]

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

Under a memory limit (``reclaim = "lru"``, MODEL.md mechanism 9) every pass of the fixed point
also solves the LRU's characteristic times (Che's T_c, and T_A with two lists): the third grid,
the main job's (``faultlock sweep lsfmm``: ``android_warm_start``, threads 1-4,096 in powers of
two, I/O 20 us-20 ms, two writer loads), is timed without a limit and at 1/8 and 1/32 of the
working set, and the ratio of the evaluations per CPU second printed: what the limit costs.

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


def memory(limit: int) -> Scenario:
    """The main job's grid (``sweeps/specs/lsfmm.toml``, a quarter of it) at one memory limit
    (0: none; the working set is 262,144 pages)."""
    return Scenario.preset("android_warm_start").replace(
        threads=xr.DataArray(2 ** np.arange(13), dims="threads"),
        io_latency=xr.DataArray(np.geomspace(20e-6, 20e-3, 4), dims="io_latency"),
        writer_rate=xr.DataArray([100.0, 2000.0], dims="writer_rate"),
        reclaim="lru", reclaim_rate_cached=0.0, reclaim_rate_mapped=0.0, memory_limit=limit)


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
    parser.add_argument("--only", choices=("grids", "memory"), default=None,
                        help="time only the benchmark and flagship grids, or only the memory "
                             "limit's")
    args = parser.parse_args()
    start = time.perf_counter()
    predict(Scenario(), POLICIES)                           # import, numba cache / compilation
    print(f"warm-up (import, compiled code load or compilation): "
          f"{time.perf_counter() - start:.1f} s; numba threads: {numba.get_num_threads()}")
    grids = (("benchmark grid", grid(args.cells)), ("flagship 1-4096", flagship()))
    for label, scenario in grids if args.only != "memory" else ():
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
    for distribution in (False, True) if args.only != "grids" else ():
        what = "with the distribution" if distribution else "means"
        free = max((rate(memory(0), distribution) for _ in range(args.repeat)),
                   key=lambda r: r[1])
        for limit in (32768, 8192):
            limited = max((rate(memory(limit), distribution) for _ in range(args.repeat)),
                          key=lambda r: r[1])
            print(f"main job, limit {limit:6,d} {what:22s}: {limited[1]:10,.0f} evaluations/s "
                  f"per CPU second, {free[1]:,.0f}/s without a limit: {free[1] / limited[1]:.1f}"
                  f" x slower ({limited[2]:,} evaluations, {limited[3]} unconverged, "
                  f"{limited[4]} invalid; without: {free[3]}, {free[4]})")
    if args.only == "memory":
        return
    print(f"formula registry (numeric), per point: {registry_rate():12,.0f} evaluations/s "
          f"({len(formulas.FORMULAS)} formulas)")
    print("target (issue 11): 100,000 evaluations/s for the means on one core, 20,000/s with "
          "the distribution")


if __name__ == "__main__":
    main()
