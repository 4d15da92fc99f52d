"""Counting ``mmap_lock`` acquisitions, waits and holds with ``perf`` and the kernel tracepoints.

Where ``perf`` can open the ``mmap_lock:*`` and ``exceptions:page_fault_user`` tracepoints (root
or ``perf_event_paranoid`` <= -1, tracefs present), a harness run is recorded with
``perf record -k CLOCK_MONOTONIC`` so that its events can be cut to the readers' walk (the harness
prints the walk's start and end on the same clock). From the events of the harness's process:

* read acquisitions (``mmap_lock_acquire_returned`` write=false success=true; a ``downgrade`` of a
  write lock, which emits the same event right after a write acquisition, is not counted as one);
* the wait of each acquisition: from its ``mmap_lock_start_locking`` on the same thread, or 0 for a
  successful trylock (``lock_mm_and_find_vma`` tries ``mmap_read_trylock`` first);
* write acquisitions, waits, and holds (to ``mmap_lock_released`` or to the downgrade);
* user page-fault exceptions, so that read acquisitions per fault can be given.

A traced run is slower (every lock operation writes a record), so :mod:`run` keeps its timings out
of the latency statistics and takes only these lock metrics from it. Without perf everything else
works, and the dataset says which tracing was skipped and why (``attrs['tracing']``).

bpftrace would measure the same in kernel; it is not used because perf is far more often present.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..model.metrics import WAIT_DECADE_EDGES  # the decade bins of MODEL.md / kernel.md §1.4

__all__ = ["perf_status", "perf_record_prefix", "perf_script", "parse_perf_script",
           "lock_metrics", "TRACEPOINTS", "WAIT_DECADE_EDGES"]

TRACEPOINTS = ("mmap_lock:mmap_lock_start_locking", "mmap_lock:mmap_lock_acquire_returned",
               "mmap_lock:mmap_lock_released", "exceptions:page_fault_user")

_LINE = re.compile(r"^\s*(\d+)/(\d+)\s+(\d+)\.(\d+):\s+(\w+):(\w+):\s*(.*)$")
_STATUS: dict[str, tuple[bool, str]] = {}


def perf_status(perf: str = "perf") -> tuple[bool, str]:
    """Whether perf can record the tracepoints here, and why not if it cannot (cached)."""
    if perf in _STATUS:
        return _STATUS[perf]
    path = shutil.which(perf)
    if path is None:
        result = (False, "perf not found on PATH; mmap_lock counts, waits and holds skipped")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [path, "record", "-q", "-k", "CLOCK_MONOTONIC", "-o", f"{tmp}/probe.data"]
            for tp in TRACEPOINTS:
                cmd += ["-e", tp]
            try:
                proc = subprocess.run(cmd + ["--", "true"], capture_output=True, text=True,
                                      timeout=30)
                ok = proc.returncode == 0
                why = "" if ok else (proc.stderr.strip().splitlines() or ["perf record failed"])[-1]
            except (OSError, subprocess.TimeoutExpired) as exc:
                ok, why = False, str(exc)
        result = (ok, f"{path} records {', '.join(TRACEPOINTS)}" if ok else
                  f"perf cannot record the tracepoints ({why}); mmap_lock counts, waits and "
                  "holds skipped")
    _STATUS[perf] = result
    return result


def perf_record_prefix(output: str | Path, perf: str = "perf") -> list[str]:
    """The command prefix that records the tracepoints of the command after it."""
    cmd = [shutil.which(perf) or perf, "record", "-q", "-k", "CLOCK_MONOTONIC", "-m", "1024",
           "-o", str(output)]
    for tp in TRACEPOINTS:
        cmd += ["-e", tp]
    return cmd + ["--"]


def perf_script(data: str | Path, perf: str = "perf") -> tuple[str, int]:
    """The events of a perf.data file as text, and the number of events perf lost."""
    perf = shutil.which(perf) or perf
    proc = subprocess.run([perf, "script", "-i", str(data), "-F", "pid,tid,time,event,trace",
                           "--ns"], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"perf script failed: {proc.stderr.strip()[-500:]}")
    stats = subprocess.run([perf, "report", "-i", str(data), "--stats"], capture_output=True,
                           text=True, timeout=120).stdout
    lost = sum(int(m.group(1)) for m in re.finditer(r"LOST(?:_SAMPLES)? events:\s+(\d+)", stats))
    return proc.stdout, lost


def parse_perf_script(text: str | Iterable[str]) -> list[tuple[int, int, int, str, dict[str, str]]]:
    """``(pid, tid, time_ns, event, fields)`` for every event line of ``perf script`` output."""
    lines = text.splitlines() if isinstance(text, str) else text
    events = []
    for line in lines:
        m = _LINE.match(line)
        if not m:
            continue
        pid, tid, sec, frac, _system, name, rest = m.groups()
        t = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
        fields = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
        events.append((int(pid), int(tid), t, name, fields))
    return events


def _decade_shares(values: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return np.full(len(WAIT_DECADE_EDGES), np.nan)
    idx = np.searchsorted(WAIT_DECADE_EDGES, values, side="right") - 1
    return np.bincount(idx, minlength=len(WAIT_DECADE_EDGES)) / values.size


def lock_metrics(events, *, pid: int, start_ns: int, end_ns: int, lost: int = 0
                 ) -> dict[str, object]:
    """mmap_lock metrics of process ``pid`` between ``start_ns`` and ``end_ns`` (CLOCK_MONOTONIC).

    Names follow MODEL.md (``mmap_read_rate``, ``mmap_read_wait_mean``, ...); measured-only extras
    are ``mmap_read_per_fault``, ``mmap_write_hold_*`` and the ``*_hist`` decade shares.
    """
    pending: dict[int, tuple[int, bool]] = {}
    holding: dict[int, tuple[str, int]] = {}
    read_waits, write_waits, holds = [], [], []
    faults = trylock_failures = downgrades = 0
    for epid, tid, t, name, f in events:
        if epid != pid or t < start_ns or t > end_ns:
            continue
        if name == "page_fault_user":
            faults += 1
            continue
        write = f.get("write") == "true"
        if name == "mmap_lock_start_locking":
            pending[tid] = (t, write)
        elif name == "mmap_lock_acquire_returned":
            started = pending.pop(tid, None)
            success = f.get("success") == "true"
            held = holding.get(tid)
            if not write and held is not None and held[0] == "w":
                downgrades += 1               # mmap_write_downgrade: the write section ends here
                holds.append(t - held[1])
                holding[tid] = ("r", t)
                continue
            if not success:
                trylock_failures += 1
                continue
            wait = t - started[0] if started is not None and started[1] == write else 0
            (write_waits if write else read_waits).append(wait)
            holding[tid] = ("w" if write else "r", t)
        elif name == "mmap_lock_released":
            held = holding.pop(tid, None)
            if write and held is not None and held[0] == "w":
                holds.append(t - held[1])
    span = (end_ns - start_ns) * 1e-9
    rw, ww, hd = (np.asarray(x, dtype=np.float64) * 1e-9 for x in (read_waits, write_waits, holds))

    def stat(values, q=None):
        if values.size == 0:
            return np.nan
        return float(values.mean()) if q is None else float(np.quantile(values, q))

    return {
        "trace_faults": float(faults),
        "mmap_read_acquisitions": float(rw.size),
        "mmap_read_rate": rw.size / span if span > 0 else np.nan,
        "mmap_read_per_fault": rw.size / faults if faults else np.nan,
        "mmap_read_wait_mean": stat(rw),
        "mmap_read_wait_p99": stat(rw, 0.99),
        "mmap_read_wait_max": float(rw.max()) if rw.size else np.nan,
        "mmap_read_trylock_failures": float(trylock_failures),
        "mmap_write_acquisitions": float(ww.size),
        "mmap_write_rate": ww.size / span if span > 0 else np.nan,
        "mmap_write_wait_mean": stat(ww),
        "mmap_write_wait_p99": stat(ww, 0.99),
        "mmap_write_hold_mean": stat(hd),
        "mmap_write_hold_p50": stat(hd, 0.5),
        "mmap_write_hold_p99": stat(hd, 0.99),
        "mmap_downgrades": float(downgrades),
        "trace_lost_events": float(lost),
        "mmap_read_wait_hist": _decade_shares(rw),
        "mmap_write_wait_hist": _decade_shares(ww),
    }
