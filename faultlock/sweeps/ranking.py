"""A Monte Carlo sweep cell under ranking and selection: each objective answered, or said not to be.

A cell's policies run with common random numbers (one :class:`~faultlock.model.montecarlo.
simulate.Run` per policy, all from the cell's seed, so batch ``j`` of every policy draws the same
streams). The spec's ``[mc]`` run (``operations`` in ``batches`` batches after the warm-up) is the
first stage; then, per objective, :func:`~faultlock.sweeps.selection.select_best` (Kim & Nelson's
KN, with ties, see that module) asks for more batches of the policies still in contention only,
and the runs are *continued* (no new warm-up). Batches simulated for one objective serve the next:
the objectives are decided one after the other on the same runs, each asking only for what it
still lacks. The answer per objective is

* a **winner** (``answer_<objective>`` = the policy's index),
* a **tie** (:data:`~faultlock.sweeps.winners.TIE`: every survivor within the indifference zone of
  the best; an answer),
* **undecided** (:data:`~faultlock.sweeps.winners.UNDECIDED`: the cell's budget ran out first),
* **none feasible** (:data:`~faultlock.sweeps.winners.NONE_FEASIBLE`: no policy has a finite,
  steady value meeting the bounds).

Which policies compete for an objective, before KN starts (first stage):

* a run that has no steady state (``overloaded``: past capacity, out of memory) loses to every
  policy that has one, as an infinite latency does in :mod:`faultlock.sweeps.winners`;
* a policy without observations of the metric (no writer completed: NaN) does not compete;
* a bound (``subject_to``) is applied to the first stage's pooled estimate (a point decision, not
  part of KN's guarantee: the store keeps the bound metric and its interval to check);
* batches in which some competitor has no observation (a batch without a writer for
  ``writer_latency_p99``) are skipped for every competitor alike, which keeps the pairs paired.

The indifference zone is relative (the spec's ``tie_tolerance`` times the best first-stage mean,
:func:`select_best`'s ``relative``) with an absolute floor per unit (:data:`ZONE_FLOOR`): a
relative zone around a best jank share of 0 would be 0 and ask for exact answers.

What the store keeps per objective (dims: the grid's axes, and ``policy`` where said):
``answer_<o>`` (int8, the codes above), ``survivors_<o>`` (policy: in contention at the end: the
winner, the tied, or the undecided remainder), ``confidence_<o>`` (the stated ``1 - alpha`` for a
winner or a tie; for undecided the level the last stage reached, descriptive), ``zone_<o>`` (the
absolute zone, metric units); and per cell ``batches`` (policy: batches simulated, the effort).
The metrics are those of every batch a policy ran (a policy eliminated early has fewer, so a
wider interval).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from ..model.montecarlo import output
from ..model.montecarlo.simulate import Run, results_dataset
from ..model.scenario import Scenario
from .replications import batch_sampler
from .selection import SelectionError, select_best
from .spec import METRICS, MonteCarloSettings, Objective
from .winners import NONE_FEASIBLE, TIE, UNDECIDED

__all__ = ["ZONE_FLOOR", "select_cell"]

#: the smallest indifference zone per metric unit: differences below these are too small for a
#: kernel developer to act on (1 us of latency, 0.1 % of faults, one page, 1 per second)
ZONE_FLOOR = {"s": 1e-6, "1": 1e-3, "pages": 1.0, "1/s": 1.0}


def _pooled(run: Run, metric: str) -> float:
    """The estimate over a run's batches (as the stored metric is computed)."""
    if metric in output.RATIOS:
        num, den = output.RATIOS[metric][:2]
        return output.ratio_estimate(run.stats, num, den)[0]
    which, q = output.QUANTILES[metric][:2]
    return output.quantile_from_hist(run.hist[:, which, :].sum(axis=0), q)


