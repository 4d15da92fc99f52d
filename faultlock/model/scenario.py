"""The parameter contract of faultlock: one immutable, validated :class:`Scenario`.

A scenario describes one workload on one machine: a closed population of threads that alternate CPU
work and page accesses, the VMAs and pages they touch, the storage that serves major faults, the
CPUs that everything runs on, memory pressure (reclaim hazards), the ``mmap_lock`` writers, the
rwsem discipline, and the kernel-version switches that change fault retries. Which fault-handling
policy is applied is *not* part of a scenario: policies are a dimension of the solvers' output.

Every field is in SI units (seconds, per second). Times also accept strings with units (``"150us"``,
``"2ms"``) and rates strings such as ``"300/s"``; see :func:`parse_time`. Any field may be an
:class:`xarray.DataArray` instead of a scalar, which turns the scenario into a labelled grid of
scenarios (a sweep): see :attr:`Scenario.dims`, :meth:`Scenario.cells` and
:meth:`Scenario.as_arrays`.

Construction validates everything and raises one :class:`~faultlock.model.arguments.ArgumentError`
(a ValueError) that names each bad field, the value given and what is allowed::

    >>> Scenario(swap_share=1.5)
    Traceback (most recent call last):
    ...
    faultlock.model.arguments.ArgumentError: swap_share=1.5 is not allowed: share in [0, 1]

Kernel facts behind the defaults are in ``reference/kernel.md`` (cited below as ``kernel.md §n``);
the model itself is specified in ``MODEL.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import numbers
import re
import textwrap
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, DecimalException
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from .arguments import ArgumentError

__all__ = ["Scenario", "Field", "parse_time", "PRESETS"]

#: the kinds of field, and the unit each kind is stated in
KINDS = {"time": "s", "rate": "1/s", "share": "-", "float": "-", "count": "count",
         "name": "name", "bool": "bool"}

DISTRIBUTIONS = ("exponential", "lognormal", "gamma", "deterministic")
RWSEM_DISCIPLINES = ("linux", "fifo", "reader_pref", "writer_pref", "phase_fair")
ACCESS_PATTERNS = ("popularity", "group_walk", "file_rounds")
READ_SOURCES = ("device", "hole")
WALK_ORDERS = ("random", "sequential")
RECLAIM_MODES = ("lru", "hazard")
WRITER_MODES = ("poisson", "periodic", "flat_out")
WRITER_WHERE = ("thread", "process")
#: kernel/sched/features.h RUN_TO_PARITY (on by default) and its absence (NO_RUN_TO_PARITY)
WAKEUP_PREEMPTIONS = ("run_to_parity", "immediate")

# ----------------------------------------------------------------------------------------------
# Units
# ----------------------------------------------------------------------------------------------

_TIME_UNITS = {"": 1, "s": 1, "ms": Decimal("1e-3"), "us": Decimal("1e-6"), "µs": Decimal("1e-6"),
               "μs": Decimal("1e-6"), "ns": Decimal("1e-9")}
_RATE_UNITS = {"": 1, "/s": 1, "Hz": 1, "kHz": 1000, "/ms": 1000, "/us": 10**6, "/µs": 10**6,
               "/μs": 10**6, "/ns": 10**9, "/min": Decimal(1) / 60, "/h": Decimal(1) / 3600}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")


def parse_time(value: Any, field: str | Field, *, kind: str | None = None) -> float:
    """Parse a time (seconds) or a rate (per second) given as a number or a string with a unit.

    Parameters
    ----------
    value : number or str
        A number is taken as seconds (or per second). A string is a number followed by an optional
        unit: ``ns``, ``us``/``µs``, ``ms``, ``s`` for times; ``/s``, ``/ms``, ``/us``, ``/min``,
        ``/h``, ``Hz``, ``kHz`` for rates. ``"150 µs"``, ``"2ms"``, ``"1e-3"``, ``"300/s"``.
    field : str or Field
        The field being parsed, named in error messages. For a field of :class:`Scenario` the kind
        (time or rate) is taken from it.
    kind : {"time", "rate"}, optional
        Overrides the kind; needed only for names that are not Scenario fields (default "time").

    Returns
    -------
    float
        The value in seconds (time) or per second (rate). Range is not checked here.

    Raises
    ------
    ValueError
        If the string cannot be read or its unit is not one of ``kind``, naming ``field``.
    """
    spec = field if isinstance(field, Field) else Scenario.FIELDS.get(field)
    name = spec.name if spec is not None else str(field)
    if kind is None:
        kind = spec.kind if spec is not None and spec.kind in ("time", "rate") else "time"
    if kind not in ("time", "rate"):
        raise ArgumentError(f"{name}: parse_time reads times and rates, not kind {kind!r}")
    units = _TIME_UNITS if kind == "time" else _RATE_UNITS
    if isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name}={value!r} is not a {kind} (got a bool)")
    if isinstance(value, numbers.Real):
        return float(value)
    if not isinstance(value, str):
        raise ArgumentError(f"{name}={value!r} is not a {kind} (got {type(value).__name__})")
    match = _QUANTITY.match(value)
    unit = match.group(2).lower().replace(" ", "") if match else None
    if match is None or unit not in {u.lower() for u in units}:
        shown = ", ".join(u for u in units if u and u not in ("μs", "/μs"))
        problem = f"unknown unit {match.group(2)!r}" if match else "not a number"
        raise ArgumentError(f"{name}={value!r} is not a {kind}: {problem}; write a number, "
                         f"optionally followed by one of {shown}")
    factor = {u.lower(): f for u, f in units.items()}[unit]
    try:  # Decimal keeps "150us" == 150e-6 exactly (150 * 1e-6 in binary is not)
        return float(Decimal(match.group(1)) * factor)
    except DecimalException as exc:  # e.g. an exponent beyond the decimal context
        raise ArgumentError(f"{name}={value!r} is not a {kind}: {type(exc).__name__}") from None


def _format_value(kind: str, value: Any) -> str:
    """Human-readable value: engineering units for times, ``2**k`` for large powers of two."""
    if kind == "time" and isinstance(value, float) and value != 0:
        for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
            if abs(value) >= scale or unit == "ns":
                return f"{value / scale:.6g} {unit}"
    if kind == "rate" and isinstance(value, float):
        return f"{value:g}/s"
    if kind == "name":
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 2**16 and value & (value - 1) == 0:
            return f"2**{value.bit_length() - 1}"
        return f"{value:_}" if value >= 100_000 else str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------------------------
# Field
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """Unit, meaning, default and allowed values of one :class:`Scenario` field.

    ``kind`` is one of ``'time'`` (seconds), ``'rate'`` (per second), ``'share'`` (a fraction in
    [0, 1]), ``'count'`` (an integer), ``'float'`` (a dimensionless number), ``'name'`` (one of
    ``choices``) or ``'bool'``. ``low``/``high`` bound the value (``None``: unbounded); ``low_open``
    and ``high_open`` make a bound strict.
    """

    name: str
    kind: str
    default: Any
    meaning: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def unit(self) -> str:
        return KINDS[self.kind]

    @property
    def allowed(self) -> str:
        """What is allowed, in words: ``'share in [0, 1]'``, ``'time (s) > 0'``, ..."""
        if self.kind == "name":
            return "one of " + ", ".join(map(repr, self.choices or ()))
        if self.kind == "bool":
            return "True or False"
        noun = {"time": "time (s)", "rate": "rate (1/s)", "share": "share",
                "float": "number", "count": "integer count"}[self.kind]
        low = None if self.low is None else _format_value("count", self.low)
        high = None if self.high is None else _format_value("count", self.high)
        if low is not None and high is not None:
            opening, closing = "[("[self.low_open], "])"[self.high_open]
            return f"{noun} in {opening}{low}, {high}{closing}"
        if low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {low}"
        return noun if high is None else f"{noun} {'<' if self.high_open else '<='} {high}"

    def error(self, value: Any, why: str = "", *, shown: str | None = None) -> ArgumentError:
        """The ArgumentError (a ValueError) for ``value``:
        ``"<name>=<value> is not allowed: <allowed><why>"``."""
        shown = repr(value) if shown is None else shown
        return ArgumentError(f"{self.name}={shown} is not allowed: {self.allowed}{why}")

    def coerce(self, value: Any) -> Any:
        """Return ``value`` validated and normalised (int, float, str, bool or a DataArray).

        Raises one ValueError naming the field, the value and what is allowed.
        """
        if isinstance(value, xr.DataArray):
            return self._coerce_array(value)
        if isinstance(value, (list, tuple, np.ndarray)):
            raise self.error(value, f" (got a {type(value).__name__}; to sweep, pass an "
                                    "xarray.DataArray)")
        if isinstance(value, np.generic):
            value = value.item()
        if self.kind in ("time", "rate") and isinstance(value, str):
            try:
                seconds = parse_time(value, self)
            except ValueError as exc:
                raise self.error(value, f" ({str(exc).split(': ', 1)[-1]})") from None
            return self._check_scalar(seconds, shown=repr(value))
        return self._check_scalar(value)

    def _check_scalar(self, value: Any, shown: str | None = None) -> Any:
        """Check one Python value; return it normalised, or raise ``self.error``."""
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise self.error(value, f" (got {type(value).__name__})", shown=shown)
        if self.kind == "name":
            if isinstance(value, str) and value in (self.choices or ()):
                return str(value)
            close = difflib.get_close_matches(str(value), self.choices or (), n=1)
            raise self.error(value, f" (did you mean {close[0]!r}?)" if close else "",
                             shown=shown)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            got = "a bool" if isinstance(value, bool) else type(value).__name__
            raise self.error(value, f" (got {got})", shown=shown)
        number = float(value)
        if self.kind == "count":
            if not math.isfinite(number) or number != int(number):
                raise self.error(value, " (not an integer)", shown=shown)
            value = int(value)
        if not self._in_bounds(np.asarray(number)):
            raise self.error(value, shown=shown)
        return value if self.kind == "count" else number + 0.0  # -0.0 -> 0.0

    def _in_bounds(self, numbers_: np.ndarray) -> np.ndarray:
        """Elementwise: finite and within [low, high] (strict where open); counts < 2**62."""
        ok = np.isfinite(numbers_)
        if self.kind == "count":
            ok &= np.abs(numbers_) < 2.0**62
        if self.low is not None:
            ok &= (numbers_ > self.low) if self.low_open else (numbers_ >= self.low)
        if self.high is not None:
            ok &= (numbers_ < self.high) if self.high_open else (numbers_ <= self.high)
        return ok

    def _coerce_array(self, array: xr.DataArray) -> Any:
        """Validate every element of a DataArray; return a read-only normalised copy."""
        if array.ndim == 0:
            return self.coerce(array.values.item())
        described = f"<DataArray {dict(array.sizes)}>"
        if not all(isinstance(d, str) for d in array.dims):
            raise self.error(None, " (dimension names must be str)", shown=described)
        if array.size == 0:
            raise self.error(None, " (an empty DataArray)", shown=described)
        coords = {}
        for dim in array.dims:
            if dim in array.coords:
                coord = np.asarray(array[dim].values)
                if coord.dtype.kind not in "iufUb":
                    raise self.error(None, f" (coordinate {dim!r} must hold numbers or strings)",
                                     shown=described)
                coords[dim] = coord.copy()

        def located(position: int) -> str:
            index = np.unravel_index(position, array.shape)
            where = {d: (coords[d][i].item() if d in coords else int(i))
                     for d, i in zip(array.dims, index)}
            return f" (element at {where} of a DataArray)"

        raw = np.asarray(array.values)
        numeric = self.kind not in ("name", "bool")
        if numeric and raw.dtype.kind in "iuf":  # fast path: vectorised bound check
            as_float = raw.astype(np.float64)
            ok = self._in_bounds(as_float)
            if self.kind == "count":
                ok &= as_float == np.round(as_float)
            if not ok.all():
                position = int(np.flatnonzero(~ok.ravel())[0])
                raise self.error(raw.ravel()[position].item(), located(position))
            if self.kind != "count":
                values = as_float + 0.0
            else:  # from the integers themselves where possible: floats lose them above 2**53
                values = (raw if raw.dtype.kind in "iu" else as_float).astype(np.int64)
        else:  # object, string or bool arrays: element by element, with the scalar rules
            checked = []
            for position, element in enumerate(raw.ravel().tolist()):
                try:
                    checked.append(self.coerce(element))
                except ValueError as exc:
                    raise ArgumentError(f"{exc}{located(position)}") from None
            dtype = {"name": object, "bool": bool, "count": np.int64}.get(self.kind, np.float64)
            values = np.empty(len(checked), dtype=dtype)
            values[:] = checked
            values = values.reshape(raw.shape)
        values.flags.writeable = False  # scenarios are immutable, and so are their arrays
        return xr.DataArray(values, dims=array.dims, coords=coords, name=self.name)


def _spec(kind: str, default: Any, meaning: str, **bounds: Any) -> Any:
    """A dataclass field whose metadata holds the :class:`Field` record (name filled in later)."""
    return dataclasses.field(default=default,
                             metadata={"spec": Field("", kind, default, meaning, **bounds)})


NONNEGATIVE = {"low": 0}
POSITIVE = {"low": 0, "low_open": True}
SHARE = {"low": 0, "high": 1}

Seconds = float | xr.DataArray
PerSecond = float | xr.DataArray
Share = float | xr.DataArray
Count = int | xr.DataArray
Number = float | xr.DataArray
Name = str | xr.DataArray
Flag = bool | xr.DataArray


# ----------------------------------------------------------------------------------------------
# Scenario
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, init=False, eq=False, repr=False)
class Scenario:
    """One workload on one machine (or, with DataArray-valued fields, a labelled grid of them).

    Construct with keyword arguments; omitted fields take their defaults. All fields are listed,
    with unit, default, allowed range and meaning, by ``Scenario.describe()`` and are available as
    ``Scenario.FIELDS``. Presets of published measurements: ``Scenario.preset(name, **overrides)``.

    The model (``MODEL.md``): ``threads`` threads alternate exponential CPU work (``think_time``),
    optional off-CPU sleep (``idle_time``) and page accesses over ``vmas`` VMAs of ``pages_per_vma``
    pages with Zipf popularity. A missing page is a fault: a file fault reads ``readaround_pages``
    pages from storage, a swap fault decompresses from zram. Reads that must wait drop the per-VMA
    lock and retry under ``mmap_lock`` (or not, depending on the policy being solved). Writers take
    ``mmap_lock`` for write at ``writer_rate`` and write-lock none, one or all VMAs. Reclaim evicts
    cached and mapped folios at the given hazards. Everything runs on ``cpus`` CPUs.

    Two alternatives reproduce the measurement harness (``faultlock/measure/SCENARIO_SPEC.md``):
    ``access_pattern='group_walk'`` makes groups of ``group_size`` threads walk ``walk_pages``
    fresh pages each, in a fixed order shared by the group; ``writer_mode='periodic'`` or
    ``'flat_out'`` replaces the Poisson writers by ``writer_threads`` closed-loop writer threads
    that make ``writer_locks_per_op`` write acquisitions per operation, each after
    ``writer_gap_cpu`` of CPU, in this process (``writer_where='thread'``) or in another one
    (``'process'``: CPU load only).

    Examples
    --------
    >>> s = Scenario(threads=64, io_latency="150us")
    >>> s.io_latency
    0.00015
    >>> grid = s.replace(threads=xr.DataArray([1, 2, 4], dims="threads"))
    >>> grid.dims
    {'threads': 3}
    """

    FIELDS: ClassVar[Mapping[str, Field]]

    # -- threads -------------------------------------------------------------------------------
    threads: Count = _spec("count", 16, "threads of the process that access memory (closed "
                           "population)", low=1, high=1_000_000)
    think_time: Seconds = _spec("time", 200e-6, "mean CPU time a thread runs between two page "
                                "accesses (exponential)", **NONNEGATIVE)
    idle_time: Seconds = _spec("time", 0.0, "mean time a thread sleeps off CPU (futex, binder, "
                               "timers) after its CPU work and before its next page access "
                               "(exponential); 0 = always runnable", **NONNEGATIVE)
    # -- address space -------------------------------------------------------------------------
    vmas: Count = _spec("count", 8, "VMAs of the faulted address space", low=1, high=65536)
    pages_per_vma: Count = _spec("count", 65536, "pages in each VMA", low=1, high=2**40)
    page_popularity: Number = _spec("float", 0.8, "Zipf exponent of page popularity; "
                                     "0 = uniform", low=0, high=10)
    # -- access pattern (SCENARIO_SPEC.md §1: the harness's group walks) -----------------------
    access_pattern: Name = _spec("name", "popularity", "how a thread picks the page of its next "
                                 "access: 'popularity' draws it from the Zipf law of "
                                 "page_popularity; 'group_walk': groups of group_size threads walk "
                                 "walk_pages fresh pages each, in a fixed order; 'file_rounds': "
                                 "thread t maps a file of its own as VMA t (vmas == threads), "
                                 "touches its pages_per_vma pages in order (think_time of CPU "
                                 "each), munmaps it and maps it again (a round)",
                                 choices=ACCESS_PATTERNS)
    group_size: Count = _spec("count", 1, "G, threads per group of a group walk (thread t is in "
                              "group t // G; every member walks the same pages in the same order); "
                              "0 = threads (all in lock step); threads % G == 0",
                              low=0, high=1_000_000)
    walk_pages: Count = _spec("count", 1024, "N, pages of one epoch of a group walk; after N "
                              "accesses a group walks N fresh pages", low=1, high=2**24)
    walk_order: Name = _spec("name", "random", "order of a group's N pages within an epoch: "
                             "'random' (a permutation per group and epoch) or 'sequential'",
                             choices=WALK_ORDERS)
    swap_share: Share = _spec("share", 0.0, "share of VMAs that are anonymous and swap-backed "
                              "(zram); the rest are file-backed", **SHARE)
    # -- storage (kernel.md §5: NVMe 20-70 µs at QD1, UFS ~60-150 µs, HDD 5-10 ms) --------------
    io_latency: Seconds = _spec("time", 100e-6, "mean storage read time at queue depth 1",
                                low=0, low_open=True, high=100)
    io_latency_cv: Number = _spec("float", 0.5, "coefficient of variation of the read time (used "
                                  "by lognormal and gamma; exponential is 1, deterministic 0 by "
                                  "definition)", low=0, high=20)
    io_distribution: Name = _spec("name", "lognormal", "law of the read time",
                                  choices=DISTRIBUTIONS)
    io_parallelism: Count = _spec("count", 0, "reads the device serves at once (0 = unlimited); "
                                  "more wait in a FIFO device queue", **NONNEGATIVE)
    # MODEL.md mechanism 7: virtio disk ~45 µs at depth 1, ~125 at 8, ~370 at 32 (~11 µs/read)
    io_depth_slope: Seconds = _spec("time", 0.0, "extra read latency per read already in flight "
                                    "at submission (device queue-depth curve)", **NONNEGATIVE)
    # issue 14: the device's tail. The virtio disk of examples/measure serves ~1 % of reads
    # milliseconds late (O_DIRECT p99 and mean far above a log-normal body): a read is held up
    # with probability io_stall_share by an extra log-normal time (laws.stall_cdf)
    io_stall_share: Number = _spec("float", 0.0, "probability that a read is held up (a stall "
                                   "added to its time; 0 = no stalls)", low=0, high=1,
                                   high_open=True)
    io_stall_latency: Seconds = _spec("time", 2e-3, "mean extra time of a held-up read",
                                      low=0, low_open=True, high=100)
    io_stall_cv: Number = _spec("float", 0.5, "coefficient of variation of a stall "
                                "(log-normal)", low=0, high=20)
    io_page_time: Seconds = _spec("time", 0.0, "transfer time per page beyond the first in one "
                                  "read-around", **NONNEGATIVE)
    # kernel.md §5: read-around of ra_pages, default 128 KiB = 32 pages; MADV_RANDOM reads one page
    readaround_pages: Count = _spec("count", 32, "pages one file major fault reads "
                                    "(1 = MADV_RANDOM; 32 = 128 KiB default ra_pages)",
                                    low=1, high=4096)
    # kernel.md §5: lz4 1.7 µs (x86), 9.4 µs (Cortex-A72); phones ~2-5 µs on big cores
    zram_latency: Seconds = _spec("time", 5e-6, "synchronous zram decompression of one swap-in "
                                  "(CPU time)", **NONNEGATIVE)
    # -- CPUs ----------------------------------------------------------------------------------
    fault_cpu_time: Seconds = _spec("time", 2e-6, "CPU time of one fault attempt (lookup, PTE "
                                    "install)", **NONNEGATIVE)
    cpus: Count = _spec("count", 8, "CPUs the threads and writers share (0 = unlimited)",
                        **NONNEGATIVE)
    # kernel/sched/fair.c: sysctl_sched_base_slice 0.75 ms x (1 + log2 min(ncpus, 8)) = 3 ms
    sched_slice: Seconds = _spec("time", 3e-3, "CPU time slice after which a running thread "
                                 "yields to a queued one (EEVDF base slice)", **POSITIVE)
    # kernel/sched/features.h: SCHED_FEAT(RUN_TO_PARITY, true); kernel/sched/fair.c:
    # check_preempt_wakeup_fair -> pick_eevdf, which keeps curr while protect_slice(curr)
    # (default 'immediate', not the kernel's: on the measured cells of examples/measure/ it moves
    # no p50/p90/p99 toward the kernel, issue 14)
    wakeup_preemption: Name = _spec("name", "immediate", "when a woken task takes the CPU of a "
                                    "running one: 'run_to_parity' (the kernel's default "
                                    "RUN_TO_PARITY: only once the running task has used its "
                                    "slice since it got the CPU, else it waits for a CPU to "
                                    "free; the slice runs across bursts, so a write hold may "
                                    "be preempted holding the lock) or 'immediate' "
                                    "(NO_RUN_TO_PARITY: at once, if the running task is only "
                                    "computing)", choices=WAKEUP_PREEMPTIONS)
    # include/asm-generic/param.h, CONFIG_HZ (250 on this machine); kernel/locking/rwsem.c counts
    # RWSEM_WAIT_TIMEOUT in jiffies and tests it with time_after(jiffies, waiter->timeout)
    tick_hz: Count = _spec("count", 0, "CONFIG_HZ, jiffies per second: the rwsem HANDOFF "
                           "timeout is counted in jiffies (the waiter's deadline is its enqueue "
                           "jiffy plus handoff_timeout rounded up to jiffies, and it passes only "
                           "when jiffies exceed it: 4-8 ms at 250); 0 = continuous time (exactly "
                           "handoff_timeout)", low=0, high=100_000)
    # MODEL.md traces: µs writer holds still cost contended readers tens of µs
    wakeup_latency: Seconds = _spec("time", 10e-6, "delay from a sleeper being woken to it being "
                                    "runnable, before any wait for a CPU", **NONNEGATIVE)
    # -- memory pressure (kernel.md §4, MODEL.md mechanism 9) ----------------------------------
    reclaim: Name = _spec("name", "lru", "how folios leave memory: 'lru': a memory limit "
                          "(memory_limit) and the kernel's LRU lists, reclaim on allocation; "
                          "'hazard': every unreferenced folio dies at reclaim_rate_cached / "
                          "reclaim_rate_mapped", choices=RECLAIM_MODES)
    memory_limit: Count = _spec("count", 0, "memcg memory.max of the process's page cache and "
                                "swap cache, in 4 KiB pages (every folio reading, cached or mapped "
                                "counts); 0 = unlimited", low=0, high=2**40)
    lru_lists: Count = _spec("count", 2, "LRU lists: 2 = inactive and active (mm/vmscan.c), 1 = "
                             "one exact LRU list (a reference moves a folio to the head)",
                             low=1, high=2)
    # measured on Linux 6.18, 2 vCPUs (examples/measure/memcg_calibration.json): 1.29 ± 0.16 µs
    reclaim_cpu_time: Seconds = _spec("time", 1.3e-6, "CPU the allocating thread spends per folio "
                                      "freed by direct reclaim (try_charge -> "
                                      "try_to_free_mem_cgroup_pages)", **NONNEGATIVE)
    reclaim_rate_cached: PerSecond = _spec("rate", 0.0, "reclaim hazard of an uptodate, unlocked, "
                                           "unmapped, unreferenced folio (reclaim='hazard')",
                                           **NONNEGATIVE)
    reclaim_rate_mapped: PerSecond = _spec("rate", 0.0, "reclaim hazard of a mapped folio "
                                           "(reclaim unmaps it; reclaim='hazard')", **NONNEGATIVE)
    # -- mmap_lock writers (kernel.md §5: 838-909 writes per Douyin warm start) ----------------
    writer_mode: Name = _spec("name", "poisson", "'poisson': writers arrive as an open stream "
                              "at writer_rate; 'periodic' or 'flat_out': writer_threads "
                              "closed-loop writer threads (SCENARIO_SPEC.md §2)",
                              choices=WRITER_MODES)
    writer_rate: PerSecond = _spec("rate", 100.0, "mmap_lock write acquisitions per second "
                                   "(Poisson; 0 unless writer_mode='poisson')", **NONNEGATIVE)
    writer_threads: Count = _spec("count", 0, "W, closed-loop writer threads (periodic and "
                                  "flat_out only)", low=0, high=4096)
    writer_op_rate: PerSecond = _spec("rate", 0.0, "operations per second of each periodic "
                                      "writer thread (absolute deadlines, no catch-up burst)",
                                      **NONNEGATIVE)
    writer_locks_per_op: Count = _spec("count", 1, "k, mmap_lock write acquisitions per writer "
                                       "operation (mmap + munmap = 2, mprotect = 1)",
                                       low=1, high=100_000)
    writer_gap_cpu: Seconds = _spec("time", 0.0, "CPU a writer thread runs outside the lock "
                                    "before each acquisition (syscall entry and exit, VMA "
                                    "allocation, the munmap zap)", **NONNEGATIVE)
    writer_where: Name = _spec("name", "thread", "'thread': the writer threads take this "
                               "process's mmap_lock; 'process': the same threads in another "
                               "process, on the same CPUs, taking no lock of ours (the control)",
                               choices=WRITER_WHERE)
    # kernel.md §5: no published number; suggested log-normal, median ~5-20 µs
    writer_hold: Seconds = _spec("time", 20e-6, "mean time a writer holds mmap_lock for write "
                                 "(its critical section, CPU)", **NONNEGATIVE)
    writer_hold_cv: Number = _spec("float", 1.0, "coefficient of variation of the writer hold",
                                   low=0, high=20)
    writer_hold_distribution: Name = _spec("name", "lognormal", "law of the writer hold",
                                           choices=DISTRIBUTIONS)
    writer_vma_share: Share = _spec("share", 0.2, "share of writes that write-lock one faulted "
                                    "VMA (mprotect, merge, split)", **SHARE)
    writer_fork_share: Share = _spec("share", 0.0, "share of writes that write-lock every VMA "
                                     "(fork); writer_vma_share + writer_fork_share <= 1", **SHARE)
    # -- other mmap_lock readers (kernel.md §5: MGLRU aging walks, /proc readers, GUP, madvise) -
    reader_rate: PerSecond = _spec("rate", 0.0, "mmap_lock read acquisitions per second by paths "
                                   "other than page faults (Poisson)", **NONNEGATIVE)
    reader_hold: Seconds = _spec("time", 10e-6, "mean time such a reader holds mmap_lock for read "
                                 "(exponential, CPU)", **NONNEGATIVE)
    # -- rwsem (kernel.md §2) ------------------------------------------------------------------
    rwsem: Name = _spec("name", "linux", "mmap_lock discipline", choices=RWSEM_DISCIPLINES)
    # CONFIG_RWSEM_SPIN_ON_OWNER; ignored by the other disciplines
    writer_spin: Flag = _spec("bool", True, "writers spin optimistically on a running owner "
                              "(CONFIG_RWSEM_SPIN_ON_OWNER); linux only")
    # RWSEM_WAIT_TIMEOUT = DIV_ROUND_UP(HZ, 250) jiffies = 4 ms at HZ=250/1000
    handoff_timeout: Seconds = _spec("time", 4e-3, "RWSEM_WAIT_TIMEOUT: wait after which the "
                                     "first waiter sets handoff", **POSITIVE)
    # MAX_READERS_WAKEUP = 0x100
    reader_wake_batch: Count = _spec("count", 256, "MAX_READERS_WAKEUP: readers granted per "
                                     "wake-up", low=1)
    # -- kernel-version switches (kernel.md §1.1, §3.1) ----------------------------------------
    tried_after_major: Flag = _spec("bool", True, "kernel 6.8+ (46e714c729c8): a major fault's "
                                    "retry is TRIED and never drops its lock again")
    retry_limit: Count = _spec("count", 0, "lock-dropping retries allowed per fault "
                               "(0 = unlimited, 5.7+; 1 = older)", **NONNEGATIVE)
    # -- measurement ---------------------------------------------------------------------------
    jank_threshold: Seconds = _spec("time", 16.7e-3, "fault latency counted as jank (one frame "
                                    "at 60 Hz)", **POSITIVE)
    # -- file rounds, holes, fault-around, noise (issue 12: the memcg reproducer) -------------
    # mm/vma.c: munmap holds mmap_lock for write to detach the VMAs, then downgrades for the zap
    round_lock_hold: Seconds = _spec("time", 2e-6, "file_rounds: CPU a round's mmap, and its "
                                     "munmap before the downgrade, hold mmap_lock for write",
                                     **NONNEGATIVE)
    unmap_page_time: Seconds = _spec("time", 0.0, "file_rounds: CPU per mapped page zapped by "
                                     "munmap (zap_pte_range), under mmap_lock for read after the "
                                     "downgrade", **NONNEGATIVE)
    # mm/memory.c: fault_around_bytes 64 KiB = 16 pages by default
    faultaround_pages: Count = _spec("count", 1, "pages of the aligned window whose cached, "
                                     "uptodate, unlocked folios a read fault maps too "
                                     "(do_fault_around); 1 = off, the kernel's default is 16",
                                     low=1, high=512)
    read_source: Name = _spec("name", "device", "what a file major fault reads: 'device' "
                              "(storage, io_*) or 'hole' (a sparse file: zero-filled on the "
                              "faulting thread's CPU, hole_page_cpu per page, no device)",
                              choices=READ_SOURCES)
    # measured on the same machine: 0.84 ± 0.04 µs (examples/measure/memcg_calibration.json)
    hole_page_cpu: Seconds = _spec("time", 0.84e-6, "read_source='hole': CPU to allocate and "
                                   "zero-fill one folio of a hole (ext4_mpage_readpages)",
                                   **NONNEGATIVE)
    noise_threads: Count = _spec("count", 0, "CPU-bound threads of another process on the same "
                                 "CPUs (ioretry_noise.c), looping noise_cpu then a sleep",
                                 low=0, high=100_000)
    noise_cpu: Seconds = _spec("time", 5e-6, "CPU of one noise loop (constant)", **NONNEGATIVE)
    noise_sleep: Seconds = _spec("time", 100e-6, "mean sleep of a noise thread between loops "
                                 "(exponential; nanosleep 50 µs plus the 50 µs timer slack)",
                                 **NONNEGATIVE)

    # ------------------------------------------------------------------------------------------
    def __init__(self, **values: Any) -> None:
        errors = [_unknown_field_message(name, value) for name, value in values.items()
                  if name not in self.FIELDS]
        normalised: dict[str, Any] = {}
        for name, spec in self.FIELDS.items():
            try:
                normalised[name] = spec.coerce(values.get(name, spec.default))
            except ValueError as exc:
                errors.append(str(exc))
        if not errors:
            # sizes (and given coordinates) agree, then every dimension is labelled, then the
            # coordinates it was given agree
            errors = (_check_grid(normalised) or _label_dims(normalised)
                      or _check_grid(normalised) or _check_together(normalised))
        if errors:
            raise ArgumentError(errors[0] if len(errors) == 1 else
                             f"{len(errors)} problems: " + "; ".join(errors))
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    @classmethod
    def _trusted(cls, values: Mapping[str, Any]) -> Scenario:
        """Build from already validated and normalised values (used by :meth:`cells`)."""
        scenario = object.__new__(cls)
        for name, value in values.items():
            object.__setattr__(scenario, name, value)
        return scenario

    def replace(self, **changes: Any) -> Scenario:
        """A copy with ``changes`` applied, validated like a new Scenario."""
        return type(self)(**{**self._values(), **changes})

    def _values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    # -- presets -------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Scenario:
        """The preset ``name`` (see :meth:`presets`), with ``overrides`` applied."""
        if name not in PRESETS:
            close = difflib.get_close_matches(name, PRESETS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ArgumentError(f"preset={name!r} is not allowed: one of "
                             f"{', '.join(map(repr, PRESETS))}{hint}")
        return cls(**{**PRESETS[name], **overrides})

    @staticmethod
    def presets() -> dict[str, str]:
        """Preset names and a one-line description of each."""
        return dict(_PRESET_DESCRIPTIONS)

    # -- grids ---------------------------------------------------------------------------------
    @property
    def array_fields(self) -> tuple[str, ...]:
        """Names of the fields given as DataArrays, in field order."""
        return tuple(n for n in self.FIELDS if isinstance(getattr(self, n), xr.DataArray))

    @property
    def is_scalar(self) -> bool:
        """True if no field is a DataArray (the scenario is a single point)."""
        return not self.array_fields

    @property
    def dims(self) -> dict[str, int]:
        """Dimension name -> size over all DataArray fields, in order of first appearance."""
        dims: dict[str, int] = {}
        for name in self.array_fields:
            dims.update((d, s) for d, s in getattr(self, name).sizes.items() if d not in dims)
        return dims

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """Dimension name -> coordinate values, for the dimensions that have coordinates."""
        coords: dict[str, np.ndarray] = {}
        for name in self.array_fields:
            array = getattr(self, name)
            coords.update((d, array[d].values) for d in array.dims
                          if d in array.coords and d not in coords)
        return coords

    def as_arrays(self) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
        """Every field as a numpy array broadcast to the common grid, and the grid's dims.

        Counts are int64, times, rates, shares and numbers float64, bools bool and names object
        arrays. The arrays are read-only broadcast views; for a scalar scenario they are 0-d.
        """
        dims = self.dims
        shape = tuple(dims.values())
        broadcast = dict(zip(self.array_fields,
                             xr.broadcast(*(getattr(self, n) for n in self.array_fields))))
        dtypes = {"count": np.int64, "bool": bool, "name": object}
        arrays = {}
        for name, spec in self.FIELDS.items():
            if name in broadcast:
                values = broadcast[name].transpose(*dims).values
            else:
                values = np.asarray(getattr(self, name), dtype=dtypes.get(spec.kind, np.float64))
            arrays[name] = np.broadcast_to(values, shape)
        return arrays, tuple(dims)

    def cells(self) -> Iterator[tuple[dict[str, Any], Scenario]]:
        """Yield ``(coords, scenario)`` for every cell of the grid, in C order over :attr:`dims`.

        ``coords`` maps each dimension to its coordinate value (a plain Python value), or to the
        integer position along it when the dimension has no coordinate. A scalar scenario yields
        ``({}, self)`` once.
        """
        if self.is_scalar:
            yield {}, self
            return
        arrays, dims = self.as_arrays()
        coords = self.coords
        for index in np.ndindex(*self.dims.values()):
            labels = {d: (coords[d][i].item() if d in coords else i) for d, i in zip(dims, index)}
            values = {n: a[index] for n, a in arrays.items()}
            yield labels, Scenario._trusted(
                {n: v.item() if isinstance(v, np.generic) else v for n, v in values.items()})

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field. A DataArray field becomes
        ``{"dims": [...], "data": nested lists, "coords": {dim: [...]}}`` (coords only if any)."""
        result: dict[str, Any] = {}
        for name, value in self._values().items():
            if isinstance(value, xr.DataArray):
                entry: dict[str, Any] = {"dims": list(value.dims), "data": value.values.tolist()}
                coords = {d: value[d].values.tolist() for d in value.dims if d in value.coords}
                if coords:
                    entry["coords"] = coords
                value = entry
            result[name] = value
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Inverse of :meth:`to_dict`. Missing fields take their defaults."""
        values = {}
        for name, value in data.items():
            if isinstance(value, Mapping):
                keys = set(value)
                if not {"dims", "data"} <= keys or keys - {"dims", "data", "coords"}:
                    raise ArgumentError(f"{name}={dict(value)!r} is not allowed: an array field is "
                                     "a table with keys dims, data and optionally coords")
                try:
                    value = xr.DataArray(np.array(value["data"]), dims=tuple(value["dims"]),
                                         coords=dict(value.get("coords") or {}))
                except (ValueError, TypeError) as exc:
                    raise ArgumentError(f"{name}={dict(value)!r} is not allowed: {exc}") from None
            values[name] = value
        return cls(**values)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        return cls.from_dict(json.loads(text))

    def to_toml(self) -> str:
        """TOML text, one ``key = value  # unit`` line per field (DataArrays as inline tables)."""
        lines = ["# faultlock Scenario; units: seconds (s) and per second (1/s)"]
        for name, value in self.to_dict().items():
            lines.append(f"{name} = {_toml_value(value)}  # {self.FIELDS[name].unit}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str) -> Scenario:
        return cls.from_dict(tomllib.loads(text))

    def key(self) -> str:
        """Stable SHA-256 hex digest of :meth:`to_dict` (for provenance and caching)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        shown = []
        for name, spec in self.FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, xr.DataArray):
                shown.append(f"{name}=<DataArray {dict(value.sizes)}>")
            elif value != spec.default or type(value) is not type(spec.default):
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # -- documentation -------------------------------------------------------------------------
    @classmethod
    def describe(cls, markdown: bool = False) -> str:
        """A table of every field: name, unit, default, allowed values and meaning.

        With ``markdown=True`` a Markdown table (for the README); otherwise aligned plain text.
        """
        header = ("field", "unit", "default", "allowed", "meaning")
        rows = [(f.name, f.unit, _format_value(f.kind, f.default), f.allowed, f.meaning)
                for f in cls.FIELDS.values()]
        if markdown:
            out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(f"`{r[0]}`" if i == 0 else c for i, c in enumerate(r)) + " |"
                    for r in rows]
            return "\n".join(out) + "\n"
        caps = (None, None, None, 32, 52)  # wrap the two long columns
        wrapped = [[textwrap.wrap(c, cap, break_on_hyphens=False) or [""] if cap else [c]
                    for c, cap in zip(row, caps)] for row in [header, *rows]]
        widths = [max(len(line) for row in wrapped for line in row[i]) for i in range(5)]
        out = []
        for row in wrapped:
            for k in range(max(map(len, row))):
                cells = [(col[k] if k < len(col) else "").ljust(w) for col, w in zip(row, widths)]
                out.append("  ".join(cells).rstrip())
        return "\n".join(out) + "\n"


Scenario.FIELDS = MappingProxyType({
    f.name: dataclasses.replace(f.metadata["spec"], name=f.name)
    for f in dataclasses.fields(Scenario)})


def _unknown_field_message(name: str, value: Any) -> str:
    close = difflib.get_close_matches(name, Scenario.FIELDS, n=3)
    hint = f"did you mean {' or '.join(map(repr, close))}?" if close else \
        "the fields are " + ", ".join(Scenario.FIELDS)
    return f"{name}={value!r} is not allowed: no such Scenario field; {hint}"


#: dimensions of the solvers' results: a grid dimension of that name would collide with them
RESULT_DIMS = ("policy", "latency_bin", "wait_bin", "source")


def _shown_array(array: xr.DataArray) -> str:
    return f"<DataArray {dict(array.sizes)}>"


def _label_dims(values: dict[str, Any]) -> list[str]:
    """Give every grid dimension a coordinate, in place; or the errors of badly named ones.

    A DataArray field's dimension is either named after the field itself (``threads`` along
    ``"threads"``), after another field that is swept along it too (``cpus`` along ``"threads"``
    with ``threads``), or after something that is not a field (a named level such as
    ``"memory_pressure"``). A dimension named after a field that does not vary along it would
    label the field's values with a name they do not have (thread counts along ``"io_latency"``)
    and is refused, and so are the dimensions of the solvers' results (:data:`RESULT_DIMS`).

    A dimension without a coordinate gets one, so that both solvers label their results alike:
    the values of the field it is named after (or of the one field along it, if only one is), if
    they vary along that dimension only and are distinct; otherwise the positions 0, 1, ...
    """
    arrays = {n: v for n, v in values.items() if isinstance(v, xr.DataArray)}
    for name, array in arrays.items():
        for dim in array.dims:
            if dim in RESULT_DIMS:
                return [(f"{name}={_shown_array(array)} is not allowed: dimension {dim!r} is a "
                         "dimension of the solvers' results; name it after the field it sweeps "
                         f"({name!r}) or after what it stands for")]
            if dim in Scenario.FIELDS and dim != name and dim not in getattr(
                    arrays.get(dim), "dims", ()):
                return [(f"{name}={_shown_array(array)} is not allowed: its dimension {dim!r} is "
                         f"named after the field {dim}, which does not vary along it; name it "
                         f"{name!r} (dims={name!r}), or give {dim} as a DataArray along {dim!r} "
                         "too")]
    dims = dict.fromkeys(d for a in arrays.values() for d in a.dims)
    for dim in dims:
        holders = [n for n, a in arrays.items() if dim in a.dims]
        labelled = [n for n in holders if dim in arrays[n].coords]
        if labelled:
            coord = arrays[labelled[0]][dim].values
        else:
            source = dim if dim in holders else (holders[0] if len(holders) == 1 else None)
            coord = _values_along(arrays[source], dim) if source else None
            if coord is None and source == dim:
                return [(f"{dim}={_shown_array(arrays[dim])} is not allowed: the values of a "
                         f"field along its own dimension {dim!r} label it, so they must vary "
                         f"along {dim!r} only and be distinct (or give coords={{{dim!r}: ...}})")]
            if coord is None:
                coord = np.arange(arrays[holders[0]].sizes[dim])
        for name in holders:
            if dim not in arrays[name].coords:
                arrays[name] = arrays[name].assign_coords({dim: coord.copy()})
                values[name] = arrays[name]
    return []


def _values_along(array: xr.DataArray, dim: str) -> np.ndarray | None:
    """The values of ``array`` along ``dim`` as a coordinate, if they vary along ``dim`` only and
    are distinct; else None."""
    first = array.isel({d: 0 for d in array.dims if d != dim})
    if not bool((array == first).all()):
        return None
    coord = np.asarray(first.values)
    if coord.dtype == object:
        coord = coord.astype(str)
    if len(np.unique(coord)) != coord.size:
        return None
    return coord


def _check_grid(values: Mapping[str, Any]) -> list[str]:
    """DataArray fields must agree on the size and coordinates of every dimension they share."""
    arrays = {n: v for n, v in values.items() if isinstance(v, xr.DataArray)}
    first: dict[str, tuple[str, int]] = {}
    for name, array in arrays.items():
        for dim, size in array.sizes.items():
            other, other_size = first.setdefault(dim, (name, size))
            if size != other_size:
                return [f"{name}=<DataArray {dict(array.sizes)}> is not allowed: dimension "
                        f"{dim!r} has size {other_size} in {other}"]
    try:
        xr.align(*arrays.values(), join="exact")
    except ValueError:
        return [f"{', '.join(arrays)} are not allowed together: DataArrays that share a dimension "
                "must have the same coordinates along it"]
    return []


def _first_bad(values: Mapping[str, Any], names: tuple[str, ...], predicate) -> tuple | None:
    """The first grid element where ``predicate`` (over the broadcast fields ``names``) holds:
    ``(values by name, " (at {...})" or "")``, or None."""
    arrays = xr.broadcast(*(xr.DataArray(values[n]) for n in names))
    bad = np.asarray(predicate(*(np.asarray(a.values) for a in arrays)), dtype=bool)
    if not bad.any():
        return None
    bad = np.broadcast_to(bad, arrays[0].shape)
    index = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), bad.shape)
    at = f" (at {dict(zip(arrays[0].dims, map(int, index)))})" if index else ""
    found = {}
    for name, array in zip(names, arrays):
        value = array.values[index]
        found[name] = value.item() if isinstance(value, np.generic | np.ndarray) else value
    return found, at


def _walk_groups_ok(threads, group):
    g = np.where(group == 0, threads, group)
    return (g <= threads) & (threads % np.maximum(g, 1) == 0)


def _only_when(switch: str, active: str, name: str) -> tuple:
    """The rule that ``name`` keeps its default unless ``switch`` is ``active`` (``active`` with a
    leading ``!``: unless ``switch`` is anything but that)."""
    default = Scenario.FIELDS[name].default
    if active.startswith("!"):
        def bad(mode, x):
            return (mode == active[1:]) & (x != default)
        where = "only writer threads (writer_mode 'periodic' or 'flat_out') use it"
    else:
        def bad(mode, x):
            return (mode != active) & (x != default)
        where = f"only {switch}={active!r} uses it"

    def message(v, at):
        return (f"{name}={v[name]!r}{at} is not allowed with {switch}={v[switch]!r}: {where}; "
                f"leave it at its default {default!r}")
    return (switch, name), bad, message


#: (fields, predicate of a bad element, message) of the constraints between fields. Fields that
#: only matter in one mode must keep their defaults in the others, so that no field is silently
#: ignored (SCENARIO_SPEC.md §1-2).
_TOGETHER = (
    (("writer_vma_share", "writer_fork_share"),
     lambda vma, fork: vma + fork > 1 + 1e-12,
     lambda v, at: f"writer_vma_share + writer_fork_share = {v['writer_vma_share']!r} + "
                   f"{v['writer_fork_share']!r}{at} is not allowed: the two shares must sum to "
                   "at most 1"),
    (("access_pattern", "threads", "group_size"),
     lambda ap, t, g: (ap == "group_walk") & ~_walk_groups_ok(t, g),
     lambda v, at: f"group_size={v['group_size']!r} with threads={v['threads']!r}{at} is not "
                   "allowed: a group size that divides threads (threads % group_size == 0; "
                   "0 = threads)"),
    (("access_pattern", "page_popularity"),
     lambda ap, pop: (ap == "group_walk") & (pop != Scenario.FIELDS["page_popularity"].default),
     lambda v, at: f"page_popularity={v['page_popularity']!r}{at} is not allowed with "
                   "access_pattern='group_walk': the walk chooses the pages; leave "
                   f"page_popularity at its default {Scenario.FIELDS['page_popularity'].default}"),
    (("access_pattern", "threads", "group_size", "walk_pages", "vmas", "pages_per_vma"),
     lambda ap, t, g, n, v, p: (ap == "group_walk")
     & (t // np.maximum(np.where(g == 0, t, g), 1) * n > v * p),
     lambda v, at: f"walk_pages={v['walk_pages']!r}{at} is not allowed: one epoch of the walk, "
                   "(threads / group_size) * walk_pages pages, must fit in vmas * pages_per_vma = "
                   f"{v['vmas'] * v['pages_per_vma']}"),
    *(_only_when("access_pattern", "group_walk", name)
      for name in ("group_size", "walk_pages", "walk_order")),
    *(_only_when("reclaim", "hazard", name)
      for name in ("reclaim_rate_cached", "reclaim_rate_mapped")),
    *(_only_when("reclaim", "lru", name)
      for name in ("memory_limit", "lru_lists", "reclaim_cpu_time")),
    (("reclaim", "memory_limit", "readaround_pages", "pages_per_vma"),
     lambda mode, limit, ra, pages: (mode == "lru") & (limit > 0)
     & (limit < np.minimum(ra, pages)),
     lambda v, at: f"memory_limit={v['memory_limit']!r}{at} is not allowed: 0 (unlimited) or at "
                   "least one read-around, min(readaround_pages, pages_per_vma) = "
                   f"{min(v['readaround_pages'], v['pages_per_vma'])} pages (a read must fit)"),
    (("access_pattern", "threads", "vmas"),
     lambda ap, t, v: (ap == "file_rounds") & (t != v),
     lambda v, at: f"vmas={v['vmas']!r} with threads={v['threads']!r}{at} is not allowed with "
                   "access_pattern='file_rounds': thread t owns VMA t, so vmas == threads"),
    (("access_pattern", "page_popularity"),
     lambda ap, pop: (ap == "file_rounds") & (pop != Scenario.FIELDS["page_popularity"].default),
     lambda v, at: f"page_popularity={v['page_popularity']!r}{at} is not allowed with "
                   "access_pattern='file_rounds': the walk chooses the pages; leave "
                   f"page_popularity at its default {Scenario.FIELDS['page_popularity'].default}"),
    (("access_pattern", "swap_share"),
     lambda ap, share: (ap == "file_rounds") & (share != 0),
     lambda v, at: f"swap_share={v['swap_share']!r}{at} is not allowed with "
                   "access_pattern='file_rounds': a round maps a file (munmap frees anonymous "
                   "memory, it does not cache it); 0"),
    (("access_pattern", "idle_time"),
     lambda ap, idle: (ap == "file_rounds") & (idle != 0),
     lambda v, at: f"idle_time={v['idle_time']!r}{at} is not allowed with "
                   "access_pattern='file_rounds': a round thread never sleeps between touches; 0"),
    *(_only_when("access_pattern", "file_rounds", name)
      for name in ("round_lock_hold", "unmap_page_time")),
    *(_only_when("read_source", "hole", name) for name in ("hole_page_cpu",)),
    (("noise_threads", "noise_cpu"),
     lambda n, c: (n > 0) & (c <= 0),
     lambda v, at: f"noise_cpu={v['noise_cpu']!r}{at} is not allowed with "
                   f"noise_threads={v['noise_threads']!r}: a time (s) > 0, or a noise thread "
                   "would loop without using its CPU"),
    *((("noise_threads", name),
       lambda n, x, name=name: (n == 0) & (x != Scenario.FIELDS[name].default),
       lambda v, at, name=name: f"{name}={v[name]!r}{at} is not allowed with noise_threads=0: "
                                f"only noise threads use it; leave it at its default "
                                f"{Scenario.FIELDS[name].default!r}")
      for name in ("noise_cpu", "noise_sleep")),
    (("writer_mode", "writer_rate"),
     lambda mode, rate: (mode != "poisson") & (rate != 0),
     lambda v, at: f"writer_rate={v['writer_rate']!r}{at} is not allowed with "
                   f"writer_mode={v['writer_mode']!r}: 0 (writer threads set their own pace "
                   "with writer_threads and writer_op_rate)"),
    *(_only_when("writer_mode", "!poisson", name)
      for name in ("writer_threads", "writer_op_rate", "writer_locks_per_op", "writer_gap_cpu",
                   "writer_where")),
    (("writer_mode", "writer_op_rate"),
     lambda mode, rate: (mode == "periodic") & (rate <= 0),
     lambda v, at: f"writer_op_rate={v['writer_op_rate']!r}{at} is not allowed with "
                   "writer_mode='periodic': operations per second per writer thread > 0"),
    (("writer_mode", "writer_op_rate"),
     lambda mode, rate: (mode == "flat_out") & (rate != 0),
     lambda v, at: f"writer_op_rate={v['writer_op_rate']!r}{at} is not allowed with "
                   "writer_mode='flat_out': 0 (a flat-out writer starts its next operation at "
                   "once)"),
    (("writer_mode", "writer_threads", "writer_gap_cpu", "writer_hold"),
     lambda mode, w, gap, hold: (mode == "flat_out") & (w > 0) & (gap + hold <= 0),
     lambda v, at: f"writer_gap_cpu + writer_hold = {v['writer_gap_cpu']!r} + "
                   f"{v['writer_hold']!r}{at} is not allowed with writer_mode='flat_out': "
                   "a time (s) > 0, or a flat-out writer would loop without time passing"),
)


def _check_together(values: Mapping[str, Any]) -> list[str]:
    """Constraints that involve more than one field (checked elementwise on grids)."""
    errors = []
    for names, predicate, message in _TOGETHER:
        found = _first_bad(values, names, predicate)
        if found is not None:
            errors.append(message(*found))
    return errors


def _toml_key(key: Any) -> str:
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):  # pragma: no cover - validation rejects these
            raise ValueError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}"
                                for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")  # pragma: no cover


# ----------------------------------------------------------------------------------------------
# Presets. Each is a dict of overrides of the defaults; every number says where it comes from.
# Numbers marked "to be fitted" are starting points for the lead's calibration.
# ----------------------------------------------------------------------------------------------

#: Douyin (TikTok) warm start on an 8 GB phone, the calibration target of kernel.md §1.4
#: (mainline: 20,010 mmap_lock reads with 534 µs mean wait; 838 writes with 598 µs mean wait).
ANDROID_WARM_START: dict[str, Any] = {
    # Tuned by hand with 60,000-operation Monte Carlo runs so that mainline versus vma_retry
    # reproduces the direction and rough size of the Douyin rows (kernel.md §1.4). Measured with
    # seed 0: read acquisitions 3.3x fewer under vma_retry (published 3.5x); mean read wait
    # 346 -> 26 µs (published 534 -> 71); mean write wait 995 -> 26 µs (published 598 -> 107).
    # The mainline waits sit near the edge of a refault storm under mmap_lock and vary from run
    # to run: reclaim_rate_cached 500, 525 (this preset) and 550 give 270, 346 and 197 µs read
    # waits with seed 0. Reproduce with
    # `faultlock whatif --preset android_warm_start --policies mainline,vma_retry`.
    "threads": 300,               # "hundreds of threads" per Android app (kernel.md §5)
    "cpus": 8,                    # 8-core phone SoC
    "think_time": 100e-6,         # CPU work between page accesses
    "idle_time": 20e-3,           # most app threads sleep most of the time (binder, futex)
    "vmas": 64,                   # many mapped libraries, dex/oat files, heaps
    "pages_per_vma": 4096,        # 16 MiB per VMA
    "page_popularity": 1.0,       # hot pages shared by many threads
    "swap_share": 0.3,            # anonymous memory on zram (Android default swap)
    "zram_latency": 5e-6,         # phone zram decompression ~2-5 µs on big cores (§5)
    "io_latency": 1.05e-3,        # UFS under a warm-start read storm (QD1 ~60-150 µs, §5)
    "io_latency_cv": 2.0,         # heavy-tailed reads under load
    "io_distribution": "lognormal",
    "io_parallelism": 12,         # reads in flight the device serves at once
    "readaround_pages": 32,       # default ra_pages = 128 KiB (§5)
    "fault_cpu_time": 3e-6,
    "wakeup_latency": 30e-6,      # MODEL.md traces: tens of µs per wake-up
    "reclaim": "hazard",          # constant hazards, as fitted (issue 12: a limit next)
    "reclaim_rate_cached": 525.0,  # heavy pressure on an 8 GB phone during warm start
    "reclaim_rate_mapped": 0.5,
    "writer_rate": 350.0,         # ~838-909 writes per warm start of a few seconds (§1.4, §5)
    "writer_hold": 100e-6,        # unpublished (§5: median ~5-20 µs) with a heavy tail:
    "writer_hold_cv": 5.0,        # write waits reach 10-100 ms (§1.4)
    "writer_vma_share": 0.3,      # mprotect/merge/split share
    "writer_fork_share": 0.02,    # 41 % of top apps fork at runtime, rarely (§5)
    "reader_rate": 1600.0,        # non-fault readers (MGLRU aging walks, /proc): most of the
    "reader_hold": 10e-6,         # 5,719 read acquisitions left under vma_retry (§1.4)
}

#: The memcg reproducer of the v2 cover letter (kernel.md §1.5; its source: the
#: lianux-mm/ioretry_test repository, ioretry_noise.c and ioretry.sh), built from its description
#: alone, not fitted to its result: 500 threads each map a 16 MB file of their own, read one byte
#: of every 4 KiB page in order, munmap and start again, inside a memcg with MemoryHigh=1G
#: MemoryMax=1.2G and no swap; 500 CPU-bound noise threads share the CPUs. Its files are sized
#: with ftruncate and never written: every fault reads a hole, zero-filled on the faulting CPU
#: (ext4_mpage_readpages), with no device. CPU costs are this project's measurements on Linux
#: 6.18 (examples/measure/memcg_calibration.json), not the reproducer's machine's.
MEMCG_REPRODUCER: dict[str, Any] = {
    "threads": 500,               # IO_THREADS
    "vmas": 500,                  # a file (one VMA) per thread
    "pages_per_vma": 4096,        # FILE_SIZE 16 MB
    "access_pattern": "file_rounds",  # mmap, touch every page in order, munmap, again
    "cpus": 256,                  # "256-core x86"
    "read_source": "hole",        # ftruncate'd, never written
    "hole_page_cpu": 0.84e-6,     # measured here: allocate and zero-fill a folio
    "think_time": 41e-9,          # measured here: the volatile load of one touch
    "fault_cpu_time": 1.24e-6,    # measured here: a fault with its fault-around
    "unmap_page_time": 58e-9,     # measured here: munmap's zap per mapped page
    "round_lock_hold": 2e-6,      # measured here: mmap of the 16 MB file, ~2 µs
    "readaround_pages": 32,       # the kernel's default read_ahead_kb 128 (not stated)
    "faultaround_pages": 16,      # the kernel's default fault_around_bytes 64 KiB
    "reclaim": "lru",
    "memory_limit": 262144,       # MemoryHigh=1G, where reclaim starts (MemoryMax=1.2G above it)
    "reclaim_cpu_time": 1.3e-6,   # measured here, per folio reclaimed
    "swap_share": 0.0,            # MemorySwapMax=0, and file pages anyway
    "idle_time": 0.0,
    "writer_rate": 0.0,           # the only writers are the threads' own mmap and munmap
    "noise_threads": 500,         # NOISE_THREADS, pinned with the I/O threads (pinning: not here)
    "noise_cpu": 3e-6,            # a 5000-iteration empty loop: 1.5-4.7 µs measured here
    "noise_sleep": 100e-6,        # nanosleep(50 µs) plus the default 50 µs timer slack
}

#: android_warm_start with many fork()s: 41 % of the top 200 China-market apps fork at runtime and
#: dup_mmap write-locks every VMA (kernel.md §5, Hongru Zhang).
FORK_HEAVY: dict[str, Any] = {**ANDROID_WARM_START, "writer_rate": 500.0, "writer_fork_share": 0.3}

#: The 2010 benchmark that introduced VM_FAULT_RETRY (kernel.md §1.1, §5): thread A reads a
#: mmapped file at random from a disk; thread B loops on mmap/munmap, at 55 it/s with mmap_sem
#: held across reads and 15,000 it/s without.
LESPINASSE_2010: dict[str, Any] = {
    "threads": 1,                 # thread A
    "cpus": 2,                    # A and B each on a CPU
    "think_time": 1e-6,           # A only reads
    "vmas": 1,
    "pages_per_vma": 2**24,       # a 64 GiB file: every access misses the page cache
    "page_popularity": 0.0,       # random reads
    "readaround_pages": 1,        # random reads, one page each
    "io_latency": 8e-3,           # HDD random read 5-10 ms (§5); §5 derives ~18 ms from 55 it/s;
                                  # to be fitted
    "io_latency_cv": 0.3,         # a disk's seek + rotation spread, nearly deterministic
    "io_distribution": "lognormal",
    "writer_rate": 15000.0,       # B's loop rate without the lock held across reads (§1.1); an
                                  # iteration (mmap + munmap) is 2 write locks: to be fitted
    "writer_hold": 20e-6,         # §5 suggestion for small mmap/munmap
    "writer_vma_share": 0.0,      # mmap/munmap of new memory: never a faulted VMA
}

#: A many-threaded server on NVMe (Willy's case: "thousands to tens of thousands" of threads,
#: kernel.md §5).
SERVER_NVME: dict[str, Any] = {
    "threads": 2048,              # §5
    "cpus": 64,
    "io_latency": 50e-6,          # NVMe QD1 random 4 KB read 20-70 µs (§5)
    "io_latency_cv": 0.5,
    "io_parallelism": 128,        # to be fitted
    "readaround_pages": 32,       # default ra_pages (§5)
    "vmas": 256,                  # to be fitted
    "pages_per_vma": 65536,       # 256 MiB per VMA; to be fitted
    "page_popularity": 0.9,       # to be fitted
    "reclaim": "lru",             # a memcg limit: reclaim keeps pace with the reads
    "memory_limit": 1 << 20,      # 4 GiB of page cache for a 64 GiB mapped set; to be fitted
    "writer_rate": 1000.0,        # to be fitted
    "writer_hold": 15e-6,         # §5 suggestion
    "writer_vma_share": 0.2,
    "writer_fork_share": 0.0,
}

#: The machine the traces of MODEL.md were taken on: 2 vCPUs, ext4 on a virtio disk, MADV_RANDOM.
VIRTIO_2CPU: dict[str, Any] = {
    "threads": 8,
    "cpus": 2,
    "sched_slice": 1.5e-3,        # sysctl_sched_base_slice: 0.75 ms x (1 + ilog2(2 CPUs))
    "io_latency": 45e-6,          # measured ~45 µs at depth 1 (MODEL.md, mechanism 7)
    "io_depth_slope": 11e-6,      # ~125 µs at depth 8, ~370 µs at 32: ~11 µs per extra read
    "readaround_pages": 1,        # MADV_RANDOM
    "vmas": 1,
    "pages_per_vma": 2**18,       # a 1 GiB file
    "page_popularity": 0.0,
    "writer_rate": 0.0,           # no writers unless a run adds them
}

PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "android_warm_start": MappingProxyType(ANDROID_WARM_START),
    "memcg_reproducer": MappingProxyType(MEMCG_REPRODUCER),
    "fork_heavy": MappingProxyType(FORK_HEAVY),
    "lespinasse_2010": MappingProxyType(LESPINASSE_2010),
    "server_nvme": MappingProxyType(SERVER_NVME),
    "virtio_2cpu": MappingProxyType(VIRTIO_2CPU),
})

_PRESET_DESCRIPTIONS = {
    "android_warm_start": "Douyin warm start on an 8 GB phone, 300 threads, UFS, zram "
                          "(kernel.md §1.4)",
    "memcg_reproducer": "v2 cover-letter memcg reproducer (ioretry_noise.c): 500 threads walk "
                        "16 MB sparse files of their own in a 1 GiB memcg, 500 noise threads, "
                        "256 CPUs (kernel.md §1.5)",
    "fork_heavy": "android_warm_start with frequent fork() write-locking every VMA "
                  "(kernel.md §5)",
    "lespinasse_2010": "one thread reading a file at random from a disk against an mmap/munmap "
                       "loop (kernel.md §1.1)",
    "server_nvme": "2048-thread server on NVMe, 64 GiB mapped in a 4 GiB memcg (kernel.md §5)",
    "virtio_2cpu": "2 vCPUs, ext4 on a virtio disk, MADV_RANDOM: the traced machine (MODEL.md)",
}
