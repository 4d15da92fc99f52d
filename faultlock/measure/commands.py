"""``faultlock measure``, ``faultlock calibrate`` and ``faultlock compare``, for
``faultlock/cli.py`` to call.

Each takes ``argv`` (without the command name), writes its files, prints a short summary to
stdout, returns an exit code, and raises ValueError for bad input (so the CLI prints the message
and exits 2). A missing compiler raises :class:`~faultlock.measure.build.HarnessBuildError`
(a RuntimeError), a failing harness :class:`~faultlock.measure.parse.HarnessError`.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..model import arguments
from ..outputs import check_output, jsonable, replacing, write_dataset, write_text

__all__ = ["main_measure", "main_measure_memcg", "main_calibrate", "main_compare", "measure_parser",
           "calibrate_parser", "compare_parser", "save_dataset", "load_dataset"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit; the CLI decides
        raise ValueError(f"{self.prog}: {message}")


# options checked as the Python API checks its arguments
SEED = arguments.option_type("seed", arguments.check_seed)
OPERATIONS = arguments.option_type("operations", functools.partial(
    arguments.check_integer, low=100, high=arguments.OPERATIONS_LIMIT))
REPLICATIONS = arguments.option_type("replications", functools.partial(
    arguments.check_integer, low=1, high=arguments.REPLICATIONS_LIMIT))


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers"
                                         ) from None


def _seconds(text: str) -> float:
    from ..model.scenario import parse_time
    try:
        return parse_time(text, "time", kind="time")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def save_dataset(ds: xr.Dataset, path: str | Path, option: str = "--output") -> Path:
    """Write ``ds`` as netCDF (``.nc``), zarr (``.zarr``) or JSON (``.json``: xarray's dict
    form), through a temporary sibling renamed into place (:func:`faultlock.outputs.write_dataset`):
    never half a file."""
    return write_dataset(ds, path, option=option)


def load_dataset(path: str | Path) -> xr.Dataset:
    """Read a dataset written by :func:`save_dataset`.

    A file that is missing, truncated, not of its suffix's format or not a dataset raises one
    ValueError naming the path and the problem (never the backend's traceback)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{str(path)!r} is not allowed: no such file")
    readers = {".nc": ("a netCDF file", _read_netcdf), ".zarr": ("a zarr store", _read_zarr),
               ".json": ("a dataset in xarray's dict form", _read_json)}
    if path.suffix not in readers:
        raise ValueError(f"{str(path)!r} is not allowed: a .nc, .zarr or .json dataset")
    what, read = readers[path.suffix]
    try:
        return read(path)
    except _NotThisFormat as exc:
        raise ValueError(f"{str(path)!r} is not allowed: not {what} ({exc})") from None
    except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        raise ValueError(f"{str(path)!r} cannot be read: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - each backend fails its own way on a foreign file
        raise ValueError(f"{str(path)!r} is not allowed: not {what} that can be read "
                         f"({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


#: the first bytes of a netCDF file: classic and 64-bit offset (``CDF\x01``, ``CDF\x02``),
#: CDF-5 (``CDF\x05``), and netCDF-4, which is HDF5
_NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")


def _read_netcdf(path: Path) -> xr.Dataset:
    with path.open("rb") as file:
        head = file.read(8)
    if not head.startswith(_NETCDF_MAGIC):
        raise _NotThisFormat(f"it begins {head[:4]!r}, not a netCDF signature")
    try:
        with xr.open_dataset(path) as ds:
            return ds.load()
    except Exception as exc:  # noqa: BLE001 - the backend's errors on a damaged file vary
        raise _NotThisFormat(f"truncated or damaged: {_reason(exc)}") from None


class _NotThisFormat(Exception):
    """The file is not of the format its suffix says (the message says why)."""


def _read_zarr(path: Path) -> xr.Dataset:
    with xr.open_zarr(path) as ds:
        return ds.load()


def _read_json(path: Path) -> xr.Dataset:
    return xr.Dataset.from_dict(json.loads(path.read_text()))


# -- measure -------------------------------------------------------------------------------------

def measure_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="faultlock measure",
                description="Measure page faults that wait for I/O on this kernel (mainline): a C "
                            "harness, built with the system compiler, walks a cold MADV_RANDOM "
                            "file mapping with groups of threads, with optional mmap_lock writers. "
                            "'faultlock measure memcg -h': the memcg refault loop instead.")
    p.add_argument("-o", "--output", required=True, help="dataset to write (.nc, .zarr or .json; "
                   "a new path in an existing directory)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--threads", type=_ints, default=(1, 2, 4, 8), help="thread counts T "
                   "(default 1,2,4,8)")
    p.add_argument("--groups", type=_ints, default=(1,), help="group sizes G; 0 = T "
                   "(default 1)")
    p.add_argument("--writer", action="append", default=None, metavar="SPEC",
                   help="writer load, repeatable: none, or where:op[:rate=R][:pages=P][:calls=C]"
                        "[:count=N] with where thread|process, op mmap|mprotect, rate per "
                        "second (0 = flat out). Default: none")
    p.add_argument("--pages", type=int, default=1024, help="pages each group walks (default 1024)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of each cell (default 3)")
    p.add_argument("--order", default="random", choices=("random", "sequential"))
    p.add_argument("--think-time", type=_seconds, default=0.0, help="CPU before each touch")
    p.add_argument("--device-depths", type=_ints, default=(1, 2, 4, 8, 16, 32))
    p.add_argument("--device-seconds", type=float, default=0.25)
    p.add_argument("--device-repeats", type=int, default=100,
                   help="measure the device curve in the first N repeats only (default: all)")
    p.add_argument("--waiter-threshold", type=_seconds, default=10e-6,
                   help="a minor fault this slow without preemption waited for a folio lock "
                        "(default 10us)")
    p.add_argument("--trace", default="auto", choices=("auto", "on", "off"),
                   help="perf-record mmap_lock tracepoints in one extra run per cell")
    p.add_argument("--dir", default=".", help="directory on a disk-backed file system for the "
                   "data file (a temporary subdirectory, removed afterwards; default .)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="bound of one harness run")
    p.add_argument("--budget", type=float, default=110.0, help="bound of the whole measurement "
                   "(s); cells not reached are NaN")
    p.add_argument("--max-file-mb", type=int, default=512)
    p.add_argument("--max-other-cpus", type=float, default=0.25,
                   help="repeat a run during which other tenants kept more CPUs than this busy "
                        "(/proc/stat; default 0.25)")
    p.add_argument("--max-reruns", type=int, default=3,
                   help="repeat such a run at most this many times (default 3; 0: never)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def main_measure(argv: Sequence[str] | None = None) -> int:
    """``faultlock measure -o OUT [--threads ..] [--groups ..] [--writer SPEC]...``, or
    ``faultlock measure memcg -o OUT ...`` (:func:`main_measure_memcg`)."""
    from .config import MeasureConfig
    from .run import measure

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "memcg":
        return main_measure_memcg(argv[1:])
    args = measure_parser().parse_args(argv)
    out = check_output(args.output, (".nc", ".zarr", ".json"), option="faultlock measure: -o",
                       force=args.force)
    config = MeasureConfig(
        threads=args.threads, groups=args.groups, writers=tuple(args.writer or ["none"]),
        pages=args.pages, repeats=args.repeats, order=args.order, think_time=args.think_time,
        device_depths=args.device_depths, device_seconds=args.device_seconds,
        device_repeats=args.device_repeats,
        waiter_threshold=args.waiter_threshold, trace=args.trace, directory=args.dir,
        max_seconds=args.max_seconds, budget=args.budget, max_file_mb=args.max_file_mb,
        seed=args.seed, max_other_cpus=args.max_other_cpus, max_reruns=args.max_reruns)
    ds = measure(config, progress=not args.quiet,
                 command="faultlock measure " + " ".join(map(shlex.quote, argv)))
    if str(out).endswith(".nc") and _netcdf4_engine():
        # per-run histograms are mostly empty bins: zlib keeps the file a few MB at 100 repeats
        # (netCDF-4 only: xarray's scipy engine writes netCDF-3, which has no compression)
        for var in ds.data_vars.values():
            var.encoding.update(zlib=True, complevel=5)
    save_dataset(ds, out, option="faultlock measure: -o")
    print(_measure_summary(ds))
    print(f"wrote {out}")
    return 0


def _netcdf4_engine() -> bool:
    """Whether xarray writes .nc through a netCDF-4 engine here (netCDF4 or h5netcdf)."""
    import importlib.util
    return any(importlib.util.find_spec(m) is not None for m in ("netCDF4", "h5netcdf"))


def _measure_summary(ds: xr.Dataset) -> str:
    lines = [f"kernel {ds.attrs.get('kernel_release')}, device {ds.attrs.get('device')} "
             f"(read_ahead_kb {ds.attrs.get('read_ahead_kb')}), {ds.attrs.get('cpus_online')} "
             f"CPUs; {ds.attrs.get('tracing')}"]
    d = ds["io_depth"].values
    lines.append("O_DIRECT 4 KiB read p50 by depth: " + ", ".join(
        f"{int(x)}: {ds['device_latency_p50'].values[k] * 1e6:.0f} µs" for k, x in enumerate(d)))
    pooled = "fault_latency_p99_pooled" in ds
    lines.append(f"{'cell':<44} {'p50':>8} {'p90':>8} {'p99':>9} "
                 + (f"{'p99 95% CI (pooled)':>21} {'lock effect p99':>16} " if pooled else "")
                 + f"{'waiters':>8} {'reads/flt':>9}  (µs)")
    for i in range(ds.sizes["config"]):
        g = lambda k, i=i: float(ds[k].values[i]) if k in ds else float("nan")  # noqa: E731
        p = "_pooled" if pooled else ""
        row = (f"{str(ds['label'].values[i]):<44} {g('fault_latency_p50' + p) * 1e6:8.1f} "
               f"{g('fault_latency_p90' + p) * 1e6:8.1f} {g('fault_latency_p99' + p) * 1e6:9.1f} ")
        if pooled:
            lo, hi = g("fault_latency_p99_ci_lo") * 1e6, g("fault_latency_p99_ci_hi") * 1e6
            ci = f"[{lo:.0f}, {hi:.0f}]"
            effect = g("lock_effect_p99")
            mark = "*" if g("lock_effect_p99_significant") == 1 else " "
            row += f"{ci:>21} " + (f"{effect * 1e6:15.0f}{mark} " if effect == effect else
                                   f"{'':>16} ")
        lines.append(row + f"{g('waiter_share'):8.2f} {g('mmap_read_per_fault'):9.2f}")
    if pooled:
        lines.append("p50/p90/p99: all repeats pooled; * lock effect significant (95 % CI "
                     "excludes 0)")
    if "runs_above_noise_threshold" in ds.attrs:
        lines.append(f"runs that stayed above the noise threshold: "
                     f"{ds.attrs['runs_above_noise_threshold']}")
    if ds.attrs.get("skipped"):
        lines.append(f"skipped (budget): {ds.attrs['skipped']}")
    return "\n".join(lines)


# -- measure memcg -------------------------------------------------------------------------------

def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers"
                                         ) from None


def measure_memcg_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="faultlock measure memcg",
                description="Measure the memcg refault loop on this kernel (mainline), as the "
                            "published reproducer runs it: T threads, each with a file of its "
                            "own (sparse by default), loop mmap / touch every page in order / "
                            "munmap inside a memory cgroup of ours whose limit is a ratio of "
                            "the working set (T x file size). Needs root and a memory cgroup "
                            "(v2 memory.max, else v1 memory.limit_in_bytes).")
    p.add_argument("-o", "--output", required=True, help="dataset to write (.nc, .zarr or .json; "
                   "a new path in an existing directory)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--threads", type=_ints, default=(2, 8, 32),
                   help="thread counts (default 2,8,32)")
    p.add_argument("--limit-ratios", type=_floats, default=(0.25, 0.5, 1.0, 2.0),
                   help="memory limit / working set (default 0.25,0.5,1,2)")
    p.add_argument("--file-mb", type=int, default=16, help="each thread's file, MiB (default 16)")
    p.add_argument("--filled", action="store_true",
                   help="write the files (reads come from the device); default: sparse "
                        "(ftruncate, never written: every fault reads a hole)")
    p.add_argument("--repeats", type=int, default=3, help="runs per cell (default 3)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="measured window of a run, after the warm-up (default 2)")
    p.add_argument("--warmup", type=float, default=0.3,
                   help="least warm-up (s); it also lasts until every thread completed a round")
    p.add_argument("--no-references", action="store_true",
                   help="skip the unlimited and cold references (no reclaim cost then)")
    p.add_argument("--noise-threads", type=int, default=0,
                   help="CPU-bound noise threads, pinned with the walkers (default 0)")
    p.add_argument("--noise-spin", type=_seconds, default=5e-6,
                   help="CPU per noise loop (default 5us)")
    p.add_argument("--noise-sleep", type=_seconds, default=50e-6,
                   help="sleep per noise loop (default 50us)")
    p.add_argument("--memory-high", action="store_true",
                   help="cgroup v2 only: also memory.high = limit / 1.2 (as the published script)")
    p.add_argument("--trace-reclaim", action="store_true",
                   help="one extra perf-recorded run per thread count and limit ratio < 1: the "
                        "on-CPU time of each direct reclaim call per page it reclaimed")
    p.add_argument("--cgroup", default="auto", choices=("auto", "v2", "v1"),
                   help="memory controller (default auto: v2 if usable, else v1)")
    p.add_argument("--dir", default=".", help="directory on a disk-backed file system for the "
                   "files (a temporary subdirectory, removed afterwards; default .)")
    p.add_argument("--budget", type=float, default=300.0, help="bound of the whole measurement "
                   "(s); runs not reached are NaN")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def main_measure_memcg(argv: Sequence[str] | None = None) -> int:
    """``faultlock measure memcg -o OUT [--threads 2,8,32] [--limit-ratios ..] ...``"""
    from .cgroup import CgroupUnavailable
    from .memcg import MemcgConfig, measure_memcg

    argv = list(sys.argv[1:] if argv is None else argv)
    args = measure_memcg_parser().parse_args(argv)
    option = "faultlock measure memcg: -o"
    out = check_output(args.output, (".nc", ".zarr", ".json"), option=option, force=args.force)
    try:
        config = MemcgConfig(
            threads=args.threads, limit_ratios=args.limit_ratios, file_mb=args.file_mb,
            filled=args.filled, repeats=args.repeats, seconds=args.seconds, warmup=args.warmup,
            references=not args.no_references, noise_threads=args.noise_threads,
            noise_spin=args.noise_spin, noise_sleep=args.noise_sleep,
            memory_high=args.memory_high, trace_reclaim=args.trace_reclaim,
            cgroup=args.cgroup, directory=args.dir,
            budget=args.budget, seed=args.seed)
        ds = measure_memcg(config, progress=not args.quiet,
                           command="faultlock measure memcg " + " ".join(map(shlex.quote, argv)))
    except CgroupUnavailable as exc:
        raise ValueError(f"faultlock measure memcg: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"faultlock measure memcg: {exc}") from None
    save_dataset(ds, out, option=option)
    print(_memcg_summary(ds))
    print(f"wrote {out}")
    return 0


def _memcg_summary(ds: xr.Dataset) -> str:
    lines = [f"kernel {ds.attrs.get('kernel_release')}, cgroup v{ds.attrs.get('cgroup_version')}, "
             f"{ds.attrs.get('cpus_online')} CPUs, read_ahead_kb {ds.attrs.get('read_ahead_kb')}, "
             f"files {ds.attrs.get('file_pages')} pages ({ds.attrs.get('files')})",
             f"{'threads':>7} {'limit/ws':>8} {'rounds/s':>14} {'read/walked':>12} "
             f"{'majflt/1000':>11} {'CPU/page':>14}"]
    for t in ds["threads"].values:
        for r in ds["limit_ratio"].values:
            g = lambda k, t=t, r=r: float(ds[k].sel(threads=t, limit_ratio=r))  # noqa: E731
            lines.append(f"{int(t):7d} {r:8g} {g('round_rate'):8.1f} ±{g('round_rate_ci'):5.1f} "
                         f"{g('pages_read_per_page'):12.2f} {g('majflt_per_page') * 1e3:11.2f} "
                         f"{g('cpu_per_page') * 1e6:8.2f} µs")
    value, ci = ds.attrs.get("reclaim_cpu_time_value"), ds.attrs.get("reclaim_cpu_time_ci")
    if value is not None:
        lines.append(f"direct reclaim CPU per page reclaimed: {value * 1e6:.2f} µs "
                     f"± {ci * 1e6:.2f} µs (95 %, {ds.attrs.get('reclaim_cpu_time_n')} runs)")
    if "traced_reclaim_cpu_per_page" in ds:
        traced = ds["traced_reclaim_cpu_per_page"].values
        median = ds["traced_reclaim_cpu_per_page_median"].values
        lines.append(f"traced reclaim CPU per page: {np.nanmin(traced) * 1e6:.2f}-"
                     f"{np.nanmax(traced) * 1e6:.2f} µs (sum/sum), median per call "
                     f"{np.nanmin(median) * 1e6:.2f}-{np.nanmax(median) * 1e6:.2f} µs")
    if ds.attrs.get("skipped"):
        lines.append(f"skipped (budget): {ds.attrs['skipped']}")
    return "\n".join(lines)


# -- calibrate -----------------------------------------------------------------------------------

def calibrate_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="faultlock calibrate",
                description="Fit the Scenario fields a measurement pins down (I/O latency and "
                            "spread, depth curve, fault CPU, wake-up, writer hold); or, with "
                            "--douyin, fit the android_warm_start preset to the published Douyin "
                            "numbers (kernel.md §1.4).")
    p.add_argument("measurement", nargs="?", help="a dataset written by faultlock measure")
    p.add_argument("-o", "--output", help="calibration JSON to write (.json; a new path in an "
                   "existing directory)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--io-source", default="faults", choices=("faults", "device"),
                   help="level of the read latency: the single-thread major fault (default) or "
                        "the O_DIRECT read")
    p.add_argument("--douyin", action="store_true", help="fit android_warm_start to Douyin")
    p.add_argument("--operations", type=OPERATIONS, default=30_000,
                   help="Monte Carlo operations per evaluation (--douyin)")
    p.add_argument("--max-evaluations", type=int, default=120, help="(--douyin)")
    p.add_argument("--time-budget", type=float, default=150.0, help="seconds (--douyin)")
    p.add_argument("--replications", type=REPLICATIONS, default=1,
                   help="replications pooled per evaluation (--douyin)")
    p.add_argument("--seed", type=SEED, default=0, help="root seed (default 0)")
    p.add_argument("--no-progress", action="store_true",
                   help="no line per fit step (or per --douyin evaluation) on stderr")
    return p


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main_calibrate(argv: Sequence[str] | None = None) -> int:
    """``faultlock calibrate MEASUREMENT -o CAL.json``, or
    ``faultlock calibrate --douyin -o FIT.json``"""
    from .calibrate import calibrate, check_measurement

    args = calibrate_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    option = "faultlock calibrate: -o"
    if args.output is not None:
        check_output(args.output, (".json",), option=option, force=args.force)
    if args.douyin:
        from .douyin import fit_douyin
        fit = fit_douyin(operations=args.operations, seed=args.seed,
                         max_evaluations=args.max_evaluations, time_budget=args.time_budget,
                         replications=args.replications, progress=not args.no_progress)
        print(f"android_warm_start fitted fields: {fit.fields} (loss {fit.loss:.3g}, "
              f"{len(fit.evaluations)} evaluations; on fresh seeds median loss "
              f"{fit.validation.get('loss_median', float('nan')):.3g})")
        print(fit.table(), end="")
        if args.output:
            write_text(args.output, json.dumps(jsonable(fit.to_dict()), indent=2), option)
            print(f"wrote {args.output}")
        return 0
    if not args.measurement:
        raise ValueError("faultlock calibrate: a MEASUREMENT dataset is required (or --douyin)")
    loaded = load_dataset(args.measurement)
    if loaded.attrs.get("workload") == "memcg_rounds":
        from .memcg_compare import calibrate_memcg
        cal_memcg = calibrate_memcg(loaded)
        for name, value in cal_memcg["fields"].items():
            ci = cal_memcg["details"].get(name, {}).get("ci", float("nan"))
            print(f"{name:<18} {value:.4g} s ± {ci:.2g} s (95 %)")
        if args.output:
            write_text(args.output, json.dumps(jsonable(cal_memcg), indent=2), option)
            print(f"wrote {args.output}")
        return 0
    measurement = check_measurement(loaded, repr(args.measurement))
    cal = calibrate(measurement, io_source=args.io_source,
                    progress=None if args.no_progress else _stderr_line)
    for name, value in cal.fields.items():
        print(f"{name:<26} {value!r}")
    for kind, (hold, cv) in cal.writer_holds.items():
        print(f"writer hold {kind:<14} {hold * 1e6:.2f} µs (cv {cv:.2f})")
    if args.output:
        write_text(args.output, cal.to_json(), option)
        print(f"wrote {args.output}")
    return 0


# -- compare -------------------------------------------------------------------------------------

def compare_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="faultlock compare",
                description="Predict every measured configuration under mainline (Monte Carlo, "
                            "and the analytic solver if present) and set it against the "
                            "measurement: a dataset, a Markdown table and a figure.")
    p.add_argument("measurement", help="a dataset written by faultlock measure")
    p.add_argument("-o", "--output", required=True,
                   help="output prefix: writes PREFIX.nc, PREFIX.md and PREFIX.png (in an "
                        "existing directory)")
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.add_argument("--calibration", help="calibration JSON (default: calibrate the measurement)")
    p.add_argument("--operations", type=OPERATIONS, default=20_000,
                   help="Monte Carlo operations per cell (default 20000)")
    p.add_argument("--max-operations", type=OPERATIONS, default=1_280_000,
                   help="a cell whose p50/p90/p99 has a Monte Carlo 95%% half-width above 5%% "
                        "of it is solved again with more operations, up to this many "
                        "(default 1280000)")
    p.add_argument("--seed", type=SEED, default=0, help="root seed (default 0)")
    p.add_argument("--no-analytic", action="store_true", help="Monte Carlo only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def main_compare(argv: Sequence[str] | None = None) -> int:
    """``faultlock compare MEASUREMENT -o PREFIX [--calibration CAL.json]``"""
    from ..sweeps.progress import CellProgress, status
    from .calibrate import Calibration, calibrate, check_measurement
    from .compare import compare, error_table, summary_table
    from .figure import plot_comparison

    args = compare_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    option = "faultlock compare: -o"
    prefix = Path(args.output)
    outputs = {suffix: prefix.with_suffix(suffix) for suffix in (".nc", ".md", ".png")}
    for suffix, path in outputs.items():
        check_output(path, (suffix,), option=option, force=args.force)
    loaded = load_dataset(args.measurement)
    if loaded.attrs.get("workload") == "memcg_rounds":
        return _compare_memcg(loaded, args, outputs, option)
    ds = check_measurement(loaded, repr(args.measurement))
    if args.calibration:
        try:
            cal = Calibration.from_json(Path(args.calibration).read_text())
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"--calibration {args.calibration!r} is not allowed: {exc}") from None
    else:
        cal = calibrate(ds)
    solvers = ("montecarlo",) if args.no_analytic else ("montecarlo", "analytic")
    status(f"compare: {ds.sizes['config']} cells x {', '.join(solvers)} (Monte Carlo "
           f"{args.operations} operations per cell; the first run of a checkout compiles the "
           "engine: a minute or two) ...", enabled=not args.no_progress)
    bar = CellProgress("compare: solves", enabled=not args.no_progress)
    try:
        cmp = compare(ds, calibration=cal, solvers=solvers, operations=args.operations,
                      max_operations=max(args.max_operations, args.operations), seed=args.seed,
                      progress=bar)
    finally:
        bar.close()
    save_dataset(cmp, outputs[".nc"], option)
    table = error_table(cmp)
    write_text(outputs[".md"], table, option)
    with replacing(outputs[".png"], option) as temporary:
        plot_comparison(cmp).savefig(temporary, dpi=110, format="png")
    print(summary_table(cmp), end="")
    print(f"analytic: {cmp.attrs.get('analytic')}")
    print(f"solver seconds: {cmp.attrs.get('solve_seconds')}")
    print(f"wrote {outputs['.nc']}, {outputs['.md']}, {outputs['.png']}")
    return 0


def _compare_memcg(ds: xr.Dataset, args: argparse.Namespace, outputs: dict, option: str) -> int:
    """``faultlock compare`` of a memcg measurement (:mod:`faultlock.measure.memcg_compare`)."""
    from .memcg_compare import calibrate_memcg, compare_memcg, memcg_error_table

    ds = _check_memcg(ds, args.measurement)
    if args.calibration:
        try:
            cal = json.loads(Path(args.calibration).read_text())
            if not isinstance(cal, dict) or not isinstance(cal.get("fields", {}), dict):
                raise ValueError("not a memcg calibration (a 'fields' mapping)")
        except (OSError, ValueError) as exc:
            raise ValueError(f"--calibration {args.calibration!r} is not allowed: {exc}") from None
    else:
        cal = calibrate_memcg(ds)
    solvers = ("montecarlo",) if args.no_analytic else ("montecarlo", "analytic")
    cmp = compare_memcg(ds, calibration=cal, solvers=solvers, operations=args.operations,
                        seed=args.seed)
    save_dataset(cmp, outputs[".nc"], option)
    table = memcg_error_table(cmp)
    write_text(outputs[".md"], table, option)
    with replacing(outputs[".png"], option) as temporary:
        plot_memcg(cmp).savefig(temporary, dpi=110, format="png")
    print(table, end="")
    print(f"wrote {outputs['.nc']}, {outputs['.md']}, {outputs['.png']}")
    return 0


def _check_memcg(ds: xr.Dataset, name: str) -> xr.Dataset:
    from .memcg_compare import check_memcg_dataset
    return check_memcg_dataset(ds, repr(name))


def plot_memcg(cmp: xr.Dataset):
    """Rounds per second and pages read per fault against limit / working set, one line per
    thread count: measured (with its t interval) and each solver's prediction."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    styles = {"measured": "o-", "montecarlo": "s--", "analytic": "^:"}
    for ax, metric, label in ((axes[0], "round_rate", "rounds per second"),
                              (axes[1], "pages_read_per_fault", "pages read per fault")):
        for k, t in enumerate(sorted(set(int(x) for x in cmp["threads"].values))):
            sel = cmp["threads"].values == t
            x = cmp["limit_ratio"].values[sel]
            for j, source in enumerate(str(s) for s in cmp["source"].values):
                y = cmp[metric].values[sel, j]
                err = cmp[metric + "_ci"].values[sel, j]
                ax.errorbar(x, y, yerr=err, fmt=styles.get(source, "x-"), color=f"C{k}",
                            label=f"T={t} {source}", capsize=2, ms=4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("memory limit / working set")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle(f"memcg refault loop, mainline (kernel {cmp.attrs.get('kernel_release', '?')})",
                 fontsize=9)
    return fig
