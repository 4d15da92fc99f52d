"""``measure_memcg(config) -> xarray.Dataset``: the memcg refault loop measured on this kernel.

The workload is the published reproducer's (kernel.md §1.5, ``lianux-mm/ioretry_test``): T
threads, each with a file of its own (sparse, made with ``ftruncate`` and never written, so a
fault reads a hole; or written, ``filled``), each looping mmap(PROT_READ, MAP_SHARED) / touch
every 4 KiB page in order / munmap, inside a memory cgroup whose limit is a ratio of the working
set (T x file size). The harness (``harness.c rounds``) joins a cgroup of ours after making its
files, warms up until every thread has completed a round (the first round is cold whatever the
limit), and takes two snapshots ``seconds`` apart: getrusage of the process, each thread's pages
walked and rounds completed, and the cgroup's ``memory.stat`` (and ``memory.events`` on v2).

Two references per thread count, in a cgroup without a limit, give the CPU the limit adds:
``unlimited`` (the steady state: every page cached, each touch a minor fault or none thanks to
fault-around) and ``cold`` (``posix_fadvise(DONTNEED)`` after every round, its CPU measured apart:
every page is read again, but nothing is reclaimed). From them :func:`reclaim_cost` estimates the
CPU of direct reclaim per page reclaimed (the Scenario's ``reclaim_cpu_time``).

Layout of the dataset
---------------------
dims
    ``threads``, ``limit_ratio`` (limit / working set), ``repeat``.
``<metric>_runs(threads, limit_ratio, repeat)``
    every run; ``<metric>(threads, limit_ratio)`` the mean over repeats and ``<metric>_ci`` its
    95 % half-width (Student t over repeats).
``unlimited_<metric>_runs``, ``cold_<metric>_runs`` ``(threads, repeat)``
    the references.
``reclaim_cpu_per_page_runs``
    the per-run estimate of the reclaim CPU per page reclaimed (NaN where the limit reclaims
    little); the pooled estimate and its interval in ``attrs['reclaim_cpu_time']``.
attrs
    kernel, cgroup version and path, ``read_ahead_kb``, ``fault_around_bytes``, CPUs, load
    average at start and end (and per run: ``loadavg_runs``), the config, the command, the date.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import itertools
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import __version__
from .build import build_harness, harness_source
from .cgroup import MemoryCgroup, find_memory_controller, parse_flat_keyed
from .parse import HarnessError
from .run import quiet_nan_warnings
from .system import busy_seconds, check_disk_backed, system_info

__all__ = ["MemcgConfig", "measure_memcg", "parse_rounds", "run_metrics", "reclaim_cost",
           "trace_reclaim", "reclaim_calls",
           "t_interval", "WORKLOAD", "COUNTERS"]

PAGE = 4096
#: smallest memory limit allowed (pages): room for the harness's own memory and some page cache
MIN_LIMIT_PAGES = 2048
#: ``attrs['workload']`` of a memcg dataset (``calibrate``/``compare`` dispatch on it)
WORKLOAD = "memcg_rounds"
#: memory.stat counters kept per run (deltas over the window; the ones a version lacks are NaN)
COUNTERS = ("workingset_refault_file", "workingset_activate_file", "workingset_restore_file",
            "pgmajfault", "pgfault", "pgpgin", "pgpgout", "pgscan", "pgsteal", "pgscan_direct",
            "pgsteal_direct")
#: memory.stat levels kept at the end of the window (bytes), as ``end_<name>_pages``: our name
#: for each version's key
LEVELS = {1: {"cache": "cache", "active_file": "active_file", "inactive_file": "inactive_file",
              "mapped_file": "mapped"},
          2: {"file": "cache", "active_file": "active_file", "inactive_file": "inactive_file",
              "file_mapped": "mapped"}}


def _tuple(value: Any) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class MemcgConfig:
    """What to measure.

    Parameters
    ----------
    threads : ints
        Thread counts T (each thread its own file).
    limit_ratios : floats
        Memory limit / working set (working set = T x file size), each > 0.
    file_mb : int
        Size of each thread's file, MiB (the published run: 16).
    filled : bool
        Write the files (reads then come from the device) instead of leaving them sparse.
    repeats : int
        Runs per cell; means and t intervals over them.
    seconds : float
        Measured window of a run, after the warm-up.
    warmup : float
        Least warm-up (s); the warm-up also lasts until every thread completed a round.
    warmup_max : float
        Bound of the warm-up (s).
    references : bool
        Also run the unlimited and cold references per thread count (needed for the reclaim
        cost).
    noise_threads, noise_spin, noise_sleep :
        The noise variant: CPU-bound threads that spin ``noise_spin`` s and sleep ``noise_sleep``
        s per loop, nice -10, pinned with the walkers (thread i and noise thread i on CPU i mod
        ncpus), as ``ioretry_noise.c``. 0 threads: no noise, no pinning.
    memory_high : bool
        cgroup v2 only: also set ``memory.high`` = limit / 1.2 (the published script's
        MemoryHigh=1G, MemoryMax=1.2G).
    trace_reclaim : bool
        After the grid, one extra run per thread count and limit ratio below 1 under
        ``perf record`` of the memcg reclaim tracepoints (:func:`trace_reclaim`): the on-CPU time
        of each direct reclaim call per page it reclaimed.
    cgroup : {"auto", "v2", "v1"}
        Which memory controller to use.
    directory : str
        Disk-backed directory for the files (a temporary subdirectory, removed afterwards).
    budget : float
        Bound of the whole measurement (s); runs not reached are NaN and listed in
        ``attrs['skipped']``.
    max_total_mb : int
        Largest working set allowed.
    seed : int
        Shuffles the order of the runs within a repeat.
    """

    threads: tuple[int, ...] = (2, 8, 32)
    limit_ratios: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    file_mb: int = 16
    filled: bool = False
    repeats: int = 3
    seconds: float = 2.0
    warmup: float = 0.3
    warmup_max: float = 20.0
    references: bool = True
    noise_threads: int = 0
    noise_spin: float = 5e-6
    noise_sleep: float = 50e-6
    memory_high: bool = False
    trace_reclaim: bool = False
    cgroup: str = "auto"
    directory: str = "."
    budget: float = 300.0
    max_total_mb: int = 4096
    seed: int = 1

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        errors = []
        threads = _tuple(self.threads)
        if not threads or any(isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 1024
                              for t in threads):
            errors.append(f"threads={self.threads!r} is not allowed: one or more integers in "
                          "[1, 1024]")
        set_("threads", tuple(sorted(set(threads))) if not errors else threads)
        ratios = _tuple(self.limit_ratios)
        if not ratios or any(isinstance(r, bool) or not isinstance(r, (int, float)) or
                             not (0 < r <= 100 and math.isfinite(r)) for r in ratios):
            errors.append(f"limit_ratios={self.limit_ratios!r} is not allowed: one or more "
                          "numbers in (0, 100] (limit / working set)")
        else:
            set_("limit_ratios", tuple(sorted({float(r) for r in ratios})))
        for name, low, high in (("file_mb", 1, 1024), ("repeats", 1, 100),
                                ("noise_threads", 0, 1024), ("max_total_mb", 1, 1 << 20),
                                ("seed", 0, 2**40)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                errors.append(f"{name}={value!r} is not allowed: an integer in [{low}, {high}]")
        for name, low, high in (("seconds", 0.05, 600), ("warmup", 0, 600),
                                ("warmup_max", 0, 600), ("noise_spin", 0, 0.1),
                                ("noise_sleep", 0, 0.999), ("budget", 1, 86400)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not low <= value <= high:
                errors.append(f"{name}={value!r} is not allowed: seconds in [{low:g}, {high:g}]")
        for name in ("filled", "references", "memory_high", "trace_reclaim"):
            if not isinstance(getattr(self, name), bool):
                errors.append(f"{name}={getattr(self, name)!r} is not allowed: True or False")
        if self.cgroup not in ("auto", "v2", "v1"):
            errors.append(f"cgroup={self.cgroup!r} is not allowed: 'auto', 'v2' or 'v1'")
        if not errors and max(self.threads) * self.file_mb > self.max_total_mb:
            errors.append(f"file_mb={self.file_mb} is not allowed with threads up to "
                          f"{max(self.threads)}: a working set of "
                          f"{max(self.threads) * self.file_mb} MiB, more than "
                          f"max_total_mb={self.max_total_mb}")
        if not errors:
            least = min(self.limit_pages(t, r) for t in self.threads for r in self.limit_ratios)
            if least < MIN_LIMIT_PAGES:
                errors.append(f"limit_ratios={self.limit_ratios} is not allowed with threads "
                              f"{self.threads} and file_mb={self.file_mb}: the smallest limit is "
                              f"{least} pages, under {MIN_LIMIT_PAGES} pages "
                              f"({MIN_LIMIT_PAGES * PAGE >> 20} MiB), where the harness's own "
                              "memory (thread stacks, page tables) would leave no room for the "
                              "page cache and the memcg OOM killer would end the run")
        if errors:
            raise ValueError(errors[0] if len(errors) == 1 else
                             f"{len(errors)} problems: " + "; ".join(errors))

    @property
    def file_pages(self) -> int:
        return self.file_mb * (1 << 20) // PAGE

    def limit_pages(self, threads: int, ratio: float) -> int:
        """The cgroup limit of a cell, in 4 KiB pages (rounded down to whole pages)."""
        return int(ratio * threads * self.file_pages)

    def runs(self) -> list[tuple[int, str, float]]:
        """Every (threads, kind, ratio) of one repeat; kind "limit", "unlimited" or "cold"."""
        out = [(t, "limit", r) for t, r in itertools.product(self.threads, self.limit_ratios)]
        if self.references:
            out += [(t, kind, math.inf) for t in self.threads for kind in ("unlimited", "cold")]
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemcgConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"{sorted(unknown)} not allowed: MemcgConfig fields are "
                             f"{sorted(fields)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# -- one run ---------------------------------------------------------------------------------

def parse_rounds(text: str) -> dict[str, Any]:
    """The harness's ``rounds`` output: ``{'start': snapshot, 'end': snapshot, 'run': record}``.

    Raises HarnessError on an error record, ValueError on anything else unexpected."""
    out: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"harness output line {number} is not JSON: {line[:80]!r}") from None
        kind = record.get("type")
        if kind == "error":
            raise HarnessError(record.get("message", "harness error"))
        if kind == "snapshot":
            out[record["name"]] = record
        elif kind == "rounds":
            out["run"] = record
        else:
            raise ValueError(f"harness output line {number}: unknown record type {kind!r}")
    missing = {"start", "end", "run"} - set(out)
    if missing:
        raise ValueError(f"harness output lacks {sorted(missing)}")
    return out


def _delta(a: Mapping[str, Any], b: Mapping[str, Any], key: str) -> float:
    return float(b[key]) - float(a[key]) if key in a and key in b else math.nan


def run_metrics(parsed: Mapping[str, Any], *, file_pages: int, version: int) -> dict[str, float]:
    """Metrics of one run from its two snapshots.

    Rates are per second of the window; ``*_per_page`` per page walked, ``*_per_round`` per
    completed round. ``pages_read`` are the pages brought into the page cache: in a steady
    state every one of them was reclaimed before (the files never shrink and were read once in
    the warm-up), so ``workingset_refault_file`` counts them, in pages, on both versions
    (v1's ``pgpgin`` counts folios); ``pages_reclaimed`` is v2's ``pgsteal`` and, on v1, which
    has no such counter, the refaults too (in and out balance in a steady state; the cache
    level's change over the window is in ``cache_change_pages``). ``cpu_user`` and ``cpu_system``
    are the walkers' (the noise threads' CPU, ``cpu_noise``, is taken off).
    """
    a, b, run = parsed["start"], parsed["end"], parsed["run"]
    window = _delta(a, b, "t_ns") * 1e-9
    pages = float(sum(b["pages"]) - sum(a["pages"]))
    rounds_each = np.array(b["rounds"], float) - np.array(a["rounds"], float)
    rounds = float(rounds_each.sum())
    user = _delta(a, b, "utime_ns") * 1e-9
    system = _delta(a, b, "stime_ns") * 1e-9
    noise_cpu = 0.0
    if run["noise_threads"]:
        # getrusage(RUSAGE_SELF) counts the noise threads too: their CPU clocks are read apart
        # and taken off (all of it off user time, where their spin runs; their nanosleep's
        # kernel time is a small part)
        noise_cpu = float(sum(b["noise_cpu_ns"]) - sum(a["noise_cpu_ns"])) * 1e-9
        user = user - noise_cpu
    sa, sb = a.get("memory.stat", {}), b.get("memory.stat", {})
    m: dict[str, float] = {
        "window": window, "pages_walked": pages, "rounds": rounds,
        "round_rate": rounds / window, "page_rate": pages / window,
        "round_rate_per_thread_min": float(rounds_each.min()) / window,
        "round_rate_per_thread_max": float(rounds_each.max()) / window,
        "cpu_user": user, "cpu_system": system, "cpu_utilisation": (user + system) / window,
        "cpu_noise": noise_cpu,
        "majflt": _delta(a, b, "majflt"), "minflt": _delta(a, b, "minflt"),
        "nvcsw": _delta(a, b, "nvcsw"), "nivcsw": _delta(a, b, "nivcsw"),
        "evict_cpu_per_round": run["evict_cpu_ns"] * 1e-9 / max(run["unmapped_rounds"], 1)
        if run["evict"] else 0.0,
        "munmap_cpu_per_round": run["munmap_cpu_ns"] * 1e-9 / max(run["unmapped_rounds"], 1),
        "mmap_cpu_per_round": run["mmap_cpu_ns"] * 1e-9 / max(run["unmapped_rounds"], 1),
    }
    for key in COUNTERS:
        m[key] = _delta(sa, sb, key)
    cache_key = "cache" if version == 1 else "file"
    for key, name in LEVELS[version].items():
        m[f"end_{name}_pages"] = float(sb.get(key, math.nan)) / PAGE
    m["cache_change_pages"] = _delta(sa, sb, cache_key) / PAGE
    m["pages_read"] = m["workingset_refault_file"]
    m["pages_reclaimed"] = m["pgsteal"] if version == 2 else m["workingset_refault_file"]
    if run["evict"]:            # the cold reference reads every page it walks, each round
        m["pages_read"] = pages
        m["pages_reclaimed"] = 0.0           # dropped by fadvise, not reclaimed
    per_page = ("cpu_user", "cpu_system", "majflt", "minflt", "pages_read", "pages_reclaimed",
                "workingset_refault_file", "workingset_activate_file", "pgmajfault", "pgfault",
                "pgpgin", "pgscan", "pgsteal")
    for key in per_page:
        m[f"{key}_per_page"] = m[key] / pages if pages else math.nan
    for key in ("majflt", "minflt", "pages_read", "pages_reclaimed", "workingset_refault_file",
                "cpu_user", "cpu_system", "nvcsw", "nivcsw"):
        m[f"{key}_per_round"] = m[key] / rounds if rounds else math.nan
    m["cpu_per_page"] = (user + system) / pages if pages else math.nan
    m["pages_read_per_majflt"] = m["pages_read"] / m["majflt"] if m["majflt"] else math.nan
    m["round_time"] = len(rounds_each) / m["round_rate"] if rounds else math.nan
    cpu = user + system
    m["round_rate_per_cpu"] = rounds / cpu if cpu > 0 else math.nan
    m["page_rate_per_cpu"] = pages / cpu if cpu > 0 else math.nan
    ticks_a, ticks_b = a.get("proc_stat_cpu", []), b.get("proc_stat_cpu", [])
    if len(ticks_a) >= 8 and len(ticks_b) >= 8:
        busy, steal = busy_seconds(ticks_a, ticks_b)          # all but idle and iowait
        m["machine_busy_cpus"] = busy / window
        m["other_busy_cpus"] = max(busy - cpu - noise_cpu, 0.0) / window
        m["steal_cpus"] = steal / window
    if run["noise_threads"]:
        loops = float(sum(b["noise_loops"]) - sum(a["noise_loops"]))
        ncpu = noise_cpu
        m["noise_loop_rate"] = loops / window
        m["noise_cpu_per_loop"] = ncpu / loops if loops else math.nan
        m["noise_cpu_utilisation"] = ncpu / window
        m["noise_priority"] = float(run["noise_priority"])
    m["file_pages"] = float(file_pages)
    return m


class _Runner:
    """The harness binary and a private directory for the files; removed on exit."""

    def __init__(self, directory: str) -> None:
        check_disk_backed(directory)
        self.binary = build_harness()
        self.tmp = Path(tempfile.mkdtemp(prefix="faultlock-memcg-", dir=directory))

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, config: MemcgConfig, threads: int, kind: str, limit_pages: int | None,
            controller, prefix: list[str] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        limit = None if limit_pages is None else limit_pages * PAGE
        high = int(limit / 1.2) if (limit is not None and config.memory_high) else None
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=self.tmp))
        try:
            with MemoryCgroup(controller, limit_bytes=limit, high_bytes=high) as cg:
                args = [*(prefix or []), str(self.binary), "rounds", "--dir", str(workdir),
                        "--threads", str(threads), "--file-pages", str(config.file_pages),
                        "--filled", str(int(config.filled)), "--evict", str(int(kind == "cold")),
                        "--seconds", repr(config.seconds), "--warmup", repr(config.warmup),
                        "--warmup-max", repr(config.warmup_max),
                        "--noise-threads", str(config.noise_threads),
                        "--noise-spin-ns", str(int(config.noise_spin * 1e9)),
                        "--noise-sleep-ns", str(int(config.noise_sleep * 1e9)),
                        "--cgroup-procs", str(cg.procs), "--stat-files", ",".join(cg.stat_files)]
                timeout = config.warmup_max + config.seconds + 120
                try:
                    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
                except subprocess.TimeoutExpired:
                    raise HarnessError(f"harness rounds did not finish within {timeout:.0f} s"
                                       ) from None
                if proc.returncode < 0:
                    oom = cg.read("memory.oom_control") if cg.version == 1 else \
                        cg.read("memory.events")
                    raise HarnessError(
                        f"harness rounds (T={threads}, limit {limit_pages} pages) was killed by "
                        f"signal {-proc.returncode}; the cgroup says: "
                        f"{' '.join(oom.split())[:200]} (a limit too small for the harness's "
                        "own memory makes the memcg OOM killer kill it)")
                parsed = parse_rounds(proc.stdout)
                if proc.returncode != 0:
                    raise HarnessError(f"harness rounds exited with {proc.returncode}: "
                                       f"{proc.stderr.strip()[-300:]}")
                m = run_metrics(parsed, file_pages=config.file_pages, version=cg.version)
                m["peak_pages"] = cg.peak_bytes() / PAGE if cg.peak_bytes() >= 0 else math.nan
                m["limit_hits"] = float(cg.limit_hits())
                m["limit_pages"] = float(limit_pages) if limit_pages is not None else math.inf
                events = parse_flat_keyed(cg.read("memory.events")) if cg.version == 2 else {}
                for key in ("high", "max", "oom", "oom_kill"):
                    m[f"events_{key}"] = float(events.get(key, math.nan))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        m["loadavg"] = float(Path("/proc/loadavg").read_text().split()[0])
        return m, parsed["run"]


def measure_memcg(config: MemcgConfig | Mapping[str, Any] | None = None, *,
                  progress: bool = False, command: str | None = None) -> xr.Dataset:
    """Measure every cell of ``config`` (see the module docstring).

    Raises
    ------
    faultlock.measure.cgroup.CgroupUnavailable
        No memory cgroup can be used here (the CLI exits 2 with its one line).
    ValueError
        A bad config or directory.
    faultlock.measure.parse.HarnessError
        The harness failed.
    """
    if config is None:
        config = MemcgConfig()
    elif isinstance(config, Mapping):
        config = MemcgConfig.from_dict(config)
    controller = find_memory_controller(config.cgroup)
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    started = time.monotonic()
    info = system_info(config.directory)
    rng = random.Random(config.seed)
    results: dict[tuple[int, str, float, int], dict[str, float]] = {}
    skipped: list[str] = []
    priority = ""
    runner = _Runner(config.directory)
    try:
        for r in range(config.repeats):
            order = config.runs()
            rng.shuffle(order)
            for threads, kind, ratio in order:
                label = f"T={threads} " + (f"limit {ratio:g} x working set" if kind == "limit"
                                           else kind)
                if time.monotonic() - started > config.budget:
                    skipped.append(f"{label} repeat {r}")
                    continue
                limit = config.limit_pages(threads, ratio) if kind == "limit" else None
                m, run = runner.run(config, threads, kind, limit, controller)
                results[(threads, kind, ratio, r)] = m
                priority = run.get("noise_priority", priority)
                say(f"repeat {r} {label}: {m['round_rate']:.1f} rounds/s, "
                    f"{m['pages_read_per_page']:.2f} pages read and "
                    f"{m['majflt_per_page'] * 1e3:.2f} major faults per 1000 pages walked, "
                    f"CPU {m['cpu_per_page'] * 1e6:.2f} µs per page")
        traced = {}
        if config.trace_reclaim:
            for threads, ratio in itertools.product(config.threads, config.limit_ratios):
                if ratio >= 1:
                    continue
                if time.monotonic() - started > config.budget:
                    skipped.append(f"T={threads} limit {ratio:g} traced run")
                    continue
                traced[(threads, ratio)] = trace_reclaim(config, threads=threads,
                                                         limit_ratio=ratio,
                                                         controller=controller)
                t = traced[(threads, ratio)]
                say(f"traced T={threads} limit {ratio:g}: {t['calls']} reclaim calls, "
                    f"{t['cpu_per_page'] * 1e6:.2f} µs CPU per page reclaimed (median per call "
                    f"{t['cpu_per_page_median'] * 1e6:.2f} µs)")
    finally:
        runner.close()
    ds = _assemble(config, results)
    if config.trace_reclaim:
        shape = (len(config.threads), len(config.limit_ratios))
        for key, long_name in (
                ("cpu_per_page", "traced on-CPU time in try_to_free_mem_cgroup_pages per page "
                                 "reclaimed (sum over calls / sum of pages)"),
                ("cpu_per_page_median", "median over reclaim calls of on-CPU time / pages"),
                ("pages_per_call_median", "median pages reclaimed per reclaim call"),
                ("calls", "direct memcg reclaim calls in the traced run"),
                ("wall", "summed wall time of the reclaim calls (incl. time switched out)"),
                ("cpu", "summed on-CPU time of the reclaim calls"),
                ("lost_events", "events perf lost")):
            values = np.full(shape, np.nan)
            for (t, r), out in traced.items():
                values[config.threads.index(t), config.limit_ratios.index(r)] = out[key]
            ds[f"traced_reclaim_{key}"] = (("threads", "limit_ratio"), values,
                                           {"long_name": long_name, "source": "perf record, "
                                            "one extra run"})
    estimate: dict[str, Any] = {}
    if config.references:
        estimate = reclaim_cost(ds)
        ds["reclaim_cpu_per_page_runs"] = estimate.pop("runs")
    info_end = system_info(config.directory)
    ds.attrs.update({
        "title": "faultlock measurement of the memcg refault loop (mainline kernel)",
        "workload": WORKLOAD,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "faultlock_version": __version__,
        "harness_sha256": hashlib.sha256(harness_source().encode()).hexdigest(),
        "command": command or "faultlock.measure.memcg.measure_memcg(config)",
        "config": config.to_json(),
        **{k: (v if isinstance(v, (str, int, float)) else str(v)) for k, v in info.items()},
        "hostname": os.uname().nodename,
        "cgroup_version": controller.version,
        "cgroup_parent": str(controller.parent),
        "memory_limit_file": "memory.max" if controller.version == 2 else
                             "memory.limit_in_bytes",
        "memory_high_set": int(config.memory_high),
        "reclaim_tracepoints": " ".join(RECLAIM_TRACEPOINTS) if config.trace_reclaim else "",
        "pages_reclaimed_source": "memory.stat pgsteal" if controller.version == 2 else
                                  "memory.stat workingset_refault_file (v1 has no pgsteal; in a "
                                  "steady state the pages read in equal those reclaimed)",
        "file_pages": config.file_pages,
        "files": "written (read from the device)" if config.filled else
                 "sparse (ftruncate, never written: every read is a hole, zero-filled)",
        "noise_priority": priority if config.noise_threads else "",
        "loadavg_start": info["loadavg"],
        "loadavg_end": info_end["loadavg"],
        "skipped": "; ".join(skipped),
        "elapsed": time.monotonic() - started,
        **{f"reclaim_cpu_time_{k}": v for k, v in estimate.items()
           if isinstance(v, (int, float, str))},
    })
    return ds


def _assemble(config: MemcgConfig, results) -> xr.Dataset:
    T, L, R = config.threads, config.limit_ratios, config.repeats
    names = sorted({k for m in results.values() for k in m})
    coords = {"threads": ("threads", list(T), {"long_name": "walker threads (one file each)"}),
              "limit_ratio": ("limit_ratio", list(L),
                              {"long_name": "memory limit / working set (threads x file size)"}),
              "repeat": np.arange(R)}
    data: dict[str, Any] = {}
    for name in names:
        grid = np.full((len(T), len(L), R), np.nan)
        refs = {kind: np.full((len(T), R), np.nan) for kind in ("unlimited", "cold")}
        for (t, kind, ratio, r), m in results.items():
            value = m.get(name, np.nan)
            if kind == "limit":
                grid[T.index(t), L.index(ratio), r] = value
            else:
                refs[kind][T.index(t), r] = value
        attrs = {"units": _units(name)}
        data[name + "_runs"] = (("threads", "limit_ratio", "repeat"), grid, attrs)
        mean, half = t_interval(grid, axis=-1)
        data[name] = (("threads", "limit_ratio"), mean, attrs)
        data[name + "_ci"] = (("threads", "limit_ratio"), half,
                              {**attrs, "long_name": f"95% t half-width over repeats of {name}"})
        if config.references:
            for kind, values in refs.items():
                data[f"{kind}_{name}_runs"] = (("threads", "repeat"), values, attrs)
    return xr.Dataset(data, coords=coords)


def _units(name: str) -> str:
    if "rate" in name and "per" not in name:
        return "1/s"
    if name.startswith(("cpu", "window", "round_time")) or "cpu" in name:
        return "s"
    if name.endswith("_pages") or name in ("pages_walked",):
        return "pages"
    return "1"


def t_interval(values: np.ndarray, axis: int = -1, level: float = 0.95
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Student-t half-width over ``axis``, NaNs ignored (one value: half-width NaN)."""
    from scipy import stats
    values = np.asarray(values, float)
    n = np.sum(np.isfinite(values), axis=axis)
    with np.errstate(all="ignore"), quiet_nan_warnings():
        mean = np.nanmean(values, axis=axis)
        sd = np.nanstd(values, axis=axis, ddof=1)
        q = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
        half = np.where(n >= 2, q * sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, half


# -- the reclaim cost --------------------------------------------------------------------------

#: least pages reclaimed per page walked for a run to enter the reclaim-cost estimate
MIN_RECLAIM_PER_PAGE = 0.2


def reclaim_cost(ds: xr.Dataset, *, min_reclaim_per_page: float = MIN_RECLAIM_PER_PAGE
                 ) -> dict[str, Any]:
    """CPU of direct reclaim per page reclaimed, from the limited runs and the references.

    Every page walked under a limit costs the CPU of a warm touch (``w``, from the unlimited
    reference: a minor fault or none, the loop, munmap's share), every page read costs the
    allocation, the hole's zero-fill and the page-cache insertion (``f``, from the cold
    reference: its CPU less the ``posix_fadvise`` CPU measured apart, less ``w``, per page, since
    it reads every page it walks), and every page reclaimed costs ``c``::

        CPU = w * walked + f * read + c * reclaimed
        c   = (CPU - w * walked - f * read) / reclaimed

    (``mm/vmscan.c: try_to_free_mem_cgroup_pages`` -> ``shrink_lruvec``: isolating folios from
    the LRU lists, ``shrink_folio_list``, unmapping mapped ones, ``__remove_mapping`` and the
    workingset shadow.) Each limited run is paired with the references of the same thread count
    and repeat; runs that reclaim fewer than ``min_reclaim_per_page`` pages per page walked are
    left out (the difference of two CPU totals would be noise). The pooled estimate is the mean
    over the runs kept, with a Student t interval over them (their spread includes the
    differences between cells, so it is conservative).

    Returns
    -------
    dict
        ``value`` (s per page reclaimed), ``ci`` (95 % half-width), ``n`` (runs), ``by_threads``
        (JSON: mean per thread count), ``hole_page_cpu`` and ``warm_page_cpu`` (``f`` and ``w``
        means), ``method`` (text) and ``runs`` (a DataArray of the per-run estimates).
    """
    need = ("cpu_user_runs", "cpu_system_runs", "pages_walked_runs", "pages_read_runs",
            "pages_reclaimed_runs", "unlimited_cpu_user_runs", "cold_cpu_user_runs")
    missing = [n for n in need if n not in ds]
    if missing:
        raise ValueError(f"the dataset cannot give the reclaim cost: it lacks {missing} (measure "
                         "with the references)")

    def cpu(prefix: str) -> xr.DataArray:
        return ds[f"{prefix}cpu_user_runs"] + ds[f"{prefix}cpu_system_runs"]

    warm = cpu("unlimited_") / ds["unlimited_pages_walked_runs"]
    cold_walked = ds["cold_pages_walked_runs"]
    cold_evict = ds["cold_evict_cpu_per_round_runs"] * ds["cold_rounds_runs"]
    fill = (cpu("cold_") - cold_evict) / cold_walked - warm
    walked, read = ds["pages_walked_runs"], ds["pages_read_runs"]
    reclaimed = ds["pages_reclaimed_runs"]
    c = (cpu("") - warm * walked - fill * read) / reclaimed
    c = c.where(reclaimed / walked >= min_reclaim_per_page)
    c.attrs = {"units": "s", "long_name": "direct reclaim CPU per page reclaimed (per run)"}
    values = c.values[np.isfinite(c.values)]
    mean, half = t_interval(values, axis=0)
    by_threads = {int(t): float(np.nanmean(c.sel(threads=t).values))
                  if np.isfinite(c.sel(threads=t).values).any() else None
                  for t in ds["threads"].values}
    return {
        "value": float(mean), "ci": float(half), "n": int(values.size),
        "by_threads": json.dumps(by_threads),
        "hole_page_cpu": float(np.nanmean(fill.values)),
        "hole_page_cpu_ci": float(t_interval(fill.values.ravel(), axis=0)[1]),
        "warm_page_cpu": float(np.nanmean(warm.values)),
        "method": ("c = (CPU - w*walked - f*read)/reclaimed per limited run with >= "
                   f"{min_reclaim_per_page:g} pages reclaimed per page walked; w = unlimited "
                   "reference CPU per page walked; f = cold reference (posix_fadvise DONTNEED "
                   "after each round, its CPU removed) CPU per page less w; CPU = utime+stime of "
                   "the process; t interval over runs"),
        "runs": c,
    }


# -- the reclaim cost, traced ------------------------------------------------------------------

RECLAIM_TRACEPOINTS = ("vmscan:mm_vmscan_memcg_reclaim_begin", "vmscan:mm_vmscan_memcg_reclaim_end",
                       "sched:sched_switch")


def reclaim_calls(events, *, pid: int) -> dict[str, Any]:
    """Direct memcg reclaim calls of process ``pid`` from ``perf script`` events
    (:func:`faultlock.measure.tracing.parse_perf_script`).

    A call is ``mm_vmscan_memcg_reclaim_begin`` .. ``_end`` on one thread
    (``mm/vmscan.c: try_to_free_mem_cgroup_pages``); its CPU is that interval less the spans
    its thread was switched out in between (``sched_switch`` away from and back to it), and its
    pages are the end event's ``nr_reclaimed``.

    Returns ``calls``, ``pages`` (reclaimed), ``cpu`` and ``wall`` (s, summed), ``cpu_per_page``
    (sum of CPU / sum of pages), ``cpu_per_page_median`` (median over calls of CPU / pages) and
    ``pages_per_call_median``.
    """
    open_calls: dict[int, int] = {}
    off_since: dict[int, int] = {}
    off_total: dict[int, int] = {}
    cpu, wall, pages, ratios, per_call = 0, 0, 0, [], []
    for event_pid, tid, t, name, fields in events:
        if name == "sched_switch":
            prev, nxt = int(fields.get("prev_pid", -1)), int(fields.get("next_pid", -1))
            if prev in open_calls:
                off_since[prev] = t
            if nxt in open_calls and nxt in off_since:
                off_total[nxt] = off_total.get(nxt, 0) + t - off_since.pop(nxt)
            continue
        if event_pid != pid:
            continue
        if name == "mm_vmscan_memcg_reclaim_begin":
            open_calls[tid] = t
            off_total[tid] = 0
            off_since.pop(tid, None)
        elif name == "mm_vmscan_memcg_reclaim_end" and tid in open_calls:
            begin = open_calls.pop(tid)
            on_cpu = (t - begin) - off_total.pop(tid, 0)
            n = int(fields.get("nr_reclaimed", 0))
            wall += t - begin
            cpu += on_cpu
            pages += n
            per_call.append(n)
            if n:
                ratios.append(on_cpu / n)
    return {"calls": len(per_call), "pages": pages, "cpu": cpu * 1e-9, "wall": wall * 1e-9,
            "cpu_per_page": cpu * 1e-9 / pages if pages else math.nan,
            "cpu_per_page_median": float(np.median(ratios)) * 1e-9 if ratios else math.nan,
            "pages_per_call_median": float(np.median(per_call)) if per_call else math.nan}


def trace_reclaim(config: MemcgConfig | Mapping[str, Any], *, threads: int, limit_ratio: float,
                  controller=None) -> dict[str, Any]:
    """One limited run under ``perf record`` of the memcg reclaim tracepoints and of the
    scheduler's switches: the on-CPU time of every direct reclaim call per page it reclaimed, an
    estimate of ``reclaim_cpu_time`` that needs no references (a cross-check of
    :func:`reclaim_cost`). The tracepoints cost some CPU of their own (two events per call of
    ~32 pages, and a switch event per context switch).

    Raises ValueError when perf cannot record here.
    """
    from . import tracing
    if isinstance(config, Mapping):
        config = MemcgConfig.from_dict(config)
    controller = controller or find_memory_controller(config.cgroup)
    perf = shutil.which("perf")
    if perf is None:
        raise ValueError("trace_reclaim needs perf on PATH")
    runner = _Runner(config.directory)
    try:
        data = runner.tmp / "reclaim.data"
        prefix = [perf, "record", "-q", "-k", "CLOCK_MONOTONIC", "-m", "1024", "-a",
                  "-o", str(data)]
        for tp in RECLAIM_TRACEPOINTS:
            prefix += ["-e", tp]
        m, run = runner.run(config, threads, "limit", config.limit_pages(threads, limit_ratio),
                            controller, prefix=[*prefix, "--"])
        text, lost = tracing.perf_script(data)
        calls = reclaim_calls(tracing.parse_perf_script(text), pid=int(run["pid"]))
    finally:
        runner.close()
    calls.update({"threads": threads, "limit_ratio": limit_ratio, "lost_events": lost,
                  "pages_reclaimed_memory_stat": m["pages_reclaimed"],
                  "round_rate": m["round_rate"], "window": m["window"]})
    return calls
