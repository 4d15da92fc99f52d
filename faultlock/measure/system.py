"""Facts about the machine a measurement ran on: kernel, CPUs, the file system and block device
under the data directory and its ``read_ahead_kb``.

All readers tolerate missing files (containers hide parts of ``/sys``): an unknown value is ``""``
or ``-1``, never an exception, except :func:`check_disk_backed`, which refuses RAM-backed file
systems.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["system_info", "mount_of", "block_device_of", "check_disk_backed", "RAM_FILESYSTEMS",
           "proc_stat_ticks", "busy_seconds", "loadavg_1min"]

#: file systems whose pages never come from a device: a fault there cannot wait for I/O
RAM_FILESYSTEMS = ("tmpfs", "ramfs", "devtmpfs", "hugetlbfs", "proc", "sysfs")


def _read(path: str | Path, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def mount_of(path: str | os.PathLike) -> dict[str, str]:
    """The mount holding ``path``: ``{'mountpoint', 'fstype', 'source', 'options'}``."""
    target = os.path.realpath(path)
    best = {"mountpoint": "", "fstype": "", "source": "", "options": ""}
    for line in _read("/proc/self/mounts").splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        point = _unescape(parts[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best["mountpoint"]):
            best = {"mountpoint": point, "fstype": parts[2], "source": parts[0],
                    "options": parts[3]}
    return best


def block_device_of(path: str | os.PathLike) -> dict[str, object]:
    """The block device under ``path`` (the whole disk for a partition) and its queue settings."""
    st = os.stat(path)
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    info: dict[str, object] = {"device": "", "read_ahead_kb": -1, "rotational": -1,
                               "scheduler": "", "nr_requests": -1, "device_model": "",
                               "dev_t": f"{major}:{minor}"}
    sys_dev = Path(f"/sys/dev/block/{major}:{minor}")
    if not sys_dev.exists():
        return info
    real = sys_dev.resolve()
    disk = real.parent if (real / "partition").exists() else real
    info["device"] = disk.name
    queue = disk / "queue"
    for key, name in (("read_ahead_kb", "read_ahead_kb"), ("rotational", "rotational"),
                      ("nr_requests", "nr_requests")):
        text = _read(queue / name)
        info[key] = int(text) if text.lstrip("-").isdigit() else -1
    scheduler = _read(queue / "scheduler")
    if "[" in scheduler:
        scheduler = scheduler.split("[", 1)[1].split("]", 1)[0]
    info["scheduler"] = scheduler
    info["device_model"] = _read(disk / "device" / "model") or _read(disk / "device" / "vendor")
    return info


def check_disk_backed(directory: str | os.PathLike) -> dict[str, str]:
    """Return the mount of ``directory``; raise ValueError if it is RAM-backed (tmpfs, ...)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"dir={str(directory)!r} is not allowed: not an existing directory")
    mount = mount_of(directory)
    if mount["fstype"] in RAM_FILESYSTEMS:
        raise ValueError(f"dir={str(directory)!r} is not allowed: it is on {mount['fstype']} "
                         f"(mounted at {mount['mountpoint']}), where page faults never read from "
                         "a device; choose a directory on a disk-backed file system")
    return mount


def proc_stat_ticks() -> list[int]:
    """The first 8 fields of ``/proc/stat``'s ``cpu`` line (user nice system idle iowait irq
    softirq steal, in clock ticks, all CPUs), or [] where it cannot be read."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            return [int(x) for x in line.split()[1:9]]
    return []


def busy_seconds(ticks_start, ticks_end, *, irq: bool = True) -> tuple[float, float]:
    """CPU-seconds the whole machine was busy between two :func:`proc_stat_ticks` readings (all
    but idle and iowait; with ``irq``, irq and softirq count as busy), and the steal among them;
    NaN, NaN if either reading is missing. Ticks are ``SC_CLK_TCK`` per second (usually 100): a
    window of one second is resolved to ~0.01 CPU per CPU."""
    if len(ticks_start) < 8 or len(ticks_end) < 8:
        return float("nan"), float("nan")
    d = [float(b) - float(a) for a, b in zip(ticks_start[:8], ticks_end[:8], strict=True)]
    hz = os.sysconf("SC_CLK_TCK")
    busy = sum(d) - d[3] - d[4] - (0.0 if irq else d[5] + d[6])
    return busy / hz, d[7] / hz


def loadavg_1min() -> float:
    """The 1-minute load average (``/proc/loadavg``), NaN if unreadable."""
    text = _read("/proc/loadavg").split()
    try:
        return float(text[0])
    except (IndexError, ValueError):
        return float("nan")


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _virtualisation() -> str:
    vendor = _read("/sys/class/dmi/id/sys_vendor")
    product = _read("/sys/class/dmi/id/product_name")
    hypervisor = "hypervisor" in _read("/proc/cpuinfo").split("flags", 2)[1][:4000] \
        if "flags" in _read("/proc/cpuinfo") else False
    return " ".join(filter(None, [vendor, product, "(hypervisor flag)" if hypervisor else ""]))


def system_info(directory: str | os.PathLike = ".") -> dict[str, object]:
    """Kernel, CPUs, memory, and the file system and device holding ``directory``."""
    uname = os.uname()
    mount = mount_of(directory)
    device = block_device_of(directory)
    mem_kb = -1
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "kernel_release": uname.release,
        "kernel_version": uname.version,
        "machine": uname.machine,
        "cpus_online": os.cpu_count() or -1,
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "virtualisation": _virtualisation(),
        "mem_total_kb": mem_kb,
        "transparent_hugepage": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "fault_around_bytes": _read("/sys/kernel/debug/fault_around_bytes", "unknown"),
        "loadavg": _read("/proc/loadavg"),
        "fs_type": mount["fstype"],
        "mountpoint": mount["mountpoint"],
        "fs_source": mount["source"],
        "mount_options": mount["options"],
        **device,
    }
