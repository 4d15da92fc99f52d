"""The memcg measurement against the model: each measured cell as a Scenario, the fields the
measurement pins down (``calibrate_memcg``), and measured against predicted for ``mainline``
(``compare_memcg``).

From a cell to a Scenario (the fields of ``/work/briefs/contract.md``, issue 12)
---------------------------------------------------------------------------------
* T threads, each with a file of its own of N pages, looping mmap / walk in order / munmap:
  ``threads = vmas = T``, ``access_pattern = "file_rounds"``, ``pages_per_vma = N``;
* sparse files (``ftruncate``, never written): ``read_source = "hole"`` (a read zero-fills its
  folios on the faulting CPU, ``hole_page_cpu`` per page, no device); ``--filled``: "device";
* the cgroup limit: ``reclaim = "lru"``, ``memory_limit`` = the limit in 4 KiB pages (the whole
  ``memory.max``; the harness's own few hundred KiB of anonymous memory and page tables are
  charged too, and left out), ``lru_lists = 2``; no swap, no writers other than the walkers'
  own mmap and munmap;
* the machine: ``cpus`` = CPUs online; ``readaround_pages`` = the file's device's
  ``read_ahead_kb`` / 4 (``mm/filemap.c: do_sync_mmap_readahead`` reads ``ra->ra_pages`` around a
  missing page, and a sequential walk's async read-ahead the same window: 2048 pages on this
  machine, whose ``read_ahead_kb`` is 8192; the kernel's default 128 KiB gives 32);
  ``faultaround_pages`` = ``fault_around_bytes`` / 4096 (16, the kernel default, where debugfs
  does not say);
* measured CPU costs (:func:`calibrate_memcg`): ``reclaim_cpu_time`` (direct reclaim per page
  reclaimed), ``hole_page_cpu`` (allocation, zero-fill and page-cache insertion per page read),
  ``unmap_page_time`` (munmap's CPU per mapped page), ``think_time`` (user CPU per page touched),
  ``fault_cpu_time`` (a minor fault with fault-around, from the unlimited reference);
* the noise variant: ``noise_threads``, ``noise_cpu`` (CPU per loop, measured), ``noise_sleep``.

Measured and modelled quantities
--------------------------------
``round_rate`` (rounds completed per second, all threads), ``round_rate_cpu_normalised``
(rounds per CPU-second of the process times the CPUs: the rate with the machine to itself, for
this CPU-bound workload; other tenants' load changes ``round_rate`` a lot, this much less; the
model's side is its ``round_rate``), ``access_rate`` (pages walked per
second), ``fault_rate`` (major + minor faults per second, getrusage), ``major_faults_per_fault``,
``pages_read_per_fault`` (pages brought in per fault: ``workingset_refault_file`` / faults),
``reclaim_rate`` (pages reclaimed per second) and ``cache_pages_mean`` (the cgroup's page cache
at the end of the window, a sample of the level). The measured intervals are Student t over
repeats.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from .memcg import PAGE, WORKLOAD, reclaim_cost, t_interval

__all__ = ["is_memcg_dataset", "check_memcg_dataset", "calibrate_memcg", "memcg_cells",
           "memcg_scenario_fields", "memcg_scenario", "measured_memcg_metrics", "compare_memcg",
           "memcg_error_table", "COMPARED_MEMCG"]

COMPARED_MEMCG = ("round_rate", "round_rate_cpu_normalised", "access_rate", "fault_rate",
                  "major_faults_per_fault", "pages_read_per_fault", "reclaim_rate",
                  "cache_pages_mean")
#: fields taken from the machine's preset (device and scheduler), the rest from the Scenario's
#: defaults and the cell
MACHINE_FIELDS = ("io_latency", "io_latency_cv", "io_distribution", "io_parallelism",
                  "io_depth_slope", "io_page_time", "wakeup_latency", "sched_slice",
                  "fault_cpu_time")
#: the model's metric for a measured one where the names differ
MODEL_NAMES = {"round_rate_cpu_normalised": "round_rate"}
#: the kernel's default fault_around_bytes (64 KiB) in pages
DEFAULT_FAULTAROUND_PAGES = 16
#: the kernel's default read_ahead_kb (128 KiB) in pages
DEFAULT_READAROUND_PAGES = 32
REQUIRED = ("round_rate_runs", "pages_walked_runs", "window_runs", "majflt_runs",
            "minflt_runs", "pages_read_runs", "pages_reclaimed_runs", "limit_pages_runs")


def is_memcg_dataset(ds: xr.Dataset) -> bool:
    """Whether ``ds`` was written by :func:`faultlock.measure.memcg.measure_memcg`."""
    return ds.attrs.get("workload") == WORKLOAD


def check_memcg_dataset(ds: Any, name: str = "ds") -> xr.Dataset:
    """``ds`` if it is a memcg measurement with what the comparison needs; else ValueError."""
    if not isinstance(ds, xr.Dataset) or not is_memcg_dataset(ds):
        raise ValueError(f"{name} is not allowed: not a memcg measurement (attrs['workload'] "
                         f"should be {WORKLOAD!r})")
    dims = {"threads", "limit_ratio", "repeat"} - set(ds.dims)
    missing = [v for v in REQUIRED if v not in ds]
    if dims or missing:
        raise ValueError(f"{name} is not allowed: a memcg measurement lacks "
                         f"{sorted(dims) + missing}")
    return ds


def _config(ds: xr.Dataset) -> dict[str, Any]:
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except (TypeError, ValueError):
        config = {}
    return config if isinstance(config, dict) else {}


def _mean(values) -> float:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def calibrate_memcg(ds: xr.Dataset) -> dict[str, Any]:
    """The Scenario fields the memcg measurement pins down, with how and their intervals.

    Returns ``{"fields": {...}, "details": {...}}``; ``fields`` are Scenario field values
    (seconds), ``details`` the 95 % half-widths and the method of each.
    """
    check_memcg_dataset(ds)
    file_pages = float(ds.attrs.get("file_pages", np.nan))
    fields: dict[str, float] = {}
    details: dict[str, Any] = {}
    if "unlimited_cpu_user_runs" in ds and "cold_cpu_user_runs" in ds:
        cost = reclaim_cost(ds)
        cost.pop("runs")
        fields["reclaim_cpu_time"] = cost["value"]
        fields["hole_page_cpu"] = cost["hole_page_cpu"]
        details["reclaim_cpu_time"] = {"ci": cost["ci"], "n": cost["n"],
                                       "by_threads": json.loads(cost["by_threads"]),
                                       "method": cost["method"]}
        details["hole_page_cpu"] = {"ci": cost["hole_page_cpu_ci"], "method":
                                    "cold reference CPU per page (posix_fadvise CPU removed) "
                                    "less the unlimited reference's"}
        munmap = ds["unlimited_munmap_cpu_per_round_runs"].values / file_pages
        fields["unmap_page_time"] = _mean(munmap)
        details["unmap_page_time"] = {
            "ci": float(t_interval(munmap.ravel(), axis=0)[1]),
            "method": "munmap's thread CPU per round / file pages, unlimited reference (every "
                      "page mapped at munmap)"}
        user = (ds["unlimited_cpu_user_runs"] / ds["unlimited_pages_walked_runs"]).values
        fields["think_time"] = _mean(user)
        details["think_time"] = {"ci": float(t_interval(user.ravel(), axis=0)[1]),
                                 "method": "user CPU per page touched, unlimited reference"}
        rounds = ds["unlimited_rounds_runs"]
        system = (ds["unlimited_cpu_system_runs"]
                  - rounds * (ds["unlimited_munmap_cpu_per_round_runs"]
                              + ds["unlimited_mmap_cpu_per_round_runs"]))
        faults = ds["unlimited_minflt_runs"] + ds["unlimited_majflt_runs"]
        per_fault = (system / faults).values
        fields["fault_cpu_time"] = _mean(per_fault)
        details["fault_cpu_time"] = {
            "ci": float(t_interval(per_fault.ravel(), axis=0)[1]),
            "method": "system CPU less mmap and munmap per (minor) fault, unlimited reference "
                      "(each fault maps up to faultaround_pages)"}
    if "noise_cpu_per_loop" in ds:
        fields["noise_cpu"] = _mean(ds["noise_cpu_per_loop_runs"].values)
        details["noise_cpu"] = {"method": "noise threads' CPU clock per loop"}
    return {"fields": fields, "details": details}


def memcg_cells(ds: xr.Dataset) -> list[dict[str, Any]]:
    """Every (threads, limit_ratio) cell: its coordinates, limit in pages and file size."""
    check_memcg_dataset(ds)
    file_pages = int(ds.attrs.get("file_pages", 0))
    cells = []
    for t in ds["threads"].values:
        for r in ds["limit_ratio"].values:
            limit = _mean(ds["limit_pages_runs"].sel(threads=t, limit_ratio=r).values)
            if not math.isfinite(limit):
                limit = float(int(r * int(t) * file_pages))
            cells.append({"threads": int(t), "limit_ratio": float(r),
                          "limit_pages": int(limit), "file_pages": file_pages})
    return cells


def _int_attr(attrs: Mapping[str, Any], key: str) -> int | None:
    try:
        value = int(str(attrs.get(key, "")).strip())
    except ValueError:
        return None
    return value if value > 0 else None


def memcg_scenario_fields(cell: Mapping[str, Any], attrs: Mapping[str, Any],
                          calibration: Mapping[str, float] | None = None, *,
                          config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Scenario fields of one measured cell (see the module docstring), ``policy`` not
    included (the comparison asks the solvers for ``mainline``).

    Parameters
    ----------
    cell : mapping
        ``threads``, ``limit_pages``, ``file_pages`` (from :func:`memcg_cells`).
    attrs : mapping
        The dataset's attrs (``cpus_online``, ``read_ahead_kb``, ``fault_around_bytes``).
    calibration : mapping, optional
        Measured fields (:func:`calibrate_memcg`'s ``fields``); missing ones keep the model's
        defaults.
    config : mapping, optional
        The measurement's config (``filled``, ``noise_threads``, ``noise_sleep``,
        ``noise_spin``); default ``json.loads(attrs['config'])``.
    """
    if config is None:
        try:
            config = json.loads(attrs.get("config", "{}"))
        except (TypeError, ValueError):
            config = {}
    threads, pages = int(cell["threads"]), int(cell["file_pages"])
    if threads < 1 or pages < 1:
        raise ValueError(f"cell={dict(cell)!r} is not allowed: threads and file_pages >= 1")
    read_ahead_kb = _int_attr(attrs, "read_ahead_kb")
    fault_around = _int_attr(attrs, "fault_around_bytes")
    cpus = _int_attr(attrs, "cpus_online") or 2
    fields: dict[str, Any] = {
        "threads": threads, "vmas": threads, "access_pattern": "file_rounds",
        "pages_per_vma": pages,
        "read_source": "device" if config.get("filled") else "hole",
        "reclaim": "lru", "memory_limit": int(cell["limit_pages"]), "lru_lists": 2,
        "reclaim_rate_cached": 0.0, "reclaim_rate_mapped": 0.0,
        "cpus": cpus,
        "readaround_pages": read_ahead_kb * 1024 // PAGE if read_ahead_kb
        else DEFAULT_READAROUND_PAGES,
        "faultaround_pages": fault_around // PAGE if fault_around else DEFAULT_FAULTAROUND_PAGES,
        "swap_share": 0.0, "writer_rate": 0.0, "writer_threads": 0, "reader_rate": 0.0,
        "idle_time": 0.0,
    }
    noise = int(config.get("noise_threads", 0) or 0)
    if noise:
        fields["noise_threads"] = noise
        fields["noise_cpu"] = float(config.get("noise_spin", 5e-6))
        fields["noise_sleep"] = float(config.get("noise_sleep", 50e-6))
    for name, value in (calibration or {}).items():
        if value is not None and math.isfinite(value) and (name != "noise_cpu" or noise):
            fields[name] = float(value)
    return fields


