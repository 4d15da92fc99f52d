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
  violations (``invariant_violations``, with ``simulate(check=True)``); a Monte Carlo run that
  ended with faults in progress for half its measured run (``faults_stuck``: censored
  latencies, e.g. the retry livelock of ``vma_retry``, ``reference/kernel.md`` §6.2).

Tolerances: the analytic model's numbers are exact up to its fixed point's tolerance, so they
are compared with a relative ``ANALYTIC_RTOL``, except the quantiles, which are read from the
CDF to a few parts in a thousand (``QUANTILE_RTOL``). The Monte Carlo's are estimates: each side
of a comparison gets ``MC_CI_FACTOR`` times its 95 % batch-means half-width (``<metric>_ci``)
and quantiles the width of one bin of the engine's histogram, from which they are interpolated.

Elements that are not ``stable`` (writers past ``mmap_lock``'s capacity: no steady state, every
time ``inf`` by design) are not checked: ``stable`` already says so.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import xarray as xr

from . import metrics as contract
from .arguments import ArgumentError
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
    "censored": ("faults in progress for half the measured run (a retry livelock or a stall): "
                 "their latency is missing from every statistic"),
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
    "little_rounds": "Little's law: round rate x mean round time != threads (file_rounds)",
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


#: the scenario's fields the checks read
_FIELDS = ("threads", "think_time", "idle_time", "writer_mode", "writer_threads",
           "access_pattern", "memory_limit", "reclaim", "cpus", "jank_threshold")
#: their dtypes by kind, as in :meth:`Scenario.as_arrays`
_DTYPES = {"count": np.int64, "bool": bool, "name": object}


