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
    ``fault_latency_mean``, ``fault_latency_p99``, ``jank_share``). A batch in which one of the
    asked policies has no observation of the metric (no writer completed in it: NaN) is skipped
    for all of them, which keeps the pairs paired. A run that cannot give ``n`` more batches (it
    stopped: overload, out of memory, budget, capacity) fills the batches it lacks with ``inf``
    when it is overloaded (no steady state: ``select_best`` refuses it with the policy's name) and
    ``nan`` otherwise (refused too). The callable has ``.batches``: the batch index each policy
    has reached (skipped batches included).
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
        # select_best asks its survivors together, so they have been handed the same batches
        j = handed[policies[0]]
        values = np.empty((len(policies), n))
        filled = 0
        while filled < n:
            want = j + n - filled
            for policy in policies:
                run = runs[policy]
                if run.batches_done < want:
                    run.extend(want - run.batches_done)
            stop = min(want, *(runs[p].batches_done for p in policies))
            if stop <= j:  # a run cannot go on: what it lacks is inf (overloaded) or nan
                for row, policy in enumerate(policies):
                    values[row, filled:] = np.inf if runs[policy].summary["overloaded"] \
                        else np.nan
                j = want
                break
            block = np.array([runs[p].batch_values(metric, j, stop) for p in policies])
            block = block[:, ~np.isnan(block).any(axis=0)]   # no observation: skipped for all
            values[:, filled:filled + block.shape[1]] = block
            filled += block.shape[1]
            j = stop
        for policy in policies:
            handed[policy] = j
        return values

    sample.batches = handed
    return sample