def memcg_scenario(cell: Mapping[str, Any], attrs: Mapping[str, Any],
                   calibration: Mapping[str, float] | None = None, *,
                   preset: str = "virtio_2cpu"):
    """The :class:`faultlock.Scenario` of a measured cell, and a note of what it approximates.

    Takes the machine's fields (:data:`MACHINE_FIELDS`: device, wake-up, scheduler) from
    ``preset``, the cell's from :func:`memcg_scenario_fields`, the rest at the defaults;
    raises ValueError naming the missing fields when the Scenario does not have them yet.
    """
    from ..model.scenario import Scenario

    fields = memcg_scenario_fields(cell, attrs, calibration)
    missing = [name for name in fields if name not in Scenario.FIELDS]
    if missing:
        raise ValueError(f"the Scenario has no field {', '.join(missing)}: the memcg comparison "
                         "needs the issue-12 fields (contract.md: reclaim='lru', file_rounds, "
                         "read_source='hole', ...)")
    # only the machine's fields from the preset: its workload fields (a 1 GiB file, no
    # popularity) are not this workload's and the file_rounds rules refuse some of them
    machine = {name: value for name, value in Scenario.preset(preset)._values().items()
               if name in MACHINE_FIELDS}
    base = {**machine, **fields}
    note = ("whole memory.max as memory_limit (the harness's own memory, a few hundred KiB, "
            "also counts in the kernel); readaround_pages from read_ahead_kb; think time "
            "exponential where the harness's loop is fixed")
    return Scenario(**base), note


