"""``measure(config) -> xarray.Dataset``: run every cell of a :class:`MeasureConfig` on this
machine, repeated, and report medians with their spread under the metric names of ``MODEL.md``.

Layout of the dataset
---------------------
dims
    ``config`` (one per cell; coordinates ``threads``, ``group``, ``writer_*``, ``label``),
    ``repeat``, ``io_depth`` (O_DIRECT queue depths) and ``wait_bin`` (decade bins of lock waits).
``<metric>(config)``
    median over repeats; ``<metric>_lo`` / ``<metric>_hi``: minimum and maximum over repeats;
    ``<metric>_runs(config, repeat)``: every repeat.
``mmap_*`` lock metrics
    from one extra perf-recorded run per cell (``trace``), NaN where tracing was skipped.
``device_*(io_depth)``
    O_DIRECT read latency per depth, median over repeats, with ``_lo``/``_hi``.
attrs
    kernel, device, ``read_ahead_kb``, file system, CPUs, the config (JSON), the classification
    rule, what tracing did or skipped and why, caveats and cells skipped for the budget.

Repeats are interleaved (repeat r of every cell, in a shuffled order, before repeat r+1), so slow
drift and other tenants' load spread over the cells instead of biasing one of them. A run during
which other tenants used more than ``max_other_cpus`` is repeated (``reruns_runs``,
``other_busy_cpus_runs``, ``loadavg_runs``). The traced runs come first, so that a budget cut
drops the last repeats rather than the traces.

Every run's whole distribution is kept: ``fault_latency_hist_runs(config, repeat, latency_bin)``
and ``writer_op_latency_hist_runs`` (integer counts, 100 log-spaced bins per decade from 1 µs to
1 s); :func:`faultlock.measure.tails.add_tails` adds the pooled quantiles
``fault_latency_p{50,90,99}_pooled`` with cluster-bootstrap intervals (``_ci_lo``/``_ci_hi``) and
the lock effects ``lock_effect_p*`` (in-process writer minus its other-process control).
"""

from __future__ import annotations

import datetime
import hashlib
import random
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from .. import __version__
from . import parse, tails, tracing
from .build import harness_source
from .config import MeasureConfig
from .runner import Harness
from .system import system_info

__all__ = ["measure", "CAVEATS", "UNITS"]

CAVEATS = (
    "CPU contention: the readers, the writers and the kernel's I/O completion share the machine's "
    "CPUs (2 vCPUs here); above 2 runnable threads fault latency includes run-queue waits.",
    "Host noise: on a VM the device latency and the vCPUs depend on other guests and on the host's "
    "cache of the virtual disk; other engineers' jobs on the same 2 cores add load during runs "
    "(see attrs['loadavg_start'] and ['loadavg_end']).",
    "A waiter is a minor fault that slept or took >= waiter_threshold without being preempted: "
    "the kernel accounts a waiter whose retry hit a still-locked folio as major.",
    "Writer latency is the syscall's time (mmap+munmap or mprotect), an upper bound on the time "
    "the "
    "write lock is held; perf-traced holds are in mmap_write_hold_*.",
    "The traced run (perf record) is slower than the untraced ones; only its lock counts and waits "
    "are reported.",
)

UNITS = {
    "latency": "s", "time": "s", "overhead": "s", "rate": "1/s", "share": "1", "per_fault": "1",
    "iops": "1/s", "cv": "1", "reads": "1", "touches": "1", "faults": "1", "acquisitions": "1",
}


def _units(name: str) -> str:
    if name.startswith(("fault_latency", "mmap_read_wait", "mmap_write_wait", "mmap_write_hold",
                        "fault_runqueue_delay")):
        return "s" if not name.endswith("hist") else "1"
    for key, unit in UNITS.items():
        if key in name:
            return unit
    return "1"


