"""Monte Carlo batches as the observations of the selection procedure (CRN across policies).

:func:`~faultlock.sweeps.selection.select_best` asks ``sample(policies, n)`` for the next ``n``
observations of each surviving policy, paired across policies by common random numbers. Each
policy of a cell is one :class:`~faultlock.model.montecarlo.simulate.Run`, started once (one
warm-up) and continued batch by batch: only the survivors are extended. Runs of one cell share
their seed and their batch size, so batch ``j`` of two policies is driven by the same streams per
purpose (think times, pages, I/O latencies, reclaim clocks) over the same number of operations:
a CRN pair, as KN's paired variances want.

An observation is the metric over one batch (:meth:`Run.batch_values`): a ratio of the batch's
sums for means, shares and rates; the quantile of the batch's own histogram for quantiles, a
*batch quantile* (see the bias note in :mod:`faultlock.sweeps.selection`: keep batches of at least
``50 / (1 - p)`` operations). Batches of one run are consecutive stretches of one stationary run,
not independent replications: batches long enough to be nearly uncorrelated are the usual
batch-means condition (``reference/queueing.md`` §3.2).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..model import arguments
from ..model.montecarlo import output
from ..model.montecarlo.simulate import Run

__all__ = ["batch_sampler"]


def batch_sampler(runs: Mapping[str, Run], metric: str):
    """A ``sample(policies, n)`` callable for ``select_best``: the next ``n`` batches of each of
    ``policies``' runs (extended as needed), each reduced to ``metric``.

    ``metric`` is a ratio or quantile of :mod:`faultlock.model.montecarlo.output` (e.g.
    ``fault_latency_mean``, ``fault_latency_p99``, ``jank_share``). A run that cannot give ``n``
    more batches (it stopped: overload, out of memory, budget, capacity) fills the batches it
    lacks with ``inf`` when it is overloaded (no steady state: ``select_best`` refuses it with the
    policy's name) and ``nan`` otherwise. The callable has ``.batches``: the batches handed out
    per policy.
    """
    if not isinstance(runs, Mapping) or not runs or not all(isinstance(r, Run)
                                                            for r in runs.values()):
        raise arguments.ArgumentError(f"runs={runs!r} is not allowed: a non-empty mapping of "
                                      "policy name to faultlock Run")
    if not isinstance(metric, str) or (metric not in output.RATIOS
                                       and metric not in output.QUANTILES):
        allowed = ", ".join(sorted([*output.RATIOS, *output.QUANTILES]))
        raise arguments.ArgumentError(f"metric={metric!r} is not allowed: a per-batch metric, "
                                      f"one of {allowed}")
    handed: dict[str, int] = {policy: 0 for policy in runs}

    def sample(policies, n):
        values = np.empty((len(policies), n))
        for row, policy in enumerate(policies):
            run, start = runs[policy], handed[policy]
            if run.batches_done < start + n:
                run.extend(start + n - run.batches_done)
            stop = min(start + n, run.batches_done)
            got = run.batch_values(metric, start, stop)
            values[row, :len(got)] = got
            values[row, len(got):] = np.inf if run.summary["overloaded"] else np.nan
            handed[policy] = start + n
        return values

    sample.batches = handed
    return sample