class _Context:
    """A result Dataset's numbers as numpy arrays over ``policy`` x the scenario's dimensions,
    with its tolerances and the scenario's fields.

    Every array is laid out by position over :attr:`dims` once, when first read: its axes in
    that order, of length 1 where the variable or field lacks the dimension, so that numpy
    broadcasts them against each other. The checks are then plain numpy arithmetic: done with
    xarray, the alignment of the operands of each of the few hundred operations below cost 70
    times the rest (``benchmarks/bench_checks.py``, 2026-12-05: 225 ms against 3 ms for a
    Monte Carlo cell of 7 policies). The variables share the Dataset's coordinates and the
    scenario's fields agree on theirs, so that alignment never changed a number.
    """

    def __init__(self, ds: xr.Dataset, scenario: Scenario, converged=None):
        self.ds = ds
        self.mc = ds.attrs.get("solver") == "montecarlo" or any(
            str(v).endswith("_ci") for v in ds.data_vars)
        self.rtol = 1e-6 if self.mc else ANALYTIC_RTOL
        self.qtol = QUANTILE_RTOL["montecarlo" if self.mc else "analytic"]
        self.dims = ("policy",) + tuple(scenario.dims)
        self.shape = tuple(ds.sizes[d] for d in self.dims)
        self.field = {name: self._field(scenario, name) for name in _FIELDS
                      if name in Scenario.FIELDS}
        self.names = set(ds.variables)
        self._arrays: dict[str, np.ndarray] = {}
        self._ci: dict[str, np.ndarray] = {}
        if converged is not None and "converged" not in self.names:
            self._arrays["converged"] = np.asarray(converged, dtype=bool).reshape(self.shape)
            self.names.add("converged")

    def _field(self, scenario: Scenario, name: str) -> np.ndarray:
        """A field of the scenario laid out over :attr:`dims`, with the dtype
        :meth:`Scenario.as_arrays` gives it (the scenario's arrays agree on the coordinates of
        the dimensions they share: a broadcast by position is theirs, without its cost)."""
        value = getattr(scenario, name)
        if isinstance(value, xr.DataArray):
            return self.layout(name, np.asarray(value.values), value.dims)
        kind = Scenario.FIELDS[name].kind
        values = np.asarray(value, dtype=_DTYPES.get(kind, np.float64))
        return values.reshape((1,) * len(self.dims))

    def layout(self, name: str, values: np.ndarray, dims: tuple) -> np.ndarray:
        """``values`` over ``dims`` with its axes in the order of :attr:`dims` (length 1 where
        it has not the dimension)."""
        extra = [d for d in dims if d not in self.dims]
        if extra:
            raise ArgumentError(f"ds[{name!r}] with dimensions {dims} is not allowed: "
                                f"dimensions among {self.dims} (and a histogram's bins, last)")
        order = [dims.index(d) for d in self.dims if d in dims]
        sizes = dict(zip(dims, values.shape))
        return values.transpose(order).reshape([sizes.get(d, 1) for d in self.dims])

    def has(self, *names: str) -> bool:
        return all(n in self.names for n in names)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            var = self.ds.variables[name]
            self._arrays[name] = self.layout(name, np.asarray(var.values), var.dims)
        return self._arrays[name]

    def ci(self, name: str) -> np.ndarray | float:
        """``MC_CI_FACTOR`` x the 95 % half-width of a Monte Carlo metric (0 when it has none).

        An undefined half-width (NaN: fewer than two batches saw the metric, or the run ended
        before its batches did, ``converged`` false) is an unknown error: infinite, so that
        noise is not reported as a broken law (the convention of ``sweeps/winners.py``)."""
        if not (self.mc and f"{name}_ci" in self.names):
            return 0.0
        if name not in self._ci:
            half = self[f"{name}_ci"]
            self._ci[name] = MC_CI_FACTOR * np.where(np.isnan(half), np.inf, half)
        return self._ci[name]

    def histogram(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Whether any bin of histogram ``name`` is outside [0, 1] beyond its tolerance, and
        its sum, per element (the bins are its last dimension)."""
        var = self.ds.variables[name]
        h = np.asarray(var.values)
        tol = 0.0
        if self.mc and f"{name}_ci" in self.names:
            half = np.asarray(self.ds.variables[f"{name}_ci"].set_dims(dict(var.sizes)).values)
            tol = MC_CI_FACTOR * np.where(np.isnan(half), np.inf, half)
        tol = tol + 1e-9
        bad = ((h < -tol) | (h > 1 + tol)).any(axis=-1)
        total = h.sum(axis=-1)       # as xarray's sum(skipna=False): numpy's, on the same axis
        return (self.layout(name, bad, var.dims[:-1]), self.layout(name, total, var.dims[:-1]))

    def above(self, a, b, slack=0.0) -> np.ndarray:
        """``a > b`` beyond the tolerance (False where either is NaN)."""
        scale = np.maximum(abs(a), abs(b))
        return np.asarray(a - b > slack + self.rtol * scale + 1e-300)

    def differ(self, a, b, slack=0.0) -> np.ndarray:
        return self.above(a, b, slack) | self.above(b, a, slack)


def _any(broken: list[np.ndarray]) -> np.ndarray:
    """True where any of ``broken`` is (broadcast by position)."""
    return functools.reduce(np.logical_or, broken)


def _violations(c: _Context) -> dict[str, np.ndarray]:
    """Each check's failures (True = broken) where it applies, broadcastable to ``c.shape``."""
    out = {}
    any_of = []

    # -- the solver ------------------------------------------------------------------------------
    if not c.mc and c.has("converged"):
        out["unconverged"] = ~c["converged"].astype(bool)
    if c.has("invariant_violations"):
        out["engine_invariants"] = c["invariant_violations"] > 0
    if c.has("faults_stuck"):
        # Little's law and every latency statistic count only the faults that ended; faults
        # in progress for half the measured run are censored out of them (one may be a very
        # long read; two or more are threads that keep retrying or are never woken)
        out["censored"] = c["faults_stuck"] >= 2

    # -- signs -----------------------------------------------------------------------------------
    for name in contract.SCALARS:
        if c.has(name):
            any_of.append(c[name] < -(c.ci(name) + 1e-300))
    if any_of:
        out["negative"] = _any(any_of)

    # -- populations and Little's law ------------------------------------------------------------
    threads = c.field["threads"]
    if c.has("threads_in_fault_mean"):
        tif = c["threads_in_fault_mean"]
        out["threads_in_fault"] = c.above(tif, threads, c.ci("threads_in_fault_mean"))
        if c.has("access_rate"):
            between = c["access_rate"] * (c.field["think_time"] + c.field["idle_time"])
            slack = c.ci("threads_in_fault_mean") + c.ci("access_rate") * (
                c.field["think_time"] + c.field["idle_time"])
            out["closed_loop"] = c.above(tif + between, threads, slack)
        if c.has("fault_rate", "fault_latency_mean"):
            rate, mean = c["fault_rate"], c["fault_latency_mean"]
            slack = (c.ci("threads_in_fault_mean") + rate * c.ci("fault_latency_mean")
                     + mean * c.ci("fault_rate"))
            out["little_fault"] = c.differ(tif, np.where(rate > 0, rate * mean, 0.0), slack)
    waiters, little = [], []
    if c.has("mmap_read_waiters_mean"):
        waiters.append(c.above(c["mmap_read_waiters_mean"], threads + READER_SLOTS,
                               c.ci("mmap_read_waiters_mean")))
    if c.has("mmap_write_waiters_mean"):
        writers = np.where(c.field["writer_mode"] == "poisson", WRITER_SLOTS,
                           c.field["writer_threads"])
        if "access_pattern" in c.field:     # a round thread waits for write in munmap and mmap
            writers = writers + np.where(c.field["access_pattern"] == "file_rounds", threads, 0)
        waiters.append(c.above(c["mmap_write_waiters_mean"], writers,
                               c.ci("mmap_write_waiters_mean")))
    if waiters:
        out["lock_waiters"] = _any(waiters)
    for kind in ("read", "write"):
        mean, law = f"mmap_{kind}_waiters_mean", f"mmap_{kind}_waiters_little"
        if c.has(mean, law):
            little.append(c.differ(c[mean], c[law], c.ci(mean) + c.ci(law)))
    if little:
        out["little_waiters"] = _any(little)
    if c.has("round_rate", "round_time_mean"):
        # every round thread is always in a round: the closed population of rounds is threads
        rounds = c["round_rate"] * c["round_time_mean"]
        slack = (c.ci("round_rate") * c["round_time_mean"]
                 + c["round_rate"] * c.ci("round_time_mean"))
        out["little_rounds"] = (c.differ(rounds, threads + 0 * rounds, slack)
                                & ~np.isnan(rounds))

    # -- the page cache under a memory limit (reclaim="lru") ---------------------------------------
    limit = c.field["memory_limit"]
    limited = (c.field["reclaim"] == "lru") & (limit > 0)
    cache = []
    if c.has("cache_pages_max"):             # the engine's largest count: exact
        cache.append(limited & (c["cache_pages_max"] > limit))
    if c.has("cache_pages_mean"):
        cache.append(limited & c.above(c["cache_pages_mean"], limit, c.ci("cache_pages_mean")))
    if cache:
        out["cache_limit"] = _any(cache)
    # No Little's law check for the cache: hot folios can stay resident longer than the run, and
    # cache_pages_little (departures only) then falls short of cache_pages_mean by their share.

    # -- flow conservation -----------------------------------------------------------------------
    if c.has("fault_rate", "access_rate", "nofault_share"):
        expected = c["access_rate"] * (1 - c["nofault_share"])
        slack = (c.ci("fault_rate") + c.ci("access_rate") * (1 - c["nofault_share"])
                 + c["access_rate"] * c.ci("nofault_share"))
        out["flow"] = c.differ(c["fault_rate"], expected, slack)
    classes = ("major_share", "waiter_share", "minor_share", "nofault_share")
    if c.has(*classes):
        total = sum(c[n] for n in classes)
        # the engine classes a fault when it ends and counts an access when it starts: faults
        # in flight at a batch's ends make the sum differ from 1 within the classes' intervals
        slack = sum(c.ci(n) for n in classes) + 1e-9
        out["classes"] = c.differ(total, np.ones_like(total), slack) & ~np.isnan(total)
    if c.has("access_rate", "writer_cpu_share"):
        cpu = c["access_rate"] * c.field["think_time"] + c["writer_cpu_share"]
        slack = c.ci("access_rate") * c.field["think_time"] + c.ci("writer_cpu_share")
        if c.has("noise_cpu_share"):
            cpu = cpu + c["noise_cpu_share"]
            slack = slack + c.ci("noise_cpu_share")
        cpus = c.field["cpus"]           # 0 = unlimited CPUs: no bound
        out["cpu"] = c.above(cpu, np.where(cpus > 0, cpus, np.inf), slack)

    # -- probabilities ---------------------------------------------------------------------------
    bad = []
    for name in _SHARES:
        if c.has(name):
            tol = c.ci(name) + 1e-12
            bad.append((c[name] < -tol) | (c[name] > 1 + tol))
    sums = []
    for name in contract.HISTOGRAMS:
        if c.has(name):
            outside, total = c.histogram(name)
            bad.append(outside)
            sums.append(abs(total - 1) > 1e-6)
    if bad:
        out["share_range"] = _any(bad)
    if sums:
        out["histogram_sum"] = _any(sums)

    # -- the latency distribution ----------------------------------------------------------------
    order, markov = [], []
    for family, levels in _FAMILIES.items():
        present = [(n, level) for n, level in levels if c.has(n)]
        for (lo, _), (hi, _) in itertools.pairwise(present):
            slack = c.ci(lo) + c.ci(hi) + c.qtol * abs(c[hi])
            order.append(c.above(c[lo], c[hi], slack))
        mean = f"{family}_mean"
        if c.has(mean):
            for name, level in present:
                bound = (c[mean] + c.ci(mean)) / (1 - level)
                markov.append(c.above(c[name], bound, c.ci(name) + c.qtol * abs(bound)))
    if c.has("jank_share", "fault_latency_mean"):
        threshold = c.field["jank_threshold"]
        markov.append(c.above(c["jank_share"] * threshold, c["fault_latency_mean"],
                              c.ci("fault_latency_mean") + c.ci("jank_share") * threshold))
    if order:
        out["quantile_order"] = _any(order)
    if markov:
        out["markov"] = _any(markov)
    if c.has("jank_share"):
        jank, threshold = c["jank_share"], c.field["jank_threshold"]
        wrong = []
        for name, level in _FAMILIES["fault_latency"]:
            if not c.has(name):
                continue
            tail = 1 - level
            below = c[name] * (1 + c.qtol) < threshold
            beyond = c[name] > threshold * (1 + c.qtol)
            tol = c.ci("jank_share") + 1e-9
            wrong.append((below & (jank > tail + tol)) | (beyond & (jank < tail - tol)))
        if wrong:
            out["jank_quantiles"] = _any(wrong)
        if c.has("fault_rate"):
            no_faults = ~(c["fault_rate"] > 0)
            out["jank_without_faults"] = no_faults & ~np.isnan(jank) & (jank != 0)
    return out


def check(ds: xr.Dataset, scenario: Scenario, converged=None) -> xr.Dataset:
    """``ds`` with ``valid``, ``invalid_checks`` and ``invalid_reason`` (see the module).

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`faultlock.predict` or :func:`faultlock.simulate` for ``scenario``:
        dimension ``policy`` and the scenario's dimensions, in any order (a histogram's bins
        last).
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
    context = _Context(ds, scenario, converged)
    dims, shape = context.dims, context.shape
    flags = np.zeros(shape, dtype=np.uint32)
    stable = (np.broadcast_to(context["stable"].astype(bool), shape) if context.has("stable")
              else np.ones(shape, dtype=bool))
    with np.errstate(all="ignore"):
        for name, broken in _violations(context).items():
            applies = stable | (name == "unconverged")
            flags |= np.where(np.broadcast_to(broken, shape) & applies, _BIT[name],
                              np.uint32(0))
    # the reasons of each distinct bit set once (a grid has few), then spread by index
    codes, index = np.unique(flags, return_inverse=True)
    words = [reasons(code) for code in codes]
    width = max(1, max((len(w) for w in words), default=1))
    text = np.array(words, dtype=f"<U{width}")[index.reshape(-1)].reshape(shape)
    return ds.assign(
        valid=(dims, flags == 0, contract.attrs("valid")),
        invalid_checks=(dims, flags, {
            **contract.attrs("invalid_checks"),
            "flag_masks": [int(_BIT[n]) for n in CHECKS],
            "flag_meanings": " ".join(CHECKS)}),
        invalid_reason=(dims, text, contract.attrs("invalid_reason")),
    )