def _decide(objective: Objective, runs: Mapping[str, Run], policies: Sequence[str], *,
            first: int, budget: int, alpha: float, tie_tolerance: float) -> dict:
    """One objective's answer on the cell's runs."""
    metric = objective.metric
    k = len(policies)
    steady = [p for p in policies if not runs[p].summary["overloaded"]
              and runs[p].batches_done >= first]
    present, feasible = [], []
    for p in steady:
        if np.isnan(_pooled(runs[p], metric)):
            continue                                    # no observations: does not compete
        present.append(p)
        if all(not (_pooled(runs[p], m) > bound) for m, bound in objective.constraints):
            feasible.append(p)
    survivors = np.zeros(k, dtype=bool)
    zone = np.nan
    if not feasible:
        return {"answer": NONE_FEASIBLE, "survivors": survivors, "confidence": np.nan,
                "zone": zone}
    if len(feasible) == 1:
        survivors[list(policies).index(feasible[0])] = True
        return {"answer": list(policies).index(feasible[0]), "survivors": survivors,
                "confidence": 1.0 - alpha, "zone": zone}
    sample = batch_sampler(runs, metric)
    floor = ZONE_FLOOR.get(METRICS.get(metric, ""), 0.0)
    try:
        chosen = select_best(sample, feasible, delta=tie_tolerance, alpha=alpha,
                             n0=first, budget=budget, relative=True, sense=objective.sense,
                             floor=floor, step=max(1, first // 2))
    except SelectionError:
        # a run that cannot go on (its batches come back inf or nan): no claim
        for p in feasible:
            survivors[list(policies).index(p)] = True
        return {"answer": UNDECIDED, "survivors": survivors, "confidence": 0.0, "zone": zone}
    for p in chosen.survivors:
        survivors[list(policies).index(p)] = True
    answer = {"winner": list(policies).index(chosen.survivors[0]), "tie": TIE,
              "undecided": UNDECIDED}[chosen.kind]
    return {"answer": answer, "survivors": survivors, "confidence": chosen.confidence,
            "zone": chosen.delta}


def select_cell(scenario: Scenario, policies: Sequence[str], seed: np.random.SeedSequence,
                mc: MonteCarloSettings, objectives: Sequence[Objective],
                tie_tolerance: float) -> xr.Dataset:
    """Simulate one cell's policies under ranking and selection; the metrics and the answers.

    Returns the Dataset :func:`faultlock.simulate` would (dimension ``policy``), each policy's
    metrics over the batches it ran, plus ``batches`` and, per objective whose metrics the engine
    gives, ``answer_<o>``, ``survivors_<o>``, ``confidence_<o>`` and ``zone_<o>``.
    """
    settings = mc.selection
    if settings is None:
        raise ValueError("mc.selection is not set: this cell has a fixed run length")
    policies = list(policies)
    first = mc.batches
    batch_operations = mc.operations // mc.batches
    capacity = settings.budget - first * (len(policies) - 1)
    runs = {p: Run(scenario, p, seed, batch_operations=batch_operations,
                   warmup_operations=int(round(mc.warmup * mc.operations)), capacity=capacity,
                   max_time=mc.max_time)
            for p in policies}
    for run in runs.values():
        run.extend(first)
    alpha = 1.0 - settings.confidence
    answers = {}
    for objective in objectives:
        if any(m not in output.RATIOS and m not in output.QUANTILES for m in objective.metrics):
            continue  # a maximum, not a batch statistic: the classic interval rule maps it
        answers[objective.name] = _decide(objective, runs, policies, first=first,
                                          budget=settings.budget, alpha=alpha,
                                          tie_tolerance=tie_tolerance)
    ds = results_dataset(scenario, runs, seed=seed, rel_tolerance=mc.rel_tolerance)
    for run in runs.values():
        run.close()  # the engine state (a folio table of tens of MB) is not needed any more
    ds["batches"] = ("policy", np.array([runs[p].batches_done for p in policies], np.int32),
                     {"long_name": "batches simulated (first stage and selection)"})
    for name, a in answers.items():
        ds[f"answer_{name}"] = ((), np.int8(a["answer"]), {
            "long_name": f"ranking and selection answer for {name}",
            "flag_meanings": "policy index >= 0: winner; -5 tie; -1 undecided; -3 none feasible",
            "confidence_level": settings.confidence, "tie_tolerance": tie_tolerance})
        ds[f"survivors_{name}"] = ("policy", a["survivors"], {
            "long_name": f"policies in contention at the end for {name}"})
        ds[f"confidence_{name}"] = ((), float(a["confidence"]), {
            "long_name": f"stated probability of a correct answer for {name}", "units": "1"})
        ds[f"zone_{name}"] = ((), float(a["zone"]), {
            "long_name": f"indifference zone for {name}",
            "units": METRICS.get(next(o.metric for o in objectives if o.name == name), "")})
    return ds
