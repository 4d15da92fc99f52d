"""Reading the harness's JSON lines, classifying every first touch, and the per-run metrics.

A touch is classified from its latency and the per-thread ``getrusage(RUSAGE_THREAD)`` deltas taken
around it (the harness records major and minor fault counts, and voluntary and involuntary context
switches):

``major``
    the kernel counted a major fault (the thread started the read, or retried under ``mmap_lock``
    with ``FAULT_FLAG_TRIED`` and so was accounted major, kernel.md §3.2);
``waiter``
    a minor fault that slept (a voluntary context switch), or that took at least
    ``waiter_threshold`` without being preempted: it found the folio locked under another thread's
    read (or PTE install) and waited. The kernel counts these as minor (MODEL.md, traces);
``minor``
    any other minor fault (the folio was cached and unlocked; a preempted minor fault stays minor);
``none``
    no fault: another thread of the process had already mapped the page.

Latencies are in seconds, rates per second, shares in [0, 1].
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .tails import NBINS, hist_quantile, latency_histogram

__all__ = ["HarnessError", "parse_output", "classify", "CLASS_NAMES", "NONE", "MINOR", "WAITER",
           "MAJOR", "touch_arrays", "fault_metrics", "writer_metrics", "minor_pass_metrics",
           "device_metrics", "wakeup_metrics", "run_histograms", "DEFAULT_WAITER_THRESHOLD",
           "DEFAULT_JANK_THRESHOLD"]

NONE, MINOR, WAITER, MAJOR = 0, 1, 2, 3
CLASS_NAMES = ("none", "minor", "waiter", "major")

#: a minor fault this long without being preempted waited for a folio lock. Minor faults of a
#: cached file page take 2-5 µs on a 2-vCPU virtio VM (the harness's minor pass), a device read
#: >= 40 µs, so 10 µs separates the two.
DEFAULT_WAITER_THRESHOLD = 10e-6
DEFAULT_JANK_THRESHOLD = 16.7e-3

_TOUCH_KEYS = ("lat_ns", "majflt", "minflt", "nvcsw", "nivcsw")


class HarnessError(RuntimeError):
    """The harness reported an error (its message is the exception's)."""


def parse_output(text: str | Iterable[str]) -> dict[str, Any]:
    """Group the harness's JSON lines by record type.

    Returns
    -------
    dict
        ``file``, ``run`` and ``minor_pass`` (a dict or None), ``touches``, ``writers`` and
        ``device`` (lists of dicts, numeric lists turned into numpy arrays).

    Raises
    ------
    HarnessError
        The output holds an ``error`` record.
    ValueError
        A line is not JSON, or a record has no known ``type``, or touch arrays disagree in length.
    """
    lines = text.splitlines() if isinstance(text, str) else list(text)
    out: dict[str, Any] = {"file": None, "run": None, "minor_pass": None, "wakeup": None,
                           "touches": [],
                           "writers": [], "device": []}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"harness output line {number} is not JSON ({exc}): "
                             f"{line[:120]!r}") from None
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "error":
            raise HarnessError(record.get("message", "unknown harness error"))
        for key, value in list(record.items()):
            if isinstance(value, list):
                record[key] = np.asarray(value, dtype=np.int64)
        if kind in ("file", "run", "minor_pass", "version", "wakeup"):
            out[kind] = record
        elif kind == "touches":
            lengths = {len(record[k]) for k in _TOUCH_KEYS + ("rqd_ns",) if k in record}
            if len(lengths) != 1 or lengths.pop() != record["done"]:
                raise ValueError(f"harness output line {number}: touch arrays of unequal length")
            out["touches"].append(record)
        elif kind == "writer":
            out["writers"].append(record)
        elif kind == "device":
            out["device"].append(record)
        else:
            raise ValueError(f"harness output line {number}: unknown record type {kind!r}")
    return out


