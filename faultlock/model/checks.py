"""Invariants every result must hold before it is returned: never a silent impossible number.

:func:`check` takes a result Dataset of either solver (:func:`faultlock.predict` or
:func:`faultlock.simulate`: they share the result contract, :mod:`faultlock.model.metrics`) and
the Scenario it was computed for, and adds three variables over ``policy`` x the scenario's
dimensions:

``valid``
    True when every check below holds (or does not apply) for that element.
``invalid_checks``
    The failed checks as bit flags (CF ``flag_masks``/``flag_meanings`` attributes), 0 if valid.
``invalid_reason``
    The failed checks in words, joined by ``"; "``; ``""`` when valid.

The numbers themselves are kept as they are: a kernel developer wants to see what failed.

The checks are laws of any closed system of threads, whatever the model (``MODEL.md`` §1; the
operational laws of Denning and Buzen, 1978):

* **Little's law and populations**: threads inside a fault, on average, are the fault rate times
  the mean latency, and at most the threads; with the ones computing or sleeping between accesses
  (accesses x (``think_time`` + ``idle_time``), a lower bound of that population since computing
  may be stretched by CPU contention) they are at most the threads (the interactive response-time
  law). ``mmap_lock`` waiters are at most the threads plus the other readers' slots, writers at
  most the writer slots (or threads); the waiters' time average equals their rate times their
  mean wait. Under a memory limit (``reclaim="lru"``) the resident folios never exceed it.
* **Flow conservation**: faults are accesses times the miss share; the four access classes
  (major, waiter, minor, no fault) partition the accesses; the CPU time of the computing between
  accesses and of the writers fits on the CPUs.
* **Probabilities**: shares, ratios of sub-counts and histogram bins in [0, 1]; a histogram sums
  to 1; rates, times, populations and counts per fault are not negative.
* **The latency distribution**: quantiles in order (p50 <= p90 <= p99 <= p999 per family); no
  quantile above mean / (1 - level) (Markov's inequality, latencies are not negative); the jank
  share agrees with the quantiles (a p-quantile below the threshold leaves at most 1 - p above
  it) and with Markov (jank x threshold <= mean); no jank share without faults.
* **The solver**: an analytic fixed point that did not converge (a per-element ``converged``
  variable, or the array given to :func:`check`); a Monte Carlo run with lock invariant
  violations (``invariant_violations``, with ``simulate(check=True)``).

Tolerances: the analytic model's numbers are exact up to its fixed point's tolerance, so they
are compared with a relative ``ANALYTIC_RTOL``, except the quantiles, which are read from the
CDF to a few parts in a thousand (``QUANTILE_RTOL``). The Monte Carlo's are estimates: each side
of a comparison gets ``MC_CI_FACTOR`` times its 95 % batch-means half-width (``<metric>_ci``)
and quantiles the width of one bin of the engine's histogram, from which they are interpolated.

Elements that are not ``stable`` (writers past ``mmap_lock``'s capacity: no steady state, every
time ``inf`` by design) are not checked: ``stable`` already says so.
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

from . import metrics as contract
from .montecarlo.simulate import READER_SLOTS, WRITER_SLOTS
from .montecarlo.state import HIST_PER_DECADE
from .scenario import Scenario

__all__ = ["ANALYTIC_RTOL", "CHECKS", "MC_CI_FACTOR", "QUANTILE_RTOL", "check", "reasons"]

#: relative tolerance of the analytic model's identities (its fixed point converges to 1e-5)
ANALYTIC_RTOL = 1e-4
#: a Monte Carlo estimate is allowed this many 95 % half-widths past a bound: the bounds hold
#: exactly in every run, so an estimate beyond them is noise only if it is far in the tail of
#: its batch-means t law (with 10 batches, two half-widths are 4.5 standard errors: a false
#: alarm about once in 1,000 comparisons at a bound, e.g. saturated CPUs)
MC_CI_FACTOR = 2.0
#: relative accuracy of a quantile read from a CDF: the analytic refinement, or one fine bin of
#: the Monte Carlo's histogram (quantiles are interpolated inside it)
QUANTILE_RTOL = {"analytic": 1e-3, "montecarlo": 10 ** (1 / HIST_PER_DECADE) - 1 + 1e-3}

#: every check, in bit order: name -> reason printed when it fails
CHECKS = {
    "unconverged": "fixed point did not converge",
    "engine_invariants": "engine lock invariants violated",
    "negative": "negative rate, time, population or count",
    "threads_in_fault": "threads in fault exceed threads",
    "closed_loop": "threads in fault plus threads between accesses exceed threads",
    "little_fault": "Little's law: threads in fault != fault rate x mean latency",
    "lock_waiters": "mmap_lock waiters exceed the threads and slots that can wait",
    "little_waiters": "Little's law: mmap_lock waiters != their rate x mean wait",
    "flow": "flow conservation: fault rate != access rate x miss share",
    "classes": "access classes do not partition the accesses",
    "cpu": "CPU time between accesses and of writers exceeds the CPUs",
    "share_range": "share or probability outside [0, 1]",
    "histogram_sum": "latency or wait histogram does not sum to 1",
    "quantile_order": "quantiles out of order",
    "markov": "quantile or jank share beyond Markov's bound from the mean",
    "jank_quantiles": "jank share disagrees with the latency quantiles",
    "jank_without_faults": "jank share without faults",
    "cache_limit": "resident folios exceed memory_limit",
}
_BIT = {name: np.uint32(1 << i) for i, name in enumerate(CHECKS)}

#: quantile families in level order: the random time -> its quantile metrics (name, level)
_FAMILIES = {}
for _name, _metric in sorted(contract.QUANTILES.items(), key=lambda item: item[1].level):
    _FAMILIES.setdefault(_metric.quantity, []).append((_name, _metric.level))
#: shares, probabilities and ratios of a sub-count to its count: in [0, 1]
_SHARES = contract.names("share")


def reasons(flags) -> str:
    """The reasons of a bit set of failed checks (an ``invalid_checks`` value), joined."""
    flags = int(flags)
    return "; ".join(text for name, text in CHECKS.items() if flags & int(_BIT[name]))


class _Context:
    """A result Dataset with its tolerances and the scenario's fields over its dimensions."""

    def __init__(self, ds: xr.Dataset, scenario: Scenario):
        self.ds = ds
        self.mc = ds.attrs.get("solver") == "montecarlo" or any(
            str(v).endswith("_ci") for v in ds.data_vars)
        self.rtol = 1e-6 if self.mc else ANALYTIC_RTOL
        self.qtol = QUANTILE_RTOL["montecarlo" if self.mc else "analytic"]
        arrays, dims = scenario.as_arrays()
        self.field = {name: xr.DataArray(np.asarray(values), dims=dims)
                      for name, values in arrays.items()}

    def has(self, *names: str) -> bool:
        return all(n in self.ds for n in names)

    def __getitem__(self, name: str) -> xr.DataArray:
        return self.ds[name]

    def ci(self, name: str) -> xr.DataArray | float:
        """``MC_CI_FACTOR`` x the 95 % half-width of a Monte Carlo metric (0 when it has none).

        An undefined half-width (NaN: fewer than two batches saw the metric, or the run ended
        before its batches did, ``converged`` false) is an unknown error: infinite, so that
        noise is not reported as a broken law (the convention of ``sweeps/winners.py``)."""
        if self.mc and f"{name}_ci" in self.ds:
            return MC_CI_FACTOR * self.ds[f"{name}_ci"].fillna(np.inf)
        return 0.0

    def above(self, a, b, slack=0.0) -> xr.DataArray:
        """``a > b`` beyond the tolerance (False where either is NaN)."""
        scale = np.maximum(abs(a), abs(b))
        return (a - b > slack + self.rtol * scale + 1e-300).fillna(False)

    def differ(self, a, b, slack=0.0) -> xr.DataArray:
        return self.above(a, b, slack) | self.above(b, a, slack)