def measure(config: MeasureConfig | Mapping[str, Any] | None = None, *,
            progress: bool = False, command: str | None = None) -> xr.Dataset:
    """Measure every cell of ``config`` on this machine.

    Parameters
    ----------
    config : MeasureConfig or mapping
        What to measure (default: ``MeasureConfig()``).
    progress : bool
        Print one line per harness run to stderr.
    command : str, optional
        The command line that made this measurement, kept in ``attrs['command']``.

    Returns
    -------
    xarray.Dataset
        See the module docstring.

    Raises
    ------
    ValueError
        Bad config, or the directory is on tmpfs.
    faultlock.measure.build.HarnessBuildError
        No C compiler.
    faultlock.measure.parse.HarnessError
        The harness failed (e.g. the file could not be evicted).
    """
    if config is None:
        config = MeasureConfig()
    elif isinstance(config, Mapping):
        config = MeasureConfig.from_dict(config)
    started = time.monotonic()
    cells = config.cells()
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)

    if config.trace == "off":
        trace_ok, trace_why = False, "tracing off (trace='off')"
    else:
        trace_ok, trace_why = tracing.perf_status()
        if config.trace == "on" and not trace_ok:
            raise ValueError(f"trace='on' is not allowed here: {trace_why}")
        if trace_ok:
            trace_why += "; " + tracing.sched_status()[1]

    info = system_info(config.directory)
    runs: dict[tuple[int, int], dict[str, float]] = {}
    hists: dict[int, dict[str, np.ndarray]] = {}
    locks: dict[int, dict[str, float]] = {}
    device_runs: list[dict[int, dict[str, float]]] = []
    wake_runs: list[dict[str, float]] = []
    skipped: list[str] = []
    noisy: list[str] = []
    run_hists: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    file_record: dict[str, Any] = {}
    rng = random.Random(config.seed)
    think_ns = int(round(config.think_time * 1e9))

    def over_budget() -> bool:
        return time.monotonic() - started > config.budget

    def calm_run(harness: Harness, cell, what: str, **kwargs) -> tuple[dict, dict, int]:
        """One harness run, repeated while other tenants used more than max_other_cpus."""
        attempt = 0
        while True:
            parsed = harness.faults(cell, pages=config.pages, order=config.order,
                                    think_ns=think_ns, max_seconds=config.max_seconds, **kwargs)
            noise = parsed["noise"]
            calm = not noise["other_busy_cpus"] > config.max_other_cpus
            if calm or attempt >= config.max_reruns or over_budget():
                break
            attempt += 1
            say(f"{what} {cell.label}: others used {noise['other_busy_cpus']:.2f} CPUs "
                f"(> {config.max_other_cpus:g}); rerun {attempt}")
        if not calm:
            noisy.append(f"{cell.label} {what}")
        return parsed, noise, attempt

    with Harness(config.directory, pages=config.file_pages(), seed=config.seed) as harness:
        file_record = dict(harness.file_record or {})
        # the traced runs first: a budget cut then drops the last repeats, not the traces
        for i, cell in enumerate(cells if trace_ok else []):
            if over_budget():
                skipped.append(f"{cell.label} traced run")
                continue
            parsed, noise, attempt = calm_run(harness, cell, "traced", seed=config.seed,
                                              minor_pass=False, trace=True)
            lk = parsed["locks"]
            hists[i] = {k: lk.pop(k) for k in ("mmap_read_wait_hist", "mmap_write_wait_hist")}
            locks[i] = {**lk, "trace_other_busy_cpus": noise["other_busy_cpus"],
                        "trace_reruns": float(attempt)}
            say(f"traced {cell.label}: {lk['mmap_read_per_fault']:.2f} reads/fault, "
                f"read wait {lk['mmap_read_wait_mean'] * 1e6:.1f} µs, run-queue delay p99 "
                f"{lk.get('runqueue_delay_p99', np.nan) * 1e6:.0f} µs")
        for r in range(config.repeats):
            if r < config.device_repeats and over_budget():
                skipped.append(f"device curve repeat {r}")
            elif r < config.device_repeats:
                dev = harness.device(config.device_depths, config.device_seconds, seed=r + 1)
                device_runs.append(parse.device_metrics(dev["device"]))
                qd1 = device_runs[-1][config.device_depths[0]]["device_latency_mean"]
                say(f"device repeat {r}: QD1 mean {qd1 * 1e6:.1f} µs")
                wake_runs.append(parse.wakeup_metrics(harness.wakeup()))
            order = list(range(len(cells)))
            rng.shuffle(order)
            for i in order:
                cell = cells[i]
                if over_budget():
                    skipped.append(f"{cell.label} repeat {r}")
                    continue
                parsed, noise, attempt = calm_run(harness, cell, f"repeat {r}",
                                                  seed=config.seed + r)
                m = parse.fault_metrics(parsed, waiter_threshold=config.waiter_threshold,
                                        jank_threshold=config.jank_threshold,
                                        cpus=info["cpus_online"])
                m.update(parse.writer_metrics(parsed))
                m.update(parse.minor_pass_metrics(parsed))
                m.update({"other_busy_cpus": noise["other_busy_cpus"],
                          "loadavg": noise["loadavg"], "steal_cpus": noise["steal_cpus"],
                          "irq_cpus": noise.get("irq_cpus", np.nan), "reruns": float(attempt)})
                runs[(i, r)] = m
                run_hists[(i, r)] = parse.run_histograms(parsed, config.waiter_threshold)
                say(f"repeat {r} {cell.label}: p50 {m['fault_latency_p50'] * 1e6:.1f} µs, "
                    f"p99 {m['fault_latency_p99'] * 1e6:.1f} µs, "
                    f"waiters {m['waiter_share']:.2f}, others {noise['other_busy_cpus']:.2f} CPUs")

    ds = _assemble(config, cells, runs, locks, hists, device_runs, wake_runs, run_hists)
    ds.attrs.update({
        "title": "faultlock measurement of page faults that wait for I/O (mainline kernel)",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "faultlock_version": __version__,
        "harness_sha256": hashlib.sha256(harness_source().encode()).hexdigest(),
        "command": command or "faultlock.measure.measure(config)",
        "config": config.to_json(),
        **{k: (v if isinstance(v, (str, int, float)) else str(v)) for k, v in info.items()},
        "loadavg_start": info["loadavg"],
        "loadavg_end": system_info(config.directory)["loadavg"],
        "data_file_pages": int(file_record.get("pages", config.file_pages())),
        "data_file_fs_magic": file_record.get("fs_magic", ""),
        "data_file_advice": "MAP_SHARED PROT_READ, MADV_RANDOM (one 4 KiB read per major fault), "
                            "evicted with posix_fadvise(DONTNEED) and checked with mincore",
        "classification": (f"major: ru_majflt delta > 0; waiter: minor and (voluntary context "
                           f"switch or latency >= {config.waiter_threshold:g} s without "
                           "involuntary switch); minor: other minor faults; nofault: no fault"),
        "waiter_threshold": config.waiter_threshold,
        "jank_threshold": config.jank_threshold,
        "tracing": trace_why,
        "tracing_used": int(trace_ok),
        "caveats": " | ".join(CAVEATS),
        "skipped": "; ".join(skipped),
        "noise_rule": (f"a run during which other tenants used more than "
                       f"{config.max_other_cpus:g} CPUs (/proc/stat busy less our CPU) was "
                       f"repeated, up to {config.max_reruns} times; the last attempt is kept"),
        "runs_above_noise_threshold": len(noisy),
        "runs_above_noise_threshold_list": "; ".join(noisy),
        "elapsed": time.monotonic() - started,
    })
    return tails.add_tails(ds, seed=config.seed)


