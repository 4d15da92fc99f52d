"""The result contract: every metric both solvers return, with its units, meaning, kind and bins.

``simulate`` (the Monte Carlo engine) and ``predict`` (the analytic model) return an
:class:`xarray.Dataset` with a ``policy`` dimension whose variables are named, described and
binned here, once (``MODEL.md``, "What is measured").  The sweeps, the figures, the paper and the
calibration read the names and units from this module; the Monte Carlo keeps only the mapping from
its counters to these names (``montecarlo/output.py``), the analytic model only its formulas.

Each :class:`Metric` has a *kind*, which says what sort of number it is and therefore which
invariants hold for it:

``mean``        a mean time (s) per event: >= 0
``rate``        events per second: >= 0
``ratio``       events per event (retries per fault, reads per fault): >= 0, unbounded
``share``       a probability or a share of time or of events: in [0, 1]
``population``  a time-average number of threads or CPUs (Little's law, L = lambda W): >= 0
``quantile``    a quantile (``level``) of a time's law (``quantity``): >= 0, ordered in ``level``
``maximum``     the largest value of a run (a time, or a count of pages; it grows with the run's
                length; no interval)
``histogram``   shares of events in the bins ``dim`` with lower edges ``edges`` (the last bin is
                open): each in [0, 1], summing to 1
``flag``        a yes/no verdict about the result (``stable``, ``converged``)
``reason``      why a flag is false: text ("" where it holds) or bit flags (CF ``flag_masks``)
``counter``     a property of the Monte Carlo run itself (events, simulated and wall time)

A metric a solver cannot give is absent from its Dataset, not zero.  A Monte Carlo estimate
``<metric>`` comes with ``<metric>_ci`` (:func:`ci_name`): the half-width of its 95 % confidence
interval by batch means, Student's t with B - 1 degrees of freedom times the standard error of the
B per-batch values (Law & Kelton, *Simulation Modeling and Analysis*, §9.5.3; ``reference/
queueing.md`` §3.2); a histogram's interval is per bin; maxima and flags have none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

__all__ = [
    "BINS",
    "CI_LEVEL",
    "CI_SUFFIX",
    "HISTOGRAMS",
    "KINDS",
    "LATENCY_BINS_PER_DECADE",
    "LATENCY_EDGES",
    "METRICS",
    "QUANTILES",
    "SCALARS",
    "WAIT_DECADE_EDGES",
    "Metric",
    "attrs",
    "bin_coords",
    "ci_attrs",
    "ci_name",
    "names",
    "units",
]

#: what a metric can be (see the module docstring for the invariants each kind obeys)
KINDS = ("mean", "rate", "ratio", "share", "population", "quantile", "maximum", "histogram",
         "flag", "reason", "counter")

#: lower edges (s) of the decade bins kernel developers publish: [0,1) µs, [1,10) µs, ...
#: [100 ms, inf) (``MODEL.md``)
WAIT_DECADE_EDGES = np.array([0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
#: bins a decade of the fault-latency histogram
LATENCY_BINS_PER_DECADE = 5
#: lower edges (s) of the fault-latency histogram: 0, then 5 bins a decade from 100 ns to 100 s
LATENCY_EDGES = np.concatenate([[0.0], 10.0 ** np.arange(-7.0, 2.0 + 1e-9,
                                                         1.0 / LATENCY_BINS_PER_DECADE)])

#: the histogram dimensions: name -> (lower edges in s, long name of the coordinate)
BINS: Mapping[str, tuple[np.ndarray, str]] = {
    "latency_bin": (LATENCY_EDGES, "lower edge of the fault-latency bin"),
    "wait_bin": (WAIT_DECADE_EDGES, "lower edge of the decade wait bin"),
}

#: the confidence level of the Monte Carlo's ``<metric>_ci`` half-widths
CI_LEVEL = 0.95
#: suffix of a half-width variable
CI_SUFFIX = "_ci"

_UNITS_OF_KIND = {"mean": "s", "rate": "1/s", "ratio": "1", "share": "1", "population": "1",
                  "quantile": "s", "histogram": "1", "flag": "1", "reason": "1"}


@dataclasses.dataclass(frozen=True)
class Metric:
    """One variable of the solvers' Datasets.

    ``quantity`` names the random time a quantile or histogram describes (``fault_latency``,
    ``mmap_read_wait``, ...), ``level`` is a quantile's probability, ``dim`` a histogram's bin
    dimension (a key of :data:`BINS`).
    """

    name: str
    kind: str
    units: str
    long_name: str
    quantity: str | None = None
    level: float | None = None
    dim: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} of metric {self.name!r} is not allowed: one of "
                             f"{', '.join(KINDS)}")
        if (self.kind == "quantile") != (self.level is not None):
            raise ValueError(f"metric {self.name!r}: a quantile, and only a quantile, has a level")
        if (self.kind == "histogram") != (self.dim in BINS):
            raise ValueError(f"metric {self.name!r}: a histogram, and only a histogram, has a "
                             f"dim in {sorted(BINS)}")

    @property
    def edges(self) -> np.ndarray | None:
        """Lower edges (s) of a histogram's bins (the last bin is open); None otherwise."""
        return BINS[self.dim][0] if self.dim is not None else None

    @property
    def has_ci(self) -> bool:
        """Whether the Monte Carlo gives a ``<name>_ci`` half-width for it."""
        return self.kind not in ("maximum", "flag", "reason", "counter")

    @property
    def attrs(self) -> dict[str, str]:
        """The ``units`` and ``long_name`` attributes of its variable."""
        return {"units": self.units, "long_name": self.long_name}