def _violations(c: _Context) -> dict[str, xr.DataArray]:
    """Each check's failures (True = broken) where it applies."""
    ds, out = c.ds, {}
    any_of = []

    # -- the solver ------------------------------------------------------------------------------
    if not c.mc and "converged" in ds:
        out["unconverged"] = ~ds["converged"].astype(bool)
    if "invariant_violations" in ds:
        out["engine_invariants"] = ds["invariant_violations"] > 0

    # -- signs -----------------------------------------------------------------------------------
    for name in contract.SCALARS:
        if name in ds:
            any_of.append((ds[name] < -(c.ci(name) + 1e-300)).fillna(False))
    if any_of:
        out["negative"] = xr.concat(any_of, "check").any("check")

    # -- populations and Little's law ------------------------------------------------------------
    threads = c.field["threads"]
    if c.has("threads_in_fault_mean"):
        tif = ds["threads_in_fault_mean"]
        out["threads_in_fault"] = c.above(tif, threads, c.ci("threads_in_fault_mean"))
        if c.has("access_rate"):
            between = ds["access_rate"] * (c.field["think_time"] + c.field["idle_time"])
            slack = c.ci("threads_in_fault_mean") + c.ci("access_rate") * (
                c.field["think_time"] + c.field["idle_time"])
            out["closed_loop"] = c.above(tif + between, threads, slack)
        if c.has("fault_rate", "fault_latency_mean"):
            rate, mean = ds["fault_rate"], ds["fault_latency_mean"]
            slack = (c.ci("threads_in_fault_mean") + rate * c.ci("fault_latency_mean")
                     + mean * c.ci("fault_rate"))
            out["little_fault"] = c.differ(tif, (rate * mean).where(rate > 0, 0.0), slack)
    waiters, little = [], []
    if c.has("mmap_read_waiters_mean"):
        waiters.append(c.above(ds["mmap_read_waiters_mean"], threads + READER_SLOTS,
                               c.ci("mmap_read_waiters_mean")))
    if c.has("mmap_write_waiters_mean"):
        writers = xr.where(c.field["writer_mode"] == "poisson", WRITER_SLOTS,
                           c.field["writer_threads"])
        waiters.append(c.above(ds["mmap_write_waiters_mean"], writers,
                               c.ci("mmap_write_waiters_mean")))
    if waiters:
        out["lock_waiters"] = xr.concat(waiters, "check").any("check")
    for kind in ("read", "write"):
        mean, law = f"mmap_{kind}_waiters_mean", f"mmap_{kind}_waiters_little"
        if c.has(mean, law):
            little.append(c.differ(ds[mean], ds[law], c.ci(mean) + c.ci(law)))
    if little:
        out["little_waiters"] = xr.concat(little, "check").any("check")

    # -- the page cache under a memory limit (reclaim="lru") ---------------------------------------
    limit = c.field["memory_limit"]
    limited = (c.field["reclaim"] == "lru") & (limit > 0)
    cache = []
    if c.has("cache_pages_max"):             # the engine's largest count: exact
        cache.append(limited & (ds["cache_pages_max"] > limit).fillna(False))
    if c.has("cache_pages_mean"):
        cache.append(limited & c.above(ds["cache_pages_mean"], limit, c.ci("cache_pages_mean")))
    if cache:
        out["cache_limit"] = xr.concat(cache, "check").any("check")
    # No Little's law check for the cache: hot folios can stay resident longer than the run, and
    # cache_pages_little (departures only) then falls short of cache_pages_mean by their share.

    # -- flow conservation -----------------------------------------------------------------------
    if c.has("fault_rate", "access_rate", "nofault_share"):
        expected = ds["access_rate"] * (1 - ds["nofault_share"])
        slack = (c.ci("fault_rate") + c.ci("access_rate") * (1 - ds["nofault_share"])
                 + ds["access_rate"] * c.ci("nofault_share"))
        out["flow"] = c.differ(ds["fault_rate"], expected, slack)
    classes = ("major_share", "waiter_share", "minor_share", "nofault_share")
    if c.has(*classes):
        total = sum(ds[n] for n in classes)
        # the engine classes a fault when it ends and counts an access when it starts: faults
        # in flight at a batch's ends make the sum differ from 1 within the classes' intervals
        slack = sum(c.ci(n) for n in classes) + 1e-9
        out["classes"] = c.differ(total, xr.ones_like(total), slack) & total.notnull()
    if c.has("access_rate", "writer_cpu_share"):
        cpu = ds["access_rate"] * c.field["think_time"] + ds["writer_cpu_share"]
        slack = c.ci("access_rate") * c.field["think_time"] + c.ci("writer_cpu_share")
        cpus = c.field["cpus"]           # 0 = unlimited CPUs: no bound
        out["cpu"] = c.above(cpu, xr.where(cpus > 0, cpus, np.inf), slack)

    # -- probabilities ---------------------------------------------------------------------------
    bad = []
    for name in _SHARES:
        if name in ds:
            tol = c.ci(name) + 1e-12
            bad.append(((ds[name] < -tol) | (ds[name] > 1 + tol)).fillna(False))
    sums = []
    for name in contract.HISTOGRAMS:
        if name in ds:
            h = ds[name]
            dim = h.dims[-1]           # the bins (latency_bin, wait_bin) come last
            tol = c.ci(name) + 1e-9
            bad.append(((h < -tol) | (h > 1 + tol)).any(dim).fillna(False))
            total = h.sum(dim, skipna=False)
            sums.append((abs(total - 1) > 1e-6).fillna(False))
    if bad:
        out["share_range"] = xr.concat(bad, "check").any("check")
    if sums:
        out["histogram_sum"] = xr.concat(sums, "check").any("check")

    # -- the latency distribution ----------------------------------------------------------------
    order, markov = [], []
    for family, levels in _FAMILIES.items():
        present = [(n, level) for n, level in levels if n in ds]
        for (lo, _), (hi, _) in itertools.pairwise(present):
            slack = c.ci(lo) + c.ci(hi) + c.qtol * abs(ds[hi])
            order.append(c.above(ds[lo], ds[hi], slack))
        mean = f"{family}_mean"
        if mean in ds:
            for name, level in present:
                bound = (ds[mean] + c.ci(mean)) / (1 - level)
                markov.append(c.above(ds[name], bound, c.ci(name) + c.qtol * abs(bound)))
    if c.has("jank_share", "fault_latency_mean"):
        threshold = c.field["jank_threshold"]
        markov.append(c.above(ds["jank_share"] * threshold, ds["fault_latency_mean"],
                              c.ci("fault_latency_mean") + c.ci("jank_share") * threshold))
    if order:
        out["quantile_order"] = xr.concat(order, "check").any("check")
    if markov:
        out["markov"] = xr.concat(markov, "check").any("check")
    if c.has("jank_share"):
        jank, threshold = ds["jank_share"], c.field["jank_threshold"]
        wrong = []
        for name, level in _FAMILIES["fault_latency"]:
            if name not in ds:
                continue
            tail = 1 - level
            below = (ds[name] * (1 + c.qtol) < threshold).fillna(False)
            beyond = (ds[name] > threshold * (1 + c.qtol)).fillna(False)
            tol = c.ci("jank_share") + 1e-9
            wrong.append((below & (jank > tail + tol)) | (beyond & (jank < tail - tol)))
        if wrong:
            out["jank_quantiles"] = xr.concat(wrong, "check").any("check")
        if c.has("fault_rate"):
            no_faults = ~(ds["fault_rate"] > 0)
            out["jank_without_faults"] = no_faults & jank.notnull() & (jank != 0)
    return out


