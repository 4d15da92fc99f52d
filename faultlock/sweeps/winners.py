"""Where each policy wins: per objective, the best policy of every cell and its margin.

For an objective (minimise a metric, optionally subject to upper bounds on other metrics) and a
dataset with dims ``(*axes, policy)``, :func:`winner_maps` gives, over the axes:

``leader_<objective>``
    the policy with the best point estimate among those meeting the bounds (an index into
    ``policy``), or a negative code;
``winner_<objective>``
    the leader where it is decided, :data:`TIE` where it is shown equal to others, else
    :data:`UNDECIDED`. Three sources, in this order:

    * a Monte Carlo sweep with ranking and selection (``[mc.selection]``) stores its answer per
      cell (``answer_<objective>``, :mod:`faultlock.sweeps.ranking`): winner, tie or undecided
      with a stated confidence; it is the map;
    * without intervals (the analytic model) the values are points: a rival within ``rtol``
      (relative; the spec's ``tie_tolerance``) of the leader ties with it (:data:`TIE`), else
      the leader wins;
    * with Monte Carlo intervals of a fixed run length (``<metric>_ci``) a leader is decided only
      if its 95 % interval is disjoint from every other eligible policy's (and from ``rtol``
      around it), and it meets the bounds with its whole interval; a policy whose interval
      straddles a bound still competes; otherwise undecided (intervals cannot show a tie);
``margin_<objective>``
    runner-up minus leader (in the metric's units; positive means the leader is better).

Conventions: an infinite value (an unstable regime) loses to every finite one; a policy whose
metric is NaN has no observations (e.g. no writers for ``writer_latency_p99``) and does not compete,
and a NaN bound metric means nothing to bound, so the bound holds.  A policy whose result failed
the invariant checks (``valid`` false, :mod:`faultlock.model.checks`: an unconverged fixed point,
Little's law broken, ...) does not compete either, and the cell is :data:`INVALID`: no winner is
claimed where one of the numbers compared is known to be wrong (the leader is still the best
valid policy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import xarray as xr

from .spec import METRICS, Objective

__all__ = [
    "CODES",
    "agreement",
    "INVALID",
    "MEANINGS",
    "NONE_FEASIBLE",
    "NO_DATA",
    "TIE",
    "UNDECIDED",
    "decode",
    "winner_maps",
    "winner_shares",
]

UNDECIDED = -1       #: intervals overlap (or an exact tie)
NO_DATA = -2         #: cell not computed (or, without ``done``, no policy has the metric)
NONE_FEASIBLE = -3   #: every policy is unstable (inf), breaks a bound, or (a computed cell) has
                     #: no value at all: no faults in steady state, so no latency to compare
INVALID = -4         #: a policy's result failed the invariant checks (``valid`` false)
TIE = -5             #: the best policies are within the tie tolerance of each other (an answer)
CODES = {UNDECIDED: "undecided", NO_DATA: "no_data", NONE_FEASIBLE: "none_feasible",
         INVALID: "invalid", TIE: "tie"}
#: what each word of a winner map means, in one line (``faultlock show`` prints them)
MEANINGS = {
    "winner": "a policy is best, ahead of every other by more than the tie tolerance (Monte "
              "Carlo: shown with the stated confidence, or by disjoint 95 % intervals)",
    "tie": "the best policies are within the tie tolerance of each other: any of them will do "
           "(Monte Carlo: shown with the stated confidence)",
    "undecided": "the Monte Carlo could not separate the best policies from each other or show "
                 "them equal within its budget (or, without selection, their intervals overlap)",
    "none_feasible": "no policy has a finite value meeting the bounds (all unstable, or no "
                     "faults in steady state)",
    "invalid": "a policy's result failed the invariant checks (valid false): no winner claimed",
    "no_data": "the cell was not computed",
}


def _values(ds: xr.Dataset, name: str, axes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(value, half-width) as (cells, policy) float arrays; half-width 0 without intervals."""
    x = ds[name].transpose(*axes, "policy").values.astype(float)
    x = x.reshape(-1, x.shape[-1])
    ci_name = f"{name}_ci"
    if ci_name in ds:
        h = ds[ci_name].transpose(*axes, "policy").values.astype(float).reshape(x.shape)
        h = np.where(np.isnan(h) & np.isfinite(x), np.inf, np.abs(h))  # unknown width: unbounded
    else:
        h = np.zeros_like(x)
    return x, h