def classify(lat_ns, majflt, minflt, nvcsw, nivcsw,
             waiter_threshold: float = DEFAULT_WAITER_THRESHOLD) -> np.ndarray:
    """Class code (NONE, MINOR, WAITER, MAJOR) of each touch; see the module docstring.

    All arguments are arrays of equal length (latencies in ns); ``waiter_threshold`` in seconds.
    """
    lat = np.asarray(lat_ns, dtype=np.float64) * 1e-9
    majflt, minflt = np.asarray(majflt), np.asarray(minflt)
    nvcsw, nivcsw = np.asarray(nvcsw), np.asarray(nivcsw)
    if not (lat.shape == majflt.shape == minflt.shape == nvcsw.shape == nivcsw.shape):
        raise ValueError("classify: arrays of unequal shape")
    if not waiter_threshold > 0:
        raise ValueError(f"waiter_threshold={waiter_threshold!r} is not allowed: a time (s) > 0")
    codes = np.full(lat.shape, NONE, dtype=np.int8)
    minor = (majflt == 0) & (minflt > 0)
    slow = (nvcsw > 0) | ((lat >= waiter_threshold) & (nivcsw == 0))
    codes[minor] = MINOR
    codes[minor & slow] = WAITER
    codes[majflt > 0] = MAJOR
    return codes


def touch_arrays(parsed: Mapping[str, Any], waiter_threshold: float = DEFAULT_WAITER_THRESHOLD
                 ) -> dict[str, np.ndarray]:
    """Every touch of a run, concatenated over threads: latency (s), class, thread, group,
    time since the start (s) and, from harness 4 on, ``runqueue_delay`` (s): the run delay that
    ``/proc/thread-self/schedstat`` gained across the touch, i.e. its time runnable without a CPU
    (NaN where the harness could not read it)."""
    parts = parsed["touches"]
    if not parts:
        empty = np.zeros(0)
        return {"latency": empty, "cls": empty.astype(np.int8), "thread": empty.astype(int),
                "group": empty.astype(int), "time": empty, "runqueue_delay": empty}
    cat = {k: np.concatenate([p[k] for p in parts]) for k in _TOUCH_KEYS}
    if all("rqd_ns" in p for p in parts):
        rqd = np.concatenate([p["rqd_ns"] for p in parts]).astype(np.float64)
        rqd[rqd >= 2**32 - 1] = np.nan               # the harness's "not read"
        # The reads bracket the two getrusage calls too: a wait that fell there is not in the
        # timed latency, so a touch's share of it is at most its latency (never a negative
        # "latency without the wait", never a share above 1).
        runqueue_delay = np.minimum(rqd * 1e-9, cat["lat_ns"] * 1e-9)
    else:
        runqueue_delay = np.full(cat["lat_ns"].size, np.nan)
    return {"runqueue_delay": runqueue_delay,
        "latency": cat["lat_ns"] * 1e-9,
        "cls": classify(cat["lat_ns"], cat["majflt"], cat["minflt"], cat["nvcsw"], cat["nivcsw"],
                        waiter_threshold),
        "thread": np.concatenate([np.full(p["done"], p["thread"]) for p in parts]),
        "group": np.concatenate([np.full(p["done"], p["group"]) for p in parts]),
        "time": np.concatenate([p["t_us"] * 1e-6 for p in parts]),
    }