def check(ds: xr.Dataset, scenario: Scenario, converged=None) -> xr.Dataset:
    """``ds`` with ``valid``, ``invalid_checks`` and ``invalid_reason`` (see the module).

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`faultlock.predict` or :func:`faultlock.simulate` for ``scenario``:
        dimension ``policy``, then the scenario's dimensions in its order.
    scenario : Scenario
        The scenario the result is for (thread and CPU counts, times, the jank threshold).
    converged : array-like of bool, optional
        Per (policy, cell) element, whether the analytic fixed point converged (used when
        ``ds`` has no ``converged`` variable of its own).
    """
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario={scenario!r} is not allowed: a faultlock.Scenario")
    if not isinstance(ds, xr.Dataset) or "policy" not in ds.dims:
        raise TypeError(f"ds={type(ds).__name__} is not allowed: a result Dataset with a "
                        "'policy' dimension")
    context = _Context(ds, scenario)
    dims = ("policy",) + tuple(context.field["threads"].dims)
    shape = tuple(ds.sizes[d] for d in dims)
    if converged is not None and "converged" not in ds:
        context.ds = ds.assign(converged=(dims, np.asarray(converged, dtype=bool).reshape(shape)))
    flags = np.zeros(shape, dtype=np.uint32)
    stable = (ds["stable"].transpose(*dims).values.astype(bool) if "stable" in ds
              else np.ones(shape, dtype=bool))
    with np.errstate(all="ignore"):
        for name, broken in _violations(context).items():
            broken = np.broadcast_to(xr.DataArray(broken).broadcast_like(
                xr.DataArray(np.zeros(shape), dims=dims)).transpose(*dims).values, shape)
            applies = stable | (name == "unconverged")
            flags |= np.where(broken & applies, _BIT[name], np.uint32(0))
    text = np.empty(shape, dtype=object)
    text.reshape(-1)[:] = [reasons(f) for f in flags.reshape(-1)]
    width = max(1, max((len(t) for t in text.reshape(-1)), default=1))
    meanings = " ".join(CHECKS)
    return ds.assign(
        valid=(dims, flags == 0, contract.attrs("valid")),
        invalid_checks=(dims, flags, {
            **contract.attrs("invalid_checks"),
            "flag_masks": [int(_BIT[n]) for n in CHECKS],
            "flag_meanings": meanings}),
        invalid_reason=(dims, text.astype(f"<U{width}"), contract.attrs("invalid_reason")),
    )
