"""Sweep throughput: cells per second for each method, the speed-up from 1 to 2 Dask workers on
Monte Carlo cells, and the scheduling overhead against the same cells in one plain loop.

    python benchmarks/bench_sweeps.py [--mc-cells 16] [--operations 3000] [--analytic-cells 169]

What is timed:

* **loop**: ``faultlock.simulate`` (or ``predict``) on every cell in this process, nothing stored
  (the floor: the solver's own cost);
* **here**: ``run_sweep(workers=0)``, the same cells through the sweep machinery in this process
  (spec, plans, template, region writes, done markers, winner maps) without Dask;
* **1 worker / 2 workers**: ``run_sweep(scheduler=...)`` on a ``LocalCluster`` with that many
  single-threaded processes, started and warmed (numba cache loaded on every worker) before the
  clock starts; cluster start-up is reported on its own.

Scheduling overhead = (1 worker) / (loop) - 1. Speed-up = (1 worker) / (2 workers); the target is
1.7 or more on two otherwise idle cores. Both are also given without the fixed cost of a sweep
(template, provenance, first-result schema, winner maps: ~1.5 s, serial, once per sweep), which
dominates a grid this small. The share of their CPUs the workers actually got is
printed (from their CPU time): well below 100 %, other work on the machine is taking the cores and
the speed-up measures that, not the sweep. Keep the runs small: the cores are shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SPEC = """
description = "benchmark grid"
method = "{method}"
policies = ["mainline", "vma_retry", "vma_wait"]
seed = 11

[base]
preset = "android_warm_start"

[grid]
threads = {threads}
io_latency = {io}

[mc]
operations = {operations}
batches = 10
chunk_cells = 1