def _q(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if values.size else np.nan


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else np.nan


def fault_metrics(parsed: Mapping[str, Any], *, waiter_threshold: float = DEFAULT_WAITER_THRESHOLD,
                  jank_threshold: float = DEFAULT_JANK_THRESHOLD, cpus: int | None = None
                  ) -> dict[str, float]:
    """Metrics of one ``faults`` run, with the names of MODEL.md where the model has them.

    Faults are the touches classified major, waiter or minor (a touch of a page another thread
    already mapped is no fault). Rates divide by the readers' wall time (barrier to last join).
    """
    run = parsed["run"]
    if run is None:
        raise ValueError("harness output has no run record")
    t = touch_arrays(parsed, waiter_threshold)
    lat, cls = t["latency"], t["cls"]
    wall = run["wall_ns"] * 1e-9
    faults = lat[cls != NONE]
    n_touch, n_fault = lat.size, faults.size
    m: dict[str, float] = {
        "fault_latency_mean": _mean(faults),
        "fault_latency_p50": _q(faults, 0.5),
        "fault_latency_p90": _q(faults, 0.9),
        "fault_latency_p99": _q(faults, 0.99),
        "fault_latency_p999": _q(faults, 0.999),
        "jank_share": float((faults > jank_threshold).mean()) if n_fault else np.nan,
        "fault_rate": n_fault / wall if wall > 0 else np.nan,
        "access_rate": n_touch / wall if wall > 0 else np.nan,
        "io_read_rate": float((cls == MAJOR).sum()) / wall if wall > 0 else np.nan,
        "major_faults_per_fault": float((cls == MAJOR).sum()) / n_fault if n_fault else np.nan,
        "walk_time": wall,
        "touches": float(n_touch),
        "faults": float(n_fault),
    }
    # The faults' own waits for a CPU (harness 4): how much of the tail is the scheduler's.
    rq = t["runqueue_delay"][cls != NONE]
    known = np.isfinite(rq)
    m["fault_runqueue_delay_mean"] = _mean(rq[known])
    m["fault_runqueue_share"] = float(rq[known].sum() / faults[known].sum()) \
        if known.any() and faults[known].sum() > 0 else np.nan
    for q in (50, 90, 99):
        m[f"fault_runqueue_delay_p{q}"] = _q(rq[known], q / 100)
        # the latency a fault would have had without its run-queue waits
        m[f"fault_latency_off_runqueue_p{q}"] = _q(faults[known] - rq[known], q / 100)
    for code, name in ((MAJOR, "major"), (WAITER, "waiter"), (MINOR, "minor"), (NONE, "nofault")):
        sel = lat[cls == code]
        m[f"{name}_share"] = sel.size / n_touch if n_touch else np.nan
        if code != NONE:
            m[f"{name}_latency_mean"] = _mean(sel)
            for q in (50, 90, 99):
                m[f"{name}_latency_p{q}"] = _q(sel, q / 100)
    overheads, cpu = [], 0.0
    for part in parsed["touches"]:
        if part["done"]:
            overheads.append((part["walk_ns"] - part["lat_ns"].sum()) / part["done"] * 1e-9)
        cpu += part["cpu_ns"] * 1e-9
    m["touch_overhead"] = float(np.median(overheads)) if overheads else np.nan
    ncpu = cpus or run.get("ncpus_online") or 1
    m["reader_cpu_share"] = cpu / (wall * ncpu) if wall > 0 else np.nan
    m["timed_out"] = float(bool(run.get("timed_out")))
    return m


def writer_metrics(parsed: Mapping[str, Any]) -> dict[str, float]:
    """Writer operation rate and latency. ``mmap_write_rate`` counts write acquisitions of *this*
    process's ``mmap_lock`` (zero when the writers run in the separate control process).
    ``writer_latency_mean`` is the mean operation time divided by the write acquisitions per
    operation: an upper bound on the model's per-acquisition writer latency (it includes the
    syscalls' work outside the lock)."""
    writers = parsed["writers"]
    nan = np.nan
    m = {"writer_ops_rate": 0.0, "mmap_write_rate": 0.0, "writer_op_latency_mean": nan,
         "writer_op_latency_p50": nan, "writer_op_latency_p90": nan, "writer_op_latency_p99": nan,
         "writer_latency_mean": nan, "writer_cpu_share": 0.0, "writer_failed": 0.0}
    if not writers:
        return m
    ops = sum(int(w["ops"]) for w in writers)
    active = max(w["active_ns"] for w in writers) * 1e-9
    locks = sum(int(w["ops"]) * int(w["write_locks_per_op"]) for w in writers)
    samples = np.concatenate([w["op_ns_sorted_sample"] for w in writers]) * 1e-9
    m["writer_ops_rate"] = ops / active if active > 0 else nan
    m["mmap_write_rate"] = locks / active if active > 0 and writers[0]["where"] == "thread" else 0.0
    m["writer_write_lock_rate"] = locks / active if active > 0 else nan
    if ops:
        mean = sum(int(w["sum_ns"]) for w in writers) * 1e-9 / ops
        m["writer_op_latency_mean"] = mean
        hist = writer_histogram(writers)
        for q in (50, 90, 99):        # every operation's histogram (harness >= 2), else the sample
            m[f"writer_op_latency_p{q}"] = (float(hist_quantile(hist, q / 100)) if hist is not None
                                            else _q(samples, q / 100))
        m["writer_latency_mean"] = mean / int(writers[0]["write_locks_per_op"])
    m["writer_cpu_share"] = sum(w["cpu_ns"] for w in writers) * 1e-9 / active if active else nan
    m["writer_failed"] = float(sum(int(w["failed"]) for w in writers))
    return m


def writer_histogram(writers) -> np.ndarray | None:
    """Log-binned histogram (``tails.LATENCY_BIN_EDGES``) of every writer operation's time, summed
    over the writers; None from a harness that did not count them (version 1)."""
    hists = [w["op_ns_hist"] for w in writers if "op_ns_hist" in w]
    if not hists or len(hists) != len(writers):
        return None
    if any(len(h) != NBINS for h in hists):
        raise ValueError(f"writer op_ns_hist has {len(hists[0])} bins, expected {NBINS}")
    return np.sum(hists, axis=0).astype(np.int64)


def run_histograms(parsed: Mapping[str, Any], waiter_threshold: float = DEFAULT_WAITER_THRESHOLD
                   ) -> dict[str, np.ndarray]:
    """The run's whole distributions as integer counts in the log-spaced bins of
    :data:`faultlock.measure.tails.LATENCY_BIN_EDGES`: ``fault_latency_hist`` (every touch that
    faulted, the population of ``fault_latency_p*``) and ``writer_op_latency_hist`` (every writer
    operation; zeros without writers)."""
    t = touch_arrays(parsed, waiter_threshold)
    faults_ns = t["latency"][t["cls"] != NONE] * 1e9
    writer = writer_histogram(parsed["writers"]) if parsed["writers"] else None
    return {"fault_latency_hist": latency_histogram(np.rint(faults_ns)),
            "writer_op_latency_hist": writer if writer is not None else
            np.zeros(NBINS, dtype=np.int64)}


def minor_pass_metrics(parsed: Mapping[str, Any]) -> dict[str, float]:
    """Latency of minor faults on cached, unlocked folios (nothing to wait for): one thread walks
    group 0's pages again after ``MADV_DONTNEED`` zapped their PTEs. Fault-around maps cached
    neighbours, so only some touches fault."""
    mp = parsed.get("minor_pass")
    nan = np.nan
    if not mp or not mp["done"]:
        return {"minor_fault_latency_p50": nan, "minor_fault_latency_mean": nan,
                "fault_around_share": nan}
    minor = (mp["majflt"] == 0) & (mp["minflt"] > 0) & (mp["nvcsw"] == 0) & (mp["nivcsw"] == 0)
    lat = mp["lat_ns"][minor] * 1e-9
    return {"minor_fault_latency_p50": _q(lat, 0.5), "minor_fault_latency_mean": _mean(lat),
            "fault_around_share": 1.0 - float((mp["minflt"] > 0).sum()) / mp["done"]}


def device_metrics(records: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, float]]:
    """Per queue depth: O_DIRECT 4 KiB read latency (mean, p50, p90, p99, cv) and IOPS.

    ``device_latency_mean`` is the exact mean over all reads; the quantiles and cv come from the
    harness's uniform reservoir sample (up to 20,000 reads per depth)."""
    out = {}
    for r in records:
        lat = r["lat_ns"] * 1e-9
        reads = int(r["reads"])
        mean = r["sum_ns"] * 1e-9 / reads if reads else np.nan
        out[int(r["depth"])] = {
            "device_latency_mean": mean,
            "device_latency_p50": _q(lat, 0.5),
            "device_latency_p90": _q(lat, 0.9),
            "device_latency_p99": _q(lat, 0.99),
            "device_latency_cv": float(lat.std() / lat.mean()) if lat.size > 1 else np.nan,
            "device_iops": reads / (r["wall_ns"] * 1e-9) if r["wall_ns"] else np.nan,
            "device_reads": float(reads),
        }
    return out


def wakeup_metrics(parsed: Mapping[str, Any]) -> dict[str, float]:
    """Futex wake-to-run latency (s): from just before ``FUTEX_WAKE`` to the sleeper running."""
    w = parsed.get("wakeup")
    if not w or not len(w["lat_ns"]):
        return {"wakeup_latency_p50": np.nan, "wakeup_latency_mean": np.nan,
                "wakeup_latency_p90": np.nan}
    lat = w["lat_ns"] * 1e-9
    return {"wakeup_latency_p50": _q(lat, 0.5), "wakeup_latency_mean": _mean(lat),
            "wakeup_latency_p90": _q(lat, 0.9)}