def _assemble(config, cells, runs, locks, hists, device_runs, wake_runs, run_hists=None
              ) -> xr.Dataset:
    n, R = len(cells), config.repeats
    coords: dict[str, Any] = {"config": np.arange(n), "repeat": np.arange(R)}
    for key in cells[0].coords():
        coords[key] = ("config", [c.coords()[key] for c in cells])
    data: dict[str, Any] = {}
    names = sorted({k for m in runs.values() for k in m})
    for name in names:
        values = np.full((n, R), np.nan)
        for (i, r), m in runs.items():
            values[i, r] = m.get(name, np.nan)
        attrs = {"units": _units(name)}
        with np.errstate(all="ignore"), quiet_nan_warnings():
            data[name] = ("config", np.nanmedian(values, axis=1), attrs)
            data[name + "_lo"] = ("config", np.nanmin(values, axis=1),
                                  {**attrs, "long_name": f"minimum over repeats of {name}"})
            data[name + "_hi"] = ("config", np.nanmax(values, axis=1),
                                  {**attrs, "long_name": f"maximum over repeats of {name}"})
        data[name + "_runs"] = (("config", "repeat"), values, attrs)
    lock_names = ["trace_faults", "mmap_read_acquisitions", "mmap_read_rate", "mmap_read_per_fault",
                  "mmap_read_wait_mean", "mmap_read_wait_p99", "mmap_read_wait_max",
                  "mmap_read_trylock_failures", "mmap_write_acquisitions", "mmap_write_wait_mean",
                  "mmap_write_wait_p99", "mmap_write_hold_mean", "mmap_write_hold_p50",
                  "mmap_write_hold_p99", "mmap_downgrades", "trace_lost_events",
                  "mmap_read_wait_p50", "mmap_read_wait_p90", *tracing.SCHED_METRICS,
                  "trace_other_busy_cpus", "trace_reruns"]
    for name in lock_names:
        values = np.array([locks.get(i, {}).get(name, np.nan) for i in range(n)])
        key = "mmap_write_rate_traced" if name == "mmap_write_rate" else name
        data[key] = ("config", values, {"units": _units(name), "source": "perf record, one run"})
    data["retries_per_fault"] = ("config", data["mmap_read_per_fault"][1],
                                 {"units": "1", "long_name": "mmap_lock read acquisitions per "
                                  "fault (in mainline every retry is one; other fallbacks "
                                  "negligible, MODEL.md traces)"})
    for name in ("mmap_read_wait_hist", "mmap_write_wait_hist"):
        values = np.full((n, len(tracing.WAIT_DECADE_EDGES)), np.nan)
        for i, h in hists.items():
            values[i] = h[name]
        data[name] = (("config", "wait_bin"), values, {"units": "1"})
    hist_values = {}
    for name in ("fault_latency_hist", "writer_op_latency_hist"):
        values = np.zeros((n, R, tails.NBINS), dtype=np.int32)
        for (i, r), h in (run_hists or {}).items():
            values[i, r] = h[name]
        hist_values[name] = values
    # only the bins from the first to the last that any run used are stored (the file stays
    # small); tails.full_bins restores the whole axis with zeros
    used = np.flatnonzero(sum(v.sum(axis=(0, 1)) for v in hist_values.values()))
    keep = slice(used[0], used[-1] + 1) if used.size else slice(0, 1)
    coords["latency_bin"] = ("latency_bin", tails.LATENCY_BIN_EDGES[keep], {
        "units": "s", "long_name": "lower edge of the log-spaced latency bin "
        f"({tails.LATENCY_BINS_PER_DECADE} per decade from 1 µs to 1 s; below 1 µs in the "
        "first, 1 s and above in the last; only the range used is stored)"})
    for name, what in (("fault_latency_hist", "faults (major, waiter and minor touches)"),
                       ("writer_op_latency_hist", "writer operations (all writers)")):
        data[name + "_runs"] = (("config", "repeat", "latency_bin"), hist_values[name][..., keep],
                                {"units": "1", "long_name": f"counts of {what} per latency bin, "
                                 "every run"})
    coords["wait_bin"] = ("wait_bin", tracing.WAIT_DECADE_EDGES,
                          {"units": "s", "long_name": "lower edge of the decade wait bin"})
    depths = list(config.device_depths)
    coords["io_depth"] = depths
    dev_names = sorted({k for d in device_runs for v in d.values() for k in v})
    for name in dev_names:
        values = np.full((len(depths), max(len(device_runs), 1)), np.nan)
        for r, d in enumerate(device_runs):
            for j, depth in enumerate(depths):
                values[j, r] = d.get(depth, {}).get(name, np.nan)
        attrs = {"units": _units(name)}
        with np.errstate(all="ignore"), quiet_nan_warnings():
            data[name] = ("io_depth", np.nanmedian(values, axis=1), attrs)
            data[name + "_lo"] = ("io_depth", np.nanmin(values, axis=1), attrs)
            data[name + "_hi"] = ("io_depth", np.nanmax(values, axis=1), attrs)
    for name in ("wakeup_latency_p50", "wakeup_latency_mean", "wakeup_latency_p90"):
        values = np.array([w.get(name, np.nan) for w in wake_runs] +
                          [np.nan] * (R - len(wake_runs)))
        with np.errstate(all="ignore"), quiet_nan_warnings():
            data[name] = ((), np.nanmedian(values), {"units": "s", "long_name": "futex wake-to-run "
                                                     "latency, median over repeats"})
            data[name + "_lo"] = ((), np.nanmin(values), {"units": "s"})
            data[name + "_hi"] = ((), np.nanmax(values), {"units": "s"})
    return xr.Dataset(data, coords=coords)


class quiet_nan_warnings:
    """Silence numpy's all-NaN warnings while taking medians of cells the budget skipped."""

    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