def _metric(name: str, kind: str, long_name: str, units: str | None = None, **extra) -> Metric:
    return Metric(name, kind, units if units is not None else _UNITS_OF_KIND[kind], long_name,
                  **extra)


def _quantile(quantity: str, level: float, long_name: str) -> Metric:
    percent = f"{level * 100:.10g}".replace(".", "")
    return Metric(f"{quantity}_p{percent}", "quantile", "s", long_name, quantity=quantity,
                  level=level)


_ORDINAL = {0.5: "median", 0.9: "90th percentile", 0.99: "99th percentile",
            0.999: "99.9th percentile"}

_ALL: list[Metric] = [
    _metric("fault_latency_mean", "mean", "mean fault latency"),
    _metric("jank_share", "share", "share of faults longer than the jank threshold"),
    _metric("fault_rate", "rate", "faults completed per second"),
    _metric("mmap_read_rate", "rate", "mmap_lock read acquisitions per second"),
    _metric("mmap_read_wait_mean", "mean", "mean mmap_lock read wait"),
    _metric("mmap_write_rate", "rate", "mmap_lock write acquisitions per second"),
    _metric("mmap_write_wait_mean", "mean", "mean mmap_lock write wait"),
    _metric("writer_latency_mean", "mean", "mean writer latency (lock wait, VMA drain and hold)"),
    _metric("retries_per_fault", "ratio", "VM_FAULT_RETRY returns per fault"),
    _metric("refaults_per_fault", "ratio",
            "reads of a folio again by the fault that read or awaited it"),
    _metric("retry_miss_ratio", "share",
            "retries that found their folio reclaimed, over retries that waited for I/O"),
    _metric("io_read_rate", "rate", "storage reads per second"),
    _metric("major_faults_per_fault", "ratio", "attempts that found the folio absent, per fault"),
    _metric("vma_abort_rate", "rate", "per-VMA lock attempts that fell back (VMA_LOCK_ABORT)"),
    _metric("access_rate", "rate", "page accesses per second"),
    _metric("reclaim_rate", "rate", "folios reclaimed per second"),
    # the page cache under a memory limit (reclaim="lru"; MODEL.md mechanism 9)
    _metric("cache_pages_mean", "population",
            "time-average folios resident (reading, cached and mapped), pages"),
    _metric("cache_pages_little", "population",
            "folios that left memory per second times their mean residence (Little's law for "
            "the cache: cache_pages_mean in a steady state, short of it by the folios that stay "
            "resident longer than the run, such as the hottest pages)"),
    _metric("cache_lifetime_mean", "mean",
            "mean time from a folio's last release to its reclaim by the memory limit (the "
            "LRU's characteristic time)"),
    _metric("pages_read_per_fault", "ratio",
            "folios brought in (read, read-around and zram swap-ins) per fault"),
    _metric("reclaim_cpu_share", "population",
            "CPUs busy with direct reclaim, time average (reclaim_cpu_time per folio freed)"),
    _metric("table_eviction_rate", "rate",
            "resident folios the Monte Carlo's folio table dropped for room per second (not "
            "reclaim: an artefact of the engine, 0 under a memory limit)"),
    # Little's law checks: time-average populations, and arrival rate times mean time
    _metric("mmap_read_waiters_mean", "population",
            "time-average threads waiting for mmap_lock read"),
    _metric("mmap_read_waiters_little", "population",
            "slow-path read waits per second times their mean"),
    _metric("mmap_write_waiters_mean", "population", "time-average writers waiting for mmap_lock"),
    _metric("mmap_write_waiters_little", "population",
            "slow-path write waits per second times their mean"),
    _metric("threads_in_fault_mean", "population", "time-average threads inside a fault"),
    _metric("events_rate", "rate", "simulation events per simulated second"),
    _metric("mmap_read_held_share", "share", "share of time mmap_lock is held for read"),
    _metric("mmap_read_busy_period_mean", "mean",
            "mean period mmap_lock is continuously held for read"),
    _metric("reads_holding_mmap_per_fault", "ratio",
            "reads waited for while holding mmap_lock, per fault"),
    _metric("reads_holding_vma_per_fault", "ratio",
            "reads waited for while holding the VMA lock, per fault"),
    # access classes (measure/SCENARIO_SPEC.md §1; the harness's classes, measure/parse.py)
    _metric("major_share", "share", "share of accesses whose fault first found the folio absent"),
    _metric("waiter_share", "share",
            "share of accesses whose fault first found the folio locked by another thread "
            "(under read or being installed)"),
    _metric("minor_share", "share",
            "share of accesses whose fault first found the folio cached and unlocked"),
    _metric("nofault_share", "share", "share of accesses to a mapped page (no fault)"),
    _metric("major_latency_mean", "mean", "mean latency of major faults"),
    _metric("waiter_latency_mean", "mean",
            "mean latency of faults that waited for another thread's folio"),
    _metric("minor_latency_mean", "mean", "mean latency of minor faults"),
    _metric("kernel_major_faults_per_fault", "ratio",
            "faults the kernel counts major (completing attempt returned VM_FAULT_MAJOR or ran "
            "TRIED), per fault"),
    # writer operations (measure/SCENARIO_SPEC.md §2; a Poisson writer is one acquisition)
    _metric("writer_ops_rate", "rate", "writer operations completed per second"),
    _metric("writer_op_latency_mean", "mean",
            "mean writer operation time (gaps, lock waits and holds)"),
    # CPUs, not a share of one: bounded by the CPU count, hence a population
    _metric("writer_cpu_share", "population",
            "CPUs busy with writers, time average (gaps, holds, spinning)"),
    # quantiles of the fault latency, the lock waits and the writers
    *[_quantile("fault_latency", level, f"{_ORDINAL[level]} fault latency")
      for level in (0.5, 0.9, 0.99, 0.999)],
    _quantile("mmap_read_wait", 0.99, "99th percentile mmap_lock read wait"),
    _quantile("mmap_write_wait", 0.99, "99th percentile mmap_lock write wait"),
    _quantile("writer_latency", 0.99, "99th percentile writer latency"),
    *[_quantile(f"{name}_latency", q / 100, f"{q}th percentile latency of {what}")
      for name, what in (("major", "major faults"),
                         ("waiter", "faults that waited for another thread's folio"),
                         ("minor", "minor faults"))
      for q in (50, 90, 99)],
    _quantile("writer_op_latency", 0.50, "median writer operation time"),
    _quantile("writer_op_latency", 0.99, "99th percentile writer operation time"),
    # extremes of a run
    _metric("mmap_read_wait_max", "maximum", "longest mmap_lock read wait", units="s",
            quantity="mmap_read_wait"),
    _metric("mmap_write_wait_max", "maximum", "longest mmap_lock write wait", units="s",
            quantity="mmap_write_wait"),
    _metric("cache_pages_max", "maximum", "most folios resident at once (at most memory_limit)",
            units="1"),
    # histograms
    _metric("fault_latency_hist", "histogram", "share of faults by latency (log bins)",
            quantity="fault_latency", dim="latency_bin"),
    _metric("mmap_read_wait_hist", "histogram",
            "share of mmap_lock read acquisitions by wait (decade bins)",
            quantity="mmap_read_wait", dim="wait_bin"),
    _metric("mmap_write_wait_hist", "histogram",
            "share of mmap_lock write acquisitions by wait (decade bins)",
            quantity="mmap_write_wait", dim="wait_bin"),
    # verdicts and the Monte Carlo's own counters
    _metric("stable", "flag", "a steady state exists (no lock, device or bounded table loaded "
                              "past capacity)"),
    _metric("converged", "flag", "the solver converged (Monte Carlo: every batch finished, "
                                 "stable, the mean fault latency's half-width within the "
                                 "tolerance; analytic: the fixed point converged)"),
    _metric("unconverged_reason", "reason", "why the analytic fixed point did not converge"),
    _metric("valid", "flag", "every invariant of faultlock.model.checks holds"),
    _metric("invalid_checks", "reason", "invariants that failed (bit flags)"),
    _metric("invalid_reason", "reason", "the invariants that failed, in words ('' if valid)"),
    _metric("events", "counter", "events simulated", units="1"),
    _metric("simulated_time", "counter", "simulated time", units="s"),
    _metric("wall_time", "counter", "engine wall-clock time", units="s"),
    _metric("invariant_violations", "counter", "lock invariant violations", units="1"),
]

