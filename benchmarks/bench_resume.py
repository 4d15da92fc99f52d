"""What continuing a Monte Carlo run saves: ``Run.extend(10)`` against a fresh run of 10 batches.

A fresh run allocates the state, starts every thread and pays the warm-up; ``extend`` goes on
from the live state. Prints, per scenario, the CPU time (``time.process_time``, this process only:
the engine is single-threaded) of both, median of ``--repeat`` tries, and the events each spent.

    PYTHONPATH=$PWD python3 benchmarks/bench_resume.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import faultlock
from faultlock.model.montecarlo import state
from faultlock.model.montecarlo.simulate import Run

CASES = {
    "android_warm_start": faultlock.Scenario.preset("android_warm_start"),
    "virtio_2cpu": faultlock.Scenario.preset("virtio_2cpu"),
}


def measure(scenario, policy, batch_operations, warmup_operations, repeat):
    fresh, extend, fresh_events, extend_events = [], [], [], []
    for k in range(repeat):
        seed = np.random.SeedSequence([17, k])
        started = time.process_time()
        run = Run(scenario, policy, seed, batch_operations=batch_operations,
                  warmup_operations=warmup_operations, capacity=20)
        run.extend(10)
        fresh.append(time.process_time() - started)
        fresh_events.append(int(run.state.ints[state.I_EVENTS]))
        started = time.process_time()
        run.extend(10)
        extend.append(time.process_time() - started)
        extend_events.append(int(run.state.ints[state.I_EVENTS]) - fresh_events[-1])
        run.close()
    return (statistics.median(fresh), statistics.median(extend),
            statistics.median(fresh_events), statistics.median(extend_events))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--policy", default="mainline")
    args = parser.parse_args()
    # compile (or load) the engine before any clock starts
    Run(faultlock.Scenario(threads=2), args.policy, np.random.SeedSequence(0),
        batch_operations=10, warmup_operations=10, capacity=2).extend(2)
    print(f"{'scenario':20} {'batch':>6} {'warm-up':>8} {'fresh 10 (s)':>13} "
          f"{'extend 10 (s)':>14} {'saved':>6} {'events fresh/extend':>20}")
    for name, scenario in CASES.items():
        for batch, warmup in ((2000, 4000), (2000, 20000), (10000, 20000)):
            fresh, extend, ef, ee = measure(scenario, args.policy, batch, warmup, args.repeat)
            print(f"{name:20} {batch:6d} {warmup:8d} {fresh:13.3f} {extend:14.3f} "
                  f"{1 - extend / fresh:6.0%} {ef:>10.0f}/{ee:<9.0f}")


if __name__ == "__main__":
    main()
