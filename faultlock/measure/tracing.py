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
* user page-fault exceptions, so that read acquisitions per fault can be given;
* with the scheduler tracepoints (``sched:sched_wakeup``, ``sched:sched_switch``, recorded on every
  CPU with ``-a`` because a switch *into* our thread is emitted in the context of the task it
  replaces): the run-queue delay of every wake-up of a faulting thread (wake-up to the switch
  into it: ``kernel/sched/core.c: ttwu_do_activate`` to ``__schedule``), and the time each write
  hold of ``mmap_lock`` spent with its holder switched out (preempted or asleep while holding
  the lock: the lock-holder preemption the model lacks).

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

__all__ = ["perf_status", "sched_status", "perf_record_prefix", "perf_script",
           "parse_perf_script", "lock_metrics", "sched_metrics", "TRACEPOINTS",
           "SCHED_TRACEPOINTS", "WAIT_DECADE_EDGES"]

TRACEPOINTS = ("mmap_lock:mmap_lock_start_locking", "mmap_lock:mmap_lock_acquire_returned",
               "mmap_lock:mmap_lock_released", "exceptions:page_fault_user")
SCHED_TRACEPOINTS = ("sched:sched_wakeup", "sched:sched_switch")
#: the control writer process's name (``harness.c`` sets it): recording on all CPUs, its
#: ``mmap_lock`` events (it has its own mm, which the measurement does not use) are filtered out
#: in the kernel; a flat-out writer would otherwise make perf lose events
CONTROL_WRITER_COMM = "fl-ctl-writer"

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
        ok, why = _probe(perf, sched=False)
        result = (ok, f"{path} records {', '.join(TRACEPOINTS)}" if ok else
                  f"perf cannot record the tracepoints ({why}); mmap_lock counts, waits and "
                  "holds skipped")
    _STATUS[perf] = result
    return result


def sched_status(perf: str = "perf") -> tuple[bool, str]:
    """Whether perf can also record the scheduler tracepoints on every CPU (``-a``) here."""
    key = perf + " sched"
    if key in _STATUS:
        return _STATUS[key]
    ok, why = perf_status(perf)
    if ok:
        ok, why = _probe(perf, sched=True)
    result = (ok, f"records {', '.join(SCHED_TRACEPOINTS)} on all CPUs" if ok else
              f"perf cannot record the scheduler tracepoints ({why}); run-queue delays and "
              "off-CPU holds skipped")
    _STATUS[key] = result
    return result