[analytic]
chunk_cells = {analytic_chunk}
"""


def _spec(directory: Path, method: str, threads, io, operations=1000, analytic_chunk=64) -> Path:
    path = directory / f"bench_{method}_{len(threads) * len(io)}.toml"
    path.write_text(SPEC.format(method=method, threads=list(threads),
                                io=[f"{v}us" for v in io], operations=operations,
                                analytic_chunk=analytic_chunk))
    return path


def _warm(_=None) -> float:
    """Load faultlock and the compiled engine on a worker (numba cache)."""
    import faultlock
    started = time.perf_counter()
    faultlock.simulate(faultlock.Scenario.preset("android_warm_start", threads=2), ["mainline"],
                       operations=200, batches=2)
    return time.perf_counter() - started


def _timed(function, *args, **kwargs) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mc-cells", type=int, default=16, help="Monte Carlo cells (4 x N/4)")
    parser.add_argument("--operations", type=int, default=3000, help="MC operations per cell")
    parser.add_argument("--analytic-cells", type=int, default=169, help="analytic cells (n x n)")
    args = parser.parse_args()

    from dask.distributed import Client, LocalCluster

    import faultlock
    from faultlock.sweeps import load_spec, run_sweep
    from faultlock.sweeps.grid import make_plans
    from faultlock.sweeps.solvers import analytic_available

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweeps_"))
    _warm()

    # -- Monte Carlo ---------------------------------------------------------------------------
    per_axis = max(1, args.mc_cells // 4)
    path = _spec(tmp, "mc", [16, 64, 256, 1024], list(np.geomspace(50, 5000, per_axis).round(1)),
                 operations=args.operations)
    spec = load_spec(path)
    plan = make_plans(spec)["mc"]
    cells = [(plan.scenario(i), plan.seed_key(i))
             for i in plan.cell_indices(tuple(slice(0, n) for n in plan.shape))]

    def loop():
        for scenario, key in cells:
            faultlock.simulate(scenario, spec.policies,
                               seed=np.random.SeedSequence(spec.seed, spawn_key=key),
                               **spec.mc.simulate_kwargs())

    n = len(cells)
    t_loop = _timed(loop)
    t_here = _timed(run_sweep, path, tmp / "here.zarr", workers=0, progress=False)
    # fixed cost of a sweep (template, provenance, schema, winner maps): a one-cell sweep
    one = _spec(tmp, "mc", [16], [50.0], operations=args.operations)
    scenario = make_plans(load_spec(one))["mc"].scenario((0, 0))
    t_one_loop = _timed(lambda: faultlock.simulate(scenario, spec.policies, seed=1,
                                                   **spec.mc.simulate_kwargs()))
    t_fixed = _timed(run_sweep, one, tmp / "one.zarr", workers=0, progress=False) - t_one_loop
    timings, granted = {}, {}
    for workers in (1, 2):
        started = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        client.run(_warm)
        startup = time.perf_counter() - started
        cpu_before = client.run(time.process_time)
        timings[workers] = _timed(run_sweep, path, tmp / f"w{workers}.zarr",
                                  scheduler=cluster.scheduler_address, progress=False)
        cpu = sum(client.run(time.process_time).values()) - sum(cpu_before.values())
        granted[workers] = cpu / (timings[workers] * workers)
        client.close()
        cluster.close()
        print(f"  LocalCluster({workers}) start and warm-up: {startup:.1f} s; the workers got "
              f"{granted[workers]:.0%} of their {workers} CPU(s) during the sweep")
    print(f"Monte Carlo: {n} cells x {len(spec.policies)} policies x {args.operations} operations")
    print(f"  loop (simulate per cell)  {t_loop:7.2f} s  {n / t_loop:7.2f} cells/s")
    print(f"  run_sweep in process      {t_here:7.2f} s  {n / t_here:7.2f} cells/s  "
          f"(store overhead {t_here / t_loop - 1:+.1%})")
    print(f"    of which fixed per sweep (template, provenance, schema, winners): {t_fixed:.2f} s;"
          f" per cell: {1e3 * (t_here - t_loop - t_fixed) / n:.1f} ms "
          f"(simulate: {1e3 * t_loop / n:.0f} ms)")
    for workers, t in timings.items():
        print(f"  run_sweep, {workers} worker(s)     {t:7.2f} s  {n / t:7.2f} cells/s")
    print(f"  scheduling overhead, 1 worker vs loop: {timings[1] / t_loop - 1:+.1%}; without "
          f"the fixed cost per sweep: {(timings[1] - t_fixed) / t_loop - 1:+.1%}")
    print(f"  speed-up 1 -> 2 workers: {timings[1] / timings[2]:.2f} (target >= 1.7); without "
          f"the fixed cost per sweep: {(timings[1] - t_fixed) / (timings[2] - t_fixed):.2f}; "
          f"per CPU granted: {timings[1] * granted[1] / (timings[2] * granted[2]):.2f}")
    if min(granted.values()) < 0.8:
        print("  (the workers did not get their CPUs: other work on the machine; the speed-up "
              "measures the machine, not the sweep)")

    # -- analytic ------------------------------------------------------------------------------
    missing = analytic_available()
    if missing:
        print(f"analytic: not measured ({missing})")
        return
    from faultlock.model.analytic import predict
    side = max(1, round(args.analytic_cells ** 0.5))
    path = _spec(tmp, "analytic", [int(2 ** k) for k in range(side)],
                 list(np.geomspace(20, 20000, side).round(1)), analytic_chunk=side * side)
    spec = load_spec(path)
    n = spec.cells("analytic")
    grid = spec.grid()
    predict(spec.cell((0, 0)), spec.policies)  # imports, lambdify caches
    t_vector = _timed(predict, grid, spec.policies)
    t_scalar = _timed(lambda: [predict(spec.cell((i, j)), spec.policies)
                               for i in range(2) for j in range(side)])
    t_scalar *= n / (2 * side)
    t_here = _timed(run_sweep, path, tmp / "analytic.zarr", workers=0, progress=False)
    print(f"analytic: {n} cells x {len(spec.policies)} policies")
    print(f"  predict, one vectorised call  {t_vector:7.2f} s  {n / t_vector:8.1f} cells/s")
    print(f"  predict, cell by cell (est.)  {t_scalar:7.2f} s  {n / t_scalar:8.1f} cells/s")
    print(f"  run_sweep in process           {t_here:7.2f} s  {n / t_here:8.1f} cells/s")


if __name__ == "__main__":
    main()
