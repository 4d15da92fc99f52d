"""A memory cgroup of our own for one harness run: find a usable memory controller, create a
cgroup with a limit, let the harness join it, read its counters, remove it.

cgroup v2 (``memory.max``, ``memory.high``, ``memory.stat``, ``memory.events``,
``memory.peak``) is used where a cgroup2 mount enables the memory controller for its children
(``memory`` in the root's ``cgroup.subtree_control``; we do not enable controllers ourselves: that
would change the machine's configuration); else cgroup v1's memory hierarchy
(``memory.limit_in_bytes``, ``memory.stat``, ``memory.max_usage_in_bytes``, ``memory.failcnt``).
Otherwise :class:`CgroupUnavailable` says why, in one line.

The limit is the memcg's: every page-cache folio the harness brings in is charged to the cgroup
(``mm/memcontrol.c: mem_cgroup_charge`` from ``filemap_add_folio``); a charge over the limit
reclaims from the cgroup's own LRU lists on the charging thread
(``try_charge_memcg -> try_to_free_mem_cgroup_pages``), which is the cost this measurement is after.

Counters differ between the versions (``Documentation/admin-guide/cgroup-v1/memory.rst`` and
``cgroup-v2.rst``): v1's ``pgpgin``/``pgpgout`` count charge and uncharge *events* (one per folio,
whatever its size), v2 has ``pgscan``/``pgsteal`` in pages and no ``pgpgin``; both have
``workingset_refault_file`` (pages) and ``pgmajfault``.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupUnavailable", "MemoryController", "MemoryCgroup", "find_memory_controller",
           "parse_flat_keyed", "leftover_cgroups", "PREFIX"]

#: every cgroup this module creates is named PREFIX + pid + counter (so a test can look for them)
PREFIX = "faultlock-memcg-"


class CgroupUnavailable(RuntimeError):
    """No memory cgroup can be created here (the message says why, in one line)."""


@dataclass(frozen=True)
class MemoryController:
    """Where our cgroups go: ``version`` 1 or 2 and the ``parent`` directory they are made in."""

    version: int
    parent: Path

    @property
    def description(self) -> str:
        return f"cgroup v{self.version} memory controller under {self.parent}"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _mounts(mounts_file: str | os.PathLike) -> list[tuple[str, str, list[str]]]:
    out = []
    for line in _read(Path(mounts_file)).splitlines():
        parts = line.split()
        if len(parts) >= 4:
            point = parts[1].replace("\\040", " ")
            out.append((point, parts[2], parts[3].split(",")))
    return out


def find_memory_controller(version: str = "auto", *, mounts_file: str | os.PathLike =
                           "/proc/self/mounts") -> MemoryController:
    """The memory controller to use.

    Parameters
    ----------
    version : {"auto", "v2", "v1"}
        "auto": v2 if usable, else v1.
    mounts_file : path
        The mount table (a test passes its own).

    Raises
    ------
    CgroupUnavailable
        Neither (or not the one asked for) is usable, with the reason of each.
    ValueError
        ``version`` is not one of the three.
    """
    if version not in ("auto", "v2", "v1"):
        raise ValueError(f"cgroup={version!r} is not allowed: 'auto', 'v2' or 'v1'")
    mounts = _mounts(mounts_file)
    reasons = []
    if version in ("auto", "v2"):
        v2 = [Path(p) for p, fstype, _ in mounts if fstype == "cgroup2"]
        for root in v2:
            if "memory" in _read(root / "cgroup.subtree_control").split():
                if os.access(root, os.W_OK):
                    return MemoryController(2, root)
                reasons.append(f"cgroup v2 at {root} is not writable (run as root)")
                break
        else:
            reasons.append(f"cgroup v2 {'at ' + str(v2[0]) if v2 else 'is not mounted'}"
                           f"{' has no memory controller in cgroup.subtree_control' if v2 else ''}")
    if version in ("auto", "v1"):
        v1 = [Path(p) for p, fstype, opts in mounts if fstype == "cgroup" and "memory" in opts]
        if v1 and (v1[0] / "memory.limit_in_bytes").exists() and os.access(v1[0], os.W_OK):
            return MemoryController(1, v1[0])
        reasons.append(f"cgroup v1 memory hierarchy at {v1[0]} is not writable (run as root)"
                       if v1 else "no cgroup v1 memory hierarchy is mounted")
    raise CgroupUnavailable("no usable memory cgroup: " + "; ".join(reasons))


def parse_flat_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, memory.events, /proc/vmstat) as a dict of ints."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


class MemoryCgroup:
    """One cgroup of ours with a memory limit, removed on exit whatever happens.

    >>> with MemoryCgroup(find_memory_controller(), limit_bytes=64 << 20) as cg:  # doctest: +SKIP
    ...     run_harness(["--cgroup-procs", str(cg.procs), "--stat-files", ",".join(cg.stat_files)])
    ...     peak = cg.peak_bytes()

    ``limit_bytes`` None: no limit (``max``), for the references. ``high_bytes`` (v2 only): also
    ``memory.high`` (throttling and reclaim on return to user space,
    ``mem_cgroup_handle_over_high``), as the published script sets it.
    """

    _counter = 0

    def __init__(self, controller: MemoryController, *, limit_bytes: int | None,
                 high_bytes: int | None = None) -> None:
        if high_bytes is not None and controller.version != 2:
            raise ValueError("memory_high is not allowed with cgroup v1 (it has no memory.high)")
        self.controller = controller
        self.limit_bytes = limit_bytes
        self.high_bytes = high_bytes
        MemoryCgroup._counter += 1
        self.path = controller.parent / f"{PREFIX}{os.getpid()}-{MemoryCgroup._counter}"
        self.created = False

    @property
    def version(self) -> int:
        return self.controller.version

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    @property
    def stat_files(self) -> list[str]:
        files = [self.path / "memory.stat"]
        if self.version == 2:
            files.append(self.path / "memory.events")
        return [str(f) for f in files]

    def __enter__(self) -> MemoryCgroup:
        try:
            self.path.mkdir()
        except OSError as exc:
            raise CgroupUnavailable(f"cannot create {self.path}: {exc.strerror}") from None
        self.created = True
        try:
            if self.version == 2:
                swap = self.path / "memory.swap.max"
                if swap.exists():          # no swap, as the published script's MemorySwapMax=0
                    swap.write_text("0")
                if self.high_bytes is not None:
                    (self.path / "memory.high").write_text(str(int(self.high_bytes)))
                (self.path / "memory.max").write_text(
                    "max" if self.limit_bytes is None else str(int(self.limit_bytes)))
            elif self.limit_bytes is not None:
                (self.path / "memory.limit_in_bytes").write_text(str(int(self.limit_bytes)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def read(self, name: str) -> str:
        return _read(self.path / name).strip()

    def stat(self) -> dict[str, int]:
        return parse_flat_keyed(self.read("memory.stat"))

    def peak_bytes(self) -> int:
        """Largest usage since creation (v1 memory.max_usage_in_bytes, v2 memory.peak); -1 if
        the kernel does not say."""
        text = self.read("memory.peak" if self.version == 2 else "memory.max_usage_in_bytes")
        return int(text) if text.isdigit() else -1

    def limit_hits(self) -> int:
        """Charges that hit the limit: v1 memory.failcnt, v2 memory.events ``max``."""
        if self.version == 2:
            return parse_flat_keyed(self.read("memory.events")).get("max", -1)
        text = self.read("memory.failcnt")
        return int(text) if text.isdigit() else -1

    def remove(self) -> None:
        """Remove the cgroup. Its only processes are the harness runs we started in it: a dying
        task may take a moment to leave it, hence the retries; one still there after 1 s (a
        harness whose parent, e.g. perf, was killed by an interrupt) is killed by its pid.
        Raises OSError if the cgroup cannot be removed after 5 s."""
        if not self.created:
            return
        deadline = time.monotonic() + 5.0
        killed = False
        while True:
            try:
                self.path.rmdir()
                self.created = False
                return
            except FileNotFoundError:
                self.created = False
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                if not killed and time.monotonic() > deadline - 4.0:
                    killed = True
                    for pid in self.read("cgroup.procs").split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except (ProcessLookupError, ValueError):
                            pass
                time.sleep(0.02)


def leftover_cgroups(controller: MemoryController, pid: int | None = None) -> list[Path]:
    """Our cgroups still present under ``controller.parent`` (there should be none): those of
    process ``pid`` (default: of any process)."""
    pattern = PREFIX + (f"{pid}-*" if pid is not None else "*")
    return sorted(p for p in controller.parent.glob(pattern) if p.is_dir())