#: every variable of the solvers' Datasets (``<metric>_ci`` aside), in the order they appear
METRICS: Mapping[str, Metric] = {m.name: m for m in _ALL}
if len(METRICS) != len(_ALL):   # pragma: no cover - a typo in the table above
    raise RuntimeError("duplicate metric names in faultlock.model.metrics")
del _ALL


def names(*kinds: str) -> tuple[str, ...]:
    """Names of the metrics of the given kinds, in contract order (all of them without kinds)."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"kind={unknown[0]!r} is not allowed: one of {', '.join(KINDS)}")
    return tuple(n for n, m in METRICS.items() if not kinds or m.kind in kinds)


#: scalar estimates with a point value and (Monte Carlo) an interval: every kind but the
#: maxima, histograms, flags and counters
SCALARS = names("mean", "rate", "ratio", "share", "population", "quantile")
#: quantile metrics by name
QUANTILES: Mapping[str, Metric] = {n: METRICS[n] for n in names("quantile")}
#: histogram metrics by name
HISTOGRAMS: Mapping[str, Metric] = {n: METRICS[n] for n in names("histogram")}


def _get(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"metric={name!r} is not in the result contract "
                       f"(faultlock.model.metrics.METRICS)") from None


def ci_name(name: str) -> str:
    """The name of the variable holding ``name``'s 95 % half-width."""
    return name + CI_SUFFIX


def attrs(name: str) -> dict[str, str]:
    """``units`` and ``long_name`` of the metric ``name`` (or of its ``<name>_ci``)."""
    if name.endswith(CI_SUFFIX) and name not in METRICS:
        return ci_attrs(name.removesuffix(CI_SUFFIX))
    return _get(name).attrs


def ci_attrs(name: str) -> dict[str, str]:
    """``units`` and ``long_name`` of the half-width ``<name>_ci`` of the metric ``name``."""
    metric = _get(name)
    if not metric.has_ci:
        raise KeyError(f"metric={name!r} ({metric.kind}) has no confidence interval")
    return {"units": metric.units,
            "long_name": f"{CI_LEVEL:.0%} half-width of {metric.long_name}"}


def units(name: str) -> str:
    """Units of the metric ``name`` (or of its ``<name>_ci``)."""
    return attrs(name)["units"]


def bin_coords(*dims: str) -> dict[str, tuple]:
    """The histogram bin coordinates (lower edges in s) for an ``xarray.Dataset``; all of
    :data:`BINS` without arguments."""
    return {dim: (dim, BINS[dim][0], {"units": "s", "long_name": BINS[dim][1]})
            for dim in (dims or BINS)}