def winner_maps(ds: xr.Dataset, objectives: Iterable[Objective], *, done: xr.DataArray | None
                = None, rtol: float = 1e-9) -> xr.Dataset:
    """The winner, leader and margin maps of every objective whose metrics ``ds`` has."""
    policies = [str(p) for p in ds["policy"].values]
    out = {}
    for objective in objectives:
        if any(m not in ds for m in objective.metrics):
            continue  # a metric this solver does not give: no map, rather than a wrong one
        axes = [d for d in ds[objective.metric].dims if d != "policy"]
        shape = tuple(ds.sizes[a] for a in axes)
        x, h = _values(ds, objective.metric, axes)
        if objective.sense == "maximize":
            x = -x
        cells, n = x.shape
        present = ~np.isnan(x)
        point_ok = np.ones_like(present)
        sure_ok = np.ones_like(present)
        maybe_ok = np.ones_like(present)
        for metric, bound in objective.constraints:
            w, hw = _values(ds, metric, axes)
            nothing = np.isnan(w)
            point_ok &= nothing | (w <= bound)
            maybe_ok &= nothing | (w - np.where(np.isinf(w), 0, hw) <= bound)
            sure_ok &= nothing | (w + hw <= bound)
        if "valid" in ds:
            valid = ds["valid"].transpose(*axes, "policy").values.astype(bool).reshape(x.shape)
        else:
            valid = np.ones_like(present)
        invalid_cell = (present & ~valid).any(axis=1)
        present &= valid
        candidate = present & point_ok & np.isfinite(x)
        ranked = np.where(candidate, x, np.inf)
        leader = np.argmin(ranked, axis=1)
        rows = np.arange(cells)
        has_leader = candidate[rows, leader]
        best = x[rows, leader]
        best_h = h[rows, leader]
        rivals = present & maybe_ok
        rivals[rows, leader] = False
        rival_x = np.where(rivals, x, np.inf)
        runner_up = rival_x.min(axis=1) if n > 1 else np.full(cells, np.inf)
        with np.errstate(invalid="ignore"):
            margin = np.where(has_leader, runner_up - best, np.nan)
            reach = np.where(np.isinf(rival_x), np.inf, rival_x - h)
            overlap = (reach <= (best + best_h + rtol * np.abs(best))[:, None]) & rivals
        decided = has_leader & sure_ok[rows, leader] & ~overlap.any(axis=1)
        any_data = present.any(axis=1)
        leader_code = np.where(has_leader, leader, np.where(any_data, NONE_FEASIBLE, NO_DATA))
        winner_code = np.where(decided, leader, np.where(has_leader, UNDECIDED, leader_code))
        if f"{objective.metric}_ci" not in ds:
            # points: the rivals within rtol of the leader tie with it
            winner_code = np.where(has_leader & ~decided, TIE, winner_code)
        answer = f"answer_{objective.name}"
        if answer in ds:  # ranking and selection answered each cell
            winner_code = ds[answer].transpose(*axes).values.reshape(-1).astype(int)
            winner_code = np.where(any_data, winner_code, leader_code)
        winner_code = np.where(invalid_cell, INVALID, winner_code)
        if done is not None:
            not_done = ~done.transpose(*axes).values.reshape(-1).astype(bool)
            # computed, but no policy has a value (no faults without reclaim): not "not computed"
            leader_code = np.where(~any_data & ~not_done, NONE_FEASIBLE, leader_code)
            winner_code = np.where(~any_data & ~not_done, NONE_FEASIBLE, winner_code)
            leader_code = np.where(not_done, NO_DATA, leader_code)
            winner_code = np.where(not_done, NO_DATA, winner_code)
            margin = np.where(not_done, np.nan, margin)
        flags = {
            "flag_values": [TIE, INVALID, NONE_FEASIBLE, NO_DATA, UNDECIDED,
                            *range(len(policies))],
            "flag_meanings": " ".join([CODES[TIE], CODES[INVALID], CODES[NONE_FEASIBLE],
                                       CODES[NO_DATA], CODES[UNDECIDED], *policies]),
            "objective": objective.describe(),
            "tie_tolerance": rtol,
        }
        if answer in ds and "confidence_level" in ds[answer].attrs:
            flags["confidence"] = float(ds[answer].attrs["confidence_level"])
        name = objective.name
        out[f"winner_{name}"] = (axes, winner_code.reshape(shape).astype(np.int8), {
            **flags, "long_name": f"policy that wins {objective.describe()} "
                                  "(tie, undecided or a policy)"})
        out[f"leader_{name}"] = (axes, leader_code.reshape(shape).astype(np.int8), {
            **flags, "long_name": f"policy with the best point estimate of {objective.describe()}"})
        out[f"margin_{name}"] = (axes, margin.reshape(shape), {
            "units": METRICS.get(objective.metric, ""), "objective": objective.describe(),
            "long_name": f"runner-up minus leader in {objective.metric}"
                         + (" (negated: maximised)" if objective.sense == "maximize" else "")})
    dims = {d for var in out.values() for d in var[0]}
    return xr.Dataset(out, coords={d: ds[d] for d in dims if d in ds.coords})