def measured_memcg_metrics(ds: xr.Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per cell (threads, limit_ratio) mean and t half-width of :data:`COMPARED_MEMCG`."""
    window = ds["window_runs"]
    faults = ds["majflt_runs"] + ds["minflt_runs"]
    cpus = float(ds.attrs.get("cpus_online", 2))
    cpu = ds["cpu_user_runs"] + ds["cpu_system_runs"]
    runs = {
        "round_rate": ds["round_rate_runs"],
        "round_rate_cpu_normalised": ds["rounds_runs"] / cpu * cpus,
        "access_rate": ds["pages_walked_runs"] / window,
        "fault_rate": faults / window,
        "major_faults_per_fault": ds["majflt_runs"] / faults,
        "pages_read_per_fault": ds["pages_read_runs"] / faults,
        "reclaim_rate": ds["pages_reclaimed_runs"] / window,
        "cache_pages_mean": ds["end_cache_pages_runs"] if "end_cache_pages_runs" in ds
        else xr.full_like(window, np.nan),
    }
    return {name: t_interval(values.values, axis=-1) for name, values in runs.items()}


def compare_memcg(ds: xr.Dataset, *, calibration: Mapping[str, Any] | None = None,
                  solvers=("montecarlo", "analytic"), operations: int = 20_000,
                  seed: int = 0, min_rounds: int = 5, min_slices: int = 10) -> xr.Dataset:
    """Measured against predicted (``mainline``) for every memcg cell.

    Returns a dataset with dims ``cell`` and ``source`` (``measured``, then the solvers);
    ``<metric>(cell, source)`` and ``<metric>_ci`` for :data:`COMPARED_MEMCG`,
    ``<metric>_error`` = predicted / measured - 1; coordinates ``threads``, ``limit_ratio``,
    ``scenario`` (JSON) and ``mapping_note``; a solver that cannot take a cell (the analytic model
    refuses file_rounds) leaves NaN and says why in ``attrs['solver_errors']``.

    The measurement starts after every thread completed a round (the first round is cold
    whatever the limit); the Monte Carlo measures after its warm-up share of ``operations``, so a
    cell gets at least ``min_rounds`` rounds' worth of faults per thread (T x pages /
    ``faultaround_pages`` each; coordinate ``operations``), else at ratio 2 with 32 threads it
    would report the first, cold round as the steady state. It also simulates at least
    ``min_slices`` scheduler slices per thread (``min_slices`` x ceil(T / cpus) x
    ``sched_slice`` of simulated time, rerunning once with proportionally more operations if
    the first run was shorter): a round (~0.5 ms) is shorter than a slice (3 ms), so with 32
    threads on 2 CPUs a short run sees only the threads that got a CPU.
    """
    from ..model.montecarlo.simulate import simulate
    from .compare import analytic_solver

    check_memcg_dataset(ds)
    cal = calibration if calibration is not None else calibrate_memcg(ds)
    fields = cal.get("fields", cal)
    predict, analytic_status = analytic_solver() if "analytic" in solvers else (None, "not asked")
    sources = ["measured"] + [s for s in ("montecarlo", "analytic")
                              if s in solvers and (s != "analytic" or predict is not None)]
    cells = memcg_cells(ds)
    measured = measured_memcg_metrics(ds)
    n, names = len(cells), list(COMPARED_MEMCG)
    values = {m: np.full((n, len(sources)), np.nan) for m in names}
    cis = {m: np.full((n, len(sources)), np.nan) for m in names}
    scenarios, notes, errors = [], [], []
    cell_operations = np.zeros(n, dtype=np.int64)
    for i, cell in enumerate(cells):
        ti = list(ds["threads"].values).index(cell["threads"])
        ri = list(ds["limit_ratio"].values).index(cell["limit_ratio"])
        for m in names:
            values[m][i, 0] = measured[m][0][ti, ri]
            cis[m][i, 0] = measured[m][1][ti, ri]
        if len(sources) == 1:            # no solver asked: the fields a solver would get
            scenarios.append(json.dumps(memcg_scenario_fields(cell, ds.attrs, fields)))
            notes.append("Scenario fields only (no solver asked)")
            continue
        scenario, note = memcg_scenario(cell, ds.attrs, fields)
        scenarios.append(scenario.to_json(indent=None))
        notes.append(note)
        faults_per_round = cell["threads"] * math.ceil(cell["file_pages"]
                                                       / scenario.faultaround_pages)
        cell_operations[i] = max(operations, min_rounds * faults_per_round)
        for j, source in enumerate(sources[1:], 1):
            try:
                if source == "montecarlo":
                    out, cell_operations[i] = _simulate_long_enough(
                        simulate, scenario, int(cell_operations[i]), seed, min_slices)
                else:
                    out = predict(scenario, policies=["mainline"])
            except Exception as exc:  # noqa: BLE001 - a solver refusing a cell is reported
                errors.append(f"{source} T={cell['threads']} ratio {cell['limit_ratio']:g}: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                continue
            point = out.sel(policy="mainline") if "policy" in out.dims else out
            for m in names:
                model = MODEL_NAMES.get(m, m)
                if model in point:
                    values[m][i, j] = float(point[model].values)
                if model + "_ci" in point:
                    cis[m][i, j] = float(point[model + "_ci"].values)
    coords = {"cell": np.arange(n), "source": sources,
              "threads": ("cell", [c["threads"] for c in cells]),
              "limit_ratio": ("cell", [c["limit_ratio"] for c in cells]),
              "limit_pages": ("cell", [c["limit_pages"] for c in cells]),
              "scenario": ("cell", scenarios), "mapping_note": ("cell", notes),
              "operations": ("cell", cell_operations)}
    data = {}
    for m in names:
        data[m] = (("cell", "source"), values[m])
        data[m + "_ci"] = (("cell", "source"), cis[m],
                           {"long_name": f"95% half-width of {m} (t over repeats, measured; batch "
                                         "means, Monte Carlo)"})
        with np.errstate(all="ignore"):
            err = values[m] / values[m][:, :1] - 1
        err[:, 0] = 0.0
        data[m + "_error"] = (("cell", "source"), err,
                              {"units": "1", "long_name": f"predicted / measured - 1 of {m}"})
    out = xr.Dataset(data, coords=coords)
    out.attrs.update({k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float))})
    out.attrs.update({"policy": "mainline", "calibration": json.dumps(cal, default=float),
                      "analytic": analytic_status, "solver_errors": " | ".join(errors),
                      "montecarlo_operations": operations, "montecarlo_seed": seed})
    return out


def _simulate_long_enough(simulate, scenario, operations: int, seed: int, min_slices: int,
                          max_operations: int = 4_000_000):
    """The Monte Carlo of ``scenario`` under mainline, over at least ``min_slices`` slices per
    thread of simulated time; returns the result and the operations used."""
    needed = min_slices * math.ceil(scenario.threads / max(scenario.cpus, 1)) \
        * scenario.sched_slice
    out = simulate(scenario, policies=["mainline"], operations=operations, seed=seed)
    simulated = float(out["simulated_time"].max()) if "simulated_time" in out else needed
    if 0 < simulated < needed and operations < max_operations:
        operations = min(max_operations, int(math.ceil(operations * 1.1 * needed / simulated)))
        out = simulate(scenario, policies=["mainline"], operations=operations, seed=seed)
    return out, operations


def memcg_error_table(cmp: xr.Dataset, metrics=COMPARED_MEMCG) -> str:
    """A Markdown table: per cell, measured (± t half-width) and each solver's prediction with
    its error."""
    sources = [str(s) for s in cmp["source"].values]
    head = "| T | limit/ws | metric | " + " | ".join(sources) + " |"
    lines = [head, "|" + "---|" * (3 + len(sources))]
    for i in range(cmp.sizes["cell"]):
        for m in metrics:
            row = [f"{int(cmp['threads'].values[i])}", f"{float(cmp['limit_ratio'].values[i]):g}",
                   m]
            for j in range(len(sources)):
                v = float(cmp[m].values[i, j])
                c = float(cmp[m + "_ci"].values[i, j])
                text = f"{v:.4g}" + (f" ± {c:.2g}" if math.isfinite(c) else "")
                if j:
                    e = float(cmp[m + "_error"].values[i, j])
                    text += f" ({e:+.0%})" if math.isfinite(e) else ""
                row.append(text)
            lines.append("| " + " | ".join(row) + " |")
    if cmp.attrs.get("solver_errors"):
        lines.append("")
        lines.append(f"Solver errors: {cmp.attrs['solver_errors']}")
    return "\n".join(lines) + "\n"
