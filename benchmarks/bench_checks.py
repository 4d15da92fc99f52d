"""Cost of the invariant checks (``faultlock.model.checks.check``) per call (prints; not a test).

    python benchmarks/bench_checks.py [--repeat 20] [--before REF] [--compare [--fuzz 200]
                                      [--grid]]

The inputs are the real ones of the main job (the ``lsfmm`` spec): the Dataset and Scenario that
:func:`faultlock.simulate` hands to ``check`` for one Monte Carlo cell (7 policies, the spec's
4,000 operations in 20 batches) and that :func:`faultlock.predict` hands to it for one analytic
task (the spec's ``chunk_cells``: 208 cells x 7 policies), recorded by wrapping ``check`` while
the solvers run.  Each is then checked ``--repeat`` times and the CPU time per call
(``time.process_time``) printed.

With ``--before REF`` (default: the commit before the numpy rewrite) the implementation of
``faultlock/model/checks.py`` at that git revision is loaded as a module beside the current one
and timed on the same inputs, side by side.  ``--compare`` then also checks that both give the
same ``invalid_checks`` (bitwise) and ``invalid_reason``: on the inputs above, on ``--fuzz``
copies of them whose numbers are perturbed at random (scaled, negated, set to NaN, inf or 0,
flags flipped, per element) so that most checks trip somewhere, and with ``--grid`` on every
analytic task of the whole ``lsfmm`` grid (2,704 cells x 7 policies; the 13 ``predict`` calls
take most of the time).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from faultlock import POLICIES, predict, simulate
from faultlock.model import checks
from faultlock.sweeps.grid import make_plans
from faultlock.sweeps.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
#: main before the numpy rewrite of checks.py (issue 13)
BEFORE = "aaa839a"


def load_before(ref: str):
    """``faultlock/model/checks.py`` at git revision ``ref`` as module
    ``faultlock.model._checks_before`` (its relative imports resolve in the current package)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:faultlock/model/checks.py"],
                            check=True, capture_output=True, text=True).stdout
    name = "faultlock.model._checks_before"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "faultlock.model"
    sys.modules[name] = module
    exec(compile(source, f"{ref}:faultlock/model/checks.py", "exec"), module.__dict__)
    return module


def record(run):
    """The ``(ds, scenario, converged)`` every ``check`` call of ``run()`` received."""
    calls, original = [], checks.check

    def recording(ds, scenario, converged=None):
        calls.append((ds, scenario, converged))
        return original(ds, scenario, converged)

    checks.check = recording
    try:
        run()
    finally:
        checks.check = original
    return calls


def inputs():
    """The Monte Carlo cell's and the analytic task's inputs of ``check`` (lsfmm spec)."""
    spec = load_spec("lsfmm")
    plans = make_plans(spec)
    cell = plans["mc"].scenario((1, 0, 0, 0))
    kwargs = spec.mc.simulate_kwargs()
    simulate(cell, POLICIES[:1], operations=200, batches=2)         # numba compiles
    mc = record(lambda: simulate(cell, POLICIES, seed=1, **kwargs))
    analytic = plans["analytic"]
    task = analytic.region_grid(analytic.regions()[0])
    an = record(lambda: predict(task, POLICIES))
    return {"Monte Carlo cell, 7 policies": mc[-1],
            f"analytic task, {int(np.prod(list(task.dims.values())))} cells x 7": an[-1]}


def cost(implementation, args, repeat: int) -> float:
    """CPU seconds per call of ``implementation.check(*args)`` (best of three rounds)."""
    implementation.check(*args)
    rounds = []
    for _ in range(3):
        start = time.process_time()
        for _ in range(repeat):
            implementation.check(*args)
        rounds.append((time.process_time() - start) / repeat)
    return min(rounds)


def same(before, args) -> bool:
    a, b = before.check(*args), checks.check(*args)
    return (np.array_equal(a.invalid_checks.values, b.invalid_checks.values)
            and a.invalid_checks.dims == b.invalid_checks.dims
            and np.array_equal(a.invalid_reason.values, b.invalid_reason.values)
            and np.array_equal(a.valid.values, b.valid.values))


def fuzz(ds: xr.Dataset, rng: np.random.Generator) -> xr.Dataset:
    """A copy of ``ds`` whose numbers are perturbed element by element: most floats kept, the
    rest scaled by 0.5-2, 1 +- 1e-3, negated, or set to NaN, inf or 0; 5 % of the flags
    (``stable``, ``converged``) flipped and of the counts (``faults_stuck``, ...) set to 0-2."""
    out = ds.copy(deep=True)
    for var in out.data_vars.values():
        v = var.values
        if var.dtype.kind == "b":
            v ^= rng.random(v.shape) < 0.05
        elif var.dtype.kind in "iu":
            v[:] = np.where(rng.random(v.shape) < 0.05, rng.integers(0, 3, v.shape), v)
        if var.dtype.kind != "f":
            continue
        pick = rng.random(v.shape)
        scale = np.exp(rng.uniform(np.log(0.5), np.log(2), v.shape))
        nudge = 1 + rng.choice([-1e-3, 1e-3], v.shape)
        v[:] = np.select(
            [pick < 0.80, pick < 0.86, pick < 0.92, pick < 0.94, pick < 0.96, pick < 0.98],
            [v, v * scale, v * nudge, -v, np.nan, np.inf], 0.0)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--before", default=BEFORE, help="git revision to compare with")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--fuzz", type=int, default=200)
    parser.add_argument("--grid", action="store_true",
                        help="with --compare: also the whole lsfmm analytic grid (predict of its "
                             "13 tasks: many CPU minutes)")
    args = parser.parse_args(argv)
    try:
        before = load_before(args.before)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"no implementation at {args.before!r} to compare with ({exc}): current only")
        before = None
    cases = inputs()
    print(f"check(): CPU per call, best of 3 rounds of {args.repeat} "
          f"({time.strftime('%Y-%m-%d')})")
    for label, call in cases.items():
        now = cost(checks, call, args.repeat)
        if before is None:
            print(f"  {label:<36} {now * 1e3:8.2f} ms")
            continue
        then = cost(before, call, args.repeat)
        print(f"  {label:<36} before {then * 1e3:8.2f} ms   now {now * 1e3:8.2f} ms   "
              f"{then / now:5.1f}x")
    if not args.compare or before is None:
        return
    print("same invalid_checks and invalid_reason as before:")
    for label, call in cases.items():
        print(f"  {label}: {same(before, call)}")
    rng = np.random.default_rng(13)
    results, bits = [], 0
    for i in range(args.fuzz):
        ds, scenario, converged = list(cases.values())[i % len(cases)]
        call = (fuzz(ds, rng), scenario, converged)
        results.append(same(before, call))
        bits |= int(np.bitwise_or.reduce(checks.check(*call).invalid_checks.values, axis=None))
    tripped = [name for name in checks.CHECKS if bits & int(checks._BIT[name])]
    print(f"  {args.fuzz} perturbed copies: {sum(results)} identical; checks tripped: "
          f"{len(tripped)} of {len(checks.CHECKS)} ({', '.join(tripped)})")
    if args.grid:
        plan = make_plans(load_spec("lsfmm"))["analytic"]
        grid = record(lambda: [predict(plan.region_grid(r), POLICIES) for r in plan.regions()])
        flagged = sum(int((checks.check(*call).invalid_checks != 0).sum()) for call in grid)
        print(f"  lsfmm analytic grid, {len(grid)} tasks ({flagged} invalid elements): "
              f"{all(same(before, call) for call in grid)}")


if __name__ == "__main__":
    main()