def _probe(perf: str, *, sched: bool) -> tuple[bool, str]:
    """Record ``true`` as a measurement would (:func:`perf_record_prefix`): whether perf can, and
    its last line of complaint if not."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = perf_record_prefix(f"{tmp}/probe.data", perf, sched=sched)
        try:
            proc = subprocess.run(cmd + ["true"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
    if proc.returncode == 0:
        return True, ""
    return False, (proc.stderr.strip().splitlines() or ["perf record failed"])[-1]


def perf_record_prefix(output: str | Path, perf: str = "perf", *, sched: bool = False
                       ) -> list[str]:
    """The command prefix that records the tracepoints of the command after it; with ``sched``
    also the scheduler tracepoints, on all CPUs (``-a``) for the command's duration."""
    cmd = [shutil.which(perf) or perf, "record", "-q", "-k", "CLOCK_MONOTONIC", "-m", "1024",
           "-o", str(output)]
    if sched:
        cmd += ["-a", "-m", "8192"]        # 32 MiB per CPU: all CPUs' events, no loss
    for tp in TRACEPOINTS:
        cmd += ["-e", tp]
        if sched:
            cmd += ["--filter", f'comm != "{CONTROL_WRITER_COMM}"']
    for tp in SCHED_TRACEPOINTS if sched else ():
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
    are ``mmap_read_per_fault``, ``mmap_read_wait_p50/p90/p99``, ``mmap_write_hold_*`` and the
    ``*_hist`` decade shares; with scheduler events also those of :func:`sched_metrics`.
    """
    pending: dict[int, tuple[int, bool]] = {}
    holding: dict[int, tuple[str, int]] = {}
    read_waits, write_waits, holds = [], [], []
    hold_spans: list[tuple[int, int, int]] = []          # (tid, start, end) of write holds
    sched_events = []
    fault_tids: set[int] = set()
    faults = trylock_failures = downgrades = 0
    for event in events:
        epid, tid, t, name, f = event
        if name in ("sched_switch", "sched_wakeup"):
            sched_events.append(event)       # any process's context: kept whatever epid is
            continue
        if epid != pid or t < start_ns or t > end_ns:
            continue
        if name == "page_fault_user":
            faults += 1
            fault_tids.add(tid)
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
                hold_spans.append((tid, held[1], t))
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
                hold_spans.append((tid, held[1], t))
    span = (end_ns - start_ns) * 1e-9
    rw, ww, hd = (np.asarray(x, dtype=np.float64) * 1e-9 for x in (read_waits, write_waits, holds))

    def stat(values, q=None):
        if values.size == 0:
            return np.nan
        return float(values.mean()) if q is None else float(np.quantile(values, q))

    out = {
        "trace_faults": float(faults),
        "mmap_read_acquisitions": float(rw.size),
        "mmap_read_rate": rw.size / span if span > 0 else np.nan,
        "mmap_read_per_fault": rw.size / faults if faults else np.nan,
        "mmap_read_wait_mean": stat(rw),
        "mmap_read_wait_p50": stat(rw, 0.5),
        "mmap_read_wait_p90": stat(rw, 0.9),
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
    if sched_events:
        out.update(sched_metrics(sched_events, pid=pid, start_ns=start_ns, end_ns=end_ns,
                                 fault_tids=fault_tids, hold_spans=hold_spans))
    return out


SCHED_METRICS = ("runqueue_delay_mean", "runqueue_delay_p50", "runqueue_delay_p90",
                 "runqueue_delay_p99", "runqueue_wakeups", "mmap_write_hold_offcpu_mean",
                 "mmap_write_hold_offcpu_share", "mmap_write_hold_offcpu_p99",
                 "mmap_write_holds_traced")


def sched_metrics(events, *, pid: int, start_ns: int, end_ns: int, fault_tids,
                  hold_spans) -> dict[str, float]:
    """Run-queue delays of the faulting threads and off-CPU time inside write holds.

    ``events``: ``sched_wakeup`` and ``sched_switch`` events of every CPU, in time order.
    ``fault_tids``: the threads of ``pid`` that took user page faults in the window (the readers:
    they sleep only in faults during the walk, so each of their wake-ups ends a fault's sleep:
    I/O completion, a folio unlock, an ``mmap_lock`` release). ``hold_spans``: ``(tid, start,
    end)`` of every write hold.

    ``runqueue_delay_*``
        from ``sched_wakeup`` of a faulting thread in the window to the next ``sched_switch``
        into it (its wait on the run queue after being woken); a wake-up followed by a switch
        *out* of the thread before any switch into it is dropped (the switch-in was not
        recorded). ``runqueue_wakeups`` counts those used: compare it with the faults, since on
        an idle machine most wake-ups and switch-ins happen in the idle task's context and perf
        recorded few of them here (2026-12-05: 1 wake-up for 3,075 faults at T = 1);
    ``mmap_write_hold_offcpu_*``
        per write hold, the time its holder was switched out (from a ``sched_switch`` out of the
        holder to the next one into it) inside the hold: mean over holds, share of holds with
        any, p99.
    """
    woken: dict[int, int] = {}
    delays = []
    out_at: dict[int, int] = {}
    off: dict[int, list[tuple[int, int]]] = {}
    holders = {tid for tid, _, _ in hold_spans}
    for _epid, _tid, t, name, f in events:
        if name == "sched_wakeup":
            target = int(f.get("pid", -1))
            if target in fault_tids and start_ns <= t <= end_ns:
                woken[target] = t
        else:                                              # sched_switch
            prev, nxt = int(f.get("prev_pid", -1)), int(f.get("next_pid", -1))
            # switched out again with no switch-in seen since its wake-up: the switch-in was
            # not recorded (events emitted from an idle CPU can be missing); no delay is made
            # up from the next one
            woken.pop(prev, None)
            if prev in holders:
                out_at[prev] = t
            if nxt in woken:
                delays.append(t - woken.pop(nxt))
            if nxt in out_at:
                off.setdefault(nxt, []).append((out_at.pop(nxt), t))
    for tid, t in out_at.items():                          # still out at the end of the trace
        off.setdefault(tid, []).append((t, max(end_ns, t)))
    d = np.asarray(delays, dtype=np.float64) * 1e-9
    offcpu = np.zeros(len(hold_spans))
    for tid in holders:
        idx = [k for k, (h, _, _) in enumerate(hold_spans) if h == tid]
        spans = np.array([(s, e) for _, s, e in (hold_spans[k] for k in idx)], dtype=np.int64)
        iv = np.array(sorted(off.get(tid, [])), dtype=np.int64).reshape(-1, 2)
        offcpu[idx] = _overlap(spans, iv) * 1e-9
    nan = float("nan")
    return {
        "runqueue_delay_mean": float(d.mean()) if d.size else nan,
        "runqueue_delay_p50": float(np.quantile(d, 0.5)) if d.size else nan,
        "runqueue_delay_p90": float(np.quantile(d, 0.9)) if d.size else nan,
        "runqueue_delay_p99": float(np.quantile(d, 0.99)) if d.size else nan,
        "runqueue_wakeups": float(d.size),
        "mmap_write_hold_offcpu_mean": float(offcpu.mean()) if offcpu.size else nan,
        "mmap_write_hold_offcpu_share": float((offcpu > 0).mean()) if offcpu.size else nan,
        "mmap_write_hold_offcpu_p99": float(np.quantile(offcpu, 0.99)) if offcpu.size else nan,
        "mmap_write_holds_traced": float(offcpu.size),
    }


def _overlap(spans: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """Total length of the disjoint, sorted ``intervals`` (k, 2) inside each span (n, 2)."""
    if spans.size == 0 or intervals.size == 0:
        return np.zeros(len(spans))
    starts, ends = intervals[:, 0], intervals[:, 1]
    cum = np.concatenate([[0], np.cumsum(ends - starts)])
    s, e = spans[:, 0], spans[:, 1]
    first = np.searchsorted(ends, s, side="right")          # first interval ending after s
    last = np.searchsorted(starts, e, side="left")          # intervals starting before e
    total = (cum[np.maximum(last, first)] - cum[first]).astype(np.float64)
    has = last > first
    # clip the first and last overlapping intervals to the span
    head = np.where(has, np.maximum(s - starts[np.minimum(first, len(starts) - 1)], 0), 0)
    tail = np.where(has, np.maximum(ends[np.maximum(last - 1, 0)] - e, 0), 0)
    return np.maximum(total - head - tail, 0.0)
