"""Monte Carlo replications as the observations of the selection procedure (CRN across policies).

:func:`~faultlock.sweeps.selection.select_best` asks ``sample(policies, n)`` for the next ``n``
observations of each surviving policy, paired across policies by common random numbers. With the
engine as it is, the one way to give a policy more observations without running the others is
a new *replication*: replication ``r`` of every policy is seeded from the same
``SeedSequence(entropy, spawn_key=root.spawn_key + (r,))``, the scheme
:func:`faultlock.model.montecarlo.simulate.simulate` uses for its own replications, so that
replication ``r`` of two policies draws the same think times, pages, I/O latencies and reclaim
clocks (one stream per purpose and thread), and is exactly what ``simulate(..., replications=R)``
runs as its replication ``r``.

An observation is the metric estimated over the replication's measured operations (all its batches
pooled): a ratio of sums for means, shares and rates; the quantile of the pooled histogram for
quantiles, which is a *batch quantile* whose batch is the whole replication (see the bias note
in :mod:`faultlock.sweeps.selection`: keep ``operations >= 50 / (1 - p)``). Replications are
independent, so KN's i.i.d. assumption holds exactly across observations; each one pays its warm-up
(``warmup * operations`` operations), which continuing one run batch by batch would not.

Continuing a run (the engine change this module stands in for): ``engine.run`` starts every
thread, writer and reader arrival and then loops until ``Q_BATCHES`` batches are done
(``stats.operation_completed`` sets ``I_STOP`` and ``I_BATCH = -2``); the per-batch arrays
``stats``/``hist`` are sized by ``Q_BATCHES`` in ``state.allocate``. To add batches to the
surviving policies only, the engine needs (1) the event loop split from the start-up, so that a
``resume(S, P, Q)`` runs the loop on a live state; (2) batch arrays allocated for the cell's budget
(or re-allocated larger, copying, before a resume), with ``Q_BATCHES`` raised, ``I_STOP = 0``,
``I_BATCH`` set to the next batch and ``R_BATCH_START = R_NOW``; (3) ``simulate`` keeping each
policy's state alive between calls (a ``Run`` object per policy per cell). CRN then pairs batch
``j`` of two policies as it does now: same streams per purpose, batches of equal operation counts.
"""

from __future__ import annotations

import numpy as np

from ..model.montecarlo import output, state
from ..model.montecarlo.simulate import run_policy
from ..model.scenario import Scenario

__all__ = ["replication_sampler"]


def replication_sampler(scenario: Scenario, metric: str, *, seed=0, operations: int = 20_000,
                        batches: int = 10, warmup: float = 0.2, max_events: int | None = None):
    """A ``sample(policies, n)`` callable for ``select_best``: the next ``n`` replications of each
    of ``policies``, each reduced to ``metric``.

    ``metric`` is a ratio or quantile of :mod:`faultlock.model.montecarlo.output` (e.g.
    ``fault_latency_mean``, ``fault_latency_p99``, ``jank_share``). An overloaded replication (no
    steady state) gives ``inf``, which ``select_best`` refuses with the policy's name. The callable
    has ``.replications`` (per policy) and ``.operations_simulated`` (total, warm-ups included).
    """
    if not isinstance(scenario, Scenario) or not scenario.is_scalar:
        raise ValueError(f"scenario={scenario!r} is not allowed: a scalar faultlock.Scenario")
    if metric in output.RATIOS:
        num, den = output.RATIOS[metric][:2]

        def reduce(stats, hist):
            return output.ratio_estimate(stats, num, den)[0]
    elif metric in output.QUANTILES:
        which, q = output.QUANTILES[metric][:2]

        def reduce(stats, hist):
            return output.quantile_from_hist(hist[:, which, :].sum(axis=0), q)
    else:
        allowed = ", ".join(sorted([*output.RATIOS, *output.QUANTILES]))
        raise ValueError(f"metric={metric!r} is not allowed: one of {allowed}")
    for name, value, low in (("operations", operations, 100), ("batches", batches, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}={value!r} is not allowed: an integer >= {low}")
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    if max_events is None:
        max_events = 400 * int(operations * (1 + warmup)) + 10_000_000
    done: dict[str, int] = {}

    def sample(policies, n):
        values = np.empty((len(policies), n))
        for row, policy in enumerate(policies):
            start = done.get(policy, 0)
            for j in range(n):
                child = np.random.SeedSequence(root.entropy,
                                               spawn_key=root.spawn_key + (start + j,))
                S, summary = run_policy(scenario, policy, child, operations=operations,
                                        batches=batches, warmup=warmup, max_events=max_events,
                                        max_time=np.inf, check=False)
                measured = S.stats[:, state.S_TIME] > 0
                values[row, j] = (np.inf if summary["overloaded"] else
                                  reduce(S.stats[measured], S.hist[measured]))
                sample.operations_simulated += int((1 + warmup) * operations)
            done[policy] = start + n
        return values

    sample.replications = done
    sample.operations_simulated = 0
    return sample
