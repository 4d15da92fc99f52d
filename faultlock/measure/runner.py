"""Running the harness binary: the data file's life cycle, device curves and fault runs, each
bounded in time, optionally under ``perf record``."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from . import parse, tracing
from .build import build_harness
from .config import Cell
from .system import busy_seconds, check_disk_backed, loadavg_1min, proc_stat_ticks

__all__ = ["Harness", "NoiseMeter"]


class Harness:
    """A built harness and a data file in a private temporary directory under ``directory``.

    Use as a context manager: the directory and the file are removed on exit, whatever happens.

    >>> with Harness(".", pages=4096) as h:                      # doctest: +SKIP
    ...     parsed = h.faults(Cell(4, 4, None), pages=1024)
    """

    def __init__(self, directory: str | os.PathLike = ".", *, pages: int, seed: int = 1,
                 binary: str | os.PathLike | None = None) -> None:
        self.mount = check_disk_backed(directory)
        self.binary = Path(binary) if binary else build_harness()
        self.directory = Path(directory)
        self.pages = pages
        self.seed = seed
        self.tmp: Path | None = None
        self.file: Path | None = None
        self.file_record: dict[str, Any] | None = None

    def __enter__(self) -> Harness:
        self.tmp = Path(tempfile.mkdtemp(prefix="faultlock-measure-", dir=self.directory))
        try:
            self.file = self.tmp / "data"
            out = self._run(["mkfile", "--path", str(self.file), "--pages", str(self.pages),
                             "--seed", str(self.seed)], timeout=300)
            self.file_record = parse.parse_output(out)["file"]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def _run(self, args: list[str], *, timeout: float, prefix: list[str] | None = None) -> str:
        cmd = [*(prefix or []), str(self.binary), *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise parse.HarnessError(f"harness {args[0]} did not finish within {timeout:.0f} s"
                                     ) from None
        parse.parse_output(proc.stdout)             # raises HarnessError on an error record
        if proc.returncode != 0:
            raise parse.HarnessError(f"harness {args[0]} exited with {proc.returncode}: "
                                     f"{proc.stderr.strip()[-500:]}")
        return proc.stdout

    def device(self, depths, seconds: float, *, seed: int = 1) -> dict[str, Any]:
        """Parsed output of the O_DIRECT read-latency curve."""
        out = self._run(["device", "--file", str(self.file), "--depths",
                         ",".join(map(str, depths)), "--seconds", str(seconds), "--seed",
                         str(seed)], timeout=len(depths) * (seconds + 5) + 10)
        return parse.parse_output(out)

    def wakeup(self, rounds: int = 2000) -> dict[str, Any]:
        """Parsed output of the futex wake-to-run latency measurement."""
        return parse.parse_output(self._run(["wakeup", "--rounds", str(rounds)], timeout=60))

    def fault_args(self, cell: Cell, *, pages: int, order: str = "random", seed: int = 1,
                   think_ns: int = 0, max_seconds: float = 10.0, minor_pass: bool = True
                   ) -> list[str]:
        args = ["faults", "--file", str(self.file), "--threads", str(cell.threads), "--group",
                str(cell.group), "--pages", str(pages), "--order", order, "--seed", str(seed),
                "--think-ns", str(think_ns), "--max-seconds", str(max_seconds), "--minor-pass",
                str(int(minor_pass))]
        w = cell.writer
        if w is not None:
            args += ["--writers", str(w.count), "--writer-where", w.where, "--writer-op", w.op,
                     "--writer-rate", repr(w.rate), "--writer-pages", str(w.pages),
                     "--writer-calls", str(w.calls)]
        return args

    def faults(self, cell: Cell, *, pages: int, trace: bool = False, **kwargs: Any
               ) -> dict[str, Any]:
        """Parsed output of one ``faults`` run; with ``trace``, ``parsed['locks']`` holds the
        mmap_lock metrics of :func:`tracing.lock_metrics` for the walk. ``parsed['noise']``:
        what else ran meanwhile (:class:`NoiseMeter`)."""
        meter = NoiseMeter()
        parsed = self._faults(cell, pages=pages, trace=trace, **kwargs)
        parsed["noise"] = meter.stop()
        return parsed

    def _faults(self, cell: Cell, *, pages: int, trace: bool = False, **kwargs: Any
                ) -> dict[str, Any]:
        args = self.fault_args(cell, pages=pages, **kwargs)
        timeout = kwargs.get("max_seconds", 10.0) + 60
        if not trace:
            return parse.parse_output(self._run(args, timeout=timeout))
        data = self.tmp / "perf.data"
        try:
            sched = tracing.sched_status()[0]
            out = self._run(args, timeout=timeout,
                            prefix=tracing.perf_record_prefix(data, sched=sched))
            parsed = parse.parse_output(out)
            text, lost = tracing.perf_script(data)
            run = parsed["run"]
            parsed["locks"] = tracing.lock_metrics(
                tracing.parse_perf_script(text), pid=run["pid"], start_ns=run["start_mono_ns"],
                end_ns=run["end_mono_ns"], lost=lost)
        finally:
            data.unlink(missing_ok=True)
        return parsed


def _cpu_seconds(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


class NoiseMeter:
    """The other tenants' CPU use over a window: the machine's busy CPU-seconds
    (``/proc/stat``, irq and softirq left out) less our own (this process and its waited-for
    children: the harness, its writer process, perf), per second of the window, and the
    1-minute load average at its start. Irq and softirq are left out because on this VM they are
    the completions of our own reads (block softirq: 0.06-0.17 CPU measured at 1-32 threads,
    2026-12-05), which no task is charged for when they land on an idle CPU; ``irq_cpus`` keeps
    them apart."""

    def __init__(self) -> None:
        self.load = loadavg_1min()
        self.ticks = proc_stat_ticks()
        self.own = _cpu_seconds(resource.RUSAGE_SELF) + _cpu_seconds(resource.RUSAGE_CHILDREN)
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        window = time.monotonic() - self.t0
        ticks = proc_stat_ticks()
        busy, steal = busy_seconds(self.ticks, ticks, irq=False)
        irq = busy_seconds(self.ticks, ticks)[0] - busy
        own = _cpu_seconds(resource.RUSAGE_SELF) + _cpu_seconds(resource.RUSAGE_CHILDREN) \
            - self.own
        if not window > 0:
            return {"other_busy_cpus": float("nan"), "machine_busy_cpus": float("nan"),
                    "steal_cpus": float("nan"), "own_cpus": float("nan"), "irq_cpus": float("nan"),
                    "loadavg": self.load}
        return {"other_busy_cpus": max(busy - own, 0.0) / window,
                "machine_busy_cpus": busy / window, "steal_cpus": steal / window,
                "own_cpus": own / window, "irq_cpus": irq / window, "loadavg": self.load,
                "noise_window": window}