def decode(codes: xr.DataArray, policies: Sequence[str]) -> xr.DataArray:
    """Winner or leader codes as labels: policy names, ``undecided``, ``no_data``, ..."""
    lookup = {**CODES, **dict(enumerate(policies))}
    labels = np.vectorize(lambda c: lookup[int(c)], otypes=[object])(codes.values)
    return codes.copy(data=labels)


def winner_shares(winner: xr.DataArray, policies: Sequence[str]) -> dict[str, float]:
    """Share of the computed cells (``no_data`` excluded) that each label takes."""
    codes = np.asarray(winner.values).reshape(-1)
    codes = codes[codes != NO_DATA]
    if codes.size == 0:
        return {}
    labels = [*policies, CODES[TIE], CODES[UNDECIDED], CODES[NONE_FEASIBLE], CODES[INVALID]]
    values = [*range(len(policies)), TIE, UNDECIDED, NONE_FEASIBLE, INVALID]
    return {label: float(np.mean(codes == value)) for label, value in zip(labels, values)}


def agreement(mc: xr.Dataset, analytic: xr.Dataset, objectives: Iterable[Objective]
              ) -> xr.Dataset:
    """Where the analytic model and the Monte Carlo agree on the Monte Carlo's cells.

    ``agreement_<objective>`` per Monte Carlo cell: 1 where the analytic model's leader is one of
    the Monte Carlo's answers (its winner, or a policy of its tie, ``survivors_<objective>``, or,
    without ranking and selection, its decided winner); 0 where it is not (a disagreement: a
    result to show, not hide); -1 where either side has no answer to compare (undecided, no
    feasible policy, invalid, not computed). The analytic grid holds the Monte Carlo's (a strided
    subset), so the cells are matched by their coordinates.
    """
    out = {}
    for objective in objectives:
        name = objective.name
        mc_win, an_lead = mc.get(f"winner_{name}"), analytic.get(f"leader_{name}")
        if mc_win is None or an_lead is None:
            continue
        coords = {d: mc_win[d].values for d in mc_win.dims}
        lead = an_lead.sel(coords).transpose(*mc_win.dims).values.astype(int)
        win = mc_win.values.astype(int)
        survivors = mc.get(f"survivors_{name}")
        if survivors is not None:
            held = survivors.transpose(*mc_win.dims, "policy").values.astype(bool)
            in_set = np.take_along_axis(held, np.clip(lead, 0, None)[..., None], axis=-1)[..., 0]
        else:
            in_set = win == lead
        answered = (win >= 0) | (win == TIE)
        code = np.where(answered & (lead >= 0), np.where(in_set | (win == lead), 1, 0), -1)
        out[f"agreement_{name}"] = (mc_win.dims, code.astype(np.int8), {
            "long_name": f"analytic leader among the Monte Carlo's answers for {name}",
            "flag_values": [-1, 0, 1],
            "flag_meanings": "not_comparable disagree agree", "objective": objective.describe()})
    return xr.Dataset(out, coords={d: mc[d] for d in mc.dims if d in mc.coords})
